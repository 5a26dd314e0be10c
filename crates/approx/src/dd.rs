//! Double-double arithmetic (an unevaluated sum `hi + lo` of two f64, ≈ 106-bit significand), used
//! to *measure* the rounding error of the f64 paths (Clenshaw evaluation, Remez levelled error).
//! The measurements in `tests/precision.rs` show that f64 is enough up to degree 511 for the
//! functions this crate targets, so the fitting code itself runs in f64.

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Dd {
    pub hi: f64,
    pub lo: f64,
}

#[inline]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, e)
}

#[inline]
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl Dd {
    pub fn from(x: f64) -> Dd {
        Dd { hi: x, lo: 0.0 }
    }
    #[inline]
    pub fn add(self, o: Dd) -> Dd {
        let (s, e) = two_sum(self.hi, o.hi);
        let e = e + self.lo + o.lo;
        let (hi, lo) = two_sum(s, e);
        Dd { hi, lo }
    }
    #[inline]
    pub fn neg(self) -> Dd {
        Dd {
            hi: -self.hi,
            lo: -self.lo,
        }
    }
    #[inline]
    pub fn mul(self, o: Dd) -> Dd {
        let (p, e) = two_prod(self.hi, o.hi);
        let e = e + self.hi * o.lo + self.lo * o.hi;
        let (hi, lo) = two_sum(p, e);
        Dd { hi, lo }
    }
    #[inline]
    pub fn div(self, o: Dd) -> Dd {
        let q1 = self.hi / o.hi;
        let r = self.add(o.mul(Dd::from(q1)).neg());
        let q2 = r.hi / o.hi;
        let (hi, lo) = two_sum(q1, q2);
        Dd { hi, lo }
    }
}

/// Clenshaw in double-double for `Σ c_k T_k(t)`, `t = (2x − a − b)/(b − a)` computed in dd too.
pub(crate) fn clenshaw_dd(coeffs: &[f64], a: f64, b: f64, x: f64) -> f64 {
    let num = Dd::from(2.0)
        .mul(Dd::from(x))
        .add(Dd::from(a).neg())
        .add(Dd::from(b).neg());
    let den = Dd::from(b).add(Dd::from(a).neg());
    let t = num.div(den);
    let n = coeffs.len();
    if n == 0 {
        return 0.0;
    }
    if n == 1 {
        return coeffs[0];
    }
    let t2 = t.mul(Dd::from(2.0));
    let mut b1 = Dd::default();
    let mut b2 = Dd::default();
    for &c in coeffs[1..].iter().rev() {
        let b0 = Dd::from(c).add(t2.mul(b1)).add(b2.neg());
        b2 = b1;
        b1 = b0;
    }
    let r = Dd::from(coeffs[0]).add(t.mul(b1)).add(b2.neg());
    r.hi + r.lo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dd_is_more_precise_than_f64() {
        // (1 + 2^-60) − 1 is lost in f64 but kept in dd.
        let x = Dd::from(1.0).add(Dd::from(2f64.powi(-60)));
        let y = x.add(Dd::from(-1.0));
        assert_eq!(y.hi, 2f64.powi(-60));
        let third = Dd::from(1.0).div(Dd::from(3.0));
        let back = third.mul(Dd::from(3.0)).add(Dd::from(-1.0));
        assert!(back.hi.abs() < 1e-31);
    }
}
