//! Malformed graphs and inputs give errors, never panics or huge allocations.

mod common;
use common::*;
use pannc_interp::{eval_op, infer_types, run, RunOptions};
use pannc_ir::{AutoPad, DType, Graph, Op, PadMode, Tensor, Window};

fn eval_err(op: Op, inputs: &[&Tensor]) -> String {
    match eval_op(&op, inputs) {
        Ok(v) => panic!(
            "{op} succeeded: {:?}",
            v.iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>()
        ),
        Err(e) => e.to_string(),
    }
}

#[test]
fn op_level_errors() {
    let x = f32t(&[2, 3], vec![0.0; 6]);
    let big = i64t(&[2], vec![1 << 40, 1 << 40]);
    assert!(eval_err(Op::Add, &[&x]).contains("Add: takes 2 inputs, got 1"));
    assert!(eval_err(Op::Add, &[&x, &f32t(&[4], vec![0.0; 4])]).contains("not broadcastable"));
    assert!(eval_err(Op::Add, &[&x, &i64t(&[3], vec![0; 3])])
        .contains("mixed input dtypes f32 and i64"));
    assert!(eval_err(Op::Tanh, &[&i64t(&[1], vec![1])]).contains("expects a float tensor, got i64"));
    let e = eval_err(Op::Reshape { allowzero: false }, &[&x, &big]);
    assert!(e.contains("overflows") || e.contains("limit"), "{e}");
    let e = eval_err(
        Op::Reshape { allowzero: false },
        &[&x, &i64t(&[2], vec![-1, -1])],
    );
    assert!(e.contains("more than one -1"), "{e}");
    let e = eval_err(
        Op::ConstantOfShape {
            value: Tensor::scalar_f32(0.0),
        },
        &[&i64t(&[2], vec![1 << 20, 1 << 20])],
    );
    assert!(e.contains("above the limit"), "{e}");
    let e = eval_err(
        Op::ConstantOfShape {
            value: Tensor::scalar_f32(0.0),
        },
        &[&big],
    );
    assert!(e.contains("overflows"), "{e}");
    let e = eval_err(
        Op::ConstantOfShape {
            value: Tensor::scalar_f32(0.0),
        },
        &[&i64t(&[1], vec![-3])],
    );
    assert!(e.contains("negative dimension -3"), "{e}");
    let e = eval_err(
        Op::Pad {
            mode: PadMode::Constant,
        },
        &[&x, &i64t(&[4], vec![0, 0, 1 << 31, 1 << 31])],
    );
    assert!(e.contains("limit"), "{e}");
    let e = eval_err(
        Op::Pad {
            mode: PadMode::Constant,
        },
        &[&x, &i64t(&[4], vec![0, -2, 0, -2])],
    );
    assert!(e.contains("crop more than the size 3"), "{e}");
    let e = eval_err(
        Op::Pad {
            mode: PadMode::Reflect,
        },
        &[&f32t(&[0], vec![]), &i64t(&[2], vec![1, 1])],
    );
    assert!(e.contains("empty axis"), "{e}");
    let e = eval_err(Op::Gather { axis: 1 }, &[&x, &i64t(&[1], vec![3])]);
    assert_eq!(e, "Gather: index 3 is out of range for axis 1 of size 3");
    let e = eval_err(Op::Gather { axis: 0 }, &[&x, &f32t(&[1], vec![0.0])]);
    assert!(e.contains("indices must be i64"), "{e}");
    assert!(
        eval_err(Op::Div, &[&i64t(&[2], vec![1, 2]), &i64t(&[1], vec![0])])
            .contains("integer division by zero")
    );
    assert!(eval_err(Op::Transpose { perm: vec![0, 0] }, &[&x]).contains("not a permutation"));
    assert!(
        eval_err(Op::Concat { axis: 0 }, &[&x, &f32t(&[3], vec![0.0; 3])])
            .contains("differ outside axis")
    );
    assert!(eval_err(Op::Concat { axis: 5 }, &[&x, &x]).contains("axis 5 is out of range"));
    assert!(eval_err(Op::Softmax { axis: 2 }, &[&x]).contains("axis 2 is out of range for rank 2"));
    assert!(eval_err(Op::Unsqueeze, &[&x, &i64t(&[2], vec![0, -4])]).contains("appears twice"));
    assert!(eval_err(Op::Squeeze, &[&x, &i64t(&[1], vec![0])])
        .contains("cannot squeeze axis 0 of size 2"));
    assert!(eval_err(
        Op::Clip {
            has_min: true,
            has_max: false
        },
        &[&x, &x]
    )
    .contains("min must be a scalar"));
    assert!(eval_err(Op::MatMul, &[&x, &x]).contains("inner dimensions differ"));
    assert!(eval_err(
        Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: false
        },
        &[&x, &x]
    )
    .contains("inner dimensions differ"));
    let e = eval_err(
        Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        },
        &[&x, &x, &f32t(&[3], vec![0.0; 3])],
    );
    assert!(e.contains("does not broadcast to [2, 2]"), "{e}");
    let img = f32t(&[1, 2, 4, 4], vec![0.0; 32]);
    let w = f32t(&[3, 2, 5, 5], vec![0.0; 150]);
    let e = eval_err(
        Op::Conv {
            window: Window::default(),
            group: 1,
        },
        &[&img, &w],
    );
    assert!(e.contains("smaller than the (dilated) kernel 5"), "{e}");
    let w = f32t(&[3, 2, 3, 3], vec![0.0; 54]);
    assert!(eval_err(
        Op::Conv {
            window: Window::default(),
            group: 0
        },
        &[&img, &w]
    )
    .contains("group must be ≥ 1"));
    assert!(eval_err(
        Op::Conv {
            window: Window::default(),
            group: 2
        },
        &[&img, &w]
    )
    .contains("input channels 2 ≠ weight's 2 × group 2"));
    let win = Window {
        strides: vec![0, 1],
        ..Default::default()
    };
    assert!(eval_err(
        Op::Conv {
            window: win,
            group: 1
        },
        &[&img, &w]
    )
    .contains("strides [0, 1] contains 0"));
    let win = Window {
        kernel_shape: vec![2, 2],
        ..Default::default()
    };
    assert!(eval_err(
        Op::Conv {
            window: win,
            group: 1
        },
        &[&img, &w]
    )
    .contains("kernel_shape [2, 2] ≠ weight's spatial shape [3, 3]"));
    assert!(eval_err(
        Op::MaxPool {
            window: Window::default()
        },
        &[&img]
    )
    .contains("kernel_shape is required"));
    let win = Window {
        kernel_shape: vec![2, 2],
        pads: vec![1],
        ..Default::default()
    };
    assert!(eval_err(
        Op::AveragePool {
            window: win,
            count_include_pad: false
        },
        &[&img]
    )
    .contains("pads has 1 entries, expected 4"));
    let bn = Op::BatchNormalization { epsilon: 1e-5 };
    let p3 = f32t(&[3], vec![1.0; 3]);
    assert!(eval_err(bn, &[&img, &p3, &p3, &p3, &p3]).contains("scale has shape [3], expected [2]"));
    // f64 and f32 are not mixed implicitly.
    let d = Tensor::from_f64(&[2, 3], vec![0.0; 6]).unwrap();
    assert!(eval_err(Op::Mul, &[&x, &d]).contains("mixed input dtypes"));
}

