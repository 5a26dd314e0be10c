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
