//! The hostile-input corpus (`fixtures/bad/`) through the `pannc` binary, and the memory limit
//! (`--max-memory`, `PANNC_MAX_MEMORY`).
//!
//! Every corpus file, given to `pannc inspect`, `pannc compile` and `pannc run`, must end with
//! exit code 1 and exactly one line on stderr that names the problem, within a deadline (no
//! hang) and under a 1 GiB address-space limit (`ulimit -v`: any allocation that would take the
//! process over it fails, and Rust aborts instead of returning an error). Each file's three
//! stderr lines are an insta snapshot (`tests/snapshots/hostile__<file>.snap`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn tmp() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile")
}

/// Address-space limit of every run, in KiB (1 GiB; the default model limit is 4 GiB).
const ULIMIT_KIB: u64 = 1 << 20;
/// Longest a single run may take.
const DEADLINE: Duration = Duration::from_secs(60);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `pannc args` from the repository root under `ulimit -v` and a deadline (killed and
/// reported when it passes). `env` is added to the environment.
fn pannc(args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = tmp();
    std::fs::create_dir_all(&dir).unwrap();
    // Unique per call (tests run in parallel threads).
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (out_p, err_p) = (dir.join(format!("{k}.out")), dir.join(format!("{k}.err")));
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {ULIMIT_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_pannc"))
        .args(args)
        .current_dir(root())
        .env_remove("PANNC_MAX_MEMORY")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(File::create(&out_p).unwrap())
        .stderr(File::create(&err_p).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawns pannc");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pannc {args:?} still running after {DEADLINE:?} (hang)");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    Run {
        code: status.code(),
        stdout: read(&out_p),
        stderr: read(&err_p),
    }
}

/// Exit code 1 and exactly one stderr line, `error: ...`, that mentions `needle`; no panic,
/// no abort, no allocation failure.
fn one_line_error(r: &Run, needle: &str, what: &str) -> String {
    let e = &r.stderr;
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "memory allocation",
        "stack overflow",
    ] {
        assert!(!e.contains(bad), "{what}: {bad}: {e}");
    }
    assert_eq!(r.code, Some(1), "{what}: exit code; stderr: {e}");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: expected one line, got: {e}");
    assert!(lines[0].starts_with("error: "), "{what}: {e}");
    assert!(
        lines[0].contains(needle),
        "{what}: error does not mention {needle:?}: {e}"
    );
    lines[0].to_string()
}

/// What each corpus file's error must mention (the README's "message names" column, written
/// by hand: a snapshot alone would accept whatever the code prints).
const EXPECTED: &[(&str, &str)] = &[
    ("attribute_wrong_type", "'strides' must be INTS, not FLOAT"),
    ("bad_attribute", "strides"),
    ("bogus_length", "cannot decode"),
    ("constant_node_huge", "per-tensor limit"),
    ("constant_of_shape_huge", "per-tensor limit"),
    (
        "conv_pad_huge_output_computed",
        "value 'y' (output of node 'conv_pad', Conv): shape [N, 1, 32004, 32004]",
    ),
    ("cycle", "cycle"),
    ("dangling_input", "ghost"),
    ("deep_nesting", "recursion limit"),
    ("duplicate_name", "defined twice"),
    ("empty", "no graph"),
    (
        "ext_absolute_path",
        "location '/etc/passwd' is an absolute path",
    ),
    (
        "ext_bad_offset",
        "offset '12abc' is not a non-negative decimal integer",
    ),
    ("ext_directory", "location '.' is not a regular file"),
    ("ext_huge", "per-tensor limit"),
    (
        "ext_length_mismatch",
        "length 60 disagrees with its shape [4, 4] of FLOAT",
    ),
    ("ext_no_location", "has no 'location'"),
    (
        "ext_parent_dir",
        "location '../README.md' has a '..' component",
    ),
    (
        "ext_past_end",
        "runs past the end of 'ext_small.data' (16 bytes)",
    ),
    (
        "ext_symlink_outside",
        "resolves (through a symbolic link) to a file outside the model's directory",
    ),
    ("external_data", "location 'weights.bin' does not exist"),
    ("huge_dims", "per-tensor limit"),
    ("huge_input_shape", "value 'x'"),
    ("huge_rank", "rank 100000"),
    ("huge_value_info", "value 'h'"),
    ("if_subgraph", "unsupported"),
    ("input_shape_overflow", "value 'x'"),
    ("long_initializer", "holds 64"),
    ("loop_subgraph", "unsupported"),
    ("maxpool_indices", "Indices"),
    ("missing_graph", "no graph"),
    ("negative_dim", "negative"),
    ("no_opset", "opset"),
    ("no_outputs", "no outputs"),
    ("non_utf8_node_name", "UTF-8"),
    ("non_utf8_tensor_name", "UTF-8"),
    ("opset_too_new", "opset 99"),
    ("opset_too_old", "opset 1 "),
    ("output_never_produced", "'never'"),
    ("random_bytes", "cannot decode"),
    ("reshape_negative_computed", "-2"),
    ("reshape_overflow_computed", "invalid dimension"),
    ("self_loop", "cycle through node 'relu_self'"),
    ("sequence_input", "sequence"),
    ("shape_overflow", "overflows"),
    ("short_initializer", "promises"),
    ("total_too_large", "total limit"),
    ("training_batchnorm", "training_mode"),
    ("truncated", "cannot decode"),
    ("undefined_dtype", "UNDEFINED"),
    ("unsupported_op", "unsupported"),
    ("wrong_dtype", "COMPLEX64"),
    ("wrong_dtype_initializer", "STRING"),
    ("zero_outputs", "'relu_no_output'"),
];

fn corpus() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("fixtures/bad"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".onnx").map(str::to_string))
        .collect();
    v.sort();
    v
}

