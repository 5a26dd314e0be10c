#!/usr/bin/env python3
"""Execute a pannc circuit (docs/circuit-format.md, version 1) on OpenFHE CKKS.

Packing: slot-per-sample. Each circuit input is one ciphertext whose slots hold
that scalar for a batch of samples (up to ring_dim/2 samples).

Scaling: FIXEDMANUAL by default. Every `mul` and `mul_const` is followed by an
explicit Rescale, nothing else rescales, so a ciphertext's GetLevel() is
exactly the number of rescales on its longest path = the circuit's `level` for
that value. The runner checks that for *every* value, not just the output.
OpenFHE level-reduces the higher operand of add/sub/mul automatically.
`--scaling flexibleauto` is offered for comparison: OpenFHE then rescales lazily
before the next multiplication, so the consumed levels of a value are
GetLevel() + GetNoiseScaleDeg() - 1 (the pending rescale counts).

Integer scalars (`mul_int`) are executed by double-and-add with EvalAdd, so
they consume no level, as the cost model says.

Setup (the openfhe wheel needs glibc/libstdc++ of Ubuntu 22.04 here, i.e. the
`.22.4` build for CPython 3.10):
    ~/.pyenv/versions/3.10.13/bin/python3 -m venv /work/fhe-venv
    /work/fhe-venv/bin/pip install 'openfhe==1.6.1.0.22.4' numpy

Usage:
    /work/fhe-venv/bin/python scripts/openfhe_run.py circuit.json [--samples 8192]
        [--input u=values.npy] [--scaling fixedmanual|flexibleauto]
        [--ring-dim 16384] [--scale-bits 50] [--first-mod-bits 60]
        [--depth-margin 0] [--report out.json]

Exit status 0 when every value's OpenFHE level equals the planned level and
the max |OpenFHE − plaintext| is below --tol (default 1e-6), else 1.
"""

import argparse
import json
import sys
import time

import numpy as np

FORMAT = "pannc-circuit"
VERSION = 1


def load_circuit(path):
    with open(path) as f:
        c = json.load(f)
    if c.get("format") != FORMAT or c.get("version") != VERSION:
        raise ValueError(f"{path}: not a {FORMAT} version {VERSION} document")
    n_in = len(c["inputs"])
    for i, inp in enumerate(c["inputs"]):
        if inp["value"] != i:
            raise ValueError(f"input #{i} must have value id {i}")
    for i, op in enumerate(c["ops"]):
        if op["out"] != n_in + i:
            raise ValueError(f"op #{i} ({op['op']}) must define value {n_in + i}")
    return c


def plain_eval(circuit, inputs):
    """Float64 evaluation of every value. `inputs`: list of arrays, one per input."""
    consts = circuit["constants"]
    vals = [np.asarray(x, dtype=np.float64) for x in inputs]
    for op in circuit["ops"]:
        k = op["op"]
        a = vals[op["a"]]
        if k == "add":
            r = a + vals[op["b"]]
        elif k == "sub":
            r = a - vals[op["b"]]
        elif k == "neg":
            r = -a
        elif k == "mul":
            r = a * vals[op["b"]]
        elif k == "mul_const":
            r = a * consts[op["c"]]
        elif k == "mul_int":
            r = a * float(op["k"])
        elif k == "add_const":
            r = a + consts[op["c"]]
        else:
            raise ValueError(f"unknown op {k}")
        vals.append(r)
    return vals


def planned_levels(circuit):
    lv = [inp.get("level", 0) for inp in circuit["inputs"]]
    for op in circuit["ops"]:
        lv.append(op["level"])
    return lv


