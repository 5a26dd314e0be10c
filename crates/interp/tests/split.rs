//! When `run` may split the batch into chunks, and that results never depend on it.

mod common;
#[path = "common/resnet.rs"]
mod resnet;

use common::*;
use pannc_interp::{run, splittable_batch, RunOptions};
use pannc_ir::{DType, Dim, Graph, Op, Tensor, TensorType, ValueId};

fn graph_with(build: impl FnOnce(&mut Graph, ValueId) -> ValueId) -> Graph {
    let mut g = Graph::new("t", 17);
    let x = g
        .add_input(
            "x",
            Some(TensorType::new(
                DType::F32,
                vec![sym("N"), known(3), known(4)],
            )),
        )
        .unwrap();
    let y = build(&mut g, x);
    g.set_outputs(vec![y]);
    g
}

fn axes(g: &mut Graph, name: &str, v: Vec<i64>) -> ValueId {
    let n = v.len();
    g.add_constant(name, Tensor::from_i64(&[n], v).unwrap())
        .unwrap()
}

/// Runs with several chunkings and checks all agree exactly with the unsplit run.
fn same_for_all_chunkings(g: &Graph, n: usize) -> Tensor {
    let x = f32t(&[n, 3, 4], randv(n * 12, 5));
    let whole = run(
        g,
        std::slice::from_ref(&x),
        &RunOptions {
            batch_chunk: 0,
            ..Default::default()
        },
    )
    .unwrap();
    for chunk in [1, 2, 3, 64] {
        for threads in [1, 2] {
            let got = run(
                g,
                std::slice::from_ref(&x),
                &RunOptions {
                    batch_chunk: chunk,
                    threads,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(got, whole, "chunk {chunk}, threads {threads}");
        }
    }
    whole.into_iter().next().unwrap()
}

#[test]
fn resnet_splits_along_n() {
    assert_eq!(splittable_batch(&resnet::resnet()).as_deref(), Some("N"));
}

#[test]
fn per_sample_graphs_split() {
    let cases: Vec<(&str, Graph)> = vec![
        (
            "relu",
            graph_with(|g, x| g.add_simple("r", Op::Relu, &[x]).unwrap()),
        ),
        (
            "softmax axis 1",
            graph_with(|g, x| g.add_simple("s", Op::Softmax { axis: 1 }, &[x]).unwrap()),
        ),
        (
            "reduce axis 2",
            graph_with(|g, x| {
                let a = axes(g, "a", vec![2]);
                g.add_simple(
                    "m",
                    Op::ReduceMean {
                        keepdims: false,
                        noop_with_empty_axes: false,
                    },
                    &[x, a],
                )
                .unwrap()
            }),
        ),
        (
            "matmul",
            graph_with(|g, x| {
                let w = g.add_constant("w", f32t(&[4, 2], randv(8, 1))).unwrap();
                g.add_simple("mm", Op::MatMul, &[x, w]).unwrap()
            }),
        ),
        (
            "transpose back",
            graph_with(|g, x| {
                let t = g
                    .add_simple(
                        "t",
                        Op::Transpose {
                            perm: vec![2, 0, 1],
                        },
                        &[x],
                    )
                    .unwrap();
                let e = g.add_simple("e", Op::Erf, &[t]).unwrap();
                g.add_simple(
                    "t2",
                    Op::Transpose {
                        perm: vec![1, 2, 0],
                    },
                    &[e],
                )
                .unwrap()
            }),
        ),
        (
            "flatten",
            graph_with(|g, x| g.add_simple("f", Op::Flatten { axis: 1 }, &[x]).unwrap()),
        ),
        (
            "silu",
            graph_with(|g, x| g.add_simple("s", Op::Silu, &[x]).unwrap()),
        ),
    ];
    for (name, g) in cases {
        assert_eq!(splittable_batch(&g).as_deref(), Some("N"), "{name}");
        same_for_all_chunkings(&g, 7);
    }
}

#[test]
fn graphs_mixing_samples_are_not_split_and_stay_correct() {
    // Mean over the batch: every output row is the same global mean.
    let g = graph_with(|g, x| {
        let a = axes(g, "a", vec![0]);
        let m = g
            .add_simple(
                "m",
                Op::ReduceMean {
                    keepdims: true,
                    noop_with_empty_axes: false,
                },
                &[x, a],
            )
            .unwrap();
        g.add_simple("centered", Op::Sub, &[x, m]).unwrap()
    });
    assert_eq!(splittable_batch(&g), None);
    let y = same_for_all_chunkings(&g, 9);
    let v = y.to_f64_vec();
    for j in 0..12 {
        let s: f64 = (0..9).map(|i| v[i * 12 + j]).sum();
        assert!(s.abs() < 1e-5, "column {j} of x - mean(x) sums to {s}");
    }
    let mixing: Vec<(&str, Graph)> = vec![
        (
            "softmax over batch",
            graph_with(|g, x| g.add_simple("s", Op::Softmax { axis: 0 }, &[x]).unwrap()),
        ),
        (
            "gram over batch",
            graph_with(|g, x| {
                let f = g.add_simple("f", Op::Flatten { axis: 1 }, &[x]).unwrap();
                let t = g
                    .add_simple("t", Op::Transpose { perm: vec![1, 0] }, &[f])
                    .unwrap();
                let gram = g.add_simple("gram", Op::MatMul, &[t, f]).unwrap();
                let i0 = g.add_constant("i0", Tensor::scalar_i64(0)).unwrap();
                let row = g
                    .add_simple("row", Op::Gather { axis: 0 }, &[gram, i0])
                    .unwrap();
                g.add_simple("out", Op::Add, &[f, row]).unwrap()
            }),
        ),
        (
            "divide by batch size",
            graph_with(|g, x| {
                let s = g
                    .add_simple(
                        "shape",
                        Op::Shape {
                            start: 0,
                            end: Some(1),
                        },
                        &[x],
                    )
                    .unwrap();
                let c = g
                    .add_simple("cast", Op::Cast { to: DType::F32 }, &[s])
                    .unwrap();
                g.add_simple("div", Op::Div, &[x, c]).unwrap()
            }),
        ),
        (
            "concat along batch",
            graph_with(|g, x| g.add_simple("c", Op::Concat { axis: 0 }, &[x, x]).unwrap()),
        ),
        (
            "batch not first in output",
            graph_with(|g, x| {
                g.add_simple(
                    "t",
                    Op::Transpose {
                        perm: vec![1, 0, 2],
                    },
                    &[x],
                )
                .unwrap()
            }),
        ),
        (
            "flatten axis 0",
            graph_with(|g, x| g.add_simple("f", Op::Flatten { axis: 0 }, &[x]).unwrap()),
        ),
        (
            "gather along batch",
            graph_with(|g, x| {
                let i = g
                    .add_constant("i", Tensor::from_i64(&[1], vec![0]).unwrap())
                    .unwrap();
                let first = g.add_simple("g", Op::Gather { axis: 0 }, &[x, i]).unwrap();
                g.add_simple("sub", Op::Sub, &[x, first]).unwrap()
            }),
        ),
    ];
    for (name, g) in mixing {
        assert_eq!(splittable_batch(&g), None, "{name}");
        same_for_all_chunkings(&g, 5);
    }
    // x / N really is divided by the full batch size.
    let g = graph_with(|g, x| {
        let s = g
            .add_simple(
                "shape",
                Op::Shape {
                    start: 0,
                    end: Some(1),
                },
                &[x],
            )
            .unwrap();
        let c = g
            .add_simple("cast", Op::Cast { to: DType::F32 }, &[s])
            .unwrap();
        g.add_simple("div", Op::Div, &[x, c]).unwrap()
    });
    let x = f32t(&[4, 3, 4], vec![8.0; 48]);
    let y = run(
        &g,
        &[x],
        &RunOptions {
            batch_chunk: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(y[0].to_f64_vec(), vec![2.0; 48]);
}

#[test]
fn inputs_without_a_common_symbolic_batch_are_not_split() {
    let mut g = Graph::new("t", 17);
    let x = g
        .add_input(
            "x",
            Some(TensorType::new(DType::F32, vec![known(5), known(2)])),
        )
        .unwrap();
    let r = g.add_simple("r", Op::Relu, &[x]).unwrap();
    g.set_outputs(vec![r]);
    assert_eq!(splittable_batch(&g), None);
    let mut g = Graph::new("t", 17);
    let a = g
        .add_input(
            "a",
            Some(TensorType::new(DType::F32, vec![sym("N"), known(2)])),
        )
        .unwrap();
    let b = g
        .add_input(
            "b",
            Some(TensorType::new(DType::F32, vec![sym("M"), known(2)])),
        )
        .unwrap();
    let s = g.add_simple("s", Op::Add, &[a, b]).unwrap();
    g.set_outputs(vec![s]);
    assert_eq!(splittable_batch(&g), None);
    let mut g = Graph::new("t", 17);
    let a = g
        .add_input(
            "a",
            Some(TensorType::new(DType::F32, vec![sym("N"), known(2)])),
        )
        .unwrap();
    let b = g
        .add_input(
            "b",
            Some(TensorType::new(DType::F32, vec![sym("N"), known(2)])),
        )
        .unwrap();
    let s = g.add_simple("s", Op::Mul, &[a, b]).unwrap();
    g.set_outputs(vec![s]);
    assert_eq!(splittable_batch(&g).as_deref(), Some("N"));
    let _ = Dim::Known(0);
}
