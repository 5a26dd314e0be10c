//! The model zoo (`fixtures/zoo/<arch>/<exporter>/model.onnx`, torchvision architectures
//! exported by both PyTorch exporters — batch 1 and dynamic batch — and
//! `fixtures/zoo/<name>/model.onnx`, a scikit-learn MLP):
//! every model loads as `pannc inspect` loads it (import with its external data, clean-up,
//! shape inference), and pannc's interpreter on `test_x.npy` equals onnxruntime's logits
//! (`ort_logits.npy`) to 1e-4 of each sample's largest logit. Batch-1 exports run on all the
//! samples at once (one run per sample). Models whose tail pannc keeps without interpreting it
//! (scikit-learn's ZipMap) are run up to that tail, and the probabilities compared with
//! `ort_probabilities.npy`.
//!
//! Every model also compiles at α = 12 (`zoo_models_compile_to_panns_that_agree`): the PANN,
//! lowered to ONNX and run by onnxruntime on the 64 digit images, has finite outputs and the
//! backbone's top-1 class on at least 90% of them; the scikit-learn MLP's tail, split off and
//! run by onnxruntime on the PANN's outputs, gives the backbone's labels.
//!
//! Skips, saying so, only while `fixtures/zoo` does not exist (the zoo lands on its own
//! branch).

mod common;

use pannc_interp::RunOptions;
use pannc_ir::{Op, Tensor, ValueId};
use std::path::{Path, PathBuf};

fn zoo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/zoo")
}

fn models(zoo: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut archs: Vec<PathBuf> = std::fs::read_dir(zoo)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    archs.sort();
    for a in archs {
        if a.join("model.onnx").is_file() {
            v.push(a.join("model.onnx"));
        }
        let mut ex: Vec<PathBuf> = std::fs::read_dir(&a)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path().join("model.onnx")))
            .filter(|p| p.is_file())
            .collect();
        ex.sort();
        v.extend(ex);
    }
    v
}

/// Largest |a − b| relative to the largest |b| of the same sample (row), over all samples.
fn rel_per_sample(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let n = a.shape()[0].max(1);
    let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
    let k = b.len() / n;
    let mut worst = 0.0f64;
    for (ra, rb) in a.chunks(k.max(1)).zip(b.chunks(k.max(1))) {
        let m = rb.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-6);
        let d = ra
            .iter()
            .zip(rb)
            .fold(0.0f64, |d, (x, y)| d.max((x - y).abs()));
        worst = worst.max(d / m);
    }
    worst
}

/// The values the kept (opaque) part of the graph reads from the interpreted part.
fn opaque_inputs(g: &pannc_ir::Graph) -> Vec<ValueId> {
    let mut v = Vec::new();
    for id in g.node_ids() {
        let n = g.node(id);
        if !matches!(n.op, Op::Opaque(_)) {
            continue;
        }
        for &i in n.inputs() {
            let native = g
                .producer(i)
                .is_none_or(|p| !matches!(g.node(p).op, Op::Opaque(_) | Op::Constant(_)));
            if native && !v.contains(&i) {
                v.push(i);
            }
        }
    }
    v
}

