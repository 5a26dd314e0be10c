//! Batch-normalization folding.
//!
//! Guarantees: a `BatchNormalization` whose statistics and affine parameters are constants
//! and whose input is produced by a `Conv` or a `Gemm` (with constant weights) read by no one
//! else is folded into that layer's weights and bias, exactly:
//! `W'[c] = W[c]·s[c]`, `b'[c] = (b[c] − mean[c])·s[c] + β[c]` with `s = γ/√(var + ε)`.
//! Any other BatchNormalization becomes the per-channel affine `x·s + (β − mean·s)` (a `Mul`
//! and an `Add` by constants shaped to broadcast over the channel axis 1), which later passes
//! can fold further. No BatchNormalization remains.

use crate::{Pass, PassError};
use pannc_ir::{Graph, NodeId, Op, Tensor, ValueId};

pub struct FoldBatchNorm;

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold-batchnorm"
    }
    fn summary(&self) -> &'static str {
        "fold inference BatchNormalization into the preceding Conv/Gemm, or lower it to a per-channel affine"
    }
    fn run(&self, g: &mut Graph, _cx: &mut crate::Context) -> Result<bool, PassError> {
        let order = g.topo_order().map_err(|e| PassError::Graph {
            pass: self.name(),
            message: e.to_string(),
        })?;
        let mut changed = false;
        for id in order {
            let Op::BatchNormalization { epsilon } = g.node(id).op else {
                continue;
            };
            let (scale, shift) = self.affine(g, id, epsilon)?;
            let x = g.node(id).inputs()[0];
            if self.fold_into_producer(g, id, x, &scale, &shift)?
                || self.lower_to_affine(g, id, x, &scale, &shift)?
            {
                changed = true;
            }
        }
        Ok(changed)
    }
}

impl FoldBatchNorm {
    fn err(&self, g: &Graph, id: NodeId, message: impl Into<String>) -> PassError {
        let n = g.node(id);
        PassError::Node {
            pass: self.name(),
            node: n.name.clone(),
            op: n.op.name(),
            message: message.into(),
        }
    }

