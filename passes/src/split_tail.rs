//! Splitting off the client-side tail.
//!
//! What follows the logits in an exported classifier — `Softmax`/`LogSoftmax`, `ArgMax`/
//! `ArgMin`, scikit-learn's `ai.onnx.ml` nodes (`ZipMap`, `ArrayFeatureExtractor`, kept as
//! opaque nodes) and the casts and reshapes of their results — is not run under encryption:
//! the client decrypts the logits and post-processes them in plaintext. This pass moves that
//! tail out of the graph into a graph of its own ([`Context::tail`]) whose inputs are the
//! values it read from the rest (the logits, by name), so that a runtime can chain the two.
//!
//! Guarantees: a node moves to the tail when it is such a *seed* or reads a value a tail node
//! produced, and only if everything downstream of its seed is post-processing (seeds, casts,
//! reshapes, transposes, gathers, concatenations, identities). A Softmax inside the network
//! (attention) stays where it is. The graph's outputs become its original outputs that the
//! tail did not produce, then the values the tail reads, in graph order. With
//! `Policy::keep_softmax`, Softmax and LogSoftmax are not seeds. A note names the split.

use crate::{Context, Pass, PassError};
use pannc_ir::{Graph, NodeId, Op, ValueId};
use std::collections::{BTreeMap, BTreeSet};

pub struct SplitTail;

impl Pass for SplitTail {
    fn name(&self) -> &'static str {
        "split-tail"
    }
    fn summary(&self) -> &'static str {
        "move the client-side tail after the logits (softmax, argmax, ai.onnx.ml nodes) into a plaintext graph of its own"
    }
    fn run(&self, g: &mut Graph, cx: &mut Context) -> Result<bool, PassError> {
        let order = g.topo_order().map_err(|e| PassError::Graph {
            pass: self.name(),
            message: e.to_string(),
        })?;
        let keep_softmax = cx.policy.keep_softmax;
        let seed = |op: &Op| match op {
            Op::Softmax { .. } | Op::LogSoftmax { .. } => !keep_softmax,
            Op::ArgMax { .. } | Op::ArgMin { .. } | Op::Opaque(_) => true,
            _ => false,
        };
        // Forward closure of each seed; a seed whose closure does more than post-processing
        // is not part of a tail.
        let mut tail: BTreeSet<NodeId> = BTreeSet::new();
        for &id in &order {
            if !seed(&g.node(id).op) || tail.contains(&id) {
                continue;
            }
            let closure = downstream(g, id);
            if closure
                .iter()
                .all(|&n| seed(&g.node(n).op) || post_processing(&g.node(n).op))
            {
                tail.extend(closure);
            }
        }
        if tail.is_empty() {
            return Ok(false);
        }
        // Values the tail reads from the rest of the graph (constants are copied instead).
        let mut cut: Vec<ValueId> = Vec::new();
        for &id in order.iter().filter(|id| tail.contains(id)) {
            for &v in g.node(id).inputs() {
                let from_rest = g.producer(v).is_none_or(|p| !tail.contains(&p));
                if from_rest && g.constant(v).is_none() && !cut.contains(&v) {
                    cut.push(v);
                }
            }
        }
        let t = self.build_tail(g, &order, &tail, &cut)?;
        let mut outputs: Vec<ValueId> = g
            .outputs()
            .iter()
            .copied()
            .filter(|&v| g.producer(v).is_none_or(|p| !tail.contains(&p)))
            .collect();
        for &v in &cut {
            if !outputs.contains(&v) && !g.inputs().contains(&v) {
                outputs.push(v);
            }
        }
        if outputs.is_empty() {
            return Err(PassError::Graph {
                pass: self.name(),
                message: "the whole graph is post-processing; nothing is left to compile".into(),
            });
        }
        g.set_outputs(outputs);
        for &id in order.iter().rev().filter(|id| tail.contains(id)) {
            g.remove_node(id);
        }
        let mut ops: BTreeMap<String, usize> = BTreeMap::new();
        for n in t.node_ids() {
            let name = match &t.node(n).op {
                Op::Opaque(o) => o.qualified_name(),
                op => op.name().to_string(),
            };
            *ops.entry(name).or_default() += 1;
        }
        let ops: Vec<String> = ops
            .iter()
            .map(|(k, n)| {
                if *n > 1 {
                    format!("{k} ×{n}")
                } else {
                    k.clone()
                }
            })
            .collect();
        let reads: Vec<String> = cut
            .iter()
            .map(|&v| format!("'{}'", g.value(v).name))
            .collect();
        cx.report.notes.push(format!(
            "split off the client-side tail after {} ({}): the PANN outputs {}; run the tail in plaintext on the decrypted outputs",
            reads.join(", "),
            ops.join(", "),
            if cut.len() == 1 { "it" } else { "them" },
        ));
        cx.tail = Some(t);
        Ok(true)
    }
}

