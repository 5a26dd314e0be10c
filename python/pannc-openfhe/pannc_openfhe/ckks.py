"""OpenFHE CKKS execution of packed programs (docs/packed-format.md).

Parameters follow the recipe measured in the design notes (§7): uniform-ternary (or sparse-ternary)
secret, HYBRID key switching, FLEXIBLEAUTO scaling with a 59-bit scaling modulus and a 60-bit first
modulus, setup order EvalBootstrapSetup -> KeyGen -> EvalMultKeyGen -> EvalBootstrapKeyGen(sk, S)
-> EvalRotateKeyGen(sk, rotations), every plaintext encoded with S slots (sparse packing when
ring_dim / 2 > S).

Levels. FLEXIBLEAUTO rescales lazily (before the next multiplication), so a ciphertext has
consumed `GetLevel() + GetNoiseScaleDeg() - 1` levels. The context has
`depth = L + bootstrap depth` levels (bootstrap depth 0 when the program has no bootstrap) with
`L = program depth + 1`: one level more than any value consumes, because
- OpenFHE's EvalBootstrap spends one level of its input on its scaling adjustment: an input with
  no level left fails with `DropLastElement(): Removing last element of DCRTPoly renders it
  invalid` (measured);
- with a 60-bit first modulus and a 59-bit scale, a value at the last level decrypts correctly
  only while |x| < 1 (one bit of headroom; measured: logits of size 27 came back as garbage),
  and one more level gives 59 bits of headroom.
Inputs are encrypted at OpenFHE level `base = depth - L`, where a bootstrap's output also lands
(measured: consumed 20 = bootstrap depth for level budget [3, 3] and a uniform-ternary secret), so
a value's program level is its consumed levels minus `base`, and the runner checks that for every
ciphertext of every value.

`Rescale`, `ModReduce` and `LevelReduce` are no-ops under FLEXIBLEAUTO in this wheel (measured);
`Compress(ct, towers)` rescales a pending product and drops towers, which the runner uses to
rescale linear-op inputs once (not once per plaintext product) and to drop bootstrap inputs to
their last level.
"""

import os
import resource
import sys
import time

import numpy as np

from . import plain
from .circuit import Form, mul_int
from .program import is_integer


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Params:
    """What the runner will ask OpenFHE for, decided before any key exists."""

    def __init__(self, prog, ring_dim=None, insecure=False, scale_bits=None, first_mod_bits=None,
                 secret=None, level_budget=None, extra_levels=0):
        ck = prog.ckks
        boot = ck.get("bootstrap") or {}
        self.slots = prog.slots
        self.bootstraps = bool(prog.bootstrap_ops())
        self.scale_bits = scale_bits or ck.get("scale_bits") or 59
        self.first_mod_bits = first_mod_bits or ck.get("first_mod_bits") or 60
        self.secret = secret or boot.get("secret", "uniform_ternary")
        self.level_budget = list(level_budget or boot.get("level_budget", [3, 3]))
        self.input_bound = float(boot.get("input_bound", 1.0))
        self.insecure = insecure
        self.ring_dim = ring_dim
        if ring_dim is not None:
            if ring_dim & (ring_dim - 1) or ring_dim < 2 * prog.slots:
                raise ValueError(f"--ring-dim {ring_dim}: must be a power of two >= 2 * slots = {2 * prog.slots}")
        elif insecure:
            self.ring_dim = 2 * prog.slots  # the smallest that holds the program's slots
        self.margin = 1  # see the module doc
        self.levels = max(prog.depth + self.margin + extra_levels, 1)

    def describe(self):
        return {
            "ring_dim_requested": self.ring_dim,
            "slots": self.slots,
            "scale_bits": self.scale_bits,
            "first_mod_bits": self.first_mod_bits,
            "levels_between_bootstraps": self.levels,
            "bootstrap_margin_levels": self.margin,
            "secret": self.secret,
            "level_budget": self.level_budget if self.bootstraps else None,
            "security": "HEStd_NotSet" if self.insecure else "HEStd_128_classic",
        }


