//! Remez exchange for the weighted minimax polynomial on a union of intervals.
//!
//! Problem: given `f`, a set `S` (a union of closed intervals), a positive weight `w` and a degree
//! `d`, find `p` of degree ≤ d minimising `max_{x∈S} w(x)·|p(x) − f(x)|`. With a parity (odd or
//! even) the fit runs on `S⁺ = {|x| : x ∈ S}` in the odd (`T_1, T_3, …`) or even (`T_0, T_2, …`)
//! Chebyshev basis of the symmetric hull `[-m, m]`; `f` must then have that parity and `w` must be
//! even. Otherwise the basis is `T_0 … T_d` on the hull of `S`.
//!
//! Algorithm (multi-point exchange):
//! 1. reference: `n + 1` points (`n` basis functions) spread over `S` by the arcsine measure of the
//!    hull (the extrema of `T_{n}` when `S` is the whole hull);
//! 2. solve the `(n+1)×(n+1)` levelled system `Σ_k c_k φ_k(x_i) − (−1)^i h / w(x_i) = f(x_i)`;
//! 3. sample the error `e = w (p − f)` between consecutive reference points, interval ends and the
//!    caller's breakpoints (kinks of `f`), split the samples into runs of one sign, and locate the
//!    extremum of each run by Brent's method (parabolic steps with golden-section safeguards, so
//!    kinks are found too);
//! 4. keep `n + 1` alternating extrema that include the global maximum (drop the smallest, merging
//!    neighbours of one sign), and stop when `(max|e| − min_ref|e|)/max|e| ≤ tol`.
//!
//! Precision: everything runs in f64. `tests/precision.rs` measures, with a double-double
//! evaluator, that f64 Clenshaw evaluation of the resulting series is accurate to < 1e-13 absolute
//! up to degree 511 here, far below the minimax errors involved (≥ 1e-4 for ReLU at degree 511), and
//! that the levelled system stays well conditioned (Chebyshev basis at alternation points).

use crate::cheb::{clenshaw, ChebSeries, MAX_DEGREE};
use crate::ApproxError;
use serde::{Deserialize, Serialize};

/// Parity to impose on the minimax polynomial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// Weight of the minimax problem: the fit minimises `max w(x)|p(x) − f(x)|`.
#[derive(Clone, Copy)]
pub enum Weight<'a> {
    Uniform,
    /// `negative` for `x < 0`, `positive` for `x ≥ 0` (both > 0). Large `negative` makes the error
    /// on negative inputs smaller.
    Sides {
        negative: f64,
        positive: f64,
    },
    /// Any positive function.
    Custom(&'a dyn Fn(f64) -> f64),
}

impl std::fmt::Debug for Weight<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Weight::Uniform => write!(f, "Uniform"),
            Weight::Sides { negative, positive } => write!(f, "Sides({negative}, {positive})"),
            Weight::Custom(_) => write!(f, "Custom"),
        }
    }
}

impl Weight<'_> {
    #[inline]
    pub fn at(&self, x: f64) -> f64 {
        match self {
            Weight::Uniform => 1.0,
            Weight::Sides { negative, positive } => {
                if x < 0.0 {
                    *negative
                } else {
                    *positive
                }
            }
            Weight::Custom(w) => w(x),
        }
    }
}

/// Tuning of the exchange; the defaults suit every use in this crate.
#[derive(Clone, Debug)]
pub struct RemezOptions {
    pub max_iter: usize,
    /// Relative levelling tolerance `(max|e| − min_ref|e|)/max|e|`.
    pub tol: f64,
    /// Samples between consecutive knots (reference points, interval ends, breakpoints).
    pub samples_per_gap: usize,
    /// Points where `f` (or `w`) is not smooth; always sampled exactly.
    pub breakpoints: Vec<f64>,
    /// Optional starting reference (`n + 1` points of the fitted set), e.g. from a nearby problem.
    pub initial_reference: Option<Vec<f64>>,
    /// Stop as soon as the achieved error is at most this (0: never). The result is then a
    /// valid polynomial with that error, not necessarily the minimax one.
    pub stop_below: f64,
}

