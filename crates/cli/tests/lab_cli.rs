//! `pannc eval` and `pannc sensitivity` from the command line: deterministic JSON whatever the
//! thread count, the documented schema, and one-line errors on bad requests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

const F: &str = "fixtures/maxpool_mnist";

fn args<'a>(cmd: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        cmd.into(),
        format!("{F}/model.onnx"),
        "--data".into(),
        format!("{F}/test_x.npy"),
        "--labels".into(),
        format!("{F}/test_y.npy"),
        "--calib".into(),
        format!("{F}/calib_x.npy"),
        "-q".into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[test]
fn eval_json_is_deterministic_and_complete() {
    let a = args(
        "eval",
        &[
            "--alpha",
            "6,9",
            "--techniques",
            "baseline,shape+bias",
            "--json",
        ],
    );
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    let one = pannc(&a, "1");
    let two = pannc(&a, "2");
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    assert_eq!(
        one.stdout, two.stdout,
        "eval JSON differs between 1 and 2 threads"
    );
    let j: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    let backbone = j["backbone_top1"].as_f64().unwrap();
    assert!(backbone > 0.9 && backbone <= 1.0);
    let results = j["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for r in results {
        let t = r["top1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&t));
        assert!(r["levels"].as_u64().unwrap() > 0);
        assert!(r["alpha"].as_u64().is_some() && r["techniques"].is_string());
    }
    // Same α: techniques cost no levels.
    assert_eq!(results[0]["levels"], results[1]["levels"]);
    assert_eq!(results[2]["levels"], results[3]["levels"]);
    assert!(results[0]["levels"].as_u64() < results[2]["levels"].as_u64());
}

#[test]
fn sensitivity_json_lists_both_sides_of_every_activation() {
    let a = args(
        "sensitivity",
        &["--alpha", "4", "--noise", "constant", "--json"],
    );
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    let out = pannc(&a, "2");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = j["rows"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.len().is_multiple_of(2));
    for pair in rows.chunks(2) {
        assert_eq!(pair[0]["node"], pair[1]["node"]);
        assert_eq!(pair[0]["side"], "negative");
        assert_eq!(pair[1]["side"], "positive");
    }
}

#[test]
fn bad_requests_get_one_line_errors() {
    for (extra, needle) in [
        (&["--alpha", "3..20"][..], "--alpha"),
        (&["--techniques", "magic"][..], "unknown technique 'magic'"),
        (&["--budget", "150%"][..], "--budget"),
    ] {
        let a = args("eval", extra);
        let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        let out = pannc(&a, "1");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
    // Labels that do not match the data.
    let out = pannc(
        &[
            "eval",
            &format!("{F}/model.onnx"),
            "--data",
            &format!("{F}/test_x.npy"),
            "--labels",
            &format!("{F}/calib_y.npy"),
            "--calib",
            &format!("{F}/calib_x.npy"),
            "-q",
        ],
        "1",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--labels has 256 entries"), "{err}");
}
