//! Is f64 enough? Measured, not assumed: the f64 Clenshaw evaluation of high-degree minimax
//! results is compared with a double-double evaluation, and the Remez levelled error with the
//! measured one.

use pannc_approx::*;

fn check(name: &str, s: &ChebSeries, fit_error: f64) {
    let mut diff = 0.0f64;
    for i in 0..=20000 {
        let t = -1.0 + 2.0 * i as f64 / 20000.0;
        let x = s.from_t(t);
        diff = diff.max((s.eval(x) - s.eval_dd(x)).abs());
    }
    println!("{name}: f64 vs double-double evaluation differ by {diff:.2e}; fit error {fit_error:.3e} (ratio {:.1e})", diff / fit_error);
    assert!(diff < 1e-12, "{name}: {diff}");
    assert!(
        diff < 1e-8 * fit_error,
        "{name}: rounding {diff} is not negligible next to {fit_error}"
    );
}

#[test]
fn f64_is_enough_up_to_degree_511() {
    for d in [255usize, 511] {
        let m = minimax(
            &|x: f64| x.abs() / 2.0,
            &[(-1.0, 1.0)],
            d - 1,
            Weight::Uniform,
            Parity::Even,
        )
        .unwrap();
        assert!(m.converged);
        // Levelling reached: the lower bound |h| and the achieved error agree to 1e-6.
        assert!(
            (m.error - m.levelled) / m.error < 1e-6,
            "{} vs {}",
            m.error,
            m.levelled
        );
        check(&format!("|x|/2 degree {d}"), &m.series, m.error);
    }
    let m = minimax(
        &|x: f64| x.signum(),
        &[(-1.0, -1e-3), (1e-3, 1.0)],
        255,
        Weight::Uniform,
        Parity::Odd,
    )
    .unwrap();
    check("sign gap 1e-3 degree 255", &m.series, m.error);
    let m = minimax(
        &|x: f64| Function::Gelu.eval(x),
        &[(-8.0, 8.0)],
        31,
        Weight::Uniform,
        Parity::None,
    )
    .unwrap();
    check("gelu [-8,8] degree 31", &m.series, m.error);
}
