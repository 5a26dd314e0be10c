//! Minimax ReLU on [-1, 1] at degrees 15, 27, 59, 119, checked by an independent evaluator on
//! 2^16 + 1 points against the design notes' bounds (≈ 0.14/d).

mod common;
use common::{grid, naive_series, relu};
use pannc_approx::*;

const CASES: [(usize, f64); 4] = [(15, 1.05e-2), (27, 5.6e-3), (59, 2.5e-3), (119, 1.25e-3)];

#[test]
fn minimax_relu_meets_the_bounds() {
    for (d, bound) in CASES {
        let ap = approximate(
            Function::Relu,
            Method::Minimax,
            Budget::Degree(d),
            (-1.0, 1.0),
            Shaping::default(),
        )
        .unwrap();
        assert_eq!(ap.stages.len(), 1);
        let st = &ap.stages[0];
        assert_eq!(st.degree, d);
        assert_eq!(st.basis, "chebyshev");
        let err = grid(-1.0, 1.0, (1 << 16) + 1)
            .map(|x| (naive_series(st.domain, &st.coefficients, x) - relu(x)).abs())
            .fold(0.0f64, f64::max);
        println!("relu minimax degree {d}: max error {err:.4e} (bound {bound:.2e}), depth {}, ct-mults {}", ap.depth, ap.ct_mults);
        assert!(err <= bound, "degree {d}: {err} > {bound}");
        // The library's own measurement agrees with the independent one.
        assert!(
            (ap.max_error - err).abs() <= 1e-3 * err,
            "{} vs {err}",
            ap.max_error
        );
        assert_eq!(ap.depth, poly_depth(d));
    }
}

#[test]
fn full_exchange_without_parity_finds_the_same_optimum() {
    // The general (no parity) exchange must handle the kink at 0 and land on the same error as
    // the even decomposition used by `approximate`.
    for (d, bound) in [(15usize, 1.05e-2), (27, 5.6e-3)] {
        let opts = RemezOptions {
            breakpoints: vec![0.0],
            ..RemezOptions::default()
        };
        let m = minimax_with(
            &relu,
            &[(-1.0, 1.0)],
            d,
            Weight::Uniform,
            Parity::None,
            &opts,
        )
        .unwrap();
        let err = grid(-1.0, 1.0, (1 << 16) + 1)
            .map(|x| (naive_series([m.series.a, m.series.b], &m.series.coeffs, x) - relu(x)).abs())
            .fold(0.0f64, f64::max);
        assert!(err <= bound, "degree {d}: {err}");
        assert!(m.converged);
        assert!(m.levelled <= err * (1.0 + 1e-9) && err <= m.levelled * 1.001);
    }
}
