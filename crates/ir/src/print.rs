//! A stable textual form of a graph, for snapshots and `--print-after`.
//!
//! Values are renumbered densely (`%0`, `%1`, ...) in the order they are defined: graph
//! inputs first, then node outputs in [`Graph::topo_order`]. Constants print as a digest
//! (dtype, shape, min/max/mean) rather than their data, so snapshots stay small and stable.

use crate::graph::{Graph, ValueId};
use crate::op::Op;
use std::collections::HashMap;
use std::fmt::Write;

pub(crate) fn fmt_shape_usize(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(","))
}

/// Prints `g` in the stable text form. A graph with a cycle prints its nodes in insertion
/// order with a `# cycle` marker, so the printer never fails.
pub fn print(g: &Graph) -> String {
    let (order, cyclic) = match g.topo_order() {
        Ok(o) => (o, false),
        Err(_) => (g.node_ids(), true),
    };
    let mut num: HashMap<ValueId, usize> = HashMap::new();
    let mut next = 0usize;
    let mut name_of = |v: ValueId, num: &mut HashMap<ValueId, usize>| -> usize {
        *num.entry(v).or_insert_with(|| {
            next += 1;
            next - 1
        })
    };
    let ty = |v: ValueId| match g.try_value(v).ok().and_then(|x| x.ty.as_ref()) {
        Some(t) => t.to_string(),
        None => "?".to_string(),
    };
    let mut out = String::new();
    let _ = writeln!(out, "graph \"{}\" opset={}", g.name, g.opset);
    if cyclic {
        out.push_str("  # cycle\n");
    }
    for &v in g.inputs() {
        let n = name_of(v, &mut num);
        let _ = writeln!(out, "  in %{n}: {}  # {}", ty(v), g.value(v).name);
    }
    for id in order {
        let node = g.node(id);
        let outs: Vec<String> = node
            .outputs()
            .iter()
            .map(|&v| format!("%{}", name_of(v, &mut num)))
            .collect();
        let lhs = outs.join(", ");
        if let Op::Constant(t) = &node.op {
            let _ = writeln!(out, "  {lhs} = Constant {}  # {}", t.summary(), node.name);
            continue;
        }
        let ins: Vec<String> = node
            .inputs()
            .iter()
            .map(|&v| match num.get(&v) {
                Some(n) => format!("%{n}"),
                None => format!("%?{}", v.index()),
            })
            .collect();
        let tys: Vec<String> = node.outputs().iter().map(|&v| ty(v)).collect();
        let _ = writeln!(
            out,
            "  {lhs} = {}({}) : {}  # {}",
            node.op,
            ins.join(", "),
            tys.join(", "),
            node.name
        );
    }
    let outs: Vec<String> = g
        .outputs()
        .iter()
        .map(|&v| match num.get(&v) {
            Some(n) => format!("%{n}"),
            None => format!("%?{}", v.index()),
        })
        .collect();
    let _ = writeln!(out, "  out {}", outs.join(", "));
    out
}
