//! Interval analysis: sound bounds `[lo, hi]` on every value, given bounds on the graph inputs.
//!
//! One interval per value (over all its elements): looser than calibration, but it holds for
//! every input in the declared range, not just the samples seen. Linear layers use the sign
//! split `Σ w⁺·hi + w⁻·lo` per output channel; zero padding adds 0 to the input's range;
//! nonlinearities use their monotone pieces (GELU and SiLU with their global minima). An op
//! the analysis does not know gives `(-∞, ∞)`, which stays sound.

use pannc_ir::{Graph, Op, Tensor, ValueId};
use std::collections::BTreeMap;

/// Bounds by value.
pub type Intervals = BTreeMap<ValueId, (f64, f64)>;

const ALL: (f64, f64) = (f64::NEG_INFINITY, f64::INFINITY);

/// Propagates `input` (the range of every element of every graph input) through `g`.
pub fn intervals(g: &Graph, input: (f64, f64)) -> Intervals {
    let mut iv = Intervals::new();
    for &v in g.inputs() {
        iv.insert(v, input);
    }
    let Ok(order) = g.topo_order() else { return iv };
    for id in order {
        let node = g.node(id);
        let get = |k: usize| {
            node.inputs()
                .get(k)
                .and_then(|v| iv.get(v))
                .copied()
                .unwrap_or(ALL)
        };
        let konst = |k: usize| node.inputs().get(k).and_then(|&v| g.constant(v));
        let out = match &node.op {
            Op::Constant(t) => min_max(t),
            Op::Conv { window, .. } => match konst(1) {
                Some(w) => {
                    let mut x = get(0);
                    if window.pads.iter().any(|&p| p > 0)
                        || window.auto_pad != pannc_ir::AutoPad::NotSet
                    {
                        x = (x.0.min(0.0), x.1.max(0.0));
                    }
                    let shape = w.shape();
                    let per_out: usize = shape[1..].iter().product();
                    linear(&w.to_f64_vec(), shape[0], per_out, 1, x, konst(2))
                }
                None => ALL,
            },
            Op::Gemm {
                alpha,
                beta,
                trans_a: false,
                trans_b,
            } => match konst(1) {
                Some(w) if w.shape().len() == 2 => {
                    let (k, n) = if *trans_b {
                        (w.shape()[1], w.shape()[0])
                    } else {
                        (w.shape()[0], w.shape()[1])
                    };
                    // Row-major W[k][n] (or [n][k] when transposed): stride between inputs of one output.
                    let wv: Vec<f64> = w.to_f64_vec().iter().map(|x| x * *alpha as f64).collect();
                    let (lo, hi) = if *trans_b {
                        linear(&wv, n, k, 1, get(0), None)
                    } else {
                        linear_cols(&wv, k, n, get(0))
                    };
                    match konst(2) {
                        Some(c) => {
                            let (cl, ch) = min_max(c);
                            let b = *beta as f64;
                            let (cl, ch) = if b >= 0.0 {
                                (cl * b, ch * b)
                            } else {
                                (ch * b, cl * b)
                            };
                            (lo + cl, hi + ch)
                        }
                        None if node.inputs().len() > 2 => ALL,
                        None => (lo, hi),
                    }
                }
                _ => ALL,
            },
            Op::MatMul => match konst(1) {
                Some(w) if w.shape().len() == 2 => {
                    linear_cols(&w.to_f64_vec(), w.shape()[0], w.shape()[1], get(0))
                }
                _ => ALL,
            },
            Op::Add => add(get(0), get(1)),
            Op::Sub => add(get(0), (-get(1).1, -get(1).0)),
            Op::Mul => mul(get(0), get(1)),
            Op::Div => match konst(1).map(min_max) {
                Some((l, h)) if l > 0.0 || h < 0.0 => mul(get(0), (1.0 / h, 1.0 / l)),
                _ => ALL,
            },
            Op::BatchNormalization { epsilon } => match (konst(1), konst(2), konst(3), konst(4)) {
                (Some(s), Some(b), Some(m), Some(v)) => {
                    let (s, b, m, v) = (
                        s.to_f64_vec(),
                        b.to_f64_vec(),
                        m.to_f64_vec(),
                        v.to_f64_vec(),
                    );
                    let x = get(0);
                    let mut r = (f64::INFINITY, f64::NEG_INFINITY);
                    for c in 0..s.len().min(b.len()).min(m.len()).min(v.len()) {
                        let k = s[c] / (v[c] + *epsilon as f64).sqrt();
                        let t = b[c] - m[c] * k;
                        let y = mul(x, (k, k));
                        r = (r.0.min(y.0 + t), r.1.max(y.1 + t));
                    }
                    r
                }
                _ => ALL,
            },
            Op::Relu => (get(0).0.max(0.0), get(0).1.max(0.0)),
            Op::LeakyRelu { alpha } => {
                let a = *alpha as f64;
                let f = |x: f64| if x < 0.0 { a * x } else { x };
                let (l, h) = get(0);
                let (p, q) = (f(l), f(h));
                (
                    p.min(q).min(if l < 0.0 && h > 0.0 {
                        0.0
                    } else {
                        f64::INFINITY
                    }),
                    p.max(q),
                )
            }
            Op::Clip { has_min, has_max } => {
                let (mut l, mut h) = get(0);
                if *has_min {
                    let m = konst(1).map(min_max).map_or(f64::NEG_INFINITY, |x| x.0);
                    l = l.max(m);
                    h = h.max(m);
                }
                if *has_max {
                    let m = konst(1 + *has_min as usize)
                        .map(min_max)
                        .map_or(f64::INFINITY, |x| x.1);
                    l = l.min(m);
                    h = h.min(m);
                }
                (l, h)
            }
            Op::Sigmoid => monotone(get(0), |x| 1.0 / (1.0 + (-x).exp())),
            Op::Tanh => monotone(get(0), f64::tanh),
            Op::Erf => monotone(get(0), libm_erf),
            Op::Gelu { .. } => with_minimum(
                get(0),
                |x| 0.5 * x * (1.0 + libm_erf(x / std::f64::consts::SQRT_2)),
                -0.751_791_524_693_564_5,
            ),
            Op::Silu => with_minimum(get(0), |x| x / (1.0 + (-x).exp()), -1.278_464_542_761_074),
            Op::Softmax { .. } => (0.0, 1.0),
            Op::MaxPool { .. }
            | Op::AveragePool { .. }
            | Op::GlobalAveragePool
            | Op::ReduceMean { .. }
            | Op::Flatten { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Squeeze
            | Op::Unsqueeze
            | Op::Identity
            | Op::Dropout => {
                let x = get(0);
                match &node.op {
                    Op::AveragePool {
                        count_include_pad: true,
                        window,
                    }
                    | Op::MaxPool { window }
                        if window.pads.iter().any(|&p| p > 0) =>
                    {
                        (x.0.min(0.0), x.1.max(0.0))
                    }
                    _ => x,
                }
            }
            Op::Concat { .. } => node
                .inputs()
                .iter()
                .map(|v| iv.get(v).copied().unwrap_or(ALL))
                .fold((f64::INFINITY, f64::NEG_INFINITY), |a, b| {
                    (a.0.min(b.0), a.1.max(b.1))
                }),
            Op::Pad { .. } => (get(0).0.min(0.0), get(0).1.max(0.0)),
            Op::Poly(p) => sampled(get(0), |x| p.eval(x)),
            _ => ALL,
        };
        for &o in node.outputs() {
            iv.insert(o, out);
        }
    }
    iv
}

fn min_max(t: &Tensor) -> (f64, f64) {
    t.to_f64_vec()
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, &x| {
            (a.0.min(x), a.1.max(x))
        })
}

