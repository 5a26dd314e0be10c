//! egg runs on circuits: every run has explicit limits and reports its stop reason.

use std::time::Duration;

use pannc_eqsat::{optimize, optimize_with, Limits, Report, RuleSet, StopReason};
use pannc_fhe::{
    check_json, clenshaw, depth_lower_bound, plan_chebyshev, Circuit, CircuitBuilder, Interval,
    Output, PlanOptions,
};

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

fn finish(b: CircuitBuilder, y: pannc_fhe::ValueId) -> Circuit {
    b.finish(
        vec![Output {
            name: "y".into(),
            value: y,
        }],
        None,
    )
    .unwrap()
}

/// Horner form of Σ c_k x^k: depth = degree.
fn horner(c: &[f64]) -> Circuit {
    let mut b = CircuitBuilder::new(format!("horner_{}", c.len() - 1));
    let x = b.input("x").unwrap();
    let d = c.len() - 1;
    let mut acc = b.mul_const(x, c[d]);
    acc = b.add_const(acc, c[d - 1]);
    for k in (0..d - 1).rev() {
        acc = b.mul(acc, x);
        acc = b.add_const(acc, c[k]);
    }
    finish(b, acc)
}

/// The run respected its limits and said why it stopped.
fn assert_within(limits: &Limits, r: &Report) {
    eprintln!("{r}");
    assert!(r.iterations <= limits.iter_limit, "{r}");
    // egg checks the node and time limits between iterations; one iteration can overshoot a little.
    assert!(
        r.seconds <= limits.time_limit.as_secs_f64() * 2.0 + 1.0,
        "{r}"
    );
    match &r.stop_reason {
        StopReason::Saturated => {}
        StopReason::IterationLimit(n) => assert_eq!(*n, limits.iter_limit),
        // egg reports the e-graph size that tripped the limit.
        StopReason::NodeLimit(n) => assert!(*n > limits.node_limit),
        StopReason::TimeLimit(s) => assert!((*s - limits.time_limit.as_secs_f64()).abs() < 1e-9),
        StopReason::Other(o) => panic!("unexpected stop reason {o}"),
    }
    assert!(!r.stop_reason.to_string().is_empty());
}

fn assert_same_function(a: &Circuit, b: &Circuit, lo: f64, hi: f64) {
    let scale = (0..=200)
        .map(|i| a.eval(&[lo + (hi - lo) * i as f64 / 200.0]).unwrap()[0].abs())
        .fold(1.0f64, f64::max);
    for i in 0..=200 {
        let x = lo + (hi - lo) * i as f64 / 200.0;
        let (ya, yb) = (a.eval(&[x]).unwrap()[0], b.eval(&[x]).unwrap()[0]);
        assert!((ya - yb).abs() <= 1e-9 * scale, "at {x}: {ya} vs {yb}");
    }
    // The result is a valid document for the independent checker.
    let r = check_json(&b.to_json().unwrap()).unwrap();
    assert!(r.is_consistent(), "{:?}", r.mismatches);
    assert_eq!(r.depth, b.depth);
}

#[test]
fn horner_degree_7_reaches_optimal_depth() {
    let c = rand_vec(1, 8);
    let h = horner(&c);
    assert_eq!(h.depth, 7);
    let limits = Limits {
        node_limit: 60_000,
        iter_limit: 30,
        time_limit: Duration::from_secs(20),
    };
    let (o, r) = optimize(&h, &limits).unwrap();
    assert_within(&limits, &r);
    assert_eq!(r.lower_bound, Some(3));
    assert_eq!(r.levels_after, 3, "{r}");
    assert!(r.proved_optimal());
    assert_same_function(&h, &o, -1.0, 1.0);
}

#[test]
fn horner_degree_15_reaches_optimal_depth_with_arith_rules() {
    let c = rand_vec(2, 16);
    let h = horner(&c);
    let limits = Limits {
        node_limit: 30_000,
        iter_limit: 40,
        time_limit: Duration::from_secs(40),
    };
    let arith = RuleSet {
        arith: true,
        scalar: false,
        power: false,
        chebyshev: false,
    };
    let (o, r) = optimize_with(&h, &limits, &arith).unwrap();
    assert_within(&limits, &r);
    assert_eq!(r.lower_bound, Some(4));
    assert_eq!(r.levels_after, 4, "{r}");
    assert!(r.proved_optimal());
    assert_same_function(&h, &o, -1.0, 1.0);
}

