//! Composite minimax sign `s = p_k ∘ … ∘ p_1` (Lee, Lee, Kim, No) and the dynamic program that
//! chooses the degree sequence.
//!
//! # Stages
//! `p_1` is the odd minimax approximation of `sign` on `[-1, -ε] ∪ [ε, 1]` (weight 1). If it has
//! error `e_1`, the image of `[ε, 1]` is `[1 − e_1, 1 + e_1]`, so `p_2` is the odd minimax of `sign`
//! on `±[1 − e_1, 1 + e_1]`, represented as a Chebyshev series on `[-(1 + e_1), 1 + e_1]`, and so
//! on. After scaling by `1/(1 + e)` every stage is "sign on `[τ, 1]`" with
//! `τ = (1 − e)/(1 + e)`, so one number, `τ`, describes the state between stages. `E(d, τ)`, the
//! minimax error of degree `d` on `[τ, 1]`, decreases in `τ`; the next state is
//! `τ' = (1 − E)/(1 + E)`.
//!
//! # Two precision targets
//! * [`SignTarget::Sign`] — the literal sign specification: `|s(x) − sign(x)| ≤ 2^-α` on
//!   `[-1, -2^-α] ∪ [2^-α, 1]`. Then `ReLU(x) ≈ x(1 + s(x))/2` has error ≤ `2^-α` on all of
//!   `[-1, 1]` (`≤ |x|·|1 − s|/2 ≤ 2^-α/2` outside the gap, `≤ |x| ≤ 2^-α` inside since `s` stays
//!   in `[0, 1 + e]` on `(0, ε)`).
//! * [`SignTarget::Relu`] — what the published degree table (Lee et al. 2021, design notes §1)
//!   actually meets: `max_{x∈[-1,1]} |x(1 + s(x))/2 − ReLU(x)| ≤ 2^-α` with the gap `ε` free.
//!   The stage error then only needs `e_k ≤ 2^{1−α}` and `ε` is chosen as large as the gap error
//!   `max_{0<x<ε} x(1 − s(x))/2 ≤ 2^-α` allows (≈ 2^{-α+3.5}). The literal target cannot reach
//!   the published depths: `s'(0)` is bounded by the product of the degrees (Bernstein), and for
//!   example `{15, 15}` needs `ε ≥ 2^-5.1` to reach sign error `2^-9`, not `2^-9`.
//!
//! # Dynamic program
//! Costs are pairs `(depth, ct_mults)` compared lexicographically; both add along a sequence, so
//! a state (cost, τ) is dominated by any state with a lexicographically smaller or equal cost and a
//! larger or equal `τ`. The search is Dijkstra's algorithm on that order: states are popped by
//! increasing cost, a popped state is expanded only if its `τ` beats every `τ` popped before, and
//! the first goal popped is optimal. `E(d, τ)` is memoised on a grid of `logit(τ)` with step 1/32,
//! rounding `τ` *down* (a smaller `τ` only makes the error larger), so the plan is conservative;
//! the final stages are then refitted at the exact `τ` and their errors measured.

use crate::cheb::ChebSeries;
use crate::cost::{bsgs_plan, poly_depth};
use crate::remez::{minimax_with, Parity, RemezOptions, Weight};
use crate::{ApproxError, SeriesParity};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Smallest and largest supported α.
pub const ALPHA_MIN: u32 = 2;
pub const ALPHA_MAX: u32 = 20;

/// Which precision statement the composite must meet (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignTarget {
    /// `|s − sign| ≤ 2^-α` on `[-1, -2^-α] ∪ [2^-α, 1]`.
    Sign,
    /// `|x(1 + s)/2 − ReLU(x)| ≤ 2^-α` on `[-1, 1]`, gap free.
    Relu,
}

/// Options of the degree-sequence search.
#[derive(Clone, Debug)]
pub struct CompositeOptions {
    /// Candidate stage degrees (odd, ≥ 3).
    pub degrees: Vec<usize>,
    /// Give up beyond this total depth.
    pub max_depth: u32,
}

impl Default for CompositeOptions {
    fn default() -> Self {
        CompositeOptions {
            degrees: (3..=63).step_by(2).collect(),
            max_depth: 64,
        }
    }
}

/// A composite sign approximation on `[-1, 1]`.
#[derive(Clone, Debug, Serialize)]
pub struct Composite {
    pub alpha: u32,
    pub target: SignTarget,
    /// Gap: the sign is approximated on `[-1, -eps] ∪ [eps, 1]`.
    pub eps: f64,
    /// Stages in composition order (`stages[0]` is applied first), each on its own interval.
    pub stages: Vec<ChebSeries>,
    /// Minimax error of each stage on its target intervals.
    pub stage_errors: Vec<f64>,
    pub degrees: Vec<usize>,
    /// `Σ ⌈log2(d_i + 1)⌉` (the sign alone).
    pub depth: u32,
    /// Ct×ct multiplications of the stages (the sign alone).
    pub ct_mults: u32,
}