fn add(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0 + b.0, a.1 + b.1)
}

fn mul(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let p = [a.0 * b.0, a.0 * b.1, a.1 * b.0, a.1 * b.1];
    if p.iter().any(|x| x.is_nan()) {
        return ALL;
    }
    (
        p.iter().copied().fold(f64::INFINITY, f64::min),
        p.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

/// Outputs `o < n_out`, each `Σ_j w[o·per_out + j·stride]·x + bias[o]`.
fn linear(
    w: &[f64],
    n_out: usize,
    per_out: usize,
    stride: usize,
    x: (f64, f64),
    bias: Option<&Tensor>,
) -> (f64, f64) {
    let b = bias.map(|t| t.to_f64_vec());
    let mut r = (f64::INFINITY, f64::NEG_INFINITY);
    for o in 0..n_out {
        let (mut lo, mut hi) = (0.0, 0.0);
        for j in 0..per_out {
            let wj = w[o * per_out + j * stride];
            let (p, q) = mul((wj, wj), x);
            lo += p;
            hi += q;
        }
        let c = b.as_ref().and_then(|b| b.get(o)).copied().unwrap_or(0.0);
        r = (r.0.min(lo + c), r.1.max(hi + c));
    }
    r
}

/// `y[n] = Σ_k x[k]·W[k][n]` with W row-major `[k, n]`.
fn linear_cols(w: &[f64], k: usize, n: usize, x: (f64, f64)) -> (f64, f64) {
    let mut r = (f64::INFINITY, f64::NEG_INFINITY);
    for col in 0..n {
        let (mut lo, mut hi) = (0.0, 0.0);
        for row in 0..k {
            let wj = w[row * n + col];
            let (p, q) = mul((wj, wj), x);
            lo += p;
            hi += q;
        }
        r = (r.0.min(lo), r.1.max(hi));
    }
    r
}

fn monotone(x: (f64, f64), f: impl Fn(f64) -> f64) -> (f64, f64) {
    (f(x.0), f(x.1))
}

/// For a function decreasing then increasing with its minimum at `argmin`.
fn with_minimum(x: (f64, f64), f: impl Fn(f64) -> f64, argmin: f64) -> (f64, f64) {
    let (a, b) = (f(x.0), f(x.1));
    let lo = if x.0 <= argmin && argmin <= x.1 {
        f(argmin)
    } else {
        a.min(b)
    };
    (lo, a.max(b))
}

/// Bounds of a polynomial over an interval by dense sampling (used only after approximation,
/// for reporting; not relied on for soundness).
fn sampled(x: (f64, f64), f: impl Fn(f64) -> f64) -> (f64, f64) {
    if !(x.0.is_finite() && x.1.is_finite()) {
        return ALL;
    }
    (0..=4096)
        .map(|i| f(x.0 + (x.1 - x.0) * i as f64 / 4096.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, y| {
            (a.0.min(y), a.1.max(y))
        })
}

fn libm_erf(x: f64) -> f64 {
    libm::erf(x)
}
