//! Snapshot tests of every pass on every fixture: the IR text after each pass of the PANN
//! pipeline (the previous snapshot is the "before"), with the verifier run after each pass.
//! Review changes with `cargo insta review`.

mod common;

use common::*;
use pannc_passes::{Context, Pipeline, Policy};

/// Runs `passes` on `fixture` (imported, types inferred, nothing else), calibrating on the
/// first 64 calibration samples, and snapshots the IR after each pass.
fn check(fixture: &str, passes: &[&str]) -> Context {
    let path = common::fixture(fixture).join("model.onnx");
    let mut g = pannc_onnx::import_path(&path, &pannc_onnx::Limits::default())
        .unwrap()
        .graph;
    pannc_interp::infer_types(&mut g).unwrap();
    insta::assert_snapshot!(format!("{fixture}__00_import"), pannc_ir::print(&g));
    let calib = pannc::npy::read(&common::fixture(fixture).join("calib_x.npy")).unwrap();
    let calib = calib.slice_batch(0, 64);
    let mut cx = Context {
        calib: vec![calib],
        policy: Policy {
            alpha: 7,
            ..Default::default()
        },
        ..Default::default()
    };
    for (i, name) in passes.iter().enumerate() {
        let pipeline = Pipeline::from_names(&[name]).unwrap();
        pipeline
            .run_verified(&mut g, &mut cx)
            .unwrap_or_else(|e| panic!("{fixture}: {e}"));
        insta::assert_snapshot!(
            format!("{fixture}__{:02}_{name}", i + 1),
            pannc_ir::print(&g)
        );
    }
    cx
}

const PANN: [&str; 11] = [
    "remove-identity",
    "const-fold",
    "recognize",
    "split-tail",
    "dce",
    "fold-batchnorm",
    "lower-maxpool",
    "approximate",
    "range-control",
    "dce",
    "lower-poly",
];

#[test]
fn resnet_fmnist_pass_by_pass() {
    let cx = check("resnet_fmnist", &PANN);
    assert_eq!(
        cx.report.range_control_levels, 0,
        "range control must cost no level on the residual fixture"
    );
    assert_eq!(cx.report.activations.len(), 13);
    assert!(cx.report.activations.iter().all(|a| a.scale_folded));
}

#[test]
fn maxpool_mnist_pass_by_pass() {
    let cx = check("maxpool_mnist", &PANN);
    // 3 ReLUs + 2 max-pools of 2×2 windows (3 ReLUs each).
    assert_eq!(cx.report.activations.len(), 9);
}

#[test]
fn gelu_digits_pass_by_pass() {
    let cx = check("gelu_digits", &PANN);
    let ops: Vec<&str> = cx
        .report
        .activations
        .iter()
        .map(|a| a.op.as_str())
        .collect();
    assert_eq!(
        ops,
        ["Gelu", "Silu", "Tanh", "Sigmoid"],
        "GELU (Erf form) and SiLU must be recognised"
    );
}

/// The printer and the passes are deterministic: the same pipeline twice gives the same text.
#[test]
fn pipeline_output_is_deterministic() {
    let run = || {
        let mut g = load(&common::fixture("maxpool_mnist").join("model.onnx")).graph;
        let calib =
            pannc::npy::read(&common::fixture("maxpool_mnist").join("calib_x.npy")).unwrap();
        pannc_driver::compile(&mut g, vec![calib], Policy::default()).unwrap();
        pannc_ir::print(&g)
    };
    assert_eq!(run(), run());
}

/// Calibration streams the data in chunks of `CHUNK` samples; its statistics must equal,
/// bit for bit, those of one run over all samples reduced at once (what it did before).
#[test]
fn streaming_calibration_equals_one_pass() {
    use pannc_passes::analysis::{activation_inputs, calibrate, RangeStats, CHUNK};
    let g = load(&common::fixture("resnet_fmnist").join("model.onnx")).graph;
    let calib = pannc::npy::read(&common::fixture("resnet_fmnist").join("calib_x.npy")).unwrap();
    assert!(calib.shape()[0] > CHUNK, "needs several chunks");
    let xs = activation_inputs(&g);
    let streamed = calibrate(&g, std::slice::from_ref(&calib), &xs).unwrap();
    let mut probe = g.clone();
    probe.set_outputs(xs.clone());
    let outs = pannc_interp::run(&probe, &[calib], &Default::default()).unwrap();
    assert_eq!(streamed.len(), xs.len());
    for (v, t) in xs.iter().zip(&outs) {
        let whole = RangeStats::of(&t.to_f64_vec());
        let s = &streamed[v];
        assert_eq!(s, &whole, "value {v:?}");
        assert_eq!(s.mean.to_bits(), whole.mean.to_bits());
        assert!(s.p001 < 0.0 && s.p999 > 0.0 && s.sample.len() > 1000);
    }
}

/// The transformer pipeline: the PANN passes that act on a transformer, with the two
/// decompositions before `approximate` (LayerNorm, then the attention softmaxes).
const TRANSFORMER: [&str; 9] = [
    "remove-identity",
    "const-fold",
    "recognize",
    "split-tail",
    "dce",
    "decompose-layernorm",
    "decompose-softmax",
    "approximate",
    "range-control",
];

/// What a transformer's report must say: each LayerNorm's inverse square root, each softmax's
/// exp and reciprocal, on positive intervals where they are powers, all folded.
fn check_transformer(fixture: &str, layernorms: usize, gelus: usize) {
    let cx = check(fixture, &TRANSFORMER);
    let count = |op: &str| cx.report.activations.iter().filter(|a| a.op == op).count();
    assert_eq!(count("Gelu"), gelus, "{fixture}");
    assert_eq!(count("Exp"), 2, "{fixture}");
    assert_eq!(count("Reciprocal"), 2, "{fixture}");
    let invsqrt = cx
        .report
        .activations
        .iter()
        .filter(|a| a.node.ends_with(".invsqrt"))
        .count();
    assert_eq!(invsqrt, layernorms, "{fixture}");
    for a in &cx.report.activations {
        assert!(a.scale_folded, "{fixture}: {} not folded", a.node);
        if a.op != "Exp" {
            if let Some([lo, _]) = a.domain {
                assert!(lo > 0.0, "{fixture}: {} on [{lo}, ..]", a.node);
            }
        }
    }
    assert_eq!(cx.report.range_control_levels, 0, "{fixture}");
}

#[test]
fn vit_fmnist_pass_by_pass() {
    check_transformer("vit_fmnist", 5, 2);
}

#[test]
fn encoder_langid_pass_by_pass() {
    check_transformer("encoder_langid", 5, 2);
}
