"""Packed programs written from Python, per docs/packed-format.md, for the package's tests.

`Builder` assembles values and ops, derives every level from the spec's table, computes each
`linear` op's generalised diagonals from a dense matrix (small sizes only), and writes the
program directory. `conv_matrix` builds dense matrices of 2-D convolutions (stride, padding) in
channel-major order, the layout of the spec; `reference_*` are independent dense evaluations.
"""

import json
import os

import numpy as np

# p(u) = 0.5 + 0.75 T1(u) + 0.5 T2(u) + 0.3 T3(u): the depth-2 example of docs/circuit-format.md.
CHEB3 = {
    "format": "pannc-circuit",
    "version": 1,
    "name": "chebyshev_d3",
    "inputs": [{"name": "u", "value": 0, "level": 0, "range": [-1.0, 1.0]}],
    "constants": [0.6, 0.5, -1.0, 0.45],
    "ops": [
        {"out": 1, "op": "mul_const", "a": 0, "c": 0, "level": 1},
        {"out": 2, "op": "add_const", "a": 1, "c": 1, "level": 1},
        {"out": 3, "op": "mul", "a": 0, "b": 0, "level": 1},
        {"out": 4, "op": "mul_int", "a": 3, "k": 2, "level": 1},
        {"out": 5, "op": "add_const", "a": 4, "c": 2, "level": 1},
        {"out": 6, "op": "mul", "a": 2, "b": 5, "level": 2},
        {"out": 7, "op": "mul_const", "a": 0, "c": 3, "level": 1},
        {"out": 8, "op": "add_const", "a": 7, "c": 1, "level": 1},
        {"out": 9, "op": "add", "a": 6, "b": 8, "level": 2},
    ],
    "outputs": [{"name": "y", "value": 9}],
    "depth": 2,
    "stats": {"ct_ct_mults": 2, "ct_const_mults": 2, "ct_int_mults": 1, "additions": 1, "const_additions": 3, "negations": 0},
}
CHEB3_COEFFS = [0.5, 0.75, 0.5, 0.3]

# x^2 - 0.25 (depth 1: one ct x ct product, a constant added).
SQUARE = {
    "format": "pannc-circuit",
    "version": 1,
    "name": "square",
    "inputs": [{"name": "x", "value": 0, "level": 0}],
    "constants": [-0.25],
    "ops": [
        {"out": 1, "op": "mul", "a": 0, "b": 0, "level": 1},
        {"out": 2, "op": "add_const", "a": 1, "c": 0, "level": 1},
    ],
    "outputs": [{"name": "y", "value": 2}],
    "depth": 1,
    "stats": {"ct_ct_mults": 1, "ct_const_mults": 0, "ct_int_mults": 0, "additions": 0, "const_additions": 1, "negations": 0},
}


def conv_matrix(w, H, W, stride=1, pad=0):
    """Dense matrix of a 2-D convolution (no bias), input [C_in, H, W] -> [C_out, Ho, Wo],
    both flattened channel-major."""
    co, ci, kh, kw = w.shape
    Ho = (H + 2 * pad - kh) // stride + 1
    Wo = (W + 2 * pad - kw) // stride + 1
    A = np.zeros((co * Ho * Wo, ci * H * W))
    for o in range(co):
        for y in range(Ho):
            for x in range(Wo):
                r = (o * Ho + y) * Wo + x
                for c in range(ci):
                    for dy in range(kh):
                        for dx in range(kw):
                            iy, ix = y * stride + dy - pad, x * stride + dx - pad
                            if 0 <= iy < H and 0 <= ix < W:
                                A[r, (c * H + iy) * W + ix] += w[o, c, dy, dx]
    return A, (co, Ho, Wo)


