//! `decompose-softmax`: Softmax over the last axis as CKKS primitives.
//!
//! CKKS has no max, so the usual `exp(x − max x)` is out. Softmax is shift-invariant, so pannc
//! subtracts the row *mean* instead (a linear layer, exact), and scales by `2^-r`:
//! `z = (x − mean x)/2^r`. By Jensen, `Σ exp(z) ≥ n` for every row, so the row sums of
//! `exp(z)` lie in `[n, n·e^{max z}]`, a known positive interval. A direct reciprocal on the
//! sums of `exp(x − mean x)` is hopeless on real attention rows (measured: sums from 17 to
//! 1.9·10⁴ on the ViT fixture, 13 to 2.7·10⁸ on the encoder), so the exponent is split into
//! `r` squarings with a normalisation after each:
//!
//! ```text
//! u₀   = Exp(z)                        minimax on z's calibrated interval
//! uₖ₊₁ = uₖ² · Pow(Σ uₖ, −2)           = (uₖ/Σuₖ)², each row renormalised, k < r
//! y    = uᵣ · Reciprocal(Σ uᵣ)         = softmax(x)
//! ```
//!
//! (`uᵣ ∝ exp(z)^{2^r} = exp(x − mean x)`.) After the first normalisation every row sums to
//! about 1, so `Σ uₖ²` lies in `[1/n, 1]`: every later power works on an interval of ratio
//! ≈ n. The sums are linear layers with constant weights (so range control folds each
//! polynomial's interval scaling into them); `r` is the smallest with
//! `margin · max(z·2^r) / 2^r ≤ ln(softmax_ratio)` on the calibration data, i.e. the first
//! sums span a ratio of at most `softmax_ratio` (32 by default). An error of a
//! normalisation before the last is a common factor of its row and cancels at the next one;
//! only `Exp`'s error (raised to the `2^r`) and the last reciprocal's reach the output.
//!
//! Levels: `exp` and each power their depth, every round one product (`uₖ²` runs beside the
//! power) and one for its sum's weights, the last product one. ct×ct: per element
//! `2r + 1` products plus the polynomials'.
//!
//! Guarantees: same function up to rounding; no Softmax left. Softmax over an axis other than
//! the last, or whose input depends on a graph input other than through a product of two
//! computed values (an attention mask supplied or computed at run time, e.g. a causal mask
//! built from the input's shape), is an error naming the node. Needs calibration data.

use crate::build::{centering, float_dtype, known_shape, Builder};
use crate::{Context, Pass, PassError};
use pannc_interp::RunOptions;
use pannc_ir::{Dim, Graph, NodeId, Op, ValueId};
use std::collections::HashSet;

pub struct DecomposeSoftmax;

impl Pass for DecomposeSoftmax {
    fn name(&self) -> &'static str {
        "decompose-softmax"
    }
    fn summary(&self) -> &'static str {
        "rewrite Softmax (last axis) as a centred, scaled Exp, r normalised squarings (Pow(Σ, −2)) and a final Reciprocal of the row sum"
    }
    fn run(&self, g: &mut Graph, cx: &mut Context) -> Result<bool, PassError> {
        let order = g.topo_order().map_err(|e| self.graph_err(e))?;
        let nodes: Vec<NodeId> = order
            .into_iter()
            .filter(|&id| matches!(g.node(id).op, Op::Softmax { .. }))
            .collect();
        if nodes.is_empty() {
            return Ok(false);
        }
        // Check every node before calibrating (cheap errors first).
        let mut sizes = Vec::new();
        for &id in &nodes {
            sizes.push(self.check(g, id)?);
        }
        let xs: Vec<ValueId> = nodes.iter().map(|&id| g.node(id).inputs()[0]).collect();
        let squarings = match cx.policy.transformer.softmax_squarings {
            Some(r) => vec![r; nodes.len()],
            None => {
                if cx.calib.is_empty() {
                    return Err(self.node_err(
                        g,
                        nodes[0],
                        "calibration data is needed to choose the softmax's squarings (or set them)",
                    ));
                }
                let spread = row_spread(g, &cx.calib, &xs, &sizes)
                    .map_err(|e| self.graph_err(format!("calibration run failed: {e}")))?;
                let limit = cx.policy.transformer.softmax_ratio.max(2.0).ln();
                spread
                    .iter()
                    .map(|&s| {
                        let mut r = 0u32;
                        while cx.policy.margin * s / f64::from(1u32 << r) > limit && r < 12 {
                            r += 1;
                        }
                        r
                    })
                    .collect()
            }
        };
        for ((&id, &n), &r) in nodes.iter().zip(&sizes).zip(&squarings) {
            let x = g.node(id).inputs()[0];
            let out = g.node(id).outputs()[0];
            let dtype = float_dtype(g, x);
            let mut b = Builder::new(g, self.name(), id, dtype);
            let c = b.konst(
                "center",
                &[n, n],
                centering(n, None, 1.0 / f64::from(1u32 << r)),
            )?;
            let z = b.node("centered", Op::MatMul, &[x, c])?;
            let mut u = b.node("exp", Op::Exp, &[z])?;
            let ones = b.konst("ones", &[n, 1], vec![1.0; n])?;
            for k in 0..r {
                let s = b.node(&format!("sum{k}"), Op::MatMul, &[u, ones])?;
                let m2 = b.konst(&format!("minus_two{k}"), &[], vec![-2.0])?;
                let p = b.node(&format!("inv_square{k}"), Op::Pow, &[s, m2])?;
                let sq = b.node(&format!("square{k}"), Op::Mul, &[u, u])?;
                u = b.node(&format!("normalized{k}"), Op::Mul, &[sq, p])?;
            }
            let s = b.node("sum", Op::MatMul, &[u, ones])?;
            let inv = b.node("reciprocal", Op::Reciprocal, &[s])?;
            let y = b.node("normalized", Op::Mul, &[u, inv])?;
            cx.report.notes.push(format!(
                "softmax '{}': exp of (x − row mean)/2^{r}, {r} normalised squaring(s), then 1/Σ",
                b.name
            ));
            crate::util::replace_keeping_name(g, out, y).map_err(|e| self.node_err(g, id, e))?;
            g.remove_node(id);
        }
        Ok(true)
    }
}

