//! Negative-side error shaping and error measurement of polynomial activations.
//!
//! A composite ReLU `x'(1 + q(x'))/2` is exact where `q = ±1` and wrong across the sign
//! transition around 0, where both sides get a negative error — and where calibrated inputs
//! crowd (`|x'|` is mostly a few percent of B). Its stages are minimax on `[-1, 1]`, blind to
//! that. Shaping refits the *last* stage by weighted least squares over the calibrated
//! inputs of this activation (plus a uniform grid holding 10% of the weight, so the result
//! stays sane where data is thin), with errors on negative inputs weighted `w` times. The
//! output is linear in the last stage's coefficients, so this is one small least-squares
//! solve; degrees and nonzero pattern are kept: zero extra levels, same ct×ct count.

use crate::analysis::RangeStats;
use crate::context::CalibError;
use pannc_approx::Function;
use pannc_ir::{Poly, PolyCombine};

/// The activation a polynomial stands for, at raw input `x`. Valid for homogeneous combines
/// always, and for `identity` (smooth functions) while `in_scale` is still `1/B`, i.e. before
/// range control folds it.
pub fn exact(p: &Poly, x: f64) -> Option<f64> {
    let y = p.in_scale * x;
    Some(match p.combine {
        PolyCombine::Relu => p.out_scale * y.max(0.0),
        PolyCombine::LeakyRelu { slope } => p.out_scale * if y >= 0.0 { y } else { slope * y },
        // A single polynomial for ReLU itself: homogeneous like the composite.
        PolyCombine::Identity if p.function == "relu" => p.out_scale * y.max(0.0),
        PolyCombine::Identity => {
            let f = match p.function.as_str() {
                "gelu" => Function::Gelu,
                "silu" => Function::Silu,
                "sigmoid" => Function::Sigmoid,
                "tanh" => Function::Tanh,
                "exp" | "reciprocal" | "invsqrt" | "sqrt" | "inv_square" | "power" => {
                    Function::parse(&p.function).ok()?
                }
                _ => return None,
            };
            f.eval(x)
        }
    })
}

/// [`exact`] resolved once for a polynomial, for loops over many values (bitwise the same).
#[derive(Clone, Copy, Debug)]
pub enum Exact {
    Relu {
        in_scale: f64,
        out_scale: f64,
    },
    LeakyRelu {
        in_scale: f64,
        out_scale: f64,
        slope: f64,
    },
    Smooth(Function),
}

impl Exact {
    pub fn of(p: &Poly) -> Option<Exact> {
        let (in_scale, out_scale) = (p.in_scale, p.out_scale);
        Some(match p.combine {
            PolyCombine::Relu => Exact::Relu {
                in_scale,
                out_scale,
            },
            PolyCombine::LeakyRelu { slope } => Exact::LeakyRelu {
                in_scale,
                out_scale,
                slope,
            },
            PolyCombine::Identity if p.function == "relu" => Exact::Relu {
                in_scale,
                out_scale,
            },
            PolyCombine::Identity => Exact::Smooth(match p.function.as_str() {
                "gelu" => Function::Gelu,
                "silu" => Function::Silu,
                "sigmoid" => Function::Sigmoid,
                "tanh" => Function::Tanh,
                _ => return None,
            }),
        })
    }

    #[inline]
    pub fn at(&self, x: f64) -> f64 {
        match *self {
            Exact::Relu {
                in_scale,
                out_scale,
            } => out_scale * (in_scale * x).max(0.0),
            Exact::LeakyRelu {
                in_scale,
                out_scale,
                slope,
            } => {
                let y = in_scale * x;
                out_scale * if y >= 0.0 { y } else { slope * y }
            }
            Exact::Smooth(f) => f.eval(x),
        }
    }
}

/// Mean error of `p` over `xs` (raw inputs), overall |·| and signed per side.
pub fn calib_error(p: &Poly, xs: &[f64]) -> Option<CalibError> {
    let (mut abs, mut neg, mut nn, mut pos, mut np) = (0.0, 0.0, 0usize, 0.0, 0usize);
    for &x in xs {
        let e = p.eval(x) - exact(p, x)?;
        abs += e.abs();
        if x < 0.0 {
            neg += e;
            nn += 1;
        } else {
            pos += e;
            np += 1;
        }
    }
    (!xs.is_empty()).then(|| CalibError {
        mean_abs: abs / xs.len() as f64,
        mean_negative: neg / nn.max(1) as f64,
        mean_positive: pos / np.max(1) as f64,
    })
}

