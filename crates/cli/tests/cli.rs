//! The `pannc` binary as a user meets it: exit codes, one-line errors on bad input, and the
//! happy paths of `inspect` and `run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pannc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pannc"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("runs pannc")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Exit code 1 and exactly one line on stderr that starts with "error:" and mentions `needle`.
fn assert_one_line_error(out: &Output, needle: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: exit code; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("note:")).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one error line, got: {stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{what}: {stderr}");
    assert!(
        lines[0].contains(needle),
        "{what}: error does not mention '{needle}': {stderr}"
    );
}

const X: &str = "fixtures/gelu_digits/test_x.npy";

// The hostile corpus (fixtures/bad) through inspect, compile and run: tests/hostile.rs.

#[test]
fn inspect_lists_every_unsupported_op_at_once() {
    // Text: the error alone, one line, every unsupported op type named once with its count.
    let out = pannc(&["inspect", "fixtures/bad/unsupported_op.onnx"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    let (e, l, f) = (
        err.find("Einsum ×1 (first: 'einsum_node'"),
        err.find("LSTM ×1 (first: 'lstm_node'"),
        err.find("com.example.FancyOp ×1 (first: 'custom_node'"),
    );
    assert!(
        e < l && l < f && e.is_some(),
        "grouped in file order: {err}"
    );
    // JSON: the same groups.
    let out = pannc(&["inspect", "fixtures/bad/unsupported_op.onnx", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = report["unsupported"].as_array().unwrap();
    let ops: Vec<&str> = list
        .iter()
        .map(|u| u["op_type"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["Einsum", "LSTM", "FancyOp"], "{report}");
    for u in list {
        assert_eq!(u["count"], 1);
        assert!(u["first_node"]
            .as_str()
            .is_some_and(|s| s.ends_with("_node")));
    }
    assert!(
        report.get("parameters").is_none(),
        "no half-report: {report}"
    );
}

/// Unsupported nodes are grouped by op type in order of first occurrence, with counts.
#[test]
fn inspect_groups_unsupported_ops_with_counts() {
    use pannc_ir::{DType, Dim, Graph, Op, TensorType};
    let mut g = Graph::new("grouping", 17);
    let ty = TensorType::new(DType::F32, vec![Dim::Sym("N".into()), Dim::Known(4)]);
    let mut x = g.add_input("x", Some(ty)).unwrap();
    for _ in 0..3 {
        x = g.add_simple("", Op::Relu, &[x]).unwrap();
    }
    g.set_outputs(vec![x]);
    let bytes = pannc_onnx::export_graph(&g).unwrap();
    // Rename the op types of the written nodes: Relu → Mish for the first and third node,
    // Relu → Celu for the second (same byte length, so the protobuf stays valid).
    let text = bytes.clone();
    let mut k = 0;
    let mut patched = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(b"Relu") {
            patched.extend_from_slice(if k == 1 { b"Celu" } else { b"Mish" });
            k += 1;
            i += 4;
        } else {
            patched.push(text[i]);
            i += 1;
        }
    }
    assert_eq!(k, 3);
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("grouping.onnx");
    std::fs::write(&p, patched).unwrap();
    let out = pannc(&["inspect", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3 unsupported node(s): Mish ×2 (first: "),
        "{err}"
    );
    let mish = err.find("Mish ×2").unwrap();
    let celu = err.find("Celu ×1").unwrap();
    assert!(mish < celu, "{err}");
}

#[test]
fn inspect_describes_a_fixture() {
    let out = pannc(&["inspect", "fixtures/resnet_fmnist/model.onnx", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["inputs"][0]["name"], "input");
    assert_eq!(
        r["inputs"][0]["shape"],
        serde_json::json!(["N", "1", "28", "28"])
    );
    assert_eq!(r["outputs"][0]["shape"], serde_json::json!(["N", "10"]));
    let ops: Vec<(String, u64)> = serde_json::from_value(r["ops"].clone()).unwrap();
    assert!(ops.contains(&("Conv".into(), 15)), "{ops:?}");
    assert!(r["parameters"].as_u64().unwrap() > 10_000);
    assert!(r["unsupported"].as_array().unwrap().is_empty());
    assert!(r["kept"].as_array().unwrap().is_empty());
    let text = pannc(&["inspect", "fixtures/resnet_fmnist/model.onnx"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("unsupported ops: none") && text.contains("f32[N,1,28,28]"),
        "{text}"
    );
}

#[test]
fn run_writes_logits() {
    let out_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-logits.npy");
    let out = pannc(&[
        "run",
        "fixtures/gelu_digits/model.onnx",
        "--input",
        X,
        "--output",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = pannc::npy::read(&out_path).unwrap();
    let n = pannc::npy::read(&root().join(X)).unwrap().shape()[0];
    assert_eq!(t.shape(), &[n, 10]);
    // Named input form gives the same bytes.
    let out2 = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-logits2.npy");
    let spec = format!("input={X}");
    let o = pannc(&[
        "run",
        "fixtures/gelu_digits/model.onnx",
        "-i",
        &spec,
        "-o",
        out2.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert_eq!(
        std::fs::read(&out_path).unwrap(),
        std::fs::read(&out2).unwrap()
    );
}

#[test]
fn bad_arrays_give_one_line_errors() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let good = std::fs::read(root().join(X)).unwrap();
    let truncated = tmp.join("truncated.npy");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let garbage = tmp.join("garbage.npy");
    std::fs::write(&garbage, b"definitely not an npy file").unwrap();
    let model = "fixtures/gelu_digits/model.onnx";
    assert_one_line_error(
        &pannc(&["run", model, "--input", truncated.to_str().unwrap()]),
        "too short",
        "truncated npy",
    );
    assert_one_line_error(
        &pannc(&["run", model, "--input", garbage.to_str().unwrap()]),
        "npy",
        "garbage npy",
    );
    // Right file, wrong model: the error names the expected shape.
    let wrong = "fixtures/resnet_fmnist/test_x.npy";
    assert_one_line_error(
        &pannc(&["run", model, "--input", wrong]),
        "64",
        "wrong shape",
    );
    assert_one_line_error(
        &pannc(&["run", model, "--input", "nosuch=x.npy"]),
        "no input named 'nosuch'",
        "bad name",
    );
    assert_one_line_error(
        &pannc(&["run", "no/such/model.onnx", "--input", X]),
        "cannot read",
        "missing model",
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(pannc(&[]).status.code(), Some(2));
    assert_eq!(pannc(&["run"]).status.code(), Some(2));
    assert_eq!(pannc(&["frobnicate"]).status.code(), Some(2));
    let help = pannc(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit codes"));
}

#[test]
fn compile_rejects_calibration_data_of_the_wrong_shape() {
    let out = pannc(&[
        "compile",
        "fixtures/resnet_fmnist/model.onnx",
        "--calib",
        "fixtures/gelu_digits/calib_x.npy",
    ]);
    assert_one_line_error(&out, "[N,1,28,28]", "wrong calibration shape");
    let out = pannc(&["compile", "fixtures/resnet_fmnist/model.onnx"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "neither --calib nor --input-range is a usage error"
    );
}

#[test]
fn compile_names_an_op_it_cannot_approximate() {
    let out = pannc(&[
        "compile",
        "fixtures/unapproximable/erf_mlp.onnx",
        "--calib",
        "fixtures/unapproximable/calib_x.npy",
    ]);
    assert_one_line_error(&out, "lonely_erf", "standalone Erf");
}

/// Same model and flags give byte-identical ONNX and report, run twice and with 1 vs 2 threads.
#[test]
fn compile_is_deterministic_across_runs_and_thread_counts() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let run = |tag: &str, threads: &str| {
        let onnx = tmp.join(format!("det-{tag}.onnx"));
        let report = tmp.join(format!("det-{tag}.json"));
        let out = Command::new(env!("CARGO_BIN_EXE_pannc"))
            .current_dir(root())
            .env("RAYON_NUM_THREADS", threads)
            .args([
                "compile",
                "fixtures/maxpool_mnist/model.onnx",
                "--calib",
                "fixtures/maxpool_mnist/calib_x.npy",
            ])
            .args([
                "--alpha",
                "7",
                "--check",
                "fixtures/maxpool_mnist/test_x.npy",
            ])
            .args([
                "-o",
                onnx.to_str().unwrap(),
                "--report",
                report.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (std::fs::read(onnx).unwrap(), std::fs::read(report).unwrap())
    };
    let a = run("a", "2");
    let b = run("b", "2");
    let c = run("c", "1");
    assert!(a.0 == b.0 && a.1 == b.1, "two runs differ");
    assert!(a.0 == c.0 && a.1 == c.1, "1 vs 2 threads differ");
}

/// The CKKS circuit (gelu_digits MLP, bootstraps placed for a 10-level budget) is
/// byte-identical run twice and with 1 vs 2 threads.
#[test]
fn circuit_is_deterministic_across_runs_and_thread_counts() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let run = |tag: &str, threads: &str| {
        let circuit = tmp.join(format!("det-circuit-{tag}.json"));
        let out = Command::new(env!("CARGO_BIN_EXE_pannc"))
            .current_dir(root())
            .env("RAYON_NUM_THREADS", threads)
            .args([
                "compile",
                "fixtures/gelu_digits/model.onnx",
                "--calib",
                "fixtures/gelu_digits/calib_x.npy",
                "--max-level",
                "10",
                "--circuit",
                circuit.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(circuit).unwrap()
    };
    let a = run("a", "2");
    let c: serde_json::Value = serde_json::from_slice(&a).unwrap();
    assert!(
        c["bootstraps"].as_array().is_some_and(|b| !b.is_empty()),
        "expected bootstraps under --max-level 10"
    );
    assert!(a == run("b", "2"), "two runs differ");
    assert!(a == run("c", "1"), "1 vs 2 threads differ");
}

/// `pannc compile --help` names every pass `--passes` accepts.
#[test]
fn compile_help_lists_every_pass() {
    let out = pannc(&["compile", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    for p in pannc_passes::all_passes() {
        assert!(
            help.contains(p.name()),
            "--help does not mention pass '{}'",
            p.name()
        );
    }
}

/// A PANN fed inputs far outside its calibrated ranges produces non-finite logits: `--check`
/// must count them as failures, name the first activation that left its interval, and not
/// report a finite "max deviation" as if all were well.
#[test]
fn check_counts_non_finite_logits_as_failures() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("check-nonfinite");
    std::fs::create_dir_all(&tmp).unwrap();
    let x = pannc::npy::read(&root().join(X)).unwrap();
    let big =
        pannc::ir::Tensor::from_f64(x.shape(), x.to_f64_vec().iter().map(|v| v * 1e4).collect())
            .unwrap()
            .cast(x.dtype());
    let xp = tmp.join("big.npy");
    pannc::npy::write(&xp, &big).unwrap();
    let report = tmp.join("report.json");
    let out = pannc(&[
        "compile",
        "fixtures/gelu_digits/model.onnx",
        "--calib",
        "fixtures/gelu_digits/calib_x.npy",
        "--check",
        xp.to_str().unwrap(),
        "--labels",
        "fixtures/gelu_digits/test_y.npy",
        "--report",
        report.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("FAILED:") && stderr.contains("non-finite"),
        "{stderr}"
    );
    assert!(stderr.contains("the first in graph order is"), "{stderr}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let n = r["check"]["samples"].as_u64().unwrap();
    let bad = r["check"]["non_finite_samples"].as_u64().unwrap();
    assert!(bad > 0, "{}", r["check"]);
    // Non-finite rows never count as correct or as agreeing.
    let top1 = r["check"]["pann_top1"].as_f64().unwrap();
    assert!(
        top1 <= (n - bad) as f64 / n as f64 + 1e-12,
        "{}",
        r["check"]
    );
    let agree = r["check"]["top1_agreement"].as_f64().unwrap();
    assert!(
        agree <= (n - bad) as f64 / n as f64 + 1e-12,
        "{}",
        r["check"]
    );
    assert!(r["check"]["first_outside"].as_str().is_some());
}

/// A batch-1 export (the default exporters' form when the example input has batch 1) runs on
/// all the samples given: `pannc run` gives exactly what it gives for the same network
/// exported with a symbolic batch.
#[test]
fn run_accepts_many_samples_for_a_batch_one_export() {
    use pannc_ir::{Dim, TensorType};
    let model = root().join("fixtures/gelu_digits/model.onnx");
    let mut m = pannc_onnx::import_path(&model, &pannc_onnx::Limits::default()).unwrap();
    let x = m.graph.inputs()[0];
    let ty = m.graph.value(x).ty.clone().unwrap();
    assert!(matches!(ty.shape[0], Dim::Sym(_)), "{ty}");
    let mut shape = ty.shape.clone();
    shape[0] = Dim::Known(1);
    m.graph.value_mut(x).ty = Some(TensorType::new(ty.dtype, shape));
    pannc_interp::infer_types(&mut m.graph).unwrap();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let batch1 = tmp.join("gelu_digits_batch1.onnx");
    std::fs::write(&batch1, pannc_onnx::export(&m).unwrap()).unwrap();
    let text = pannc(&["inspect", batch1.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("f32[1,64]"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    let (a, b) = (tmp.join("batch1-logits.npy"), tmp.join("batchN-logits.npy"));
    for (model, out) in [(batch1.as_path(), &a), (model.as_path(), &b)] {
        let o = pannc(&[
            "run",
            model.to_str().unwrap(),
            "-i",
            X,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let n = pannc::npy::read(&root().join(X)).unwrap().shape()[0];
    assert!(n > 1);
    assert_eq!(pannc::npy::read(&a).unwrap().shape(), &[n, 10]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

/// A model with an `ai.onnx.ml` node (a Normalizer after a MatMul, hand-encoded): `inspect`
/// describes it and lists the node as kept; `run` refuses with one line naming it.
#[test]
fn kept_nodes_are_listed_by_inspect_and_refused_by_run() {
    use pannc_ir::{DType, Dim, Graph, Op, Opaque, Tensor, TensorType};
    // NodeProto: input (1), output (2), name (3), op_type (4), domain (7), as protobuf strings.
    let field = |tag: u8, s: &str| {
        let mut v = vec![tag << 3 | 2, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    };
    let mut encoded = Vec::new();
    for (tag, s) in [
        (1, "h"),
        (2, "y"),
        (3, "norm"),
        (4, "Normalizer"),
        (7, "ai.onnx.ml"),
    ] {
        encoded.extend(field(tag, s));
    }
    let mut g = Graph::new("kept", 17);
    let ty = TensorType::new(DType::F32, vec![Dim::Sym("N".into()), Dim::Known(3)]);
    let x = g.add_input("x", Some(ty.clone())).unwrap();
    let w = g
        .add_constant("w", Tensor::from_f32(&[3, 3], vec![0.5; 9]).unwrap())
        .unwrap();
    let h = g.add_simple("mm", Op::MatMul, &[x, w]).unwrap();
    g.rename_value(h, "h".into()).unwrap();
    let op = Op::Opaque(Box::new(Opaque {
        domain: "ai.onnx.ml".into(),
        op_type: "Normalizer".into(),
        encoded,
        foreign_types: vec![None],
    }));
    let (_, outs) = g.add_node("norm", op, &[h], &["y".into()]).unwrap();
    g.value_mut(outs[0]).ty = Some(ty);
    g.set_outputs(outs);
    let mut m = pannc_onnx::Model::from_graph(g);
    m.opset_imports.push(("ai.onnx.ml".into(), 1));
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kept.onnx");
    std::fs::write(&p, pannc_onnx::export(&m).unwrap()).unwrap();
    let p = p.to_str().unwrap();
    let out = pannc(&["inspect", p]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("kept, not interpreted: ai.onnx.ml.Normalizer ×1 (first: 'norm')")
            && text.contains("ai.onnx.ml::Normalizer"),
        "{text}"
    );
    let xs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kept-x.npy");
    pannc::npy::write(&xs, &Tensor::from_f32(&[2, 3], vec![1.0; 6]).unwrap()).unwrap();
    let out = pannc(&["run", p, "-i", xs.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        "node 'norm' (Opaque): ai.onnx.ml.Normalizer is kept",
        "run",
    );
}