impl Composite {
    /// `s(x) = p_k(…p_1(x))`.
    pub fn eval(&self, x: f64) -> f64 {
        self.stages.iter().fold(x, |v, p| p.eval(v))
    }
}

fn stage_cost(d: usize) -> (u32, u32) {
    (poly_depth(d), bsgs_plan(d, SeriesParity::Odd).ct_mults)
}

const GRID: f64 = 32.0;

fn logit(t: f64) -> f64 {
    (t / (1.0 - t)).ln()
}

fn grid_index(tau: f64) -> i64 {
    (logit(tau) * GRID).floor() as i64
}

fn grid_tau(g: i64) -> f64 {
    let z = g as f64 / GRID;
    1.0 / (1.0 + (-z).exp())
}

/// Sign on `[τ, 1]`, odd, degree `d`: (series on [-1,1], error).
fn sign_stage(
    d: usize,
    tau: f64,
    tol: f64,
    stop_below: f64,
) -> Result<(ChebSeries, f64), ApproxError> {
    let opts = RemezOptions {
        tol,
        stop_below,
        ..RemezOptions::default()
    };
    let m = minimax_with(
        &|_x| 1.0,
        &[(tau, 1.0)],
        d,
        Weight::Uniform,
        Parity::Odd,
        &opts,
    )?;
    Ok((m.series, m.error))
}

/// Memo of `E(d, τ)` on the logit grid.
pub(crate) struct ErrorMemo {
    map: HashMap<(usize, i64), f64>,
    pub solves: usize,
    /// Errors below this only need to be known as "small" (a fraction of the target).
    stop_below: f64,
}

