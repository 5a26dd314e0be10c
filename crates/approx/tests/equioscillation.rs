//! Property sweep: every single minimax result equioscillates, i.e. its weighted error has at
//! least d + 2 alternating extrema whose sizes agree with the maximum to 1%. The check samples
//! the error densely with its own evaluator and shares nothing with the exchange.

mod common;
use common::naive_series;
use pannc_approx::*;

/// Number of alternating extrema with |e| ≥ 0.99·max (greedy alternating subsequence of the
/// per-run maxima), and the max.
fn alternations(e: &[(f64, f64)]) -> (usize, f64) {
    let emax = e.iter().fold(0.0f64, |m, p| m.max(p.1.abs()));
    // Per sign run, the largest |e|.
    let mut runs: Vec<f64> = Vec::new();
    for &(_, v) in e {
        if v == 0.0 {
            continue;
        }
        match runs.last_mut() {
            Some(last) if last.signum() == v.signum() => {
                if v.abs() > last.abs() {
                    *last = v;
                }
            }
            _ => runs.push(v),
        }
    }
    let big: Vec<f64> = runs
        .into_iter()
        .filter(|v| v.abs() >= 0.99 * emax)
        .collect();
    let mut count = 0;
    let mut last_sign = 0.0;
    for v in big {
        if v.signum() != last_sign {
            count += 1;
            last_sign = v.signum();
        }
    }
    (count, emax)
}

struct Case {
    name: &'static str,
    f: fn(f64) -> f64,
    intervals: Vec<(f64, f64)>,
    parity: Parity,
    neg_weight: f64,
    breakpoints: Vec<f64>,
}

fn gelu(x: f64) -> f64 {
    Function::Gelu.eval(x)
}
fn silu(x: f64) -> f64 {
    Function::Silu.eval(x)
}
fn sigmoid(x: f64) -> f64 {
    Function::Sigmoid.eval(x)
}
fn relu(x: f64) -> f64 {
    x.max(0.0)
}
fn sign(x: f64) -> f64 {
    x.signum()
}
fn clip6(x: f64) -> f64 {
    x.clamp(0.0, 6.0)
}

fn cases() -> Vec<Case> {
    let c = |name, f, intervals: Vec<(f64, f64)>, parity, neg_weight, breakpoints: Vec<f64>| Case {
        name,
        f,
        intervals,
        parity,
        neg_weight,
        breakpoints,
    };
    vec![
        c(
            "relu[-1,1]",
            relu,
            vec![(-1.0, 1.0)],
            Parity::None,
            1.0,
            vec![0.0],
        ),
        c(
            "relu[-3,2]",
            relu,
            vec![(-3.0, 2.0)],
            Parity::None,
            1.0,
            vec![0.0],
        ),
        c(
            "relu[-1,1] neg-weight 4",
            relu,
            vec![(-1.0, 1.0)],
            Parity::None,
            4.0,
            vec![0.0],
        ),
        c(
            "abs[-2,2] even",
            f64::abs,
            vec![(-2.0, 2.0)],
            Parity::Even,
            1.0,
            vec![0.0],
        ),
        c(
            "tanh[-4,4] odd",
            f64::tanh,
            vec![(-4.0, 4.0)],
            Parity::Odd,
            1.0,
            vec![],
        ),
        c(
            "tanh[-2,-0.5]u[0.3,1]",
            f64::tanh,
            vec![(-2.0, -0.5), (0.3, 1.0)],
            Parity::None,
            1.0,
            vec![],
        ),
        c(
            "sigmoid[-8,8]",
            sigmoid,
            vec![(-8.0, 8.0)],
            Parity::None,
            1.0,
            vec![],
        ),
        c(
            "gelu[-8,8]",
            gelu,
            vec![(-8.0, 8.0)],
            Parity::None,
            1.0,
            vec![],
        ),
        c(
            "silu[-6,3]",
            silu,
            vec![(-6.0, 3.0)],
            Parity::None,
            1.0,
            vec![],
        ),
        c(
            "exp[-8,0]",
            f64::exp,
            vec![(-8.0, 0.0)],
            Parity::None,
            1.0,
            vec![],
        ),
        c(
            "sign[-1,-0.1]u[0.1,1] odd",
            sign,
            vec![(0.1, 1.0)],
            Parity::Odd,
            1.0,
            vec![],
        ),
        c(
            "relu6[-8,8]",
            clip6,
            vec![(-8.0, 8.0)],
            Parity::None,
            1.0,
            vec![0.0, 6.0],
        ),
        c(
            "sqrt[0.01,1]",
            f64::sqrt,
            vec![(0.01, 1.0)],
            Parity::None,
            1.0,
            vec![],
        ),
    ]
}

#[test]
fn every_minimax_fit_equioscillates() {
    let degrees = [3usize, 4, 5, 7, 8, 11, 15, 20, 27, 31];
    let mut checked = 0;
    for case in cases() {
        for &d in &degrees {
            // Parity fits need a degree of the matching parity to use all of it.
            let d = match case.parity {
                Parity::Odd if d % 2 == 0 => d + 1,
                Parity::Even if d % 2 == 1 => d + 1,
                _ => d,
            };
            let w = if case.neg_weight == 1.0 {
                Weight::Uniform
            } else {
                Weight::Sides {
                    negative: case.neg_weight,
                    positive: 1.0,
                }
            };
            let opts = RemezOptions {
                breakpoints: case.breakpoints.clone(),
                ..RemezOptions::default()
            };
            let m = minimax_with(&case.f, &case.intervals, d, w, case.parity, &opts)
                .unwrap_or_else(|e| panic!("{} degree {d}: {e}", case.name));
            if m.roundoff_limited {
                // Smooth function fitted to f64 resolution: nothing left to equioscillate.
                assert!(m.error < 1e-11, "{} degree {d}", case.name);
                continue;
            }
            // The full set (mirrored under a parity).
            let mut set = case.intervals.clone();
            if case.parity != Parity::None {
                set.extend(case.intervals.iter().map(|&(a, b)| (-b, -a)));
                set.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            let mut e = Vec::new();
            for &(a, b) in &set {
                let n = 1 << 15;
                let mut xs: Vec<f64> = (0..=n).map(|i| a + (b - a) * i as f64 / n as f64).collect();
                xs.extend(
                    case.breakpoints
                        .iter()
                        .copied()
                        .filter(|x| *x >= a && *x <= b),
                );
                xs.extend(m.extrema.iter().map(|p| p.0).filter(|x| *x >= a && *x <= b));
                xs.sort_by(f64::total_cmp);
                for x in xs {
                    let wx = if x < 0.0 { case.neg_weight } else { 1.0 };
                    let p = naive_series([m.series.a, m.series.b], &m.series.coeffs, x);
                    e.push((x, wx * (p - (case.f)(x))));
                }
            }
            let (count, emax) = alternations(&e);
            assert!(
                count >= d + 2,
                "{} degree {d}: {count} alternating extrema within 1% of {emax:.3e}, need {}",
                case.name,
                d + 2
            );
            assert!(
                (emax - m.error).abs() <= 1e-6 * emax + 1e-15,
                "{}: {emax} vs {}",
                case.name,
                m.error
            );
            checked += 1;
        }
    }
    println!("{checked} minimax fits equioscillate");
    assert!(checked >= 100);
}