#[test]
fn planner_circuits_are_proved_optimal() {
    let limits = Limits {
        node_limit: 20_000,
        iter_limit: 10,
        time_limit: Duration::from_secs(10),
    };
    for d in [15usize, 27, 63] {
        let c = rand_vec(10 + d as u64, d + 1);
        let p = plan_chebyshev(&c, Interval::UNIT, &PlanOptions::default()).unwrap();
        let (o, r) = optimize(&p, &limits).unwrap();
        assert_within(&limits, &r);
        assert_eq!(r.levels_before, pannc_fhe::optimal_depth(d));
        assert_eq!(r.levels_after, r.levels_before);
        assert!(r.proved_optimal(), "degree {d}: {r}");
        assert!(r.ct_mults_after <= r.ct_mults_before);
        // The e-graph never claims a level below the semantic bound (soundness of rules + analysis).
        assert!(r.egraph_best_level >= r.lower_bound.unwrap(), "{r}");
        assert_same_function(&p, &o, -1.0, 1.0);
        for i in 0..=50 {
            let x = -1.0 + i as f64 / 25.0;
            assert!((o.eval(&[x]).unwrap()[0] - clenshaw(&c, x)).abs() < 1e-9 * c.len() as f64);
        }
    }
}

#[test]
fn trailing_scalar_is_absorbed_into_the_polynomial() {
    // p (degree 15, 4 levels) followed by ×0.37: 5 levels as written, 4 after egg.
    let c = rand_vec(3, 16);
    let p = plan_chebyshev(&c, Interval::UNIT, &PlanOptions::default()).unwrap();
    let mut b = CircuitBuilder::from_circuit(&p).unwrap();
    let y = b.mul_const(p.outputs[0].value, 0.37);
    let scaled = finish(b, y);
    assert_eq!(scaled.depth, 5);
    assert_eq!(depth_lower_bound(&scaled), Some(4));
    let limits = Limits {
        node_limit: 30_000,
        iter_limit: 12,
        time_limit: Duration::from_secs(10),
    };
    let set = RuleSet {
        arith: false,
        power: false,
        chebyshev: false,
        scalar: true,
    };
    let (o, r) = optimize_with(&scaled, &limits, &set).unwrap();
    assert_within(&limits, &r);
    assert_eq!(r.levels_after, 4, "{r}");
    assert!(r.proved_optimal());
    assert_same_function(&scaled, &o, -1.0, 1.0);
}

#[test]
fn power_rules_balance_a_chain() {
    // 0.3·(((x·x)·x)·x): 4 levels; x^4 with a non-integer leading coefficient needs 3.
    let mut b = CircuitBuilder::new("chain");
    let x = b.input("x").unwrap();
    let mut acc = x;
    for _ in 0..3 {
        acc = b.mul(acc, x);
    }
    let y = b.mul_const(acc, 0.3);
    let chain = finish(b, y);
    assert_eq!(chain.depth, 4);
    let limits = Limits {
        node_limit: 10_000,
        iter_limit: 15,
        time_limit: Duration::from_secs(5),
    };
    let (o, r) = optimize(&chain, &limits).unwrap();
    assert_within(&limits, &r);
    assert_eq!(r.lower_bound, Some(3));
    assert_eq!(r.levels_after, 3, "{r}");
    assert_same_function(&chain, &o, -1.0, 1.0);
}

#[test]
fn chebyshev_product_identity_saves_multiplications() {
    // T_3·T_5 computed from its factors: 5 ct×ct. T_3·T_5 = (T_8 + T_2)/2 needs 3.
    let mut b = CircuitBuilder::new("t3t5");
    let x = b.input("x").unwrap();
    let t = |b: &mut CircuitBuilder,
             p: pannc_fhe::ValueId,
             q: pannc_fhe::ValueId,
             d: Option<pannc_fhe::ValueId>| {
        let m = b.mul(p, q);
        let m2 = b.mul_int(m, 2);
        match d {
            Some(d) => b.sub(m2, d),
            None => b.add_const(m2, -1.0),
        }
    };
    let t2 = t(&mut b, x, x, None);
    let t3 = t(&mut b, t2, x, Some(x));
    let t4 = t(&mut b, t2, t2, None);
    let t5 = t(&mut b, t4, x, Some(t3));
    let y = b.mul(t3, t5);
    let prod = finish(b, y);
    assert_eq!(prod.stats.ct_ct_mults, 5);
    let limits = Limits {
        node_limit: 20_000,
        iter_limit: 8,
        time_limit: Duration::from_secs(10),
    };
    let set = RuleSet {
        arith: false,
        power: false,
        chebyshev: true,
        scalar: true,
    };
    let (o, r) = optimize_with(&prod, &limits, &set).unwrap();
    assert_within(&limits, &r);
    assert!(r.ct_mults_after < 5, "{r}");
    assert!(r.levels_after <= r.levels_before);
    assert_same_function(&prod, &o, -1.0, 1.0);
}

#[test]
fn bad_limits_and_inputs_are_errors() {
    let p = plan_chebyshev(&[0.1, 0.2, 0.3], Interval::UNIT, &PlanOptions::default()).unwrap();
    let zero = Limits {
        node_limit: 0,
        ..Limits::default()
    };
    assert!(optimize(&p, &zero).is_err());
    let mut bad = p.clone();
    bad.depth += 1;
    assert!(optimize(&bad, &Limits::default()).is_err());
}
