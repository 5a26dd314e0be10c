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
//! Skips, saying so, only while `fixtures/zoo` does not exist (the zoo lands on its own
//! branch).

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
