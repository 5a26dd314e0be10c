//! Compiled networks as packed CKKS programs, end to end through the driver: the
//! `resnet_digits` CI fixture's program computes pannc's PANN simulation on the test set (and
//! keeps its accuracy), `resnet_fmnist` at α = 7 under a 10-level budget needs exactly 12
//! bootstraps of one ciphertext (the minimum: one between every two of its 13 ReLUs), and a
//! MaxPool network lowers once pannc has turned its pools into convolutions and ReLU trees.

mod common;

use common::*;
use pannc_ckks::fhe::packed::{eval::Evaluator, OpKind};
use pannc_driver as driver;
use pannc_ir::{DType, Dim, Graph, Op, Tensor, TensorType, Window};
use pannc_passes::Policy;

fn compiled(name: &str, alpha: u32) -> (Graph, Tensor) {
    let dir = fixture(name);
    let m = load(&dir.join("model.onnx"));
    let calib = pannc::npy::read(&dir.join("calib_x.npy")).unwrap();
    let mut g = m.graph.clone();
    let policy = Policy {
        alpha,
        shape: true,
        bias_correct: true,
        ..Policy::default()
    };
    driver::compile(&mut g, vec![calib.clone()], policy).unwrap();
    (g, calib)
}

fn argmax(row: &[f64]) -> usize {
    (0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b })
}

#[test]
fn resnet_digits_program_computes_the_pann() {
    let (g, calib) = compiled("resnet_digits", 5);
    let opts = driver::PackedEmitOptions {
        max_level: Some(8),
        security: driver::Security::Insecure,
        ..Default::default()
    };
    let e = driver::emit_packed(&g, std::slice::from_ref(&calib), &opts).unwrap();
    let p = &e.program;
    assert!(p.slots <= 2048 && p.ckks.ring_dim == 4096);
    assert!(p.stats.bootstraps >= 1 && p.depth <= 8);
    let x = pannc::npy::read(&fixture("resnet_digits").join("test_x.npy")).unwrap();
    let y = pannc::npy::read(&fixture("resnet_digits").join("test_y.npy"))
        .unwrap()
        .to_i64_vec();
    let n = 200;
    let x = x.slice_batch(0, n);
    let sim = driver::simulate(&g, std::slice::from_ref(&x), 500).unwrap();
    let want = sim.outputs[0].to_f64_vec();
    let xs = x.to_f64_vec();
    let ev = Evaluator::new(p, &e.weights).unwrap();
    let (mut agree, mut correct_prog, mut correct_sim, mut worst) = (0, 0, 0, 0.0f64);
    for k in 0..n {
        let got = ev
            .outputs(&[&xs[k * 256..(k + 1) * 256]])
            .unwrap()
            .remove(0);
        let w = &want[k * 10..(k + 1) * 10];
        let scale = w.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        for (a, b) in got.iter().zip(w) {
            worst = worst.max((a - b).abs() / scale);
        }
        agree += usize::from(argmax(&got) == argmax(w));
        correct_prog += usize::from(argmax(&got) as i64 == y[k]);
        correct_sim += usize::from(argmax(w) as i64 == y[k]);
    }
    // The PANN simulation runs in f32, the program in f64.
    assert!(
        worst < 1e-4,
        "largest relative logit difference {worst:.2e}"
    );
    assert!(agree >= n - 1, "{agree}/{n} argmax agree");
    assert!(
        correct_prog.abs_diff(correct_sim) <= 1,
        "{correct_prog} vs {correct_sim}"
    );
    assert!(correct_prog as f64 / n as f64 > 0.85, "{correct_prog}/{n}");
}

