//! Shared helpers of the end-to-end tests.
#![allow(dead_code)]

use pannc_ir::Tensor;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const FIXTURES: [&str; 3] = ["resnet_fmnist", "maxpool_mnist", "gelu_digits"];

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// The Python that has onnx and onnxruntime (`PANNC_PYTHON`, set by scripts/test). Returns
/// None only when `PANNC_SKIP_PYTHON=1` asks explicitly to skip reference checks.
pub fn python(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PANNC_PYTHON") {
        return Some(PathBuf::from(p));
    }
    if std::env::var_os("PANNC_SKIP_PYTHON").is_some_and(|v| v == "1") {
        eprintln!("{test}: SKIPPED (PANNC_SKIP_PYTHON=1)");
        return None;
    }
    panic!("{test}: set PANNC_PYTHON to a Python with onnx and onnxruntime (scripts/test does), or PANNC_SKIP_PYTHON=1 to skip");
}

/// Runs `scripts/ort_run.py` with the given arguments and returns its stdout.
pub fn ort(py: &Path, args: &[&str]) -> String {
    let out = Command::new(py)
        .arg(root().join("scripts").join("ort_run.py"))
        .args(args)
        .output()
        .expect("running scripts/ort_run.py");
    assert!(
        out.status.success(),
        "ort_run.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// onnxruntime's outputs of `model` on `inputs` (.npy paths).
pub fn ort_outputs(py: &Path, model: &Path, inputs: &[&Path], tag: &str) -> Vec<Tensor> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ort-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut args = vec![
        "run".to_string(),
        model.display().to_string(),
        dir.display().to_string(),
    ];
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    ort(py, &refs);
    (0..)
        .map(|k| dir.join(format!("output_{k}.npy")))
        .take_while(|p| p.exists())
        .map(|p| pannc::npy::read(&p).unwrap())
        .collect()
}

/// Largest |a − b| and the largest |b|.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> (f64, f64) {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
    let d = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let m = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    (d, m)
}

/// Imports a model file and runs the clean-up pipeline, verifying after each pass.
pub fn load(path: &Path) -> pannc_onnx::Model {
    let mut m = pannc_onnx::import_path(path, &pannc_onnx::Limits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pannc_interp::infer_types(&mut m.graph).unwrap();
    pannc_passes::Pipeline::cleanup()
        .run_verified(&mut m.graph, &mut pannc_passes::Context::default())
        .unwrap();
    m
}
