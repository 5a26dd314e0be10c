//! Executes planned circuits on OpenFHE through `scripts/openfhe_run.py`.
//!
//! Needs a Python with the `openfhe` wheel: `$PANNC_OPENFHE_PYTHON`, default
//! `/work/fhe-venv/bin/python` (see the script's docstring for the setup).
//! When that interpreter cannot import openfhe the test fails, unless
//! `PANNC_SKIP_OPENFHE=1` asks explicitly to skip it (it then says so).

use std::path::PathBuf;
use std::process::Command;

use pannc_approx::{minimax_with, Parity, RemezOptions, Weight};
use pannc_fhe::{optimal_depth, plan_chebyshev, Circuit, Interval, PlanOptions};

fn python() -> Option<String> {
    let py = std::env::var("PANNC_OPENFHE_PYTHON")
        .unwrap_or_else(|_| "/work/fhe-venv/bin/python".into());
    let ok = Command::new(&py)
        .args(["-c", "import openfhe, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(py)
}

fn run(py: &str, c: &Circuit, scaling: &str) -> serde_json::Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("pannc-fhe-openfhe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let circuit = dir.join(format!("{}_{scaling}.json", c.name));
    let report = dir.join(format!("{}_{scaling}.report.json", c.name));
    std::fs::write(&circuit, c.to_json().unwrap()).unwrap();
    let out = Command::new(py)
        .arg(root.join("scripts/openfhe_run.py"))
        .arg(&circuit)
        .args(["--samples", "4096", "--scaling", scaling, "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|_| panic!("runner failed: {}", String::from_utf8_lossy(&out.stderr)));
    let _ = std::fs::remove_file(&circuit);
    let _ = std::fs::remove_file(&report);
    let _ = std::fs::remove_dir(&dir);
    serde_json::from_str(&text).unwrap()
}

#[test]
fn degree_15_and_27_consume_exactly_the_planned_levels_on_openfhe() {
    let Some(py) = python() else {
        if std::env::var("PANNC_SKIP_OPENFHE").as_deref() == Ok("1") {
            eprintln!("SKIPPED (PANNC_SKIP_OPENFHE=1): no OpenFHE run");
            return;
        }
        panic!("no Python with openfhe: set PANNC_OPENFHE_PYTHON (scripts/test does), or PANNC_SKIP_OPENFHE=1 to skip");
    };
    for d in [15usize, 27] {
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
        assert_eq!(c.depth, optimal_depth(d));
        for scaling in ["fixedmanual", "flexibleauto"] {
            let r = run(&py, &c, scaling);
            eprintln!("degree {d} {scaling}: {r}");
            assert_eq!(
                r["levels_consumed"][0].as_u64(),
                Some(c.depth as u64),
                "degree {d} {scaling}"
            );
            assert_eq!(r["context_depth"].as_u64(), Some(c.depth as u64));
            assert_eq!(
                r["level_mismatches"].as_array().map(Vec::len),
                Some(0),
                "degree {d} {scaling}"
            );
            let err = r["max_abs_err_vs_plaintext"][0].as_f64().unwrap();
            assert!(err < 1e-6, "degree {d} {scaling}: {err}");
        }
    }
}

/// A small layered circuit (3 features, 3 polynomial layers, a skip connection) with
/// bootstraps placed for a 6-level budget runs on OpenFHE with oracle bootstraps (decrypt and
/// re-encrypt): every materialised ciphertext is at its planned level, also after each refresh.
#[test]
fn bootstrapped_circuit_runs_with_oracle_refreshes() {
    let Some(py) = python() else {
        if std::env::var("PANNC_SKIP_OPENFHE").as_deref() == Ok("1") {
            eprintln!("SKIPPED (PANNC_SKIP_OPENFHE=1): no OpenFHE run");
            return;
        }
        panic!("no Python with openfhe: set PANNC_OPENFHE_PYTHON (scripts/test does), or PANNC_SKIP_OPENFHE=1 to skip");
    };
    use pannc_fhe::{chebyshev_interpolant, place_bootstraps, CircuitBuilder, Output, ValueId};
    let coeffs = chebyshev_interpolant(|x| (1.7 * x).sin() * 0.8 + 0.1, 7);
    let p = plan_chebyshev(&coeffs, Interval::UNIT, &PlanOptions::default()).unwrap();
    let mut b = CircuitBuilder::new("toy_bootstrapped");
    let xs: Vec<ValueId> = (0..3)
        .map(|i| b.input(format!("x[{i}]")).unwrap())
        .collect();
    let mut prev = xs.clone();
    let mut skip = xs.clone();
    for layer in 0..4 {
        let start = b.num_ops();
        let mut us = vec![];
        for j in 0..3 {
            let t0 = b.mul_const(prev[j], 0.6 - 0.1 * j as f64);
            let t1 = b.mul_const(skip[(j + 1) % 3], 0.3);
            us.push(b.add(t0, t1));
        }
        b.add_layer(format!("fc{layer}"), "linear", start, &us, None);
        let start = b.num_ops();
        let hs: Vec<ValueId> = us.iter().map(|&u| b.inline(&p, &[u]).unwrap()[0]).collect();
        b.add_layer(
            format!("act{layer}"),
            "poly:toy",
            start,
            &hs,
            p.plan.clone(),
        );
        skip = prev;
        prev = hs;
    }
    let outputs = prev
        .iter()
        .enumerate()
        .map(|(i, &v)| Output {
            name: format!("y[{i}]"),
            value: v,
        })
        .collect();
    let c = b.finish(outputs, None).unwrap();
    assert_eq!(c.depth, 16);
    let placed = place_bootstraps(&c, 6).unwrap();
    assert!(placed.bootstrapped > 0);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("pannc-fhe-bs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("toy.json");
    let report = dir.join("toy.report.json");
    std::fs::write(&path, placed.circuit.to_json().unwrap()).unwrap();
    let run = |extra: &[&str]| {
        Command::new(&py)
            .arg(root.join("scripts/openfhe_run.py"))
            .arg(&path)
            .args(["--samples", "256", "--ring-dim", "4096", "--report"])
            .arg(&report)
            .args(extra)
            .output()
            .unwrap()
    };
    // Without saying how to bootstrap, the runner refuses.
    let _ = std::fs::remove_file(&report);
    let out = run(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bootstrap"));
    let out = run(&["--bootstrap", "oracle"]);
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&report)
            .unwrap_or_else(|_| panic!("runner failed: {}", String::from_utf8_lossy(&out.stderr))),
    )
    .unwrap();
    eprintln!("{r}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        r["context_depth"].as_u64(),
        Some(placed.circuit.depth as u64)
    );
    assert!(placed.circuit.depth <= 6);
    assert_eq!(r["bootstrapped"].as_u64(), Some(placed.bootstrapped as u64));
    assert_eq!(r["level_mismatches"].as_array().map(Vec::len), Some(0));
    for e in r["max_abs_err_vs_plaintext"].as_array().unwrap() {
        assert!(e.as_f64().unwrap() < 1e-6);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