#[test]
fn corpus_is_complete() {
    let names = corpus();
    assert!(names.len() >= 30, "only {} hostile files", names.len());
    let expected: Vec<String> = EXPECTED.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        names, expected,
        "every corpus file needs an expectation here"
    );
}

/// One snapshot per file: the stderr line of `inspect`, `compile` and `run`.
#[test]
fn hostile_files_give_one_line_errors() {
    let out = tmp().join("out.onnx");
    let out = out.to_str().unwrap();
    let x = "fixtures/gelu_digits/test_x.npy";
    let mut settings = insta::Settings::clone_current();
    settings.set_omit_expression(true);
    let _g = settings.bind_to_scope();
    for (name, needle) in EXPECTED {
        let path = format!("fixtures/bad/{name}.onnx");
        let runs = [
            ("inspect", pannc(&["inspect", &path], &[])),
            (
                "compile",
                pannc(&["compile", &path, "--input-range", "-1,1", "-o", out], &[]),
            ),
            ("run", pannc(&["run", &path, "--input", x], &[])),
        ];
        let mut snap = String::new();
        for (cmd, r) in &runs {
            let line = one_line_error(r, needle, &format!("{cmd} {name}"));
            snap.push_str(&format!("{cmd}: {line}\n"));
        }
        insta::assert_snapshot!(name.to_string(), snap);
    }
}

const R20: &str = "fixtures/resnet20_cifar/model.onnx";
const R20_X: &str = "fixtures/resnet20_cifar/calib_x.npy";

/// The ResNet-20-shaped model (1.07 MiB of weights) loads under the default limit and is refused,
/// naming the tensor that crosses the total, under `--max-memory 1MiB`.
#[test]
fn max_memory_flag() {
    let ok = pannc(&["inspect", R20], &[]);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert!(ok.stdout.contains("parameters:"), "{}", ok.stdout);
    let ok = pannc(&["inspect", R20, "--max-memory", "2MiB"], &[]);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    for args in [
        vec!["inspect", R20, "--max-memory", "1MiB"],
        vec!["run", R20, "--max-memory", "1MiB", "-i", R20_X],
        vec![
            "compile",
            R20,
            "--max-memory",
            "1MiB",
            "--input-range",
            "-1,1",
        ],
    ] {
        let r = pannc(&args, &[]);
        let line = one_line_error(&r, "more than the total limit of 1048576 bytes", args[0]);
        // the tensor, its shape and size, the total reached and how to raise the limit
        for part in [
            "tensor '",
            "shape [",
            "of FLOAT needs",
            "brings the model's constant data to",
            "--max-memory",
        ] {
            assert!(line.contains(part), "{args:?}: {line}");
        }
    }
}

