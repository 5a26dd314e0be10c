//! Compiling a prepared backbone (prefix passes and calibration run once, as the accuracy lab
//! and `compile --budget` do) gives exactly what compiling it from scratch gives.

mod common;

use common::{fixture, load};
use pannc_passes::{Choice, Policy};
use std::collections::BTreeMap;

#[test]
fn prepared_compilation_equals_compilation_from_scratch() {
    for name in ["resnet_fmnist", "maxpool_mnist", "gelu_digits"] {
        let g = load(&fixture(name).join("model.onnx")).graph;
        let calib = pannc::npy::read(&fixture(name).join("calib_x.npy")).unwrap();
        let prepared = pannc_driver::prepare(&g, vec![calib.clone()], &Policy::default()).unwrap();
        // The first ReLU-like activation, for per-node choices.
        let first = prepared
            .graph()
            .node_ids()
            .into_iter()
            .map(|id| prepared.graph().node(id))
            .find(|n| matches!(n.op, pannc_ir::Op::Relu))
            .map(|n| n.name.clone());
        let mut policies = vec![
            Policy::default(),
            Policy {
                alpha: 6,
                shape: true,
                bias_correct: true,
                ..Policy::default()
            },
        ];
        if let Some(n) = first {
            for c in [
                Choice::Minimax { degree: 15 },
                Choice::Fitted { degree: 31 },
            ] {
                policies.push(Policy {
                    alpha: 7,
                    bias_correct: true,
                    choices: BTreeMap::from([(n.clone(), c)]),
                    ..Policy::default()
                });
            }
        }
        for policy in policies {
            let mut scratch = g.clone();
            let want =
                pannc_driver::compile(&mut scratch, vec![calib.clone()], policy.clone()).unwrap();
            let (got_g, got) = pannc_driver::compile_prepared(&prepared, policy.clone()).unwrap();
            assert_eq!(
                pannc_ir::print(&got_g),
                pannc_ir::print(&scratch),
                "{name} {policy:?}"
            );
            assert_eq!(
                serde_json::to_string(&got).unwrap(),
                serde_json::to_string(&want).unwrap(),
                "{name} {policy:?}"
            );
        }
    }
}
