//! `Lab::sensitivity_report` with the PANN's own error (issue #15): injected in every
//! activation at once on both sides it reproduces the compiled PANN (its accuracy and, per
//! activation, its error); one-sided it injects exactly the PANN's error on that side; and it
//! refuses what is not an activation's own error.

mod common;

use common::{fixture, load};
use pannc_ir::Tensor;
use pannc_lab::{Lab, Layers, Noise, SensitivityOptions, Side, Techniques};
use pannc_passes::Policy;
use std::collections::BTreeMap;

fn npy(name: &str, file: &str) -> Tensor {
    pannc::npy::read(&fixture(name).join(file)).unwrap()
}

/// resnet_fmnist on its first `n` test images (a subset keeps the test fast).
fn lab(n: usize) -> Lab {
    let name = "resnet_fmnist";
    let g = load(&fixture(name).join("model.onnx")).graph;
    let x = npy(name, "test_x.npy").slice_batch(0, n);
    let labels = npy(name, "test_y.npy").to_i64_vec()[..n].to_vec();
    Lab::new(g, vec![npy(name, "calib_x.npy")], vec![x], labels).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

#[test]
fn pann_error_in_every_activation_is_the_pann() {
    let n = 200;
    let lab = lab(n);
    let opt = SensitivityOptions::new(6, Noise::PannError);
    assert_eq!(opt.layers, Layers::All);
    let r = lab.sensitivity_report(&opt, &mut |_| {}).unwrap();
    assert_eq!(r.rows.len(), 3);
    let sides: Vec<Side> = r.rows.iter().map(|x| x.side).collect();
    assert_eq!(sides, [Side::Negative, Side::Positive, Side::Both]);
    let pann = r.pann_top1.expect("the PANN is simulated");
    assert!(r.not_injected.is_empty(), "{:?}", r.not_injected);

    // The PANN that `pannc eval` measures (full pipeline, with range control) has the same
    // accuracy as the unscaled compilation the lab takes its polynomials from.
    let eval = lab
        .evaluate(
            &Policy::default(),
            6,
            Techniques::default(),
            &BTreeMap::new(),
        )
        .unwrap();
    assert!(
        (eval.top1 - pann).abs() <= 1.0 / n as f64,
        "eval {} vs sensitivity's PANN {pann}",
        eval.top1
    );
    // α = 6 costs resnet_fmnist accuracy: the check below is not vacuous.
    assert!(
        r.backbone_top1 - pann > 0.02,
        "{} vs {pann}",
        r.backbone_top1
    );

    // Both sides in every activation: the PANN's accuracy, inside its interval...
    let both = &r.rows[2];
    assert_eq!(both.node, "all");
    assert!(
        (both.top1 - pann).abs() <= 1.0 / n as f64,
        "{} vs {pann}",
        both.top1
    );
    let ci = r.pann_top1_ci.unwrap();
    assert!(ci[0] <= both.top1 && both.top1 <= ci[1], "{ci:?}");
    assert!(both.top1_ci[0] < both.top1 && both.top1 < both.top1_ci[1]);
    assert!(both.drop_ci[0] <= both.drop && both.drop <= both.drop_ci[1]);
    // ... and per activation, the error the PANN makes (same inputs up to rounding).
    let acts: BTreeMap<&str, _> = r
        .activations
        .iter()
        .map(|a| (a.node.as_str(), a.pann_error.as_ref().expect("measured")))
        .collect();
    assert_eq!(acts.len(), 13);
    assert_eq!(both.injected.len(), 13);
    for inj in &both.injected {
        let own = &acts[inj.node.as_str()].both;
        assert_eq!(inj.stats.count, own.count, "{}", inj.node);
        assert!(
            rel(inj.stats.mean, own.mean) < 1e-3,
            "{}: {:?} vs {own:?}",
            inj.node,
            inj.stats
        );
        assert!(rel(inj.stats.mean_abs, own.mean_abs) < 1e-3, "{}", inj.node);
        assert!(rel(inj.stats.max_abs, own.max_abs) < 1e-2, "{}", inj.node);
        // A composite ReLU's error is one-signed (below ReLU): its mean is most of its size.
        assert!(own.mean < 0.0 && -own.mean > 0.5 * own.mean_abs, "{own:?}");
    }

    // One side: only that side's inputs are touched, with the PANN's error on that side. The
    // inputs are the backbone's plus the upstream errors of that side only, so the sizes agree
    // closely but not exactly (nor do the shares of negative inputs: in the PANN, upstream
    // errors move some layers' shares by several points).
    for row in &r.rows[..2] {
        for inj in &row.injected {
            let own = acts[inj.node.as_str()].get(row.side);
            assert!(
                rel(inj.stats.mean, own.mean) < 0.3,
                "{} {:?}: {:?} vs {own:?}",
                inj.node,
                row.side,
                inj.stats
            );
            assert!(rel(inj.stats.mean_abs, own.mean_abs) < 0.3, "{}", inj.node);
        }
    }
    // The shares add up: negative + positive = all inputs.
    assert!((r.rows[0].fraction + r.rows[1].fraction - 1.0).abs() < 1e-9);
    for a in &r.activations {
        assert!((0.0..=1.0).contains(&a.negative_share_test), "{}", a.node);
        assert!((a.negative_share_test - a.negative_share_calib).abs() < 0.1);
    }
}

#[test]
fn one_activation_at_a_time_and_the_refusals() {
    let lab = lab(60);
    let mut opt = SensitivityOptions::new(5, Noise::PannError);
    opt.layers = Layers::Each;
    opt.sides = vec![Side::Negative];
    opt.techniques = Techniques::parse("shape").unwrap();
    let r = lab.sensitivity_report(&opt, &mut |_| {}).unwrap();
    assert_eq!(r.rows.len(), 13);
    assert_eq!(r.techniques.as_deref(), Some("shape"));
    for (row, a) in r.rows.iter().zip(&r.activations) {
        assert_eq!(row.node, a.node);
        assert_eq!(row.injected.len(), 1);
        assert_eq!(row.injected[0].node, a.node);
        // Alone in the backbone, the activation sees the backbone's own inputs: its negative
        // inputs are exactly the test data's negative share.
        let count = a.pann_error.as_ref().unwrap().both.count as f64;
        let share = row.injected[0].stats.count as f64 / count;
        assert!((share - a.negative_share_test).abs() < 1e-9, "{}", a.node);
    }
    // Deterministic.
    let again = lab.sensitivity_report(&opt, &mut |_| {}).unwrap();
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
    // Bias correction and allocation are not an activation's own error.
    for t in ["bias", "shape+bias", "alloc"] {
        opt.techniques = Techniques::parse(t).unwrap();
        let e = lab.sensitivity_report(&opt, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("pann-error"), "{e}");
    }
}

#[test]
fn constant_noise_has_the_requested_sign() {
    let lab = lab(60);
    let mut opt = SensitivityOptions::new(3, Noise::Constant);
    opt.layers = Layers::All;
    opt.sides = vec![Side::Both];
    let minus = lab.sensitivity_report(&opt, &mut |_| {}).unwrap();
    opt.sign = 1.0;
    let plus = lab.sensitivity_report(&opt, &mut |_| {}).unwrap();
    assert_eq!(minus.sign, Some(-1.0));
    assert_eq!(plus.sign, Some(1.0));
    // 2^-3·B in every activation, opposite signs: both hurt, differently.
    assert!(minus.rows[0].logit_dev_max > 0.0 && plus.rows[0].logit_dev_max > 0.0);
    assert_ne!(minus.rows[0].logit_dev_mean, plus.rows[0].logit_dev_mean);
    assert!(minus.pann_top1.is_none() && minus.rows[0].injected.is_empty());
}