def make_context(prog, params):
    """The CKKS context for a program: (cc, multiplicative depth, bootstrap depth). No keys."""
    import openfhe as ofhe

    secret = {"uniform_ternary": ofhe.UNIFORM_TERNARY, "sparse_ternary": ofhe.SPARSE_TERNARY}[params.secret]
    boot_depth = ofhe.CryptoContext.GetBootstrapDepth(params.level_budget, secret) if params.bootstraps else 0
    depth = params.levels + boot_depth
    p = ofhe.CCParamsCKKSRNS()
    p.SetMultiplicativeDepth(depth)
    p.SetScalingModSize(params.scale_bits)
    p.SetFirstModSize(params.first_mod_bits)
    p.SetScalingTechnique(ofhe.FLEXIBLEAUTO)
    p.SetKeySwitchTechnique(ofhe.HYBRID)
    p.SetSecretKeyDist(secret)
    p.SetBatchSize(prog.slots)
    p.SetSecurityLevel(ofhe.HEStd_NotSet if params.insecure else ofhe.HEStd_128_classic)
    if params.ring_dim:
        p.SetRingDim(params.ring_dim)
    cc = ofhe.GenCryptoContext(p)
    feats = [ofhe.PKE, ofhe.KEYSWITCH, ofhe.LEVELEDSHE, ofhe.ADVANCEDSHE]
    if params.bootstraps:
        feats.append(ofhe.FHE)
    for f in feats:
        cc.Enable(f)
    return cc, depth, boot_depth


