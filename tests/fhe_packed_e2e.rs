//! Packed CKKS programs (`docs/packed-format.md`) across the two implementations of the spec:
//! pannc's (`pannc_fhe::packed`: validation, plaintext evaluation) and the OpenFHE runner's
//! (`python/pannc-openfhe`, package `pannc_openfhe`).
//!
//! * Programs written by the runner's test generator (strided/padded convolutions, multiplexed
//!   layouts, multi-ciphertext tensors, polynomials, rotations, residual adds, bootstraps) are
//!   valid for pannc and evaluate, in pannc's plaintext evaluator, to what the runner's
//!   `--plaintext` mode computes; broken ones are refused by both, for the same rule.
//!
//! The OpenFHE side needs a Python with the `openfhe` wheel and this package in
//! `PANNC_OPENFHE_PYTHON` (`scripts/test` sets it); without it the tests fail unless
//! `PANNC_SKIP_OPENFHE=1`.

mod common;

use common::*;
use pannc_ckks::fhe::packed;
use std::path::{Path, PathBuf};
use std::process::Command;

fn openfhe_python(test: &str) -> Option<PathBuf> {
    match std::env::var_os("PANNC_OPENFHE_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("PANNC_SKIP_OPENFHE").is_some_and(|v| v == "1") => {
            eprintln!("{test}: SKIPPED (PANNC_SKIP_OPENFHE=1)");
            None
        }
        None => panic!(
            "{test}: set PANNC_OPENFHE_PYTHON to a Python with openfhe and pannc_openfhe (scripts/test does), or PANNC_SKIP_OPENFHE=1 to skip"
        ),
    }
}

fn package_dir() -> PathBuf {
    root().join("python/pannc-openfhe")
}

/// Runs `python -m pannc_openfhe ARGS` from this checkout's package.
fn runner(py: &Path, args: &[&str]) -> std::process::Output {
    Command::new(py)
        .arg("-m")
        .arg("pannc_openfhe")
        .args(args)
        .env("PYTHONPATH", package_dir())
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("running python -m pannc_openfhe")
}

