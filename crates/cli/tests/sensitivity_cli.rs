//! `pannc sensitivity` flags of issue #15: `--noise pann-error`, `--sign`, `--side`,
//! `--layers`, `--techniques`, `--bootstrap`; JSON identical whatever the thread count; one-line
//! errors on requests that make no sense.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn pannc(args: &[String], threads: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pannc"))
        .args(args)
        .current_dir(root())
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("runs pannc")
}

/// maxpool_mnist: small, three ReLUs plus the ReLUs of its lowered max pools (not activations
/// of the backbone, so not perturbed).
const F: &str = "fixtures/maxpool_mnist";

fn args(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "sensitivity".into(),
        format!("{F}/model.onnx"),
        "--data".into(),
        format!("{F}/test_x.npy"),
        "--labels".into(),
        format!("{F}/test_y.npy"),
        "--calib".into(),
        format!("{F}/calib_x.npy"),
        "-q".into(),
    ];
    if !extra.contains(&"--bootstrap") {
        v.extend(["--bootstrap".to_string(), "200".to_string()]);
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn pann_error_json_is_deterministic_and_reproduces_the_pann() {
    let a = args(&["--alpha", "5", "--noise", "pann-error", "--json"]);
    let one = pannc(&a, "1");
    let two = pannc(&a, "2");
    let j = json(&one);
    assert!(
        one.stdout == two.stdout,
        "sensitivity JSON differs between 1 and 2 threads"
    );
    assert_eq!(j["noise"], "pann-error");
    assert_eq!(j["layers"], "all");
    assert_eq!(j["techniques"], "baseline");
    let rows = j["rows"].as_array().unwrap();
    let sides: Vec<&str> = rows.iter().map(|r| r["side"].as_str().unwrap()).collect();
    assert_eq!(sides, ["negative", "positive", "both"]);
    // The ReLUs of the lowered max pools are polynomials of the PANN that stand for no
    // activation of the backbone: the report says so (tests/sensitivity.rs checks, on
    // resnet_fmnist where every polynomial is an activation, that injecting everywhere is the
    // PANN).
    let missing = j["not_injected"].as_array().unwrap();
    assert_eq!(missing.len(), 6, "{missing:?}");
    assert!(missing
        .iter()
        .all(|m| m.as_str().unwrap().contains("MaxPool")));
    for r in rows {
        let (t, c) = (r["top1"].as_f64().unwrap(), &r["top1_ci"]);
        assert!(c[0].as_f64().unwrap() <= t && t <= c[1].as_f64().unwrap());
        assert!(!r["injected"].as_array().unwrap().is_empty());
    }
    for act in j["activations"].as_array().unwrap() {
        let s = act["negative_share_test"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&s));
        assert!(act["pann_error"]["negative"]["count"].as_u64().unwrap() > 0);
    }
}

#[test]
fn side_layers_and_sign_select_the_runs() {
    // One activation at a time, negative side only: one row per activation.
    let j = json(&pannc(
        &args(&[
            "--alpha",
            "6",
            "--noise",
            "pann-error",
            "--layers",
            "each",
            "--side",
            "negative",
            "--techniques",
            "shape",
            "--json",
        ]),
        "2",
    ));
    let rows = j["rows"].as_array().unwrap();
    let acts = j["activations"].as_array().unwrap();
    assert_eq!(rows.len(), acts.len());
    for (r, a) in rows.iter().zip(acts) {
        assert_eq!(r["side"], "negative");
        assert_eq!(r["node"], a["node"]);
    }
    assert_eq!(j["techniques"], "shape");
    // Constant noise: the sign is reported and changes the result.
    let run = |sign: &str| {
        json(&pannc(
            &args(&[
                "--alpha",
                "2",
                "--noise",
                "constant",
                &format!("--sign={sign}"),
                "--layers",
                "all",
                "--side",
                "both",
                "--json",
            ]),
            "2",
        ))
    };
    let (minus, plus) = (run("-"), run("+"));
    assert_eq!(minus["sign"], -1.0);
    assert_eq!(plus["sign"], 1.0);
    assert_eq!(minus["rows"].as_array().unwrap().len(), 1);
    assert_ne!(
        minus["rows"][0]["logit_dev_mean"],
        plus["rows"][0]["logit_dev_mean"]
    );
    // The text report shows the intervals.
    let out = pannc(&args(&["--alpha", "6", "--noise", "pann-error"]), "2");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("compiled PANN (simulated)"), "{text}");
    assert!(text.contains("95% bootstrap intervals"), "{text}");
}

#[test]
fn nonsense_requests_get_one_line_errors() {
    for (extra, needle) in [
        (&["--noise", "uniform", "--sign", "+"][..], "--sign applies"),
        (&["--techniques", "shape"][..], "--techniques applies"),
        (
            &["--noise", "pann-error", "--techniques", "shape+bias"][..],
            "use baseline or shape",
        ),
        (&["--side", "left"][..], "unknown side 'left'"),
        (&["--bootstrap", "0"][..], "--bootstrap"),
    ] {
        let out = pannc(&args(extra), "1");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
}
