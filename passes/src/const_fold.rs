//! Constant folding, including the shape arithmetic that exporters wrap around reshapes.
//!
//! Guarantees: every node all of whose inputs are constants (and that is not itself a
//! `Constant`) is replaced by `Constant` nodes holding its results, computed by the
//! reference interpreter; `Shape` of a value with a fully known shape becomes a constant; and
//! a `Reshape` whose target shape is computed from `Shape(x)` with the symbolic batch
//! dimension gets a constant target in which that dimension is written as `0` ("copy from
//! input"), so graphs exported with `x.view(x.size(0), -1)` become static.

use crate::util::unique_name;
use crate::{Pass, PassError};
use pannc_ir::{Dim, Graph, NodeId, Op, Tensor, ValueId};
use std::collections::HashMap;

pub struct ConstFold;

/// One element of a partially known i64 shape vector.
#[derive(Clone, Debug, PartialEq)]
enum SymInt {
    Known(i64),
    Sym(String),
}

impl Pass for ConstFold {
    fn name(&self) -> &'static str {
        "const-fold"
    }
    fn summary(&self) -> &'static str {
        "evaluate constant subgraphs and static shape arithmetic at compile time"
    }
    fn run(&self, g: &mut Graph, _cx: &mut crate::Context) -> Result<bool, PassError> {
        pannc_interp::infer_types(g).map_err(|e| PassError::Graph {
            pass: self.name(),
            message: e.to_string(),
        })?;
        let order = g.topo_order().map_err(|e| PassError::Graph {
            pass: self.name(),
            message: e.to_string(),
        })?;
        let mut changed = false;
        // Partially known shape vectors, keyed by value.
        let mut sym: HashMap<ValueId, Vec<SymInt>> = HashMap::new();
        for id in order {
            // Opaque nodes (kept, not interpreted) cannot be evaluated.
            if matches!(g.node(id).op, Op::Constant(_) | Op::Opaque(_)) {
                continue;
            }
            if self.fold_node(g, id)? {
                changed = true;
                continue;
            }
            self.track_symbolic(g, id, &mut sym);
            if self.fix_reshape(g, id, &sym)? {
                changed = true;
            }
        }
        Ok(changed)
    }
}

impl ConstFold {
    fn node_err(&self, g: &Graph, id: NodeId, message: String) -> PassError {
        let n = g.node(id);
        PassError::Node {
            pass: self.name(),
            node: n.name.clone(),
            op: n.op.name(),
            message,
        }
    }

    /// Replaces `id` by constants if all its inputs are constant (or it is a Shape of a static value).
    fn fold_node(&self, g: &mut Graph, id: NodeId) -> Result<bool, PassError> {
        let node = g.node(id);
        let results: Vec<Tensor> = if let Op::Shape { start, end } = &node.op {
            let Some(shape) = g
                .value(node.inputs()[0])
                .ty
                .as_ref()
                .and_then(|t| t.known_shape())
            else {
                return Ok(false);
            };
            let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            let (s, e) = slice_bounds(*start, *end, dims.len());
            let part = dims[s..e.max(s)].to_vec();
            vec![Tensor::from_i64(&[part.len()], part).expect("1-D shape")]
        } else {
            let inputs: Option<Vec<&Tensor>> =
                node.inputs().iter().map(|&v| g.constant(v)).collect();
            let Some(inputs) = inputs else {
                return Ok(false);
            };
            let op = node.op.clone();
            pannc_interp::eval_op(&op, &inputs).map_err(|e| self.node_err(g, id, e.to_string()))?
        };
        let outs = g.node(id).outputs().to_vec();
        let name = g.node(id).name.clone();
        for (i, (&out, t)) in outs.iter().zip(results).enumerate() {
            if !g.is_used(out) {
                continue;
            }
            let cname = format!(
                "{}__folded{}",
                if name.is_empty() { "node" } else { &name },
                i
            );
            let cname = unique_name(g, cname);
            let c = g
                .add_constant(cname, t)
                .map_err(|e| self.node_err(g, id, e.to_string()))?;
            crate::util::replace_keeping_name(g, out, c).map_err(|e| self.node_err(g, id, e))?;
        }
        g.remove_node(id);
        Ok(true)
    }

