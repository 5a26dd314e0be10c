//! Chebyshev series on an interval `[a, b]`.
//!
//! A [`ChebSeries`] is `p(x) = Σ_k c_k T_k(t)` with `t = (2x − a − b)/(b − a)`, so the series is
//! well conditioned on `[a, b]` whatever the degree. Evaluation is Clenshaw's recurrence; the
//! arithmetic here (sums, products, multiplication by `x`, composition, derivative) stays in the
//! Chebyshev basis. Conversion to the monomial basis exists only on request
//! ([`ChebSeries::to_monomial`]) and comes with a conditioning estimate and a warning, because
//! monomial coefficients grow like `(1 + √2)^d` and lose all accuracy in f64 past degree ≈ 45.

use crate::ApproxError;
use serde::{Deserialize, Serialize};

/// Highest degree accepted anywhere in this crate (keeps allocations and run time bounded).
pub const MAX_DEGREE: usize = 4096;

/// `p(x) = Σ_k coeffs[k] · T_k((2x − a − b)/(b − a))`, meaningful on `[a, b]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChebSeries {
    pub a: f64,
    pub b: f64,
    pub coeffs: Vec<f64>,
}

/// Parity of a series in its own variable `t` (what a BSGS evaluation can exploit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesParity {
    /// Only odd `T_k` plus possibly `T_0` (a constant costs nothing).
    Odd,
    /// Only even `T_k` plus possibly `T_1` (`t` itself costs nothing).
    Even,
    General,
}

/// The result of [`ChebSeries::to_monomial`].
#[derive(Clone, Debug, Serialize)]
pub struct MonomialForm {
    /// `p(x) = Σ coeffs[k] x^k` in the original variable `x`.
    pub coeffs: Vec<f64>,
    /// `Σ |m_k| r^k / max_{[a,b]} |p|` estimated with `r = max(|a|, |b|)`: how many times larger the
    /// terms are than the value they sum to (relative error of evaluation ≈ condition · 1e-16).
    pub condition: f64,
    /// Set when the conversion is numerically doubtful (degree > 45 or condition > 1e8).
    pub warning: Option<String>,
}

/// Degree above which monomial coefficients are considered unusable in f64.
pub const MONOMIAL_SAFE_DEGREE: usize = 45;

fn check_interval(a: f64, b: f64) -> Result<(), ApproxError> {
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(ApproxError::InvalidDomain { a, b });
    }
    Ok(())
}

/// Clenshaw's recurrence for `Σ c_k T_k(t)`.
#[inline]
pub(crate) fn clenshaw(coeffs: &[f64], t: f64) -> f64 {
    let n = coeffs.len();
    if n == 0 {
        return 0.0;
    }
    if n == 1 {
        return coeffs[0];
    }
    let t2 = 2.0 * t;
    let mut b1 = 0.0;
    let mut b2 = 0.0;
    for &c in coeffs[1..].iter().rev() {
        let b0 = c + t2 * b1 - b2;
        b2 = b1;
        b1 = b0;
    }
    coeffs[0] + t * b1 - b2
}

impl ChebSeries {
    /// A series on `[a, b]`; errors if the interval is empty or not finite, the coefficient list is
    /// empty or longer than [`MAX_DEGREE`] + 1, or a coefficient is not finite.
    pub fn new(a: f64, b: f64, coeffs: Vec<f64>) -> Result<Self, ApproxError> {
        check_interval(a, b)?;
        if coeffs.is_empty() {
            return Err(ApproxError::InvalidInput(
                "a Chebyshev series needs at least one coefficient".into(),
            ));
        }
        if coeffs.len() > MAX_DEGREE + 1 {
            return Err(ApproxError::DegreeTooLarge {
                degree: coeffs.len() - 1,
                max: MAX_DEGREE,
            });
        }
        if let Some(k) = coeffs.iter().position(|c| !c.is_finite()) {
            return Err(ApproxError::InvalidInput(format!(
                "Chebyshev coefficient {k} is not finite"
            )));
        }
        Ok(ChebSeries { a, b, coeffs })
    }