    /// Per-channel `(s, β − mean·s)` in f64.
    fn affine(&self, g: &Graph, id: NodeId, eps: f32) -> Result<(Vec<f64>, Vec<f64>), PassError> {
        let ins = g.node(id).inputs();
        let get = |k: usize, what: &str| {
            g.constant(ins[k])
                .map(|t| t.to_f64_vec())
                .ok_or_else(|| self.err(g, id, format!("{what} is not a constant; only inference-mode batch-norm with constant statistics is supported")))
        };
        let (gamma, beta, mean, var) = (
            get(1, "scale")?,
            get(2, "bias")?,
            get(3, "mean")?,
            get(4, "variance")?,
        );
        let c = gamma.len();
        if [beta.len(), mean.len(), var.len()].iter().any(|&n| n != c) {
            return Err(self.err(g, id, "scale, bias, mean and variance differ in length"));
        }
        let s: Vec<f64> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + eps as f64).sqrt())
            .collect();
        let shift = (0..c).map(|i| beta[i] - mean[i] * s[i]).collect();
        Ok((s, shift))
    }

    fn fold_into_producer(
        &self,
        g: &mut Graph,
        bn: NodeId,
        x: ValueId,
        s: &[f64],
        shift: &[f64],
    ) -> Result<bool, PassError> {
        let Some(p) = g.producer(x) else {
            return Ok(false);
        };
        if g.users(x).len() != 1 || g.outputs().contains(&x) {
            return Ok(false);
        }
        let c = s.len();
        let node = g.node(p).clone();
        let w_axis = match &node.op {
            Op::Conv { .. } => 0usize,
            Op::Gemm {
                trans_b,
                alpha,
                beta,
                ..
            } => {
                if *alpha != 1.0 || (*beta != 1.0 && node.inputs().len() > 2) {
                    return Ok(false);
                }
                if *trans_b {
                    0
                } else {
                    1
                }
            }
            _ => return Ok(false),
        };
        let Some(w) = g.constant(node.inputs()[1]).cloned() else {
            return Ok(false);
        };
        if w.shape().get(w_axis) != Some(&c) {
            return Ok(false);
        }
        let bias = match node.inputs().get(2) {
            Some(&b) => match g.constant(b) {
                Some(t) if t.len() == c => t.to_f64_vec(),
                _ => return Ok(false),
            },
            None => vec![0.0; c],
        };
        let new_w = scale_axis(&w, w_axis, s);
        let new_b: Vec<f64> = (0..c).map(|i| bias[i] * s[i] + shift[i]).collect();
        let dtype = w.dtype();
        let wname = unique(g, format!("{}.weight_bn", node.name));
        let bname = unique(g, format!("{}.bias_bn", node.name));
        let wv = g
            .add_constant(wname, new_w)
            .map_err(|e| self.err(g, bn, e.to_string()))?;
        let bt = Tensor::from_f64(&[c], new_b).expect("1-D").cast(dtype);
        let bv = g
            .add_constant(bname, bt)
            .map_err(|e| self.err(g, bn, e.to_string()))?;
        let ins = vec![node.inputs()[0], wv, bv];
        g.set_inputs(p, &ins)
            .map_err(|e| self.err(g, bn, e.to_string()))?;
        let y = g.node(bn).outputs()[0];
        crate::util::replace_keeping_name(g, y, x).map_err(|e| self.err(g, bn, e))?;
        g.remove_node(bn);
        Ok(true)
    }

    fn lower_to_affine(
        &self,
        g: &mut Graph,
        bn: NodeId,
        x: ValueId,
        s: &[f64],
        shift: &[f64],
    ) -> Result<bool, PassError> {
        let rank = g
            .value(x)
            .ty
            .as_ref()
            .map(|t| t.rank())
            .ok_or_else(|| self.err(g, bn, "input type unknown"))?;
        if rank < 2 {
            return Err(self.err(
                g,
                bn,
                format!("input has rank {rank}; expected at least 2 (N, C, ...)"),
            ));
        }
        let dtype = g.value(x).ty.as_ref().unwrap().dtype;
        let mut shape = vec![s.len()];
        shape.extend(std::iter::repeat_n(1, rank - 2));
        let name = g.node(bn).name.clone();
        let sv = g
            .add_constant(
                unique(g, format!("{name}.scale")),
                Tensor::from_f64(&shape, s.to_vec()).unwrap().cast(dtype),
            )
            .map_err(|e| self.err(g, bn, e.to_string()))?;
        let bv = g
            .add_constant(
                unique(g, format!("{name}.shift")),
                Tensor::from_f64(&shape, shift.to_vec())
                    .unwrap()
                    .cast(dtype),
            )
            .map_err(|e| self.err(g, bn, e.to_string()))?;
        let m = g
            .add_simple(format!("{name}.mul"), Op::Mul, &[x, sv])
            .map_err(|e| self.err(g, bn, e.to_string()))?;
        let a = g
            .add_simple(format!("{name}.add"), Op::Add, &[m, bv])
            .map_err(|e| self.err(g, bn, e.to_string()))?;
        let y = g.node(bn).outputs()[0];
        crate::util::replace_keeping_name(g, y, a).map_err(|e| self.err(g, bn, e))?;
        g.remove_node(bn);
        Ok(true)
    }
}

/// Multiplies slice `i` along `axis` of `t` by `s[i]`.
fn scale_axis(t: &Tensor, axis: usize, s: &[f64]) -> Tensor {
    let shape = t.shape().to_vec();
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    let data: Vec<f64> = t
        .to_f64_vec()
        .iter()
        .enumerate()
        .map(|(i, &v)| v * s[(i / inner) % n])
        .collect();
    Tensor::from_f64(&shape, data)
        .expect("same shape")
        .cast(t.dtype())
}

fn unique(g: &Graph, base: String) -> String {
    crate::util::unique_name(g, base)
}
