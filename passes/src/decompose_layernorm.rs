//! `decompose-layernorm`: LayerNormalization over the last axis as CKKS primitives.
//!
//! `LN(x) = γ ⊙ (x − μ)/√(σ² + ε) + β` over the last axis (size `D`) becomes
//!
//! ```text
//! d   = x · C            C = I − J/D (the row mean subtracted: one linear layer)
//! s   = d ⊙ d            one ct×ct product
//! v   = s · (1/D)·1      [.., 1]: the variance (a linear layer with constant weights)
//! r   = Pow(v + ε, −1/2) the inverse square root: `approximate` turns it into a minimax
//!                        polynomial on the calibrated, positive interval of v + ε
//! d'  = x · (C·diag γ)   γ folded exactly into a second centering layer (omitted when γ = 1)
//! y   = d' ⊙ r (+ β)     one ct×ct product; β a plaintext addition (free)
//! ```
//!
//! The mean and variance are matrix products with constants (not ReduceMean) so that range
//! control can fold the inverse square root's interval scaling into the variance weights and ε,
//! exactly. Levels: `d` and `d'` cost the one level of their linear layer, the square one,
//! the variance's weights one (merged with the polynomial's interval map), the polynomial its
//! depth, the final product one: `4 + depth(invsqrt)` per LayerNorm, 2 ct×ct products per
//! element plus the polynomial's.
//!
//! The written-out form PyTorch exports below opset 17 (`d = x − ReduceMean(x)`,
//! `Div(d, Sqrt(ReduceMean(Pow(d, 2)) + ε))`, then `Mul γ`, `Add β`; also with `d ⊙ d`) is
//! recognised first and rewritten the same way (γ = 1; the following `Mul`/`Add` by constants
//! stay as they are); its dead nodes are removed.
//!
//! Guarantees: the graph computes the same function (up to rounding); no LayerNormalization
//! is left, and no written-out one either. LayerNorm over more than the last axis, or with computed γ/β, is an error naming
//! the node.

use crate::build::{centering, float_dtype, known_shape, Builder};
use crate::{Context, Pass, PassError};
use pannc_ir::{Dim, Graph, Op};

pub struct DecomposeLayerNorm;

impl Pass for DecomposeLayerNorm {
    fn name(&self) -> &'static str {
        "decompose-layernorm"
    }
    fn summary(&self) -> &'static str {
        "rewrite LayerNormalization (last axis) as centering and variance layers, a square, an inverse square root Pow(·, −1/2) and a product"
    }
    fn run(&self, g: &mut Graph, cx: &mut Context) -> Result<bool, PassError> {
        let mut changed = self.recognize_written_out(g, cx)?;
        let order = g.topo_order().map_err(|e| PassError::Graph {
            pass: self.name(),
            message: e.to_string(),
        })?;
        for id in order {
            let Op::LayerNormalization { axis, epsilon } = g.node(id).op else {
                continue;
            };
            let ins = g.node(id).inputs().to_vec();
            let out = g.node(id).outputs()[0];
            let x = ins[0];
            let dtype = float_dtype(g, x);
            let shape = known_shape(g, x);
            let gamma = g.constant(ins[1]).map(|t| t.to_f64_vec());
            let beta = ins.get(2).map(|&v| g.constant(v).map(|t| t.to_f64_vec()));
            let mut b = Builder::new(g, self.name(), id, dtype);
            let Some(shape) = shape else {
                return Err(b.err("the input's shape is unknown"));
            };
            let rank = shape.len() as i64;
            let ax = if axis < 0 { axis + rank } else { axis };
            if ax != rank - 1 {
                return Err(b.err(format!(
                    "LayerNormalization over axes {ax}..{rank} (not only the last axis) is not supported"
                )));
            }
            let Some(Dim::Known(d)) = shape.last().cloned() else {
                return Err(b.err("the normalised (last) axis must have a static size"));
            };
            let Some(gamma) = gamma else {
                return Err(b.err("the scale γ must be a constant"));
            };
            let beta = match beta {
                Some(None) => return Err(b.err("the bias β must be a constant")),
                Some(Some(v)) => Some(v),
                None => None,
            };
            let per_channel = |v: Vec<f64>, what: &str| -> Result<Vec<f64>, PassError> {
                match v.len() {
                    1 => Ok(vec![v[0]; d]),
                    n if n == d => Ok(v),
                    n => Err(b.err(format!("{what} has {n} values, the last axis {d}"))),
                }
            };
            let gamma = per_channel(gamma, "γ")?;
            let beta = beta.map(|v| per_channel(v, "β")).transpose()?;
            let c = b.konst("center", &[d, d], centering(d, None, 1.0))?;
            let dev = b.node("centered", Op::MatMul, &[x, c])?;
            let sq = b.node("square", Op::Mul, &[dev, dev])?;
            let w = b.konst("mean_w", &[d, 1], vec![1.0 / d as f64; d])?;
            let var = b.node("variance", Op::MatMul, &[sq, w])?;
            let eps = b.konst("eps", &[], vec![epsilon as f64])?;
            let ve = b.node("variance_eps", Op::Add, &[var, eps])?;
            let half = b.konst("minus_half", &[], vec![-0.5])?;
            let r = b.node("invsqrt", Op::Pow, &[ve, half])?;
            let scaled = if gamma.iter().all(|&v| v == 1.0) {
                dev
            } else {
                let cg = b.konst("center_gamma", &[d, d], centering(d, Some(&gamma), 1.0))?;
                b.node("centered_gamma", Op::MatMul, &[x, cg])?
            };
            let mut y = b.node("normalized", Op::Mul, &[scaled, r])?;
            if let Some(beta) = beta.filter(|v| v.iter().any(|&x| x != 0.0)) {
                let bt = b.konst("beta", &[d], beta)?;
                y = b.node("shift", Op::Add, &[y, bt])?;
            }
            crate::util::replace_keeping_name(g, out, y).map_err(|e| PassError::Node {
                pass: "decompose-layernorm",
                node: g.node(id).name.clone(),
                op: "LayerNormalization",
                message: e,
            })?;
            g.remove_node(id);
            changed = true;
        }
        Ok(changed)
    }
}

