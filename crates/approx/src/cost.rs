//! Cost of evaluating Chebyshev series under CKKS: multiplicative depth and the number of
//! ciphertext-ciphertext multiplications of a baby-step/giant-step (Paterson–Stockmeyer) evaluation.
//!
//! # The evaluation whose cost is counted
//!
//! For a degree-`d` series `p(t) = Σ c_k T_k(t)` (the affine map `x → t` is folded into the
//! producer of `x`), let `m = ⌈log2(d+1)⌉` and pick a baby-step exponent `l ∈ 1..=m`:
//!
//! 1. **Baby steps**: every `T_k` with `2 ≤ k < min(2^l, d+1)` of the parity the series needs
//!    (odd `k` for an odd series, even `k` for an even one, all `k` otherwise);
//! 2. **Powers of two**: `T_{2^j}` for every `2^j` used as a giant step or as a helper of a baby step
//!    (`j ≥ 1`);
//! 3. each `T_k` above costs exactly one ct×ct product: `T_{2^j} = 2T_{2^{j−1}}² − 1` and
//!    `T_k = 2 T_{2^i} T_{k−2^i} − T_{2^{i+1}−k}` with `2^i` the largest power of two below `k`
//!    (the integer 2 and the subtraction are free);
//! 4. **Giant steps**: recursive division `p = q · T_{2^j} + r` with `2^j` the largest power of two
//!    ≤ deg p, until the pieces have degree `< 2^l`; each division whose quotient is not constant
//!    costs one ct×ct product; the leaves `Σ c_k T_k` cost only scalar products.
//!
//! The count reported is the minimum over `l` of (number of `T_k` computed) + (number of
//! divisions with a non-constant quotient). For `d = 2^m − 1` and no parity this is
//! `2^l + 2^{m−l} + m − l − 3` (Lattigo's estimate); for the odd degree-15 sign stages it is 7.
//! Every `T_k` with `k ≤ 2^i` sits at depth `⌈log2 k⌉`, so with the scalars merged into the
//! products (the planner's job) the depth is `m = ⌈log2(d+1)⌉`. A constant or `T_1` term never
//! costs a product, which is why "odd + constant" counts as odd and "even + linear" as even.
//!
//! Scalar (plaintext) multiplications are not counted; they consume a level only where they are
//! not merged into a neighbouring product.

use crate::cheb::{ChebSeries, SeriesParity};
use serde::Serialize;
use std::collections::BTreeSet;

/// `⌈log2(d+1)⌉`: the multiplicative depth of a degree-`d` polynomial (0 for a constant).
pub fn poly_depth(d: usize) -> u32 {
    if d == 0 {
        0
    } else {
        usize::BITS - d.leading_zeros()
    }
}

/// The BSGS plan behind a ct-mult count: the chosen baby-step exponent `l` and the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BsgsPlan {
    pub degree: usize,
    pub parity: SeriesParity,
    pub baby_log: u32,
    pub ct_mults: u32,
}

fn count_for(d: usize, l: u32, parity: SeriesParity) -> u32 {
    let baby_lim = 1usize << l; // leaves have degree < baby_lim
    let mut needed: BTreeSet<usize> = BTreeSet::new();
    let mut divisions = 0u32;
    // Recursive division.
    let mut stack = vec![d];
    let mut max_leaf = 0usize;
    while let Some(deg) = stack.pop() {
        if deg < baby_lim {
            max_leaf = max_leaf.max(deg);
            continue;
        }
        let j = usize::BITS - 1 - deg.leading_zeros(); // 2^j ≤ deg
        let g = 1usize << j;
        needed.insert(g);
        let q = deg - g;
        if q >= 1 {
            divisions += 1;
        }
        stack.push(q);
        stack.push(g - 1);
    }
    // Baby steps of the leaves' parity.
    for k in 2..=max_leaf {
        let ok = match parity {
            SeriesParity::Odd => k % 2 == 1,
            SeriesParity::Even => k % 2 == 0,
            SeriesParity::General => true,
        };
        if ok {
            needed.insert(k);
        }
    }
    // Helpers: each T_k needs T_{2^i} for 2^i < k (largest power of two below k), recursively.
    let mut helpers: Vec<usize> = needed.iter().copied().collect();
    while let Some(k) = helpers.pop() {
        if k <= 2 {
            continue;
        }
        let i = usize::BITS - 1 - (k - 1).leading_zeros(); // 2^i < k ≤ 2^{i+1}
        let p = 1usize << i;
        if p >= 2 && needed.insert(p) {
            helpers.push(p);
        }
        let rest = k - p;
        if rest >= 2 && needed.insert(rest) {
            helpers.push(rest);
        }
        let back = 2 * p - k;
        if back >= 2 && needed.insert(back) {
            helpers.push(back);
        }
    }
    needed.retain(|&k| k >= 2);
    needed.len() as u32 + divisions
}