impl DecomposeSoftmax {
    fn graph_err(&self, e: impl ToString) -> PassError {
        PassError::Graph {
            pass: self.name(),
            message: e.to_string(),
        }
    }
    fn node_err(&self, g: &Graph, id: NodeId, message: impl ToString) -> PassError {
        PassError::Node {
            pass: self.name(),
            node: g.node(id).name.clone(),
            op: g.node(id).op.name(),
            message: message.to_string(),
        }
    }

    /// The row length, after checking the axis and that no run-time mask reaches the input.
    fn check(&self, g: &Graph, id: NodeId) -> Result<usize, PassError> {
        let Op::Softmax { axis } = g.node(id).op else {
            unreachable!("softmax nodes only")
        };
        let x = g.node(id).inputs()[0];
        let Some(shape) = known_shape(g, x) else {
            return Err(self.node_err(g, id, "the input's shape is unknown"));
        };
        let rank = shape.len() as i64;
        let ax = if axis < 0 { axis + rank } else { axis };
        if ax != rank - 1 {
            return Err(self.node_err(
                g,
                id,
                format!("Softmax over axis {ax} of a rank-{rank} tensor (not the last axis) is not supported"),
            ));
        }
        let Some(Dim::Known(n)) = shape.last().cloned() else {
            return Err(self.node_err(g, id, "the softmax axis must have a static size"));
        };
        if let Some(input) = run_time_mask(g, x) {
            return Err(self.node_err(
                g,
                id,
                format!(
                    "its input depends on graph input '{input}' other than through a product of computed values: an attention mask supplied or computed at run time is not supported"
                ),
            ));
        }
        Ok(n)
    }
}

/// For attention scores (a softmax input computed from a product of two computed values,
/// `Q·Kᵀ`): a graph input reached backwards from `x` without crossing such a product. Scores
/// reach the inputs only through it; a mask added to them (given as an input, or computed
/// from the input's shape) reaches one directly.
fn run_time_mask(g: &Graph, x: ValueId) -> Option<String> {
    let computed = pannc_ir::computed_values(g);
    let mut seen = HashSet::new();
    let mut stack = vec![x];
    let mut scores = false;
    let mut direct = None;
    while let Some(v) = stack.pop() {
        if !seen.insert(v) {
            continue;
        }
        if g.inputs().contains(&v) {
            direct.get_or_insert_with(|| g.value(v).name.clone());
            continue;
        }
        let Some(p) = g.producer(v) else { continue };
        let node = g.node(p);
        let ct_ct = matches!(node.op, Op::MatMul | Op::Mul | Op::Gemm { .. })
            && node
                .inputs()
                .iter()
                .filter(|i| computed.contains(i))
                .count()
                >= 2;
        if ct_ct {
            scores = true;
        } else {
            stack.extend(node.inputs().iter().copied());
        }
    }
    direct.filter(|_| scores)
}

/// Per softmax input: the largest `max(row) − mean(row)` over the calibration data.
fn row_spread(
    g: &Graph,
    calib: &[pannc_ir::Tensor],
    xs: &[ValueId],
    sizes: &[usize],
) -> Result<Vec<f64>, pannc_interp::InterpError> {
    let mut probe = g.clone();
    probe.set_outputs(xs.to_vec());
    let outs = pannc_interp::run(&probe, calib, &RunOptions::default())?;
    Ok(outs
        .iter()
        .zip(sizes)
        .map(|(t, &n)| {
            t.to_f64_vec()
                .chunks(n.max(1))
                .map(|row| {
                    let mean = row.iter().sum::<f64>() / row.len() as f64;
                    row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v)) - mean
                })
                .fold(0.0, f64::max)
        })
        .collect())
}
