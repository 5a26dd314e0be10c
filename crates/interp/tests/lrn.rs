//! LRN: hand-derived values (including even sizes, which onnxruntime's CPU kernel rejects),
//! the long-window path against a direct f64 sum, inference, batch splitting and errors.
//! (Odd sizes against onnxruntime are in ort_reference.rs.)

mod common;
use common::*;
use pannc_interp::{eval_op, infer_types, run, splittable_batch, RunOptions};
use pannc_ir::{DType, Graph, Op, Tensor, TensorType};

fn lrn(alpha: f32, beta: f32, bias: f32, size: usize) -> Op {
    Op::Lrn {
        alpha,
        beta,
        bias,
        size,
    }
}

fn ev(op: &Op, x: &Tensor) -> Vec<f64> {
    eval_op(op, &[x]).unwrap()[0].to_f64_vec()
}

fn close(got: &[f64], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= rtol * b.abs() + 1e-300,
            "element {i}: got {a}, expected {b}"
        );
    }
}

/// ONNX's definition, written out directly in f64 for an `(N, C, inner)` layout.
fn naive(x: &[f64], shape: &[usize], alpha: f64, beta: f64, bias: f64, size: usize) -> Vec<f64> {
    let (n, c) = (shape[0], shape[1]);
    let inner: usize = shape[2..].iter().product();
    let before = (size - 1) / 2;
    let after = size - 1 - before;
    let mut y = vec![0.0; x.len()];
    for s in 0..n {
        for ch in 0..c {
            let lo = ch.saturating_sub(before);
            let hi = (ch + after).min(c - 1);
            for i in 0..inner {
                let at = |k: usize| x[(s * c + k) * inner + i];
                let sum: f64 = (lo..=hi).map(|k| at(k) * at(k)).sum();
                y[(s * c + ch) * inner + i] =
                    at(ch) / (bias + alpha / size as f64 * sum).powf(beta);
            }
        }
    }
    y
}

#[test]
fn even_sizes_reach_one_more_channel_after_than_before() {
    // x = 1, 2, 3, 4 over four channels.
    let x = f32t(&[1, 4, 1, 1], vec![1.0, 2.0, 3.0, 4.0]);
    // size 2: channels c ..= c+1. Sums 1+4, 4+9, 9+16, 16; alpha/size = 1, beta 1, bias 1.
    close(
        &ev(&lrn(2.0, 1.0, 1.0, 2), &x),
        &[1.0 / 6.0, 2.0 / 14.0, 3.0 / 26.0, 4.0 / 17.0],
        1e-6,
    );
    // size 4: channels c-1 ..= c+2. Sums 14, 30, 29, 25; alpha/size = 1, beta 1/2, bias 0.
    close(
        &ev(&lrn(4.0, 0.5, 0.0, 4), &x),
        &[
            1.0 / 14f64.sqrt(),
            2.0 / 30f64.sqrt(),
            3.0 / 29f64.sqrt(),
            4.0 / 5.0,
        ],
        1e-6,
    );
}

#[test]
fn odd_sizes_by_hand_in_any_rank_and_dtype() {
    // (N, C) input, size 3: channels c-1 ..= c+1. Row 1 sums 5, 14, 13; row 2 is zero.
    let x = f32t(&[2, 3], vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0]);
    let want = [1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0, 0.0, 0.0, 0.0];
    let op = lrn(3.0, 1.0, 1.0, 3);
    close(&ev(&op, &x), &want, 1e-6);
    // f64 in, f64 out, same values.
    let xd = Tensor::from_f64(&[2, 3], vec![1.0, 2.0, 3.0, 0.0, 0.0, 0.0]).unwrap();
    let y = &eval_op(&op, &[&xd]).unwrap()[0];
    assert_eq!(y.dtype(), DType::F64);
    close(&y.to_f64_vec(), &want, 1e-15);
    // Size 1 normalises each channel by itself only: x / (1 + x²)^0.5 with alpha = 1.
    let x = f32t(&[1, 2, 1, 1, 2], vec![3.0, -4.0, 0.5, 2.0]);
    let want: Vec<f64> = [3.0f64, -4.0, 0.5, 2.0]
        .iter()
        .map(|v| v / (1.0 + v * v).sqrt())
        .collect();
    close(&ev(&lrn(1.0, 0.5, 1.0, 1), &x), &want, 1e-6);
}

#[test]
fn long_windows_match_a_direct_sum() {
    // Windows longer than 64 channels take the block-sum path; both paths, odd and even
    // sizes, sizes beyond the channel count, and an input with huge and tiny channels.
    let shape = [2, 100, 3];
    let mut x: Vec<f64> = randv(600, 11).iter().map(|&v| v as f64 * 3.0).collect();
    x[5 * 3] = 1e6;
    x[300 + 99 * 3 + 2] = -2e5;
    let xt = Tensor::from_f64(&shape, x.clone()).unwrap();
    for size in [5, 63, 64, 65, 66, 101, 129, 130, 199, 200, 1000, usize::MAX] {
        let (alpha, beta, bias) = (0.7, 0.6, 1.3);
        let got = ev(&lrn(alpha, beta, bias, size), &xt);
        let want = naive(&x, &shape, alpha as f64, beta as f64, bias as f64, size);
        close(&got, &want, 1e-12);
    }
    // f32 as well, against the f64 definition.
    let x32: Vec<f32> = randv(2 * 90 * 2, 3);
    let x64: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
    let t = f32t(&[2, 90, 2], x32);
    let got = ev(&lrn(2.0, 0.75, 1.0, 77), &t);
    close(&got, &naive(&x64, &[2, 90, 2], 2.0, 0.75, 1.0, 77), 1e-5);
}

