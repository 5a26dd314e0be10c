//! The accuracy lab on the fixtures: techniques cost no levels, do what they claim, the
//! allocation meets its budget on held-out data with fewer levels than a uniform α, and the
//! sensitivity analysis perturbs what it says.

mod common;

use common::{fixture, load};
use pannc_ir::Tensor;
use pannc_lab::{Lab, Noise, Side, Techniques};
use pannc_passes::{Policy, Report};
use std::collections::BTreeMap;

fn npy(name: &str, file: &str) -> Tensor {
    pannc::npy::read(&fixture(name).join(file)).unwrap()
}

fn lab(name: &str) -> Lab {
    let g = load(&fixture(name).join("model.onnx")).graph;
    let labels = npy(name, "test_y.npy").to_i64_vec();
    Lab::new(
        g,
        vec![npy(name, "calib_x.npy")],
        vec![npy(name, "test_x.npy")],
        labels,
    )
    .unwrap()
}

/// Compiles with the PANN pipeline, verifying the IR after every pass.
fn compile(name: &str, policy: Policy) -> (pannc_ir::Graph, Report) {
    let mut g = load(&fixture(name).join("model.onnx")).graph;
    // The driver verifies after every pass and checks the PANN form at the end.
    let report = pannc_driver::compile(&mut g, vec![npy(name, "calib_x.npy")], policy).unwrap();
    (g, report)
}

#[test]
fn shaping_and_bias_correction_cost_zero_levels() {
    for name in ["resnet_fmnist", "maxpool_mnist", "gelu_digits"] {
        let mut seen: Vec<(String, Report)> = Vec::new();
        for t in ["baseline", "shape", "bias", "shape+bias"] {
            let policy = Techniques::parse(t).unwrap().policy(&Policy::default(), 7);
            seen.push((t.to_string(), compile(name, policy).1));
        }
        let (_, base) = &seen[0];
        for (t, r) in &seen[1..] {
            assert_eq!(r.levels, base.levels, "{name} {t}: network levels");
            assert_eq!(
                r.range_control_levels, base.range_control_levels,
                "{name} {t}: range control"
            );
            for (a, b) in r.activations.iter().zip(&base.activations) {
                assert_eq!(
                    (a.depth, &a.degrees),
                    (b.depth, &b.degrees),
                    "{name} {t}: {}",
                    a.node
                );
                // Composites keep their nonzero pattern, so their ct×ct count too. (A weighted
                // minimax GELU loses the even symmetry of GELU(x) − x/2 and costs a few more
                // ct×ct at the same depth.)
                if a.method == "composite" {
                    assert_eq!(a.ct_mults, b.ct_mults, "{name} {t}: {}", a.node);
                }
            }
            // Not vacuous: the technique did something.
            if t.contains("shape") && name != "gelu_digits" {
                assert!(r.activations.iter().all(|a| a.shaped), "{name} {t}");
            }
            if t.contains("bias") {
                assert!(
                    r.activations.iter().any(|a| a.bias_correction.is_some()),
                    "{name} {t}"
                );
            }
        }
    }
}

#[test]
fn techniques_improve_low_precision_accuracy() {
    let lab = lab("resnet_fmnist");
    let none = BTreeMap::new();
    let at = |t: &str| {
        lab.evaluate(&Policy::default(), 6, Techniques::parse(t).unwrap(), &none)
            .unwrap()
    };
    let (base, shape, bias) = (at("baseline"), at("shape"), at("bias"));
    // At α = 6 the symmetric composite ReLU loses several points; each technique recovers
    // some of them, and bias correction brings the logits closer to the backbone's.
    assert!(
        base.top1 < lab.backbone_top1 - 0.03,
        "baseline {} vs backbone {}",
        base.top1,
        lab.backbone_top1
    );
    assert!(
        shape.top1 > base.top1 + 0.02,
        "shape {} vs {}",
        shape.top1,
        base.top1
    );
    assert!(
        bias.top1 > base.top1 + 0.02,
        "bias {} vs {}",
        bias.top1,
        base.top1
    );
    assert!(bias.logit_dev_mean < base.logit_dev_mean);
}

