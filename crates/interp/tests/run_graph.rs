//! Whole-graph runs: determinism across chunking and threads, f64 mode, input checks.

mod common;
#[path = "common/resnet.rs"]
mod resnet;

use common::*;
use pannc_interp::{infer_types, run, InterpError, Precision, RunOptions};
use pannc_ir::{DType, Dim, Graph, Op, Tensor, TensorType};

fn bytes(ts: &[Tensor]) -> Vec<u8> {
    let mut v = Vec::new();
    for t in ts {
        v.extend(format!("{:?}{:?}", t.dtype(), t.shape()).bytes());
        match t {
            Tensor::F32(a) => a.iter().for_each(|x| v.extend(x.to_le_bytes())),
            Tensor::F64(a) => a.iter().for_each(|x| v.extend(x.to_le_bytes())),
            Tensor::I64(a) => a.iter().for_each(|x| v.extend(x.to_le_bytes())),
            Tensor::Bool(a) => a.iter().for_each(|&x| v.push(x as u8)),
        }
    }
    v
}

fn opts(batch_chunk: usize, threads: usize, precision: Precision) -> RunOptions {
    RunOptions {
        precision,
        batch_chunk,
        threads,
    }
}

#[test]
fn resnet_is_deterministic_across_chunks_and_threads() {
    let g = resnet::resnet();
    assert!(pannc_ir::verify(&g).is_empty());
    let x = resnet::images(23, 7);
    let whole = run(&g, std::slice::from_ref(&x), &opts(0, 1, Precision::F32)).unwrap();
    assert_eq!(whole[0].shape(), &[23, 10]);
    let reference = bytes(&whole);
    for (chunk, threads) in [(1, 1), (1, 2), (5, 2), (8, 1), (22, 2), (1000, 2)] {
        let got = run(
            &g,
            std::slice::from_ref(&x),
            &opts(chunk, threads, Precision::F32),
        )
        .unwrap();
        assert!(
            bytes(&got) == reference,
            "chunk {chunk}, threads {threads}: output differs"
        );
    }
    // Per-sample: running one image alone gives that image's row.
    let one = Tensor::F32(match &x {
        Tensor::F32(a) => a
            .slice(ndarray::s![13..14, .., .., ..])
            .to_owned()
            .into_dyn(),
        _ => unreachable!(),
    });
    let got = run(&g, &[one], &opts(0, 1, Precision::F32)).unwrap();
    let row: Vec<f64> = whole[0].to_f64_vec()[130..140].to_vec();
    assert_eq!(got[0].to_f64_vec(), row);
}