#[test]
fn nan_and_infinity_stay_in_their_windows() {
    // Channel 0 holds NaN at position 0 and infinity at position 1: only the outputs whose
    // window reaches channel 0 are affected, with either window path.
    for (size, c) in [(3usize, 6usize), (67, 140)] {
        let mut x = vec![0.5f32; c * 2];
        x[0] = f32::NAN;
        x[1] = f32::INFINITY;
        let y = ev(&lrn(1.0, 0.75, 1.0, size), &f32t(&[1, c, 2], x));
        for ch in 0..c {
            let (a, b) = (y[ch * 2], y[ch * 2 + 1]);
            if ch == 0 {
                assert!(a.is_nan() && b.is_nan(), "channel 0: {a}, {b}");
            } else if ch <= (size - 1) / 2 {
                assert!(a.is_nan() && b == 0.0, "channel {ch}: {a}, {b}");
            } else {
                assert!(a.is_finite() && b.is_finite() && a > 0.0, "channel {ch}");
            }
        }
    }
}

fn batch_graph(batch_axis: usize) -> Graph {
    let mut g = Graph::new("lrn", 13);
    let mut shape = vec![known(5), known(3), known(2)];
    shape.insert(batch_axis, sym("N"));
    let x = g
        .add_input("x", Some(TensorType::new(DType::F32, shape)))
        .unwrap();
    let y = g.add_simple("lrn", lrn(0.5, 0.75, 2.0, 3), &[x]).unwrap();
    g.set_outputs(vec![y]);
    g
}

#[test]
fn inference_keeps_the_input_type_and_batches_split_along_n_only() {
    let mut g = batch_graph(0);
    infer_types(&mut g).unwrap();
    let out = g.outputs()[0];
    assert_eq!(
        g.value(out).ty.as_ref().unwrap().to_string(),
        "f32[N,5,3,2]"
    );
    assert_eq!(splittable_batch(&g).as_deref(), Some("N"));
    let n = 7;
    let xs = randv(n * 30, 9);
    let x = f32t(&[n, 5, 3, 2], xs.clone());
    let whole = run(
        &g,
        std::slice::from_ref(&x),
        &RunOptions {
            batch_chunk: 0,
            ..Default::default()
        },
    )
    .unwrap();
    for chunk in [1, 2, 3] {
        let got = run(
            &g,
            std::slice::from_ref(&x),
            &RunOptions {
                batch_chunk: chunk,
                threads: 2,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(got, whole, "chunk {chunk}");
    }
    let x64: Vec<f64> = xs.iter().map(|&v| v as f64).collect();
    close(
        &whole[0].to_f64_vec(),
        &naive(&x64, &[n, 5, 6], 0.5, 0.75, 2.0, 3),
        1e-6,
    );
    // With the symbolic dimension on the channel axis, samples are not independent.
    let g = batch_graph(1);
    assert_eq!(splittable_batch(&g), None);
    let x = f32t(&[5, n, 3, 2], xs.clone());
    let got = run(&g, &[x], &RunOptions::default()).unwrap();
    close(
        &got[0].to_f64_vec(),
        &naive(&x64, &[5, n, 6], 0.5, 0.75, 2.0, 3),
        1e-6,
    );
}

#[test]
fn bad_inputs_are_errors() {
    let err = |op: Op, x: &Tensor| eval_op(&op, &[x]).unwrap_err().to_string();
    let x = f32t(&[2, 3], vec![1.0; 6]);
    let e = err(lrn(1e-4, 0.75, 1.0, 0), &x);
    assert!(
        e.contains("LRN") && e.contains("size must be at least 1"),
        "{e}"
    );
    let e = err(lrn(1e-4, 0.75, 1.0, 3), &f32t(&[3], vec![1.0; 3]));
    assert!(e.contains("rank ≥ 2"), "{e}");
    let e = err(lrn(f32::NAN, 0.75, 1.0, 3), &x);
    assert!(e.contains("must be finite"), "{e}");
    let e = err(lrn(1e-4, 0.75, 1.0, 3), &i64t(&[2, 3], vec![1; 6]));
    assert!(e.contains("float") && e.contains("got i64"), "{e}");
    let e = eval_op(&lrn(1e-4, 0.75, 1.0, 3), &[&x, &x])
        .unwrap_err()
        .to_string();
    assert!(e.contains("takes 1 inputs, got 2"), "{e}");
    // Empty channel or spatial axes give empty outputs.
    for shape in [[2usize, 0, 3], [2, 3, 0], [0, 3, 2]] {
        let y = &eval_op(&lrn(1e-4, 0.75, 1.0, 5), &[&f32t(&shape, vec![])]).unwrap()[0];
        assert_eq!(y.shape(), &shape);
    }
    // Static inference rejects the same graphs, naming the node.
    let mut g = Graph::new("bad", 13);
    let x = g
        .add_input("x", Some(TensorType::new(DType::F32, vec![sym("N")])))
        .unwrap();
    let y = g
        .add_simple("norm1", lrn(1e-4, 0.75, 1.0, 3), &[x])
        .unwrap();
    g.set_outputs(vec![y]);
    let e = infer_types(&mut g).unwrap_err().to_string();
    assert!(
        e.contains("norm1") && e.contains("LRN") && e.contains("rank ≥ 2"),
        "{e}"
    );
}