impl Default for RemezOptions {
    fn default() -> Self {
        RemezOptions {
            max_iter: 100,
            tol: 1e-9,
            samples_per_gap: 10,
            breakpoints: Vec::new(),
            initial_reference: None,
            stop_below: 0.0,
        }
    }
}

/// Errors below `ROUNDOFF_FLOOR · max|f|` (or below 256 ε Σ|c_k|, the rounding level of the
/// series) are at f64 resolution: the fit is returned as is (levelling rounding noise is
/// meaningless) and flagged `roundoff_limited`.
pub const ROUNDOFF_FLOOR: f64 = 1e-13;

/// A minimax fit.
#[derive(Clone, Debug, Serialize)]
pub struct Minimax {
    pub series: ChebSeries,
    /// Largest weighted error `max w|p − f|` found on the set (refined extrema).
    pub error: f64,
    /// `|h|` of the last levelled system: a lower bound of the best possible error
    /// (de la Vallée Poussin), so `levelled ≤ best ≤ error`.
    pub levelled: f64,
    /// Alternation points `(x, w(x)(p(x) − f(x)))` on the whole set (mirrored under a parity),
    /// sorted by `x`.
    pub extrema: Vec<(f64, f64)>,
    /// Final reference on the fitted set (`S⁺` under a parity).
    pub reference: Vec<f64>,
    pub iterations: usize,
    /// Whether the levelling tolerance was met (otherwise it was within 1%).
    pub converged: bool,
    /// The error is at the f64 rounding level of this fit (no meaningful levelling possible):
    /// `error` is then a measured value, not a minimax one.
    pub roundoff_limited: bool,
}

/// Sorted, merged, validated intervals.
pub(crate) fn normalize_intervals(
    intervals: &[(f64, f64)],
) -> Result<Vec<(f64, f64)>, ApproxError> {
    if intervals.is_empty() {
        return Err(ApproxError::InvalidInput("no interval given".into()));
    }
    let mut v: Vec<(f64, f64)> = Vec::with_capacity(intervals.len());
    for &(a, b) in intervals {
        if !(a.is_finite() && b.is_finite() && a < b) {
            return Err(ApproxError::InvalidDomain { a, b });
        }
        v.push((a, b));
    }
    v.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    Ok(out)
}

/// `{|x| : x ∈ S}` as sorted merged intervals.
fn fold_positive(s: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let folded: Vec<(f64, f64)> = s
        .iter()
        .map(|&(a, b)| {
            if b <= 0.0 {
                (-b, -a)
            } else if a >= 0.0 {
                (a, b)
            } else {
                (0.0, (-a).max(b))
            }
        })
        .collect();
    // Degenerate [0,0] pieces cannot occur (a < b); merge.
    normalize_intervals(&folded).expect("folded intervals are valid")
}

struct Problem<'a> {
    f: &'a dyn Fn(f64) -> f64,
    w: Weight<'a>,
    /// Fitted set (S or S⁺).
    set: Vec<(f64, f64)>,
    lo: f64,
    hi: f64,
    /// Chebyshev indices of the basis.
    ks: Vec<usize>,
    degree: usize,
}

