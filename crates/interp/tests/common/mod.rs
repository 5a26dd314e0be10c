//! Shared test helpers: building ops from ONNX-style attributes, loading reference data,
//! comparing tensors.
#![allow(dead_code)]

use pannc_ir::{AutoPad, DType, Dim, Graph, Op, PadMode, Tensor, TensorType, Window};
use serde_json::Value;

pub fn ints(a: &Value, key: &str) -> Vec<i64> {
    a.get(key)
        .and_then(|v| v.as_array())
        .map(|v| v.iter().map(|x| x.as_i64().unwrap()).collect())
        .unwrap_or_default()
}
fn usizes(a: &Value, key: &str) -> Vec<usize> {
    ints(a, key).into_iter().map(|x| x as usize).collect()
}
fn int(a: &Value, key: &str, d: i64) -> i64 {
    a.get(key).and_then(|v| v.as_i64()).unwrap_or(d)
}
fn float(a: &Value, key: &str, d: f32) -> f32 {
    a.get(key)
        .and_then(|v| v.as_f64())
        .map(|x| x as f32)
        .unwrap_or(d)
}
fn string(a: &Value, key: &str, d: &str) -> String {
    a.get(key).and_then(|v| v.as_str()).unwrap_or(d).to_string()
}

pub fn window(a: &Value) -> Window {
    Window {
        kernel_shape: usizes(a, "kernel_shape"),
        strides: usizes(a, "strides"),
        pads: usizes(a, "pads"),
        dilations: usizes(a, "dilations"),
        auto_pad: match string(a, "auto_pad", "NOTSET").as_str() {
            "SAME_UPPER" => AutoPad::SameUpper,
            "SAME_LOWER" => AutoPad::SameLower,
            "VALID" => AutoPad::Valid,
            _ => AutoPad::NotSet,
        },
        ceil_mode: int(a, "ceil_mode", 0) != 0,
    }
}

/// Builds the IR op for an ONNX op name and attributes (as the importer would).
pub fn make_op(name: &str, a: &Value, present: &[bool]) -> Op {
    match name {
        "Conv" => Op::Conv {
            window: window(a),
            group: int(a, "group", 1) as usize,
        },
        "Gemm" => Op::Gemm {
            alpha: float(a, "alpha", 1.0),
            beta: float(a, "beta", 1.0),
            trans_a: int(a, "transA", 0) != 0,
            trans_b: int(a, "transB", 0) != 0,
        },
        "MatMul" => Op::MatMul,
        "Add" => Op::Add,
        "Sub" => Op::Sub,
        "Mul" => Op::Mul,
        "Div" => Op::Div,
        "BatchNormalization" => Op::BatchNormalization {
            epsilon: float(a, "epsilon", 1e-5),
        },
        "Relu" => Op::Relu,
        "LeakyRelu" => Op::LeakyRelu {
            alpha: float(a, "alpha", 0.01),
        },
        "Clip" => Op::Clip {
            has_min: present.get(1).copied().unwrap_or(false),
            has_max: present.get(2).copied().unwrap_or(false),
        },
        "Sigmoid" => Op::Sigmoid,
        "Tanh" => Op::Tanh,
        "Erf" => Op::Erf,
        "Gelu" => Op::Gelu {
            tanh: string(a, "approximate", "none") == "tanh",
        },
        "Softmax" => Op::Softmax {
            axis: int(a, "axis", -1),
        },
        "MaxPool" => Op::MaxPool { window: window(a) },
        "AveragePool" => Op::AveragePool {
            window: window(a),
            count_include_pad: int(a, "count_include_pad", 0) != 0,
        },
        "GlobalAveragePool" => Op::GlobalAveragePool,
        "LRN" => Op::Lrn {
            alpha: float(a, "alpha", 1e-4),
            beta: float(a, "beta", 0.75),
            bias: float(a, "bias", 1.0),
            size: int(a, "size", 0) as usize,
        },
        "ReduceMean" => Op::ReduceMean {
            keepdims: int(a, "keepdims", 1) != 0,
            noop_with_empty_axes: int(a, "noop_with_empty_axes", 0) != 0,
        },
        "Flatten" => Op::Flatten {
            axis: int(a, "axis", 1),
        },
        "Reshape" => Op::Reshape {
            allowzero: int(a, "allowzero", 0) != 0,
        },
        "Transpose" => Op::Transpose {
            perm: usizes(a, "perm"),
        },
        "Concat" => Op::Concat {
            axis: int(a, "axis", 0),
        },
        "Pad" => Op::Pad {
            mode: match string(a, "mode", "constant").as_str() {
                "reflect" => PadMode::Reflect,
                "edge" => PadMode::Edge,
                "wrap" => PadMode::Wrap,
                _ => PadMode::Constant,
            },
        },
        "Squeeze" => Op::Squeeze,
        "Unsqueeze" => Op::Unsqueeze,
        "Shape" => Op::Shape {
            start: int(a, "start", 0),
            end: a.get("end").and_then(|v| v.as_i64()),
        },
        "Gather" => Op::Gather {
            axis: int(a, "axis", 0),
        },
        "Cast" => Op::Cast {
            to: match int(a, "to", 1) {
                1 => DType::F32,
                11 => DType::F64,
                7 => DType::I64,
                t => panic!("cast to {t}"),
            },
        },
        other => panic!("unknown op {other}"),
    }
}

