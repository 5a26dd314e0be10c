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
