"""Generates ort_network.json: a small residual CNN (every common CNN op) with seeded
weights, a batch of inputs, and onnxruntime's outputs.

Run with the project venv:  /work/venv/bin/python crates/interp/tests/data/gen_ort_network.py
The JSON lists graph inputs (with a symbolic batch "N"), initializers, and nodes in ONNX
form (op type, attributes, input/output names; "" for an absent optional input).
"""

import json
import os

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)
inits = {}
nodes = []


def W(name, *shape, scale=0.5):
    inits[name] = rng.uniform(-scale, scale, size=shape).astype(np.float32)
    return name


def I(name, values):
    inits[name] = np.array(values, dtype=np.int64)
    return name


def node(op, ins, outs, **attrs):
    nodes.append(helper.make_node(op, ins, outs, **attrs))
    return outs[0]


def bn(x, c, name):
    inits[name + "_s"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    inits[name + "_b"] = rng.uniform(-0.2, 0.2, c).astype(np.float32)
    inits[name + "_m"] = rng.uniform(-0.2, 0.2, c).astype(np.float32)
    inits[name + "_v"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    return node("BatchNormalization", [x, name + "_s", name + "_b", name + "_m", name + "_v"], [name], epsilon=1e-5)


h = node("Conv", ["x", W("w0", 6, 1, 3, 3), W("b0", 6)], ["c0"], pads=[1, 1, 1, 1])
h = bn(h, 6, "bn0")
h = node("Relu", [h], ["r0"])
y = node("Conv", [h, W("w1", 6, 6, 3, 3, scale=0.3), W("b1", 6)], ["c1"], pads=[1, 1, 1, 1])
y = bn(y, 6, "bn1")
y = node("LeakyRelu", [y], ["lr1"], alpha=0.1)
y = node("Conv", [y, W("w2", 6, 1, 3, 3), W("b2", 6)], ["c2"], pads=[1, 1, 1, 1], group=6)
h = node("Add", [y, h], ["res1"])
h = node("Relu", [h], ["r1"])
h = node("MaxPool", [h], ["mp"], kernel_shape=[2, 2], strides=[2, 2])
h = node("Conv", [h, W("w3", 8, 6, 3, 3, scale=0.3), W("b3", 8)], ["c3"], strides=[2, 2], auto_pad="SAME_UPPER")
inits["cmin"] = np.array(0.0, dtype=np.float32)
inits["cmax"] = np.array(6.0, dtype=np.float32)
h = node("Clip", [h, "cmin", "cmax"], ["relu6"])
a = node("AveragePool", [h], ["ap"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=0)
s = node("Sigmoid", [a], ["sg"])
h = node("Mul", [h, s], ["swish"])
g = node("GlobalAveragePool", [h], ["gap"])
shp = node("Shape", [g], ["shp"])
n0 = node("Gather", [shp, I("i0", 0)], ["n0"], axis=0)
n1 = node("Unsqueeze", [n0, I("ax0", [0])], ["n1"])
spec = node("Concat", [n1, I("m1", [-1])], ["spec"], axis=0)
f = node("Reshape", [g, spec], ["flat"])
f = node("Gemm", [f, W("fw", 10, 8), W("fb", 10)], ["fc"], transB=1)
e = node("Tanh", [f], ["th"])
f2 = node("MatMul", [e, W("mw", 10, 5)], ["mm"])
inits["twof"] = np.array([2.0], dtype=np.float32)
f2 = node("Div", [f2, "twof"], ["half"])
f2 = node("Gelu", [f2], ["gelu"])
o = node("Softmax", [f2], ["probs"], axis=-1)
m = node("ReduceMean", [h, I("axes23", [2, 3])], ["chanmean"], keepdims=0)

x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 12, 12])
outs = [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 5]), helper.make_tensor_value_info("chanmean", TensorProto.FLOAT, ["N", 8])]
graph = helper.make_graph(nodes, "small_cnn", [x_info], outs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
model.ir_version = 9
sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
x = rng.uniform(0, 1, size=(5, 1, 12, 12)).astype(np.float32)
probs, chanmean = sess.run(None, {"x": x})


def enc(a):
    a = np.asarray(a)
    kind = {"float32": "f32", "int64": "i64"}[str(a.dtype)]
    return {"dtype": kind, "shape": list(a.shape), "data": [float(v) if kind == "f32" else int(v) for v in a.reshape(-1)]}


def attrs(n):
    d = {}
    for a in n.attribute:
        v = helper.get_attribute_value(a)
        d[a.name] = v.decode() if isinstance(v, bytes) else (list(v) if hasattr(v, "__len__") and not isinstance(v, str) else v)
    return d


doc = {
    "generator": "gen_ort_network.py",
    "onnxruntime": ort.__version__,
    "inputs": [{"name": "x", "dtype": "f32", "shape": ["N", 1, 12, 12]}],
    "initializers": {k: enc(v) for k, v in inits.items()},
    "nodes": [{"op": n.op_type, "name": n.output[0] + "_node", "inputs": list(n.input), "outputs": list(n.output), "attrs": attrs(n)} for n in nodes],
    "outputs": ["probs", "chanmean"],
    "x": enc(x),
    "expected": [enc(probs), enc(chanmean)],
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort_network.json")
with open(out, "w") as fh:
    json.dump(doc, fh, separators=(",", ":"))
print(f"wrote {out}: {len(nodes)} nodes")
