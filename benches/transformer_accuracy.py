#!/usr/bin/env python3
"""Top-1 accuracy of a compiled PANN against its backbone, in onnxruntime, on a whole test set.

    python benches/transformer_accuracy.py BACKBONE.onnx PANN.onnx X.npy Y.npy

Also checks that the PANN holds only CKKS-evaluable ops (Add/Sub/Mul/MatMul/Gemm/Conv, data
movement; Div and Pow only by constants) and prints the op histogram.
"""
import sys
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort

ARITH = {"Add", "Sub", "Mul", "MatMul", "Gemm", "Conv", "Neg", "Div", "Pow"}
MOVE = {"Reshape", "Transpose", "Concat", "Slice", "Gather", "Expand", "Unsqueeze", "Squeeze",
        "Flatten", "Identity", "Shape", "Where", "Constant", "ConstantOfShape", "Cast", "Equal",
        "ReduceSum", "ReduceMean", "Tile", "Split", "Range"}


def run(path, x, batch=500):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def main(backbone, pann, xf, yf):
    m = onnx.load(pann)
    inits = {i.name for i in m.graph.initializer}
    consts = {o for n in m.graph.node if n.op_type == "Constant" for o in n.output}
    hist = Counter(n.op_type for n in m.graph.node)
    bad = [f"{n.name} ({n.op_type})" for n in m.graph.node if n.op_type not in ARITH | MOVE]
    bad += [f"{n.name} ({n.op_type} by a computed value)" for n in m.graph.node
            if n.op_type in ("Div", "Pow") and n.input[1] not in inits | consts]
    print("PANN ops:", dict(sorted(hist.items())))
    print("not CKKS-evaluable:", bad or "none")
    x, y = np.load(xf), np.load(yf)
    a = run(backbone, x).argmax(1)
    b = run(pann, x).argmax(1)
    print(f"n={len(y)} backbone {np.mean(a == y) * 100:.2f} %  PANN {np.mean(b == y) * 100:.2f} %  "
          f"delta {(np.mean(b == y) - np.mean(a == y)) * 100:+.2f} points  argmax agreement {np.mean(a == b) * 100:.2f} %")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
