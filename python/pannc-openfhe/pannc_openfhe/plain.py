"""Plaintext semantics of a packed program (docs/packed-format.md, "Plaintext semantics").

Every ciphertext is replaced by its vector of S float64 slots: `rotate` is a cyclic shift,
`linear` the generalised-diagonal sum, `poly` the embedded circuit's float64 evaluation,
`bootstrap` the identity. numpy only; no OpenFHE.
"""

import numpy as np

from . import circuit as v1
from .program import positions


def pack(x, shape, slots):
    """One sample (any array with numel(shape) elements) -> [m, S] slot vectors, zero padded."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = int(np.prod(shape))
    if x.size != n:
        raise ValueError(f"sample has {x.size} elements, the input shape {shape} has {n}")
    m = -(-n // slots)
    out = np.zeros(m * slots)
    out[:n] = x
    return out.reshape(m, slots)


def unpack(cts, shape):
    """[m, S] slot vectors -> the tensor of `shape` (used slots only)."""
    n = int(np.prod(shape))
    return np.asarray(cts).reshape(-1)[:n].reshape(shape)


def rot(v, k):
    """Left rotation by k: y[i] = v[(i + k) mod S]."""
    return np.roll(v, -k, axis=-1)


def linear(lin, x):
    """y_o[s] = sum_i sum_k d[o,i,k][s] * x_i[(s + k) mod S] + b_o[s]; x: [m_in, S]."""
    y = lin.bias.copy()
    for r in range(lin.index.shape[0]):
        o, i, k = (int(t) for t in lin.index[r])
        y[o] += lin.diag[r] * rot(x[i], k)
    return y


def poly(circuit, x):
    """The embedded version-1 circuit, slot-wise on every ciphertext of x ([m, S])."""
    vals = v1.plain_eval(circuit, [x])
    return np.broadcast_to(vals[circuit["outputs"][0]["value"]], x.shape).copy()


def run(prog, samples, trace=None):
    """Evaluate the program on one sample per input (arrays of the input shapes).

    Returns (outputs, values): outputs as arrays of the output shapes, values as the [m, S]
    slot vectors of every value (for comparisons with an encrypted run). `trace(j, op, y)` is
    called after each op if given.
    """
    S = prog.slots
    vals = [pack(x, prog.values[i]["shape"], S) for i, x in enumerate(samples)]
    for j, op in enumerate(prog.ops):
        k = op["op"]
        if k == "linear":
            y = linear(prog.linear[op["weights"]], vals[op["in"]])
        elif k == "poly":
            y = poly(op["circuit"], vals[op["in"]])
        elif k == "add":
            y = vals[op["a"]] + vals[op["b"]]
        elif k == "mul_const":
            y = vals[op["a"]] * float(op["c"])
        elif k == "rotate":
            y = rot(vals[op["a"]], int(op["k"]))
        elif k == "bootstrap":
            y = vals[op["in"]].copy()
        else:  # validated before
            raise ValueError(f"unknown op {k}")
        vals.append(y)
        if trace:
            trace(j, op, y)
    outs = [unpack(vals[o["value"]], prog.values[o["value"]]["shape"]) for o in prog.outputs]
    return outs, vals


def used_mask(prog, v):
    """Boolean [m, S]: the used slots of value v (compact or multiplexed layout)."""
    m, S = prog.cts(v), prog.slots
    mask = np.zeros(m * S, dtype=bool)
    mask[positions(prog.values[v])] = True
    return mask.reshape(m, S)


def tensor(prog, v, cts):
    """The tensor value v holds in its slot vectors [m, S] (any layout)."""
    val = prog.values[v]
    return np.asarray(cts).reshape(-1)[positions(val)].reshape(val["shape"])