impl ErrorMemo {
    pub fn new(target: f64) -> Self {
        ErrorMemo {
            map: HashMap::new(),
            solves: 0,
            stop_below: target * 1e-2,
        }
    }
    /// Conservative `E(d, τ)`: evaluated at the grid point just below `τ`.
    fn error(&mut self, d: usize, tau: f64) -> Result<f64, ApproxError> {
        let g = grid_index(tau);
        if let Some(&e) = self.map.get(&(d, g)) {
            return Ok(e);
        }
        // Near τ = 1 a high degree fits to below f64 resolution and the levelled system becomes
        // ill-conditioned; E is decreasing in τ, so the error at the nearest smaller grid point
        // where the exchange succeeds is a valid (conservative) value.
        let mut gg = g;
        let e = loop {
            let tg = grid_tau(gg);
            self.solves += 1;
            // Tolerance 1e-3 is enough: the value used is the achieved error of the fitted
            // polynomial, an upper bound of the minimax error, so the plan stays conservative.
            match sign_stage(d, tg, 1e-3, self.stop_below) {
                Ok((_, e)) => break e,
                Err(ApproxError::RemezFailed { .. } | ApproxError::Singular { .. })
                    if g - gg < 256 =>
                {
                    gg -= 8;
                }
                Err(e) => return Err(e),
            }
        };
        self.map.insert((d, g), e);
        Ok(e)
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    depth: u32,
    mults: u32,
    /// Larger τ first among equal costs.
    tau_rank: Reverse<i64>,
    id: usize,
}

/// Lexicographically cheapest odd degree sequence taking `[τ0, 1]` to stage error ≤ `target`.
/// Returns the degrees.
pub(crate) fn search_sequence(
    tau0: f64,
    target: f64,
    opts: &CompositeOptions,
    memo: &mut ErrorMemo,
) -> Result<Option<Vec<usize>>, ApproxError> {
    // Nodes: (tau, parent, degree, goal).
    let mut nodes: Vec<(f64, usize, usize, bool)> = vec![(tau0, usize::MAX, 0, false)];
    let mut heap = BinaryHeap::new();
    heap.push(Reverse(Key {
        depth: 0,
        mults: 0,
        tau_rank: Reverse(grid_index(tau0)),
        id: 0,
    }));
    // Within one (depth, mults) class only the highest degree matters (same cost, smaller error).
    let mut degrees: Vec<usize> = Vec::new();
    for &d in &opts.degrees {
        let c = stage_cost(d);
        if !opts.degrees.iter().any(|&e| e > d && stage_cost(e) == c) && !degrees.contains(&d) {
            degrees.push(d);
        }
    }
    let mut best_tau = f64::NEG_INFINITY;
    while let Some(Reverse(k)) = heap.pop() {
        let (tau, _, _, goal) = nodes[k.id];
        if goal {
            let mut seq = Vec::new();
            let mut id = k.id;
            while nodes[id].1 != usize::MAX {
                seq.push(nodes[id].2);
                id = nodes[id].1;
            }
            seq.reverse();
            return Ok(Some(seq));
        }
        if tau <= best_tau {
            continue;
        }
        best_tau = tau;
        for &d in &degrees {
            let (dd, dm) = stage_cost(d);
            let depth = k.depth + dd;
            if depth > opts.max_depth {
                continue;
            }
            let e = memo.error(d, tau)?;
            let mults = k.mults + dm;
            if e <= target {
                nodes.push((tau, k.id, d, true));
                heap.push(Reverse(Key {
                    depth,
                    mults,
                    tau_rank: Reverse(i64::MAX),
                    id: nodes.len() - 1,
                }));
            } else if e < 1.0 {
                let t2 = (1.0 - e) / (1.0 + e);
                if grid_index(t2) > grid_index(tau) {
                    nodes.push((t2, k.id, d, false));
                    heap.push(Reverse(Key {
                        depth,
                        mults,
                        tau_rank: Reverse(grid_index(t2)),
                        id: nodes.len() - 1,
                    }));
                }
            }
        }
    }
    Ok(None)
}

/// Builds the stages of a given degree sequence for gap `eps` exactly (no grid).
pub fn composite_with_degrees(
    eps: f64,
    degrees: &[usize],
) -> Result<(Vec<ChebSeries>, Vec<f64>), ApproxError> {
    if !(eps > 0.0 && eps < 1.0) {
        return Err(ApproxError::InvalidInput(format!(
            "sign gap must lie in (0, 1), got {eps}"
        )));
    }
    if degrees.is_empty() {
        return Err(ApproxError::InvalidInput("empty degree sequence".into()));
    }
    let mut tau = eps;
    let mut r = 1.0;
    let mut stages = Vec::with_capacity(degrees.len());
    let mut errors = Vec::with_capacity(degrees.len());
    for &d in degrees {
        if d % 2 == 0 || d > 255 {
            return Err(ApproxError::InvalidInput(format!(
                "composite stage degrees must be odd and ≤ 255, got {d}"
            )));
        }
        // If the exchange fails because the fit is below f64 resolution (τ near 1), fit the
        // slightly larger set [τ(1 − 10^-3 k), 1] instead, which is conservative.
        let mut k = 0;
        let (s, e) = loop {
            match sign_stage(d, tau * (1.0 - 1e-3 * k as f64), 1e-9, 0.0) {
                Ok(v) => break v,
                Err(ApproxError::RemezFailed { .. } | ApproxError::Singular { .. }) if k < 200 => {
                    k += 10
                }
                Err(e) => return Err(e),
            }
        };
        // The stage acts on [-r, r] (the previous stage's output range): same coefficients.
        let s = ChebSeries::new(-r, r, s.coeffs)?;
        stages.push(s);
        errors.push(e);
        r = 1.0 + e;
        tau = ((1.0 - e) / (1.0 + e)).max(f64::MIN_POSITIVE);
    }
    Ok((stages, errors))
}

fn check_alpha(alpha: u32) -> Result<(), ApproxError> {
    if !(ALPHA_MIN..=ALPHA_MAX).contains(&alpha) {
        return Err(ApproxError::AlphaOutOfRange {
            alpha,
            min: ALPHA_MIN,
            max: ALPHA_MAX,
        });
    }
    Ok(())
}

fn finish(
    alpha: u32,
    target: SignTarget,
    eps: f64,
    degrees: Vec<usize>,
) -> Result<Composite, ApproxError> {
    let (stages, stage_errors) = composite_with_degrees(eps, &degrees)?;
    let depth = degrees.iter().map(|&d| stage_cost(d).0).sum();
    let ct_mults = degrees.iter().map(|&d| stage_cost(d).1).sum();
    Ok(Composite {
        alpha,
        target,
        eps,
        stages,
        stage_errors,
        degrees,
        depth,
        ct_mults,
    })
}

/// Largest error of `x(1 − s(x))/2` on `(0, ε]`, sampled (the ReLU error inside the gap).
fn gap_error(stages: &[ChebSeries], eps: f64) -> f64 {
    let n = 8192;
    (1..=n)
        .map(|i| {
            let x = eps * i as f64 / n as f64;
            let s = stages.iter().fold(x, |v, p| p.eval(v));
            x * (1.0 - s).abs() / 2.0
        })
        .fold(0.0, f64::max)
}

/// Composite sign for precision `2^-α` under `target`, degrees chosen by the dynamic program
/// (minimum depth, then minimum ct-mults).
pub fn composite_sign(
    alpha: u32,
    target: SignTarget,
    opts: &CompositeOptions,
) -> Result<Composite, ApproxError> {
    check_alpha(alpha)?;
    if opts
        .degrees
        .iter()
        .any(|&d| d % 2 == 0 || !(3..=255).contains(&d))
        || opts.degrees.is_empty()
    {
        return Err(ApproxError::InvalidInput(
            "candidate stage degrees must be odd, within 3..=255".into(),
        ));
    }
    let p = 2f64.powi(-(alpha as i32));
    let mut memo = ErrorMemo::new(match target {
        SignTarget::Sign => p,
        SignTarget::Relu => 2.0 * p,
    });
    match target {
        SignTarget::Sign => {
            let seq = search_sequence(p, p, opts, &mut memo)?.ok_or(ApproxError::InvalidInput(
                format!(
                    "no degree sequence reaches sign precision 2^-{alpha} within depth {}",
                    opts.max_depth
                ),
            ))?;
            finish(alpha, target, p, seq)
        }
        SignTarget::Relu => {
            // Scan the gap from large (cheap) to small. At each gap the search gives the cheapest
            // sequence meeting the stage target 2^(1-α); each new sequence is then placed at the
            // smallest gap where it meets that target exactly (which minimises its gap error) and
            // accepted if the ReLU error inside the gap is ≤ 2^-α. Sequences appear in order of
            // non-decreasing cost, so the first accepted one is the cheapest found.
            // A 0.1% margin on both parts keeps the measured error strictly below 2^-α.
            let stage_target = 2.0 * p * 0.999;
            let gap_target = p * 0.999;
            let mut log_eps = -(alpha as f64) + 4.0;
            let mut tried: Vec<Vec<usize>> = Vec::new();
            while log_eps > -(alpha as f64) - 0.01 {
                let eps = log_eps.exp2().min(0.5);
                if let Some(seq) = search_sequence(eps, stage_target, opts, &mut memo)? {
                    if !tried.contains(&seq) {
                        tried.push(seq.clone());
                        if let Some(e) = place_gap(&seq, eps, stage_target, gap_target)? {
                            return finish(alpha, target, e, seq);
                        }
                    }
                }
                log_eps -= 1.0 / 16.0;
            }
            // ε = 2^-α always satisfies the gap condition (x|1−s|/2 ≤ x ≤ 2^-α when s ∈ [-1, 3]).
            let seq = search_sequence(p, stage_target, opts, &mut memo)?.ok_or(
                ApproxError::InvalidInput(format!(
                    "no degree sequence reaches ReLU precision 2^-{alpha} within depth {}",
                    opts.max_depth
                )),
            )?;
            finish(alpha, target, p, seq)
        }
    }
}

/// The smallest gap (to 2^-0.001) at most `eps_hi` at which `seq` meets `stage_target`, if the
/// ReLU error inside that gap is at most `gap_target`.
fn place_gap(
    seq: &[usize],
    eps_hi: f64,
    stage_target: f64,
    gap_target: f64,
) -> Result<Option<f64>, ApproxError> {
    let last_err = |e: f64| -> Result<f64, ApproxError> {
        Ok(*composite_with_degrees(e, seq)?.1.last().expect("non-empty"))
    };
    let mut hi = eps_hi.log2();
    if last_err(hi.exp2())? > stage_target {
        return Ok(None);
    }
    let mut lo = hi - 4.0;
    if last_err(lo.exp2())? <= stage_target {
        hi = lo;
    } else {
        while hi - lo > 1e-3 {
            let mid = 0.5 * (lo + hi);
            if last_err(mid.exp2())? <= stage_target {
                hi = mid;
            } else {
                lo = mid;
            }
        }
    }
    let eps = hi.exp2();
    let (stages, _) = composite_with_degrees(eps, seq)?;
    Ok((gap_error(&stages, eps) <= gap_target).then_some(eps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_rounds_down() {
        for &t in &[1e-5, 0.01, 0.3, 0.77, 0.999] {
            let g = grid_index(t);
            assert!(grid_tau(g) <= t && grid_tau(g + 1) > t);
        }
    }

    #[test]
    fn alpha_is_checked() {
        assert!(composite_sign(1, SignTarget::Sign, &CompositeOptions::default()).is_err());
        assert!(composite_sign(99, SignTarget::Relu, &CompositeOptions::default()).is_err());
    }
}