impl Problem<'_> {
    #[inline]
    fn t(&self, x: f64) -> f64 {
        ((2.0 * x - self.lo - self.hi) / (self.hi - self.lo)).clamp(-1.0, 1.0)
    }
    fn x_of_t(&self, t: f64) -> f64 {
        0.5 * ((self.hi - self.lo) * t + self.lo + self.hi)
    }
    fn full_coeffs(&self, c: &[f64]) -> Vec<f64> {
        let mut full = vec![0.0; self.degree + 1];
        for (&k, &v) in self.ks.iter().zip(c) {
            full[k] = v;
        }
        full
    }
    fn fval(&self, x: f64) -> Result<f64, ApproxError> {
        let y = (self.f)(x);
        if !y.is_finite() {
            return Err(ApproxError::NonFinite { x });
        }
        Ok(y)
    }
    fn wval(&self, x: f64) -> Result<f64, ApproxError> {
        let y = self.w.at(x);
        if !(y.is_finite() && y > 0.0) {
            return Err(ApproxError::InvalidInput(format!(
                "weight must be positive and finite, got {y} at x = {x}"
            )));
        }
        Ok(y)
    }
    /// Initial reference: `count` points at arcsine-measure quantiles of the set.
    fn initial_reference(&self, count: usize, odd: bool) -> Vec<f64> {
        let theta: Vec<(f64, f64)> = self
            .set
            .iter()
            .map(|&(a, b)| (self.t(a).acos(), self.t(b).acos()))
            .collect();
        let total: f64 = theta.iter().map(|(ta, tb)| ta - tb).sum();
        let mut pts = Vec::with_capacity(count);
        for i in 0..count {
            let q = if odd {
                (i as f64 + 0.5) / (count as f64 - 0.5)
            } else if count == 1 {
                0.5
            } else {
                i as f64 / (count - 1) as f64
            };
            let mut u = q * total;
            let mut x = self.set.last().unwrap().1;
            for (k, &(ta, tb)) in theta.iter().enumerate() {
                let len = ta - tb;
                if u <= len || k == theta.len() - 1 {
                    let th = (ta - u.min(len)).clamp(0.0, std::f64::consts::PI);
                    x = self.x_of_t(th.cos()).clamp(self.set[k].0, self.set[k].1);
                    break;
                }
                u -= len;
            }
            pts.push(x);
        }
        pts.sort_by(f64::total_cmp);
        pts
    }
}

/// Maximises `g` on `[a, b]` starting from `x0` (Brent's method on `-g`). Returns `(x, g(x))`.
fn brent_max(g: &dyn Fn(f64) -> f64, a: f64, b: f64, x0: f64, g0: f64) -> (f64, f64) {
    const CGOLD: f64 = 0.381_966_011_250_105;
    let (mut a, mut b) = (a, b);
    let (mut x, mut w, mut v) = (x0, x0, x0);
    let (mut fx, mut fw, mut fv) = (-g0, -g0, -g0);
    let mut d: f64 = 0.0;
    let mut e: f64 = 0.0;
    for _ in 0..60 {
        let xm = 0.5 * (a + b);
        let tol1 = 1e-13 * x.abs().max(1e-3 * (b - a).abs()) + 1e-300;
        let tol2 = 2.0 * tol1;
        if (x - xm).abs() <= tol2 - 0.5 * (b - a) {
            break;
        }
        let mut golden = true;
        if e.abs() > tol1 {
            let r = (x - w) * (fx - fv);
            let mut q = (x - v) * (fx - fw);
            let mut p = (x - v) * q - (x - w) * r;
            q = 2.0 * (q - r);
            if q > 0.0 {
                p = -p;
            }
            q = q.abs();
            let etemp = e;
            e = d;
            if !(p.abs() >= (0.5 * q * etemp).abs() || p <= q * (a - x) || p >= q * (b - x)) {
                d = p / q;
                let u = x + d;
                if u - a < tol2 || b - u < tol2 {
                    d = if xm >= x { tol1 } else { -tol1 };
                }
                golden = false;
            }
        }
        if golden {
            e = if x >= xm { a - x } else { b - x };
            d = CGOLD * e;
        }
        let u = if d.abs() >= tol1 {
            x + d
        } else {
            x + if d >= 0.0 { tol1 } else { -tol1 }
        };
        let fu = -g(u);
        if fu <= fx {
            if u >= x {
                a = x;
            } else {
                b = x;
            }
            v = w;
            fv = fw;
            w = x;
            fw = fx;
            x = u;
            fx = fu;
        } else {
            if u < x {
                a = u;
            } else {
                b = u;
            }
            if fu <= fw || w == x {
                v = w;
                fv = fw;
                w = u;
                fw = fu;
            } else if fu <= fv || v == x || v == w {
                v = u;
                fv = fu;
            }
        }
    }
    (x, -fx)
}

/// Weighted minimax polynomial of degree ≤ `degree` for `f` on the union of `intervals`.
pub fn minimax(
    f: &dyn Fn(f64) -> f64,
    intervals: &[(f64, f64)],
    degree: usize,
    weight: Weight,
    parity: Parity,
) -> Result<Minimax, ApproxError> {
    minimax_with(
        f,
        intervals,
        degree,
        weight,
        parity,
        &RemezOptions::default(),
    )
}

