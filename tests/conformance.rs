//! The ONNX backend conformance harness: every node test of the `onnx==1.22.0` wheel whose
//! ops pannc supports, plus the `light` real-architecture models and the PyTorch-converted
//! Conv2d / BatchNorm2d_eval / ReLU / MaxPool2d models, go through import → clean-up →
//! interpreter and are compared with the shipped reference outputs.
//!
//! Needs `ONNX_TEST_DATA` (…/site-packages/onnx/backend/test/data); `scripts/test` sets it.
//! Prints `N passed, M failed` and the reason for every test it does not run.

use pannc_interp::{Precision, RunOptions};
use pannc_ir::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a test is not run: the model uses something pannc does not support.
enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

fn data_dir() -> PathBuf {
    match std::env::var_os("ONNX_TEST_DATA") {
        Some(d) => PathBuf::from(d),
        None => {
            eprintln!("ONNX_TEST_DATA is not set: point it at …/site-packages/onnx/backend/test/data (onnx==1.22.0), or run scripts/test");
            std::process::exit(1);
        }
    }
}

fn read_tensor(path: &Path) -> Result<Tensor, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    pannc_onnx::read_tensor(&bytes)
        .map(|(_, t)| t)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Compares like numpy.testing.assert_allclose(actual, expected, rtol, atol).
fn compare(name: &str, got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!(
            "{name}: shape {:?}, expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    if got.dtype() != want.dtype() {
        return Err(format!(
            "{name}: dtype {}, expected {}",
            got.dtype(),
            want.dtype()
        ));
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let mut worst = (0.0f64, 0usize);
    let mut bad = 0usize;
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= atol + rtol * b.abs();
        if !ok {
            bad += 1;
            let d = (a - b).abs();
            if d > worst.0 || d.is_nan() {
                worst = (d, i);
            }
        }
    }
    if bad > 0 {
        let i = worst.1;
        return Err(format!(
            "{name}: {bad} elements differ; worst at {i}: got {}, expected {}",
            g[i], w[i]
        ));
    }
    Ok(())
}

/// Models that use ops, dtypes or opsets pannc does not support are not run (and are listed);
/// any other import error is a failure.
fn import_failure(e: pannc_onnx::OnnxError) -> Outcome {
    use pannc_onnx::OnnxError;
    match &e {
        OnnxError::Unsupported(list) => {
            let mut ops: Vec<String> = list.iter().map(|u| u.op_type.clone()).collect();
            ops.sort();
            ops.dedup();
            Outcome::Skip(format!("unsupported op {}", ops.join(", ")))
        }
        OnnxError::UnsupportedDType { dtype, .. } => {
            Outcome::Skip(format!("unsupported dtype {dtype}"))
        }
        OnnxError::UnsupportedOpset { opset, .. } => {
            Outcome::Skip(format!("unsupported opset {opset}"))
        }
        OnnxError::BadType { msg, .. } if msg.contains("only handles dense tensors") => {
            Outcome::Skip("sequence/optional types".into())
        }
        OnnxError::MissingOpset => {
            Outcome::Skip("only non-default domains (training, ai.onnx.ml)".into())
        }
        OnnxError::BadNode { op, msg, .. } if msg.contains("not supported") => {
            Outcome::Skip(format!(
                "unsupported {op} variant: {}",
                msg.split(':').next_back().unwrap_or("").trim()
            ))
        }
        _ => Outcome::Fail(format!("import: {e}")),
    }
}

fn read_tensor_outcome(path: &Path) -> Result<Tensor, Outcome> {
    let bytes =
        std::fs::read(path).map_err(|e| Outcome::Fail(format!("{}: {e}", path.display())))?;
    pannc_onnx::read_tensor(&bytes)
        .map(|(_, t)| t)
        .map_err(import_failure)
}

fn import_file(model: &Path) -> Result<pannc_onnx::Model, Outcome> {
    let bytes = std::fs::read(model).map_err(|e| Outcome::Fail(e.to_string()))?;
    pannc_onnx::import(&bytes).map_err(import_failure)
}

/// Binds i64 graph inputs (axes, shapes, pads, indices given as data) as constants: pannc
/// compiles for fixed shape arithmetic, as `pannc compile` does for a concrete model.
fn run_case(
    mut m: pannc_onnx::Model,
    inputs: &[Tensor],
    expected: &[Tensor],
    rtol: f64,
    atol: f64,
) -> Outcome {
    if inputs.len() != m.graph.inputs().len() {
        return Outcome::Fail(format!(
            "{} inputs given, the model has {}",
            inputs.len(),
            m.graph.inputs().len()
        ));
    }
    let mut feeds = Vec::new();
    for (&v, t) in m.graph.inputs().to_vec().iter().zip(inputs) {
        if t.dtype() == pannc_ir::DType::I64 {
            if let Err(e) = m.graph.bind_input(v, t.clone()) {
                return Outcome::Fail(format!("bind: {e}"));
            }
        } else {
            feeds.push(t.clone());
        }
    }
    let inputs = &feeds[..];
    if let Err(e) = pannc_interp::infer_types(&mut m.graph) {
        return Outcome::Fail(format!("infer: {e}"));
    }
    if let Err(e) = pannc_passes::Pipeline::cleanup()
        .run_verified(&mut m.graph, &mut pannc_passes::Context::default())
    {
        return Outcome::Fail(format!("cleanup: {e}"));
    }
    let opts = RunOptions {
        precision: Precision::F32,
        ..Default::default()
    };
    let outs = match pannc_interp::run(&m.graph, inputs, &opts) {
        Ok(o) => o,
        Err(e) => return Outcome::Fail(format!("run: {e}")),
    };
    if outs.len() < expected.len() {
        return Outcome::Fail(format!(
            "{} outputs, expected {}",
            outs.len(),
            expected.len()
        ));
    }
    for (k, (g, w)) in outs.iter().zip(expected).enumerate() {
        if let Err(e) = compare(&format!("output {k}"), g, w, rtol, atol) {
            return Outcome::Fail(e);
        }
    }
    Outcome::Pass
}

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.pb")))
        .take_while(|p| p.exists())
        .collect()
}