    /// The constant `c` on `[a, b]`.
    pub fn constant(a: f64, b: f64, c: f64) -> Result<Self, ApproxError> {
        Self::new(a, b, vec![c])
    }

    /// The identity `x` on `[a, b]`.
    pub fn identity(a: f64, b: f64) -> Result<Self, ApproxError> {
        check_interval(a, b)?;
        Self::new(a, b, vec![(a + b) / 2.0, (b - a) / 2.0])
    }

    /// Nominal degree (number of coefficients − 1).
    pub fn degree(&self) -> usize {
        self.coeffs.len().saturating_sub(1)
    }

    /// Degree ignoring trailing zero coefficients.
    pub fn effective_degree(&self) -> usize {
        self.coeffs.iter().rposition(|&c| c != 0.0).unwrap_or(0)
    }

    /// Maps `x ∈ [a, b]` to `t ∈ [-1, 1]`.
    #[inline]
    pub fn to_t(&self, x: f64) -> f64 {
        (2.0 * x - self.a - self.b) / (self.b - self.a)
    }

    /// Maps `t ∈ [-1, 1]` back to `x ∈ [a, b]`.
    #[inline]
    pub fn from_t(&self, t: f64) -> f64 {
        0.5 * ((self.b - self.a) * t + self.a + self.b)
    }

    /// `p(x)` by Clenshaw's recurrence (also defined, but not meaningful, outside `[a, b]`).
    #[inline]
    pub fn eval(&self, x: f64) -> f64 {
        clenshaw(&self.coeffs, self.to_t(x))
    }

    /// `p(x)` evaluated in double-double arithmetic (≈ 106-bit), rounded to f64. Used to measure
    /// the rounding error of [`ChebSeries::eval`].
    pub fn eval_dd(&self, x: f64) -> f64 {
        crate::dd::clenshaw_dd(&self.coeffs, self.a, self.b, x)
    }

    /// Which parity a BSGS evaluation can exploit (exact zeros only).
    pub fn parity(&self) -> SeriesParity {
        let odd = self
            .coeffs
            .iter()
            .enumerate()
            .all(|(k, &c)| k % 2 == 1 || k == 0 || c == 0.0);
        let even = self
            .coeffs
            .iter()
            .enumerate()
            .all(|(k, &c)| k % 2 == 0 || k == 1 || c == 0.0);
        match (odd, even) {
            (true, _) if self.effective_degree() >= 2 || !even => SeriesParity::Odd,
            (_, true) => SeriesParity::Even,
            _ => SeriesParity::General,
        }
    }

    fn same_interval(&self, other: &ChebSeries, op: &str) -> Result<(), ApproxError> {
        if self.a != other.a || self.b != other.b {
            return Err(ApproxError::InvalidInput(format!(
                "{op} of Chebyshev series on different intervals [{}, {}] and [{}, {}]",
                self.a, self.b, other.a, other.b
            )));
        }
        Ok(())
    }

    /// `self + other` (same interval).
    pub fn add(&self, other: &ChebSeries) -> Result<ChebSeries, ApproxError> {
        self.same_interval(other, "sum")?;
        let n = self.coeffs.len().max(other.coeffs.len());
        let c = (0..n)
            .map(|k| self.coeffs.get(k).unwrap_or(&0.0) + other.coeffs.get(k).unwrap_or(&0.0))
            .collect();
        ChebSeries::new(self.a, self.b, c)
    }

    /// `s · self`.
    pub fn scale(&self, s: f64) -> ChebSeries {
        ChebSeries {
            a: self.a,
            b: self.b,
            coeffs: self.coeffs.iter().map(|c| c * s).collect(),
        }
    }

    /// `self + c`.
    pub fn add_constant(&self, c: f64) -> ChebSeries {
        let mut r = self.clone();
        r.coeffs[0] += c;
        r
    }

