//! Newton refinement of an approximate reciprocal or inverse square root.
//!
//! Given `y ≈ x^p` from a polynomial, a Newton step squares the relative error `e` (up to a
//! constant) at a fixed cost in levels and ct×ct multiplications:
//!
//! | function | step | levels | ct×ct |
//! |---|---|---|---|
//! | `reciprocal` (`p = −1`) | `y ← y·(2 − x·y)` | 2 | 2 |
//! | `invsqrt` (`p = −1/2`) | `y ← y·(3 − x·y²)/2` | 3 | 3 |
//!
//! (`x` is fresh, so `x·y` sits one level below `y`; the final product adds one more.) A
//! minimax polynomial of twice the degree costs *one* more level and reaches about the same
//! relative error (`ρ^{-2d}` against `(ρ^{-d})²`), so a step is worth it only when ct×ct
//! multiplications matter more than levels, or when the degree would exceed what the planner
//! handles well: [`refine`] measures both sides so the caller can choose.

use crate::approx::Approximation;
use crate::functions::Function;
use crate::ApproxError;
use serde::Serialize;

/// An approximation followed by Newton steps, with its cost and measured error.
#[derive(Clone, Debug, Serialize)]
pub struct Refined {
    pub steps: u32,
    /// Levels of the polynomial plus the steps'.
    pub depth: u32,
    /// ct×ct multiplications of the polynomial plus the steps'.
    pub ct_mults: u32,
    /// Measured max |y − f| and max |y − f|/|f| on the domain.
    pub max_error: f64,
    pub max_relative_error: f64,
}

/// Levels and ct×ct multiplications of one Newton step for `x^p`, or an error when `p` has no
/// Newton iteration here.
pub fn step_cost(f: Function) -> Result<(u32, u32), ApproxError> {
    match f {
        Function::Power { p: -1.0 } => Ok((2, 2)),
        Function::Power { p: -0.5 } => Ok((3, 3)),
        _ => Err(ApproxError::Unsupported {
            method: "newton",
            reason: format!(
                "Newton steps refine reciprocal and invsqrt only, not {}",
                f.name()
            ),
        }),
    }
}

/// One Newton step for `x^p` at `x` from the estimate `y`.
pub fn step(f: Function, x: f64, y: f64) -> f64 {
    match f {
        Function::Power { p: -0.5 } => y * (3.0 - x * y * y) / 2.0,
        _ => y * (2.0 - x * y),
    }
}

/// `a` followed by `steps` Newton steps, measured on `points + 1` equally spaced points of
/// its domain.
pub fn refine(a: &Approximation, steps: u32, points: usize) -> Result<Refined, ApproxError> {
    let f = a.target;
    let (levels, mults) = step_cost(f)?;
    let [lo, hi] = a.domain;
    let n = points.max(2);
    let (mut abs, mut rel) = (0.0f64, 0.0f64);
    for i in 0..=n {
        let x = lo + (hi - lo) * i as f64 / n as f64;
        let mut y = a.eval(x);
        for _ in 0..steps {
            y = step(f, x, y);
        }
        let want = f.eval(x);
        abs = abs.max((y - want).abs());
        rel = rel.max(((y - want) / want).abs());
    }
    Ok(Refined {
        steps,
        depth: a.depth + steps * levels,
        ct_mults: a.ct_mults + steps * mults,
        max_error: abs,
        max_relative_error: rel,
    })
}
