//! Weighted least squares in the Chebyshev basis against a sample distribution, with the
//! error-shaping constraints of pannc (zero mean or one sign of the error on negative inputs).

use crate::cheb::{clenshaw, ChebSeries, MAX_DEGREE};
use crate::linalg::{lstsq, solve};
use crate::ApproxError;
use serde::{Deserialize, Serialize};

/// Sign the error `p(x) − f(x)` must keep on `x < 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorSign {
    /// `p(x) ≥ f(x)`.
    Above,
    /// `p(x) ≤ f(x)`.
    Below,
}

/// Constraints of a least-squares fit, all on the negative samples (`x < 0`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LsqConstraints {
    /// `Σ_{x_i<0} w_i (p(x_i) − f(x_i)) = 0`: zero mean error under the sample distribution.
    pub negative_zero_mean: bool,
    /// Keep the error on the negative samples of one sign.
    pub negative_sign: Option<ErrorSign>,
}

/// Result of [`lsq`].
#[derive(Clone, Debug, Serialize)]
pub struct LsqFit {
    pub series: ChebSeries,
    /// `sqrt(Σ w_i e_i² / Σ w_i)` over the samples.
    pub rms_error: f64,
    /// Largest `|e_i|` over the samples.
    pub max_sample_error: f64,
    /// `Σ_{x_i<0} w_i e_i / Σ_{x_i<0} w_i` (0 when there are no negative samples).
    pub negative_mean_error: f64,
    /// Number of sample points held at zero error by the one-sign constraint.
    pub active_points: usize,
}

fn basis_row(a: f64, b: f64, x: f64, n: usize, row: &mut [f64]) {
    let t = ((2.0 * x - a - b) / (b - a)).clamp(-1.0, 1.0);
    if n > 0 {
        row[0] = 1.0;
    }
    if n > 1 {
        row[1] = t;
    }
    for k in 2..n {
        row[k] = 2.0 * t * row[k - 1] - row[k - 2];
    }
}

