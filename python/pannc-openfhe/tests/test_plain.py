"""Plaintext semantics and validation (numpy only; no key is generated here)."""

import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, PKG)

import gen  # noqa: E402
from pannc_openfhe import plain, program  # noqa: E402
from pannc_openfhe.program import ProgramError  # noqa: E402


def cli(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=PKG + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.time()
    p = subprocess.run([sys.executable, "-m", "pannc_openfhe", *args], capture_output=True, text=True, env=env, timeout=timeout)
    return p, time.time() - t


class PlainSemantics(unittest.TestCase):
    def test_small_cnn_equals_dense_reference(self):
        """Strided/padded convolutions, multi-ciphertext tensors (S = 64, 128), one-ciphertext
        tensors (S = 2048), a poly, a rotation, a residual add, a bootstrap (identity)."""
        for S in (64, 128, 2048):
            for seed in (0, 1):
                b, ref = gen.small_cnn(S, seed=seed)
                with tempfile.TemporaryDirectory() as d:
                    p = program.load(b.write(d))
                if S == 64:
                    self.assertEqual([p.cts(v) for v in range(len(p.values))][:3], [3, 4, 4])
                for img in gen.images(4, seed=seed + 10):
                    out, _ = plain.run(p, [img])
                    self.assertEqual(out[0].shape, (10,))
                    self.assertLess(gen.rel_err(out[0], ref(img)), 1e-12, (S, seed))

    def test_multiplexed_layout(self):
        """A stride-2 conv into a multiplexed layout (gap 2), a conv within it, a residual
        add, a dense layer back to compact: equals the dense reference; the multiplexed
        value's used slots are exactly its elements' positions."""
        for S in (64, 256):
            b, ref = gen.mux_cnn(S)
            with tempfile.TemporaryDirectory() as d:
                p = program.load(b.write(d))
            self.assertEqual(p.values[1]["layout"], {"gap": 2, "grid": [8, 8]})
            m = plain.used_mask(p, 1)
            self.assertEqual(int(m.sum()), 64)
            self.assertEqual(m.reshape(-1)[:64].tolist(), [True] * 64)  # 4 channels fill the 8x8 grid
            img = gen.images(1, seed=2)[0][:2]
            out, vals = plain.run(p, [img])
            self.assertLess(gen.rel_err(out[0], ref(img)), 1e-12)
            # The tensor read back through the layout is the strided convolution.
            t = gen.conv_reference(img, *_mux_w1(S))
            self.assertLess(gen.rel_err(plain.tensor(p, 1, vals[1]), t), 1e-12)

    def test_random_linear_maps(self):
        """Random dense maps between multi-ciphertext tensors, several n1: the diagonal form
        equals A @ x + b, and every rotation it needs is a key."""
        rng = np.random.default_rng(7)
        for S, n_in, n_out in [(16, 40, 23), (32, 32, 70), (8, 8, 8), (64, 200, 10)]:
            A = rng.normal(size=(n_out, n_in)) * (rng.uniform(size=(n_out, n_in)) < 0.3)
            bias = rng.normal(size=n_out)
            for n1 in (1, 3, S):
                b = gen.Builder(S)
                x = b.input("x", [n_in])
                y = b.linear(x, A, bias, [n_out], n1=n1)
                b.output("y", y)
                with tempfile.TemporaryDirectory() as d:
                    p = program.load(b.write(d))
                v = rng.normal(size=n_in)
                out, _ = plain.run(p, [v])
                np.testing.assert_allclose(out[0], A @ v + bias, rtol=1e-12, atol=1e-12)
                lin = p.linear[p.ops[0]["weights"]]
                self.assertTrue(set(lin.rotations()) <= set(p.rotations))

    def test_unused_slots_do_not_leak(self):
        """A poly with p(0) != 0 writes garbage into unused slots; the next linear op's
        diagonals are zero there, so outputs do not change when the garbage does."""
        b, ref = gen.small_cnn(128, seed=3)
        with tempfile.TemporaryDirectory() as d:
            p = program.load(b.write(d))
        img = gen.images(1, seed=5)[0]
        _, vals = plain.run(p, [img])
        v8 = 8  # the second poly's output (1 ciphertext, 64 used slots of 128)
        self.assertEqual(p.ops[v8 - 1]["op"], "poly")
        # Slots 64..124 are unused and zero before the poly (125..127 received slots 0..2 from
        # the rotation): p(0) = -0.25 there.
        self.assertTrue(np.all(vals[v8][0][64:125] == -0.25))
        y = plain.linear(p.linear[p.ops[-1]["weights"]], vals[v8])
        junk = vals[v8].copy()
        junk[0][64:] = 1e6
        np.testing.assert_array_equal(plain.linear(p.linear[p.ops[-1]["weights"]], junk), y)


def _mux_w1(S):
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.2, (4, 2, 3, 3))
    b1 = rng.normal(0, 0.05, 4)
    return w1, b1, 2, 1


