//! import → export → import gives the same IR text (and export is deterministic) on the real
//! models and on every conformance node model that imports; the exported files pass
//! `onnx.checker.check_model(full_check=True)` and run in onnxruntime with the same outputs.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

struct Case {
    name: String,
    path: PathBuf,
    /// `test_data_set_0` next to a node model, if any.
    data: Option<PathBuf>,
}

fn cases(data: &Path) -> Vec<Case> {
    let mut v: Vec<Case> = common::real_models(data)
        .into_iter()
        .map(|(name, path)| {
            let d = path.parent().unwrap().join("test_data_set_0");
            Case {
                name,
                data: d.is_dir().then_some(d),
                path,
            }
        })
        .collect();
    for (name, path) in common::node_models(data) {
        let bytes = std::fs::read(&path).unwrap();
        if common::all_ops_supported(&bytes) {
            let d = path.parent().unwrap().join("test_data_set_0");
            v.push(Case {
                name: format!("node/{name}"),
                data: d.is_dir().then_some(d),
                path,
            });
        }
    }
    v
}

#[test]
fn import_export_import_gives_the_same_ir() {
    let Some(data) = common::data_dir("import_export_import_gives_the_same_ir") else {
        return;
    };
    let mut real_ok = Vec::new();
    let mut real_unsupported = Vec::new();
    let mut node_ok = 0;
    for c in cases(&data) {
        let bytes = std::fs::read(&c.path).unwrap();
        let m = match pannc_onnx::import(&bytes) {
            Ok(m) => m,
            Err(e) => {
                if c.name.starts_with("node/") {
                    continue; // counted by the conformance test
                }
                assert!(
                    matches!(e, pannc_onnx::OnnxError::Unsupported(_)),
                    "{}: {e}",
                    c.name
                );
                real_unsupported.push(c.name.clone());
                continue;
            }
        };
        let text = pannc_ir::print(&m.graph);
        let out = pannc_onnx::export(&m).unwrap_or_else(|e| panic!("{}: export: {e}", c.name));
        let back =
            pannc_onnx::import(&out).unwrap_or_else(|e| panic!("{}: re-import: {e}", c.name));
        assert_eq!(pannc_ir::print(&back.graph), text, "{}", c.name);
        assert_eq!(
            pannc_onnx::export(&back).unwrap(),
            out,
            "{}: export is not stable",
            c.name
        );
        assert!(pannc_ir::verify(&back.graph).is_empty(), "{}", c.name);
        if c.name.starts_with("node/") {
            node_ok += 1;
        } else {
            real_ok.push(c.name.clone());
        }
    }
    eprintln!(
        "round trip: {} real models, {node_ok} conformance node models",
        real_ok.len()
    );
    eprintln!("real models with unsupported ops: {real_unsupported:?}");
    // light: all nine (bvlc_alexnet, densenet121, inception_v1, inception_v2, resnet50,
    // shufflenet, squeezenet, vgg19, zfnet512); pytorch-converted: Conv2d* (12),
    // BatchNorm2d_eval, ReLU, MaxPool2d* (2)
    assert!(real_unsupported.is_empty(), "{real_unsupported:?}");
    assert_eq!(
        real_ok.iter().filter(|n| n.starts_with("light/")).count(),
        9,
        "{real_ok:?}"
    );
    assert_eq!(
        real_ok
            .iter()
            .filter(|n| n.starts_with("pytorch-converted/"))
            .count(),
        15,
        "{real_ok:?}"
    );
    assert!(node_ok >= 190, "only {node_ok} node models round-trip");
}

/// The Python with onnx and onnxruntime: `PANNC_PYTHON`, else the venv that holds
/// `ONNX_TEST_DATA`.
fn python(data: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os("PANNC_PYTHON") {
        return PathBuf::from(p);
    }
    data.ancestors()
        .map(|a| a.join("bin").join("python"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no bin/python above {}; set PANNC_PYTHON to a Python with onnx and onnxruntime",
                data.display()
            )
        })
}

#[test]
fn exported_models_pass_the_onnx_checker_and_run_in_onnxruntime() {
    let Some(data) =
        common::data_dir("exported_models_pass_the_onnx_checker_and_run_in_onnxruntime")
    else {
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx-export-check");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let manifest_path = dir.join("manifest.tsv");
    let mut manifest = std::fs::File::create(&manifest_path).unwrap();
    let mut n = 0;
    for c in cases(&data) {
        let bytes = std::fs::read(&c.path).unwrap();
        let Ok(m) = pannc_onnx::import(&bytes) else {
            continue;
        };
        // the model's own opset, and other opsets where the ops can be written
        let mut opsets = vec![m.graph.opset];
        for o in [11, 13, 17, 21] {
            if o != m.graph.opset && (m.graph.opset >= 9 || o >= 13) {
                opsets.push(o);
            }
        }
        for (k, &o) in opsets.iter().enumerate() {
            let out = match pannc_onnx::export_with_opset(&m, o) {
                Ok(b) => b,
                Err(e) if k > 0 => {
                    assert!(
                        matches!(e, pannc_onnx::OnnxError::Export { .. }),
                        "{}: opset {o}: {e}",
                        c.name
                    );
                    continue;
                }
                Err(e) => panic!("{}: {e}", c.name),
            };
            let file = dir.join(format!("{}@{o}.onnx", c.name.replace('/', "__")));
            std::fs::write(&file, out).unwrap();
            let d = c
                .data
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "-".into());
            writeln!(manifest, "{}\t{}\t{}", file.display(), c.path.display(), d).unwrap();
            n += 1;
        }
    }
    drop(manifest);
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("check_exported.py");
    let out = std::process::Command::new(python(&data))
        .arg(&script)
        .arg(&manifest_path)
        .output()
        .expect("running the Python checker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{n} exported models: the Python check failed (see above)"
    );
    assert!(stdout.contains(&format!("checked {n} models")), "{stdout}");
}