/// Ct×ct multiplications of the BSGS evaluation described in the module doc, minimised over the
/// baby-step exponent.
pub fn bsgs_plan(d: usize, parity: SeriesParity) -> BsgsPlan {
    let m = poly_depth(d);
    let mut best = BsgsPlan {
        degree: d,
        parity,
        baby_log: m.max(1),
        ct_mults: if d <= 1 { 0 } else { u32::MAX },
    };
    if d <= 1 {
        return best;
    }
    for l in 1..=m {
        let c = count_for(d, l, parity);
        if c < best.ct_mults {
            best.ct_mults = c;
            best.baby_log = l;
        }
    }
    best
}

/// [`bsgs_plan`]'s count for a series (its effective degree and parity).
pub fn series_ct_mults(s: &ChebSeries) -> u32 {
    bsgs_plan(s.effective_degree(), s.parity()).ct_mults
}

/// Total cost of a result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// Degree of each stage, in composition order.
    pub degrees: Vec<usize>,
    /// Multiplicative depth: `Σ ⌈log2(d_i+1)⌉` plus the combine step's products.
    pub depth: u32,
    /// Ciphertext-ciphertext multiplications, stages plus combine.
    pub ct_mults: u32,
    /// Per-stage counts, in composition order.
    pub stage_ct_mults: Vec<u32>,
}

impl Cost {
    /// Cost of the stages composed, plus `extra_depth`/`extra_mults` for the combine step
    /// (each stage evaluated `evaluations` times, e.g. 2 for a clip).
    pub fn of_stages(
        stages: &[ChebSeries],
        evaluations: u32,
        extra_depth: u32,
        extra_mults: u32,
    ) -> Cost {
        let degrees: Vec<usize> = stages.iter().map(|s| s.degree()).collect();
        let stage_ct_mults: Vec<u32> = stages.iter().map(series_ct_mults).collect();
        let depth = stages
            .iter()
            .map(|s| poly_depth(s.effective_degree()))
            .sum::<u32>()
            + extra_depth;
        let ct_mults = stage_ct_mults.iter().sum::<u32>() * evaluations + extra_mults;
        Cost {
            degrees,
            depth,
            ct_mults,
            stage_ct_mults,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_formula() {
        assert_eq!(poly_depth(0), 0);
        assert_eq!(poly_depth(1), 1);
        assert_eq!(poly_depth(3), 2);
        assert_eq!(poly_depth(7), 3);
        assert_eq!(poly_depth(8), 4);
        assert_eq!(poly_depth(15), 4);
        assert_eq!(poly_depth(27), 5);
        assert_eq!(poly_depth(119), 7);
    }

    #[test]
    fn counts_match_closed_forms_and_hand_counts() {
        // General d = 2^m − 1: 2^l + 2^{m−l} + m − l − 3 minimised over l.
        for m in 2..=9u32 {
            let d = (1usize << m) - 1;
            let closed = (1..=m)
                .map(|l| (1u32 << l) + (1u32 << (m - l)) + m - l - 3)
                .min()
                .unwrap();
            assert_eq!(
                bsgs_plan(d, SeriesParity::General).ct_mults,
                closed,
                "m={m}"
            );
        }
        // Odd cubic: T2, T3 (or T2 and one division) → 2.
        assert_eq!(bsgs_plan(3, SeriesParity::Odd).ct_mults, 2);
        // Odd degree 15: T2, T3, T4, T8 + 3 divisions = 7 (or T2..T7 odd + T8 + 1 division).
        assert_eq!(bsgs_plan(15, SeriesParity::Odd).ct_mults, 7);
        // Even degree 2: T2 only.
        assert_eq!(bsgs_plan(2, SeriesParity::Even).ct_mults, 1);
        assert_eq!(bsgs_plan(1, SeriesParity::General).ct_mults, 0);
        // Monotone in degree within a parity class, and parity never costs more.
        let mut prev = 0;
        for d in (1..200).step_by(2) {
            let o = bsgs_plan(d, SeriesParity::Odd).ct_mults;
            assert!(o >= prev);
            assert!(o <= bsgs_plan(d, SeriesParity::General).ct_mults);
            prev = o;
        }
    }
}
