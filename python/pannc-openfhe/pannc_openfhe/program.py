"""Packed programs (docs/packed-format.md, `pannc-circuit` version 3): loading and validation.

`load(dir)` reads `program.json` and `weights.npz` and checks every rule of the spec's Validity
section; a program that breaks one raises `ProgramError` whose message is one line naming the op
and the rule. Nothing here needs OpenFHE, so the runner validates before it generates any key.
"""

import json
import math
import os
import zipfile

import numpy as np

FORMAT = "pannc-circuit"
VERSION = 3
OPS = ("linear", "poly", "add", "mul_const", "rotate", "bootstrap")
SECRETS = ("uniform_ternary", "sparse_ternary")


class ProgramError(ValueError):
    """A program that breaks a rule of the spec; the message is one line."""


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def extent(val):
    """Slot positions a value spans: numel (compact) or ceil(C / g^2) * Hg * Wg (multiplexed)."""
    lay = val.get("layout")
    if lay is None:
        return _numel(val["shape"])
    C = val["shape"][0]
    g = lay["gap"]
    Hg, Wg = lay["grid"]
    return -(-C // (g * g)) * Hg * Wg


def positions(val):
    """Flat slot position of every element (row-major element order) of a value."""
    shape = val["shape"]
    lay = val.get("layout")
    if lay is None:
        return np.arange(_numel(shape), dtype=np.int64)
    C, H, W = shape
    g = lay["gap"]
    Hg, Wg = lay["grid"]
    c, h, w = np.meshgrid(np.arange(C), np.arange(H), np.arange(W), indexing="ij")
    f = (c // (g * g)) * Hg * Wg + (g * h + (c % (g * g)) // g) * Wg + g * w + (c % g)
    return f.reshape(-1).astype(np.int64)


def is_integer(c):
    return float(c) == math.floor(float(c)) and math.isfinite(float(c))


class Linear:
    """The arrays of one `linear` op and its baby-step/giant-step plan."""

    def __init__(self, index, diag, bias, n1, slots):
        self.index = index  # int64 [D, 3]: (o, i, k)
        self.diag = diag  # float64 [D, S]
        self.bias = bias  # float64 [m_out, S]
        self.n1 = n1
        self.slots = slots

    def baby_steps(self):
        """Sorted baby rotation amounts j >= 1 (per the spec: k = g*n1 + j)."""
        return sorted({int(k) % self.n1 for k in self.index[:, 2]} - {0})

    def giant_steps(self):
        """Sorted giant rotation amounts g*n1 >= 1."""
        return sorted({(int(k) // self.n1) * self.n1 for k in self.index[:, 2]} - {0})

    def rotations(self):
        return sorted(set(self.baby_steps()) | set(self.giant_steps()))


class Program:
    """A validated packed program: `doc` is program.json, `linear[weights]` the sidecar arrays."""

    def __init__(self, doc, linear, path):
        self.doc = doc
        self.linear = linear
        self.path = path
        self.slots = doc["slots"]
        self.values = doc["values"]
        self.inputs = doc["inputs"]
        self.outputs = doc["outputs"]
        self.ops = doc["ops"]
        self.rotations = list(doc["rotations"])
        self.depth = doc["depth"]
        self.ckks = doc["ckks"]
        self.name = doc.get("name", "")

    def value(self, v):
        return self.values[v]

    def cts(self, v):
        return self.values[v]["ciphertexts"]

    def numel(self, v):
        return _numel(self.values[v]["shape"])

    def bootstrap_ops(self):
        return [op for op in self.ops if op["op"] == "bootstrap"]

    def spec_stats(self):
        """`stats` as docs/packed-format.md defines them, recomputed from the ops."""
        st = {"linear": 0, "poly": 0, "bootstraps": 0, "rotations": 0, "ct_ct_mults": 0, "pt_mults": 0,
              "keys": len(self.rotations)}
        for op in self.ops:
            k = op["op"]
            if k == "linear":
                lin = self.linear[op["weights"]]
                st["linear"] += 1
                baby = {(int(i), int(kk) % lin.n1) for _, i, kk in lin.index if int(kk) % lin.n1}
                giant = {(int(o), int(kk) // lin.n1) for o, _, kk in lin.index if int(kk) // lin.n1}
                st["rotations"] += len(baby) + len(giant)
                st["pt_mults"] += int(lin.index.shape[0])
            elif k == "poly":
                st["poly"] += 1
                st["ct_ct_mults"] += self.cts(op["in"]) * sum(1 for e in op["circuit"]["ops"] if e["op"] == "mul")
            elif k == "mul_const":
                st["pt_mults"] += self.cts(op["a"])
            elif k == "rotate":
                st["rotations"] += 1
            elif k == "bootstrap":
                st["bootstraps"] += self.cts(op["in"])
        return st

    def counts(self):
        """Per-sample counts recomputed from the ops (the runner reports these, not `stats`)."""
        c = {"linear": 0, "poly": 0, "add": 0, "mul_const": 0, "rotate": 0, "bootstrap": 0,
             "bootstraps": 0, "rotations": 0, "baby_rotations": 0, "giant_rotations": 0,
             "pt_mults": 0, "ct_ct_mults": 0}
        for op in self.ops:
            k = op["op"]
            c[k] += 1
            if k == "linear":
                lin = self.linear[op["weights"]]
                baby = {(int(i), int(kk) % lin.n1) for _, i, kk in lin.index if int(kk) % lin.n1}
                giant = {(int(o), int(kk) // lin.n1) for o, _, kk in lin.index if int(kk) // lin.n1}
                c["baby_rotations"] += len(baby)
                c["giant_rotations"] += len(giant)
                c["rotations"] += len(baby) + len(giant)
                c["pt_mults"] += len(lin.index)
            elif k == "poly":
                n = self.cts(op["in"])
                c["ct_ct_mults"] += n * sum(1 for e in op["circuit"]["ops"] if e["op"] == "mul")
            elif k == "rotate":
                c["rotations"] += 1
            elif k == "bootstrap":
                c["bootstraps"] += self.cts(op["in"])
        return c


def _err(where, rule, msg):
    return ProgramError(f"{where}: {msg} [{rule}]")


def _op_where(j, op, n_in):
    return f"op #{j} ({op.get('op', '?')} -> value {n_in + j})"


def _int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def check_circuit_v1(c, where):
    """Rule 5: `c` is a valid version-1 circuit with one input and one output; its declared
    levels follow the circuit-format level table. Returns the recomputed depth."""
    rule = "rule 5: poly circuit"
    if not isinstance(c, dict):
        raise _err(where, rule, "`circuit` is not an object")
    if c.get("format") != FORMAT or c.get("version") != 1:
        raise _err(where, rule, f"embedded circuit must be {FORMAT} version 1, got {c.get('format')!r} version {c.get('version')!r}")
    if c.get("bootstraps"):
        raise _err(where, rule, "embedded circuit has bootstraps (version 1 has none)")
    ins, outs, ops, consts = c.get("inputs"), c.get("outputs"), c.get("ops"), c.get("constants", [])
    if not isinstance(ins, list) or len(ins) != 1:
        raise _err(where, rule, f"embedded circuit must have exactly one input, has {len(ins) if isinstance(ins, list) else '?'}")
    if not isinstance(outs, list) or len(outs) != 1:
        raise _err(where, rule, f"embedded circuit must have exactly one output, has {len(outs) if isinstance(outs, list) else '?'}")
    if not isinstance(ops, list) or not isinstance(consts, list):
        raise _err(where, rule, "embedded circuit lacks `ops` or `constants`")
    for x in consts:
        if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
            raise _err(where, rule, "embedded circuit has a non-finite or non-numeric constant")
    if ins[0].get("value") != 0:
        raise _err(where, rule, "embedded circuit input must be value 0")
    levels = [int(ins[0].get("level", 0))]
    if levels[0] != 0:
        raise _err(where, rule, "embedded circuit input must be at level 0")
    for j, e in enumerate(ops):
        w = f"{where}, circuit op #{j} ({e.get('op')})"
        if e.get("out") != 1 + j:
            raise _err(w, rule, f"must define value {1 + j}")
        k = e.get("op")
        a = e.get("a")
        if not _int(a) or not 0 <= a < len(levels):
            raise _err(w, rule, f"operand a={a!r} is not defined before use")
        if k in ("add", "sub", "mul"):
            b = e.get("b")
            if not _int(b) or not 0 <= b < len(levels):
                raise _err(w, rule, f"operand b={b!r} is not defined before use")
            lv = max(levels[a], levels[b]) + (1 if k == "mul" else 0)
        elif k == "neg":
            lv = levels[a]
        elif k in ("mul_const", "add_const"):
            ci = e.get("c")
            if not _int(ci) or not 0 <= ci < len(consts):
                raise _err(w, rule, f"constant index c={ci!r} out of range")
            lv = levels[a] + (1 if k == "mul_const" else 0)
        elif k == "mul_int":
            if not _int(e.get("k")):
                raise _err(w, rule, "mul_int needs an integer k")
            lv = levels[a]
        else:
            raise _err(w, rule, f"unknown circuit op {k!r}")
        if e.get("level") != lv:
            raise _err(w, rule, f"declared level {e.get('level')!r}, the level rule gives {lv}")
        levels.append(lv)
    ov = outs[0].get("value")
    if not _int(ov) or not 0 <= ov < len(levels):
        raise _err(where, rule, f"embedded circuit output value {ov!r} is not defined")
    d = levels[ov]
    if c.get("depth") != d:
        raise _err(where, rule, f"embedded circuit declares depth {c.get('depth')!r}, its output is at level {d}")
    return d


class _Arrays(dict):
    """The arrays of weights.npz by name (`files` lists them, as numpy's NpzFile does)."""

    @property
    def files(self):
        return list(self.keys())


def _load_npz(path):
    """Every array of weights.npz, read eagerly from a file this function closes, without
    unpickling anything (allow_pickle=False). None if the file does not exist."""
    if not os.path.exists(path):
        return None
    out = _Arrays()
    try:
        with open(path, "rb") as fh:
            with np.load(fh, allow_pickle=False) as z:
                for name in z.files:
                    try:
                        out[name] = z[name]
                    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
                        raise ProgramError(f"weights.npz: array `{name}` cannot be read ({e}) [rule 4: linear]")
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ProgramError(f"weights.npz: cannot read it ({str(e).splitlines()[0] if str(e) else type(e).__name__}) [rule 4: linear]")
    return out


def load(directory, check_weights=True):
    """Read and validate a program directory; returns a `Program` or raises `ProgramError`."""
    pj = os.path.join(directory, "program.json")
    try:
        with open(pj) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise ProgramError(f"{pj}: no such file (a packed program is a directory with program.json and weights.npz)")
    except (OSError, ValueError) as e:
        raise ProgramError(f"{pj}: not JSON ({e})")
    if not isinstance(doc, dict):
        raise ProgramError(f"{pj}: not a JSON object")
    return validate(doc, _load_npz(os.path.join(directory, "weights.npz")), directory)


def validate(doc, npz, path="<program>"):
    """Check the spec's Validity rules 1-6 on a parsed program.json and its weights (an object
    with `files` and `__getitem__`, e.g. what `_load_npz` returns; None = missing)."""
    r1 = "rule 1: header"
    if doc.get("format") != FORMAT:
        raise _err("program", r1, f"format {doc.get('format')!r}, expected {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise _err("program", r1, f"unknown version {doc.get('version')!r}: this runner executes packed programs of version {VERSION}")
    if doc.get("packing") != "packed":
        raise _err("program", r1, f"packing {doc.get('packing')!r}, expected 'packed'")
    S = doc.get("slots")
    if not _int(S) or S < 2 or S & (S - 1):
        raise _err("program", r1, f"slots {S!r} is not a power of two >= 2")
    for field in ("values", "inputs", "outputs", "ops", "rotations", "ckks"):
        if field not in doc:
            raise _err("program", r1, f"missing field `{field}`")
    values, inputs, outputs, ops = doc["values"], doc["inputs"], doc["outputs"], doc["ops"]
    if not isinstance(values, list) or not isinstance(ops, list) or not isinstance(inputs, list) or not isinstance(outputs, list):
        raise _err("program", r1, "`values`, `inputs`, `outputs` and `ops` must be arrays")
    n_in = len(inputs)
    if n_in < 1:
        raise _err("program", r1, "no inputs")
    if len(values) != n_in + len(ops):
        raise _err("program", r1, f"{len(values)} values for {n_in} inputs and {len(ops)} ops (each defines one)")
    # Values: dense ids, shapes, ciphertext counts (rule 2).
    for v, val in enumerate(values):
        w = f"value {v}"
        if not isinstance(val, dict) or val.get("id") != v:
            raise _err(w, r1, f"has id {val.get('id') if isinstance(val, dict) else '?'!r}; ids must be dense, value i at position i")
        shape = val.get("shape")
        if not isinstance(shape, list) or not all(_int(d) and d >= 1 for d in shape):
            raise _err(w, "rule 2: shapes", f"shape {shape!r} is not a list of positive integers")
        lay = val.get("layout")
        if lay is not None:
            ok = (isinstance(lay, dict) and len(shape) == 3 and _int(lay.get("gap")) and lay["gap"] >= 1
                  and isinstance(lay.get("grid"), list) and len(lay["grid"]) == 2 and all(_int(t) for t in lay["grid"]))
            if not ok:
                raise _err(w, "rule 2: shapes", f"layout {lay!r} needs a rank-3 shape, an integer gap >= 1 and a grid [Hg, Wg]")
            g, (Hg, Wg) = lay["gap"], lay["grid"]
            if g * shape[1] > Hg or g * shape[2] > Wg:
                raise _err(w, "rule 2: shapes", f"layout gap {g} x shape {shape[1:]} does not fit grid {[Hg, Wg]}")
            what = f"extent {extent(val)}"
        else:
            what = f"numel {_numel(shape)}"
        want = -(-extent(val) // S)
        if val.get("ciphertexts") != want:
            raise _err(w, "rule 2: shapes", f"ciphertexts {val.get('ciphertexts')!r}, but ceil({what} / slots {S}) = {want}")
        if not _int(val.get("level")) or val["level"] < 0:
            raise _err(w, "rule 3: levels", f"level {val.get('level')!r} is not a non-negative integer")
        rg = val.get("range")
        if rg is not None and not (isinstance(rg, list) and len(rg) == 2 and all(isinstance(x, (int, float)) and math.isfinite(x) for x in rg)):
            raise _err(w, r1, f"range {rg!r} is not [lo, hi]")
    for i, inp in enumerate(inputs):
        w = f"input #{i} ({inp.get('name') if isinstance(inp, dict) else '?'})"
        if not isinstance(inp, dict) or inp.get("value") != i:
            raise _err(w, r1, f"must be value {i}")
        if inp.get("shape") is not None and list(inp["shape"]) != values[i]["shape"]:
            raise _err(w, "rule 2: shapes", f"shape {inp['shape']} differs from value {i}'s {values[i]['shape']}")
        if values[i]["level"] != 0:
            raise _err(w, "rule 3: levels", f"inputs are encrypted at level 0, value {i} says {values[i]['level']}")
        if values[i].get("layout") is not None:
            raise _err(w, "rule 2: shapes", "graph inputs are compact (no `layout`)")
    # Rotation keys.
    rots = doc["rotations"]
    if not isinstance(rots, list) or not all(_int(k) and 1 <= k < S for k in rots):
        raise _err("program", "rule 4: rotations", f"`rotations` must be integers in 1..{S - 1}")
    if rots != sorted(set(rots)):
        raise _err("program", "rule 4: rotations", "`rotations` must be sorted without duplicates")
    rotset = set(rots)
    ckks = doc["ckks"]
    if not isinstance(ckks, dict) or not _int(ckks.get("levels")):
        raise _err("program", "rule 3: levels", "`ckks.levels` is missing")
    for key in ("scale_bits", "first_mod_bits"):
        if key in ckks and not _int(ckks[key]):
            raise _err("program", r1, f"`ckks.{key}` is not an integer")
    boot = ckks.get("bootstrap") or {}
    if boot.get("secret", "uniform_ternary") not in SECRETS:
        raise _err("program", r1, f"ckks.bootstrap.secret {boot.get('secret')!r} is not one of {SECRETS}")
    lb = boot.get("level_budget", [3, 3])
    if not (isinstance(lb, list) and len(lb) == 2 and all(_int(x) and x >= 1 for x in lb)):
        raise _err("program", r1, f"ckks.bootstrap.level_budget {lb!r} is not two positive integers")
    files = set(npz.files) if npz is not None else None
    linear = {}
    level = [values[i]["level"] for i in range(n_in)]
    for j, op in enumerate(ops):
        out = n_in + j
        w = _op_where(j, op, n_in) if isinstance(op, dict) else f"op #{j}"
        if not isinstance(op, dict):
            raise _err(w, r1, "is not an object")
        k = op.get("op")
        if k not in OPS:
            raise _err(w, r1, f"unknown op {k!r}")
        if op.get("out") != out:
            raise _err(w, r1, f"defines value {op.get('out')!r}; op #{j} must define value {out} (defined once, in order)")

        def operand(name):
            v = op.get(name)
            if not _int(v) or not 0 <= v < out:
                raise _err(w, r1, f"operand `{name}` = {v!r} is not a value defined before this op")
            return v

        shape_out = values[out]["shape"]
        r2 = "rule 2: shapes"
        if k == "linear":
            a = operand("in")
            if op.get("out_shape") is not None and list(op["out_shape"]) != shape_out:
                raise _err(w, r2, f"out_shape {op['out_shape']} differs from value {out}'s shape {shape_out}")
            lv = level[a] + 1
            linear[op.get("weights")] = _check_linear(op, w, files, npz, S, values[a], values[out], rotset)
        elif k == "poly":
            a = operand("in")
            d = check_circuit_v1(op.get("circuit"), w)
            if shape_out != values[a]["shape"]:
                raise _err(w, r2, f"result shape {shape_out} differs from its input's {values[a]['shape']}")
            lv = level[a] + d
        elif k == "add":
            a, b = operand("a"), operand("b")
            if values[a]["shape"] != values[b]["shape"]:
                raise _err(w, r2, f"operands have shapes {values[a]['shape']} and {values[b]['shape']}")
            if values[a].get("layout") != values[b].get("layout"):
                raise _err(w, r2, f"operands have layouts {values[a].get('layout')} and {values[b].get('layout')}")
            if shape_out != values[a]["shape"]:
                raise _err(w, r2, f"result shape {shape_out} differs from its operands' {values[a]['shape']}")
            lv = max(level[a], level[b])
        elif k == "mul_const":
            a = operand("a")
            c = op.get("c")
            if not isinstance(c, (int, float)) or isinstance(c, bool) or not math.isfinite(c):
                raise _err(w, r1, f"constant c={c!r} is not a finite number")
            if shape_out != values[a]["shape"]:
                raise _err(w, r2, f"result shape {shape_out} differs from its input's {values[a]['shape']}")
            lv = level[a] + (0 if is_integer(c) else 1)
        elif k == "rotate":
            a = operand("a")
            if values[a]["ciphertexts"] != 1:
                raise _err(w, r2, f"rotates value {a} of {values[a]['ciphertexts']} ciphertexts (only one-ciphertext values rotate)")
            kk = op.get("k")
            if not _int(kk) or not 1 <= kk < S:
                raise _err(w, "rule 4: rotations", f"rotation k={kk!r} not in 1..{S - 1}")
            if kk not in rotset:
                raise _err(w, "rule 4: rotations", f"rotation by {kk} has no key: {kk} is not in `rotations`")
            if shape_out != values[a]["shape"]:
                raise _err(w, r2, f"result shape {shape_out} differs from its input's {values[a]['shape']}")
            lv = level[a]
        else:  # bootstrap
            a = operand("in")
            if level[a] < 1:
                raise _err(w, "rule 3: levels", f"bootstrap input (value {a}) is at level {level[a]}; it must have used its levels (level >= 1)")
            if shape_out != values[a]["shape"]:
                raise _err(w, r2, f"result shape {shape_out} differs from its input's {values[a]['shape']}")
            lv = 0
        if op.get("level") != lv:
            raise _err(w, "rule 3: levels", f"declared level {op.get('level')!r}, the level rule gives {lv}")
        if values[out]["level"] != lv:
            raise _err(w, "rule 3: levels", f"value {out} says level {values[out]['level']}, the op gives {lv}")
        level.append(lv)
    depth = max(level)
    if doc.get("depth") != depth:
        raise _err("program", "rule 3: levels", f"depth {doc.get('depth')!r}, but the max level of any value is {depth}")
    if depth > ckks["levels"]:
        raise _err("program", "rule 3: levels", f"depth {depth} exceeds ckks.levels {ckks['levels']}")
    for i, o in enumerate(outputs):
        v = o.get("value") if isinstance(o, dict) else None
        if not _int(v) or not 0 <= v < len(values):
            raise _err(f"output #{i} ({o.get('name') if isinstance(o, dict) else '?'})", "rule 6: outputs", f"names value {v!r}, which is not defined")
        if values[v].get("layout") is not None:
            raise _err(f"output #{i} ({o.get('name')})", "rule 2: shapes", f"value {v} has a layout; graph outputs are compact")
        if o.get("shape") is not None and list(o["shape"]) != values[v]["shape"]:
            raise _err(f"output #{i} ({o.get('name')})", "rule 2: shapes", f"shape {o['shape']} differs from value {v}'s {values[v]['shape']}")
    if not outputs:
        raise _err("program", "rule 6: outputs", "no outputs")
    prog = Program(doc, linear, path)
    if doc.get("stats") is not None:
        want = prog.spec_stats()
        got = {k: doc["stats"].get(k) for k in want}
        if got != want:
            diff = ", ".join(f"{k} {got[k]!r} (ops give {want[k]})" for k in want if got[k] != want[k])
            raise _err("program", "stats", f"declared stats differ from the ops: {diff}")
    return prog


def _used(val, S):
    m = val["ciphertexts"]
    mask = np.zeros(m * S, dtype=bool)
    mask[positions(val)] = True
    return mask.reshape(m, S)


def _check_linear(op, w, files, npz, S, in_val, out_val, rotset):
    r4 = "rule 4: linear"
    m_in, m_out = in_val["ciphertexts"], out_val["ciphertexts"]
    key = op.get("weights")
    if not isinstance(key, str) or not key:
        raise _err(w, r4, "`weights` is not a key prefix")
    n1 = op.get("n1")
    if not _int(n1) or not 1 <= n1 <= S:
        raise _err(w, r4, f"n1={n1!r} is not in 1..{S}")
    if files is None:
        raise _err(w, r4, "weights.npz is missing")
    arrays = {}
    for suffix in ("index", "diag", "bias"):
        name = f"{key}_{suffix}"
        if name not in files:
            raise _err(w, r4, f"weights.npz has no array `{name}`")
        arrays[suffix] = np.asarray(npz[name])
    index, diag, bias = arrays["index"], arrays["diag"], arrays["bias"]
    if index.dtype != np.int64 or index.ndim != 2 or index.shape[1] != 3:
        raise _err(w, r4, f"`{key}_index` must be int64 [D, 3], is {index.dtype} {list(index.shape)}")
    D = index.shape[0]
    if op.get("diagonals") != D:
        raise _err(w, r4, f"diagonals={op.get('diagonals')!r} but `{key}_index` has {D} rows")
    if diag.dtype != np.float64 or diag.shape != (D, S):
        raise _err(w, r4, f"`{key}_diag` must be float64 [{D}, {S}], is {diag.dtype} {list(diag.shape)}")
    if bias.dtype != np.float64 or bias.shape != (m_out, S):
        raise _err(w, r4, f"`{key}_bias` must be float64 [{m_out}, {S}], is {bias.dtype} {list(bias.shape)}")
    if not np.all(np.isfinite(diag)) or not np.all(np.isfinite(bias)):
        raise _err(w, r4, f"`{key}` has non-finite weights")
    if D:
        o, i, k = index[:, 0], index[:, 1], index[:, 2]
        bad = np.nonzero((o < 0) | (o >= m_out))[0]
        if bad.size:
            raise _err(w, r4, f"`{key}_index` row {bad[0]}: o={o[bad[0]]} not < m_out={m_out}")
        bad = np.nonzero((i < 0) | (i >= m_in))[0]
        if bad.size:
            raise _err(w, r4, f"`{key}_index` row {bad[0]}: i={i[bad[0]]} not < m_in={m_in}")
        bad = np.nonzero((k < 0) | (k >= S))[0]
        if bad.size:
            raise _err(w, r4, f"`{key}_index` row {bad[0]}: k={k[bad[0]]} not in 0..{S - 1}")
        keyed = (o * m_in + i) * S + k
        if np.any(np.diff(keyed) <= 0):
            raise _err(w, r4, f"`{key}_index` rows must be sorted by (o, i, k), each once")
        # Garbage stays out: no diagonal reads an unused input slot or writes an unused output
        # slot, and the bias is zero in unused slots (spec, "Slots and layouts").
        used_in, used_out = _used(in_val, S), _used(out_val, S)
        s = np.arange(S)
        for r in range(D):
            nz = diag[r] != 0
            if not nz.any():
                continue
            bad = nz & ~(used_out[o[r]] & used_in[i[r]][(s + k[r]) % S])
            if bad.any():
                slot = int(np.argmax(bad))
                raise _err(w, r4, f"`{key}_diag` row {r} (o={o[r]}, i={i[r]}, k={k[r]}) is nonzero at slot {slot}, "
                           "where it reads an unused input slot or writes an unused output slot")
    if np.any(bias[~_used(out_val, S)] != 0):
        raise _err(w, r4, f"`{key}_bias` is nonzero in an unused output slot")
    lin = Linear(index, diag, bias, n1, S)
    missing = [r for r in lin.rotations() if r not in rotset]
    if missing:
        raise _err(w, "rule 4: rotations", f"needs rotation by {missing[0]} (n1={n1}), which is not in `rotations`"
                   + (f" ({len(missing)} missing)" if len(missing) > 1 else ""))
    return lin
