//! `pannc compile` on the ViT fixture (issue #13): the ONNX PANN is written; the circuit
//! emitters (slot-per-sample `--emit circuit`, packed `--emit ckks`) refuse it in one line
//! naming the first node they cannot lower and listing what else the graph needs.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn compile(extra: &[&str]) -> std::process::Output {
    let vit = root().join("fixtures/vit_fmnist");
    Command::new(env!("CARGO_BIN_EXE_pannc"))
        .arg("compile")
        .arg(vit.join("model.onnx"))
        .arg("--calib")
        .arg(vit.join("calib_x.npy"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn vit_compiles_to_onnx_and_emitters_refuse_in_one_line() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vit-cli");
    std::fs::create_dir_all(&tmp).unwrap();
    let onnx = tmp.join("vit_pann.onnx");
    let out = compile(&["-o", onnx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("ct×ct per sample"), "{err}");
    assert!(onnx.exists());
    for (emit, what) in [
        ("circuit", "circuit emitter"),
        ("ckks", "packed CKKS lowering"),
    ] {
        let dest = tmp.join(format!("vit.{emit}"));
        let out = compile(&["--emit", emit, "-o", dest.to_str().unwrap()]);
        assert!(!out.status.success(), "--emit {emit} accepted the ViT");
        let err = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(
            errors[0].contains(what) && errors[0].contains("node '"),
            "{}",
            errors[0]
        );
        // And what else it lacks: attention's products of two activations, at least.
        assert!(
            errors[0].contains("lacks:") && errors[0].contains("product of two activations ×"),
            "{}",
            errors[0]
        );
    }
}
