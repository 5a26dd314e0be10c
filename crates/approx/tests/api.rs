//! The public API: errors are one line and name the value; JSON has the documented keys; shaping
//! options do what they say.

use pannc_approx::*;

#[test]
fn bad_requests_are_errors_not_panics() {
    let s = Shaping::default;
    let e = Function::parse("softmax").unwrap_err().to_string();
    assert!(e.contains("softmax") && !e.contains('\n'));
    let e = approximate(
        Function::Relu,
        Method::Composite,
        Budget::Alpha(40),
        (-1.0, 1.0),
        s(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("40"));
    let e = approximate(
        Function::Relu,
        Method::Minimax,
        Budget::Degree(100_000),
        (-1.0, 1.0),
        s(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("100000"));
    for dom in [
        (1.0, 1.0),
        (2.0, -2.0),
        (f64::NAN, 1.0),
        (0.0, f64::INFINITY),
    ] {
        assert!(approximate(Function::Relu, Method::Minimax, Budget::Degree(7), dom, s()).is_err());
    }
    assert!(approximate(
        Function::Gelu,
        Method::Composite,
        Budget::Alpha(8),
        (-1.0, 1.0),
        s()
    )
    .is_err());
    assert!(approximate(
        Function::Relu,
        Method::Composite,
        Budget::Degree(8),
        (-1.0, 1.0),
        s()
    )
    .is_err());
    // A precision no single polynomial reaches is refused with a hint, quickly.
    let e = approximate(
        Function::Relu,
        Method::Minimax,
        Budget::Alpha(14),
        (-1.0, 1.0),
        s(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("composite"), "{e}");
}

#[test]
fn json_has_the_documented_keys_and_reevaluates() {
    let ap = approximate(
        Function::Relu,
        Method::Composite,
        Budget::Alpha(6),
        (-1.0, 1.0),
        Shaping::default(),
    )
    .unwrap();
    let v = serde_json::to_value(&ap).unwrap();
    for k in [
        "function",
        "method",
        "domain",
        "degrees",
        "depth",
        "ct_mults",
        "max_error",
        "stages",
        "combine",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["function"], "relu");
    assert_eq!(v["method"], "composite");
    assert_eq!(v["combine"], "relu");
    let stages = v["stages"].as_array().unwrap();
    assert_eq!(stages.len(), ap.degrees.len());
    for st in stages {
        assert_eq!(st["basis"], "chebyshev");
        let n = st["coefficients"].as_array().unwrap().len();
        assert_eq!(st["degree"].as_u64().unwrap() as usize + 1, n);
    }
    // Re-evaluate from the JSON alone.
    let x = 0.37;
    let mut q = x;
    for st in stages {
        let d: Vec<f64> = st["domain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let c: Vec<f64> = st["coefficients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        q = ChebSeries::new(d[0], d[1], c).unwrap().eval(q);
    }
    assert!((x * (1.0 + q) / 2.0 - ap.eval(x)).abs() < 1e-15);
}

#[test]
fn alpha_budget_picks_the_smallest_degree() {
    let ap = approximate(
        Function::Tanh,
        Method::Minimax,
        Budget::Alpha(12),
        (-4.0, 4.0),
        Shaping::default(),
    )
    .unwrap();
    let d = ap.degrees[0];
    assert!(ap.max_error <= 2f64.powi(-12));
    // One degree less (of the same parity class the fit uses) misses the target.
    let worse = approximate(
        Function::Tanh,
        Method::Minimax,
        Budget::Degree(d - 2),
        (-4.0, 4.0),
        Shaping::default(),
    )
    .unwrap();
    assert!(worse.max_error > 2f64.powi(-12), "degree {d}");
    for m in [Method::Chebyshev, Method::Lsq] {
        let ap = approximate(
            Function::Sigmoid,
            m,
            Budget::Alpha(10),
            (-8.0, 8.0),
            Shaping::default(),
        )
        .unwrap();
        assert!(ap.max_error <= 2f64.powi(-10), "{m:?}");
    }
    let ap = approximate(
        Function::Gelu,
        Method::Minimax,
        Budget::Depth(5),
        (-8.0, 8.0),
        Shaping::default(),
    )
    .unwrap();
    assert_eq!(ap.degrees, vec![31]);
    assert_eq!(ap.depth, 5);
}

#[test]
fn shaping_negative_side() {
    let dom = (-1.0, 1.0);
    // Weighted minimax: errors on x < 0 are ~4× smaller than on x ≥ 0.
    let sh = Shaping {
        negative_weight: 4.0,
        ..Shaping::default()
    };
    let ap = approximate(Function::Relu, Method::Minimax, Budget::Degree(15), dom, sh).unwrap();
    let side = |neg: bool| {
        (0..=20000)
            .map(|i| -1.0 + 2.0 * i as f64 / 20000.0)
            .filter(|x| (*x < 0.0) == neg)
            .map(|x| (ap.eval(x) - ap.reference(x)).abs())
            .fold(0.0f64, f64::max)
    };
    let (en, ep) = (side(true), side(false));
    assert!((4.0 * en - ep).abs() < 0.02 * ep, "neg {en} pos {ep}");
    // One-sided least squares: p ≥ relu on the negative samples.
    let sh = Shaping {
        negative_sign: Some(ErrorSign::Above),
        ..Shaping::default()
    };
    let ap = approximate(Function::Relu, Method::Lsq, Budget::Degree(15), dom, sh).unwrap();
    // The constraint holds on the sample points (default: 4096 equally spaced points)...
    for i in 0..2048 {
        let x = -1.0 + 2.0 * i as f64 / 4095.0;
        assert!(ap.eval(x) - ap.reference(x) >= -1e-9, "x = {x}");
    }
    // ...and between them only tiny dips remain.
    for i in 0..10000 {
        let x = -1.0 + i as f64 / 10000.0;
        assert!(
            ap.eval(x) - ap.reference(x) >= -1e-3 * ap.max_error,
            "x = {x}"
        );
    }
    // Zero mean under a calibrated distribution (Gaussian-like activation histogram).
    let samples: Vec<(f64, f64)> = (0..=4000)
        .map(|i| {
            let x = -1.0 + 2.0 * i as f64 / 4000.0;
            (x, (-8.0 * (x + 0.1) * (x + 0.1)).exp())
        })
        .collect();
    let req = |zero_mean| Request {
        function: Function::Relu,
        method: Method::Lsq,
        budget: Budget::Degree(15),
        domain: dom,
        shaping: Shaping {
            negative_zero_mean: zero_mean,
            ..Shaping::default()
        },
        samples: Some(&samples),
        sign_gap: None,
        weight: None,
    };
    let mean_neg = |ap: &Approximation| {
        let (s, w) = samples
            .iter()
            .filter(|p| p.0 < 0.0)
            .fold((0.0, 0.0), |(s, w), &(x, wx)| {
                (s + wx * (ap.eval(x) - ap.reference(x)), w + wx)
            });
        s / w
    };
    let plain = approximate_with(&req(false)).unwrap();
    let shaped = approximate_with(&req(true)).unwrap();
    assert!(mean_neg(&shaped).abs() < 1e-12, "{}", mean_neg(&shaped));
    assert!(mean_neg(&plain).abs() > 1e3 * mean_neg(&shaped).abs());
    // Minimax refuses constraints it cannot honour.
    let sh = Shaping {
        negative_zero_mean: true,
        ..Shaping::default()
    };
    assert!(approximate(Function::Relu, Method::Minimax, Budget::Degree(15), dom, sh).is_err());
}

#[test]
fn monomial_conversion_warns_past_degree_45() {
    let ap = approximate(
        Function::Relu,
        Method::Minimax,
        Budget::Degree(59),
        (-1.0, 1.0),
        Shaping::default(),
    )
    .unwrap();
    assert!(ap.notes.iter().any(|n| n.contains("ill-conditioned")));
    let m = ap.series[0].to_monomial();
    assert!(m.warning.is_some() && m.condition > 1e8);
    let ap = approximate(
        Function::Relu,
        Method::Minimax,
        Budget::Degree(7),
        (-1.0, 1.0),
        Shaping::default(),
    )
    .unwrap();
    assert!(ap.series[0].to_monomial().warning.is_none());
}