    /// `self · other` (same interval), by `T_m T_n = (T_{m+n} + T_{|m−n|})/2`.
    pub fn mul(&self, other: &ChebSeries) -> Result<ChebSeries, ApproxError> {
        self.same_interval(other, "product")?;
        let (p, q) = (&self.coeffs, &other.coeffs);
        let n = p.len() + q.len() - 1;
        if n > MAX_DEGREE + 1 {
            return Err(ApproxError::DegreeTooLarge {
                degree: n - 1,
                max: MAX_DEGREE,
            });
        }
        let mut r = vec![0.0; n];
        for (i, &pi) in p.iter().enumerate() {
            if pi == 0.0 {
                continue;
            }
            for (j, &qj) in q.iter().enumerate() {
                let v = 0.5 * pi * qj;
                r[i + j] += v;
                r[i.abs_diff(j)] += v;
            }
        }
        ChebSeries::new(self.a, self.b, r)
    }

    /// `x · self(x)`, exact in the Chebyshev basis (`t T_k = (T_{k+1} + T_{|k−1|})/2`).
    pub fn mul_x(&self) -> Result<ChebSeries, ApproxError> {
        self.mul(&ChebSeries::identity(self.a, self.b)?)
    }

    /// `d/dx self(x)` on the same interval.
    pub fn derivative(&self) -> ChebSeries {
        let n = self.coeffs.len();
        if n <= 1 {
            return ChebSeries {
                a: self.a,
                b: self.b,
                coeffs: vec![0.0],
            };
        }
        // d/dt: c'_{k-1} = c'_{k+1} + 2k c_k, then halve c'_0.
        let mut d = vec![0.0; n + 1];
        for k in (1..n).rev() {
            d[k - 1] = d[k + 1] + 2.0 * k as f64 * self.coeffs[k];
        }
        d[0] *= 0.5;
        d.truncate(n - 1);
        let s = 2.0 / (self.b - self.a);
        ChebSeries {
            a: self.a,
            b: self.b,
            coeffs: d.into_iter().map(|c| c * s).collect(),
        }
    }

    /// `self(inner(x))` as one series on `inner`'s interval (degree = product of degrees), by
    /// Clenshaw's recurrence run in series arithmetic. Meaningful where `inner` maps into
    /// `[self.a, self.b]`. Errors past [`MAX_DEGREE`].
    pub fn compose(&self, inner: &ChebSeries) -> Result<ChebSeries, ApproxError> {
        let deg = self.degree().saturating_mul(inner.degree().max(1));
        if deg > MAX_DEGREE {
            return Err(ApproxError::DegreeTooLarge {
                degree: deg,
                max: MAX_DEGREE,
            });
        }
        let (a, b) = (inner.a, inner.b);
        // u = t(inner) = (2 inner − self.a − self.b)/(self.b − self.a)
        let u = inner
            .scale(2.0 / (self.b - self.a))
            .add_constant(-(self.a + self.b) / (self.b - self.a));
        let u2 = u.scale(2.0);
        let zero = ChebSeries::constant(a, b, 0.0)?;
        let mut b1 = zero.clone();
        let mut b2 = zero;
        let n = self.coeffs.len();
        if n == 1 {
            return ChebSeries::constant(a, b, self.coeffs[0]);
        }
        for &c in self.coeffs[1..].iter().rev() {
            let b0 = u2.mul(&b1)?.add(&b2.scale(-1.0))?.add_constant(c);
            b2 = b1;
            b1 = b0;
        }
        let r = u
            .mul(&b1)?
            .add(&b2.scale(-1.0))?
            .add_constant(self.coeffs[0]);
        Ok(r)
    }

