//! `pannc approx` end to end: JSON that re-evaluates independently, hyphenated domains, one-line
//! errors, the plot.

use std::process::Command;

fn pannc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pannc"))
        .args(args)
        .output()
        .unwrap()
}

fn naive(domain: &[f64], c: &[f64], x: f64) -> f64 {
    let t = ((2.0 * x - domain[0] - domain[1]) / (domain[1] - domain[0])).clamp(-1.0, 1.0);
    c.iter()
        .enumerate()
        .map(|(k, ck)| ck * (k as f64 * t.acos()).cos())
        .sum()
}

#[test]
fn relu_alpha9_json_reevaluates() {
    let out = pannc(&["approx", "relu", "--alpha", "9", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["function"], "relu");
    assert_eq!(v["method"], "composite");
    assert_eq!(v["combine"], "relu");
    assert!(v["depth"].as_u64().unwrap() <= 9);
    let stages: Vec<(Vec<f64>, Vec<f64>)> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |k: &str| {
                s[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect::<Vec<f64>>()
            };
            (f("domain"), f("coefficients"))
        })
        .collect();
    let mut err = 0.0f64;
    for i in 0..=(1 << 16) {
        let x = -1.0 + 2.0 * i as f64 / (1 << 16) as f64;
        let q = stages.iter().fold(x, |y, (d, c)| naive(d, c, y));
        err = err.max((x * (1.0 + q) / 2.0 - x.max(0.0)).abs());
    }
    assert!(err <= 2f64.powi(-9), "{err}");
    assert!((err - v["max_error"].as_f64().unwrap()).abs() < 1e-3 * err);
}

#[test]
fn hyphenated_domain_and_plot() {
    let svg = std::env::temp_dir().join(format!("pannc-approx-{}.svg", std::process::id()));
    let out = pannc(&[
        "approx",
        "gelu",
        "--degree",
        "31",
        "--domain",
        "-8,8",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("gelu on [-8, 8]") && text.contains("depth 5"),
        "{text}"
    );
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.contains("<svg") && plot.contains("polyline"));
    let _ = std::fs::remove_file(svg);
}

#[test]
fn errors_are_one_line() {
    for args in [
        &["approx", "softmax"][..],
        &["approx", "relu", "--alpha", "99"],
        &["approx", "relu", "--degree", "99999"],
        &["approx", "relu", "--domain", "2,2"],
        &["approx", "relu", "--domain", "1,x"],
    ] {
        let out = pannc(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }
}

/// The transformer functions (inverse square root, exp, reciprocal) on given intervals: the
/// JSON's Chebyshev coefficients, re-evaluated here, give the reported max error, and the
/// relative error (what LayerNorm and softmax need) stays under the bound the degree buys.
#[test]
fn transformer_functions_json_reevaluate() {
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        fn(f64) -> f64,
        f64,
    );
    let cases: [Case; 3] = [
        ("invsqrt", "0.01,1", "31", |x| 1.0 / x.sqrt(), 1e-3),
        ("exp", "-4,4", "15", f64::exp, 1e-8),
        ("reciprocal", "0.05,1", "15", |x| 1.0 / x, 3e-3),
    ];
    for (name, domain, degree, f, rel_bound) in cases {
        let dom = format!("--domain={domain}");
        let out = pannc(&["approx", name, &dom, "--degree", degree, "--json"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["function"], name);
        let s = &v["stages"][0];
        let nums = |x: &serde_json::Value| -> Vec<f64> {
            x.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let (d, c) = (nums(&s["domain"]), nums(&s["coefficients"]));
        assert_eq!(c.len(), degree.parse::<usize>().unwrap() + 1);
        let (mut abs, mut rel) = (0.0f64, 0.0f64);
        let n = 1 << 16;
        for i in 0..=n {
            let x = d[0] + (d[1] - d[0]) * i as f64 / n as f64;
            let e = naive(&d, &c, x) - f(x);
            abs = abs.max(e.abs());
            rel = rel.max((e / f(x)).abs());
        }
        let reported = v["max_error"].as_f64().unwrap();
        assert!(
            (abs - reported).abs() <= 1e-6 * reported + 1e-15,
            "{name}: re-evaluated {abs:e}, reported {reported:e}"
        );
        assert!(rel <= rel_bound, "{name}: relative error {rel:e}");
        let note = format!("max relative error {rel:.3e}");
        assert!(
            v["notes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s.as_str().unwrap().starts_with(&note)),
            "{name}: {note} not in {}",
            v["notes"]
        );
    }
}

/// `--newton 1` after a reciprocal and an inverse square root: the reported error is that of
/// the step re-evaluated here, about the square of the polynomial's relative error, at the
/// step's levels and ct×ct multiplications.
#[test]
fn newton_steps_reevaluate() {
    type Step = fn(f64, f64) -> f64;
    type Case = (&'static str, &'static str, fn(f64) -> f64, Step, u64, u64);
    let cases: [Case; 2] = [
        (
            "reciprocal",
            "0.05,1",
            |x| 1.0 / x,
            |x, y| y * (2.0 - x * y),
            2,
            2,
        ),
        (
            "invsqrt",
            "0.01,1",
            |x| 1.0 / x.sqrt(),
            |x, y| y * (3.0 - x * y * y) / 2.0,
            3,
            3,
        ),
    ];
    for (name, domain, f, step, levels, mults) in cases {
        let dom = format!("--domain={domain}");
        let out = pannc(&[
            "approx", name, &dom, "--degree", "15", "--newton", "1", "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let (a, r) = (&v["approximation"], &v["newton"]);
        assert_eq!(r["steps"], 1);
        assert_eq!(
            r["depth"].as_u64().unwrap(),
            a["depth"].as_u64().unwrap() + levels
        );
        assert_eq!(
            r["ct_mults"].as_u64().unwrap(),
            a["ct_mults"].as_u64().unwrap() + mults
        );
        let s = &a["stages"][0];
        let nums = |x: &serde_json::Value| -> Vec<f64> {
            x.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        let (d, c) = (nums(&s["domain"]), nums(&s["coefficients"]));
        let (mut rel0, mut rel1, mut abs1) = (0.0f64, 0.0f64, 0.0f64);
        let n = 1 << 16;
        for i in 0..=n {
            let x = d[0] + (d[1] - d[0]) * i as f64 / n as f64;
            let y = naive(&d, &c, x);
            let z = step(x, y);
            rel0 = rel0.max(((y - f(x)) / f(x)).abs());
            rel1 = rel1.max(((z - f(x)) / f(x)).abs());
            abs1 = abs1.max((z - f(x)).abs());
        }
        let reported = r["max_error"].as_f64().unwrap();
        assert!(
            (abs1 - reported).abs() <= 1e-6 * reported,
            "{name}: {abs1:e} vs {reported:e}"
        );
        assert!((rel1 - r["max_relative_error"].as_f64().unwrap()).abs() <= 1e-6 * rel1);
        // Quadratic convergence: e' = e² (reciprocal), 3e²/2 + e³/2 (inverse square root).
        assert!(rel1 <= 2.0 * rel0 * rel0, "{name}: {rel0:e} -> {rel1:e}");
    }
}

#[test]
fn powers_need_a_positive_domain() {
    let out = pannc(&["approx", "invsqrt", "--domain=-1,1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("positive domain"), "{err}");
    let out = pannc(&["approx", "exp", "--domain=-1,1", "--newton", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Newton") && err.contains("exp"), "{err}");
}
