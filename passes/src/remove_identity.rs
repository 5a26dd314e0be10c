//! `remove-identity`: drops Identity and Dropout.

use crate::{Pass, PassError};
use pannc_ir::{Graph, Op};

/// Removes `Identity` and inference-mode `Dropout` nodes by rewiring their readers to the
/// input. Guarantees: no Identity/Dropout remains unless its output is also a graph input
/// alias that cannot be rewired (never in practice).
pub struct RemoveIdentity;

impl Pass for RemoveIdentity {
    fn name(&self) -> &'static str {
        "remove-identity"
    }
    fn summary(&self) -> &'static str {
        "drop Identity and inference-mode Dropout nodes"
    }
    fn run(&self, g: &mut Graph, _cx: &mut crate::Context) -> Result<bool, PassError> {
        let mut changed = false;
        for id in g.node_ids() {
            let node = g.node(id);
            if !matches!(node.op, Op::Identity | Op::Dropout) {
                continue;
            }
            let src = node.inputs()[0];
            let outs = node.outputs().to_vec();
            // A Dropout mask output (port 1) is not supported downstream.
            if outs.iter().skip(1).any(|&v| g.is_used(v)) {
                return Err(PassError::Node {
                    pass: self.name(),
                    node: node.name.clone(),
                    op: node.op.name(),
                    message:
                        "the Dropout mask output is used; only inference-mode Dropout is supported"
                            .into(),
                });
            }
            let out = outs[0];
            let err = |e: pannc_ir::GraphError| PassError::Graph {
                pass: "remove-identity",
                message: e.to_string(),
            };
            // An Identity that feeds a graph output keeps the output's name alive: its source
            // takes the name, unless the source is itself an input or output (then keep it).
            let is_output = g.outputs().contains(&out);
            if is_output && (g.inputs().contains(&src) || g.outputs().contains(&src)) {
                continue;
            }
            let name = g.value(out).name.clone();
            g.replace_all_uses(out, src).map_err(err)?;
            if g.remove_node(id) {
                changed = true;
                if is_output {
                    g.rename_value(src, name).map_err(err)?;
                }
            }
        }
        Ok(changed)
    }
}