/// A single tensor over the limit is refused as such, before the total: a model with one
/// 160 000-byte weight loads with `--max-memory 200KB` and is refused with `150KB`.
#[test]
fn max_memory_bounds_single_tensors() {
    use pannc_ir::{DType, Dim, Graph, Op, Tensor, TensorType};
    let mut g = Graph::new("one_big_weight", 17);
    let ty = TensorType::new(DType::F32, vec![Dim::Sym("N".into()), Dim::Known(40_000)]);
    let x = g.add_input("x", Some(ty)).unwrap();
    let w = g
        .add_constant(
            "w_big",
            Tensor::from_f32(&[40_000], vec![0.5; 40_000]).unwrap(),
        )
        .unwrap();
    let y = g.add_simple("add", Op::Add, &[x, w]).unwrap();
    g.set_outputs(vec![y]);
    std::fs::create_dir_all(tmp()).unwrap();
    let p = tmp().join("one_big_weight.onnx");
    std::fs::write(&p, pannc_onnx::export_graph(&g).unwrap()).unwrap();
    let p = p.to_str().unwrap();
    let r = pannc(&["inspect", p, "--max-memory", "200KB"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = pannc(&["inspect", p, "--max-memory", "150KB"], &[]);
    let line = one_line_error(
        &r,
        "more than the per-tensor limit of 150000 bytes",
        "150KB",
    );
    assert!(
        line.contains("tensor 'w_big': shape [40000] of FLOAT needs 160000 bytes"),
        "{line}"
    );
}

#[test]
fn max_memory_env_var() {
    let r = pannc(&["inspect", R20], &[("PANNC_MAX_MEMORY", "1MiB")]);
    one_line_error(&r, "total limit of 1048576 bytes", "env");
    // the flag wins over the environment
    let r = pannc(
        &["inspect", R20, "--max-memory", "4GiB"],
        &[("PANNC_MAX_MEMORY", "1MiB")],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = pannc(&["inspect", R20], &[("PANNC_MAX_MEMORY", "lots")]);
    one_line_error(&r, "PANNC_MAX_MEMORY=lots", "bad env");
}

#[test]
fn max_memory_bad_values_are_usage_errors() {
    for v in ["0", "lots", "-1GiB", "4 parsecs"] {
        let r = pannc(&["inspect", R20, &format!("--max-memory={v}")], &[]);
        assert_eq!(r.code, Some(2), "{v}: {}", r.stderr);
        assert!(r.stderr.contains("--max-memory"), "{v}: {}", r.stderr);
    }
}

#[test]
fn max_memory_is_in_help() {
    for cmd in ["inspect", "run", "compile"] {
        let r = pannc(&[cmd, "--help"], &[]);
        assert_eq!(r.code, Some(0));
        assert!(
            r.stdout.contains("--max-memory <SIZE>") && r.stdout.contains("PANNC_MAX_MEMORY"),
            "{cmd}: {}",
            r.stdout
        );
    }
}

/// A file far larger than any model within the limit is refused before it is read, and a
/// file without end (`/dev/zero`) is read only up to the cap.
#[test]
fn oversized_files_are_refused() {
    let p = tmp().join("big.onnx");
    std::fs::create_dir_all(tmp()).unwrap();
    // 1 MiB limit: files up to 2 × 1 MiB + 16 MiB are read; this one has 20 MB
    std::fs::write(&p, vec![0u8; 20_000_000]).unwrap();
    let r = pannc(
        &["inspect", p.to_str().unwrap(), "--max-memory", "1MiB"],
        &[],
    );
    one_line_error(&r, "the file has 20000000 bytes", "big file");
    std::fs::remove_file(&p).unwrap();
    let r = pannc(&["inspect", "/dev/zero", "--max-memory", "1MiB"], &[]);
    one_line_error(&r, "is larger than 18874368 bytes", "/dev/zero");
}

/// Fuzz findings (`fuzz/findings/onnx/`) that `pannc` now refuses: models whose inferred
/// values are tiny in the file but need gigabytes when run.
#[test]
fn fixed_fuzz_findings_are_one_line_errors() {
    for (file, needle) in [
        // Conv(x, x) of x [32768, 0, 4, 6]: the output [32768, 32768, 1, 1] needs 4 GiB
        (
            "timeout-7b4c530fd48c8762.bin",
            "shape [32768, 32768, 1, 1] of f32",
        ),
        // a 1×1 Conv padding a 4×4 input by 32000: 3.82 GiB per sample
        ("alloc-min-conv-pad.bin", "per sample"),
    ] {
        let path = format!("fuzz/findings/onnx/{file}");
        for cmd in ["inspect", "run"] {
            let args: Vec<&str> = match cmd {
                "inspect" => vec!["inspect", &path],
                _ => vec!["run", &path, "--input", "fixtures/gelu_digits/test_x.npy"],
            };
            let r = pannc(&args, &[]);
            one_line_error(&r, needle, &format!("{cmd} {file}"));
        }
    }
}

/// External data never reaches outside the model's directory. A model in `sandbox/model/`
/// whose weight lives in an external file is pointed, by rewriting the location stored in the
/// file, at a sentinel next to that directory — through `..`, and through symbolic links — and
/// at a FIFO there (opening one blocks until a writer comes, so any read would hang past the
/// deadline). Every variant is refused at once without the sentinel's bytes in the error; the
/// same model pointing at a copy of the data inside its directory loads and runs.
#[test]
fn external_data_stays_in_the_model_directory() {
    use pannc_ir::{DType, Dim, Graph, Op, Tensor, TensorType};
    let base = tmp().join("ext-sandbox");
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("model");
    std::fs::create_dir_all(&dir).unwrap();

    // x [N, 16] + w [16], w written to "m.onnx.data" (11 characters).
    let mut g = Graph::new("ext", 17);
    let ty = TensorType::new(DType::F32, vec![Dim::Sym("N".into()), Dim::Known(16)]);
    let x = g.add_input("x", Some(ty)).unwrap();
    let w = g
        .add_constant("w", Tensor::from_f32(&[16], vec![0.25; 16]).unwrap())
        .unwrap();
    let y = g.add_simple("add", Op::Add, &[x, w]).unwrap();
    g.set_outputs(vec![y]);
    let opts = pannc_onnx::ExportOptions {
        max_inline_bytes: 0,
        min_external_tensor_bytes: 0,
        ..Default::default()
    };
    let model = dir.join("m.onnx");
    let data = pannc_onnx::export_to_path(&pannc_onnx::Model::from_graph(g), &model, &opts)
        .unwrap()
        .expect("forced external data");
    let bytes = std::fs::read(&model).unwrap();
    assert_eq!(bytes.windows(11).filter(|w| w == b"m.onnx.data").count(), 1);

    // 64 bytes (the size of w) that must never show up anywhere.
    let sentinel: Vec<u8> = b"SENTINEL:".iter().cycle().take(64).copied().collect();
    std::fs::write(base.join("sec.data"), &sentinel).unwrap();
    std::fs::copy(&data, dir.join("inside.data")).unwrap();
    std::os::unix::fs::symlink("../sec.data", dir.join("lnk_sec.bin")).unwrap();
    let st = Command::new("mkfifo")
        .arg(base.join("fif.data"))
        .status()
        .unwrap();
    assert!(st.success(), "mkfifo");
    std::os::unix::fs::symlink("../fif.data", dir.join("lnk_fif.bin")).unwrap();
    std::os::unix::fs::symlink(base.join("sec.data"), dir.join("lnk_abs.bin")).unwrap();

    let variant = |location: &str| -> String {
        assert_eq!(location.len(), 11);
        let mut b = bytes.clone();
        let at = b.windows(11).position(|w| w == b"m.onnx.data").unwrap();
        b[at..at + 11].copy_from_slice(location.as_bytes());
        let p = dir.join(format!("{}.onnx", location.replace(['/', '.'], "_")));
        std::fs::write(&p, b).unwrap();
        p.to_str().unwrap().to_string()
    };
    let x = tmp().join("ext-x.npy");
    pannc::npy::write(&x, &Tensor::from_f32(&[2, 16], vec![1.0; 32]).unwrap()).unwrap();
    let x = x.to_str().unwrap();

    for (location, needle) in [
        ("../sec.data", "has a '..' component"),
        ("../fif.data", "has a '..' component"),
        ("lnk_sec.bin", "outside the model's directory"),
        ("lnk_abs.bin", "outside the model's directory"),
        ("lnk_fif.bin", "outside the model's directory"),
    ] {
        let p = variant(location);
        for args in [vec!["inspect", &p], vec!["run", &p, "-i", x]] {
            let r = pannc(&args, &[]);
            let line = one_line_error(&r, needle, &format!("{args:?}"));
            assert!(line.contains(&format!("'{location}'")), "{line}");
            assert!(
                !line.contains("SENTINEL") && !r.stdout.contains("SENTINEL"),
                "{line}"
            );
        }
    }
    // The control: inside the directory, it loads and computes x + 0.25.
    let p = variant("inside.data");
    let r = pannc(&["run", &p, "-i", x], &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("min=1.25, max=1.25"), "{}", r.stdout);
}