def conv_reference(x, w, b, stride=1, pad=0):
    """Direct convolution, independent of conv_matrix: x [C, H, W]."""
    co, ci, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    Ho = (x.shape[1] + 2 * pad - kh) // stride + 1
    Wo = (x.shape[2] + 2 * pad - kw) // stride + 1
    y = np.zeros((co, Ho, Wo))
    for dy in range(kh):
        for dx in range(kw):
            patch = xp[:, dy: dy + stride * Ho: stride, dx: dx + stride * Wo: stride]
            y += np.einsum("oc,chw->ohw", w[:, :, dy, dx], patch)
    return y + b[:, None, None]


def diagonals(A, bias, S, in_val=None, out_val=None):
    """Generalised diagonals of y = A x + b with x, y packed S slots per ciphertext, in the
    layouts of the value records `in_val`, `out_val` (compact when None)."""
    from pannc_openfhe.program import extent, positions

    n_out, n_in = A.shape
    in_val = in_val or {"shape": [n_in]}
    out_val = out_val or {"shape": [n_out]}
    m_out, m_in = -(-extent(out_val) // S), -(-extent(in_val) // S)
    Ap = np.zeros((m_out * S, m_in * S))
    Ap[np.ix_(positions(out_val), positions(in_val))] = A
    s = np.arange(S)
    index, diag = [], []
    for o in range(m_out):
        for i in range(m_in):
            blk = Ap[o * S:(o + 1) * S, i * S:(i + 1) * S]
            for k in range(S):
                d = blk[s, (s + k) % S]
                if np.any(d != 0):
                    index.append((o, i, k))
                    diag.append(d)
    bp = np.zeros(m_out * S)
    bp[positions(out_val)] = bias
    index = np.array(index, dtype=np.int64).reshape(-1, 3)
    diag = np.array(diag, dtype=np.float64).reshape(-1, S)
    return index, diag, bp.reshape(m_out, S)


def best_n1(ks, S):
    """Baby steps minimising baby + giant rotations for the offsets ks (a plain search)."""
    best = (None, 1)
    for n1 in range(1, S + 1):
        cost = len({k % n1 for k in ks} - {0}) + len({k // n1 for k in ks} - {0})
        if best[0] is None or cost < best[0]:
            best = (cost, n1)
    return best[1]


class Builder:
    def __init__(self, slots, name="test", levels=None):
        self.S = slots
        self.name = name
        self.values = []
        self.inputs = []
        self.ops = []
        self.outputs = []
        self.arrays = {}
        self.rot = set()
        self.levels_cap = levels

    def _value(self, shape, level, rng=None, layout=None):
        from pannc_openfhe.program import extent

        v = len(self.values)
        val = {"id": v, "shape": list(shape), "level": level}
        if layout is not None:
            val["layout"] = layout
        val["ciphertexts"] = -(-extent(val) // self.S)
        if rng is not None:
            val["range"] = list(rng)
        self.values.append(val)
        return v

    def input(self, name, shape):
        assert not self.ops
        v = self._value(shape, 0)
        self.inputs.append({"name": name, "value": v, "shape": list(shape)})
        return v

    def lv(self, v):
        return self.values[v]["level"]

    def shape(self, v):
        return self.values[v]["shape"]

    def layout(self, v):
        return self.values[v].get("layout")

    def _op(self, op, shape, level, layout=None):
        out = self._value(shape, level, layout=layout)
        op = dict(op, out=out, level=level)
        self.ops.append(op)
        return out

    def linear(self, x, A, bias, out_shape, n1=None, layout=None):
        out_val = {"shape": list(out_shape)}
        if layout is not None:
            out_val["layout"] = layout
        index, diag, b = diagonals(A, bias, self.S, self.values[x], out_val)
        return self.linear_diagonals(x, index, diag, b, out_shape, n1, layout)

    def conv(self, x, w, bias, stride=1, pad=1, n1=None, layout=None):
        """A 2-D convolution from its taps (any size: no dense matrix)."""
        _, H, W = self.shape(x)
        co, _, kh, kw = w.shape
        out_shape = [co, (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1]
        out_val = {"shape": out_shape}
        if layout is not None:
            out_val["layout"] = layout
        index, diag, b = conv_diagonals(w, bias, self.values[x], out_val, stride, pad, self.S)
        return self.linear_diagonals(x, index, diag, b, out_shape, n1, layout)

    def linear_diagonals(self, x, index, diag, b, out_shape, n1=None, layout=None):
        key = f"L{len(self.ops)}"
        ks = sorted(set(int(k) for k in index[:, 2]))
        n1 = n1 or best_n1(ks, self.S)
        for k in ks:
            g, j = divmod(k, n1)
            if j:
                self.rot.add(j)
            if g:
                self.rot.add(g * n1)
        self.arrays[f"{key}_index"] = index
        self.arrays[f"{key}_diag"] = diag
        self.arrays[f"{key}_bias"] = b
        return self._op({"op": "linear", "in": x, "weights": key, "n1": n1, "diagonals": int(index.shape[0]),
                         "out_shape": list(out_shape)}, out_shape, self.lv(x) + 1, layout)

    def poly(self, x, circuit):
        return self._op({"op": "poly", "in": x, "circuit": circuit}, self.shape(x), self.lv(x) + circuit["depth"], self.layout(x))

    def add(self, a, b):
        return self._op({"op": "add", "a": a, "b": b}, self.shape(a), max(self.lv(a), self.lv(b)), self.layout(a))

    def mul_const(self, a, c):
        return self._op({"op": "mul_const", "a": a, "c": c}, self.shape(a), self.lv(a) + (0 if float(c).is_integer() else 1), self.layout(a))

    def rotate(self, a, k):
        self.rot.add(k)
        return self._op({"op": "rotate", "a": a, "k": k}, self.shape(a), self.lv(a), self.layout(a))

    def bootstrap(self, x):
        return self._op({"op": "bootstrap", "in": x}, self.shape(x), 0, self.layout(x))

    def output(self, name, v):
        self.outputs.append({"name": name, "value": v, "shape": self.shape(v)})

    def doc(self):
        depth = max(v["level"] for v in self.values)
        levels = self.levels_cap if self.levels_cap is not None else depth
        counts = self.stats()
        return {
            "format": "pannc-circuit",
            "version": 3,
            "packing": "packed",
            "name": self.name,
            "slots": self.S,
            "values": self.values,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "ops": self.ops,
            "rotations": sorted(self.rot),
            "depth": depth,
            "stats": counts,
            "ckks": {"ring_dim": max(2 * self.S, 1 << 14), "slots": self.S, "scale_bits": 59, "first_mod_bits": 60,
                     "levels": levels,
                     "bootstrap": {"level_budget": [3, 3], "secret": "uniform_ternary", "input_bound": 1.0},
                     "security": "HEStd_128_classic"},
        }

    def stats(self):
        """`stats` as the spec counts them (per sample)."""
        st = {"linear": 0, "poly": 0, "bootstraps": 0, "rotations": 0, "ct_ct_mults": 0, "pt_mults": 0, "keys": len(self.rot)}
        for op in self.ops:
            k = op["op"]
            if k == "linear":
                st["linear"] += 1
                index, n1 = self.arrays[op["weights"] + "_index"], op["n1"]
                baby = {(int(i), int(kk) % n1) for _, i, kk in index if int(kk) % n1}
                giant = {(int(o), int(kk) // n1) for o, _, kk in index if int(kk) // n1}
                st["rotations"] += len(baby) + len(giant)
                st["pt_mults"] += int(index.shape[0])
            elif k == "poly":
                st["poly"] += 1
                st["ct_ct_mults"] += self.values[op["in"]]["ciphertexts"] * sum(1 for e in op["circuit"]["ops"] if e["op"] == "mul")
            elif k == "mul_const":
                st["pt_mults"] += self.values[op["a"]]["ciphertexts"]
            elif k == "rotate":
                st["rotations"] += 1
            elif k == "bootstrap":
                st["bootstraps"] += self.values[op["in"]]["ciphertexts"]
        return st

    def write(self, directory, doc=None, arrays=None):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "program.json"), "w") as f:
            json.dump(doc or self.doc(), f, indent=1)
        np.savez(os.path.join(directory, "weights.npz"), **(arrays if arrays is not None else self.arrays))
        return directory


def cheb3(u):
    return np.polynomial.chebyshev.chebval(u, CHEB3_COEFFS)


def small_cnn(S, seed=0, bootstrap=True):
    """A CNN-shaped program and its independent dense reference.

    input [3, 8, 8] -> conv3x3 3->4 (stride 1, pad 1) -> cheb3 -> conv3x3 4->4 (stride 2, pad 1)
    -> x0.5 -> [bootstrap] -> y + rot(y, 3) (residual-style add) -> square-0.25 -> dense 64->10.
    Returns (builder, reference(x) -> logits[10]).
    """
    rng = np.random.default_rng(seed)
    b = Builder(S, name=f"small_cnn_s{S}_seed{seed}")
    w1 = rng.normal(0, 0.12, (4, 3, 3, 3))
    b1 = rng.normal(0, 0.05, 4)
    w2 = rng.normal(0, 0.15, (4, 4, 3, 3))
    b2 = rng.normal(0, 0.05, 4)
    w3 = rng.normal(0, 0.2, (10, 64))
    b3 = rng.normal(0, 0.1, 10)
    x = b.input("image", [3, 8, 8])
    A1, s1 = conv_matrix(w1, 8, 8, 1, 1)
    h = b.linear(x, A1, np.repeat(b1, 64), s1)
    h = b.poly(h, CHEB3)
    A2, s2 = conv_matrix(w2, 8, 8, 2, 1)
    h = b.linear(h, A2, np.repeat(b2, 16), s2)
    h = b.mul_const(h, 0.5)
    if bootstrap:
        h = b.bootstrap(h)
    r = b.rotate(h, 3)
    h = b.add(h, r)
    h = b.poly(h, SQUARE)
    y = b.linear(h, w3, b3, [10])
    b.output("logits", y)

    def reference(img):
        t = conv_reference(img, w1, b1, 1, 1)
        t = cheb3(t)
        t = conv_reference(t, w2, b2, 2, 1) * 0.5
        v = np.zeros(-(-t.size // S) * S)
        v[: t.size] = t.ravel()
        t = (v + np.roll(v, -3))[:64]  # the rotation reads the zero slots past the tensor
        t = t * t - 0.25
        return w3 @ t + b3

    return b, reference


def images(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 3, 8, 8))


def rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(b)), 1e-300))




def boot_mix(S, seed=0):
    """Multi-ciphertext bootstrap of a pending product: input [2, 8, 8] -> conv3x3 2->2 (pad 1)
    -> square-0.25 -> bootstrap (every ciphertext) -> cheb3 -> dense 128->5.
    Returns (builder, reference)."""
    rng = np.random.default_rng(seed)
    b = Builder(S, name=f"boot_mix_s{S}_seed{seed}")
    w1 = rng.normal(0, 0.15, (2, 2, 3, 3))
    b1 = rng.normal(0, 0.05, 2)
    w2 = rng.normal(0, 0.1, (5, 128))
    b2 = rng.normal(0, 0.1, 5)
    x = b.input("x", [2, 8, 8])
    A1, s1 = conv_matrix(w1, 8, 8, 1, 1)
    h = b.linear(x, A1, np.repeat(b1, 64), s1)
    h = b.poly(h, SQUARE)
    h = b.bootstrap(h)
    h = b.poly(h, CHEB3)
    y = b.linear(h, w2, b2, [5])
    b.output("y", y)

    def reference(img):
        t = conv_reference(img, w1, b1, 1, 1)
        t = cheb3(t * t - 0.25)
        return w2 @ t.ravel() + b2

    return b, reference


def mux_cnn(S, seed=0):
    """Multiplexed layout (docs/packed-format.md): input [2, 8, 8] (compact) -> conv3x3 2->4
    stride 2 pad 1 into gap 2 on the 8x8 grid -> square-0.25 -> conv3x3 4->4 pad 1 (same layout)
    -> residual add -> bootstrap -> dense 64->5 (compact). Returns (builder, reference)."""
    rng = np.random.default_rng(seed)
    b = Builder(S, name=f"mux_cnn_s{S}_seed{seed}")
    mux = {"gap": 2, "grid": [8, 8]}
    w1 = rng.normal(0, 0.2, (4, 2, 3, 3))
    b1 = rng.normal(0, 0.05, 4)
    w2 = rng.normal(0, 0.15, (4, 4, 3, 3))
    b2 = rng.normal(0, 0.05, 4)
    w3 = rng.normal(0, 0.2, (5, 64))
    b3 = rng.normal(0, 0.1, 5)
    x = b.input("x", [2, 8, 8])
    A1, s1 = conv_matrix(w1, 8, 8, 2, 1)
    h = b.linear(x, A1, np.repeat(b1, 16), s1, layout=mux)
    p = b.poly(h, SQUARE)
    A2, s2 = conv_matrix(w2, 4, 4, 1, 1)
    g = b.linear(p, A2, np.repeat(b2, 16), s2, layout=mux)
    r = b.add(p, g)
    r = b.bootstrap(r)
    y = b.linear(r, w3, b3, [5])
    b.output("y", y)

    def reference(img):
        t = conv_reference(img, w1, b1, 2, 1)
        t = t * t - 0.25
        t = t + conv_reference(t, w2, b2, 1, 1)
        return w3 @ t.ravel() + b3

    return b, reference


def conv_diagonals(w, bias, in_val, out_val, stride, pad, S):
    """Generalised diagonals of a 2-D convolution straight from its taps (no dense matrix):
    input value record `in_val` [C_in, H, W], output `out_val` [C_out, Ho, Wo], any layouts."""
    from pannc_openfhe.program import extent, positions

    co_n, ci_n, kh, kw = w.shape
    _, H, W = in_val["shape"]
    _, Ho, Wo = out_val["shape"]
    pin = positions(in_val).reshape(ci_n, H, W)
    pout = positions(out_val).reshape(co_n, Ho, Wo)
    m_out = -(-extent(out_val) // S)
    rows = {}
    for dy in range(kh):
        for dx in range(kw):
            y = np.arange(Ho)
            x = np.arange(Wo)
            iy = y * stride + dy - pad
            ix = x * stride + dx - pad
            vy, vx = (iy >= 0) & (iy < H), (ix >= 0) & (ix < W)
            yy, xx = np.meshgrid(y[vy], x[vx], indexing="ij")
            iyy, ixx = np.meshgrid(iy[vy], ix[vx], indexing="ij")
            for co in range(co_n):
                so = pout[co][yy, xx].ravel()
                for ci in range(ci_n):
                    si = pin[ci][iyy, ixx].ravel()
                    o, s = so // S, so % S
                    i = si // S
                    k = (si % S - s) % S
                    keys = (o * (1 << 20) + i) * S + k
                    for kv in np.unique(keys):
                        sel = keys == kv
                        kk = int(kv)
                        row = rows.get(kk)
                        if row is None:
                            row = rows[kk] = np.zeros(S)
                        row[s[sel]] += w[co, ci, dy, dx]
    order = sorted(rows)
    index = np.array([((kk // S) >> 20, (kk // S) & ((1 << 20) - 1), kk % S) for kk in order], dtype=np.int64).reshape(-1, 3)
    diag = np.array([rows[kk] for kk in order]).reshape(-1, S)
    b = np.zeros(m_out * S)
    b[positions(out_val)] = np.repeat(bias, Ho * Wo)
    return index, diag, b.reshape(m_out, S)
