//! Planner acceptance tests: depth (via the independent checker on the JSON),
//! ct×ct counts against a stated Paterson–Stockmeyer-type bound, and plaintext
//! equality with Clenshaw.

use pannc_fhe::{
    chebyshev_interpolant, check_json, clenshaw, clenshaw_on, depth_lower_bound, optimal_depth,
    plan_chebyshev, plan_composite, Circuit, Combine, InputMode, Interval, PlanOptions, Stage,
};

const DEGREES: [usize; 11] = [3, 5, 7, 15, 27, 31, 59, 63, 119, 127, 255];

/// Deterministic pseudo-random numbers in [-1, 1) (SplitMix64).
fn rand_vec(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// The bound used for "within the Paterson–Stockmeyer bound":
/// `PS(d) + ⌈log2(d+1)⌉` where `PS(d) = min_l 2^l + m − l − 3 + ⌈(d+1)/2^l⌉`
/// (`m = ⌈log2(d+1)⌉`) is the non-scalar multiplication count of the Chebyshev
/// baby-step/giant-step Paterson–Stockmeyer variant (Bossuat, Mouchet,
/// Troncoso-Pastoriza, Hubaux, Eurocrypt 2021, Alg. 2). That count reaches
/// `m` levels only when leaf scalars are free; here a non-integer scalar costs
/// a level, which forces the leading coefficient down a chain of at most one
/// product per level (see the module doc of `plan.rs`), hence the `+m`.
fn ps_bound(d: usize) -> u32 {
    let m = optimal_depth(d) as i64;
    let ps = (1..m.max(2))
        .map(|l| (1i64 << l) + m - l - 3 + ((d as i64 + 1) + (1 << l) - 1) / (1 << l))
        .min()
        .unwrap();
    (ps + m) as u32
}

/// Textbook Chebyshev baby-step/giant-step count (no depth optimality):
/// `min_l (2^l − 1) + (m − 1 − l) + (⌈(d+1)/2^l⌉ − 1)`; only used to print.
fn bsgs_count(d: usize) -> u32 {
    let m = optimal_depth(d) as i64;
    (1..=m)
        .map(|l| {
            (1i64 << l) - 1 + (m - 1 - l).max(0) + ((d as i64 + 1) + (1 << l) - 1) / (1 << l) - 1
        })
        .min()
        .unwrap() as u32
}

fn check_plain(
    circuit: &Circuit,
    coeffs: &[f64],
    interval: Interval,
    map_input: impl Fn(f64) -> f64,
) {
    let scale: f64 = coeffs.iter().map(|c| c.abs()).sum::<f64>().max(1.0);
    let n = 2001;
    let mut worst: f64 = 0.0;
    for i in 0..n {
        let x = interval.lo + (interval.hi - interval.lo) * i as f64 / (n - 1) as f64;
        let got = circuit.eval(&[map_input(x)]).unwrap()[0];
        let want = clenshaw_on(coeffs, interval, x);
        worst = worst.max((got - want).abs() / scale);
    }
    assert!(
        worst < 1e-9,
        "{}: relative error {worst:e} vs Clenshaw",
        circuit.name
    );
}

fn checked_depth(circuit: &Circuit) -> (u32, u32) {
    let json = circuit.to_json().unwrap();
    let r = check_json(&json).unwrap();
    assert!(r.is_consistent(), "{}: {:?}", circuit.name, r.mismatches);
    // Round trip through the typed reader too.
    assert_eq!(&Circuit::from_json(&json).unwrap(), circuit);
    (r.depth, r.ct_ct_mults)
}

#[test]
fn single_polynomials_hit_optimal_depth_and_match_clenshaw() {
    let opts = PlanOptions::default();
    let mut table = vec![];
    for (di, &d) in DEGREES.iter().enumerate() {
        let dense = rand_vec(100 + di as u64, d + 1);
        let mut odd = rand_vec(200 + di as u64, d + 1);
        for k in (0..=d).step_by(2) {
            odd[k] = 0.0;
        }
        let relu = chebyshev_interpolant(|x| x.max(0.0), d);
        let mut row = vec![d.to_string()];
        for (kind, c) in [("dense", &dense), ("odd", &odd), ("relu", &relu)] {
            // ReLU interpolants can have (numerically) zero top coefficients.
            let deg = c.iter().rposition(|&v| v != 0.0).unwrap();
            let circuit = plan_chebyshev(c, Interval::UNIT, &opts).unwrap();
            let (depth, mults) = checked_depth(&circuit);
            assert_eq!(depth, optimal_depth(deg), "{kind} degree {deg}: depth");
            assert!(
                mults <= ps_bound(deg),
                "{kind} degree {deg}: {mults} ct×ct > bound {}",
                ps_bound(deg)
            );
            check_plain(&circuit, c, Interval::UNIT, |x| x);
            // The semantic lower bound (degree of the denoted polynomial) meets the plan.
            let lb = depth_lower_bound(&circuit).unwrap();
            assert!(
                lb <= depth,
                "{kind} degree {deg}: bound {lb} > depth {depth}"
            );
            if kind != "relu" {
                assert_eq!(lb, depth, "{kind} degree {deg}");
            }
            row.push(format!("{kind} {mults}"));
        }
        row.push(format!(
            "bound {} textbook-bsgs {}",
            ps_bound(d),
            bsgs_count(d)
        ));
        table.push(row.join(" | "));
    }
    eprintln!("degree | ct×ct ...\n{}", table.join("\n"));
}

#[test]
fn every_degree_up_to_300_and_large_ones_meet_depth_and_bound() {
    let opts = PlanOptions {
        max_degree: 4096,
        ..PlanOptions::default()
    };
    let mut worst = (0i64, 0usize);
    for d in (1..=300).chain([511, 512, 1023, 2047, 4095, 4096]) {
        let c = rand_vec(1000 + d as u64, d + 1);
        let circuit = plan_chebyshev(&c, Interval::UNIT, &opts).unwrap();
        let r = check_json(&circuit.to_json().unwrap()).unwrap();
        assert!(r.is_consistent());
        assert_eq!(r.depth, optimal_depth(d), "degree {d}");
        assert!(
            r.ct_ct_mults <= ps_bound(d),
            "degree {d}: {} > {}",
            r.ct_ct_mults,
            ps_bound(d)
        );
        let over = r.ct_ct_mults as i64 - bsgs_count(d) as i64;
        if over > worst.0 {
            worst = (over, d);
        }
    }
    eprintln!(
        "largest excess over the textbook BSGS count: {} at degree {}",
        worst.0, worst.1
    );
}

#[test]
fn odd_polynomials_use_fewer_multiplications_than_dense() {
    let opts = PlanOptions::default();
    for &d in &[15usize, 31, 63, 127, 255] {
        let dense = rand_vec(7, d + 1);
        let mut odd = dense.clone();
        for k in (0..=d).step_by(2) {
            odd[k] = 0.0;
        }
        let cd = plan_chebyshev(&dense, Interval::UNIT, &opts).unwrap();
        let co = plan_chebyshev(&odd, Interval::UNIT, &opts).unwrap();
        assert_eq!(co.plan.as_ref().unwrap().stages[0].parity, "odd");
        assert!(co.stats.ct_ct_mults <= cd.stats.ct_ct_mults, "degree {d}");
        assert!(
            co.stats.ct_const_mults < cd.stats.ct_const_mults,
            "degree {d}"
        );
        assert!(co.ops.len() < cd.ops.len(), "degree {d}");
        if d >= 31 {
            assert!(co.stats.ct_ct_mults < cd.stats.ct_ct_mults, "degree {d}");
        }
    }
}

#[test]
fn extra_level_trades_depth_for_multiplications() {
    for &d in &[31usize, 63, 127, 255] {
        let c = rand_vec(11, d + 1);
        let tight = plan_chebyshev(&c, Interval::UNIT, &PlanOptions::default()).unwrap();
        let loose = plan_chebyshev(
            &c,
            Interval::UNIT,
            &PlanOptions {
                extra_levels: 1,
                ..PlanOptions::default()
            },
        )
        .unwrap();
        assert_eq!(checked_depth(&loose).0, optimal_depth(d) + 1);
        assert!(
            loose.stats.ct_ct_mults <= tight.stats.ct_ct_mults,
            "degree {d}"
        );
        assert!(loose.stats.ct_ct_mults <= bsgs_count(d), "degree {d}");
        check_plain(&loose, &c, Interval::UNIT, |x| x);
    }
}

#[test]
fn input_normalisation_accounting() {
    let d = 27;
    let c = rand_vec(3, d + 1);
    // Non-integer map (2/(b-a) = 0.25): normalised input costs nothing, in-circuit map one level.
    let iv = Interval::new(-3.0, 5.0).unwrap();
    let norm = plan_chebyshev(&c, iv, &PlanOptions::default()).unwrap();
    assert_eq!(checked_depth(&norm).0, optimal_depth(d));
    let pa = norm.inputs[0]
        .producer_affine
        .expect("producer must fold the map");
    check_plain(&norm, &c, iv, |x| pa.apply(x));
    let inc = plan_chebyshev(
        &c,
        iv,
        &PlanOptions {
            input: InputMode::AffineInCircuit,
            ..PlanOptions::default()
        },
    )
    .unwrap();
    assert_eq!(checked_depth(&inc).0, optimal_depth(d) + 1);
    assert_eq!(inc.plan.as_ref().unwrap().input_map_levels, 1);
    check_plain(&inc, &c, iv, |x| x);
    // Integer map (2/(b-a) = 2 on [0,1]): free even in the circuit.
    let iv01 = Interval::new(0.0, 1.0).unwrap();
    let inc01 = plan_chebyshev(
        &c,
        iv01,
        &PlanOptions {
            input: InputMode::AffineInCircuit,
            ..PlanOptions::default()
        },
    )
    .unwrap();
    assert_eq!(checked_depth(&inc01).0, optimal_depth(d));
    check_plain(&inc01, &c, iv01, |x| x);
}

fn composite_reference(stages: &[Stage], combine: Combine, x: f64) -> f64 {
    let mut s = x;
    for st in stages {
        s = clenshaw_on(&st.coeffs, st.interval, s);
    }
    match combine {
        Combine::None => s,
        Combine::Relu => x * (1.0 + s) / 2.0,
        Combine::Abs => x * s,
    }
}

fn odd_stage(seed: u64, d: usize, iv: Interval) -> Stage {
    // Small odd coefficients keep every stage's output inside the next interval.
    let mut c = rand_vec(seed, d + 1);
    for (k, v) in c.iter_mut().enumerate() {
        *v = if k % 2 == 0 {
            0.0
        } else {
            *v * 0.9 / (d as f64)
        };
    }
    c[1] = 0.5;
    Stage {
        coeffs: c,
        interval: iv,
    }
}

#[test]
fn composite_relu_depths() {
    let unit = Interval::UNIT;
    let wide = Interval::new(-1.25, 1.25).unwrap();
    for (degrees, want) in [
        (vec![15usize, 15], 9u32),
        (vec![15, 15, 27], 14),
        (vec![7, 15], 8),
        (vec![5], 4),
    ] {
        let stages: Vec<Stage> = degrees
            .iter()
            .enumerate()
            .map(|(i, &d)| odd_stage(40 + i as u64, d, if i == 0 { unit } else { wide }))
            .collect();
        let sum: u32 = degrees.iter().map(|&d| optimal_depth(d)).sum();
        let c = plan_composite(&stages, Combine::Relu, &PlanOptions::default()).unwrap();
        let (depth, _) = checked_depth(&c);
        assert_eq!(depth, sum + 1, "{degrees:?}");
        assert!(depth <= want, "{degrees:?}: depth {depth} > {want}");
        let info = c.plan.as_ref().unwrap();
        assert_eq!(info.combine_levels, 1);
        for i in 0..=400 {
            let x = -1.0 + i as f64 / 200.0;
            let got = c.eval(&[x]).unwrap()[0];
            let want = composite_reference(&stages, Combine::Relu, x);
            assert!(
                (got - want).abs() < 1e-11,
                "{degrees:?} at {x}: {got} vs {want}"
            );
        }
        // Without the combine: exactly the sum of stage depths.
        let s = plan_composite(&stages, Combine::None, &PlanOptions::default()).unwrap();
        assert_eq!(checked_depth(&s).0, sum);
    }
}

#[test]
fn composite_on_scaled_input_folds_the_map() {
    // ReLU on [-4, 4]: normalised input u = x/4; x = 4u is an integer scale (free).
    let iv = Interval::new(-4.0, 4.0).unwrap();
    let stages = vec![
        odd_stage(5, 15, iv),
        odd_stage(6, 15, Interval::new(-1.25, 1.25).unwrap()),
    ];
    for mode in [InputMode::Normalised, InputMode::AffineInCircuit] {
        let c = plan_composite(
            &stages,
            Combine::Relu,
            &PlanOptions {
                input: mode,
                ..PlanOptions::default()
            },
        )
        .unwrap();
        let extra = if mode == InputMode::AffineInCircuit {
            1
        } else {
            0
        };
        assert_eq!(checked_depth(&c).0, 9 + extra, "{mode:?}");
        for i in 0..=200 {
            let x = -4.0 + i as f64 / 25.0;
            let input = match mode {
                InputMode::Normalised => c.inputs[0].producer_affine.unwrap().apply(x),
                InputMode::AffineInCircuit => x,
            };
            let got = c.eval(&[input]).unwrap()[0];
            let want = composite_reference(&stages, Combine::Relu, x);
            assert!(
                (got - want).abs() < 1e-10,
                "{mode:?} at {x}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn bad_input_is_an_error() {
    let o = PlanOptions::default();
    assert!(plan_chebyshev(&[], Interval::UNIT, &o).is_err());
    assert!(plan_chebyshev(&[1.0, f64::NAN], Interval::UNIT, &o).is_err());
    assert!(plan_chebyshev(&[1.0, f64::INFINITY], Interval::UNIT, &o).is_err());
    assert!(plan_chebyshev(&[1.0, 2.0], Interval { lo: 1.0, hi: 0.0 }, &o).is_err());
    let big = vec![0.5; 5000];
    assert!(plan_chebyshev(&big, Interval::UNIT, &o).is_err());
    let huge = PlanOptions {
        max_degree: usize::MAX,
        ..PlanOptions::default()
    };
    assert!(plan_chebyshev(&[1.0, 2.0], Interval::UNIT, &huge).is_err());
    assert!(plan_composite(&[], Combine::Relu, &o).is_err());
    let constant = Stage {
        coeffs: vec![0.3],
        interval: Interval::UNIT,
    };
    assert!(plan_composite(&[constant.clone(), constant], Combine::None, &o).is_err());
}

#[test]
fn degenerate_polynomials() {
    let o = PlanOptions::default();
    // Constant: depth 0, still a ciphertext output.
    let c = plan_chebyshev(&[0.7, 0.0, 0.0], Interval::UNIT, &o).unwrap();
    assert_eq!(checked_depth(&c).0, 0);
    assert_eq!(c.eval(&[0.3]).unwrap()[0], 0.7);
    // Linear: one level for the non-integer scalar, none for an integer one.
    let c = plan_chebyshev(&[0.1, 0.5], Interval::UNIT, &o).unwrap();
    assert_eq!(checked_depth(&c).0, 1);
    let c = plan_chebyshev(&[0.1, 3.0], Interval::UNIT, &o).unwrap();
    assert_eq!(checked_depth(&c).0, 0);
    // Trailing zeros do not count towards the degree.
    let c = plan_chebyshev(&[0.1, 0.5, 0.25, 0.0, 0.0, 0.0], Interval::UNIT, &o).unwrap();
    assert_eq!(checked_depth(&c).0, 2);
    assert!((c.eval(&[0.3]).unwrap()[0] - clenshaw(&[0.1, 0.5, 0.25], 0.3)).abs() < 1e-15);
}

#[test]
fn deterministic_output() {
    let c = rand_vec(9, 60);
    let a = plan_chebyshev(&c, Interval::UNIT, &PlanOptions::default()).unwrap();
    let b = plan_chebyshev(&c, Interval::UNIT, &PlanOptions::default()).unwrap();
    assert_eq!(a.to_json().unwrap(), b.to_json().unwrap());
}
