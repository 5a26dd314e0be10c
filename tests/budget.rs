//! `compile --budget` (issue #14): the allocation's costs are what the level check (planner and
//! egg) and the packed CKKS emitter find on the compiled PANN (determinism across runs and threads: `crates/cli/tests/budget_cli.rs`).
//! On 64 calibration images of `resnet_fmnist`, so that the search takes seconds.

mod common;

use common::{fixture, load};
use pannc_passes::Policy;

const SAMPLES: usize = 64;

fn small_calib() -> pannc_ir::Tensor {
    pannc::npy::read(&fixture("resnet_fmnist").join("calib_x.npy"))
        .unwrap()
        .slice_batch(0, SAMPLES)
}

#[test]
fn allocation_costs_are_what_egg_and_the_packed_emitter_find() {
    let g = load(&fixture("resnet_fmnist").join("model.onnx")).graph;
    let prepared = pannc_driver::prepare(&g, vec![small_calib()], &Policy::default()).unwrap();
    let base = Policy::default();
    let r = pannc_lab::budget::search(&prepared, &base, 0.02, &mut |_| {}).unwrap();
    assert!(r.calib_disagreement <= 0.02, "{}", r.calib_disagreement);
    let (pann, report) = pannc_driver::compile_prepared(&prepared, r.policy.clone()).unwrap();
    // The network's depth is the planner's longest path of the compiled PANN.
    assert_eq!(report.levels, r.levels);
    // Every activation's polynomial, planned again and checked by egg on the compiled graph.
    let checked =
        pannc_ckks::levels::activation_levels(&pann, &pannc_eqsat::Limits::default()).unwrap();
    let mut total_ct = 0u64;
    for a in &r.activations {
        let mine: Vec<_> = checked
            .iter()
            .filter(|l| l.node == a.node || l.node.starts_with(&format!("{}/", a.node)))
            .collect();
        assert!(!mine.is_empty(), "{}: no polynomial in the PANN", a.node);
        let levels = mine.iter().map(|l| l.planned).max().unwrap();
        let ct: u32 = mine.iter().map(|l| l.ct_mults_planned).sum();
        assert_eq!(levels, a.levels, "{}: levels ({})", a.node, a.choice);
        assert_eq!(ct, a.ct_mults, "{}: ct×ct ({})", a.node, a.choice);
        for l in &mine {
            // egg finds no shallower circuit than the one the allocation paid for.
            assert_eq!(
                l.after_egg, l.planned,
                "{}: egg found a shallower circuit",
                l.node
            );
            assert!(l.ct_mults_after_egg <= l.ct_mults_planned, "{}", l.node);
        }
        total_ct += ct as u64;
    }
    assert_eq!(total_ct, r.ct_mults);
    // The packed CKKS emitter's program has the same depth and ct×ct count.
    let opts = pannc_driver::PackedEmitOptions {
        security: pannc_driver::Security::Insecure,
        check_samples: 2,
        ..Default::default()
    };
    let e = pannc_driver::emit_packed(&pann, prepared.calib(), &opts).unwrap();
    assert_eq!(
        e.depth_without_bootstraps as usize, r.levels,
        "emitter depth"
    );
    assert_eq!(
        e.program.stats.ct_ct_mults as u64, r.ct_mults,
        "emitter ct×ct"
    );
}

#[test]
fn search_without_the_memo_chooses_the_same() {
    let g = load(&fixture("resnet_fmnist").join("model.onnx")).graph;
    let prepared = pannc_driver::prepare(&g, vec![small_calib()], &Policy::default()).unwrap();
    let base = Policy::default();
    let with = pannc_lab::budget::search(&prepared, &base, 0.02, &mut |_| {}).unwrap();
    let without = pannc_lab::budget::search_with(&prepared, &base, 0.02, 0, &mut |_| {}).unwrap();
    assert_eq!(
        serde_json::to_string(&with).unwrap(),
        serde_json::to_string(&without).unwrap()
    );
    assert_eq!(with.policy.choices, without.policy.choices);
}