pub fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let data = v["data"].as_array().unwrap();
    match v["dtype"].as_str().unwrap() {
        "f32" => Tensor::from_f32(
            &shape,
            data.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
        )
        .unwrap(),
        "f64" => {
            Tensor::from_f64(&shape, data.iter().map(|x| x.as_f64().unwrap()).collect()).unwrap()
        }
        "i64" => {
            Tensor::from_i64(&shape, data.iter().map(|x| x.as_i64().unwrap()).collect()).unwrap()
        }
        d => panic!("dtype {d}"),
    }
}

pub fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Max abs difference after checking shape and (unless `any_float`) dtype.
pub fn assert_close(
    name: &str,
    got: &Tensor,
    want: &Tensor,
    atol: f64,
    rtol: f64,
    any_float: bool,
) {
    assert_eq!(got.shape(), want.shape(), "{name}: shape");
    if any_float && got.dtype().is_float() && want.dtype().is_float() {
    } else {
        assert_eq!(got.dtype(), want.dtype(), "{name}: dtype");
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || (a - b).abs() <= atol + rtol * b.abs() || a == b;
        assert!(
            ok,
            "{name}: element {i}: got {a}, want {b} (diff {})",
            (a - b).abs()
        );
    }
}

/// A graph with one node reading all given inputs (None: absent optional input); inputs
/// from slot `const_from` on are constants, the others graph inputs.
pub fn single_node_graph(
    op: Op,
    inputs: &[Option<Tensor>],
    n_out: usize,
    const_from: usize,
) -> (Graph, Vec<Tensor>) {
    let mut g = Graph::new("single", 20);
    let mut ids = Vec::new();
    let mut feeds = Vec::new();
    for (i, t) in inputs.iter().enumerate() {
        if let Some(t) = t {
            if i >= const_from {
                ids.push(g.add_constant(format!("in{i}"), t.clone()).unwrap());
                continue;
            }
            let ty = TensorType::new(
                t.dtype(),
                t.shape().iter().map(|&d| Dim::Known(d)).collect(),
            );
            ids.push(g.add_input(format!("in{i}"), Some(ty)).unwrap());
            feeds.push(t.clone());
        }
    }
    let names: Vec<String> = (0..n_out).map(|i| format!("out{i}")).collect();
    let (_, outs) = g.add_node("node", op, &ids, &names).unwrap();
    g.set_outputs(outs);
    (g, feeds)
}

pub fn f32t(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::from_f32(shape, data).unwrap()
}
pub fn i64t(shape: &[usize], data: Vec<i64>) -> Tensor {
    Tensor::from_i64(shape, data).unwrap()
}
pub fn sym(s: &str) -> Dim {
    Dim::Sym(s.into())
}
pub fn known(d: usize) -> Dim {
    Dim::Known(d)
}

/// Deterministic pseudo-random floats in [-1, 1).
pub fn randv(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}
