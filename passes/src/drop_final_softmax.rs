//! Removal of a final Softmax.
//!
//! Guarantees: a `Softmax` whose output is a graph output is removed and the graph output
//! becomes its input (the logits): softmax is monotone per row, so the argmax, and thus the
//! predicted class, is unchanged. A note says so. Any other Softmax is an error naming the node
//! (approximating softmax under encryption is not supported).

use crate::{Context, Pass, PassError};
use pannc_ir::{Graph, Op};

pub struct DropFinalSoftmax;

impl Pass for DropFinalSoftmax {
    fn name(&self) -> &'static str {
        "drop-final-softmax"
    }
    fn summary(&self) -> &'static str {
        "remove a Softmax that produces a graph output (argmax unchanged)"
    }
    fn run(&self, g: &mut Graph, cx: &mut Context) -> Result<bool, PassError> {
        let mut changed = false;
        for id in g.node_ids() {
            if !matches!(g.node(id).op, Op::Softmax { .. }) {
                continue;
            }
            let node = g.node(id);
            let (x, y) = (node.inputs()[0], node.outputs()[0]);
            let name = node.name.clone();
            let err = |message: String| PassError::Node {
                pass: "drop-final-softmax",
                node: name.clone(),
                op: "Softmax",
                message,
            };
            if cx.policy.keep_softmax {
                return Err(err("approximating Softmax is not supported; drop --keep-softmax to remove a final Softmax".into()));
            }
            if !g.outputs().contains(&y) || !g.users(y).is_empty() {
                return Err(err("only a Softmax that produces a graph output can be removed; pannc cannot approximate it".into()));
            }
            if g.users(x).len() > 1 || g.outputs().contains(&x) {
                return Err(err(
                    "the Softmax input is also read elsewhere; cannot remove it".into(),
                ));
            }
            crate::util::replace_keeping_name(g, y, x).map_err(err)?;
            g.remove_node(id);
            cx.report.notes.push(format!(
                "removed final Softmax '{name}': outputs are logits (argmax unchanged)"
            ));
            changed = true;
        }
        Ok(changed)
    }
}