#[test]
fn graph_level_errors() {
    // A cycle.
    let mut g = Graph::new("cyc", 17);
    let x = g.add_input("x", None).unwrap();
    let a = g.add_simple("a", Op::Relu, &[x]).unwrap();
    let b = g.add_simple("b", Op::Relu, &[a]).unwrap();
    g.set_input(g.producer(a).unwrap(), 0, b).unwrap();
    g.set_outputs(vec![b]);
    let e = run(&g, &[f32t(&[1], vec![1.0])], &RunOptions::default()).unwrap_err();
    assert!(e.to_string().starts_with("graph 'cyc': cycle"), "{e}");
    assert!(infer_types(&mut g).is_err());
    // Runtime errors carry the node name.
    let mut g = Graph::new("t", 17);
    let x = g.add_input("x", None).unwrap();
    let s = g.add_constant("s", i64t(&[1], vec![7])).unwrap();
    let r = g
        .add_simple("my_reshape", Op::Reshape { allowzero: false }, &[x, s])
        .unwrap();
    g.set_outputs(vec![r]);
    let e = run(&g, &[f32t(&[2, 3], vec![0.0; 6])], &RunOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "node 'my_reshape' (Reshape): cannot reshape [2, 3] (6 elements) to [7] (7 elements)"
    );
    // Wrong arity at run time.
    let mut g = Graph::new("t", 17);
    let x = g.add_input("x", None).unwrap();
    let r = g
        .add_simple(
            "bad",
            Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: false,
            },
            &[x],
        )
        .unwrap();
    g.set_outputs(vec![r]);
    let e = run(&g, &[f32t(&[2, 3], vec![0.0; 6])], &RunOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "node 'bad' (Gemm): takes 2 to 3 inputs, got 1"
    );
}