    /// Records partially known shape vectors flowing out of Shape/Gather/Unsqueeze/Concat/Cast.
    fn track_symbolic(&self, g: &Graph, id: NodeId, sym: &mut HashMap<ValueId, Vec<SymInt>>) {
        let node = g.node(id);
        let known = |v: ValueId, sym: &HashMap<ValueId, Vec<SymInt>>| -> Option<Vec<SymInt>> {
            if let Some(t) = g.constant(v) {
                if t.dtype() == pannc_ir::DType::I64 && t.shape().len() <= 1 {
                    return Some(t.to_i64_vec().into_iter().map(SymInt::Known).collect());
                }
                return None;
            }
            sym.get(&v).cloned()
        };
        let out = node.outputs()[0];
        let value = match &node.op {
            Op::Shape { start, end } => {
                let Some(ty) = g.value(node.inputs()[0]).ty.as_ref() else {
                    return;
                };
                let dims: Vec<SymInt> = ty
                    .shape
                    .iter()
                    .map(|d| match d {
                        Dim::Known(n) => SymInt::Known(*n as i64),
                        Dim::Sym(s) => SymInt::Sym(s.clone()),
                    })
                    .collect();
                let (s, e) = slice_bounds(*start, *end, dims.len());
                Some(dims[s..e.max(s)].to_vec())
            }
            Op::Gather { axis: 0 } => {
                let (Some(data), Some(idx)) =
                    (known(node.inputs()[0], sym), g.constant(node.inputs()[1]))
                else {
                    return;
                };
                let n = data.len() as i64;
                idx.to_i64_vec()
                    .into_iter()
                    .map(|i| {
                        let i = if i < 0 { i + n } else { i };
                        data.get(usize::try_from(i).ok()?).cloned()
                    })
                    .collect()
            }
            Op::Unsqueeze
            | Op::Squeeze
            | Op::Cast {
                to: pannc_ir::DType::I64,
            } => known(node.inputs()[0], sym),
            Op::Concat { .. } => {
                let mut all = Vec::new();
                for &v in node.inputs() {
                    all.extend(match known(v, sym) {
                        Some(k) => k,
                        None => return,
                    });
                }
                Some(all)
            }
            _ => None,
        };
        if let Some(v) = value {
            sym.insert(out, v);
        }
    }

    /// Gives a Reshape whose target is a partially known shape vector a constant target.
    fn fix_reshape(
        &self,
        g: &mut Graph,
        id: NodeId,
        sym: &HashMap<ValueId, Vec<SymInt>>,
    ) -> Result<bool, PassError> {
        let node = g.node(id);
        let Op::Reshape { allowzero: false } = node.op else {
            return Ok(false);
        };
        let (data, target) = (node.inputs()[0], node.inputs()[1]);
        let Some(parts) = sym.get(&target) else {
            return Ok(false);
        };
        let Some(ty) = g.value(data).ty.as_ref() else {
            return Ok(false);
        };
        let mut out = Vec::with_capacity(parts.len());
        let mut unknown = 0;
        for (i, p) in parts.iter().enumerate() {
            match p {
                SymInt::Known(k) => out.push(*k),
                SymInt::Sym(s) if ty.shape.get(i) == Some(&Dim::Sym(s.clone())) => out.push(0),
                SymInt::Sym(_) => {
                    unknown += 1;
                    out.push(-1)
                }
            }
        }
        if unknown > 1 || (unknown == 1 && out.iter().filter(|&&k| k == -1).count() > 1) {
            return Ok(false);
        }
        let name = unique_name(g, format!("{}__shape", g.node(id).name));
        let c = g
            .add_constant(name, Tensor::from_i64(&[out.len()], out).expect("1-D"))
            .map_err(|e| self.node_err(g, id, e.to_string()))?;
        g.set_input(id, 1, c)
            .map_err(|e| self.node_err(g, id, e.to_string()))?;
        Ok(true)
    }
}

/// `[start, end)` of ONNX Shape's slice, clamped to `[0, rank]`.
fn slice_bounds(start: i64, end: Option<i64>, rank: usize) -> (usize, usize) {
    let r = rank as i64;
    let norm = |i: i64| (if i < 0 { i + r } else { i }).clamp(0, r) as usize;
    (norm(start), norm(end.unwrap_or(r)))
}