#[test]
fn zoo_models_load_and_match_onnxruntime() {
    let zoo = zoo();
    if !zoo.is_dir() {
        eprintln!(
            "zoo_models_load_and_match_onnxruntime: SKIPPED ({} does not exist yet)",
            zoo.display()
        );
        return;
    }
    let list = models(&zoo);
    assert!(!list.is_empty(), "no models under {}", zoo.display());
    let mut report = Vec::new();
    for path in &list {
        let name = path.strip_prefix(&zoo).unwrap().display().to_string();
        let folder = path.parent().unwrap();
        // the data: next to the model, or in the architecture's folder above the exporter's
        let data = if folder.join("test_x.npy").exists() {
            folder
        } else {
            folder.parent().unwrap()
        };
        let mut m = pannc_onnx::import_path(path, &pannc_onnx::Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        pannc_interp::infer_types(&mut m.graph).unwrap_or_else(|e| panic!("{name}: {e}"));
        pannc_passes::Pipeline::cleanup()
            .run_verified(&mut m.graph, &mut pannc_passes::Context::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        pannc_interp::infer_types(&mut m.graph).unwrap_or_else(|e| panic!("{name}: {e}"));
        let x = pannc::npy::read(&data.join("test_x.npy")).unwrap();
        let n = x.shape()[0];
        let g = &mut m.graph;
        let kept = opaque_inputs(g);
        let (reference, what) = if kept.is_empty() {
            ("ort_logits.npy", "logits")
        } else {
            // Run the interpreted part: the kept tail reads the probabilities (ZipMap's input).
            let e =
                pannc_interp::run(g, std::slice::from_ref(&x), &RunOptions::default()).unwrap_err();
            assert!(e.to_string().contains("kept from the model"), "{name}: {e}");
            let probs = kept
                .iter()
                .copied()
                .find(|&v| {
                    g.users(v).iter().any(
                        |&(u, _)| matches!(&g.node(u).op, Op::Opaque(o) if o.op_type == "ZipMap"),
                    )
                })
                .unwrap_or_else(|| panic!("{name}: no ZipMap input among {kept:?}"));
            g.set_outputs(vec![probs]);
            pannc_passes::Pipeline::cleanup()
                .run_verified(g, &mut pannc_passes::Context::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            ("ort_probabilities.npy", "probabilities")
        };
        let got = pannc_interp::run(g, std::slice::from_ref(&x), &RunOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want =
            pannc::npy::read(&folder.join(reference)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got[0].shape(), want.shape(), "{name}");
        assert_eq!(got[0].shape()[0], n, "{name}");
        let rel = rel_per_sample(&got[0], &want);
        assert!(
            rel <= 1e-4,
            "{name}: {what} differ by {rel:.2e} of the largest"
        );
        report.push(format!("{name}: {what} within {rel:.1e}"));
    }
    eprintln!("zoo: {} models\n  {}", report.len(), report.join("\n  "));
}

/// The folder holding a model's data: next to it, or its architecture's folder above it.
fn data_dir(path: &Path) -> &Path {
    let folder = path.parent().unwrap();
    if folder.join("test_x.npy").exists() {
        folder
    } else {
        folder.parent().unwrap()
    }
}

fn argmax_rows(t: &Tensor) -> Vec<Option<usize>> {
    pannc_driver::predictions(t)
}

#[test]
fn zoo_models_compile_to_panns_that_agree() {
    let test = "zoo_models_compile_to_panns_that_agree";
    let zoo = zoo();
    if !zoo.is_dir() {
        eprintln!("{test}: SKIPPED ({} does not exist yet)", zoo.display());
        return;
    }
    let Some(py) = common::python(test) else {
        return;
    };
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("zoo-panns");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let mut report = Vec::new();
    for path in models(&zoo) {
        let name = path
            .strip_prefix(&zoo)
            .unwrap()
            .parent()
            .unwrap()
            .display()
            .to_string();
        let tag = name.replace('/', "_");
        let data = data_dir(&path);
        let mut m = pannc_onnx::import_path(&path, &pannc_onnx::Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        pannc_interp::infer_types(&mut m.graph).unwrap_or_else(|e| panic!("{name}: {e}"));
        let calib = pannc::npy::read(&data.join("calib_x.npy")).unwrap();
        let opts = pannc_driver::CompileOptions {
            policy: pannc_passes::Policy {
                alpha: 12,
                ..Default::default()
            },
            ..Default::default()
        };
        let compiled = pannc_driver::compile_with(&mut m.graph, vec![calib], opts, |_, _| {})
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let lowered = pannc_driver::lowered(&m.graph).unwrap_or_else(|e| panic!("{name}: {e}"));
        let pann_path = out.join(format!("{tag}.onnx"));
        let mut pm = m.clone();
        pm.graph = lowered;
        pannc_onnx::export_to_path(&pm, &pann_path, &pannc_onnx::ExportOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let x = data.join("test_x.npy");
        let got = common::ort_outputs(&py, &pann_path, &[&x], &format!("zoo-{tag}"));
        let pred = argmax_rows(&got[0]);
        let n = pred.len();
        assert_eq!(n, 64, "{name}: PANN outputs {:?}", got[0].shape());
        let non_finite = pred.iter().filter(|p| p.is_none()).count();
        assert_eq!(
            non_finite, 0,
            "{name}: {non_finite} of {n} PANN outputs are not finite"
        );
        let folder = path.parent().unwrap();
        let backbone = if folder.join("ort_logits.npy").exists() {
            pannc::npy::read(&folder.join("ort_logits.npy")).unwrap()
        } else {
            pannc::npy::read(&folder.join("ort_probabilities.npy")).unwrap()
        };
        let want = argmax_rows(&backbone);
        let agree = pred.iter().zip(&want).filter(|(a, b)| a == b).count();
        assert!(
            agree * 10 >= n * 9,
            "{name}: the PANN's top-1 agrees with the backbone on {agree}/{n} inputs (< 90%)"
        );
        // The split-off tail: scikit-learn's label computation, in plaintext, on the PANN's
        // outputs.
        // How far the test images take activations past their calibrated intervals (the
        // margin's tail allowance, measured).
        let xs = pannc::npy::read(&x).unwrap();
        let sim = pannc_driver::simulate(&m.graph, std::slice::from_ref(&xs), 64)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let outside: usize = sim.out_of_range.iter().map(|o| o.outside).sum();
        let total: usize = sim.out_of_range.iter().map(|o| o.total).sum();
        let worst = sim.out_of_range.iter().map(|o| o.worst).fold(0.0, f64::max);
        let r = &compiled.report;
        let mut line = format!(
            "{name}: {} activations, {} levels; top-1 agreement {agree}/{n}; \
             test inputs outside their interval {outside}/{total}, largest |x|/B {worst:.2}",
            r.activations.len(),
            r.levels
        );
        if let Some(tail) = compiled.tail {
            let tail_path = out.join(format!("{tag}.tail.onnx"));
            let mut tm = m.clone();
            tm.graph = tail;
            pannc_onnx::export_to_path(&tm, &tail_path, &pannc_onnx::ExportOptions::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let logits = out.join(format!("{tag}.logits.npy"));
            pannc::npy::write(&logits, &got[0]).unwrap();
            let labels = common::ort_outputs(&py, &tail_path, &[&logits], &format!("tail-{tag}"));
            let want = pannc::npy::read(&folder.join("ort_labels.npy")).unwrap();
            let (a, b) = (labels[0].to_f64_vec(), want.to_f64_vec());
            assert_eq!(a.len(), b.len(), "{name}: tail labels");
            let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
            assert_eq!(
                same, agree,
                "{name}: the tail's labels must be the PANN's top-1 classes"
            );
            line += &format!(", tail labels {same}/{n}");
        }
        report.push(line);
    }
    eprintln!("zoo PANNs (alpha 12):\n  {}", report.join("\n  "));
}