/// A tiny deterministic fuzzer: every op with random attributes on random small inputs
/// (ranks 0–4, sizes 0–3, all dtypes). Evaluation and inference may fail, never panic.
#[test]
fn fuzz_ops_never_panic() {
    let mut s: u64 = 0x9e3779b97f4a7c15;
    let mut rnd = move |n: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % n.max(1)
    };
    let mut panics = Vec::new();
    for iter in 0..60000 {
        let win = |r: &mut dyn FnMut(u64) -> u64| {
            let nd = 1 + r(3) as usize;
            let v = |r: &mut dyn FnMut(u64) -> u64, n: usize, lo: u64, hi: u64| -> Vec<usize> {
                if r(3) == 0 {
                    vec![]
                } else {
                    (0..n).map(|_| (lo + r(hi - lo + 1)) as usize).collect()
                }
            };
            Window {
                kernel_shape: v(r, nd, 1, 3),
                strides: v(r, nd, 1, 3),
                pads: v(r, 2 * nd, 0, 2),
                dilations: v(r, nd, 1, 2),
                auto_pad: [
                    AutoPad::NotSet,
                    AutoPad::SameUpper,
                    AutoPad::SameLower,
                    AutoPad::Valid,
                ][r(4) as usize],
                ceil_mode: r(2) == 0,
            }
        };
        let ax = rnd(9) as i64 - 4;
        let op = match rnd(62) {
            0 => Op::Conv {
                window: win(&mut rnd),
                group: rnd(3) as usize,
            },
            1 => Op::Gemm {
                alpha: 1.5,
                beta: 0.5,
                trans_a: rnd(2) == 0,
                trans_b: rnd(2) == 0,
            },
            2 => Op::MatMul,
            3 => Op::Add,
            4 => Op::Sub,
            5 => Op::Mul,
            6 => Op::Div,
            7 => Op::BatchNormalization { epsilon: 1e-5 },
            8 => Op::Relu,
            9 => Op::LeakyRelu { alpha: 0.1 },
            10 => Op::Clip {
                has_min: rnd(2) == 0,
                has_max: rnd(2) == 0,
            },
            11 => Op::Sigmoid,
            12 => Op::Gelu { tanh: rnd(2) == 0 },
            13 => Op::Softmax { axis: ax },
            14 => Op::MaxPool {
                window: win(&mut rnd),
            },
            15 => Op::AveragePool {
                window: win(&mut rnd),
                count_include_pad: rnd(2) == 0,
            },
            16 => Op::GlobalAveragePool,
            17 => Op::ReduceMean {
                keepdims: rnd(2) == 0,
                noop_with_empty_axes: rnd(2) == 0,
            },
            18 => Op::Flatten { axis: ax },
            19 => Op::Reshape {
                allowzero: rnd(2) == 0,
            },
            20 => Op::Transpose {
                perm: (0..rnd(4) as usize).map(|_| rnd(4) as usize).collect(),
            },
            21 => Op::Concat { axis: ax },
            22 => Op::Pad {
                mode: [
                    PadMode::Constant,
                    PadMode::Reflect,
                    PadMode::Edge,
                    PadMode::Wrap,
                ][rnd(4) as usize],
            },
            23 => Op::Squeeze,
            24 => Op::Unsqueeze,
            25 => Op::Identity,
            26 => Op::Dropout,
            27 => Op::Shape {
                start: ax,
                end: if rnd(2) == 0 {
                    None
                } else {
                    Some(rnd(9) as i64 - 4)
                },
            },
            28 => Op::Gather { axis: ax },
            29 => Op::Cast {
                to: [DType::F32, DType::F64, DType::I64][rnd(3) as usize],
            },
            30 => Op::ConstantOfShape {
                value: Tensor::scalar_f32(2.0),
            },
            31 => Op::Erf,
            32 => Op::Tanh,
            33 => Op::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            34 => Op::HardSwish,
            35 => [Op::Neg, Op::Abs, Op::Sqrt, Op::Reciprocal][rnd(4) as usize].clone(),
            36 => [Op::Exp, Op::Log, Op::Floor, Op::Ceil][rnd(4) as usize].clone(),
            37 => Op::Pow,
            38 => Op::Mod { fmod: rnd(2) == 0 },
            39 => [
                Op::Equal,
                Op::Less,
                Op::LessOrEqual,
                Op::Greater,
                Op::GreaterOrEqual,
            ][rnd(5) as usize]
                .clone(),
            40 => [Op::And, Op::Or, Op::Xor, Op::Not][rnd(4) as usize].clone(),
            41 => Op::Where,
            42 => Op::Expand,
            43 => Op::Tile,
            44 | 45 => Op::Slice,
            46 => Op::Split {
                axis: ax,
                num_outputs: rnd(4) as usize,
            },
            47 => Op::GatherND {
                batch_dims: rnd(3) as usize,
            },
            48 => Op::Range,
            49 => Op::ArgMax {
                axis: ax,
                keepdims: rnd(2) == 0,
                select_last_index: rnd(2) == 0,
            },
            50 => Op::ArgMin {
                axis: ax,
                keepdims: rnd(2) == 0,
                select_last_index: rnd(2) == 0,
            },
            51 => Op::ReduceSum {
                keepdims: rnd(2) == 0,
                noop_with_empty_axes: rnd(2) == 0,
            },
            52 => Op::ReduceMax {
                keepdims: rnd(2) == 0,
                noop_with_empty_axes: rnd(2) == 0,
            },
            53 => Op::ReduceMin {
                keepdims: rnd(2) == 0,
                noop_with_empty_axes: rnd(2) == 0,
            },
            54 => Op::LayerNormalization {
                axis: ax,
                epsilon: 1e-5,
            },
            55 => Op::Cast { to: DType::Bool },
            _ => Op::ReduceMean {
                keepdims: false,
                noop_with_empty_axes: false,
            },
        };
        let (lo, hi) = op.input_arity();
        let n_in = (lo + rnd(2) as usize).min(hi.min(5));
        let first_rank = rnd(5) as usize;
        let mut inputs = Vec::new();
        for i in 0..n_in {
            let rank = if i == 0 { first_rank } else { rnd(3) as usize };
            let shape: Vec<usize> = (0..rank).map(|_| rnd(4) as usize).collect();
            let n: usize = shape.iter().product();
            let t = match rnd(if i == 0 { 5 } else { 4 }) {
                0 => Tensor::from_i64(&shape, (0..n).map(|_| rnd(9) as i64 - 4).collect()).unwrap(),
                3 => Tensor::from_bool(&shape, (0..n).map(|_| rnd(2) == 0).collect()).unwrap(),
                1 if i > 0 => {
                    Tensor::from_i64(&shape, (0..n).map(|_| rnd(7) as i64 - 2).collect()).unwrap()
                }
                2 => Tensor::from_f64(
                    &shape,
                    (0..n).map(|_| rnd(100) as f64 / 10.0 - 5.0).collect(),
                )
                .unwrap(),
                _ => Tensor::from_f32(
                    &shape,
                    (0..n).map(|_| rnd(100) as f32 / 10.0 - 5.0).collect(),
                )
                .unwrap(),
            };
            inputs.push(t);
        }
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let op2 = op.clone();
        if std::panic::catch_unwind(|| eval_op(&op2, &refs)).is_err() {
            panics.push(format!(
                "eval #{iter}: {op} on {:?}",
                inputs
                    .iter()
                    .map(|t| (t.dtype(), t.shape().to_vec()))
                    .collect::<Vec<_>>()
            ));
        }
        // Inference on the same node, first input a graph input, the rest constants.
        let opts: Vec<Option<Tensor>> = inputs.iter().cloned().map(Some).collect();
        let (mut g, _) = single_node_graph(op.clone(), &opts, 1, 1);
        if std::panic::catch_unwind(move || infer_types(&mut g)).is_err() {
            panics.push(format!(
                "infer #{iter}: {op} on {:?}",
                inputs
                    .iter()
                    .map(|t| (t.dtype(), t.shape().to_vec()))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        panics.is_empty(),
        "{} panics:\n{}",
        panics.len(),
        panics[..panics.len().min(20)].join("\n")
    );
}

#[test]
fn absurd_windows_are_refused_quickly() {
    let img = f32t(&[1, 1, 5, 5], vec![1.0; 25]);
    // Huge pads and dilation: tiny output, enormous padded input.
    let win = Window {
        pads: vec![1 << 40, 1 << 40, 0, 0],
        dilations: vec![1 << 41, 1],
        ..Default::default()
    };
    let w = f32t(&[1, 1, 2, 2], vec![1.0; 4]);
    let t = std::time::Instant::now();
    let r = eval_op(
        &Op::Conv {
            window: win,
            group: 1,
        },
        &[&img, &w],
    );
    assert!(t.elapsed().as_secs() < 5);
    if let Ok(v) = r {
        assert_eq!(v[0].shape()[..2], [1, 1]);
    }
    let win = Window {
        kernel_shape: vec![1 << 40, 1],
        pads: vec![1 << 40, 0, 1 << 40, 0],
        ..Default::default()
    };
    let e = eval_err(Op::MaxPool { window: win }, &[&img]);
    assert!(e.contains("limit"), "{e}");
}

/// Fuzz findings (fuzz/findings/onnx): an empty tensor whose non-zero dimensions overflow,
/// and a shape vector of absurd length feeding ConstantOfShape.
#[test]
fn empty_tensors_with_overflowing_dimensions_and_huge_computed_ranks_are_errors() {
    let empty = f32t(&[0, 4], vec![]);
    let e = eval_err(
        Op::Reshape { allowzero: true },
        &[&empty, &i64t(&[3], vec![0, 1 << 62, 4])],
    );
    assert!(e.contains("overflows"), "{e}");
    // Rank 100 computed from data: refused by inference before minting 100 symbols.
    let mut g = Graph::new("rank", 17);
    let shape = g
        .add_input("s", Some(pannc_ir::TensorType::known(DType::I64, &[100])))
        .unwrap();
    let y = g
        .add_simple(
            "cos",
            Op::ConstantOfShape {
                value: Tensor::scalar_f32(0.0),
            },
            &[shape],
        )
        .unwrap();
    g.set_outputs(vec![y]);
    let e = infer_types(&mut g).unwrap_err().to_string();
    assert!(e.contains("rank 100, above the limit of 64"), "{e}");
}

/// Slices of every combination of small sizes, bounds and steps, negative ones included,
/// against a direct per-index walk of the ONNX rule (as onnxruntime implements it: for a
/// negative step the start is clamped to `[0, dim − 1]`, so unlike Python's `x[-7::-3]` on one
/// element, a start before the beginning still yields element 0).
#[test]
fn slice_matches_a_reference_on_every_small_case() {
    use pannc_interp::eval_op;
    use pannc_ir::{Op, Tensor};
    let bounds = [-7i64, -3, -1, 0, 1, 2, 4, 6, i64::MAX, i64::MIN];
    for dim in 0..5usize {
        let x = Tensor::from_f32(&[dim], (0..dim).map(|i| i as f32).collect()).unwrap();
        for &s in &bounds {
            for &e in &bounds {
                for st in [-3i64, -2, -1, 1, 2, 5] {
                    let t = |v: i64| Tensor::from_i64(&[1], vec![v]).unwrap();
                    let got = eval_op(&Op::Slice, &[&x, &t(s), &t(e), &t(0), &t(st)])
                        .unwrap_or_else(|err| panic!("{dim} {s}:{e}:{st}: {err}"));
                    // reference
                    let d = dim as i128;
                    let norm = |v: i64| if v < 0 { v as i128 + d } else { v as i128 };
                    let mut want = Vec::new();
                    let (mut i, e2) = if st > 0 {
                        (norm(s).clamp(0, d), norm(e).clamp(0, d))
                    } else {
                        (norm(s).clamp(0, (d - 1).max(0)), norm(e).clamp(-1, d - 1))
                    };
                    while dim > 0 && ((st > 0 && i < e2) || (st < 0 && i > e2)) {
                        want.push(i as f64);
                        i += st as i128;
                    }
                    assert_eq!(got[0].to_f64_vec(), want, "dim {dim}, {s}:{e}:{st}");
                }
            }
        }
    }
}