impl DecomposeLayerNorm {
    /// Replaces every written-out LayerNorm (see the module doc) by a `LayerNormalization`
    /// node with γ = 1 and no β, named after its `Div`, and removes what is left dead.
    fn recognize_written_out(&self, g: &mut Graph, cx: &mut Context) -> Result<bool, PassError> {
        let order = g.topo_order().map_err(|e| PassError::Graph {
            pass: self.name(),
            message: e.to_string(),
        })?;
        let mut found = false;
        for id in order {
            let Some((x, eps)) = written_out(g, id) else {
                continue;
            };
            let Some(shape) = known_shape(g, x) else {
                continue;
            };
            let Some(Dim::Known(d)) = shape.last().cloned() else {
                continue;
            };
            let dtype = float_dtype(g, x);
            let out = g.node(id).outputs()[0];
            let mut b = Builder::new(g, self.name(), id, dtype);
            let gamma = b.konst("gamma", &[d], vec![1.0; d])?;
            let y = b.node(
                "layernorm",
                Op::LayerNormalization {
                    axis: -1,
                    epsilon: eps as f32,
                },
                &[x, gamma],
            )?;
            crate::util::replace_keeping_name(g, out, y).map_err(|e| PassError::Node {
                pass: "decompose-layernorm",
                node: g.node(id).name.clone(),
                op: "Div",
                message: e,
            })?;
            g.remove_node(id);
            found = true;
        }
        if found {
            crate::Dce.run(g, cx)?;
        }
        Ok(found)
    }
}

/// `Some((x, ε))` when `div` is `Div(d, Sqrt(ReduceMean(d²) + ε))` with
/// `d = x − ReduceMean(x)`, both means over the last axis with kept dimensions.
fn written_out(g: &Graph, div: pannc_ir::NodeId) -> Option<(pannc_ir::ValueId, f64)> {
    let node = g.node(div);
    if !matches!(node.op, Op::Div) {
        return None;
    }
    let (dv, s) = (node.inputs()[0], node.inputs()[1]);
    let producer = |v| g.producer(v).map(|p| g.node(p));
    let sqrt = producer(s).filter(|n| matches!(n.op, Op::Sqrt))?;
    let add = producer(sqrt.inputs()[0]).filter(|n| matches!(n.op, Op::Add))?;
    let scalar = |v| {
        g.constant(v)
            .map(|t| t.to_f64_vec())
            .filter(|t| t.len() == 1)
            .map(|t| t[0])
    };
    let (var, eps) = match (scalar(add.inputs()[0]), scalar(add.inputs()[1])) {
        (None, Some(e)) => (add.inputs()[0], e),
        (Some(e), None) => (add.inputs()[1], e),
        _ => return None,
    };
    let last_mean = |v| -> Option<pannc_ir::ValueId> {
        let n = producer(v)?;
        let Op::ReduceMean { keepdims: true, .. } = n.op else {
            return None;
        };
        let rank = known_shape(g, n.inputs()[0])?.len() as f64;
        let axes = g.constant(*n.inputs().get(1)?)?.to_f64_vec();
        (axes.len() == 1 && (axes[0] == -1.0 || axes[0] == rank - 1.0)).then(|| n.inputs()[0])
    };
    let sq = producer(last_mean(var)?)?;
    let squares_d = match sq.op {
        Op::Pow => sq.inputs()[0] == dv && scalar(sq.inputs()[1]) == Some(2.0),
        Op::Mul => sq.inputs()[0] == dv && sq.inputs()[1] == dv,
        _ => false,
    };
    if !squares_d {
        return None;
    }
    let sub = producer(dv).filter(|n| matches!(n.op, Op::Sub))?;
    let x = sub.inputs()[0];
    (last_mean(sub.inputs()[1])? == x).then_some((x, eps))
}
