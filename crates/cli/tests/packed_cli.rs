//! `pannc compile --emit ckks`: the packed CKKS program of the `resnet_digits` fixture is
//! written as a valid directory (program.json + weights.npz), its report names bootstraps,
//! rotation keys, the CKKS parameters and the estimate, the output is byte-identical across
//! runs and thread counts, `--help` teaches the flags, and misuse gives one-line errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pannc_ckks::fhe::packed::{self, OpKind};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn pannc(args: &[&str], threads: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pannc"))
        .args(args)
        .current_dir(root())
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("runs pannc")
}

const MODEL: &str = "fixtures/resnet_digits/model.onnx";
const CALIB: &str = "fixtures/resnet_digits/calib_x.npy";

fn compile(dir: &Path, threads: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "compile",
        MODEL,
        "--calib",
        CALIB,
        "--alpha",
        "5",
        "--techniques",
        "shape+bias",
        "--emit",
        "ckks",
        "--insecure",
        "-o",
        dir.to_str().unwrap(),
    ];
    args.extend(extra);
    pannc(&args, threads)
}

#[test]
fn emit_ckks_writes_a_valid_deterministic_program() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dirs: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|t| tmp.join(format!("packed-{t}")))
        .collect();
    let mut stderr = String::new();
    for (d, threads) in dirs.iter().zip(["2", "2", "1"]) {
        let out = compile(d, threads, &["--max-level", "8"]);
        stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
    }
    for f in ["program.json", "weights.npz"] {
        let a = std::fs::read(dirs[0].join(f)).unwrap();
        assert!(
            a == std::fs::read(dirs[1].join(f)).unwrap(),
            "{f}: two runs differ"
        );
        assert!(
            a == std::fs::read(dirs[2].join(f)).unwrap(),
            "{f}: 1 vs 2 threads differ"
        );
    }
    let (p, _w) = packed::read_dir(&dirs[0]).unwrap();
    // The CI fixture's promises: ring dimension 2^12 insecure, ≥ 1 bootstrap under a small
    // budget, within the budget.
    assert!(p.slots <= 2048, "{}", p.slots);
    assert_eq!(p.ckks.ring_dim, 4096);
    assert_eq!(p.ckks.security, "HEStd_NotSet");
    assert_eq!(p.ckks.levels, 8);
    assert!(p.depth <= 8);
    assert!(p.stats.bootstraps >= 1);
    assert!(p
        .ops
        .iter()
        .any(|o| matches!(o.kind, OpKind::Bootstrap { .. })));
    for needle in [
        "bootstraps: ",
        "rotation keys: ",
        "ring dimension 4096",
        "INSECURE",
        "estimated encrypted time",
        "vs the interpreter",
        "wrote ",
    ] {
        assert!(
            stderr.contains(needle),
            "report lacks '{needle}':\n{stderr}"
        );
    }
}

#[test]
fn emit_ckks_secure_parameters_by_default() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packed-secure");
    let out = pannc(
        &[
            "compile",
            MODEL,
            "--calib",
            CALIB,
            "--alpha",
            "5",
            "--emit",
            "ckks",
            "--max-level",
            "10",
            "-o",
            tmp.to_str().unwrap(),
            "--report",
            tmp.join("r.json").to_str().unwrap(),
        ],
        "2",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (p, _) = packed::read_dir(&tmp).unwrap();
    assert_eq!(p.ckks.security, "HEStd_128_classic");
    assert_eq!(p.ckks.ring_dim, 1 << 17);
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.join("r.json")).unwrap()).unwrap();
    assert!(r["ckks"]["ops"].as_array().is_some_and(|o| !o.is_empty()));
    assert!(r["ckks"]["estimate"]["seconds"].as_f64().is_some());
}

/// Exit code 1 and one `error:` line mentioning `needle`.
fn one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error") || l.contains("panicked"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{stderr}"
    );
}

#[test]
fn emit_ckks_misuse_is_a_one_line_error() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packed-bad");
    let d = tmp.to_str().unwrap();
    let base = ["compile", MODEL, "--calib", CALIB, "--alpha", "5"];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend(extra);
        pannc(&a, "2")
    };
    one_line_error(&with(&["--emit", "ckks"]), "needs -o DIR");
    one_line_error(
        &with(&["--emit", "ckks", "--slots", "1000", "-o", d]),
        "power of two",
    );
    one_line_error(
        &with(&["--slots", "1024", "-o", "/tmp/x.onnx"]),
        "need --emit ckks",
    );
    // A polynomial deeper than the budget: no placement can help.
    one_line_error(
        &with(&["--emit", "ckks", "--insecure", "--max-level", "3", "-o", d]),
        "max level 3",
    );
    // Slots smaller than the tensors: they span several ciphertexts and it still works.
    let out = with(&["--emit", "ckks", "--insecure", "--slots", "256", "-o", d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (p, _) = packed::read_dir(&tmp).unwrap();
    assert_eq!(p.slots, 256);
    assert!(p.values.iter().any(|v| v.ciphertexts > 1));
}

#[test]
fn compile_help_teaches_the_packed_flags() {
    let out = pannc(&["compile", "--help"], "2");
    let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
    for needle in [
        "--emit",
        "ckks",
        "--slots",
        "--insecure",
        "--max-level",
        "program.json",
        "bootstrap",
    ] {
        assert!(help.contains(needle), "--help lacks '{needle}'");
    }
}
