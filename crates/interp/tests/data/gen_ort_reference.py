"""Generates ort_reference.json: single-op cases evaluated by onnxruntime.

Run with the project venv:  /work/venv/bin/python crates/interp/tests/data/gen_ort_reference.py
Each case records the op, its attributes, its inputs (None for an absent optional input)
and onnxruntime's outputs. Inputs are small and seeded, so the file is stable.
"""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

OPSET = 20
rng = np.random.default_rng(1234)
cases = []

NP2ONNX = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.int64: TensorProto.INT64}


def f32(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def i64(values):
    return np.array(values, dtype=np.int64)


def enc(a):
    if a is None:
        return None
    a = np.asarray(a)
    kind = {"float32": "f32", "float64": "f64", "int64": "i64"}[str(a.dtype)]
    return {"dtype": kind, "shape": list(a.shape), "data": [float(x) if a.dtype.kind == "f" else int(x) for x in a.reshape(-1)]}


def case(name, op, inputs, attrs=None, n_out=1):
    attrs = attrs or {}
    in_names = []
    vis = []
    feeds = {}
    for i, a in enumerate(inputs):
        if a is None:
            in_names.append("")
            continue
        n = f"in{i}"
        in_names.append(n)
        vis.append(helper.make_tensor_value_info(n, NP2ONNX[np.dtype(a.dtype).type], list(a.shape)))
        feeds[n] = a
    out_names = [f"out{i}" for i in range(n_out)]
    node = helper.make_node(op, in_names, out_names, **attrs)
    outs = [helper.make_empty_tensor_value_info(n) for n in out_names]
    graph = helper.make_graph([node], name, vis, outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    res = sess.run(None, feeds)
    cases.append({"name": name, "op": op, "attrs": attrs, "inputs": [enc(a) for a in inputs], "outputs": [enc(r) for r in res]})


x = f32(2, 3, 7, 6)
w = f32(4, 3, 3, 3)
b = f32(4)
case("conv_basic", "Conv", [x, w, b])
case("conv_pads_strides", "Conv", [x, w, b], {"pads": [1, 0, 2, 1], "strides": [2, 3]})
case("conv_dilation", "Conv", [x, w], {"dilations": [2, 1], "pads": [1, 1, 1, 1]})
case("conv_same_upper", "Conv", [x, w, b], {"auto_pad": "SAME_UPPER", "strides": [2, 2]})
case("conv_same_lower", "Conv", [x, w, b], {"auto_pad": "SAME_LOWER", "strides": [2, 2]})
case("conv_valid", "Conv", [x, w, b], {"auto_pad": "VALID", "strides": [1, 2]})
case("conv_group2", "Conv", [f32(2, 4, 5, 5), f32(6, 2, 3, 3), f32(6)], {"group": 2, "pads": [1, 1, 1, 1]})
case("conv_depthwise", "Conv", [f32(1, 4, 6, 6), f32(4, 1, 3, 3), f32(4)], {"group": 4, "pads": [1, 1, 1, 1], "strides": [2, 2]})
case("conv_depthwise_mult2", "Conv", [f32(1, 3, 5, 5), f32(6, 1, 3, 3)], {"group": 3})
case("conv_1x1", "Conv", [f32(2, 5, 4, 4), f32(7, 5, 1, 1), f32(7)])
case("conv_1d", "Conv", [f32(2, 3, 10), f32(4, 3, 3), f32(4)], {"pads": [2, 1], "strides": [2], "dilations": [2]})
case("conv_3d", "Conv", [f32(1, 2, 4, 5, 4), f32(3, 2, 2, 3, 2), f32(3)], {"pads": [1, 0, 1, 0, 1, 1], "strides": [1, 2, 1]})
case("conv_k_large", "Conv", [f32(1, 20, 9, 9), f32(8, 20, 5, 5), f32(8)], {"pads": [2, 2, 2, 2]})

case("gemm_basic", "Gemm", [f32(3, 5), f32(5, 4), f32(4)])
case("gemm_trans", "Gemm", [f32(5, 3), f32(4, 5), f32(3, 4)], {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0})
case("gemm_c_col", "Gemm", [f32(3, 5), f32(5, 4), f32(3, 1)], {"beta": -1.5})
case("gemm_no_c", "Gemm", [f32(3, 5), f32(4, 5)], {"transB": 1})
case("matmul_2d", "MatMul", [f32(3, 4), f32(4, 5)])
case("matmul_1d_2d", "MatMul", [f32(4), f32(4, 5)])
case("matmul_2d_1d", "MatMul", [f32(3, 4), f32(4)])
case("matmul_1d_1d", "MatMul", [f32(4), f32(4)])
case("matmul_batched", "MatMul", [f32(2, 3, 4), f32(4, 5)])
case("matmul_broadcast", "MatMul", [f32(2, 1, 3, 4), f32(5, 4, 2)])
case("matmul_batched_both", "MatMul", [f32(3, 2, 4), f32(3, 4, 2)])
case("matmul_i64", "MatMul", [i64([[1, 2], [3, 4]]), i64([[5, -6], [7, 8]])])

case("add_bcast", "Add", [f32(2, 3, 4), f32(3, 1)])
case("sub_bcast", "Sub", [f32(1, 4), f32(3, 1)])
case("mul_scalar", "Mul", [f32(2, 3), np.array(1.5, dtype=np.float32)])
case("div_bcast", "Div", [f32(2, 3, 4), f32(4, lo=0.5, hi=2.0)])
case("add_chan", "Add", [f32(2, 3, 2, 2), f32(1, 3, 1, 1)])
case("div_i64", "Div", [i64([7, -7, 9, 100]), i64([2, 2, -4, 7])])
case("add_i64_bcast", "Add", [i64([[1], [2]]), i64([10, 20, 30])])

xb = f32(2, 3, 4, 4, lo=-3, hi=3)
case("batchnorm", "BatchNormalization", [xb, f32(3), f32(3), f32(3), f32(3, lo=0.1, hi=2.0)], {"epsilon": 1e-3})
case("batchnorm_2d", "BatchNormalization", [f32(5, 3), f32(3), f32(3), f32(3), f32(3, lo=0.1, hi=2.0)])

xa = np.concatenate([f32(40, lo=-6, hi=6), np.array([-100, -30, -0.0, 0.0, 30, 100], dtype=np.float32)])
case("relu", "Relu", [xa])
case("leakyrelu", "LeakyRelu", [xa], {"alpha": 0.1})
case("sigmoid", "Sigmoid", [xa])
case("tanh", "Tanh", [xa])
case("erf", "Erf", [xa])
case("gelu", "Gelu", [xa])
case("gelu_tanh", "Gelu", [xa], {"approximate": "tanh"})
case("clip_both", "Clip", [xa, np.array(-1.0, dtype=np.float32), np.array(2.0, dtype=np.float32)])
case("clip_max", "Clip", [xa, None, np.array(0.5, dtype=np.float32)])
case("clip_min", "Clip", [xa, np.array(-0.5, dtype=np.float32)])
case("clip_i64", "Clip", [i64([-5, 0, 3, 9]), np.array(-1, dtype=np.int64), np.array(4, dtype=np.int64)])
case("softmax_last", "Softmax", [f32(2, 3, 5, lo=-5, hi=5)])
case("softmax_axis1", "Softmax", [f32(2, 3, 5, lo=-5, hi=5)], {"axis": 1})
case("softmax_axis0", "Softmax", [f32(4, 3, lo=-50, hi=50)], {"axis": 0})

xp = f32(2, 2, 7, 8)
case("maxpool_basic", "MaxPool", [xp], {"kernel_shape": [2, 2]})
case("maxpool_strides_pads", "MaxPool", [xp], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]})
case("maxpool_ceil", "MaxPool", [xp], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1})
case("maxpool_ceil_pads", "MaxPool", [xp], {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1})
case("maxpool_dilation", "MaxPool", [xp], {"kernel_shape": [2, 2], "dilations": [2, 2]})
case("maxpool_same_upper", "MaxPool", [xp], {"kernel_shape": [3, 2], "strides": [2, 3], "auto_pad": "SAME_UPPER"})
case("maxpool_same_lower", "MaxPool", [xp], {"kernel_shape": [3, 2], "strides": [2, 3], "auto_pad": "SAME_LOWER"})
case("maxpool_indices", "MaxPool", [xp], {"kernel_shape": [2, 3], "strides": [2, 2], "pads": [0, 1, 1, 0]}, n_out=2)
case("maxpool_1d", "MaxPool", [f32(2, 3, 9)], {"kernel_shape": [3], "strides": [2]})
case("maxpool_3d", "MaxPool", [f32(1, 2, 4, 5, 6)], {"kernel_shape": [2, 2, 3], "strides": [2, 1, 2], "pads": [0, 1, 1, 1, 0, 1]})
case("avgpool_basic", "AveragePool", [xp], {"kernel_shape": [2, 2]})
case("avgpool_pads", "AveragePool", [xp], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
case("avgpool_pads_incl", "AveragePool", [xp], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1})
case("avgpool_ceil", "AveragePool", [xp], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1})
case("avgpool_ceil_pads_incl", "AveragePool", [xp], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1, "count_include_pad": 1})
case("avgpool_ceil_pads", "AveragePool", [xp], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1})
case("avgpool_same_upper", "AveragePool", [xp], {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"})
case("avgpool_same_upper_incl", "AveragePool", [xp], {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER", "count_include_pad": 1})
case("avgpool_dilation", "AveragePool", [xp], {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 1, 1]})
case("avgpool_1d", "AveragePool", [f32(2, 3, 9)], {"kernel_shape": [4], "strides": [3], "pads": [1, 2]})
case("gap", "GlobalAveragePool", [f32(2, 3, 5, 4)])
case("gap_1d", "GlobalAveragePool", [f32(2, 3, 5)])

xr = f32(2, 3, 4)
case("reducemean_axes", "ReduceMean", [xr, i64([1])])
case("reducemean_axes_nokeep", "ReduceMean", [xr, i64([0, -1])], {"keepdims": 0})
case("reducemean_all", "ReduceMean", [xr])
case("reducemean_all_nokeep", "ReduceMean", [xr], {"keepdims": 0})
case("reducemean_noop", "ReduceMean", [xr, i64([])], {"noop_with_empty_axes": 1})

case("flatten_1", "Flatten", [f32(2, 3, 2, 2)])
case("flatten_0", "Flatten", [f32(2, 3, 2)], {"axis": 0})
case("flatten_neg", "Flatten", [f32(2, 3, 2, 2)], {"axis": -1})
case("reshape_0_neg1", "Reshape", [f32(2, 3, 4), i64([0, -1])])
case("reshape_neg1_first", "Reshape", [f32(2, 3, 4), i64([-1, 2, 2])])
case("reshape_allowzero", "Reshape", [np.zeros((0, 3), dtype=np.float32), i64([3, 0])], {"allowzero": 1})
case("transpose_default", "Transpose", [f32(2, 3, 4)])
case("transpose_perm", "Transpose", [f32(2, 3, 4, 5)], {"perm": [0, 2, 3, 1]})
case("concat_1", "Concat", [f32(2, 1, 3), f32(2, 2, 3), f32(2, 3, 3)], {"axis": 1})
case("concat_neg", "Concat", [f32(2, 3), f32(2, 1)], {"axis": -1})
case("concat_i64", "Concat", [i64([1, 2]), i64([3])], {"axis": 0})

xq = f32(2, 3, 4)
case("pad_constant", "Pad", [xq, i64([0, 1, 2, 0, 2, 1]), np.array(1.5, dtype=np.float32)])
case("pad_reflect", "Pad", [xq, i64([0, 2, 3, 0, 1, 3])], {"mode": "reflect"})
case("pad_edge", "Pad", [xq, i64([1, 2, 0, 0, 1, 5])], {"mode": "edge"})
case("pad_wrap", "Pad", [xq, i64([0, 2, 3, 0, 1, 2])], {"mode": "wrap"})
case("pad_negative", "Pad", [xq, i64([0, -1, 2, 0, 1, -2])])
case("pad_axes", "Pad", [xq, i64([1, 2, 0, 3]), None, i64([-1, 1])], {"mode": "constant"})
case("pad_axes_reflect", "Pad", [xq, i64([2, 1]), None, i64([2])], {"mode": "reflect"})
case("squeeze_axes", "Squeeze", [f32(1, 3, 1, 2), i64([0, -2])])
case("squeeze_all", "Squeeze", [f32(1, 3, 1, 2)])
case("unsqueeze", "Unsqueeze", [f32(3, 2), i64([0, -1, 2])])
case("shape", "Shape", [f32(2, 3, 4, 5)])
case("shape_slice", "Shape", [f32(2, 3, 4, 5)], {"start": 1, "end": -1})
case("shape_clamp", "Shape", [f32(2, 3, 4, 5)], {"start": -10, "end": 10})
case("gather_0", "Gather", [f32(5, 3), i64([[0, -1], [2, 4]])])
case("gather_1", "Gather", [f32(2, 5, 3), i64([-2, 0, 1])], {"axis": 1})
case("gather_scalar", "Gather", [i64([5, 6, 7]), np.array(-1, dtype=np.int64)])
case("cast_f_to_i", "Cast", [np.array([1.7, -1.7, 0.2, 5.0], dtype=np.float32)], {"to": TensorProto.INT64})
case("cast_i_to_f", "Cast", [i64([3, -4])], {"to": TensorProto.FLOAT})
case("cast_f_to_d", "Cast", [f32(3)], {"to": TensorProto.DOUBLE})

# LRN (appended last so that the inputs drawn above stay the same). onnxruntime's CPU kernel
# takes 4-D float input and odd sizes only (even sizes are tested by hand, in tests/hand.rs).
# alpha is large enough that the normalisation matters.
xl = f32(2, 6, 3, 4, lo=-3, hi=3)
case("lrn_default", "LRN", [xl], {"size": 3})
case("lrn_size5", "LRN", [xl], {"size": 5, "alpha": 0.5, "beta": 0.75, "bias": 1.0})
case("lrn_size1", "LRN", [xl], {"size": 1, "alpha": 1.0, "beta": 1.0, "bias": 0.5})
case("lrn_size_gt_channels", "LRN", [xl], {"size": 15, "alpha": 3.0, "beta": 0.6, "bias": 1.5})
case("lrn_one_channel", "LRN", [f32(3, 1, 2, 2, lo=-4, hi=4)], {"size": 3, "alpha": 1.0})
# A window longer than 64 channels: the interpreter's block-sum path.
case("lrn_wide_window", "LRN", [f32(1, 150, 2, 3, lo=-2, hi=2)], {"size": 101, "alpha": 5.0, "beta": 0.75, "bias": 1.0})

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort_reference.json")
with open(out, "w") as f:
    json.dump({"generator": "gen_ort_reference.py", "onnxruntime": ort.__version__, "opset": OPSET, "cases": cases}, f, separators=(",", ":"))
print(f"wrote {len(cases)} cases to {out}")
