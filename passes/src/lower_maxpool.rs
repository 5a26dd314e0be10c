//! Max-pool lowering to a tree of ReLUs.
//!
//! Guarantees: every 2-D `MaxPool` (ceil mode as extra end padding) becomes, for a `k`-element window, `k`
//! depthwise "select" convolutions (one-hot kernels, same strides/pads/dilations) combined by
//! a pairwise tree `max(a, b) = b + ReLU(a − b)` of depth ⌈log2 k⌉. At the first tree level the
//! difference `a − b` is itself one depthwise convolution (kernel `e_a − e_b`), so the ReLU's
//! input comes straight from a linear layer and its range scaling folds. The ReLUs are then
//! approximated like any other. Padding is allowed only when the input is known
//! non-negative (a ReLU's output, or pooled, reshaped, concatenated or summed such values),
//! where zero padding equals ONNX's −∞ padding.

use crate::util::unique_name;
use crate::{Context, Pass, PassError};
use pannc_ir::{AutoPad, Graph, NodeId, Op, Tensor, ValueId, Window};

pub struct LowerMaxPool;

impl Pass for LowerMaxPool {
    fn name(&self) -> &'static str {
        "lower-maxpool"
    }
    fn summary(&self) -> &'static str {
        "rewrite MaxPool as select convolutions and a b + ReLU(a − b) tree"
    }
    fn run(&self, g: &mut Graph, cx: &mut Context) -> Result<bool, PassError> {
        let mut changed = false;
        for id in g.node_ids() {
            if let Op::MaxPool { window } = &g.node(id).op {
                let window = window.clone();
                self.lower(g, id, &window)?;
                cx.report.notes.push(format!(
                    "MaxPool '{}' lowered to a tree of {} ReLU(s)",
                    g.node(id).name,
                    window
                        .kernel_shape
                        .iter()
                        .product::<usize>()
                        .saturating_sub(1)
                ));
                let y = g.node(id).outputs()[0];
                if !g.is_used(y) {
                    g.remove_node(id);
                }
                changed = true;
            }
        }
        Ok(changed)
    }
}

impl LowerMaxPool {
    fn err(&self, g: &Graph, id: NodeId, message: impl Into<String>) -> PassError {
        let n = g.node(id);
        PassError::Node {
            pass: self.name(),
            node: n.name.clone(),
            op: n.op.name(),
            message: message.into(),
        }
    }

    fn lower(&self, g: &mut Graph, id: NodeId, w: &Window) -> Result<(), PassError> {
        let x = g.node(id).inputs()[0];
        let name = g.node(id).name.clone();
        let ty = g
            .value(x)
            .ty
            .clone()
            .ok_or_else(|| self.err(g, id, "input type unknown"))?;
        if ty.rank() != 4 || w.kernel_shape.len() != 2 {
            return Err(self.err(g, id, "only 2-D max-pool (NCHW) can be lowered"));
        }
        if !matches!(w.auto_pad, AutoPad::NotSet | AutoPad::Valid) {
            return Err(self.err(
                g,
                id,
                "auto_pad SAME_* is not supported for approximation; export with explicit pads",
            ));
        }
        let w = &self.floor_mode(g, id, w, &ty)?;
        let padded = w.auto_pad == AutoPad::NotSet && w.pads.iter().any(|&p| p > 0);
        let nonneg = nonnegative(g, x, 0);
        if padded && !nonneg {
            return Err(self.err(
                g,
                id,
                "padded max-pool on a possibly negative input cannot be lowered exactly",
            ));
        }
        let channels = match ty.shape[1] {
            pannc_ir::Dim::Known(c) => c,
            _ => return Err(self.err(g, id, "channel count unknown")),
        };
        let (kh, kw) = (w.kernel_shape[0], w.kernel_shape[1]);
        let k = kh * kw;
        let dtype = ty.dtype;
        let conv_window = Window {
            kernel_shape: vec![kh, kw],
            ..w.clone()
        };
        // A depthwise conv with per-position weights `coef` (length k) for every channel.
        let conv = |g: &mut Graph, tag: String, coef: &[f64]| -> Result<ValueId, PassError> {
            let data: Vec<f64> = (0..channels).flat_map(|_| coef.iter().copied()).collect();
            let t = Tensor::from_f64(&[channels, 1, kh, kw], data)
                .expect("shape")
                .cast(dtype);
            let wname = unique_name(g, format!("{name}.{tag}.w"));
            let wv = g
                .add_constant(wname, t)
                .map_err(|e| self.err(g, id, e.to_string()))?;
            g.add_simple(
                format!("{name}.{tag}"),
                Op::Conv {
                    window: conv_window.clone(),
                    group: channels,
                },
                &[x, wv],
            )
            .map_err(|e| self.err(g, id, e.to_string()))
        };
        let onehot = |i: usize| {
            (0..k)
                .map(|j| if j == i { 1.0 } else { 0.0 })
                .collect::<Vec<f64>>()
        };
        // Level 1: pairs (2i, 2i+1) → b + ReLU(diff conv); an odd one out is selected as is.
        let mut level: Vec<ValueId> = Vec::new();
        for i in (0..k).step_by(2) {
            if i + 1 == k {
                level.push(conv(g, format!("sel{i}"), &onehot(i))?);
                continue;
            }
            let mut diff = onehot(i);
            diff[i + 1] = -1.0;
            let d = conv(g, format!("diff{i}_{}", i + 1), &diff)?;
            let b = conv(g, format!("sel{}", i + 1), &onehot(i + 1))?;
            level.push(self.max_from_diff(g, id, &name, format!("m{i}_{}", i + 1), d, b)?);
        }
        // Higher levels: Sub, then the same b + ReLU(d).
        let mut depth = 1;
        while level.len() > 1 {
            depth += 1;
            let mut next = Vec::new();
            for pair in level.chunks(2) {
                if let [a, b] = pair {
                    let d = g
                        .add_simple(
                            format!("{name}.l{depth}d{}", next.len()),
                            Op::Sub,
                            &[*a, *b],
                        )
                        .map_err(|e| self.err(g, id, e.to_string()))?;
                    next.push(self.max_from_diff(
                        g,
                        id,
                        &name,
                        format!("l{depth}m{}", next.len()),
                        d,
                        *b,
                    )?);
                } else {
                    next.push(pair[0]);
                }
            }
            level = next;
        }
        let y = g.node(id).outputs()[0];
        crate::util::replace_keeping_name(g, y, level[0]).map_err(|e| self.err(g, id, e))?;
        Ok(())
    }