/// Weighted least-squares polynomial of degree `degree` on `[a, b]` (the Chebyshev interval; the
/// samples must lie inside) minimising `Σ w_i (p(x_i) − f(x_i))²`, subject to `constraints`.
///
/// The one-sign constraint is solved by an active-set loop: the most violating negative sample is
/// pinned to zero error (an equality), pinned samples whose Lagrange multiplier has the wrong sign
/// are released, until no sample violates by more than `1e-12` (at most 4·n rounds).
pub fn lsq(
    f: &dyn Fn(f64) -> f64,
    samples: &[(f64, f64)],
    interval: (f64, f64),
    degree: usize,
    constraints: &LsqConstraints,
) -> Result<LsqFit, ApproxError> {
    let (a, b) = interval;
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(ApproxError::InvalidDomain { a, b });
    }
    if degree > MAX_DEGREE {
        return Err(ApproxError::DegreeTooLarge {
            degree,
            max: MAX_DEGREE,
        });
    }
    let n = degree + 1;
    if samples.len() < n {
        return Err(ApproxError::InvalidInput(format!(
            "least squares of degree {degree} needs at least {n} samples, got {}",
            samples.len()
        )));
    }
    let mut fx = Vec::with_capacity(samples.len());
    for &(x, w) in samples {
        if !(x.is_finite() && w.is_finite() && w >= 0.0) {
            return Err(ApproxError::InvalidInput(format!(
                "bad sample (x = {x}, weight = {w}): need finite x and weight ≥ 0"
            )));
        }
        if x < a - 1e-12 * (b - a) || x > b + 1e-12 * (b - a) {
            return Err(ApproxError::InvalidInput(format!(
                "sample x = {x} lies outside the fitting interval [{a}, {b}]"
            )));
        }
        let y = f(x);
        if !y.is_finite() {
            return Err(ApproxError::NonFinite { x });
        }
        fx.push(y);
    }
    let m = samples.len();
    let mut rows = vec![0.0; m * n];
    for (i, &(x, _)) in samples.iter().enumerate() {
        basis_row(a, b, x, n, &mut rows[i * n..(i + 1) * n]);
    }
    let neg: Vec<usize> = (0..m).filter(|&i| samples[i].0 < 0.0).collect();
    let wneg: f64 = neg.iter().map(|&i| samples[i].1).sum();
    // Equality constraints: rows C c = d.
    let mut eq_rows: Vec<(Vec<f64>, f64)> = Vec::new();
    if constraints.negative_zero_mean {
        if wneg <= 0.0 {
            return Err(ApproxError::InvalidInput(
                "zero-mean shaping needs samples with positive weight on x < 0".into(),
            ));
        }
        let mut c = vec![0.0; n];
        let mut d = 0.0;
        for &i in &neg {
            let w = samples[i].1;
            for k in 0..n {
                c[k] += w * rows[i * n + k];
            }
            d += w * fx[i];
        }
        eq_rows.push((c, d));
    }
    let solve_with = |active: &[usize]| -> Result<(Vec<f64>, Vec<f64>), ApproxError> {
        let mut eqs: Vec<(Vec<f64>, f64)> = eq_rows.clone();
        for &i in active {
            eqs.push((rows[i * n..(i + 1) * n].to_vec(), fx[i]));
        }
        if eqs.is_empty() {
            let sw: Vec<f64> = samples.iter().map(|s| s.1.sqrt()).collect();
            let mut aw = rows.clone();
            let mut bw = fx.clone();
            for i in 0..m {
                for k in 0..n {
                    aw[i * n + k] *= sw[i];
                }
                bw[i] *= sw[i];
            }
            return Ok((lstsq(&aw, &bw, m, n, "least squares")?, Vec::new()));
        }
        // KKT: [AᵀWA Cᵀ; C 0] [c; λ] = [AᵀW f; d]
        let q = eqs.len();
        let s = n + q;
        let mut k = vec![0.0; s * s];
        let mut rhs = vec![0.0; s];
        // Normalised weights keep the KKT blocks on the same scale.
        let wsum: f64 = samples
            .iter()
            .map(|s| s.1)
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        for i in 0..m {
            let w = samples[i].1 / wsum;
            if w == 0.0 {
                continue;
            }
            let r = &rows[i * n..(i + 1) * n];
            for p in 0..n {
                let wp = w * r[p];
                rhs[p] += wp * fx[i];
                for qq in 0..n {
                    k[p * s + qq] += wp * r[qq];
                }
            }
        }
        for (j, (c, d)) in eqs.iter().enumerate() {
            for p in 0..n {
                k[(n + j) * s + p] = c[p];
                k[p * s + n + j] = c[p];
            }
            rhs[n + j] = *d;
        }
        let sol = solve(&k, &rhs, s, "constrained least squares")?;
        Ok((sol[..n].to_vec(), sol[n..].to_vec()))
    };
    let mut active: Vec<usize> = Vec::new();
    let (mut coeffs, _) = solve_with(&active)?;
    if let Some(sign) = constraints.negative_sign {
        let sg = if sign == ErrorSign::Above { 1.0 } else { -1.0 };
        let scale = fx.iter().fold(0.0f64, |s, v| s.max(v.abs())).max(1.0);
        for _ in 0..4 * n + 8 {
            // Most violating sample.
            let mut worst = (usize::MAX, -1e-12 * scale);
            for &i in &neg {
                if active.contains(&i) {
                    continue;
                }
                let t = ((2.0 * samples[i].0 - a - b) / (b - a)).clamp(-1.0, 1.0);
                let e = sg * (clenshaw(&coeffs, t) - fx[i]);
                if e < worst.1 {
                    worst = (i, e);
                }
            }
            if worst.0 == usize::MAX {
                break;
            }
            active.push(worst.0);
            if active.len() + eq_rows.len() >= n {
                // Too many pins for the degree: release the oldest.
                active.remove(0);
            }
            let (c, lambda) = solve_with(&active)?;
            coeffs = c;
            // Release pins that pull the wrong way (multiplier sign), one per round.
            let off = eq_rows.len();
            if let Some((j, _)) = active
                .iter()
                .enumerate()
                .map(|(j, _)| (j, sg * lambda[off + j]))
                .filter(|(_, l)| *l > 1e-12)
                .max_by(|x, y| x.1.total_cmp(&y.1))
            {
                active.remove(j);
                coeffs = solve_with(&active)?.0;
            }
        }
    }
    let series = ChebSeries::new(a, b, coeffs)?;
    let mut sw = 0.0;
    let mut se2 = 0.0;
    let mut emax = 0.0f64;
    let mut sneg = 0.0;
    for (i, &(x, w)) in samples.iter().enumerate() {
        let e = series.eval(x) - fx[i];
        sw += w;
        se2 += w * e * e;
        emax = emax.max(e.abs());
        if x < 0.0 {
            sneg += w * e;
        }
    }
    Ok(LsqFit {
        series,
        rms_error: if sw > 0.0 { (se2 / sw).sqrt() } else { 0.0 },
        max_sample_error: emax,
        negative_mean_error: if wneg > 0.0 { sneg / wneg } else { 0.0 },
        active_points: active.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(a: f64, b: f64, n: usize) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| (a + (b - a) * i as f64 / (n - 1) as f64, 1.0))
            .collect()
    }

    #[test]
    fn exact_for_polynomials() {
        let f = |x: f64| 1.0 - 2.0 * x + 0.5 * x * x * x;
        let fit = lsq(
            &f,
            &grid(-2.0, 3.0, 50),
            (-2.0, 3.0),
            3,
            &LsqConstraints::default(),
        )
        .unwrap();
        assert!(fit.max_sample_error < 1e-12);
    }

    #[test]
    fn constraints_hold() {
        let relu = |x: f64| x.max(0.0);
        // A skewed distribution (more mass near 0, like activation inputs).
        let s: Vec<(f64, f64)> = grid(-1.0, 1.0, 801)
            .into_iter()
            .map(|(x, _)| (x, (-4.0 * (x + 0.2) * (x + 0.2)).exp()))
            .collect();
        let zm = lsq(
            &relu,
            &s,
            (-1.0, 1.0),
            8,
            &LsqConstraints {
                negative_zero_mean: true,
                negative_sign: None,
            },
        )
        .unwrap();
        assert!(
            zm.negative_mean_error.abs() < 1e-12,
            "{}",
            zm.negative_mean_error
        );
        let plain = lsq(&relu, &s, (-1.0, 1.0), 8, &LsqConstraints::default()).unwrap();
        assert!(
            plain.negative_mean_error.abs() > 1e-6,
            "{}",
            plain.negative_mean_error
        );
        for sign in [ErrorSign::Above, ErrorSign::Below] {
            let os = lsq(
                &relu,
                &s,
                (-1.0, 1.0),
                8,
                &LsqConstraints {
                    negative_zero_mean: false,
                    negative_sign: Some(sign),
                },
            )
            .unwrap();
            let sg = if sign == ErrorSign::Above { 1.0 } else { -1.0 };
            for &(x, _) in s.iter().filter(|p| p.0 < 0.0) {
                assert!(
                    sg * (os.series.eval(x) - relu(x)) >= -1e-9,
                    "{sign:?} at {x}"
                );
            }
        }
    }
}