    /// The same polynomial in the monomial basis of `x`, with a conditioning estimate. Exact in
    /// exact arithmetic; in f64 the coefficients lose accuracy quickly past degree ≈ 45, which the
    /// returned warning says.
    pub fn to_monomial(&self) -> MonomialForm {
        let n = self.coeffs.len();
        // Monomial coefficients in t: accumulate T_k in the power basis by recurrence.
        let mut mt = vec![0.0; n];
        let mut tkm1 = vec![0.0; n]; // T_{k-1}
        let mut tk = vec![0.0; n]; // T_k
        tkm1[0] = 1.0;
        mt[0] += self.coeffs[0];
        if n > 1 {
            tk[1] = 1.0;
            mt[1] += self.coeffs[1];
        }
        for k in 2..n {
            let mut next = vec![0.0; n];
            for i in 0..k {
                next[i + 1] += 2.0 * tk[i];
            }
            for i in 0..k - 1 {
                next[i] -= tkm1[i];
            }
            for i in 0..=k {
                mt[i] += self.coeffs[k] * next[i];
            }
            tkm1 = std::mem::replace(&mut tk, next);
        }
        // Substitute t = α x + β with α = 2/(b−a), β = −(a+b)/(b−a): Horner in series form.
        let alpha = 2.0 / (self.b - self.a);
        let beta = -(self.a + self.b) / (self.b - self.a);
        let mut mx = vec![0.0; n];
        for k in (0..n).rev() {
            // mx = mx · (α x + β) + mt[k]
            let mut next = vec![0.0; n];
            for i in 0..n {
                if mx[i] != 0.0 {
                    next[i] += beta * mx[i];
                    if i + 1 < n {
                        next[i + 1] += alpha * mx[i];
                    }
                }
            }
            next[0] += mt[k];
            mx = next;
        }
        let r = self.a.abs().max(self.b.abs());
        let terms: f64 = mx
            .iter()
            .enumerate()
            .map(|(k, m)| m.abs() * r.powi(k as i32))
            .sum();
        let scale = (0..=256)
            .map(|i| {
                let x = self.from_t((std::f64::consts::PI * i as f64 / 256.0).cos());
                self.eval(x).abs()
            })
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE);
        let condition = terms / scale;
        let deg = self.effective_degree();
        let warning = if deg > MONOMIAL_SAFE_DEGREE || condition > 1e8 {
            Some(format!(
                "monomial form of a degree-{deg} polynomial is ill-conditioned (terms {condition:.1e} times \
                 larger than the values; relative evaluation error ≈ {:.1e}); keep the Chebyshev basis",
                condition * f64::EPSILON
            ))
        } else {
            None
        };
        MonomialForm {
            coeffs: mx,
            condition,
            warning,
        }
    }
}

