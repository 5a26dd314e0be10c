//! `decompose-softmax`: Softmax over the last axis as CKKS primitives.
//!
//! CKKS has no max, so the usual `exp(x − max x)` is out. Softmax is shift-invariant, so pannc
//! subtracts the row *mean* instead (a linear layer, exact), and scales by `2^-r`:
//! `z = (x − mean x)/2^r`. By Jensen, `Σ exp(z) ≥ n` for every row, so the row sums of
//! `exp(z)` lie in `[n, n·e^{max z}]`, a known positive interval. A direct reciprocal on the
//! sums of `exp(x − mean x)` is hopeless on real attention rows (`--softmax-squarings 0`:
//! sums from 17 to 1.6·10⁴ on the ViT fixture's calibration images; on the encoder exp's
//! interval is then too wide for a degree-15 minimax), so the exponent is split into
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
//! A constant attention mask on the scores (`Where(cond, −∞, s)` with a constant condition,
//! as `masked_fill` on a buffer exports, or `s + M` with `M` of zeros and entries ≤ −1e4) is
//! folded in: the mean is taken over each row's kept entries (`(s ⊙ K)·1 · (1/k)`), the
//! centred scores are zeroed where masked and `exp`'s output multiplied by `K` (`exp(−∞) = 0`),
//! all products with constants; the masking node goes dead. A constant fill that is not a
//! mask, a mask mixed with a bias, masks differing across batch or heads, or a row with nothing
//! kept are errors naming the softmax.
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
        let mut masks = Vec::new();
        for &id in &nodes {
            let (n, mask) = self.check(g, id)?;
            sizes.push(n);
            masks.push(mask);
        }
        // With a constant mask the scores before it are what is centred and exponentiated.
        let xs: Vec<ValueId> = nodes
            .iter()
            .zip(&masks)
            .map(|(&id, m)| m.as_ref().map_or(g.node(id).inputs()[0], |m| m.scores))
            .collect();
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
                let spread = row_spread(g, &cx.calib, &xs, &sizes, &masks)
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
        for (((&id, &n), &r), mask) in nodes.iter().zip(&sizes).zip(&squarings).zip(&masks) {
            let x = g.node(id).inputs()[0];
            let out = g.node(id).outputs()[0];
            let dtype = float_dtype(g, x);
            let mut b = Builder::new(g, self.name(), id, dtype);
            let scale = 1.0 / f64::from(1u32 << r);
            let (mut u, ones) = match mask {
                None => {
                    let c = b.konst("center", &[n, n], centering(n, None, scale))?;
                    let z = b.node("centered", Op::MatMul, &[x, c])?;
                    let e = b.node("exp", Op::Exp, &[z])?;
                    (e, b.konst("ones", &[n, 1], vec![1.0; n])?)
                }
                Some(m) => {
                    // Kept entries only: the mean over each row's kept entries, the centred
                    // scores zeroed where masked (so exp stays on the calibrated interval),
                    // and exp's value there zeroed (exp(−∞) = 0).
                    let t = m.rows;
                    let ones = b.konst("ones", &[n, 1], vec![1.0; n])?;
                    let keep = b.konst("keep", &[t, n], m.keep.clone())?;
                    let inv_count: Vec<f64> = m
                        .keep
                        .chunks(n)
                        .map(|row| 1.0 / row.iter().sum::<f64>())
                        .collect();
                    let kept = b.node("kept", Op::Mul, &[m.scores, keep])?;
                    let sum = b.node("kept_sum", Op::MatMul, &[kept, ones])?;
                    let inv = b.konst("inv_count", &[t, 1], inv_count)?;
                    let mean = b.node("kept_mean", Op::Mul, &[sum, inv])?;
                    let d = b.node("centered", Op::Sub, &[m.scores, mean])?;
                    let keep_scaled: Vec<f64> = m.keep.iter().map(|k| k * scale).collect();
                    let ks = b.konst("keep_scaled", &[t, n], keep_scaled)?;
                    let z = b.node("centered_kept", Op::Mul, &[d, ks])?;
                    let e = b.node("exp", Op::Exp, &[z])?;
                    (b.node("exp_kept", Op::Mul, &[e, keep])?, ones)
                }
            };
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
                "softmax '{}': exp of (x − row mean)/2^{r}, {r} normalised squaring(s), then 1/Σ{}",
                b.name,
                if mask.is_some() {
                    " (constant attention mask: means and sums over the kept entries)"
                } else {
                    ""
                }
            ));
            crate::util::replace_keeping_name(g, out, y).map_err(|e| self.node_err(g, id, e))?;
            g.remove_node(id);
        }
        if masks.iter().any(Option::is_some) {
            // The masking Where/Add (and its −∞ constants) are dead now.
            crate::Dce.run(g, cx)?;
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

    /// The row length and the constant mask, if any, after checking the axis and that no
    /// run-time mask reaches the input.
    fn check(&self, g: &Graph, id: NodeId) -> Result<(usize, Option<Mask>), PassError> {
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
        let rows = match shape.iter().rev().nth(1) {
            Some(Dim::Known(t)) => *t,
            _ => 1,
        };
        let mask = constant_mask(g, x, rows, n).map_err(|m| self.node_err(g, id, m))?;
        Ok((n, mask))
    }
}

