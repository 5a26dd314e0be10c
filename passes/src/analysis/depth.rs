//! Multiplicative depth (CKKS levels) of a compiled PANN, under the cost model of the circuit
//! emitter (`pannc_ckks::lower::slot_per_sample`): a chain of linear layers between two activations is one
//! affine form and costs one level when it is materialised (at a polynomial's input or at an
//! output); a polynomial costs its planned depth (`Poly::depth`, plus one when its input
//! scaling was not folded); additions and data movement are free.

use pannc_ir::{Graph, GraphError, Op};

/// Levels the graph consumes from its inputs to its deepest output. Errors only on cycles.
pub fn levels(g: &Graph) -> Result<usize, GraphError> {
    let order = g.topo_order()?;
    let n = g.value_ids().map(|v| v.index() + 1).max().unwrap_or(0);
    // Per value: (levels consumed so far, whether an unmaterialised affine form is pending).
    let mut at = vec![(0usize, false); n];
    for id in order {
        let node = g.node(id);
        let ins: Vec<(usize, bool)> = node
            .inputs()
            .iter()
            .filter(|&&v| g.constant(v).is_none())
            .map(|&v| at[v.index()])
            .collect();
        let deepest = ins.iter().map(|&(l, _)| l).max().unwrap_or(0);
        let pending = ins.iter().any(|&(_, p)| p);
        let out = match &node.op {
            Op::Poly(p) => {
                let input = deepest + usize::from(pending) + usize::from(p.in_scale != 1.0);
                (input + p.depth(), false)
            }
            Op::Conv { .. }
            | Op::Gemm { .. }
            | Op::MatMul
            | Op::Mul
            | Op::Div
            | Op::AveragePool { .. }
            | Op::GlobalAveragePool
            | Op::ReduceMean { .. }
            | Op::BatchNormalization { .. } => {
                if ins.len() > 1 {
                    // A product of two computed values: materialise both, one ct×ct level.
                    (deepest + usize::from(pending) + 1, false)
                } else {
                    (deepest, true)
                }
            }
            _ => (deepest, pending),
        };
        for &v in node.outputs() {
            at[v.index()] = out;
        }
    }
    Ok(g.outputs()
        .iter()
        .map(|&v| {
            let (l, p) = at[v.index()];
            l + usize::from(p)
        })
        .max()
        .unwrap_or(0))
}