class Runner:
    """A CKKS context with keys for one program; `run(sample)` executes it on one sample."""

    def __init__(self, prog, params, log=None, trace=True, stage=None, on_stage=None):
        import openfhe as ofhe

        self.o = ofhe
        self.prog = prog
        self.P = params
        self.log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self.trace = trace
        self.S = prog.slots
        self.times = {}
        self._on_stage = on_stage
        self._stage = stage if stage is not None else {}
        self._stage["times"] = self.times
        self.stage = "context"
        t0 = time.time()
        cc, self.depth, self.boot_depth = make_context(prog, params)
        self.base = self.depth - params.levels
        self.cc = cc
        self.ring_dim = cc.GetRingDimension()
        self.M = cc.GetCyclotomicOrder()
        try:
            self.log_q = int(cc.GetElementParams().GetModulus()).bit_length()  # exact, Python int
        except Exception:
            self.log_q = None
        if self.ring_dim < 2 * self.S:
            raise ValueError(f"OpenFHE chose ring dimension {self.ring_dim} < 2 * slots = {2 * self.S}")
        self.times["context"] = time.time() - t0
        self.log(f"context: ring dim {self.ring_dim} ({'INSECURE HEStd_NotSet' if params.insecure else 'HEStd_128_classic'}), "
                 f"slots {self.S}{' (sparse packing)' if self.ring_dim > 2 * self.S else ''}, depth {self.depth} "
                 f"= {params.levels} levels + {self.boot_depth} for bootstrapping, log2 Q = {self.log_q}, "
                 f"scale 2^{params.scale_bits}, first modulus 2^{params.first_mod_bits} ({self.times['context']:.1f} s)")
        self.stage = "bootstrap setup"
        if params.bootstraps:
            t = time.time()
            cc.EvalBootstrapSetup(params.level_budget, [0, 0], self.S)
            self.times["bootstrap_setup"] = time.time() - t
            self.log(f"bootstrap setup (precomputed encodings) {self.times['bootstrap_setup']:.1f} s, peak RSS {peak_rss_mb():.0f} MB")
        self.stage = "key generation"
        t = time.time()
        self.keys = cc.KeyGen()
        cc.EvalMultKeyGen(self.keys.secretKey)
        self.times["keygen"] = time.time() - t
        self.rss_keys = {"after_keygen_mb": peak_rss_mb()}
        self.stage = "bootstrap keys"
        if params.bootstraps:
            t = time.time()
            cc.EvalBootstrapKeyGen(self.keys.secretKey, self.S)
            self.times["bootstrap_keygen"] = time.time() - t
            self.log(f"bootstrap keys for {self.S} slots, level budget {params.level_budget} ({self.times['bootstrap_keygen']:.1f} s)")
            self.rss_keys["after_bootstrap_keys_mb"] = peak_rss_mb()
        n_auto_before = self._auto_keys()
        self.stage = "rotation keys"
        t = time.time()
        if prog.rotations:
            cc.EvalRotateKeyGen(self.keys.secretKey, list(prog.rotations))
        self.times["rotation_keygen"] = time.time() - t
        self.rss_keys["after_rotation_keys_mb"] = peak_rss_mb()
        n_auto = self._auto_keys()
        self.key_counts = {
            "program_rotation_keys": len(prog.rotations),
            "automorphism_keys_total": n_auto,
            "automorphism_keys_for_bootstrapping": n_auto_before,
            "automorphism_keys_added_for_program": (n_auto - n_auto_before) if n_auto is not None and n_auto_before is not None else None,
        }
        self.log(f"keys: {len(prog.rotations)} rotation keys for the program ({self.times['rotation_keygen']:.1f} s), "
                 f"{n_auto} automorphism keys in all, peak RSS {peak_rss_mb():.0f} MB")
        self.stage = "self-check"
        self._self_check()
        self.stage = "ready"

    @property
    def stage(self):
        return self._stage.get("stage")

    @stage.setter
    def stage(self, name):
        """Entering a setup stage: recorded (with the peak RSS so far) and reported to
        `on_stage`, so that a process killed by the allocator still leaves a record."""
        self._stage["stage"] = name
        self._stage.setdefault("rss_mb_entering", {})[name] = round(peak_rss_mb(), 1)
        if self._on_stage:
            self._on_stage(self._stage)

    def _auto_keys(self):
        try:
            return len(self.o.CryptoContext.GetExistingEvalAutomorphismKeyIndices(self.keys.secretKey.GetKeyTag()))
        except Exception:  # older wheels
            return None

    # --- helpers -------------------------------------------------------------------------

    def consumed(self, ct):
        """Program level of a ciphertext (see the module doc)."""
        return ct.GetLevel() + ct.GetNoiseScaleDeg() - 1 - self.base

    def encode(self, vec, level_abs, deg=1):
        return self.cc.MakeCKKSPackedPlaintext(np.ascontiguousarray(vec, dtype=np.float64), deg, level_abs, None, self.S)

    def encrypt(self, vec):
        return self.cc.Encrypt(self.keys.publicKey, self.encode(vec, self.base))

    def decrypt(self, ct):
        pt = self.cc.Decrypt(ct, self.keys.secretKey)
        pt.SetLength(self.S)
        return np.array(pt.GetRealPackedValue())

    def rescale(self, ct):
        """Apply a pending rescale (degree-2 ciphertext -> degree 1, one tower less)."""
        if ct.GetNoiseScaleDeg() < 2:
            return ct
        towers = self.depth + 1 - ct.GetLevel()
        return self.cc.Compress(ct, towers - 1)

    def _self_check(self):
        """Encrypt, rotate by the smallest and largest program rotation, decrypt: the rotations
        must be cyclic modulo S (sparse packing replicates the S slots)."""
        v = (np.arange(self.S) % 97) / 97.0
        ct = self.encrypt(v)
        err = float(np.max(np.abs(self.decrypt(ct) - v)))
        checks = {"encrypt_decrypt": err}
        for r in sorted({self.prog.rotations[0], self.prog.rotations[-1]}) if self.prog.rotations else []:
            e = float(np.max(np.abs(self.decrypt(self.cc.EvalRotate(ct, r)) - plain.rot(v, r))))
            checks[f"rotate_{r}"] = e
            err = max(err, e)
        self.self_check = checks
        if err > 1e-6:
            raise RuntimeError(f"self-check failed (rotations not cyclic modulo {self.S}?): {checks}")

    # --- ops ---------------------------------------------------------------------------

    def op_linear(self, op, xs, st):
        lin = self.prog.linear[op["weights"]]
        n1, S, cc = lin.n1, self.S, self.cc
        m_out = self.prog.cts(op["out"])
        xs = [self.rescale(x) for x in xs]
        level_abs = max(x.GetLevel() for x in xs)
        terms = {}  # o -> g -> [(i, j, row)]
        need = {}  # i -> {j}
        for r, (o, i, k) in enumerate(lin.index.tolist()):
            g, j = divmod(k, n1)
            terms.setdefault(o, {}).setdefault(g, []).append((i, j, r))
            need.setdefault(i, set()).add(j)
        baby = {}
        t = time.time()
        for i, js in need.items():
            baby[(i, 0)] = xs[i]
            js = sorted(js - {0})
            if js:
                pre = cc.EvalFastRotationPrecompute(xs[i])
                for j in js:
                    baby[(i, j)] = cc.EvalFastRotation(xs[i], j, self.M, pre)
                st["baby_rotations"] += len(js)
                del pre
        st["t_baby"] += time.time() - t
        outs = []
        for o in range(m_out):
            acc = None
            for g in sorted(terms.get(o, {})):
                inner = None
                t = time.time()
                for i, j, r in terms[o][g]:
                    d = lin.diag[r]
                    if g:
                        d = np.roll(d, g * n1)  # rot_{-g n1}(d)
                    pt = self.encode(d, level_abs)
                    p = cc.EvalMult(baby[(i, j)], pt)
                    if inner is None:
                        inner = p
                    else:
                        cc.EvalAddInPlace(inner, p)
                st["pt_mults"] += len(terms[o][g])
                st["t_mult"] += time.time() - t
                if g:
                    t = time.time()
                    inner = cc.EvalRotate(inner, g * n1)
                    st["giant_rotations"] += 1
                    st["t_giant"] += time.time() - t
                if acc is None:
                    acc = inner
                else:
                    cc.EvalAddInPlace(acc, inner)
            if acc is None:  # an output ciphertext without terms: bias only
                acc = cc.EvalMult(xs[0], self.encode(np.zeros(S), level_abs))
            b = lin.bias[o]
            if np.any(b != 0):
                acc = cc.EvalAdd(acc, self.encode(b, acc.GetLevel(), acc.GetNoiseScaleDeg()))
            outs.append(acc)
        return outs

    def op_poly(self, op, xs, st, level_in, check):
        return [self.circuit(op["circuit"], x, level_in, check, st) for x in xs]

    def circuit(self, c, ct, level_in, check, st):
        """A version-1 circuit on one ciphertext, FLEXIBLEAUTO: weighted sums fused as in
        `pannc_openfhe.circuit` (one level per sum), every materialised value's level checked
        against `level_in` + its planned level."""
        cc = self.cc
        consts = c["constants"]
        ops = c["ops"]
        uses = [0] * (1 + len(ops))
        for e in ops:
            uses[e["a"]] += 1
            if "b" in e:
                uses[e["b"]] += 1
        out_v = c["outputs"][0]["value"]
        uses[out_v] += 1
        plan = [0] + [e["level"] for e in ops]
        vals = [ct]

        def mat(v):
            x = vals[v]
            if not isinstance(x, Form):
                return x
            acc = None
            for u, cf in x.real.items():
                p = cc.EvalMult(vals[u], float(cf))
                if acc is None:
                    acc = p
                else:
                    cc.EvalAddInPlace(acc, p)
            for u, k in x.intg.items():
                tt = mul_int(cc, vals[u], int(k))
                acc = tt if acc is None else cc.EvalAdd(acc, tt)
            if acc is None:
                raise ValueError(f"circuit value {v} is a constant without a ciphertext")
            if x.const != 0.0:
                acc = cc.EvalAdd(acc, float(x.const))
            vals[v] = acc
            check(acc, level_in + plan[v], f"circuit value {v}")
            return acc

        def form(v):
            x = vals[v]
            if isinstance(x, Form):
                if uses[v] > 1:
                    mat(v)
                    return Form(intg={v: 1})
                return x
            return Form(intg={v: 1})

        for e in ops:
            k, a = e["op"], e["a"]
            if k == "mul":
                r = cc.EvalMult(mat(a), mat(e["b"]))
                st["ct_ct_mults"] += 1
            elif k == "mul_const":
                mat(a)
                r = Form(real={a: consts[e["c"]]})
            elif k in ("mul_int", "neg"):
                r = form(a).scale_int(int(e["k"]) if k == "mul_int" else -1)
            elif k in ("add", "sub"):
                f = form(a)
                g = form(e["b"])
                if f is g:
                    g = g.copy()
                r = f.add(g, 1 if k == "add" else -1)
            elif k == "add_const":
                r = form(a)
                r.const += consts[e["c"]]
            else:
                raise ValueError(f"unknown circuit op {k}")
            vals.append(r)
            if not isinstance(r, Form):
                check(r, level_in + e["level"], f"circuit value {e['out']}")
        return mat(out_v)

    def op_bootstrap(self, xs, st, check_range=None):
        outs = []
        for n, x in enumerate(xs):
            if check_range is not None:
                check_range(n, x)
            # Drop to the last level that EvalBootstrap accepts (one level left: its scaling
            # adjustment spends it): a pending rescale is applied and the other towers dropped.
            x = self.cc.Compress(x, 2)
            t = time.time()
            y = self.cc.EvalBootstrap(x)
            st["t_bootstrap_each"].append(time.time() - t)
            st["bootstraps"] += 1
            outs.append(y)
        return outs

    # --- a whole program ---------------------------------------------------------------

    def run(self, samples, ref_vals=None, progress=True):
        """Encrypt one sample per input, execute every op, decrypt the outputs.

        `ref_vals`: the plaintext evaluation's slot vectors (`plain.run`), for the per-op error
        trace (decrypting intermediate values is a diagnostic of this test runner, which holds
        the secret key; nothing is computed from the decryptions).
        """
        prog, cc = self.prog, self.cc
        n_in = len(prog.inputs)
        st = {"baby_rotations": 0, "giant_rotations": 0, "rotate_ops": 0, "pt_mults": 0, "ct_ct_mults": 0,
              "bootstraps": 0, "t_baby": 0.0, "t_mult": 0.0, "t_giant": 0.0, "t_bootstrap_each": []}
        by_kind = {}
        mismatches = []
        checked = [0]
        op_records = []
        last_use = [-1] * len(prog.values)
        for j, op in enumerate(prog.ops):
            for key in ("in", "a", "b"):
                if key in op:
                    last_use[op[key]] = j
        for o in prog.outputs:
            last_use[o["value"]] = len(prog.ops)

        def check(ct, want, what):
            checked[0] += 1
            got = self.consumed(ct)
            if got != want:
                mismatches.append({"what": what, "planned": want, "openfhe": got})

        t0 = time.time()
        cpu0 = time.process_time()
        vals = [None] * len(prog.values)
        for i, x in enumerate(samples):
            packed = plain.pack(x, prog.values[i]["shape"], self.S)
            vals[i] = [self.encrypt(row) for row in packed]
            for ct in vals[i]:
                check(ct, 0, f"input {prog.inputs[i].get('name', i)}")
        t_enc = time.time() - t0
        t_ops = time.time()
        nops = len(prog.ops)
        for j, op in enumerate(prog.ops):
            k = op["op"]
            out = n_in + j
            t = time.time()
            c0 = time.process_time()
            before = dict((kk, st[kk]) for kk in ("baby_rotations", "giant_rotations", "pt_mults", "ct_ct_mults", "bootstraps"))
            if k == "linear":
                y = self.op_linear(op, vals[op["in"]], st)
            elif k == "poly":
                y = self.op_poly(op, vals[op["in"]], st, prog.values[op["in"]]["level"], check)
            elif k == "add":
                y = [cc.EvalAdd(a, b) for a, b in zip(vals[op["a"]], vals[op["b"]])]
            elif k == "mul_const":
                c = float(op["c"])
                if is_integer(c):
                    y = [mul_int(cc, a, int(c)) for a in vals[op["a"]]]
                else:
                    y = [cc.EvalMult(a, c) for a in vals[op["a"]]]
            elif k == "rotate":
                y = [cc.EvalRotate(vals[op["a"]][0], int(op["k"]))]
                st["rotate_ops"] += 1
            elif k == "bootstrap":
                bound = self.P.input_bound
                src = op["in"]

                def check_range(n, ct, src=src, bound=bound):
                    if ref_vals is None:
                        return
                    mask = plain.used_mask(prog, src)[n]
                    got = float(np.max(np.abs(self.decrypt(ct)[mask]))) if mask.any() else 0.0
                    if got > bound:
                        self.log(f"  warning: bootstrap input value {src} ciphertext {n}: max |x| = {got:.3g} > input bound {bound:g}")
                        st.setdefault("bootstrap_inputs_out_of_bound", []).append({"value": src, "ct": n, "max_abs": got})

                y = self.op_bootstrap(vals[op["in"]], st, check_range if self.trace else None)
            else:
                raise ValueError(f"unknown op {k}")
            dt = time.time() - t
            dc = time.process_time() - c0
            vals[out] = y
            for n, ct in enumerate(y):
                check(ct, op["level"], f"op #{j} ({k}) value {out} ct {n}")
            rec = {"op": j, "kind": k, "out": out, "level": op["level"], "seconds": round(dt, 3), "cpu_seconds": round(dc, 3),
                   "openfhe_level": [self.consumed(ct) for ct in y]}
            for kk, v0 in before.items():
                if st[kk] != v0:
                    rec[kk] = st[kk] - v0
            if self.trace and ref_vals is not None:
                ref = ref_vals[out]
                mask = plain.used_mask(prog, out)
                dec = np.stack([self.decrypt(ct) for ct in y])
                err = float(np.max(np.abs(dec - ref)[mask]))
                scale = float(np.max(np.abs(ref[mask]))) if mask.any() else 0.0
                rec["max_abs_err"] = err
                rec["max_abs_ref"] = scale
            op_records.append(rec)
            kind = by_kind.setdefault(k, {"count": 0, "seconds": 0.0, "cpu_seconds": 0.0})
            kind["count"] += 1
            kind["seconds"] += dt
            kind["cpu_seconds"] += dc
            if progress:
                extra = " ".join(f"{kk}={rec[kk]}" for kk in ("baby_rotations", "giant_rotations", "pt_mults", "ct_ct_mults", "bootstraps") if kk in rec)
                errs = f" err {rec['max_abs_err']:.1e} (|ref| {rec['max_abs_ref']:.2g})" if "max_abs_err" in rec else ""
                self.log(f"[{j + 1}/{nops}] {k:9s} -> v{out} ({len(y)} ct) level {op['level']} "
                         f"(OpenFHE {'/'.join(str(x) for x in sorted(set(rec['openfhe_level'])))}) {dt:.2f} s {extra}{errs}")
            # Free what no later op reads.
            for key in ("in", "a", "b"):
                if key in op and last_use[op[key]] == j and op[key] >= 0:
                    vals[op[key]] = None
        t_ops = time.time() - t_ops
        t = time.time()
        outs = []
        for o in prog.outputs:
            v = o["value"]
            dec = np.stack([self.decrypt(ct) for ct in vals[v]])
            outs.append(plain.unpack(dec, prog.values[v]["shape"]))
        t_dec = time.time() - t
        for kind in by_kind.values():
            kind["seconds"] = round(kind["seconds"], 3)
            kind["cpu_seconds"] = round(kind["cpu_seconds"], 3)
        return outs, {
            "cpu_seconds": round(time.process_time() - cpu0, 3),
            "seconds": {"encrypt": round(t_enc, 3), "ops": round(t_ops, 3), "decrypt": round(t_dec, 3),
                        "linear_baby_rotations": round(st["t_baby"], 3), "linear_pt_mults": round(st["t_mult"], 3),
                        "linear_giant_rotations": round(st["t_giant"], 3),
                        "bootstrap_each": [round(x, 3) for x in st["t_bootstrap_each"]]},
            "by_kind": by_kind,
            "counts": {k: st[k] for k in ("baby_rotations", "giant_rotations", "rotate_ops", "pt_mults", "ct_ct_mults", "bootstraps")},
            "bootstrap_inputs_out_of_bound": st.get("bootstrap_inputs_out_of_bound", []),
            "levels_checked": checked[0],
            "level_mismatches": mismatches,
            "ops": op_records,
        }


def set_threads(n):
    """OpenMP reads OMP_NUM_THREADS when OpenFHE loads: call before importing openfhe."""
    if n:
        os.environ["OMP_NUM_THREADS"] = str(n)
