//! Lowerings from a compiled PANN (the IR's PANN form) to `pannc-fhe` programs, one module per
//! packing.

pub mod packed;
pub mod slot_per_sample;

use pannc_ir::{Graph, Op};

/// What `g` needs that an emitter lacks, as one phrase: each op kind on computed values it
/// does not lower (`lowers`), with its count and first node, and the products of two computed
/// values (attention's `Q·Kᵀ` and `A·V`, a LayerNorm's square), which only polynomials make
/// in these emitters. `None` when nothing is lacking.
/// The clause a refusal of `node` appends: `; the graph needs what this {what} lacks: …`,
/// when [`lacking`] finds something and the refused node is among it (empty otherwise).
pub(crate) fn lacking_clause(
    g: &Graph,
    node: &str,
    what: &str,
    lowers: impl Fn(&Op) -> bool,
) -> String {
    lacking(g, lowers)
        .filter(|l| l.contains(&format!("'{node}'")))
        .map(|l| format!("; the graph needs what this {what} lacks: {l}"))
        .unwrap_or_default()
}

pub(crate) fn lacking(g: &Graph, lowers: impl Fn(&Op) -> bool) -> Option<String> {
    let computed = pannc_ir::computed_values(g);
    let mut kinds: Vec<(String, usize, String)> = Vec::new();
    for id in g.topo_order().ok()? {
        let n = g.node(id);
        let k = n.inputs().iter().filter(|v| computed.contains(v)).count();
        if k == 0 {
            continue;
        }
        let kind = if matches!(n.op, Op::Mul | Op::MatMul | Op::Gemm { .. }) && k >= 2 {
            "product of two activations".to_string()
        } else if !lowers(&n.op) {
            n.op.name().to_string()
        } else {
            continue;
        };
        match kinds.iter_mut().find(|e| e.0 == kind) {
            Some(e) => e.1 += 1,
            None => kinds.push((kind, 1, n.name.clone())),
        }
    }
    (!kinds.is_empty()).then(|| {
        kinds
            .iter()
            .map(|(kind, count, first)| format!("{kind} ×{count} (first '{first}')"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}
