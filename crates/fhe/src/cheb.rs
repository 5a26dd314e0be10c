//! Small Chebyshev helpers: Clenshaw evaluation, interpolation at Chebyshev
//! nodes, and the affine map between an interval and [-1, 1].
//!
//! These exist so that the planner and its tests do not depend on
//! `pannc-approx`; they are reference implementations, not approximation
//! algorithms (no Remez here).

use serde::{Deserialize, Serialize};

use crate::error::{FheError, Result};

/// A closed interval `[lo, hi]` with `lo < hi`, both finite.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// `[-1, 1]`.
    pub const UNIT: Interval = Interval { lo: -1.0, hi: 1.0 };

    /// Checked constructor.
    pub fn new(lo: f64, hi: f64) -> Result<Self> {
        let iv = Interval { lo, hi };
        iv.validate()?;
        Ok(iv)
    }

    /// Errors unless `lo < hi` and both are finite.
    pub fn validate(&self) -> Result<()> {
        if !(self.lo.is_finite() && self.hi.is_finite() && self.lo < self.hi) {
            return Err(FheError::Plan(format!(
                "interval [{}, {}] must be finite with lo < hi",
                self.lo, self.hi
            )));
        }
        Ok(())
    }

    /// The affine map onto [-1, 1]: `u = scale·x + shift` with
    /// `scale = 2/(hi-lo)`, `shift = -(hi+lo)/(hi-lo)`.
    pub fn to_unit(&self) -> Affine {
        let w = self.hi - self.lo;
        Affine {
            scale: 2.0 / w,
            shift: -(self.hi + self.lo) / w,
        }
    }

    /// The inverse map from [-1, 1] back onto the interval: `x = scale·u + shift`.
    pub fn from_unit(&self) -> Affine {
        Affine {
            scale: (self.hi - self.lo) / 2.0,
            shift: (self.hi + self.lo) / 2.0,
        }
    }

    /// True for exactly `[-1, 1]`.
    pub fn is_unit(&self) -> bool {
        self.lo == -1.0 && self.hi == 1.0
    }
}

/// `y = scale·x + shift`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affine {
    pub scale: f64,
    pub shift: f64,
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        scale: 1.0,
        shift: 0.0,
    };

    pub fn apply(&self, x: f64) -> f64 {
        self.scale * x + self.shift
    }

    pub fn is_identity(&self) -> bool {
        self.scale == 1.0 && self.shift == 0.0
    }
}

/// Clenshaw evaluation of `Σ c_k T_k(u)`.
pub fn clenshaw(coeffs: &[f64], u: f64) -> f64 {
    let mut b1 = 0.0;
    let mut b2 = 0.0;
    for &c in coeffs.iter().skip(1).rev() {
        let b0 = 2.0 * u * b1 - b2 + c;
        b2 = b1;
        b1 = b0;
    }
    let c0 = coeffs.first().copied().unwrap_or(0.0);
    u * b1 - b2 + c0
}

/// Evaluate `p(x) = Σ c_k T_k((2x-a-b)/(b-a))` on `interval`.
pub fn clenshaw_on(coeffs: &[f64], interval: Interval, x: f64) -> f64 {
    clenshaw(coeffs, interval.to_unit().apply(x))
}

/// Chebyshev interpolant of degree `degree` of `f` on [-1, 1], at the
/// `degree+1` Chebyshev points of the first kind. Returns `c_0..c_degree`.
///
/// Exact for polynomials of degree ≤ `degree`; for smooth `f` close to the
/// best approximation (within a factor `O(log degree)`); for ReLU it is the
/// same construction OpenFHE's `EvalChebyshevFunction` uses.
pub fn chebyshev_interpolant(f: impl Fn(f64) -> f64, degree: usize) -> Vec<f64> {
    let n = degree + 1;
    let nodes: Vec<f64> = (0..n)
        .map(|j| std::f64::consts::PI * (j as f64 + 0.5) / n as f64)
        .collect();
    let fv: Vec<f64> = nodes.iter().map(|&th| f(th.cos())).collect();
    (0..n)
        .map(|k| {
            let s: f64 = nodes
                .iter()
                .zip(&fv)
                .map(|(&th, &v)| v * (k as f64 * th).cos())
                .sum();
            let c = 2.0 * s / n as f64;
            if k == 0 {
                c / 2.0
            } else {
                c
            }
        })
        .collect()
}

/// `⌈log2(n)⌉` for `n ≥ 1` (0 for n ≤ 1).
pub fn ceil_log2(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

/// The optimal CKKS depth of a degree-`d` polynomial with a non-integer
/// leading coefficient: `⌈log2(d+1)⌉`.
pub fn optimal_depth(degree: usize) -> u32 {
    ceil_log2(degree + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_log2_values() {
        let want = [
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 3),
            (8, 3),
            (9, 4),
            (16, 4),
            (17, 5),
        ];
        for (n, l) in want {
            assert_eq!(ceil_log2(n), l, "n={n}");
        }
        assert_eq!(optimal_depth(15), 4);
        assert_eq!(optimal_depth(27), 5);
        assert_eq!(optimal_depth(16), 5);
    }

    #[test]
    fn clenshaw_matches_cosine_definition() {
        let c = [0.3, -1.2, 0.5, 0.25, -0.125];
        for i in 0..50 {
            let u = -1.0 + 2.0 * i as f64 / 49.0;
            let th = u.acos();
            let want: f64 = c
                .iter()
                .enumerate()
                .map(|(k, ck)| ck * (k as f64 * th).cos())
                .sum();
            assert!((clenshaw(&c, u) - want).abs() < 1e-13);
        }
    }

    #[test]
    fn interpolant_reproduces_polynomials() {
        // 4x^3 - 3x = T_3, plus 0.5
        let c = chebyshev_interpolant(|x| 4.0 * x * x * x - 3.0 * x + 0.5, 5);
        let want = [0.5, 0.0, 0.0, 1.0, 0.0, 0.0];
        for (a, b) in c.iter().zip(want) {
            assert!((a - b).abs() < 1e-13, "{c:?}");
        }
    }

    #[test]
    fn interval_maps_roundtrip() {
        let iv = Interval::new(-3.0, 5.0).unwrap();
        let (t, f) = (iv.to_unit(), iv.from_unit());
        assert_eq!(t.apply(-3.0), -1.0);
        assert_eq!(t.apply(5.0), 1.0);
        assert!((f.apply(t.apply(0.7)) - 0.7).abs() < 1e-15);
        assert!(Interval::new(1.0, 1.0).is_err());
        assert!(Interval::new(f64::NAN, 1.0).is_err());
    }
}
