//! `pannc compile --budget` (issue #14): the PANN and the report are byte-identical across
//! runs and thread counts. On 64 calibration images of `resnet_fmnist` (seconds, not minutes).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The first `n` images of `calib_x.npy` (shape `(256, 1, 28, 28)`, f32) as a .npy of their own.
fn first_images(n: usize, to: &Path) {
    let bytes = std::fs::read(root().join("fixtures/resnet_fmnist/calib_x.npy")).unwrap();
    let header_len = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8(bytes[10..header_len].to_vec()).unwrap();
    assert!(header.contains("(256, 1, 28, 28)"), "{header}");
    let new = header.replace("(256, 1, 28, 28)", &format!("({n:<3}, 1, 28, 28)"));
    assert_eq!(new.len(), header.len());
    let mut out = bytes[..10].to_vec();
    out.extend_from_slice(new.as_bytes());
    out.extend_from_slice(&bytes[header_len..header_len + n * 28 * 28 * 4]);
    std::fs::write(to, out).unwrap();
}

fn compile_budget(dir: &Path, threads: usize, run: usize) -> (Vec<u8>, Vec<u8>, String) {
    let out = dir.join(format!("pann{threads}-{run}.onnx"));
    let report = dir.join(format!("report{threads}-{run}.json"));
    let res = Command::new(env!("CARGO_BIN_EXE_pannc"))
        .arg("compile")
        .arg(root().join("fixtures/resnet_fmnist/model.onnx"))
        .arg("--calib")
        .arg(dir.join("calib.npy"))
        .args(["--budget", "2%", "-o"])
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    (
        std::fs::read(&out).unwrap(),
        std::fs::read(&report).unwrap(),
        String::from_utf8(res.stdout).unwrap(),
    )
}

#[test]
fn budget_output_is_byte_identical_across_runs_and_threads() {
    let dir = std::env::temp_dir().join(format!("pannc-budget-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    first_images(64, &dir.join("calib.npy"));
    let a = compile_budget(&dir, 1, 0);
    let b = compile_budget(&dir, 2, 0);
    let c = compile_budget(&dir, 2, 1);
    std::fs::remove_dir_all(&dir).ok();
    assert!(a.2.contains("budget 2.00%"), "{}", a.2);
    assert_eq!(a.2, b.2, "printed report differs between 1 and 2 threads");
    assert_eq!(b.2, c.2, "printed report differs between runs");
    assert!(a.1 == b.1 && b.1 == c.1, "JSON report differs");
    assert!(a.0 == b.0, "ONNX differs between 1 and 2 threads");
    assert!(b.0 == c.0, "ONNX differs between runs");
}