def make_context(depth, ring_dim=1 << 14, scale_bits=50, first_mod_bits=60, scaling="fixedmanual", batch=None):
    import openfhe as ofhe

    p = ofhe.CCParamsCKKSRNS()
    p.SetMultiplicativeDepth(depth)
    p.SetScalingModSize(scale_bits)
    p.SetFirstModSize(first_mod_bits)
    p.SetRingDim(ring_dim)
    p.SetSecurityLevel(ofhe.SecurityLevel.HEStd_NotSet)  # insecure test parameters
    p.SetBatchSize(batch or ring_dim // 2)
    tech = {
        "fixedmanual": ofhe.ScalingTechnique.FIXEDMANUAL,
        "flexibleauto": ofhe.ScalingTechnique.FLEXIBLEAUTO,
    }[scaling]
    p.SetScalingTechnique(tech)
    cc = ofhe.GenCryptoContext(p)
    for f in (
        ofhe.PKESchemeFeature.PKE,
        ofhe.PKESchemeFeature.KEYSWITCH,
        ofhe.PKESchemeFeature.LEVELEDSHE,
        ofhe.PKESchemeFeature.ADVANCEDSHE,
    ):
        cc.Enable(f)
    keys = cc.KeyGen()
    cc.EvalMultKeyGen(keys.secretKey)
    return cc, keys


def consumed(ct, scaling):
    """Levels a ciphertext has consumed (see module doc)."""
    if scaling == "fixedmanual":
        return ct.GetLevel()
    return ct.GetLevel() + ct.GetNoiseScaleDeg() - 1


def encrypt(cc, keys, values):
    return cc.Encrypt(keys.publicKey, cc.MakeCKKSPackedPlaintext([float(v) for v in values]))


def decrypt(cc, keys, ct, n):
    pt = cc.Decrypt(ct, keys.secretKey)
    pt.SetLength(n)
    return np.array(pt.GetRealPackedValue()[:n])


def mul_int(cc, ct, k):
    """ct × k by double-and-add (no rescale, no level)."""
    if k == 0:
        return cc.EvalSub(ct, ct)
    neg = k < 0
    k = abs(k)
    acc = None
    base = ct
    while k:
        if k & 1:
            acc = base if acc is None else cc.EvalAdd(acc, base)
        k >>= 1
        if k:
            base = cc.EvalAdd(base, base)
    return cc.EvalNegate(acc) if neg else acc


def run_circuit(cc, keys, circuit, inputs, scaling="fixedmanual"):
    """Encrypt `inputs`, execute every op, decrypt the outputs.

    Returns a dict with outputs (decrypted arrays), levels (consumed levels of
    every value), level_mismatches (values whose consumed level differs from
    the planned one), seconds (execution time without keygen/encryption).
    """
    n = len(inputs[0])
    consts = circuit["constants"]
    manual = scaling == "fixedmanual"
    vals = [encrypt(cc, keys, x) for x in inputs]
    t0 = time.time()
    for op in circuit["ops"]:
        k = op["op"]
        a = vals[op["a"]]
        if k == "add":
            r = cc.EvalAdd(a, vals[op["b"]])
        elif k == "sub":
            r = cc.EvalSub(a, vals[op["b"]])
        elif k == "neg":
            r = cc.EvalNegate(a)
        elif k == "mul":
            r = cc.EvalMult(a, vals[op["b"]])
            if manual:
                r = cc.Rescale(r)
        elif k == "mul_const":
            r = cc.EvalMult(a, float(consts[op["c"]]))
            if manual:
                r = cc.Rescale(r)
        elif k == "mul_int":
            r = mul_int(cc, a, int(op["k"]))
        elif k == "add_const":
            r = cc.EvalAdd(a, float(consts[op["c"]]))
        else:
            raise ValueError(f"unknown op {k}")
        vals.append(r)
    seconds = time.time() - t0
    levels = [consumed(v, scaling) for v in vals]
    plan = planned_levels(circuit)
    mismatches = [(i, plan[i], levels[i]) for i in range(len(vals)) if plan[i] != levels[i]]
    outputs = [decrypt(cc, keys, vals[o["value"]], n) for o in circuit["outputs"]]
    out_levels = [levels[o["value"]] for o in circuit["outputs"]]
    return {
        "outputs": outputs,
        "levels": levels,
        "output_levels": out_levels,
        "level_mismatches": mismatches,
        "seconds": seconds,
    }


def sample_inputs(circuit, n, seed=0):
    rng = np.random.default_rng(seed)
    xs = []
    for inp in circuit["inputs"]:
        lo, hi = inp.get("range") or [-1.0, 1.0]
        x = rng.uniform(lo, hi, n)
        x[:2] = [lo, hi]
        xs.append(x)
    return xs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("circuit")
    ap.add_argument("--samples", type=int, default=None, help="random samples per input (default ring_dim/2)")
    ap.add_argument("--input", action="append", default=[], help="NAME=file.npy (1-D float array)")
    ap.add_argument("--scaling", choices=["fixedmanual", "flexibleauto"], default="fixedmanual")
    ap.add_argument("--ring-dim", type=int, default=1 << 14)
    ap.add_argument("--scale-bits", type=int, default=50)
    ap.add_argument("--first-mod-bits", type=int, default=60)
    ap.add_argument("--depth-margin", type=int, default=0, help="extra levels in the CKKS context (default 0: exactly the planned depth)")
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", help="write a JSON summary here")
    a = ap.parse_args(argv)

    circuit = load_circuit(a.circuit)
    slots = a.ring_dim // 2
    n = min(a.samples or slots, slots)
    xs = sample_inputs(circuit, n, a.seed)
    given = dict(s.split("=", 1) for s in a.input)
    for i, inp in enumerate(circuit["inputs"]):
        if inp["name"] in given:
            xs[i] = np.load(given[inp["name"]]).astype(np.float64).ravel()[:slots]
    n = min(len(x) for x in xs)
    xs = [x[:n] for x in xs]

    depth = circuit["depth"] + a.depth_margin
    t0 = time.time()
    cc, keys = make_context(max(depth, 1), a.ring_dim, a.scale_bits, a.first_mod_bits, a.scaling)
    setup = time.time() - t0
    res = run_circuit(cc, keys, circuit, xs, a.scaling)
    plain = plain_eval(circuit, xs)
    errs = [float(np.max(np.abs(y - plain[o["value"]]))) for y, o in zip(res["outputs"], circuit["outputs"])]
    summary = {
        "circuit": circuit["name"],
        "samples": n,
        "scaling": a.scaling,
        "ring_dim": a.ring_dim,
        "context_depth": depth,
        "planned_depth": circuit["depth"],
        "levels_consumed": res["output_levels"],
        "values_checked": len(res["levels"]),
        "level_mismatches": res["level_mismatches"][:20],
        "max_abs_err_vs_plaintext": errs,
        "ct_ct_mults": sum(1 for op in circuit["ops"] if op["op"] == "mul"),
        "setup_seconds": round(setup, 3),
        "eval_seconds": round(res["seconds"], 3),
    }
    print(json.dumps(summary, indent=2))
    if a.report:
        with open(a.report, "w") as f:
            json.dump(summary, f, indent=2)
    ok = not res["level_mismatches"] and all(e < a.tol for e in errs)
    if a.scaling == "fixedmanual":
        ok = ok and max(res["output_levels"]) == circuit["depth"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
