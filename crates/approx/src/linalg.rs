//! Small dense linear algebra (row-major `Vec<f64>`): LU with partial pivoting, Householder least
//! squares. Sizes here are at most a few thousand rows by a few hundred columns.

use crate::ApproxError;

/// Solves `A x = b` (A is n×n row-major) by LU with partial pivoting and one step of iterative
/// refinement. Errors when a pivot is below `1e-300` or relatively tiny.
pub(crate) fn solve(
    a: &[f64],
    b: &[f64],
    n: usize,
    context: &'static str,
) -> Result<Vec<f64>, ApproxError> {
    let mut lu = a.to_vec();
    let mut perm: Vec<usize> = (0..n).collect();
    let amax = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for k in 0..n {
        let (p, pv) = (k..n)
            .map(|i| (i, lu[i * n + k].abs()))
            .fold((k, -1.0), |acc, v| if v.1 > acc.1 { v } else { acc });
        if !(pv > 1e-300 && pv > amax * 1e-15) {
            return Err(ApproxError::Singular { context });
        }
        if p != k {
            for j in 0..n {
                lu.swap(k * n + j, p * n + j);
            }
            perm.swap(k, p);
        }
        let piv = lu[k * n + k];
        for i in k + 1..n {
            let f = lu[i * n + k] / piv;
            lu[i * n + k] = f;
            if f != 0.0 {
                for j in k + 1..n {
                    lu[i * n + j] -= f * lu[k * n + j];
                }
            }
        }
    }
    let lu_solve = |rhs: &[f64]| -> Vec<f64> {
        let mut x: Vec<f64> = perm.iter().map(|&p| rhs[p]).collect();
        for i in 0..n {
            let mut s = x[i];
            for j in 0..i {
                s -= lu[i * n + j] * x[j];
            }
            x[i] = s;
        }
        for i in (0..n).rev() {
            let mut s = x[i];
            for j in i + 1..n {
                s -= lu[i * n + j] * x[j];
            }
            x[i] = s / lu[i * n + i];
        }
        x
    };
    let mut x = lu_solve(b);
    // One step of iterative refinement.
    let r: Vec<f64> = (0..n)
        .map(|i| {
            let mut s = b[i];
            for j in 0..n {
                s -= a[i * n + j] * x[j];
            }
            s
        })
        .collect();
    let dx = lu_solve(&r);
    for (xi, d) in x.iter_mut().zip(dx) {
        *xi += d;
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(ApproxError::Singular { context });
    }
    Ok(x)
}

/// Least squares `min ‖A x − b‖₂` (A is m×n row-major, m ≥ n) by Householder QR.
pub(crate) fn lstsq(
    a: &[f64],
    b: &[f64],
    m: usize,
    n: usize,
    context: &'static str,
) -> Result<Vec<f64>, ApproxError> {
    if m < n {
        return Err(ApproxError::InvalidInput(format!(
            "{context}: {m} samples cannot determine {n} coefficients"
        )));
    }
    // Column-major copy for cache-friendly Householder.
    let mut q: Vec<f64> = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            q[j * m + i] = a[i * n + j];
        }
    }
    let mut rhs = b.to_vec();
    let norm_a = q.iter().fold(0.0f64, |s, v| s.max(v.abs()));
    for k in 0..n {
        let col = &mut q[k * m..(k + 1) * m];
        let alpha_norm = col[k..].iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(alpha_norm > norm_a * 1e-14 && alpha_norm > 1e-300) {
            return Err(ApproxError::Singular { context });
        }
        let alpha = if col[k] > 0.0 {
            -alpha_norm
        } else {
            alpha_norm
        };
        col[k] -= alpha;
        let vnorm2: f64 = col[k..].iter().map(|v| v * v).sum();
        // v = col[k..], H = I − 2 v vᵀ / (vᵀv)
        let v: Vec<f64> = col[k..].to_vec();
        col[k] = alpha;
        for x in col[k + 1..].iter_mut() {
            *x = 0.0;
        }
        for j in k + 1..n {
            let cj = &mut q[j * m..(j + 1) * m];
            let dot: f64 = v.iter().zip(&cj[k..]).map(|(a, b)| a * b).sum();
            let f = 2.0 * dot / vnorm2;
            for (c, vi) in cj[k..].iter_mut().zip(&v) {
                *c -= f * vi;
            }
        }
        let dot: f64 = v.iter().zip(&rhs[k..]).map(|(a, b)| a * b).sum();
        let f = 2.0 * dot / vnorm2;
        for (c, vi) in rhs[k..].iter_mut().zip(&v) {
            *c -= f * vi;
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = rhs[i];
        for j in i + 1..n {
            s -= q[j * m + i] * x[j];
        }
        x[i] = s / q[i * m + i];
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(ApproxError::Singular { context });
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lu_and_qr_solve_small_systems() {
        let a = [4.0, 1.0, 2.0, 1.0, 3.0, 0.0, 2.0, 0.0, 5.0];
        let x = solve(&a, &[7.0, 4.0, 7.0], 3, "test").unwrap();
        for (v, e) in x.iter().zip([1.0, 1.0, 1.0]) {
            assert!((v - e).abs() < 1e-14);
        }
        assert!(solve(&[1.0, 2.0, 2.0, 4.0], &[1.0, 2.0], 2, "test").is_err());
        // Fit y = 1 + 2x exactly from 4 points.
        let pts = [0.0, 1.0, 2.0, 3.0];
        let a: Vec<f64> = pts.iter().flat_map(|&x| [1.0, x]).collect();
        let b: Vec<f64> = pts.iter().map(|x| 1.0 + 2.0 * x).collect();
        let c = lstsq(&a, &b, 4, 2, "test").unwrap();
        assert!((c[0] - 1.0).abs() < 1e-13 && (c[1] - 2.0).abs() < 1e-13);
    }
}