#[test]
fn resnet_fmnist_alpha7_needs_12_bootstraps_under_10_levels() {
    let (g, calib) = compiled("resnet_fmnist", 7);
    let opts = driver::PackedEmitOptions {
        lower: pannc_ckks::lower::packed::PackedOptions {
            slots: Some(8192),
            ..Default::default()
        },
        max_level: Some(10),
        check_samples: 8,
        ..Default::default()
    };
    let e = driver::emit_packed(&g, std::slice::from_ref(&calib), &opts).unwrap();
    let p = &e.program;
    let pl = e.placement.as_ref().unwrap();
    // 13 ReLUs of 7 levels, each after a 1-level linear op: no two fit between bootstraps, so
    // at least 12 refreshes; 12 one-ciphertext refreshes suffice (skips are not refreshed).
    assert!(pl.exact);
    assert_eq!(pl.ciphertexts, 12);
    assert_eq!(p.stats.bootstraps, 12);
    assert_eq!(p.stats.linear, 16);
    assert_eq!(p.stats.poly, 13);
    assert!(p.depth <= 10);
    assert_eq!(p.ckks.ring_dim, 1 << 17);
    assert_eq!(e.multiplicative_depth, 30);
    // Stride-2 convs keep the pixel grid (multiplexed layouts), so no linear op is dense.
    let diagonals: Vec<usize> = p
        .ops
        .iter()
        .filter_map(|o| match o.kind {
            OpKind::Linear { diagonals, .. } => Some(diagonals),
            _ => None,
        })
        .collect();
    assert!(diagonals.iter().all(|&d| d <= 700), "{diagonals:?}");
    assert!(p.values.iter().any(|v| v.layout.is_some()));
}

/// Conv → ReLU → MaxPool 2×2 → Conv → ReLU → MaxPool 3×3/2 padded → Flatten → Gemm, compiled by the
/// driver: the pools become select convolutions and `b + ReLU(a − b)` trees, which lower.
#[test]
fn maxpool_network_lowers_after_compilation() {
    let mut g = Graph::new("mp", 17);
    let x = g
        .add_input(
            "input",
            Some(TensorType::new(
                DType::F32,
                vec![
                    Dim::Sym("N".into()),
                    Dim::Known(1),
                    Dim::Known(8),
                    Dim::Known(8),
                ],
            )),
        )
        .unwrap();
    let mut seed = 7u64;
    let mut rnd = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        Tensor::from_f32(shape, v).unwrap()
    };
    let w1 = g.add_constant("w1", rnd(&[3, 1, 3, 3])).unwrap();
    let w2 = g.add_constant("w2", rnd(&[4, 3, 3, 3])).unwrap();
    let fc = g.add_constant("fc", rnd(&[5, 16])).unwrap();
    let pad = Window {
        pads: vec![1, 1, 1, 1],
        ..Window::default()
    };
    let c1 = g
        .add_simple(
            "c1",
            Op::Conv {
                window: pad.clone(),
                group: 1,
            },
            &[x, w1],
        )
        .unwrap();
    let r1 = g.add_simple("r1", Op::Relu, &[c1]).unwrap();
    let pool = |k: usize, p: usize| Op::MaxPool {
        window: Window {
            kernel_shape: vec![k, k],
            strides: vec![2, 2],
            pads: vec![p; 4],
            ..Window::default()
        },
    };
    let m1 = g.add_simple("m1", pool(2, 0), &[r1]).unwrap();
    let c2 = g
        .add_simple(
            "c2",
            Op::Conv {
                window: pad,
                group: 1,
            },
            &[m1, w2],
        )
        .unwrap();
    let r2 = g.add_simple("r2", Op::Relu, &[c2]).unwrap();
    let m2 = g.add_simple("m2", pool(3, 1), &[r2]).unwrap();
    let f = g
        .add_simple("flat", Op::Flatten { axis: 1 }, &[m2])
        .unwrap();
    let y = g
        .add_simple(
            "gemm",
            Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: true,
            },
            &[f, fc],
        )
        .unwrap();
    g.set_outputs(vec![y]);
    pannc_interp::infer_types(&mut g).unwrap();
    let calib = rnd(&[16, 1, 8, 8]);
    driver::compile(&mut g, vec![calib.clone()], Policy::default()).unwrap();
    assert!(!g
        .node_ids()
        .into_iter()
        .any(|id| matches!(g.node(id).op, Op::MaxPool { .. })));
    let opts = driver::PackedEmitOptions {
        security: driver::Security::Insecure,
        ..Default::default()
    };
    let e = driver::emit_packed(&g, &[calib], &opts).unwrap();
    assert!(e.program.stats.poly > 2, "ReLU trees of the pools");
    assert!(e.check.calib_max_rel_error < 1e-9);
}