    /// The same pooling without `ceil_mode`: the windows that ceil mode adds at the end are
    /// made by extra end padding (ONNX's rule: the last window starts inside the input or its
    /// begin padding, so it always holds an input element).
    fn floor_mode(
        &self,
        g: &Graph,
        id: NodeId,
        w: &Window,
        ty: &pannc_ir::TensorType,
    ) -> Result<Window, PassError> {
        if !w.ceil_mode {
            return Ok(w.clone());
        }
        if w.auto_pad != AutoPad::NotSet {
            return Err(self.err(g, id, "ceil_mode with auto_pad is not supported"));
        }
        let mut out = w.clone();
        out.ceil_mode = false;
        let n = w.kernel_shape.len();
        if out.pads.is_empty() {
            out.pads = vec![0; 2 * n];
        }
        for i in 0..n {
            let x = match ty.shape[2 + i] {
                pannc_ir::Dim::Known(v) => v,
                _ => return Err(self.err(g, id, "ceil_mode needs known spatial sizes")),
            };
            let s = w.strides.get(i).copied().unwrap_or(1).max(1);
            let d = w.dilations.get(i).copied().unwrap_or(1).max(1);
            let dk = (w.kernel_shape[i] - 1) * d + 1;
            let (pb, pe) = (out.pads[i], out.pads[n + i]);
            let Some(span) = (x + pb + pe).checked_sub(dk) else {
                return Err(self.err(g, id, "kernel larger than the padded input"));
            };
            let mut windows = span.div_ceil(s) + 1;
            if (windows - 1) * s >= x + pb {
                windows -= 1;
            }
            out.pads[n + i] = ((windows - 1) * s + dk).saturating_sub(x + pb).max(pe);
        }
        Ok(out)
    }

    fn max_from_diff(
        &self,
        g: &mut Graph,
        id: NodeId,
        name: &str,
        tag: String,
        d: ValueId,
        b: ValueId,
    ) -> Result<ValueId, PassError> {
        let r = g
            .add_simple(format!("{name}.{tag}.relu"), Op::Relu, &[d])
            .map_err(|e| self.err(g, id, e.to_string()))?;
        g.add_simple(format!("{name}.{tag}.max"), Op::Add, &[b, r])
            .map_err(|e| self.err(g, id, e.to_string()))
    }
}

/// Whether every element of `v` is known to be ≥ 0 from the ops that produce it.
fn nonnegative(g: &Graph, v: ValueId, depth: usize) -> bool {
    if depth > 64 {
        return false;
    }
    if let Some(t) = g.constant(v) {
        return t.to_f64_vec().iter().all(|&x| x >= 0.0);
    }
    let Some(p) = g.producer(v) else {
        return false;
    };
    let node = g.node(p);
    let all = |ins: &[ValueId]| ins.iter().all(|&i| nonnegative(g, i, depth + 1));
    match &node.op {
        Op::Relu | Op::Sigmoid => true,
        Op::Concat { .. } | Op::Add | Op::Mul => all(node.inputs()),
        Op::MaxPool { .. }
        | Op::AveragePool { .. }
        | Op::GlobalAveragePool
        | Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Squeeze
        | Op::Unsqueeze
        | Op::Identity
        | Op::Dropout => nonnegative(g, node.inputs()[0], depth + 1),
        _ => false,
    }
}