fn dataset_case(dir: &Path, rtol: f64, atol: f64) -> Outcome {
    let m = match import_file(&dir.join("model.onnx")) {
        Ok(m) => m,
        Err(o) => return o,
    };
    let ds = dir.join("test_data_set_0");
    let load = |paths: Vec<PathBuf>| {
        paths
            .iter()
            .map(|p| read_tensor_outcome(p))
            .collect::<Result<Vec<_>, _>>()
    };
    let inputs = match load(numbered(&ds, "input")) {
        Ok(t) => t,
        Err(o) => return o,
    };
    let outputs = match load(numbered(&ds, "output")) {
        Ok(t) => t,
        Err(o) => return o,
    };
    run_case(m, &inputs, &outputs, rtol, atol)
}

/// The `light` models take the input the ONNX runner generates: arange(n)/n in the input's shape.
fn light_case(model: &Path) -> Outcome {
    let m = match import_file(model) {
        Ok(m) => m,
        Err(o) => return o,
    };
    let g = &m.graph;
    let mut inputs = Vec::new();
    for &v in g.inputs() {
        let shape: Vec<usize> = match g.value(v).ty.as_ref().and_then(|t| t.known_shape()) {
            Some(s) => s,
            None => return Outcome::Fail("input without a static shape".into()),
        };
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|i| (i as f64 / n as f64) as f32).collect();
        inputs.push(Tensor::from_f32(&shape, data).expect("shape"));
    }
    let stem = model.file_stem().unwrap().to_string_lossy().to_string();
    let expected = match read_tensor(&model.with_file_name(format!("{stem}_output_0.pb"))) {
        Ok(t) => vec![t],
        Err(e) => return Outcome::Fail(e),
    };
    // densenet121 uses rtol 2e-3 in the ONNX runner; the others 1e-3.
    let rtol = if stem.contains("densenet") {
        2e-3
    } else {
        1e-3
    };
    run_case(m, &inputs, &expected, rtol, 1e-7)
}

fn main() {
    let root = data_dir();
    let mut results: BTreeMap<String, Outcome> = BTreeMap::new();
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_ref().is_none_or(|f| name.contains(f.as_str()));

    let mut node_dirs: Vec<PathBuf> = std::fs::read_dir(root.join("node"))
        .expect("ONNX_TEST_DATA/node is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    node_dirs.sort();
    for dir in node_dirs {
        let name = format!("node/{}", dir.file_name().unwrap().to_string_lossy());
        if wanted(&name) {
            results.insert(name, dataset_case(&dir, 1e-3, 1e-7));
        }
    }
    for t in [
        "test_Conv2d",
        "test_BatchNorm2d_eval",
        "test_ReLU",
        "test_MaxPool2d",
    ] {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("pytorch-converted"))
            .expect("pytorch-converted is readable")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(t))
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = format!(
                "pytorch-converted/{}",
                dir.file_name().unwrap().to_string_lossy()
            );
            if wanted(&name) {
                results.insert(name, dataset_case(&dir, 1e-3, 1e-7));
            }
        }
    }
    let mut light: Vec<PathBuf> = std::fs::read_dir(root.join("light"))
        .expect("light is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    light.sort();
    for m in light {
        let name = format!("light/{}", m.file_stem().unwrap().to_string_lossy());
        if wanted(&name) {
            results.insert(name, light_case(&m));
        }
    }

    let (mut pass, mut fail) = (0, 0);
    let mut skipped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, o) in &results {
        match o {
            Outcome::Pass => pass += 1,
            Outcome::Fail(e) => {
                fail += 1;
                println!("FAIL {name}: {e}");
            }
            Outcome::Skip(reason) => {
                let key = reason
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(120)
                    .collect::<String>();
                skipped.entry(key).or_default().push(name.clone());
            }
        }
    }
    let nskip: usize = skipped.values().map(|v| v.len()).sum();
    if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
        for (reason, names) in &skipped {
            println!(
                "not run ({} tests): {reason}\n    {}",
                names.len(),
                names.join(" ")
            );
        }
    }
    println!("conformance: {nskip} tests use ops or dtypes pannc does not support (CONFORMANCE_VERBOSE=1 lists them)");
    println!("conformance: {pass} passed, {fail} failed");
    if fail > 0 || pass == 0 {
        std::process::exit(1);
    }
}
