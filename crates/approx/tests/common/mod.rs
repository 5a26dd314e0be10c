//! An evaluator that shares nothing with the fitting code: `T_k(t) = cos(k·acos t)` summed
//! naively (cosh form outside [-1, 1]).
#![allow(dead_code)]

pub fn naive_series(domain: [f64; 2], coeffs: &[f64], x: f64) -> f64 {
    let [a, b] = domain;
    let t = (2.0 * x - a - b) / (b - a);
    coeffs
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let k = k as f64;
            let tk = if t.abs() <= 1.0 {
                (k * t.acos()).cos()
            } else if t > 1.0 {
                (k * t.acosh()).cosh()
            } else {
                let s = if (k as i64) % 2 == 0 { 1.0 } else { -1.0 };
                s * (k * (-t).acosh()).cosh()
            };
            c * tk
        })
        .sum()
}

/// `q(x)`: the stages (domain, coefficients) composed in order.
pub fn naive_composed(stages: &[([f64; 2], Vec<f64>)], x: f64) -> f64 {
    stages.iter().fold(x, |v, (d, c)| naive_series(*d, c, v))
}

pub fn stages_of(ap: &pannc_approx::Approximation) -> Vec<([f64; 2], Vec<f64>)> {
    ap.stages
        .iter()
        .map(|s| (s.domain, s.coefficients.clone()))
        .collect()
}

/// `n` equally spaced points of [a, b] (both ends included).
pub fn grid(a: f64, b: f64, n: usize) -> impl Iterator<Item = f64> {
    (0..n).map(move |i| a + (b - a) * i as f64 / (n - 1) as f64)
}

pub fn relu(x: f64) -> f64 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}