impl SplitTail {
    /// The tail as a graph of its own: the cut values as inputs (same names), constants it
    /// reads copied, its nodes in order, the original outputs it produces.
    fn build_tail(
        &self,
        g: &Graph,
        order: &[NodeId],
        tail: &BTreeSet<NodeId>,
        cut: &[ValueId],
    ) -> Result<Graph, PassError> {
        let fail = |e: pannc_ir::GraphError| PassError::Graph {
            pass: self.name(),
            message: e.to_string(),
        };
        let mut t = Graph::new(format!("{}_tail", g.name), g.opset);
        let mut map: BTreeMap<ValueId, ValueId> = BTreeMap::new();
        for &v in cut {
            let val = g.value(v);
            map.insert(
                v,
                t.add_input(val.name.clone(), val.ty.clone())
                    .map_err(fail)?,
            );
        }
        for &id in order.iter().filter(|id| tail.contains(id)) {
            let node = g.node(id);
            let mut ins = Vec::new();
            for &v in node.inputs() {
                let nv = match map.entry(v) {
                    std::collections::btree_map::Entry::Occupied(e) => *e.get(),
                    std::collections::btree_map::Entry::Vacant(e) => {
                        let c = g.constant(v).ok_or_else(|| PassError::Graph {
                            pass: self.name(),
                            message: format!("tail node '{}' reads an unmapped value", node.name),
                        })?;
                        let nv = t
                            .add_constant(g.value(v).name.clone(), c.clone())
                            .map_err(fail)?;
                        *e.insert(nv)
                    }
                };
                ins.push(nv);
            }
            let names: Vec<String> = node
                .outputs()
                .iter()
                .map(|&v| g.value(v).name.clone())
                .collect();
            let (_, outs) = t
                .add_node(node.name.clone(), node.op.clone(), &ins, &names)
                .map_err(fail)?;
            for (&old, &new) in node.outputs().iter().zip(&outs) {
                t.value_mut(new).ty = g.value(old).ty.clone();
                map.insert(old, new);
            }
        }
        let outs: Vec<ValueId> = g
            .outputs()
            .iter()
            .filter(|v| g.producer(**v).is_some_and(|p| tail.contains(&p)))
            .map(|v| map[v])
            .collect();
        t.set_outputs(outs);
        Ok(t)
    }
}

/// `id` and every node that reads, directly or not, a value it produces.
fn downstream(g: &Graph, id: NodeId) -> BTreeSet<NodeId> {
    let mut seen = BTreeSet::from([id]);
    let mut stack = vec![id];
    while let Some(n) = stack.pop() {
        for &v in g.node(n).outputs() {
            for (u, _) in g.users(v) {
                if seen.insert(u) {
                    stack.push(u);
                }
            }
        }
    }
    seen
}

/// Ops that only move, convert or select data: allowed downstream of a tail seed.
fn post_processing(op: &Op) -> bool {
    matches!(
        op,
        Op::Cast { .. }
            | Op::Reshape { .. }
            | Op::Flatten { .. }
            | Op::Squeeze
            | Op::Unsqueeze
            | Op::Identity
            | Op::Transpose { .. }
            | Op::Gather { .. }
            | Op::Concat { .. }
    )
}
