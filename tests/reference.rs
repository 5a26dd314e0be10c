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

/// `export_to_path` moves the weights to `<file>.data` when the model is over the inline limit
/// (forced here with a limit of 0 bytes; the default is protobuf's 2 GiB): onnxruntime runs
/// the result with the original's outputs, pannc re-imports every constant bit for bit, and
/// writing twice gives the same bytes. Under the limit the model stays one file.
#[test]
fn external_data_export_runs_in_onnxruntime_and_reimports_bit_exactly() {
    let Some(py) = python("external_data_export_runs_in_onnxruntime_and_reimports_bit_exactly")
    else {
        return;
    };
    let name = "resnet_fmnist";
    let dir = fixture(name);
    let x_path = dir.join("test_x.npy");
    let limits = pannc_onnx::Limits::default();
    let m = pannc_onnx::import_path(&dir.join("model.onnx"), &limits).unwrap();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("external-export");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let forced = pannc_onnx::ExportOptions {
        max_inline_bytes: 0,
        ..Default::default()
    };
    let out = tmp.join("model.onnx");
    let data = pannc_onnx::export_to_path(&m, &out, &forced)
        .unwrap()
        .expect("over the limit: external data");
    assert_eq!(data, tmp.join("model.onnx.data"));
    let (model_len, data_len) = (
        std::fs::metadata(&out).unwrap().len(),
        std::fs::metadata(&data).unwrap().len(),
    );
    let inline_len = pannc_onnx::export(&m).unwrap().len() as u64;
    eprintln!("{name}: inline {inline_len} B; external: model {model_len} B + data {data_len} B");
    assert!(model_len * 4 < inline_len && data_len > inline_len / 2);

    // onnxruntime reads it (relative to the model's directory) and agrees with the original.
    assert_eq!(ort(&py, &["check", out.to_str().unwrap()]).trim(), "ok");
    let want = &ort_outputs(&py, &dir.join("model.onnx"), &[&x_path], "ext-orig")[0];
    let got = &ort_outputs(&py, &out, &[&x_path], "ext-exported")[0];
    let (d, mx) = max_abs_diff(got, want);
    assert!(d <= 1e-5 * mx.max(1.0), "max abs difference {d}");

    // pannc reads every constant back exactly.
    let back = pannc_onnx::import_path(&out, &limits).unwrap();
    let consts = |g: &pannc_ir::Graph| -> std::collections::BTreeMap<String, pannc_ir::Tensor> {
        g.node_ids()
            .into_iter()
            .filter_map(|id| match &g.node(id).op {
                pannc_ir::Op::Constant(t) => {
                    Some((g.value(g.node(id).outputs()[0]).name.clone(), t.clone()))
                }
                _ => None,
            })
            .collect()
    };
    let (a, b) = (consts(&m.graph), consts(&back.graph));
    assert!(
        a.len() > 10 && a == b,
        "constants differ after the round trip"
    );
    assert_eq!(pannc_ir::print(&m.graph), pannc_ir::print(&back.graph));

    // Deterministic: a second write gives the same two files.
    let out2 = tmp.join("again.onnx");
    let data2 = pannc_onnx::export_to_path(&m, &out2, &forced)
        .unwrap()
        .unwrap();
    assert_eq!(
        std::fs::read(&data).unwrap(),
        std::fs::read(&data2).unwrap()
    );
    let (p1, p2) = (std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
    // the files differ only in the data file's name they reference
    assert_eq!(
        String::from_utf8_lossy(&p1).replace("model.onnx.data", "again.onnx.data"),
        String::from_utf8_lossy(&p2)
    );

    // Under the (default) limit: one file, the same bytes as `export`.
    let inline = tmp.join("inline.onnx");
    let none = pannc_onnx::export_to_path(&m, &inline, &Default::default()).unwrap();
    assert!(none.is_none() && !tmp.join("inline.onnx.data").exists());
    assert_eq!(
        std::fs::read(&inline).unwrap(),
        pannc_onnx::export(&m).unwrap()
    );
}

/// A scikit-learn-style classifier (MatMul, Add, Softmax, then the ai.onnx.ml tail: ZipMap,
/// ArgMax + ArrayFeatureExtractor over int32 class labels + Reshape + Cast), made with onnx's
/// helpers: pannc keeps the tail without interpreting it, refuses to run it naming ZipMap, and
/// writes it back so that onnxruntime gives the original's labels and probability maps.
#[test]
fn sklearn_tail_is_kept_and_written_back() {
    let Some(py) = python("sklearn_tail_is_kept_and_written_back") else {
        return;
    };
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sklearn-tail");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let orig = tmp.join("orig.onnx");
    let script = r#"
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as T
rng = np.random.default_rng(0)
W = h.make_tensor("W", T.FLOAT, [4, 3], rng.standard_normal(12).astype(np.float32))
b = h.make_tensor("b", T.FLOAT, [3], rng.standard_normal(3).astype(np.float32))
classes = h.make_tensor("classes", T.INT32, [3], [0, 1, 2])
shape = h.make_tensor("shape", T.INT64, [1], [-1])
nodes = [
    h.make_node("MatMul", ["input", "W"], ["mm"], name="MatMul"),
    h.make_node("Add", ["mm", "b"], ["logits"], name="Add"),
    h.make_node("Softmax", ["logits"], ["probabilities"], name="Softmax", axis=1),
    h.make_node("ArgMax", ["probabilities"], ["argmax"], name="ArgMax", axis=1),
    h.make_node("ZipMap", ["probabilities"], ["output_probability"], name="ZipMap",
                domain="ai.onnx.ml", classlabels_int64s=[0, 1, 2]),
    h.make_node("ArrayFeatureExtractor", ["classes", "argmax"], ["afe"],
                name="ArrayFeatureExtractor", domain="ai.onnx.ml"),
    h.make_node("Reshape", ["afe", "shape"], ["label32"], name="Reshape"),
    h.make_node("Cast", ["label32"], ["output_label"], name="Cast", to=T.INT64),
]
seq = h.make_sequence_type_proto(h.make_map_type_proto(T.INT64, h.make_tensor_type_proto(T.FLOAT, [])))
g = h.make_graph(nodes, "sklearn_like",
                 [h.make_tensor_value_info("input", T.FLOAT, [None, 4])],
                 [h.make_tensor_value_info("output_label", T.INT64, [None]),
                  h.make_value_info("output_probability", seq)],
                 [W, b, classes, shape])
m = h.make_model(g, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("ai.onnx.ml", 1)],
                 producer_name="sklearn-like")
m.ir_version = 8
onnx.checker.check_model(m, full_check=True)
onnx.save(m, sys.argv[1])
"#;
    let compare = r#"
import sys, numpy as np, onnxruntime as ort
x = np.random.default_rng(1).standard_normal((7, 4)).astype(np.float32)
outs = [ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(None, {"input": x})
        for p in sys.argv[1:3]]
(la, pa), (lb, pb) = outs
assert la.dtype == lb.dtype == np.int64 and (la == lb).all(), (la, lb)
assert len(pa) == len(pb) == 7 and all(a.keys() == b.keys() and all(a[k] == b[k] for k in a) for a, b in zip(pa, pb))
print("same", list(la))
"#;
    let run_py = |code: &str, args: &[&Path]| -> String {
        let out = std::process::Command::new(&py)
            .arg("-c")
            .arg(code)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run_py(script, &[&orig]);

    let m = pannc_onnx::import_path(&orig, &pannc_onnx::Limits::default()).unwrap();
    let g = &m.graph;
    let kept: Vec<String> = g
        .node_ids()
        .into_iter()
        .filter_map(|id| match &g.node(id).op {
            pannc_ir::Op::Opaque(o) => Some(o.qualified_name()),
            _ => None,
        })
        .collect();
    // The tail and the int32 labels it reads; ArgMax (before the tail) is pannc's own.
    for k in [
        "ai.onnx.ml.ZipMap",
        "ai.onnx.ml.ArrayFeatureExtractor",
        "Reshape",
        "Cast",
        "Constant",
    ] {
        assert!(kept.iter().any(|x| x == k), "{k} not kept: {kept:?}");
    }
    assert_eq!(kept.len(), 5, "{kept:?}");
    let e = pannc_interp::run(
        g,
        &[pannc_ir::Tensor::from_f32(&[2, 4], vec![0.5; 8]).unwrap()],
        &RunOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("'ZipMap'") && e.contains("ai.onnx.ml.ZipMap"),
        "{e}"
    );

    let out = tmp.join("pannc.onnx");
    std::fs::write(&out, pannc_onnx::export(&m).unwrap()).unwrap();
    assert_eq!(ort(&py, &["check", out.to_str().unwrap()]).trim(), "ok");
    let said = run_py(compare, &[&orig, &out]);
    assert!(said.starts_with("same"), "{said}");
    // and again through pannc: the same IR
    let back = pannc_onnx::import_path(&out, &pannc_onnx::Limits::default()).unwrap();
    assert_eq!(pannc_ir::print(&back.graph), pannc_ir::print(&m.graph));
}
