//! Semantic depth lower bound of a circuit.
//!
//! In the cost model of [`crate::circuit`], a value at level `t` is a
//! polynomial of degree ≤ 2^t, and when its degree is exactly 2^t its leading
//! (monomial) coefficient is an integer. Induction over the ops: inputs are
//! degree 1 = 2^0 with leading coefficient 1; `add/sub/neg/add_const/mul_int`
//! keep the level and cannot raise the degree past 2^t or make an integer
//! leading coefficient non-integer; `mul` of two level-(t−1) values has degree
//! ≤ 2^(t−1)+2^(t−1) with a product of integer leading coefficients at the
//! top; `mul_const` raises the level without raising the degree.
//!
//! Hence a polynomial of degree `n` needs at least `⌈log2(n+1)⌉` levels, or
//! `log2 n` when `n` is a power of two and its leading monomial coefficient is
//! an integer. [`depth_lower_bound`] computes the polynomial a single-input
//! circuit denotes (in the Chebyshev basis, f64) and applies that bound. The
//! degree is decided numerically (coefficients below `1e-10·max|c|` count as
//! zero), so it is a bound on the polynomial up to that tolerance.

use crate::cheb::ceil_log2;
use crate::circuit::{Circuit, Op};

/// Degree above which [`circuit_polynomials`] gives up (memory/time guard).
pub const POLY_DEGREE_LIMIT: usize = 4096;

fn cheb_mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut r = vec![0.0; a.len() + b.len() - 1];
    for (i, &x) in a.iter().enumerate() {
        if x == 0.0 {
            continue;
        }
        for (j, &y) in b.iter().enumerate() {
            let p = 0.5 * x * y;
            r[i + j] += p;
            r[i.abs_diff(j)] += p;
        }
    }
    r
}

fn add_scaled(a: &[f64], b: &[f64], s: f64) -> Vec<f64> {
    let mut r = vec![0.0; a.len().max(b.len())];
    r[..a.len()].copy_from_slice(a);
    for (k, &v) in b.iter().enumerate() {
        r[k] += s * v;
    }
    r
}

/// Chebyshev coefficients (in the single input) of every output, or `None`
/// when the circuit has more than one input or a degree above
/// [`POLY_DEGREE_LIMIT`].
pub fn circuit_polynomials(c: &Circuit) -> Option<Vec<Vec<f64>>> {
    if c.inputs.len() != 1 || c.recompute_levels().is_err() {
        return None;
    }
    let mut vals: Vec<Vec<f64>> = vec![vec![0.0, 1.0]];
    for e in &c.ops {
        let g = |v: crate::circuit::ValueId| &vals[v.0 as usize];
        let k = |id: crate::circuit::ConstId| c.constants[id.0 as usize];
        let r = match e.op {
            Op::Add { a, b } => add_scaled(g(a), g(b), 1.0),
            Op::Sub { a, b } => add_scaled(g(a), g(b), -1.0),
            Op::Neg { a } => g(a).iter().map(|v| -v).collect(),
            Op::Mul { a, b } => {
                if g(a).len() + g(b).len() - 2 > POLY_DEGREE_LIMIT {
                    return None;
                }
                cheb_mul(g(a), g(b))
            }
            Op::MulConst { a, c: id } => g(a).iter().map(|v| v * k(id)).collect(),
            Op::MulInt { a, k: n } => g(a).iter().map(|v| v * n as f64).collect(),
            Op::AddConst { a, c: id } => {
                let mut r = g(a).clone();
                r[0] += k(id);
                r
            }
        };
        vals.push(r);
    }
    Some(
        c.outputs
            .iter()
            .map(|o| vals[o.value.0 as usize].clone())
            .collect(),
    )
}

/// Numerical degree of a Chebyshev series (see module doc for the tolerance).
pub fn numerical_degree(c: &[f64]) -> usize {
    let m = c.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if m == 0.0 {
        return 0;
    }
    c.iter().rposition(|v| v.abs() > 1e-10 * m).unwrap_or(0)
}

/// Lower bound on the levels any circuit computing `Σ c_k T_k` needs.
pub fn polynomial_depth_lower_bound(c: &[f64]) -> u32 {
    let n = numerical_degree(c);
    if n == 0 {
        return 0;
    }
    if n.is_power_of_two() {
        // Leading monomial coefficient of c_n T_n is c_n 2^(n-1).
        let lc = c[n] * 2f64.powi(n as i32 - 1);
        if (lc - lc.round()).abs() <= 1e-9 * lc.abs().max(1.0) {
            return ceil_log2(n);
        }
    }
    ceil_log2(n + 1)
}

/// Max over outputs of [`polynomial_depth_lower_bound`]; `None` as in
/// [`circuit_polynomials`].
pub fn depth_lower_bound(c: &Circuit) -> Option<u32> {
    let polys = circuit_polynomials(c)?;
    Some(
        polys
            .iter()
            .map(|p| polynomial_depth_lower_bound(p))
            .max()
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::{CircuitBuilder, Output};

    #[test]
    fn bound_rules() {
        assert_eq!(polynomial_depth_lower_bound(&[0.3]), 0);
        assert_eq!(polynomial_depth_lower_bound(&[0.3, 0.5]), 1);
        // x + 0.3 needs no level at all.
        assert_eq!(polynomial_depth_lower_bound(&[0.3, 1.0]), 0);
        // T_2 = 2x^2 - 1: integer leading coefficient, depth 1 suffices.
        assert_eq!(polynomial_depth_lower_bound(&[0.0, 0.0, 1.0]), 1);
        // 0.3 T_2: leading coefficient 0.6, needs 2.
        assert_eq!(polynomial_depth_lower_bound(&[0.0, 0.0, 0.3]), 2);
        assert_eq!(polynomial_depth_lower_bound(&[0.0, 0.0, 0.0, 0.3]), 2);
        let mut c = vec![0.0; 16];
        c[15] = 0.1;
        assert_eq!(polynomial_depth_lower_bound(&c), 4);
    }

    #[test]
    fn polynomial_of_a_circuit() {
        // y = 0.5·(x·x) + 3 = 0.5·(T_2+1)/2 + 3
        let mut b = CircuitBuilder::new("t");
        let x = b.input("x").unwrap();
        let s = b.mul(x, x);
        let h = b.mul_const(s, 0.5);
        let y = b.add_const(h, 3.0);
        let c = b
            .finish(
                vec![Output {
                    name: "y".into(),
                    value: y,
                }],
                None,
            )
            .unwrap();
        let p = &circuit_polynomials(&c).unwrap()[0];
        assert!((p[0] - 3.25).abs() < 1e-15 && p[1].abs() < 1e-15 && (p[2] - 0.25).abs() < 1e-15);
        assert_eq!(depth_lower_bound(&c), Some(2));
    }
}