def _base():
    b, _ = gen.small_cnn(128)
    return b, b.doc(), dict(b.arrays)


def _first(doc, kind):
    return next(j for j, op in enumerate(doc["ops"]) if op["op"] == kind)


class Validation(unittest.TestCase):
    """Each rule of the spec's Validity section, by a broken copy of a valid program."""

    def check(self, mutate, rule, needle, arrays_mutate=None):
        b, doc, arrays = _base()
        doc = copy.deepcopy(doc)
        mutate(doc)
        if arrays_mutate:
            arrays_mutate(arrays)
        with tempfile.TemporaryDirectory() as d:
            b.write(d, doc, arrays)
            with self.assertRaises(ProgramError) as cm:
                program.load(d)
            msg = str(cm.exception)
            self.assertNotIn("\n", msg)
            self.assertIn(rule, msg)
            self.assertIn(needle, msg)
        return msg

    def test_valid_base(self):
        b, doc, arrays = _base()
        with tempfile.TemporaryDirectory() as d:
            p = program.load(b.write(d, doc, arrays))
        self.assertEqual(p.depth, 5)

    def test_unknown_version(self):
        self.check(lambda d: d.update(version=4), "rule 1", "unknown version 4")
        self.check(lambda d: d.update(version=1), "rule 1", "unknown version 1")
        self.check(lambda d: d.update(packing="slot_per_sample"), "rule 1", "packing")
        self.check(lambda d: d.update(slots=96), "rule 1", "power of two")

    def test_value_defined_once_before_use(self):
        def m(d):
            d["ops"][1]["in"] = 5
        self.check(m, "rule 1", "not a value defined before this op")

        def m2(d):
            d["ops"][2]["out"] = 2
        self.check(m2, "rule 1", "defined once, in order")
        self.check(lambda d: d["ops"][0].update(op="conv"), "rule 1", "unknown op 'conv'")

    def test_shapes(self):
        def ct(d):
            d["values"][1]["ciphertexts"] = 1
        self.check(ct, "rule 2", "ciphertexts 1, but ceil(numel 256 / slots 128) = 2")

        def add(d):
            j = _first(d, "add")
            d["ops"][j]["b"] = 1  # value 1 is [4, 8, 8]
        self.check(add, "rule 2", "operands have shapes")

        def rot(d):
            j = _first(d, "rotate")
            d["ops"][j]["a"] = 1
            d["values"][d["ops"][j]["out"]]["shape"] = [4, 8, 8]
            d["values"][d["ops"][j]["out"]]["ciphertexts"] = 2
        self.check(rot, "rule 2", "only one-ciphertext values rotate")

        def out_shape(d):
            d["ops"][0]["out_shape"] = [4, 4, 4]
        self.check(out_shape, "rule 2", "out_shape")

    def test_layouts(self):
        b, _ = gen.mux_cnn(64)
        doc, arrays = b.doc(), dict(b.arrays)

        def run(mutate, needle):
            d2 = copy.deepcopy(doc)
            mutate(d2)
            with tempfile.TemporaryDirectory() as d:
                b.write(d, d2, arrays)
                with self.assertRaises(ProgramError) as cm:
                    program.load(d)
            self.assertIn("rule 2", str(cm.exception))
            self.assertIn(needle, str(cm.exception))

        run(lambda d: d["values"][1]["layout"].update(grid=[6, 8]), "does not fit grid")
        run(lambda d: d["values"][1].update(ciphertexts=2), "ceil(extent 64 / slots 64) = 1")
        run(lambda d: d["values"][0].update(layout={"gap": 1, "grid": [8, 8]}), "graph inputs are compact")

        def add(d):
            j = _first(d, "add")
            d["values"][d["ops"][j]["b"]]["layout"] = {"gap": 1, "grid": [4, 4]}
        run(add, "layout")

    def test_levels(self):
        self.check(lambda d: d["ops"][0].update(level=2), "rule 3", "declared level 2, the level rule gives 1")

        def poly(d):
            d["ops"][1]["level"] = 2
            d["values"][2]["level"] = 2
        self.check(poly, "rule 3", "the level rule gives 3")
        self.check(lambda d: d.update(depth=4), "rule 3", "max level of any value is 5")
        self.check(lambda d: d["ckks"].update(levels=4), "rule 3", "depth 5 exceeds ckks.levels 4")

        def boot(d):
            j = _first(d, "bootstrap")
            d["ops"][j]["in"] = 0  # the input, at level 0
            d["values"][d["ops"][j]["out"]].update(shape=[3, 8, 8], ciphertexts=2)
        self.check(boot, "rule 3", "bootstrap input (value 0) is at level 0")

    def test_linear_sidecar(self):
        key = "L0"
        self.check(lambda d: None, "rule 4", f"no array `{key}_diag`", lambda a: a.pop(f"{key}_diag"))
        self.check(lambda d: None, "rule 4", f"`{key}_diag` must be float64", lambda a: a.update({f"{key}_diag": a[f"{key}_diag"][:-1]}))
        self.check(lambda d: None, "rule 4", f"`{key}_bias` must be float64", lambda a: a.update({f"{key}_bias": a[f"{key}_bias"].astype(np.float32)}))
        self.check(lambda d: None, "rule 4", f"`{key}_index` must be int64", lambda a: a.update({f"{key}_index": a[f"{key}_index"].astype(np.int32)}))
        self.check(lambda d: d["ops"][0].update(diagonals=3), "rule 4", "diagonals=3")

        def nan(a):
            x = a[f"{key}_diag"].copy()
            x[0, 0] = np.nan
            a[f"{key}_diag"] = x
        self.check(lambda d: None, "rule 4", "non-finite", nan)

        def bad_o(a):
            x = a[f"{key}_index"].copy()
            x[-1, 0] = 2
            a[f"{key}_index"] = x
        self.check(lambda d: None, "rule 4", "o=2 not < m_out=2", bad_o)

        def bad_k(a):
            x = a[f"{key}_index"].copy()
            x[-1, 2] = 128
            a[f"{key}_index"] = x
        self.check(lambda d: None, "rule 4", "k=128 not in 0..127", bad_k)

        def unsorted(a):
            a[f"{key}_index"] = a[f"{key}_index"][::-1].copy()
        self.check(lambda d: None, "rule 4", "sorted", unsorted)

        b, doc, arrays = _base()
        with tempfile.TemporaryDirectory() as d:
            b.write(d, doc, arrays)
            os.remove(os.path.join(d, "weights.npz"))
            with self.assertRaises(ProgramError) as cm:
                program.load(d)
            self.assertIn("weights.npz is missing", str(cm.exception))
            with open(os.path.join(d, "weights.npz"), "wb") as f:
                f.write(b"PK\x03\x04 truncated")
            with self.assertRaises(ProgramError) as cm:
                program.load(d)
            self.assertIn("weights.npz", str(cm.exception))

    def test_garbage_stays_out(self):
        """Diagonals may not read unused input slots or write unused output slots; the bias is
        zero in unused slots."""
        # ciphertext 1 of the [3, 8, 8] input (192 elements, S = 128) uses slots 0..63 only
        def read_unused_ct1(a):
            idx, x = a["L0_index"], a["L0_diag"].copy()
            r = next(r for r in range(len(idx)) if tuple(idx[r]) == (0, 1, 0))
            x[r, 100] = 0.5
            a["L0_diag"] = x
        self.check(lambda d: None, "rule 4", "reads an unused input slot", read_unused_ct1)

        def write_unused(a):
            idx, x = a["L2_index"], a["L2_diag"].copy()  # conv 2: [4, 4, 4] output, 64 of 128 slots
            x[0, 100] = 0.5
            a["L2_diag"] = x
        self.check(lambda d: None, "rule 4", "writes an unused output slot", write_unused)

        def bias(a):
            x = a["L2_bias"].copy()
            x[0, 100] = 1.0
            a["L2_bias"] = x
        self.check(lambda d: None, "rule 4", "bias` is nonzero in an unused output slot", bias)

    def test_stats(self):
        self.check(lambda d: d["stats"].update(rotations=1), "stats", "rotations 1 (ops give")

    def test_rotation_without_key(self):
        b, doc, _ = _base()
        lin0 = doc["ops"][0]
        with tempfile.TemporaryDirectory() as d:
            need = program.load(b.write(d)).linear[lin0["weights"]].rotations()

        def drop(d):
            d["rotations"] = [r for r in d["rotations"] if r != need[-1]]
        msg = self.check(drop, "rule 4", f"needs rotation by {need[-1]}")
        self.assertIn("op #0 (linear", msg)

        def rot(d):
            j = _first(d, "rotate")
            d["ops"][j]["k"] = 127
        self.check(rot, "rule 4", "rotation by 127 has no key")
        self.check(lambda d: d.update(rotations=[3, 1]), "rule 4", "sorted")
        self.check(lambda d: d.update(rotations=[0, 1]), "rule 4", "1..127")

    def test_poly_circuit(self):
        def two_inputs(d):
            c = d["ops"][1]["circuit"]
            c["inputs"].append({"name": "v", "value": 1})
        self.check(two_inputs, "rule 5", "exactly one input")

        def bad_level(d):
            d["ops"][1]["circuit"]["ops"][5]["level"] = 1
        self.check(bad_level, "rule 5", "circuit op #5 (mul)")

        def v2(d):
            d["ops"][1]["circuit"]["version"] = 2
        self.check(v2, "rule 5", "version 1")

    def test_outputs(self):
        self.check(lambda d: d["outputs"][0].update(value=99), "rule 6", "not defined")
        self.check(lambda d: d.update(outputs=[]), "rule 6", "no outputs")

    def test_cli_refuses_before_any_key(self):
        """`run` on an invalid program: exit 1, one line `error: ...` naming op and rule, no
        OpenFHE context (the first thing the encrypted path prints)."""
        b, doc, arrays = _base()
        doc = copy.deepcopy(doc)
        doc["rotations"] = doc["rotations"][:-1]
        with tempfile.TemporaryDirectory() as d:
            b.write(d, doc, arrays)
            x = os.path.join(d, "x.npy")
            np.save(x, gen.images(1))
            p, secs = cli("run", d, "--input", x, "--insecure", "--ring-dim", "4096")
        self.assertEqual(p.returncode, 1, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith("error: op #"), lines[0])
        self.assertIn("[rule 4: rotations]", lines[0])
        self.assertNotIn("context", p.stderr)

    def test_cli_input_errors(self):
        b, doc, arrays = _base()
        with tempfile.TemporaryDirectory() as d:
            b.write(d, doc, arrays)
            x = os.path.join(d, "x.npy")
            np.save(x, np.zeros((2, 3, 8, 7)))
            p, _ = cli("run", d, "--input", x, "--plaintext")
            self.assertEqual(p.returncode, 1)
            self.assertEqual(p.stderr.strip().count("\n"), 0)
            self.assertIn("error: input image: array of shape [2, 3, 8, 7]", p.stderr)
            np.save(x, gen.images(1))
            p, _ = cli("run", d, "--input", x, "--ring-dim", "4096")
            self.assertEqual(p.returncode, 1)
            self.assertIn("--insecure", p.stderr)
            p, _ = cli("run", os.path.join(d, "nope"), "--input", x, "--plaintext")
            self.assertEqual(p.returncode, 1)
            self.assertIn("program.json: no such file", p.stderr)

    def test_cli_plaintext_mode(self):
        b, ref = gen.small_cnn(128, seed=2)
        with tempfile.TemporaryDirectory() as d:
            b.write(d)
            x, y, r = (os.path.join(d, n) for n in ("x.npy", "y.npy", "r.json"))
            imgs = gen.images(5, seed=9)
            np.save(x, imgs)
            p, _ = cli("run", d, "--input", x, "--output", y, "--plaintext", "--report", r)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = np.load(y)
            with open(r) as f:
                rep = json.load(f)
        self.assertEqual(out.shape, (5, 10))
        for i in range(5):
            self.assertLess(gen.rel_err(out[i], ref(imgs[i])), 1e-12)
        self.assertEqual(rep["mode"], "plaintext")
        self.assertEqual(rep["counts_per_sample"]["bootstraps"], 1)

    def test_validate_command(self):
        b, _ = gen.small_cnn(128)
        with tempfile.TemporaryDirectory() as d:
            b.write(d)
            p, _ = cli("validate", d)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("valid packed program", p.stdout)

    def test_circuit_shim_imports(self):
        """scripts/openfhe_run.py (the old path) still exposes the slot-per-sample runner."""
        sys.path.insert(0, os.path.join(PKG, "..", "..", "scripts"))
        try:
            import openfhe_run
        finally:
            sys.path.pop(0)
        for name in ("load_circuit", "plain_eval", "make_context", "run_circuit", "encrypt", "decrypt", "consumed", "main"):
            self.assertTrue(hasattr(openfhe_run, name), name)


if __name__ == "__main__":
    unittest.main()
