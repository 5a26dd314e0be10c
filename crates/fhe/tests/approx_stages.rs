//! Plans built from `pannc-approx`'s real minimax polynomials and composite-sign stages.

use pannc_approx::{
    composite_sign, composite_with_degrees, minimax_with, CompositeOptions, Parity, RemezOptions,
    SignTarget, Weight,
};
use pannc_fhe::{
    check_json, optimal_depth, plan_chebyshev, plan_composite, Combine, Interval, PlanOptions,
    Stage,
};

fn stages_of(series: &[pannc_approx::ChebSeries]) -> Vec<Stage> {
    series
        .iter()
        .map(|s| Stage {
            coeffs: s.coeffs.clone(),
            interval: Interval::new(s.a, s.b).unwrap(),
        })
        .collect()
}

fn relu_error(c: &pannc_fhe::Circuit) -> f64 {
    (0..=20_000)
        .map(|i| {
            let x = -1.0 + i as f64 / 10_000.0;
            (c.eval(&[x]).unwrap()[0] - x.max(0.0)).abs()
        })
        .fold(0.0, f64::max)
}

#[test]
fn minimax_relu_circuits_keep_the_minimax_error_at_optimal_depth() {
    for d in [15usize, 27, 59, 119] {
        let opts = RemezOptions {
            breakpoints: vec![0.0],
            ..RemezOptions::default()
        };
        let m = minimax_with(
            &|x: f64| x.max(0.0),
            &[(-1.0, 1.0)],
            d,
            Weight::Uniform,
            Parity::None,
            &opts,
        )
        .unwrap();
        let c = plan_chebyshev(&m.series.coeffs, Interval::UNIT, &PlanOptions::default()).unwrap();
        let r = check_json(&c.to_json().unwrap()).unwrap();
        assert!(r.is_consistent());
        assert_eq!(r.depth, optimal_depth(d), "degree {d}");
        let e = relu_error(&c);
        eprintln!(
            "minimax ReLU degree {d}: depth {}, ct×ct {}, max error {e:.3e} (Remez {:.3e})",
            r.depth, r.ct_ct_mults, m.error
        );
        assert!(
            (e - m.error).abs() <= 1e-3 * m.error + 1e-12,
            "degree {d}: circuit {e} vs Remez {}",
            m.error
        );
        // Beats the 0.14/d rule of thumb's order of magnitude, i.e. it is a minimax fit, not an interpolant.
        assert!(e < 0.2 / d as f64, "degree {d}: {e}");
    }
}

#[test]
fn composite_relu_published_degree_sets_alpha_9_and_13() {
    for (alpha, degrees, want_depth) in
        [(9u32, vec![15usize, 15], 9u32), (13, vec![15, 15, 27], 14)]
    {
        let eps = 2f64.powi(-(alpha as i32));
        let (series, _) = composite_with_degrees(eps, &degrees).unwrap();
        let c =
            plan_composite(&stages_of(&series), Combine::Relu, &PlanOptions::default()).unwrap();
        let r = check_json(&c.to_json().unwrap()).unwrap();
        assert!(r.is_consistent());
        assert_eq!(r.depth, want_depth, "α={alpha} {degrees:?}");
        // The published sequences are used for their depth; whether they reach 2^-α depends on
        // the precision definition (approx's own DP choice is checked for error below).
        let e = relu_error(&c);
        eprintln!(
            "composite ReLU α={alpha} {degrees:?}: depth {}, ct×ct {}, max |err| {e:.3e} (2^-α = {eps:.3e})",
            r.depth, r.ct_ct_mults
        );
        // The circuit equals the composition evaluated by approx's own Clenshaw.
        for i in 0..=2000 {
            let x = -1.0 + i as f64 / 1000.0;
            let s = series.iter().fold(x, |v, p| p.eval(v));
            let want = x * (1.0 + s) / 2.0;
            assert!(
                (c.eval(&[x]).unwrap()[0] - want).abs() < 1e-10,
                "α={alpha} at {x}"
            );
        }
    }
}

#[test]
fn composite_sign_dp_choice_meets_the_design_depths() {
    // The approx DP picks its own degrees for the ReLU target; the planner must realise
    // Σ⌈log2(d_i+1)⌉ + 1 for them, within the design table (α=9: 9 levels, α=13: 14).
    for (alpha, max_depth) in [(9u32, 9u32), (13, 14)] {
        let comp = composite_sign(alpha, SignTarget::Relu, &CompositeOptions::default()).unwrap();
        let c = plan_composite(
            &stages_of(&comp.stages),
            Combine::Relu,
            &PlanOptions::default(),
        )
        .unwrap();
        let want: u32 = comp.degrees.iter().map(|&d| optimal_depth(d)).sum::<u32>() + 1;
        assert_eq!(c.depth, want, "α={alpha} {:?}", comp.degrees);
        assert!(
            c.depth <= max_depth,
            "α={alpha} {:?}: {}",
            comp.degrees,
            c.depth
        );
        let e = relu_error(&c);
        eprintln!(
            "approx DP α={alpha}: degrees {:?}, depth {}, ct×ct {}, max |err| {e:.3e}",
            comp.degrees, c.depth, c.stats.ct_ct_mults
        );
        assert!(e <= 1.1 * 2f64.powi(-(alpha as i32)));
    }
}
