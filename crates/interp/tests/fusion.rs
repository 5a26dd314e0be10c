//! The interpreter runs Conv → BatchNormalization → Relu chains as one fused step; the
//! result must be bitwise that of the separate ops (hooking a node keeps it unfused).

#[path = "common/resnet.rs"]
mod resnet;

use pannc_interp::{run, run_hooked, Hook, Precision, RunOptions};
use pannc_ir::{NodeId, Op, Tensor};
use std::collections::HashSet;

fn unfused(g: &pannc_ir::Graph, x: &Tensor, opts: &RunOptions) -> Vec<Tensor> {
    // A hook that changes nothing, on every node a chain could absorb.
    let nodes: HashSet<NodeId> = g
        .node_ids()
        .into_iter()
        .filter(|&n| matches!(g.node(n).op, Op::BatchNormalization { .. } | Op::Relu))
        .collect();
    assert!(nodes.len() > 10);
    let f = |_: NodeId, _: &Tensor, _: &mut Tensor| {};
    let hook = Hook { nodes, f: &f };
    run_hooked(g, std::slice::from_ref(x), opts, Some(&hook)).unwrap()
}

#[test]
fn fused_conv_chains_equal_the_separate_ops() {
    let g = resnet::resnet();
    let x = resnet::images(70, 3);
    for precision in [Precision::F32, Precision::F64] {
        let opts = RunOptions {
            precision,
            batch_chunk: 16,
            threads: 2,
        };
        let fused = run(&g, std::slice::from_ref(&x), &opts).unwrap();
        let separate = unfused(&g, &x, &opts);
        assert_eq!(fused, separate, "{precision:?}");
        // Not trivially equal: the logits vary across images.
        let v = fused[0].to_f64_vec();
        assert!(v.iter().any(|&a| (a - v[0]).abs() > 1e-3));
    }
}