#[test]
fn bias_correction_cancels_the_mean_error_on_calibration_data() {
    // After correction, the PANN's logits have (nearly) the backbone's mean on the
    // calibration set: the systematic part of the error is gone.
    let name = "resnet_fmnist";
    let calib = npy(name, "calib_x.npy");
    let backbone = load(&fixture(name).join("model.onnx")).graph;
    let reference = pannc_driver::simulate(&backbone, std::slice::from_ref(&calib), 256)
        .unwrap()
        .outputs[0]
        .to_f64_vec();
    let mean_shift = |t: &str| {
        let policy = Techniques::parse(t).unwrap().policy(&Policy::default(), 6);
        let (g, _) = compile(name, policy);
        let out = pannc_driver::simulate(&g, std::slice::from_ref(&calib), 256)
            .unwrap()
            .outputs[0]
            .to_f64_vec();
        let k = 10;
        (0..k)
            .map(|c| {
                let d: f64 = (c..out.len())
                    .step_by(k)
                    .map(|i| out[i] - reference[i])
                    .sum();
                (d / (out.len() / k) as f64).abs()
            })
            .fold(0.0, f64::max)
    };
    let (before, after) = (mean_shift("baseline"), mean_shift("bias"));
    assert!(
        after < 0.5 * before,
        "largest per-class mean logit shift {before:.3} → {after:.3}"
    );
}

#[test]
fn allocation_meets_its_budget_on_held_out_data_with_fewer_levels() {
    let lab = lab("maxpool_mnist");
    let t = Techniques::parse("alloc").unwrap();
    let budget = 0.005;
    let al = lab
        .allocate(&Policy::default(), t, 5..=9, budget, &mut |_| {})
        .unwrap();
    let uniform = al.uniform_alpha.expect("some uniform α meets the budget");
    let uniform_levels = al.uniform_levels.unwrap();
    assert!(al.calib_disagreement <= pannc_lab::SAFETY * budget);
    assert!(
        (al.levels, al.ct_mults) < (uniform_levels, al.uniform_ct_mults.unwrap()),
        "allocation {} levels vs uniform α={uniform} {uniform_levels}",
        al.levels
    );
    // Held-out test images (not the calibration set).
    let r = lab.evaluate(&Policy::default(), 9, t, &al.alphas).unwrap();
    assert_eq!(r.levels, al.levels);
    assert!(
        lab.backbone_top1 - r.top1 <= budget,
        "test drop {:.4} over budget {budget}",
        lab.backbone_top1 - r.top1
    );
}

#[test]
fn sensitivity_perturbs_only_the_chosen_side() {
    let lab = lab("gelu_digits");
    assert!(
        !lab.activations().unwrap().is_empty(),
        "GELU recognised as an activation"
    );
    // Tiny noise: predictions unchanged, logits move but only slightly.
    let rows = lab
        .sensitivity(30, 1.3, Noise::Uniform, &mut |_| {})
        .unwrap();
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r.drop, 0.0, "{} {:?}", r.node, r.side);
        assert!(r.logit_dev_max < 1e-5);
    }
    // A constant −B/2 on one side: the side that holds the inputs matters, and every row
    // reports that side's share of calibrated inputs.
    let rows = lab
        .sensitivity(1, 1.3, Noise::Constant, &mut |_| {})
        .unwrap();
    for pair in rows.chunks(2) {
        let (n, p) = (&pair[0], &pair[1]);
        assert_eq!((n.side, p.side), (Side::Negative, Side::Positive));
        assert!((n.fraction + p.fraction - 1.0).abs() < 1e-9);
        assert!(n.logit_dev_max > 0.0 && p.logit_dev_max > 0.0);
    }
    // Deterministic.
    let again = lab
        .sensitivity(1, 1.3, Noise::Constant, &mut |_| {})
        .unwrap();
    let key = |v: &[pannc_lab::SensitivityRow]| -> Vec<(f64, f64)> {
        v.iter().map(|r| (r.top1, r.logit_dev_mean)).collect()
    };
    assert_eq!(key(&rows), key(&again));
}

#[test]
fn every_activation_is_planned_at_its_level_bound_and_checked_by_egg() {
    let limits = pannc_eqsat::Limits::default();
    for (name, single) in [("resnet_fmnist", false), ("gelu_digits", true)] {
        let (g, report) = compile(name, Policy::default());
        let levels = pannc_ckks::levels::activation_levels(&g, &limits).unwrap();
        assert_eq!(levels.len(), report.activations.len(), "{name}");
        for l in &levels {
            assert_eq!(l.planned, l.stage_bound, "{name} {}", l.node);
            assert_eq!(l.distance, 0, "{name} {}", l.node);
            assert!(l.after_egg <= l.planned);
            assert!(l.ct_mults_after_egg <= l.ct_mults_planned);
            let sem = l.semantic_bound.expect("single-input circuit");
            assert!(
                sem <= l.after_egg,
                "{name} {}: egg below the semantic bound",
                l.node
            );
            if single {
                // One polynomial of degree d: ⌈log2(d+1)⌉ is optimal, and proved so.
                assert_eq!(sem, l.after_egg, "{name} {}", l.node);
            }
            assert!(!l.egg_stop.is_empty());
            assert!(l.egg_seconds <= limits.time_limit.as_secs_f64() + 1.0);
        }
    }
}
