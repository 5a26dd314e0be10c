"""Encrypted execution on OpenFHE at insecure test sizes (ring 2^12), against the plaintext
semantics and against independent dense references; real bootstraps."""

import json
import os
import sys
import tempfile
import unittest

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before openfhe loads: CI machines are shared

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import gen  # noqa: E402
from test_plain import cli  # noqa: E402
from pannc_openfhe import plain, program  # noqa: E402
from pannc_openfhe.ckks import Params, Runner, make_context  # noqa: E402

RING = 1 << 12
QUIET = lambda s: None  # noqa: E731


def load(builder):
    with tempfile.TemporaryDirectory() as d:
        return program.load(builder.write(d))


class Encrypted(unittest.TestCase):
    def test_cli_small_cnn_with_a_real_bootstrap(self):
        """Sparse packing (128 slots in ring 2^12), strided conv from 2 ciphertexts to 1, poly,
        x0.5, bootstrap, rotation, add, poly, dense: two images through the CLI."""
        b, ref = gen.small_cnn(128, seed=0)
        imgs = gen.images(2, seed=4)
        with tempfile.TemporaryDirectory() as d:
            b.write(d)
            x, y, r = (os.path.join(d, n) for n in ("x.npy", "y.npy", "r.json"))
            np.save(x, imgs)
            p, secs = cli("run", d, "--input", x, "--output", y, "--insecure", "--ring-dim", str(RING),
                          "--threads", "1", "--report", r, "--tol", "1e-4", timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = np.load(y)
            with open(r) as f:
                rep = json.load(f)
        self.assertIn("INSECURE", p.stderr)
        self.assertEqual((rep["ring_dim"], rep["insecure"], rep["sparse_packing"]), (RING, True, True))
        self.assertEqual(rep["context_depth"], 5 + 1 + rep["bootstrap_depth"])
        self.assertEqual(rep["keys"]["program_rotation_keys"], len(b.doc()["rotations"]))
        self.assertEqual(out.shape, (2, 10))
        for s in range(2):
            ps = rep["per_sample"][s]
            self.assertEqual(ps["counts"]["bootstraps"], 1)
            self.assertEqual(ps["level_mismatches"], [])
            self.assertGreater(ps["levels_checked"], 20)
            self.assertTrue(all(ps["argmax_agree"]))
            self.assertLess(ps["output_rel_err"][0], 1e-4)
            boot = [o for o in ps["ops"] if o["kind"] == "bootstrap"][0]
            self.assertEqual(boot["openfhe_level"], [0])
            # The bootstrap really ran: it takes time and leaves CKKS-sized noise (a
            # decrypt/re-encrypt stand-in would leave ~1e-13).
            self.assertGreater(boot["seconds"], 0.3)
            self.assertGreater(boot["max_abs_err"], 1e-10)
            self.assertLess(boot["max_abs_err"], 1e-4)
            self.assertLess(gen.rel_err(out[s], ref(imgs[s])), 1e-4)
            self.assertEqual(int(np.argmax(out[s])), int(np.argmax(ref(imgs[s]))))

    def test_multi_ciphertext_bootstrap_of_a_pending_product(self):
        b, ref = gen.boot_mix(64)
        prog = load(b)
        self.assertEqual(prog.cts(prog.ops[2]["in"]), 2)
        run = Runner(prog, Params(prog, ring_dim=RING, insecure=True), log=QUIET)
        img = gen.images(1, seed=3)[0][:2]
        want, vals = plain.run(prog, [img])
        out, rec = run.run([img], ref_vals=vals, progress=False)
        self.assertEqual(rec["counts"]["bootstraps"], 2)
        self.assertEqual(rec["level_mismatches"], [])
        self.assertLess(gen.rel_err(out[0], want[0]), 1e-4)
        self.assertLess(gen.rel_err(out[0], ref(img)), 1e-4)

    def test_multiplexed_layout_with_bootstrap(self):
        b, ref = gen.mux_cnn(64, seed=1)
        prog = load(b)
        run = Runner(prog, Params(prog, ring_dim=RING, insecure=True), log=QUIET)
        img = gen.images(1, seed=8)[0][:2]
        want, vals = plain.run(prog, [img])
        out, rec = run.run([img], ref_vals=vals, progress=False)
        self.assertEqual(rec["counts"]["bootstraps"], 1)
        self.assertEqual(rec["level_mismatches"], [])
        self.assertLess(gen.rel_err(out[0], want[0]), 1e-4)
        self.assertLess(gen.rel_err(out[0], ref(img)), 1e-4)

    def test_full_packing_without_bootstrap_and_level_checks_fail_when_wrong(self):
        b, ref = gen.small_cnn(RING // 2, seed=1, bootstrap=False)
        prog = load(b)
        run = Runner(prog, Params(prog, ring_dim=RING, insecure=True), log=QUIET)
        self.assertEqual(run.depth, prog.depth + 1)  # no bootstrap: the program's depth + 1 (headroom)
        img = gen.images(1, seed=6)[0]
        want, vals = plain.run(prog, [img])
        out, rec = run.run([img], ref_vals=vals, progress=False)
        self.assertEqual(rec["level_mismatches"], [])
        self.assertLess(gen.rel_err(out[0], want[0]), 1e-8)
        self.assertLess(gen.rel_err(out[0], ref(img)), 1e-8)
        # The level check is live: a program whose first op claims one level more than
        # OpenFHE spends is reported (every ciphertext of that value).
        prog.ops[0]["level"] += 1
        _, rec = run.run([img], progress=False)
        self.assertEqual([m["what"] for m in rec["level_mismatches"]], ["op #0 (linear) value 1 ct 0"])
        self.assertEqual(rec["level_mismatches"][0]["openfhe"], 1)

    def test_bsgs_with_every_baby_step_split(self):
        """Random sparse maps between multi-ciphertext tensors with n1 = 1 (giant steps only),
        3, and S (baby steps only), chained with an add: decrypted = A2 (A1 x + b1) + ..."""
        S = 32
        rng = np.random.default_rng(11)
        A1 = rng.normal(size=(70, 45)) * (rng.uniform(size=(70, 45)) < 0.2)
        A2 = rng.normal(size=(70, 70)) * (rng.uniform(size=(70, 70)) < 0.1)
        A3 = rng.normal(size=(9, 70)) * 0.3
        b1, b2, b3 = rng.normal(size=70), rng.normal(size=70), rng.normal(size=9)
        x = rng.uniform(-1, 1, 45)
        for n1 in (1, 3, S):
            b = gen.Builder(S)
            v = b.input("x", [45])
            h = b.linear(v, A1, b1, [70], n1=n1)
            g = b.linear(h, A2, b2, [70], n1=n1)
            s = b.add(h, g)
            y = b.linear(s, A3, b3, [9], n1=n1)
            b.output("y", y)
            prog = load(b)
            run = Runner(prog, Params(prog, ring_dim=RING, insecure=True), log=QUIET)
            out, rec = run.run([x], progress=False)
            h_ = A1 @ x + b1
            want = A3 @ (h_ + A2 @ h_ + b2) + b3
            self.assertEqual(rec["level_mismatches"], [])
            self.assertLess(gen.rel_err(out[0], want), 1e-9, n1)
            if n1 == 1:
                self.assertEqual(rec["counts"]["baby_rotations"], 0)
            if n1 == S:
                self.assertEqual(rec["counts"]["giant_rotations"], 0)

    def test_default_parameters_are_128_bit_secure(self):
        """Without --insecure the runner asks for HEStd_128_classic and lets OpenFHE pick the
        ring: at this depth (26 with bootstrapping) that is 2^17 (context only, no keys)."""
        b, _ = gen.small_cnn(128)
        prog = load(b)
        cc, depth, _ = make_context(prog, Params(prog))
        self.assertEqual(depth, 26)
        self.assertEqual(cc.GetRingDimension(), 1 << 17)
        with self.assertRaises(Exception):
            make_context(prog, Params(prog, ring_dim=RING))  # 2^12 at 128-bit: OpenFHE refuses


if __name__ == "__main__":
    unittest.main()