/// A constant attention mask on the scores: `Where(cond, fill, scores)` (or with the arms
/// swapped) with a very negative constant fill, or `scores + M` with `M` of zeros and very
/// negative entries. `keep` is `[rows, n]`, 1 where the entry is kept.
struct Mask {
    scores: ValueId,
    rows: usize,
    keep: Vec<f64>,
}

/// Fill values at or below this count as masking (exported masks use −∞, −1e9, −1e4 or the
/// dtype's lowest value).
const MASKED: f64 = -1e4;

fn constant_mask(g: &Graph, x: ValueId, rows: usize, n: usize) -> Result<Option<Mask>, String> {
    let Some(p) = g.producer(x) else {
        return Ok(None);
    };
    let node = g.node(p);
    let ins = node.inputs();
    // (scores, per-element keep flags before broadcasting, their shape)
    let (scores, keep, shape): (ValueId, Vec<f64>, Vec<usize>) = match node.op {
        Op::Where => {
            let Some(cond) = g.constant(ins[0]) else {
                return Ok(None);
            };
            // Where picks its second input where the condition holds.
            let (fill, scores, fill_if_true) = match (g.constant(ins[1]), g.constant(ins[2])) {
                (Some(f), None) => (f, ins[2], true),
                (None, Some(f)) => (f, ins[1], false),
                _ => return Ok(None),
            };
            if fill.to_f64_vec().iter().any(|&v| v > MASKED) {
                return Err(format!(
                    "its input is a Where '{}' with a constant fill that is not a mask (values above {MASKED:e}); not supported",
                    node.name
                ));
            }
            let keep = cond
                .to_f64_vec()
                .iter()
                .map(|&c| f64::from(u8::from((c != 0.0) != fill_if_true)))
                .collect();
            (scores, keep, cond.shape().to_vec())
        }
        Op::Add => {
            let (m, scores) = match (g.constant(ins[0]), g.constant(ins[1])) {
                (Some(m), None) => (m, ins[1]),
                (None, Some(m)) => (m, ins[0]),
                _ => return Ok(None),
            };
            let v = m.to_f64_vec();
            if !v.iter().any(|&e| e <= MASKED) {
                return Ok(None); // a finite bias: softmax handles it as it is
            }
            if v.iter().any(|&e| e > MASKED && e != 0.0) {
                return Err(format!(
                    "its input adds a constant '{}' mixing a mask (≤ {MASKED:e}) with a bias; not supported",
                    node.name
                ));
            }
            let keep = v.iter().map(|&e| f64::from(u8::from(e == 0.0))).collect();
            (scores, keep, m.shape().to_vec())
        }
        _ => return Ok(None),
    };
    // Broadcast to [rows, n]: leading dimensions must be 1.
    let lead = shape.len().saturating_sub(2);
    if shape[..lead].iter().any(|&d| d != 1) {
        return Err(format!(
            "a constant mask of shape {shape:?} differs across batch or heads; only [T, n] masks are supported"
        ));
    }
    let tail = &shape[lead..];
    let (mr, mc) = match tail {
        [] => (1, 1),
        [c] => (1, *c),
        [r, c] => (*r, *c),
        _ => unreachable!("at most two trailing dimensions"),
    };
    if !(mr == 1 || mr == rows) || !(mc == 1 || mc == n) {
        return Err(format!(
            "a constant mask of shape {shape:?} does not broadcast to rows of [{rows}, {n}]"
        ));
    }
    let mut full = vec![0.0; rows * n];
    for i in 0..rows {
        for j in 0..n {
            full[i * n + j] = keep[(i % mr) * mc + (j % mc)];
        }
    }
    if full.chunks(n).any(|row| row.iter().all(|&k| k == 0.0)) {
        return Err("a constant mask hides a whole row".to_string());
    }
    Ok(Some(Mask {
        scores,
        rows,
        keep: full,
    }))
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

/// Per softmax input: the largest `max(row) − mean(row)` over the calibration data (over the
/// kept entries where a constant mask applies).
fn row_spread(
    g: &Graph,
    calib: &[pannc_ir::Tensor],
    xs: &[ValueId],
    sizes: &[usize],
    masks: &[Option<Mask>],
) -> Result<Vec<f64>, pannc_interp::InterpError> {
    let mut probe = g.clone();
    probe.set_outputs(xs.to_vec());
    let outs = pannc_interp::run(&probe, calib, &RunOptions::default())?;
    Ok(outs
        .iter()
        .zip(sizes)
        .zip(masks)
        .map(|((t, &n), mask)| {
            t.to_f64_vec()
                .chunks(n.max(1))
                .enumerate()
                .map(|(i, row)| {
                    let keep = mask.as_ref().map(|m| &m.keep[(i % m.rows) * n..][..n]);
                    let kept = |j: usize| keep.is_none_or(|k| k[j] != 0.0);
                    let vals = row.iter().enumerate().filter(|&(j, _)| kept(j));
                    let (mut sum, mut count, mut max) = (0.0, 0.0, f64::NEG_INFINITY);
                    for (_, &v) in vals {
                        sum += v;
                        count += 1.0;
                        max = f64::max(max, v);
                    }
                    max - sum / count
                })
                .fold(0.0, f64::max)
        })
        .collect())
}