/// Share of the fit's weight on a uniform grid over `[-1, 1]` (the rest is on the calibrated
/// sample), so the refit stays bounded where calibration data is thin.
const GRID_SHARE: f64 = 0.1;
const GRID_POINTS: usize = 2049;

/// Refits the last stage of a ReLU/LeakyReLU composite by weighted least squares on the
/// calibrated inputs (errors on negative inputs weighted `w_neg`), keeping its degree and its
/// nonzero pattern (so parity, depth and ct×ct count are unchanged). Returns `None` for other
/// polynomials, without a sample, or when the fit fails.
pub fn shape_relu(p: &Poly, stats: Option<&RangeStats>, w_neg: f64) -> Option<Poly> {
    let slope = match p.combine {
        PolyCombine::Relu => 0.0,
        PolyCombine::LeakyRelu { slope } => slope,
        _ => return None,
    };
    let sample = stats.map(|s| s.sample.as_slice()).unwrap_or(&[]);
    if sample.is_empty() || p.stages.is_empty() {
        return None;
    }
    let k = p.stages.len() - 1;
    let last = &p.stages[k];
    let active: Vec<usize> = (0..last.coeffs.len())
        .filter(|&j| last.coeffs[j] != 0.0)
        .collect();
    // Points x' (already scaled) with weights.
    let mut pts: Vec<(f64, f64)> = Vec::with_capacity(sample.len() + GRID_POINTS);
    let ws = (1.0 - GRID_SHARE) / sample.len() as f64;
    for &x in sample {
        let y = (p.in_scale * x).clamp(-1.0, 1.0);
        pts.push((y, ws * if y < 0.0 { w_neg } else { 1.0 }));
    }
    let wg = GRID_SHARE / GRID_POINTS as f64;
    for i in 0..GRID_POINTS {
        let y = -1.0 + 2.0 * i as f64 / (GRID_POINTS - 1) as f64;
        pts.push((y, wg * if y < 0.0 { w_neg } else { 1.0 }));
    }
    let (m, n) = (pts.len(), active.len());
    let mut a = vec![0.0; m * n];
    let mut b = vec![0.0; m];
    for (i, &(y, w)) in pts.iter().enumerate() {
        let inner = p.stages[..k].iter().fold(y, |v, s| s.eval(v));
        let u = (2.0 * inner - last.lo - last.hi) / (last.hi - last.lo);
        let sw = w.sqrt();
        // T_j(u) by the recurrence.
        let mut t = vec![0.0; last.coeffs.len()];
        for j in 0..t.len() {
            t[j] = match j {
                0 => 1.0,
                1 => u,
                _ => 2.0 * u * t[j - 1] - t[j - 2],
            };
        }
        for (c, &j) in active.iter().enumerate() {
            a[i * n + c] = sw * y * (1.0 - slope) * t[j] / 2.0;
        }
        let f = if y >= 0.0 { y } else { slope * y };
        b[i] = sw * (f - y * (1.0 + slope) / 2.0);
    }
    let c = pannc_approx::least_squares(&a, &b, m, n).ok()?;
    let mut q = p.clone();
    let stage = &mut q.stages[k];
    stage.coeffs.iter_mut().for_each(|x| *x = 0.0);
    for (v, &j) in c.iter().zip(&active) {
        stage.coeffs[j] = *v;
    }
    c.iter().all(|v| v.is_finite()).then_some(q)
}

/// Largest |p − f| over `[-b, b]` on a grid of 2^14 + 1 points.
pub fn max_error(p: &Poly, b: f64) -> Option<f64> {
    let n = 1 << 14;
    let mut worst: f64 = 0.0;
    for i in 0..=n {
        let x = -b + 2.0 * b * i as f64 / n as f64;
        worst = worst.max((p.eval(x) - exact(p, x)?).abs());
    }
    Some(worst)
}
