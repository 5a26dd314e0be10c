//! Shared helpers for tests that read the ONNX conformance data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The conformance data directory (`.../onnx/backend/test/data`) from `ONNX_TEST_DATA`.
/// Without it the test fails with instructions, unless `PANNC_SKIP_ONNX_DATA=1` is set
/// explicitly, in which case this prints that the test was skipped and returns `None`.
pub fn data_dir(test: &str) -> Option<PathBuf> {
    match std::env::var_os("ONNX_TEST_DATA") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.join("node").is_dir(),
                "ONNX_TEST_DATA={} has no node/ directory; it must point at onnx/backend/test/data",
                p.display()
            );
            Some(p)
        }
        None if std::env::var("PANNC_SKIP_ONNX_DATA").as_deref() == Ok("1") => {
            eprintln!("{test}: SKIPPED (PANNC_SKIP_ONNX_DATA=1 and ONNX_TEST_DATA unset)");
            None
        }
        None => panic!(
            "{test}: ONNX_TEST_DATA is not set. Point it at the ONNX conformance data of an onnx==1.22 install, e.g.\n  \
             export ONNX_TEST_DATA=$(python -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), \"backend\", \"test\", \"data\"))')\n\
             or set PANNC_SKIP_ONNX_DATA=1 to skip the tests that need it."
        ),
    }
}

/// `node/<test>/model.onnx` for every conformance node test, sorted by name.
pub fn node_models(data: &Path) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(data.join("node"))
        .expect("reading node/")
        .filter_map(|e| e.ok())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.path().join("model.onnx"),
            )
        })
        .filter(|(_, p)| p.is_file())
        .collect();
    v.sort();
    v
}

/// The "real" models used by round-trip tests: data/light/*.onnx and the pytorch-converted
/// Conv2d*, BatchNorm2d_eval*, ReLU*, MaxPool2d* models.
pub fn real_models(data: &Path) -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(data.join("light")) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "onnx") {
                v.push((format!("light/{}", e.file_name().to_string_lossy()), p));
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(data.join("pytorch-converted")) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let keep = [
                "test_Conv2d",
                "test_BatchNorm2d_eval",
                "test_ReLU",
                "test_MaxPool2d",
            ]
            .iter()
            .any(|p| n.starts_with(p));
            if keep && e.path().join("model.onnx").is_file() {
                v.push((
                    format!("pytorch-converted/{n}"),
                    e.path().join("model.onnx"),
                ));
            }
        }
    }
    v.sort();
    v
}

/// Whether every op of the model is one pannc imports.
pub fn all_ops_supported(bytes: &[u8]) -> bool {
    let ops = pannc_onnx::supported_ops();
    match pannc_onnx::op_histogram(bytes) {
        Ok(h) => h.iter().all(|(op, _)| ops.contains(&op.as_str())),
        Err(_) => false,
    }
}
