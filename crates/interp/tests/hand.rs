//! Small cases with hand-derived expected values.

mod common;
use common::*;
use pannc_interp::{eval_op, run, RunOptions};
use pannc_ir::{Op, PadMode, Tensor, Window};

fn ev(op: Op, ins: &[&Tensor]) -> Vec<f64> {
    eval_op(&op, ins).unwrap()[0].to_f64_vec()
}
fn f64t(shape: &[usize], v: Vec<f64>) -> Tensor {
    Tensor::from_f64(shape, v).unwrap()
}
fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
    }
}

#[test]
fn conv_sums_neighbourhoods() {
    let x = f32t(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
    let ones2 = f32t(&[1, 1, 2, 2], vec![1.0; 4]);
    assert_eq!(
        ev(
            Op::Conv {
                window: Window::default(),
                group: 1
            },
            &[&x, &ones2]
        ),
        vec![12.0, 16.0, 24.0, 28.0]
    );
    let ones3 = f32t(&[1, 1, 3, 3], vec![1.0; 9]);
    let pad1 = Window {
        pads: vec![1, 1, 1, 1],
        ..Default::default()
    };
    assert_eq!(
        ev(
            Op::Conv {
                window: pad1,
                group: 1
            },
            &[&x, &ones3, &f32t(&[1], vec![0.5])]
        ),
        vec![12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5]
    );
    // 1-D, stride 2, dilation 2: y[i] = x[2i] - x[2i+4].
    let x = f32t(&[1, 1, 7], (1..=7).map(|v| v as f32).collect());
    let w = f32t(&[1, 1, 3], vec![1.0, 0.0, -1.0]);
    let win = Window {
        strides: vec![2],
        dilations: vec![2],
        ..Default::default()
    };
    assert_eq!(
        ev(
            Op::Conv {
                window: win,
                group: 1
            },
            &[&x, &w]
        ),
        vec![-4.0, -4.0]
    );
    // Depthwise: each channel its own kernel.
    let x = f32t(
        &[1, 2, 2, 2],
        vec![1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0],
    );
    let w = f32t(&[2, 1, 1, 1], vec![2.0, -1.0]);
    assert_eq!(
        ev(
            Op::Conv {
                window: Window::default(),
                group: 2
            },
            &[&x, &w]
        ),
        vec![2.0, 4.0, 6.0, 8.0, -10.0, -20.0, -30.0, -40.0]
    );
}

#[test]
fn pooling_by_hand() {
    let x = f32t(&[1, 1, 4, 4], (0..16).map(|v| v as f32).collect());
    let w = Window {
        kernel_shape: vec![2, 2],
        strides: vec![2, 2],
        ..Default::default()
    };
    let (mut g, feeds) = single_node_graph(Op::MaxPool { window: w }, &[Some(x)], 2, 1);
    let out = run(&g, &feeds, &RunOptions::default()).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![5.0, 7.0, 13.0, 15.0]);
    assert_eq!(out[1], i64t(&[1, 1, 2, 2], vec![5, 7, 13, 15]));
    pannc_interp::infer_types(&mut g).unwrap();
    let x = f32t(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let w = Window {
        kernel_shape: vec![3, 3],
        pads: vec![1, 1, 1, 1],
        ..Default::default()
    };
    assert_eq!(
        ev(
            Op::AveragePool {
                window: w.clone(),
                count_include_pad: false
            },
            &[&x]
        ),
        vec![2.5; 4]
    );
    close(
        &ev(
            Op::AveragePool {
                window: w,
                count_include_pad: true,
            },
            &[&x],
        ),
        &[10.0 / 9.0; 4],
        1e-6,
    );
    assert_eq!(ev(Op::GlobalAveragePool, &[&x]), vec![2.5]);
}

#[test]
fn linear_algebra_by_hand() {
    let a = f32t(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let b = f32t(&[2, 2], vec![5.0, 6.0, 7.0, 8.0]);
    let c = f32t(&[2], vec![1.0, 1.0]);
    let gemm = Op::Gemm {
        alpha: 2.0,
        beta: 3.0,
        trans_a: false,
        trans_b: false,
    };
    assert_eq!(ev(gemm, &[&a, &b, &c]), vec![41.0, 47.0, 89.0, 103.0]);
    let gemm_t = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: true,
        trans_b: true,
    };
    // A'B' = [[1,3],[2,4]]·[[5,7],[6,8]] = [[23,31],[34,46]]
    assert_eq!(ev(gemm_t, &[&a, &b]), vec![23.0, 31.0, 34.0, 46.0]);
    // Batched MatMul with broadcasting: [2,1,2] × [2,2,1] → [2,1,1].
    let x = f32t(&[2, 1, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let y = f32t(&[2, 2, 1], vec![1.0, 1.0, 0.0, 1.0]);
    assert_eq!(ev(Op::MatMul, &[&x, &y]), vec![3.0, 4.0]);
    assert_eq!(
        ev(Op::MatMul, &[&f32t(&[2], vec![1.0, 2.0]), &a]),
        vec![7.0, 10.0]
    );
    assert_eq!(
        ev(
            Op::MatMul,
            &[&i64t(&[2], vec![1, 2]), &i64t(&[2], vec![3, 4])]
        ),
        vec![11.0]
    );
}

#[test]
fn normalization_and_activations_by_hand() {
    let x = f64t(&[1, 2], vec![1.0, 2.0]);
    let bn = Op::BatchNormalization { epsilon: 0.0 };
    let p = |v: Vec<f64>| f64t(&[2], v);
    assert_eq!(
        ev(
            bn,
            &[
                &x,
                &p(vec![2.0, 1.0]),
                &p(vec![0.0, 1.0]),
                &p(vec![1.0, 0.0]),
                &p(vec![4.0, 1.0])
            ]
        ),
        vec![0.0, 3.0]
    );
    close(
        &ev(
            Op::Softmax { axis: -1 },
            &[&f64t(&[2], vec![0.0, 2f64.ln()])],
        ),
        &[1.0 / 3.0, 2.0 / 3.0],
        1e-15,
    );
    // Large logits do not overflow.
    close(
        &ev(
            Op::Softmax { axis: 0 },
            &[&f32t(&[2], vec![1000.0, 1000.0])],
        ),
        &[0.5, 0.5],
        0.0,
    );
    let one = f64t(&[3], vec![1.0, -800.0, 800.0]);
    close(
        &ev(Op::Gelu { tanh: false }, &[&one]),
        &[0.8413447460685429, 0.0, 800.0],
        1e-15,
    );
    close(
        &ev(Op::Gelu { tanh: true }, &[&one]),
        &[0.8411919906082768, 0.0, 800.0],
        1e-15,
    );
    close(
        &ev(Op::Erf, &[&f64t(&[1], vec![0.5])]),
        &[0.5204998778130465],
        1e-16,
    );
    close(
        &ev(Op::Sigmoid, &[&one]),
        &[0.7310585786300049, 0.0, 1.0],
        1e-16,
    );
    assert_eq!(
        ev(
            Op::LeakyRelu { alpha: 0.5 },
            &[&f32t(&[2], vec![-2.0, 3.0])]
        ),
        vec![-1.0, 3.0]
    );
    let r = f32t(&[2, 2], vec![1.0, 2.0, 3.0, 5.0]);
    let rm = Op::ReduceMean {
        keepdims: false,
        noop_with_empty_axes: false,
    };
    assert_eq!(ev(rm.clone(), &[&r, &i64t(&[1], vec![0])]), vec![2.0, 3.5]);
    assert_eq!(ev(rm, &[&r]), vec![2.75]);
}

#[test]
fn layout_ops_by_hand() {
    let v = f32t(&[3], vec![1.0, 2.0, 3.0]);
    let pads = i64t(&[2], vec![2, 2]);
    assert_eq!(
        ev(
            Op::Pad {
                mode: PadMode::Reflect
            },
            &[&v, &pads]
        ),
        vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]
    );
    assert_eq!(
        ev(
            Op::Pad {
                mode: PadMode::Edge
            },
            &[&v, &pads]
        ),
        vec![1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0]
    );
    assert_eq!(
        ev(
            Op::Pad {
                mode: PadMode::Wrap
            },
            &[&v, &pads]
        ),
        vec![2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0]
    );
    let cv = Tensor::scalar_f32(9.0);
    assert_eq!(
        ev(
            Op::Pad {
                mode: PadMode::Constant
            },
            &[&v, &i64t(&[2], vec![-1, 1]), &cv]
        ),
        vec![2.0, 3.0, 9.0]
    );
    let m = f32t(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(
        ev(Op::Transpose { perm: vec![] }, &[&m]),
        vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    );
    assert_eq!(
        ev(Op::Gather { axis: 1 }, &[&m, &i64t(&[2], vec![-1, 0])]),
        vec![3.0, 1.0, 6.0, 4.0]
    );
    let z = f32t(&[0, 3], vec![]);
    let r = eval_op(
        &Op::Reshape { allowzero: true },
        &[&z, &i64t(&[2], vec![3, 0])],
    )
    .unwrap();
    assert_eq!(r[0].shape(), &[3, 0]);
    let r = eval_op(
        &Op::Reshape { allowzero: false },
        &[&m, &i64t(&[3], vec![0, 1, -1])],
    )
    .unwrap();
    assert_eq!(r[0].shape(), &[2, 1, 3]);
    let s = eval_op(
        &Op::Shape {
            start: -1,
            end: None,
        },
        &[&m],
    )
    .unwrap();
    assert_eq!(s[0], i64t(&[1], vec![3]));
    let c = eval_op(
        &Op::ConstantOfShape {
            value: Tensor::scalar_i64(4),
        },
        &[&i64t(&[2], vec![1, 2])],
    )
    .unwrap();
    assert_eq!(c[0], i64t(&[1, 2], vec![4, 4]));
    let c = eval_op(
        &Op::ConstantOfShape {
            value: Tensor::scalar_f32(1.5),
        },
        &[&i64t(&[0], vec![])],
    )
    .unwrap();
    assert_eq!(c[0], Tensor::scalar_f32(1.5));
    assert_eq!(
        ev(
            Op::Cast {
                to: pannc_ir::DType::I64
            },
            &[&f32t(&[2], vec![-1.7, 2.9])]
        ),
        vec![-1.0, 2.0]
    );
    assert_eq!(
        ev(Op::Div, &[&i64t(&[2], vec![-7, 7]), &i64t(&[1], vec![2])]),
        vec![-3.0, 3.0]
    );
}

/// MatMul of two activations with batch axes broadcast both ways (attention's Q·Kᵀ form):
/// [2,1,3,4] × [5,4,2] → [2,5,3,2], each block the plain product of its operands' blocks.
#[test]
fn matmul_of_activations_broadcasts_batch_axes() {
    let a: Vec<f64> = (0..24).map(|i| (i as f64 * 0.7).sin()).collect();
    let b: Vec<f64> = (0..40).map(|i| (i as f64 * 0.3).cos()).collect();
    let got = ev(
        Op::MatMul,
        &[
            &f64t(&[2, 1, 3, 4], a.clone()),
            &f64t(&[5, 4, 2], b.clone()),
        ],
    );
    assert_eq!(got.len(), 2 * 5 * 3 * 2);
    for i in 0..2 {
        for j in 0..5 {
            for r in 0..3 {
                for c in 0..2 {
                    let want: f64 = (0..4)
                        .map(|k| a[i * 12 + r * 4 + k] * b[j * 8 + k * 2 + c])
                        .sum();
                    let g = got[((i * 5 + j) * 3 + r) * 2 + c];
                    assert!((g - want).abs() < 1e-12, "[{i},{j},{r},{c}] {g} vs {want}");
                }
            }
        }
    }
}

/// Softmax (opset 13: one axis, the last by default) against its definition, and the small
/// elementwise ops of mobile and transformer exports by hand.
#[test]
fn softmax_and_new_elementwise_ops_by_hand() {
    let x = f64t(&[2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.0, 1000.0]);
    let s = ev(Op::Softmax { axis: -1 }, &[&x]);
    let e: f64 = 1.0 + 1f64.exp() + 2f64.exp();
    close(&s[..3], &[1.0 / e, 1f64.exp() / e, 2f64.exp() / e], 1e-15);
    close(&s[3..], &[0.0, 0.0, 1.0], 1e-15);
    let v = f64t(&[5], vec![-4.0, -1.0, 0.0, 1.5, 4.0]);
    close(
        &ev(Op::HardSwish, &[&v]),
        &[0.0, -1.0 / 3.0, 0.0, 1.5 * (1.5 / 6.0 + 0.5), 4.0],
        1e-15,
    );
    close(
        &ev(
            Op::HardSigmoid {
                alpha: 0.2,
                beta: 0.5,
            },
            &[&v],
        ),
        &[0.0, 0.3, 0.5, 0.8, 1.0],
        1e-7,
    );
    let i = i64t(&[4], vec![7, -7, 7, -7]);
    let d = i64t(&[4], vec![3, 3, -3, -3]);
    assert_eq!(
        ev(Op::Mod { fmod: false }, &[&i, &d]),
        [1.0, 2.0, -2.0, -1.0]
    );
    assert_eq!(
        ev(Op::Mod { fmod: true }, &[&i, &d]),
        [1.0, -1.0, 1.0, -1.0]
    );
    assert_eq!(
        ev(
            Op::Pow,
            &[&f64t(&[3], vec![2.0, 3.0, 4.0]), &i64t(&[], vec![2])]
        ),
        [4.0, 9.0, 16.0]
    );
    let r = eval_op(
        &Op::Range,
        &[
            &i64t(&[], vec![10]),
            &i64t(&[], vec![1]),
            &i64t(&[], vec![-3]),
        ],
    )
    .unwrap();
    assert_eq!(r[0].to_f64_vec(), [10.0, 7.0, 4.0]);
    // GatherND with a batch axis: data [2,2,2], indices [2,1,1] → rows data[b, idx]
    let data = f64t(&[2, 2, 2], (0..8).map(|v| v as f64).collect());
    let idx = i64t(&[2, 1, 1], vec![1, 0]);
    assert_eq!(
        ev(Op::GatherND { batch_dims: 1 }, &[&data, &idx]),
        [2.0, 3.0, 4.0, 5.0]
    );
}