/// [`minimax`] with explicit options.
pub fn minimax_with(
    f: &dyn Fn(f64) -> f64,
    intervals: &[(f64, f64)],
    degree: usize,
    weight: Weight,
    parity: Parity,
    opts: &RemezOptions,
) -> Result<Minimax, ApproxError> {
    if degree > MAX_DEGREE {
        return Err(ApproxError::DegreeTooLarge {
            degree,
            max: MAX_DEGREE,
        });
    }
    let s = normalize_intervals(intervals)?;
    if let (Weight::Sides { negative, positive }, Parity::Even | Parity::Odd) = (weight, parity) {
        if negative != positive {
            return Err(ApproxError::InvalidInput(
                "a one-sided weight breaks the symmetry a parity needs; use Parity::None".into(),
            ));
        }
    }
    let (set, lo, hi) = match parity {
        Parity::None => {
            let lo = s[0].0;
            let hi = s.last().unwrap().1;
            (s.clone(), lo, hi)
        }
        Parity::Even | Parity::Odd => {
            let p = fold_positive(&s);
            let m = p.last().unwrap().1;
            (p, -m, m)
        }
    };
    let ks: Vec<usize> = match parity {
        Parity::None => (0..=degree).collect(),
        Parity::Even => (0..=degree).step_by(2).collect(),
        Parity::Odd => (1..=degree).step_by(2).collect(),
    };
    if ks.is_empty() {
        return Err(ApproxError::InvalidInput(format!(
            "an odd polynomial needs degree ≥ 1, got {degree}"
        )));
    }
    let prob = Problem {
        f,
        w: weight,
        set,
        lo,
        hi,
        ks,
        degree,
    };
    // Starting references: the caller's, the arcsine quantiles, then two asymmetric variants
    // (r of r + 1 quantiles). A symmetric start can be degenerate (e.g. ReLU at even degree: the
    // levelled error is 0 and the error has too few sign changes); the variants break the tie.
    let r = prob.ks.len() + 1;
    let odd = parity == Parity::Odd;
    let mut starts: Vec<Vec<f64>> = Vec::new();
    if let Some(v) = &opts.initial_reference {
        if v.len() == r {
            let mut v = v.clone();
            v.sort_by(f64::total_cmp);
            starts.push(v);
        }
    }
    starts.push(prob.initial_reference(r, odd));
    let wide = prob.initial_reference(r + 1, odd);
    starts.push(wide[1..].to_vec());
    starts.push(wide[..r].to_vec());
    let mut last_err = None;
    for start in starts {
        match run_remez(&prob, parity, opts, &s, start) {
            Ok(m) => return Ok(m),
            Err(e @ ApproxError::RemezFailed { .. }) | Err(e @ ApproxError::Singular { .. }) => {
                last_err = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.expect("at least one start"))
}

fn run_remez(
    prob: &Problem,
    parity: Parity,
    opts: &RemezOptions,
    original: &[(f64, f64)],
    start: Vec<f64>,
) -> Result<Minimax, ApproxError> {
    let n = prob.ks.len();
    let r = n + 1;
    let mut reference = start;
    let breakpoints: Vec<f64> = opts
        .breakpoints
        .iter()
        .map(|&b| if parity == Parity::None { b } else { b.abs() })
        .collect();
    let kmax = prob.degree;
    let mut tk = vec![0.0; kmax + 1];
    // (coefficients, |h|, extrema, max error) of the best iterate.
    type Iterate = (Vec<f64>, f64, Vec<(f64, f64)>, f64);
    let mut best: Option<Iterate> = None;
    let mut iterations = 0;
    let mut converged = false;
    let mut roundoff_limited = false;
    let mut fscale = 0.0f64;
    for iter in 0..opts.max_iter.max(1) {
        iterations = iter + 1;
        // Levelled system.
        let mut a = vec![0.0; r * r];
        let mut rhs = vec![0.0; r];
        for (i, &x) in reference.iter().enumerate() {
            let t = prob.t(x);
            tk[0] = 1.0;
            if kmax >= 1 {
                tk[1] = t;
            }
            for k in 2..=kmax {
                tk[k] = 2.0 * t * tk[k - 1] - tk[k - 2];
            }
            for (j, &k) in prob.ks.iter().enumerate() {
                a[i * r + j] = tk[k];
            }
            let sgn = if i % 2 == 0 { 1.0 } else { -1.0 };
            a[i * r + n] = sgn / prob.wval(x)?;
            rhs[i] = prob.fval(x)?;
            fscale = fscale.max(rhs[i].abs());
        }
        let sol = crate::linalg::solve(&a, &rhs, r, "Remez levelled system")?;
        let h = sol[n];
        let coeffs = prob.full_coeffs(&sol[..n]);
        let err = |x: f64| -> f64 { prob.w.at(x) * (clenshaw(&coeffs, prob.t(x)) - (prob.f)(x)) };
        // Sample.
        let kgap = opts.samples_per_gap.max(2);
        let mut samples: Vec<(f64, f64, usize)> = Vec::with_capacity((r + 4) * kgap);
        for (ii, &(a0, b0)) in prob.set.iter().enumerate() {
            let mut knots: Vec<f64> = vec![a0, b0];
            knots.extend(reference.iter().copied().filter(|&x| x > a0 && x < b0));
            knots.extend(breakpoints.iter().copied().filter(|&x| x > a0 && x < b0));
            knots.sort_by(f64::total_cmp);
            knots.dedup();
            for w in knots.windows(2) {
                for j in 0..kgap {
                    let x = w[0] + (w[1] - w[0]) * j as f64 / kgap as f64;
                    samples.push((x, err(x), ii));
                }
            }
            samples.push((b0, err(b0), ii));
        }
        if samples.iter().any(|s| !s.1.is_finite()) {
            return Err(ApproxError::RemezFailed {
                degree: prob.degree,
                reason: "error function is not finite on the set".into(),
            });
        }
        // Runs of one sign; extremum of each, refined.
        let mut ext: Vec<(f64, f64)> = Vec::new();
        let mut i = 0;
        while i < samples.len() {
            if samples[i].1 == 0.0 {
                i += 1;
                continue;
            }
            let sg = samples[i].1.signum();
            let mut j = i;
            let mut arg = i;
            while j < samples.len() && (samples[j].1 == 0.0 || samples[j].1.signum() == sg) {
                if samples[j].1.abs() > samples[arg].1.abs() {
                    arg = j;
                }
                j += 1;
            }
            let (x0, e0, iv) = samples[arg];
            let lo = if arg > 0 && samples[arg - 1].2 == iv {
                samples[arg - 1].0
            } else {
                x0
            };
            let hi = if arg + 1 < samples.len() && samples[arg + 1].2 == iv {
                samples[arg + 1].0
            } else {
                x0
            };
            let (xb, eb) = if hi > lo {
                let g = |x: f64| sg * err(x);
                let (xb, gb) = brent_max(&g, lo, hi, x0, sg * e0);
                if gb >= sg * e0 {
                    (xb, sg * gb)
                } else {
                    (x0, e0)
                }
            } else {
                (x0, e0)
            };
            ext.push((xb, eb));
            i = j;
        }
        let emax = ext.iter().fold(0.0f64, |m, e| m.max(e.1.abs()));
        // Exact (or roundoff-level) fit: nothing to level.
        let csum: f64 = coeffs.iter().map(|c| c.abs()).sum();
        let floor = (ROUNDOFF_FLOOR * fscale).max(256.0 * f64::EPSILON * csum);
        if emax <= floor.max(f64::MIN_POSITIVE) {
            best = Some((coeffs, h.abs(), ext.clone(), emax));
            converged = true;
            roundoff_limited = true;
            reference = ext.iter().map(|e| e.0).collect();
            break;
        }
        if emax <= opts.stop_below {
            // Good enough for the caller: `emax` is an achieved error of this polynomial.
            best = Some((coeffs, h.abs(), ext.clone(), emax));
            converged = true;
            reference = ext.iter().map(|e| e.0).collect();
            break;
        }
        if ext.len() < r {
            return Err(ApproxError::RemezFailed {
                degree: prob.degree,
                reason: format!(
                    "found only {} alternating extrema, need {r} (iteration {iterations})",
                    ext.len()
                ),
            });
        }
        // Reduce to r alternating points keeping the global maximum.
        while ext.len() > r {
            let (imin, _) = ext
                .iter()
                .enumerate()
                .fold((0, f64::INFINITY), |acc, (i, e)| {
                    if e.1.abs() < acc.1 {
                        (i, e.1.abs())
                    } else {
                        acc
                    }
                });
            let last = ext.len() - 1;
            if imin == 0 || imin == last {
                ext.remove(imin);
            } else if ext.len() - r >= 2 {
                // Remove imin; its neighbours now share a sign: keep the larger.
                ext.remove(imin);
                let (p, q) = (imin - 1, imin);
                if ext[p].1.abs() >= ext[q].1.abs() {
                    ext.remove(q);
                } else {
                    ext.remove(p);
                }
            } else if ext[0].1.abs() <= ext[last].1.abs() {
                ext.remove(0);
            } else {
                ext.remove(last);
            }
        }
        let emin = ext.iter().fold(f64::INFINITY, |m, e| m.min(e.1.abs()));
        let gap = (emax - emin) / emax;
        let better = best.as_ref().is_none_or(|b| emax < b.3);
        if better {
            best = Some((coeffs, h.abs(), ext.clone(), emax));
        }
        reference = ext.iter().map(|e| e.0).collect();
        if gap <= opts.tol {
            converged = true;
            break;
        }
        // Guard against coincident reference points.
        reference.dedup();
        if reference.len() < r {
            return Err(ApproxError::RemezFailed {
                degree: prob.degree,
                reason: "reference points collapsed".into(),
            });
        }
    }
    let (coeffs, levelled, ext, emax) = best.expect("at least one iteration");
    if !converged {
        let emin = ext.iter().fold(f64::INFINITY, |m, e| m.min(e.1.abs()));
        if (emax - emin) / emax > 0.01 {
            return Err(ApproxError::RemezFailed {
                degree: prob.degree,
                reason: format!(
                    "no convergence in {iterations} iterations (extrema between {emin:.3e} and {emax:.3e})"
                ),
            });
        }
    }
    // Extrema on the whole original set.
    let in_original = |x: f64| original.iter().any(|&(a, b)| x >= a && x <= b);
    let mut extrema: Vec<(f64, f64)> = Vec::new();
    for &(x, e) in &ext {
        match parity {
            Parity::None => extrema.push((x, e)),
            Parity::Even | Parity::Odd => {
                if in_original(x) {
                    extrema.push((x, e));
                }
                if x > 0.0 && in_original(-x) {
                    extrema.push((-x, if parity == Parity::Odd { -e } else { e }));
                }
            }
        }
    }
    extrema.sort_by(|a, b| a.0.total_cmp(&b.0));
    let series = ChebSeries::new(prob.lo, prob.hi, coeffs)?;
    Ok(Minimax {
        series,
        error: emax,
        levelled,
        extrema,
        reference,
        iterations,
        converged,
        roundoff_limited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_polynomial_is_reproduced() {
        let m = minimax(
            &|x| x * x - 0.5,
            &[(-1.0, 2.0)],
            3,
            Weight::Uniform,
            Parity::None,
        )
        .unwrap();
        assert!(m.error < 1e-13, "{}", m.error);
        assert!((m.series.eval(1.5) - 1.75).abs() < 1e-12);
    }

    #[test]
    fn abs_degree_2_is_classic() {
        // Best quadratic for |x| on [-1,1] is x² + 1/8, error 1/8.
        let m = minimax(&f64::abs, &[(-1.0, 1.0)], 2, Weight::Uniform, Parity::Even).unwrap();
        assert!((m.error - 0.125).abs() < 1e-9, "{}", m.error);
        assert!((m.series.eval(0.5) - 0.375).abs() < 1e-9);
    }

    #[test]
    fn intervals_are_validated() {
        assert!(minimax(&f64::abs, &[(1.0, 1.0)], 2, Weight::Uniform, Parity::None).is_err());
        assert!(minimax(&f64::abs, &[], 2, Weight::Uniform, Parity::None).is_err());
        assert!(minimax(&f64::abs, &[(-1.0, 1.0)], 0, Weight::Uniform, Parity::Odd).is_err());
        let w = Weight::Sides {
            negative: 2.0,
            positive: 1.0,
        };
        assert!(minimax(&f64::abs, &[(-1.0, 1.0)], 4, w, Parity::Even).is_err());
    }
}
