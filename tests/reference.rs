//! pannc against onnxruntime on the trained fixtures: the interpreter's logits equal
//! onnxruntime's, and import → export round trips run in onnxruntime with the original's outputs.

mod common;

use common::*;
use pannc_interp::{Precision, RunOptions};
use std::path::Path;

#[test]
fn interpreter_matches_onnxruntime_on_fixture_test_sets() {
    let Some(py) = python("interpreter_matches_onnxruntime_on_fixture_test_sets") else {
        return;
    };
    for name in FIXTURES {
        let dir = fixture(name);
        let x_path = dir.join("test_x.npy");
        let want = &ort_outputs(&py, &dir.join("model.onnx"), &[&x_path], name)[0];
        let m = load(&dir.join("model.onnx"));
        let x = pannc::npy::read(&x_path).unwrap();
        let got = &pannc_interp::run(&m.graph, &[x], &RunOptions::default()).unwrap()[0];
        let (d, _) = max_abs_diff(got, want);
        eprintln!(
            "{name}: max |pannc − onnxruntime| = {d:.2e} over {} samples",
            got.shape()[0]
        );
        assert!(d <= 1e-4, "{name}: max abs logit difference {d}");
        // f64 mode agrees too (to the f32 reference's precision).
        let x = pannc::npy::read(&x_path).unwrap();
        let opts = RunOptions {
            precision: Precision::F64,
            ..Default::default()
        };
        let got64 = &pannc_interp::run(&m.graph, &[x], &opts).unwrap()[0];
        let (d64, _) = max_abs_diff(got64, want);
        assert!(d64 <= 1e-4, "{name}: f64 run differs by {d64}");
    }
}

#[test]
fn round_trips_run_in_onnxruntime_with_the_original_outputs() {
    let Some(py) = python("round_trips_run_in_onnxruntime_with_the_original_outputs") else {
        return;
    };
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("roundtrip-fixtures");
    std::fs::create_dir_all(&tmp).unwrap();
    for name in FIXTURES {
        let dir = fixture(name);
        let x_path = dir.join("test_x.npy");
        let want = &ort_outputs(
            &py,
            &dir.join("model.onnx"),
            &[&x_path],
            &format!("{name}-orig"),
        )[0];
        let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
        let raw = pannc_onnx::import(&bytes).unwrap();
        let cleaned = load(&dir.join("model.onnx"));
        for (label, m) in [("raw", raw), ("cleaned", cleaned)] {
            let out = tmp.join(format!("{name}-{label}.onnx"));
            std::fs::write(&out, pannc_onnx::export(&m).unwrap()).unwrap();
            assert_eq!(ort(&py, &["check", out.to_str().unwrap()]).trim(), "ok");
            let got = &ort_outputs(&py, &out, &[&x_path], &format!("{name}-{label}"))[0];
            let (d, m) = max_abs_diff(got, want);
            assert!(
                d <= 1e-5 * m.max(1.0),
                "{name} ({label} export): max abs difference {d} (max |y| {m})"
            );
        }
    }
}

#[test]
fn fixture_accuracy_matches_meta_json() {
    for name in FIXTURES {
        let dir = fixture(name);
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
        let m = load(&dir.join("model.onnx"));
        let x = pannc::npy::read(&dir.join("test_x.npy")).unwrap();
        let y = pannc::npy::read(&dir.join("test_y.npy"))
            .unwrap()
            .to_i64_vec();
        let logits = pannc_interp::run(&m.graph, &[x], &RunOptions::default())
            .unwrap()
            .remove(0);
        let acc = pannc_driver::top1(&logits, &y);
        let recorded = find_subset_accuracy(&meta)
            .unwrap_or_else(|| panic!("{name}: no subset accuracy in meta.json"));
        assert!(
            (acc - recorded).abs() < 1e-9,
            "{name}: pannc top-1 {acc}, meta.json says {recorded}"
        );
    }
}

/// The top-1 accuracy on the committed subset as recorded by onnxruntime in meta.json.
fn find_subset_accuracy(meta: &serde_json::Value) -> Option<f64> {
    meta.pointer("/accuracy/onnxruntime_subset")
        .and_then(|v| v.as_f64())
}

/// Fuzz findings stay fixed: a header length beyond the file is an error, not an allocation.
#[test]
fn npy_fuzz_findings_are_errors() {
    for entry in std::fs::read_dir(root().join("fuzz/findings/npy")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bin") {
            let err = pannc::npy::parse(&std::fs::read(&path).unwrap()).unwrap_err();
            assert!(
                err.to_string().contains("header") || err.to_string().contains("npy"),
                "{}: {err}",
                path.display()
            );
        }
    }
}