#[test]
fn resnet_f64_mode() {
    let g = resnet::resnet();
    let x = resnet::images(9, 3);
    let f32_out = run(&g, std::slice::from_ref(&x), &RunOptions::default()).unwrap();
    let f64_out = run(&g, std::slice::from_ref(&x), &opts(4, 2, Precision::F64)).unwrap();
    let f64_whole = run(&g, std::slice::from_ref(&x), &opts(0, 1, Precision::F64)).unwrap();
    assert_eq!(f64_out[0].dtype(), DType::F64);
    assert!(
        bytes(&f64_out) == bytes(&f64_whole),
        "f64 results depend on chunking"
    );
    let (a, b) = (f32_out[0].to_f64_vec(), f64_out[0].to_f64_vec());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = a
        .iter()
        .zip(&b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    // f32 round-off through 17 convolutions: small but not zero.
    assert!(
        err > 0.0 && err < 1e-4 * scale.max(1.0),
        "f32 vs f64 max error {err} (scale {scale})"
    );
    // f64 input given directly is accepted in f64 mode.
    let x64 = x.cast(DType::F64);
    let again = run(&g, &[x64], &opts(4, 2, Precision::F64)).unwrap();
    assert!(bytes(&again) == bytes(&f64_out));
}

#[test]
fn f64_mode_is_more_precise_than_f32() {
    // y = (x + 1e8) - 1e8 loses x in f32 and keeps it in f64.
    let mut g = Graph::new("cancel", 17);
    let x = g
        .add_input("x", Some(TensorType::new(DType::F32, vec![Dim::Known(2)])))
        .unwrap();
    let big = g.add_constant("big", Tensor::scalar_f32(1e8)).unwrap();
    let s = g.add_simple("add", Op::Add, &[x, big]).unwrap();
    let d = g.add_simple("sub", Op::Sub, &[s, big]).unwrap();
    let c = g
        .add_simple("cast", Op::Cast { to: DType::F32 }, &[d])
        .unwrap();
    g.set_outputs(vec![c]);
    let xin = f32t(&[2], vec![0.25, 3.0]);
    let y32 = run(&g, std::slice::from_ref(&xin), &RunOptions::default()).unwrap();
    assert_eq!(y32[0].to_f64_vec(), vec![0.0, 0.0]);
    let y64 = run(&g, &[xin], &opts(0, 0, Precision::F64)).unwrap();
    assert_eq!(
        y64[0].dtype(),
        DType::F64,
        "Cast to f32 stays f64 in f64 mode"
    );
    assert_eq!(y64[0].to_f64_vec(), vec![0.25, 3.0]);
}

#[test]
fn resnet_types_are_inferred_with_symbolic_batch() {
    let mut g = resnet::resnet();
    infer_types(&mut g).unwrap();
    let out = g.outputs()[0];
    assert_eq!(g.value(out).ty.as_ref().unwrap().to_string(), "f32[N,10]");
    let view = g.find_value("view").or_else(|| {
        g.value_ids().find(|&v| {
            g.producer(v)
                .is_some_and(|n| g.node(n).name.starts_with("view"))
        })
    });
    let view = view.unwrap();
    assert_eq!(g.value(view).ty.as_ref().unwrap().to_string(), "f32[N,64]");
    for v in g.value_ids() {
        assert!(g.value(v).ty.is_some(), "value {} untyped", g.value(v).name);
    }
}

#[test]
fn input_checks() {
    let g = resnet::resnet();
    let err = run(&g, &[], &RunOptions::default()).unwrap_err();
    assert!(err.to_string().contains("expects 1 inputs, got 0"), "{err}");
    let bad = f32t(&[2, 1, 28, 27], vec![0.0; 2 * 28 * 27]);
    let err = run(&g, &[bad], &RunOptions::default()).unwrap_err();
    assert!(matches!(err, InterpError::Input { index: 0, .. }), "{err}");
    assert!(err.to_string().contains("axis 3: 27 ≠ 28"), "{err}");
    let bad = i64t(&[1, 1, 28, 28], vec![0; 784]);
    let err = run(&g, &[bad], &RunOptions::default()).unwrap_err();
    assert!(err.to_string().contains("expected f32, got i64"), "{err}");
    // f64 data for an f32 input only in f64 mode.
    let x64 = Tensor::from_f64(&[1, 1, 28, 28], vec![0.0; 784]).unwrap();
    let err = run(&g, std::slice::from_ref(&x64), &RunOptions::default()).unwrap_err();
    assert!(err.to_string().contains("expected f32, got f64"), "{err}");
    let bad = f32t(&[1, 28, 28], vec![0.0; 784]);
    let err = run(&g, &[bad], &RunOptions::default()).unwrap_err();
    assert!(err.to_string().contains("rank 3 ≠ 4"), "{err}");
}

#[test]
fn symbolic_dims_must_agree_across_inputs() {
    let mut g = Graph::new("two", 17);
    let ty = TensorType::new(DType::F32, vec![sym("N"), known(3)]);
    let a = g.add_input("a", Some(ty.clone())).unwrap();
    let b = g.add_input("b", Some(ty)).unwrap();
    let s = g.add_simple("add", Op::Add, &[a, b]).unwrap();
    g.set_outputs(vec![s]);
    let ok = run(
        &g,
        &[f32t(&[2, 3], vec![1.0; 6]), f32t(&[2, 3], vec![2.0; 6])],
        &RunOptions::default(),
    )
    .unwrap();
    assert_eq!(ok[0].to_f64_vec(), vec![3.0; 6]);
    let err = run(
        &g,
        &[f32t(&[2, 3], vec![1.0; 6]), f32t(&[4, 3], vec![2.0; 12])],
        &RunOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("dimension N is 4 here (axis 0) but 2 in input 0 ('a')"),
        "{err}"
    );
}

#[test]
fn batch_of_any_size_including_zero_and_one() {
    let g = resnet::resnet();
    for n in [1usize, 3, 70] {
        let x = resnet::images(n, 11);
        let y = run(&g, &[x], &opts(64, 2, Precision::F32)).unwrap();
        assert_eq!(y[0].shape(), &[n, 10]);
        assert!(y[0].to_f64_vec().iter().all(|v| v.is_finite()));
    }
    // An empty batch runs up to `x.view(x.size(0), -1)`, which is ambiguous for 0 samples
    // (onnxruntime refuses it too).
    let err = run(&g, &[resnet::images(0, 1)], &RunOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("(Reshape): cannot reshape [0, 64, 1, 1] (0 elements) to [0, -1]"),
        "{err}"
    );
}

#[test]
fn outputs_may_be_inputs_constants_or_repeated() {
    let mut g = Graph::new("passthrough", 17);
    let x = g
        .add_input(
            "x",
            Some(TensorType::new(DType::F32, vec![sym("N"), known(2)])),
        )
        .unwrap();
    let c = g.add_constant("c", f32t(&[2], vec![1.0, 2.0])).unwrap();
    let r = g.add_simple("relu", Op::Relu, &[x]).unwrap();
    g.set_outputs(vec![x, c, r, r]);
    let xin = f32t(&[3, 2], vec![-1.0, 1.0, -2.0, 2.0, 0.5, -0.5]);
    let y = run(&g, std::slice::from_ref(&xin), &RunOptions::default()).unwrap();
    assert_eq!(y.len(), 4);
    assert_eq!(y[0], xin);
    assert_eq!(y[1].to_f64_vec(), vec![1.0, 2.0]);
    assert_eq!(y[2].to_f64_vec(), vec![0.0, 1.0, 0.0, 2.0, 0.5, 0.0]);
    assert_eq!(y[2], y[3]);
}

#[test]
fn dropout_mask_output_is_an_error_only_when_used() {
    let mut g = Graph::new("dropout", 17);
    let x = g
        .add_input("x", Some(TensorType::new(DType::F32, vec![known(2)])))
        .unwrap();
    let (_, outs) = g
        .add_node("drop", Op::Dropout, &[x], &["y".into(), "mask".into()])
        .unwrap();
    g.set_outputs(vec![outs[0]]);
    let y = run(&g, &[f32t(&[2], vec![1.0, 2.0])], &RunOptions::default()).unwrap();
    assert_eq!(y[0].to_f64_vec(), vec![1.0, 2.0]);
    g.set_outputs(vec![outs[0], outs[1]]);
    let err = run(&g, &[f32t(&[2], vec![1.0, 2.0])], &RunOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'drop' (Dropout): output 1 ('mask') is not supported"
    );
}

/// A graph exported for a fixed batch (`x: [b, 4]`, a `Reshape` to `[b, -1]`, as exporters
/// write when the example input has batch b): `run` accepts any multiple of b samples by
/// running b at a time, and gives each sample what a run of its own gives.
fn fixed_batch_graph(b: usize) -> Graph {
    let mut g = Graph::new("fixed_batch", 17);
    let x = g
        .add_input("x", Some(TensorType::known(DType::F32, &[b, 4])))
        .unwrap();
    let shape = g
        .add_constant("shape", Tensor::from_i64(&[2], vec![b as i64, -1]).unwrap())
        .unwrap();
    let r = g
        .add_simple("reshape", Op::Reshape { allowzero: false }, &[x, shape])
        .unwrap();
    let w = g
        .add_constant(
            "w",
            Tensor::from_f32(&[4, 3], (0..12).map(|i| i as f32 * 0.5 - 2.0).collect()).unwrap(),
        )
        .unwrap();
    let y = g.add_simple("mm", Op::MatMul, &[r, w]).unwrap();
    let z = g.add_simple("relu", Op::Relu, &[y]).unwrap();
    g.set_outputs(vec![z]);
    g
}

#[test]
fn fixed_batch_models_run_on_multiples_of_their_batch() {
    let xs: Vec<f32> = (0..24).map(|i| (i as f32 * 0.37).sin()).collect();
    for b in [1usize, 2] {
        let g = fixed_batch_graph(b);
        let n = 6;
        let x = f32t(&[n, 4], xs.clone());
        let got = run(&g, std::slice::from_ref(&x), &RunOptions::default()).unwrap();
        assert_eq!(got[0].shape(), &[n, 3]);
        // Each run of b samples alone gives the same rows.
        let mut rows = Vec::new();
        for s in (0..n).step_by(b) {
            let part = f32t(&[b, 4], xs[s * 4..(s + b) * 4].to_vec());
            rows.extend(run(&g, &[part], &RunOptions::default()).unwrap()[0].to_f64_vec());
        }
        assert_eq!(got[0].to_f64_vec(), rows, "b = {b}");
        // Thread counts do not change a bit.
        for threads in [1, 2] {
            let again = run(
                &g,
                std::slice::from_ref(&x),
                &opts(64, threads, Precision::F32),
            );
            assert!(bytes(&again.unwrap()) == bytes(&got));
        }
    }
    // Not a multiple of the declared batch, or another rank: the usual shape error.
    let g = fixed_batch_graph(2);
    let e = run(&g, &[f32t(&[5, 4], vec![0.0; 20])], &RunOptions::default()).unwrap_err();
    assert!(e.to_string().contains("axis 0: 5 ≠ 2"), "{e}");
    let e = run(&g, &[f32t(&[4, 5], vec![0.0; 20])], &RunOptions::default()).unwrap_err();
    assert!(e.to_string().contains("axis 1: 5 ≠ 4"), "{e}");
}

/// An output that does not keep the batch as its first axis cannot be assembled from runs:
/// an error naming the output, not a silent concatenation.
#[test]
fn fixed_batch_outputs_must_be_batch_major() {
    let mut g = Graph::new("sum_all", 17);
    let x = g
        .add_input("x", Some(TensorType::known(DType::F32, &[1, 4])))
        .unwrap();
    let s = g
        .add_simple(
            "total",
            Op::ReduceSum {
                keepdims: false,
                noop_with_empty_axes: false,
            },
            &[x],
        )
        .unwrap();
    g.set_outputs(vec![s]);
    let e = run(&g, &[f32t(&[3, 4], vec![1.0; 12])], &RunOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("declared for batches of 1 and was given 3 samples")
            && msg.contains("output '"),
        "{msg}"
    );
}
