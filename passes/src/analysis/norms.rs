//! Weight norms of the linear layers: how much each can amplify a perturbation of its input.
//!
//! The error bound of a PANN grows with the norms of the layers after each activation (an
//! elementwise error of size ε at a layer's input moves its output by at most `‖W‖∞·ε`), so
//! this is the per-layer amplification the accuracy lab reports next to sensitivity.

use pannc_ir::{Graph, Op};

/// Norms of one linear layer's constant weight.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerNorm {
    pub node: String,
    pub op: String,
    /// Induced ∞-norm: the largest sum of |w| over one output's inputs (for a Conv, over input
    /// channels and the kernel window). Bounds the amplification of an elementwise error.
    pub inf_norm: f64,
    /// Frobenius norm (what weight decay penalises).
    pub frobenius: f64,
}

/// The norms of every Conv, Gemm and MatMul with a constant weight, in topological order.
pub fn weight_norms(g: &Graph) -> Vec<LayerNorm> {
    let Ok(order) = g.topo_order() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for id in order {
        let node = g.node(id);
        let Some(w) = node.inputs().get(1).and_then(|&v| g.constant(v)) else {
            continue;
        };
        let shape = w.shape().to_vec();
        let vals = w.to_f64_vec();
        if vals.is_empty() {
            continue;
        }
        // Rows = outputs: Conv [O, I, kh, kw] → O rows; Gemm/MatMul [in, out] (or [out, in]
        // with transB) → columns or rows.
        let rows: Vec<f64> = match &node.op {
            Op::Conv { .. } => {
                let o = shape[0].max(1);
                let per = vals.len() / o;
                (0..o)
                    .map(|r| vals[r * per..(r + 1) * per].iter().map(|x| x.abs()).sum())
                    .collect()
            }
            Op::Gemm { trans_b, .. } if shape.len() == 2 => {
                let (r, c) = (shape[0], shape[1]);
                if *trans_b {
                    (0..r)
                        .map(|i| vals[i * c..(i + 1) * c].iter().map(|x| x.abs()).sum())
                        .collect()
                } else {
                    (0..c)
                        .map(|j| (0..r).map(|i| vals[i * c + j].abs()).sum())
                        .collect()
                }
            }
            Op::MatMul if shape.len() == 2 => {
                let (r, c) = (shape[0], shape[1]);
                (0..c)
                    .map(|j| (0..r).map(|i| vals[i * c + j].abs()).sum())
                    .collect()
            }
            _ => continue,
        };
        out.push(LayerNorm {
            node: node.name.clone(),
            op: node.op.name().to_string(),
            inf_norm: rows.iter().cloned().fold(0.0, f64::max),
            frobenius: vals.iter().map(|x| x * x).sum::<f64>().sqrt(),
        });
    }
    out
}
