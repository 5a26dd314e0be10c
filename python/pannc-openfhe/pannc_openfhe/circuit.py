"""Execute a pannc circuit (docs/circuit-format.md, versions 1 and 2) on OpenFHE CKKS.

Packing: slot-per-sample. Each circuit input is one ciphertext whose slots hold
that scalar for a batch of samples (up to ring_dim/2 samples). A network circuit
(`pannc compile --circuit`) has one input per input feature (`input[i]`) and one
output per output feature; `--inputs-npy X.npy` feeds an [N, features] array
(column i -> input i, N samples in the slots of one batch) and `--output-npy`
writes the decrypted outputs as [N, outputs]. There are no rotations.

Scaling: FIXEDMANUAL by default. Every ct x ct `mul` is followed by an
explicit Rescale; nothing else rescales except weighted sums (below), so a
ciphertext's GetLevel() is exactly the number of rescales on its longest path =
the circuit's `level` for that value. The runner checks that for every value it
materialises, not just the outputs. OpenFHE level-reduces the higher operand of
add/sub/mul automatically. `--scaling flexibleauto` is offered for comparison:
OpenFHE then rescales lazily before the next multiplication, so the consumed
levels of a value are GetLevel() + GetNoiseScaleDeg() - 1 (the pending rescale
counts).

Weighted sums are fused: `mul_const`, `mul_int`, `neg`, `add`, `sub` and
`add_const` build an unevaluated form `sum_i c_i*ct_i + c0` over ciphertexts
(a form read by several ops is materialised once, at its first use); a form is
materialised when a `mul` or an output needs it: every term with a real
coefficient is multiplied without rescaling, the products are summed, and the
sum is rescaled once (one level, as the circuit says: the level of the sum is
max over its terms); integer coefficients are double-and-add (no level). This
is how a linear layer with 64 inputs costs one rescale per output, not 64.
Values that only ever live inside a form are never ciphertexts; the report
counts them (`values_fused`) and checks the levels of all the others.

Bootstraps (format version 2): `--bootstrap oracle` refreshes the listed
ciphertexts by decrypting and re-encrypting them at level 0 (a stand-in that
checks the level plan and the numerics; it is *not* a homomorphic bootstrap and
the report says so). Without it, a circuit with bootstrap points is refused.

Setup: `scripts/test` creates `.venv-fhe` (CPython 3.10, the `openfhe==1.6.1.0.22.4` wheel, numpy)
and installs this package (`python/pannc-openfhe`) into it.

Usage (`scripts/openfhe_run.py` is a shim that runs this module):
    .venv-fhe/bin/python -m pannc_openfhe circuit circuit.json [--samples 8192]
        [--input u=values.npy] [--inputs-npy X.npy] [--output-npy Y.npy]
        [--scaling fixedmanual|flexibleauto] [--ring-dim 16384] [--scale-bits 50]
        [--first-mod-bits 60] [--depth-margin 0] [--threads N]
        [--bootstrap oracle] [--report out.json]

Exit status 0 when every checked value's OpenFHE level equals the planned level and
the max |OpenFHE - plaintext| is below --tol (default 1e-6), else 1.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

FORMAT = "pannc-circuit"
VERSIONS = (1, 2)


def load_circuit(path):
    with open(path) as f:
        c = json.load(f)
    if c.get("format") != FORMAT or c.get("version") not in VERSIONS:
        raise ValueError(f"{path}: not a {FORMAT} document of version {VERSIONS}")
    if c.get("bootstraps") and c["version"] < 2:
        raise ValueError(f"{path}: bootstraps need format version 2")
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
    """CKKS context with exactly `depth` levels (insecure test parameters)."""
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


class Form:
    """Unevaluated sum_i real[i]*ct_i + sum_j intg[j]*ct_j + const over materialised values."""

    __slots__ = ("real", "intg", "const")

    def __init__(self, real=None, intg=None, const=0.0):
        self.real = real if real is not None else {}
        self.intg = intg if intg is not None else {}
        self.const = const

    def copy(self):
        return Form(dict(self.real), dict(self.intg), self.const)

    def scale_int(self, k):
        return Form({v: c * k for v, c in self.real.items()}, {v: c * k for v, c in self.intg.items()}, self.const * k)

    def add(self, other, sign):
        """self += sign * other (in place)."""
        for v, c in other.real.items():
            self.real[v] = self.real.get(v, 0.0) + sign * c
        for v, c in other.intg.items():
            self.intg[v] = self.intg.get(v, 0) + sign * c
        self.const += sign * other.const
        return self


def run_circuit(cc, keys, circuit, inputs, scaling="fixedmanual", bootstrap=None):
    """Encrypt `inputs`, execute every op, decrypt the outputs.

    Returns a dict with outputs (decrypted arrays), levels (consumed levels of
    every materialised value, None for fused ones), level_mismatches (values
    whose consumed level differs from the planned one), seconds (execution
    time without keygen/encryption), values_fused, bootstrapped.
    """
    n = len(inputs[0])
    consts = circuit["constants"]
    manual = scaling == "fixedmanual"
    n_in = len(circuit["inputs"])
    ops = circuit["ops"]
    plan = planned_levels(circuit)
    # How often each value is read (outputs count): forms read more than once are materialised.
    uses = [0] * (n_in + len(ops))
    for op in ops:
        uses[op["a"]] += 1
        if "b" in op:
            uses[op["b"]] += 1
    for o in circuit["outputs"]:
        uses[o["value"]] += 1
    points = {}
    for bp in circuit.get("bootstraps", []):
        points[bp["before_op"]] = bp["values"]
    if points and bootstrap != "oracle":
        raise ValueError("the circuit has bootstrap points: pass --bootstrap oracle")
    last_use = [-1] * (n_in + len(ops))
    for i, op in enumerate(ops):
        last_use[op["a"]] = i
        if "b" in op:
            last_use[op["b"]] = i
    for o in circuit["outputs"]:
        last_use[o["value"]] = len(ops)
    vals = [encrypt(cc, keys, x) for x in inputs]
    levels = [consumed(v, scaling) for v in vals]
    mismatches = [(i, plan[i], levels[i]) for i in range(n_in) if plan[i] != levels[i]]
    plan_now = list(plan)  # planned level now (0 after a refresh)

    def mat(v):
        x = vals[v]
        if not isinstance(x, Form):
            return x
        acc = None
        if x.real:
            for u, c in x.real.items():
                p = cc.EvalMult(vals[u], float(c))
                if acc is None:
                    acc = p
                else:
                    cc.EvalAddInPlace(acc, p)
            if manual:
                acc = cc.Rescale(acc)
        for u, k in x.intg.items():
            t = mul_int(cc, vals[u], int(k))
            acc = t if acc is None else cc.EvalAdd(acc, t)
        if acc is None:
            raise ValueError(f"value {v} is a constant without a ciphertext")
        if x.const != 0.0:
            acc = cc.EvalAdd(acc, float(x.const))
        vals[v] = acc
        lv = consumed(acc, scaling)
        levels[v] = lv
        if lv != plan_now[v]:
            mismatches.append((v, plan_now[v], lv))
        return acc

    def form(v):
        """The value as a form that may be modified (a single-use form is taken over)."""
        x = vals[v]
        if isinstance(x, Form):
            if uses[v] > 1:
                mat(v)
                return Form(intg={v: 1})
            return x
        return Form(intg={v: 1})

    def plain_ct(v):
        """Operand for a real scalar product: must be a ciphertext."""
        return mat(v) if isinstance(vals[v], Form) else vals[v]

    bootstrapped = 0

    def refresh(k, vs):
        """Bootstrap point before op k, executed as an oracle: decrypt and re-encrypt at level
        0. Every live value is materialised first, so no pending form sees a refreshed operand."""
        nonlocal bootstrapped
        for v in range(n_in + k):
            if last_use[v] >= k:
                mat(v)
        for v in vs:
            pt = cc.Decrypt(vals[v], keys.secretKey)
            pt.SetLength(n)
            vals[v] = encrypt(cc, keys, pt.GetRealPackedValue()[:n])
            plan_now[v] = 0
            bootstrapped += 1
            lv = consumed(vals[v], scaling)
            if lv != 0:
                mismatches.append((v, 0, lv))

    t0 = time.time()
    for i, op in enumerate(ops):
        if i in points:
            refresh(i, points[i])
        k = op["op"]
        a = op["a"]
        out = n_in + i
        if k == "mul":
            r = cc.EvalMult(mat(a), mat(op["b"]))
            if manual:
                r = cc.Rescale(r)
        elif k == "mul_const":
            plain_ct(a)
            r = Form(real={a: consts[op["c"]]})
        elif k in ("mul_int", "neg"):
            f = form(a)
            r = f.scale_int(int(op["k"]) if k == "mul_int" else -1)
        elif k in ("add", "sub"):
            f = form(a)
            g = form(op["b"])
            if f is g:
                g = g.copy()
            r = f.add(g, 1 if k == "add" else -1)
        elif k == "add_const":
            r = form(a)
            r.const += consts[op["c"]]
        else:
            raise ValueError(f"unknown op {k}")
        vals.append(r)
        levels.append(None)
        if not isinstance(r, Form):
            lv = consumed(r, scaling)
            levels[out] = lv
            if lv != plan_now[out]:
                mismatches.append((out, plan_now[out], lv))
    if len(ops) in points:
        refresh(len(ops), points[len(ops)])
    outs_ct = [mat(o["value"]) for o in circuit["outputs"]]
    seconds = time.time() - t0
    fused = sum(1 for lv in levels if lv is None)
    outputs = [decrypt(cc, keys, ct, n) for ct in outs_ct]
    out_levels = [consumed(ct, scaling) for ct in outs_ct]
    return {
        "outputs": outputs,
        "levels": levels,
        "output_levels": out_levels,
        "level_mismatches": mismatches,
        "seconds": seconds,
        "values_fused": fused,
        "bootstrapped": bootstrapped,
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


def main(argv=None, prog=None):
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("circuit")
    ap.add_argument("--samples", type=int, default=None, help="samples per input (default ring_dim/2, or all rows of --inputs-npy that fit)")
    ap.add_argument("--input", action="append", default=[], help="NAME=file.npy (1-D float array)")
    ap.add_argument("--inputs-npy", help="[N, inputs] array: column i feeds circuit input i (a network's input features)")
    ap.add_argument("--output-npy", help="write the decrypted outputs here as an [N, outputs] float64 array")
    ap.add_argument("--plain-npy", help="write the float64 plaintext evaluation of the outputs here ([N, outputs])")
    ap.add_argument("--scaling", choices=["fixedmanual", "flexibleauto"], default="fixedmanual")
    ap.add_argument("--ring-dim", type=int, default=1 << 14)
    ap.add_argument("--scale-bits", type=int, default=50)
    ap.add_argument("--first-mod-bits", type=int, default=60)
    ap.add_argument("--depth-margin", type=int, default=0, help="extra levels in the CKKS context (default 0: exactly the planned depth)")
    ap.add_argument("--threads", type=int, default=None, help="OpenMP threads for OpenFHE (default: OpenMP's choice)")
    ap.add_argument("--bootstrap", choices=["oracle"], default=None,
                    help="how to execute bootstrap points (version 2): oracle = decrypt/re-encrypt stand-in")
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", help="write a JSON summary here")
    a = ap.parse_args(argv)
    if a.threads:
        os.environ["OMP_NUM_THREADS"] = str(a.threads)

    circuit = load_circuit(a.circuit)
    slots = a.ring_dim // 2
    n = min(a.samples or slots, slots)
    if a.inputs_npy:
        x = np.load(a.inputs_npy).astype(np.float64)
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != len(circuit["inputs"]):
            raise SystemExit(
                f"--inputs-npy has {x.shape[1]} features per sample, the circuit has {len(circuit['inputs'])} inputs"
            )
        n = min(n, x.shape[0])
        xs = [x[:n, i].copy() for i in range(x.shape[1])]
    else:
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
    res = run_circuit(cc, keys, circuit, xs, a.scaling, a.bootstrap)
    plain = plain_eval(circuit, xs)
    errs = [float(np.max(np.abs(y - plain[o["value"]]))) for y, o in zip(res["outputs"], circuit["outputs"])]
    if a.output_npy:
        np.save(a.output_npy, np.stack(res["outputs"], axis=1))
    if a.plain_npy:
        np.save(a.plain_npy, np.stack([plain[o["value"]] for o in circuit["outputs"]], axis=1))
    summary = {
        "circuit": circuit["name"],
        "format_version": circuit["version"],
        "samples": n,
        "inputs": len(circuit["inputs"]),
        "outputs": len(circuit["outputs"]),
        "ops": len(circuit["ops"]),
        "scaling": a.scaling,
        "ring_dim": a.ring_dim,
        "security": "HEStd_NotSet (insecure test parameters)",
        "context_depth": depth,
        "planned_depth": circuit["depth"],
        "levels_consumed": res["output_levels"],
        "values_checked": sum(1 for lv in res["levels"] if lv is not None),
        "values_fused": res["values_fused"],
        "level_mismatches": res["level_mismatches"][:20],
        "bootstrapped": res["bootstrapped"],
        "bootstrap_mode": "oracle (decrypt/re-encrypt stand-in, not homomorphic)" if res["bootstrapped"] else None,
        "max_abs_err_vs_plaintext": errs,
        "ct_ct_mults": sum(1 for op in circuit["ops"] if op["op"] == "mul"),
        "setup_seconds": round(setup, 3),
        "eval_seconds": round(res["seconds"], 3),
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }
    print(json.dumps(summary, indent=2))
    if a.report:
        with open(a.report, "w") as f:
            json.dump(summary, f, indent=2)
    ok = not res["level_mismatches"] and all(e < a.tol for e in errs)
    if a.scaling == "fixedmanual" and not circuit.get("bootstraps"):
        ok = ok and max(res["output_levels"]) == circuit["depth"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