/// Chebyshev interpolant of degree `degree` of `f` on `[a, b]` at the `degree + 1` Chebyshev points
/// of the first kind (near-minimax: within a factor `2 + (2/π) log(d+1)` of the best error).
pub fn chebyshev_interp(
    f: &dyn Fn(f64) -> f64,
    a: f64,
    b: f64,
    degree: usize,
) -> Result<ChebSeries, ApproxError> {
    check_interval(a, b)?;
    if degree > MAX_DEGREE {
        return Err(ApproxError::DegreeTooLarge {
            degree,
            max: MAX_DEGREE,
        });
    }
    let n = degree + 1;
    // cos(k π (2j+1) / (2n)) from a table of cos(π m / (2n)), m mod 4n.
    let table: Vec<f64> = (0..4 * n)
        .map(|m| (std::f64::consts::PI * m as f64 / (2 * n) as f64).cos())
        .collect();
    let mut fv = Vec::with_capacity(n);
    for j in 0..n {
        let t = table[2 * j + 1];
        let x = 0.5 * ((b - a) * t + a + b);
        let y = f(x);
        if !y.is_finite() {
            return Err(ApproxError::NonFinite { x });
        }
        fv.push(y);
    }
    let mut c = vec![0.0; n];
    for (k, ck) in c.iter_mut().enumerate() {
        let mut s = 0.0;
        for (j, &y) in fv.iter().enumerate() {
            s += y * table[(k * (2 * j + 1)) % (4 * n)];
        }
        *ck = 2.0 * s / n as f64;
    }
    c[0] *= 0.5;
    ChebSeries::new(a, b, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(s: &ChebSeries, x: f64) -> f64 {
        let t = s.to_t(x).clamp(-1.0, 1.0);
        s.coeffs
            .iter()
            .enumerate()
            .map(|(k, c)| c * (k as f64 * t.acos()).cos())
            .sum()
    }

    #[test]
    fn clenshaw_matches_cosine_sum() {
        let s = ChebSeries::new(-3.0, 5.0, vec![0.3, -1.0, 0.25, 2.0, -0.125]).unwrap();
        for i in 0..=100 {
            let x = -3.0 + 8.0 * i as f64 / 100.0;
            assert!((s.eval(x) - naive(&s, x)).abs() < 1e-13);
        }
    }

    #[test]
    fn arithmetic_is_consistent_with_evaluation() {
        let p = ChebSeries::new(-2.0, 1.0, vec![0.5, 1.0, -0.3, 0.2]).unwrap();
        let q = ChebSeries::new(-2.0, 1.0, vec![-0.1, 0.4, 0.7]).unwrap();
        let pq = p.mul(&q).unwrap();
        let px = p.mul_x().unwrap();
        let dp = p.derivative();
        let inner = ChebSeries::new(-1.0, 1.0, vec![-0.5, 1.2, 0.1]).unwrap(); // maps into [-2,1]
        let comp = p.compose(&inner).unwrap();
        for i in 0..=50 {
            let x = -2.0 + 3.0 * i as f64 / 50.0;
            assert!((pq.eval(x) - p.eval(x) * q.eval(x)).abs() < 1e-13);
            assert!((px.eval(x) - x * p.eval(x)).abs() < 1e-13);
            let h = 1e-6;
            let fd = (p.eval(x + h) - p.eval(x - h)) / (2.0 * h);
            assert!((dp.eval(x) - fd).abs() < 1e-6);
            let y = -1.0 + 2.0 * i as f64 / 50.0;
            assert!((comp.eval(y) - p.eval(inner.eval(y))).abs() < 1e-12);
        }
        assert!(p
            .add(&ChebSeries::new(0.0, 1.0, vec![1.0]).unwrap())
            .is_err());
    }

    #[test]
    fn monomial_conversion_and_warning() {
        let p = ChebSeries::new(1.0, 3.0, vec![1.0, 2.0, 3.0]).unwrap();
        let m = p.to_monomial();
        for x in [1.0, 1.5, 2.7, 3.0] {
            let v: f64 = m.coeffs.iter().rev().fold(0.0, |acc, c| acc * x + c);
            assert!((v - p.eval(x)).abs() < 1e-12);
        }
        assert!(m.warning.is_none());
        let mut c = vec![0.0; 61];
        c[60] = 1.0;
        let high = ChebSeries::new(-1.0, 1.0, c).unwrap();
        assert!(high.to_monomial().warning.is_some());
    }

    #[test]
    fn interpolation_is_exact_for_polynomials_and_close_for_smooth() {
        let s = chebyshev_interp(&|x| 2.0 * x * x * x - x + 0.5, -2.0, 3.0, 5).unwrap();
        assert!(s.coeffs[4].abs() < 1e-13 && s.coeffs[5].abs() < 1e-13);
        for x in [-2.0, 0.1, 3.0] {
            assert!((s.eval(x) - (2.0 * x * x * x - x + 0.5)).abs() < 1e-12);
        }
        let e = chebyshev_interp(&f64::exp, -1.0, 1.0, 20).unwrap();
        assert!((e.eval(0.3) - 0.3f64.exp()).abs() < 1e-14);
        assert!(chebyshev_interp(&f64::exp, 1.0, 1.0, 3).is_err());
    }

    #[test]
    fn parity_detection() {
        let odd = ChebSeries::new(-1.0, 1.0, vec![0.0, 1.0, 0.0, 2.0]).unwrap();
        let even = ChebSeries::new(-1.0, 1.0, vec![1.0, 0.5, 2.0, 0.0, 1.0]).unwrap();
        let gen = ChebSeries::new(-1.0, 1.0, vec![1.0, 0.5, 2.0, 1.0]).unwrap();
        assert_eq!(odd.parity(), SeriesParity::Odd);
        assert_eq!(even.parity(), SeriesParity::Even);
        assert_eq!(gen.parity(), SeriesParity::General);
    }
}