fn read_f64(path: &Path) -> Vec<f64> {
    pannc::npy::read(path).unwrap().to_f64_vec()
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The runner's generator writes programs; pannc reads and validates them and its plaintext
/// evaluator computes what the runner's plaintext mode computed (y.npy), to 1e-12 relative.
/// Broken copies are refused by pannc for the rule the runner named.
#[test]
fn runner_programs_evaluate_alike_in_pannc() {
    let Some(py) = openfhe_python("runner_programs_evaluate_alike_in_pannc") else {
        return;
    };
    let out = tmp("packed-examples");
    let st = Command::new(&py)
        .arg(package_dir().join("tests/emit_examples.py"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success(), "emit_examples.py failed");
    let mut valid = 0;
    let mut refused = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for dir in entries {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if let Some(case) = name.strip_prefix("bad_") {
            let rule = std::fs::read_to_string(dir.join("expect.txt")).unwrap();
            let err = match packed::read_dir(&dir) {
                Ok(_) => panic!("{case}: pannc accepted a program the runner refuses ({rule})"),
                Err(e) => e.to_string(),
            };
            assert!(!err.contains('\n'), "{case}: {err}");
            assert!(
                err.contains(rule.trim()),
                "{case}: expected {rule}, pannc says: {err}"
            );
            refused += 1;
            continue;
        }
        let (p, w) = packed::read_dir(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        let x = read_f64(&dir.join("x.npy"));
        let want = read_f64(&dir.join("y.npy"));
        let ev = packed::eval::Evaluator::new(&p, &w).unwrap();
        let got = ev.outputs(&[&x]).unwrap().remove(0);
        assert_eq!(got.len(), want.len(), "{name}");
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let worst = got
            .iter()
            .zip(&want)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        eprintln!("{name}: pannc vs runner plaintext: max |Δ| = {worst:.2e} (|y| ≤ {scale:.2})");
        assert!(worst <= 1e-12 * scale.max(1.0), "{name}: {worst}");
        valid += 1;
    }
    assert_eq!((valid, refused), (4, 8));
}

/// The runner refuses a broken program with one line naming the op and the rule, exit 1,
/// before generating any key (nothing about a CKKS context is printed).
#[test]
fn runner_refuses_invalid_programs_before_keygen() {
    let Some(py) = openfhe_python("runner_refuses_invalid_programs_before_keygen") else {
        return;
    };
    let out = tmp("packed-bad");
    let st = Command::new(&py)
        .arg(package_dir().join("tests/emit_examples.py"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let x = out.join("x.npy");
    pannc::npy::write(
        &x,
        &pannc_ir::Tensor::from_f64(&[3, 8, 8], vec![0.1; 192]).unwrap(),
    )
    .unwrap();
    for case in ["rotation_key", "short_diag", "level"] {
        let dir = out.join(format!("bad_{case}"));
        let o = runner(
            &py,
            &[
                "run",
                dir.to_str().unwrap(),
                "--input",
                x.to_str().unwrap(),
                "--insecure",
                "--ring-dim",
                "4096",
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{case}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{case}: {err}");
        assert!(err.starts_with("error: "), "{case}: {err}");
        assert!(
            err.contains("op #") && err.contains("[rule "),
            "{case}: {err}"
        );
        assert!(!err.contains("context"), "{case}: {err}");
    }
}

fn argmax(row: &[f64]) -> usize {
    (0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b })
}

/// `fixtures/resnet_digits` (stem conv, a residual block with a stride-2 conv and a 1×1
/// stride-2 shortcut, three ReLU polynomials, global average pool, dense) compiled to a packed
/// program with bootstraps (levels between bootstraps capped so that at least one is needed),
/// run encrypted by the OpenFHE runner at ring dimension 2^12 (`--insecure`) with real
/// `EvalBootstrap`s on a few test images: the decrypted logits equal pannc's plaintext
/// simulation of the PANN within 1e-2 of the largest logit, the classes agree, every
/// ciphertext is at its planned level.
#[test]
fn resnet_digits_runs_encrypted_with_real_bootstraps() {
    let Some(py) = openfhe_python("resnet_digits_runs_encrypted_with_real_bootstraps") else {
        return;
    };
    use pannc_driver as pann;
    let fx = fixture("resnet_digits");
    let m = load(&fx.join("model.onnx"));
    let calib = pannc::npy::read(&fx.join("calib_x.npy")).unwrap();
    let mut g = m.graph.clone();
    let policy = pann::Policy {
        alpha: 7,
        ..Default::default()
    };
    pann::compile(&mut g, vec![calib.clone()], policy).unwrap();
    let max_level = 10;
    let opts = pann::PackedEmitOptions {
        max_level: Some(max_level),
        security: pann::Security::Insecure,
        ..Default::default()
    };
    let e = pann::emit_packed(&g, std::slice::from_ref(&calib), &opts).unwrap();
    let p = &e.program;
    assert!(p.stats.bootstraps >= 1, "no bootstrap: {:?}", p.stats);
    assert!(p.depth <= max_level);
    let dir = tmp("resnet-digits-packed");
    let prog = dir.join("program");
    packed::write_dir(&prog, p, &e.weights).unwrap();

    let n = 3;
    let x = pannc::npy::read(&fx.join("test_x.npy"))
        .unwrap()
        .slice_batch(0, n);
    let sim = pann::simulate(&g, std::slice::from_ref(&x), 64).unwrap();
    let sim = sim.outputs[0].to_f64_vec();
    let k = sim.len() / n;
    let (xp, yp, rp) = (
        dir.join("x.npy"),
        dir.join("y.npy"),
        dir.join("report.json"),
    );
    pannc::npy::write(&xp, &x).unwrap();
    let t0 = std::time::Instant::now();
    let o = runner(
        &py,
        &[
            "run",
            prog.to_str().unwrap(),
            "--input",
            xp.to_str().unwrap(),
            "--output",
            yp.to_str().unwrap(),
            "--insecure",
            "--ring-dim",
            "4096",
            "--threads",
            "1",
            "--report",
            rp.to_str().unwrap(),
        ],
    );
    let secs = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "runner failed:\n{stderr}");
    assert!(stderr.contains("INSECURE"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rp).unwrap()).unwrap();
    assert_eq!(report["ring_dim"].as_u64(), Some(4096));
    assert_eq!(report["insecure"].as_bool(), Some(true));
    let samples = report["per_sample"].as_array().unwrap();
    assert_eq!(samples.len(), n);
    for s in samples {
        assert_eq!(
            s["counts"]["bootstraps"].as_u64(),
            Some(p.stats.bootstraps as u64)
        );
        assert_eq!(s["level_mismatches"].as_array().map(Vec::len), Some(0));
        // Real bootstraps: they take time (a decrypt/re-encrypt stand-in takes milliseconds).
        for t in s["seconds"]["bootstrap_each"].as_array().unwrap() {
            assert!(t.as_f64().unwrap() > 0.3, "{t}");
        }
    }
    let y = read_f64(&yp);
    assert_eq!(y.len(), n * k);
    let mut worst = 0.0f64;
    for i in 0..n {
        let (a, s) = (&y[i * k..(i + 1) * k], &sim[i * k..(i + 1) * k]);
        let scale = s.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = a
            .iter()
            .zip(s)
            .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()))
            / scale;
        worst = worst.max(err);
        assert_eq!(
            argmax(a),
            argmax(s),
            "image {i}: classes differ: {a:?} vs {s:?}"
        );
    }
    eprintln!(
        "resnet_digits on OpenFHE (ring 2^12, insecure): {n} images in {secs:.1} s, {} bootstraps each, decrypted vs simulated max error {worst:.2e} of the largest logit",
        p.stats.bootstraps
    );
    assert!(worst < 1e-2, "decrypted vs simulated: {worst}");
}
