//! Range control: the `x/B` scaling of every polynomial's input is folded into neighbouring
//! linear layers so that it costs no multiplicative level.
//!
//! To scale a value `v` by `c` for its reader, pannc makes `v`'s producer emit `c·v`:
//! a Conv/Gemm/MatMul/Mul-by-constant scales its constant weight and bias; a `Poly` its
//! `out_scale`; Add/Sub, average pools, Flatten/Reshape/Transpose/Concat and not-yet-
//! approximated ReLUs pass the request to their inputs (`ReLU(c·x) = c·ReLU(x)`, `c > 0`).
//! Every *other* reader of a scaled value is compensated by `1/c` the same way (a Conv/Gemm
//! reading it scales its weight; a `Poly` its `in_scale`). Each fold is tried on a copy and
//! applied only if the whole chain succeeds; otherwise the node keeps its `in_scale`, which
//! costs one level, and the report counts it.
//!
//! Guarantees: the function computed by the graph is unchanged (up to rounding), and after the
//! pass `report.range_control_levels` is the number of `Poly` nodes whose `in_scale ≠ 1`.

use crate::util::unique_name;
use crate::{Context, Pass, PassError};
use pannc_ir::{Graph, NodeId, Op, Tensor, ValueId};

pub struct RangeControl;

/// Depth limit of the fold search (graphs are finite; this bounds recursion on hostile ones).
const MAX_DEPTH: usize = 64;

impl Pass for RangeControl {
    fn name(&self) -> &'static str {
        "range-control"
    }
    fn summary(&self) -> &'static str {
        "fold each polynomial's input scaling x/B into the producing linear layers (zero levels)"
    }
    fn run(&self, g: &mut Graph, cx: &mut Context) -> Result<bool, PassError> {
        let order = g.topo_order().map_err(|e| PassError::Graph {
            pass: self.name(),
            message: e.to_string(),
        })?;
        let mut changed = false;
        for id in order {
            let Op::Poly(p) = &g.node(id).op else {
                continue;
            };
            let c = p.in_scale;
            if c == 1.0 {
                continue;
            }
            let x = g.node(id).inputs()[0];
            let mut trial = g.clone();
            if scale_value(&mut trial, x, c, id, 0) {
                if let Op::Poly(p) = trial.op_mut(id) {
                    p.in_scale = 1.0;
                }
                *g = trial;
                changed = true;
            }
        }
        // Report what folded: an activation is folded when all its polynomials are.
        let mut unfolded = 0;
        for a in cx.report.activations.iter_mut() {
            a.scale_folded = true;
        }
        for id in g.node_ids() {
            if let Op::Poly(p) = &g.node(id).op {
                let folded = p.in_scale == 1.0;
                unfolded += usize::from(!folded);
                if let Some(a) = cx.report.activation_of_poly(&g.node(id).name) {
                    a.scale_folded &= folded;
                }
            }
        }
        cx.report.range_control_levels = unfolded;
        Ok(changed)
    }
}

/// Makes `v` hold `c·v` for its reader `requester`, compensating all other readers.
fn scale_value(g: &mut Graph, v: ValueId, c: f64, requester: NodeId, depth: usize) -> bool {
    if depth > MAX_DEPTH || g.outputs().contains(&v) || !c.is_finite() || c <= 0.0 {
        return false;
    }
    // Compensate other readers first (they must keep seeing v).
    for (u, slot) in g.users(v) {
        if u == requester {
            continue;
        }
        if !compensate(g, u, slot, 1.0 / c, depth) {
            return false;
        }
    }
    scale_producer(g, v, c, depth)
}

/// Reader `u` reads `v` at `slot`; `v` is about to be multiplied by `1/k`… so `u` multiplies
/// its use of `v` by `k`. An Add/Sub of a constant passes the compensation on: its constant
/// is divided by `k` too, so its own output is `1/k` of what it was, and its readers are
/// compensated in turn; so does a product of two computed values.
fn compensate(g: &mut Graph, u: NodeId, slot: usize, k: f64, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let ins = g.node(u).inputs().to_vec();
    let computed = |g: &Graph, v: ValueId| g.constant(v).is_none();
    let op = g.node(u).op.clone();
    // A product of two computed values (HardSwish's x·h, attention) is linear in each; unary
    // linear (and positively homogeneous) ops too: either way the output is 1/k of what it
    // was, so its readers are compensated in turn.
    let product = matches!(op, Op::Mul | Op::MatMul)
        && ins.len() == 2
        && ins[0] != ins[1]
        && ins.iter().all(|&v| computed(g, v));
    let unary = matches!(
        op,
        Op::GlobalAveragePool
            | Op::AveragePool { .. }
            | Op::Flatten { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Squeeze
            | Op::Unsqueeze
            | Op::Relu
    ) && slot == 0
        && k > 0.0;
    if product || unary {
        let out = g.node(u).outputs()[0];
        if g.outputs().contains(&out) {
            return false;
        }
        return g
            .users(out)
            .into_iter()
            .all(|(w, s)| compensate(g, w, s, k, depth + 1));
    }
    match op {
        Op::Add | Op::Sub => {
            let out = g.node(u).outputs()[0];
            let other = 1 - slot.min(1);
            if ins.len() != 2
                || ins[0] == ins[1]
                || g.constant(ins[other]).is_none()
                || g.outputs().contains(&out)
                || !scale_const_input(g, u, other, 1.0 / k)
            {
                return false;
            }
            g.users(out)
                .into_iter()
                .all(|(w, s)| compensate(g, w, s, k, depth + 1))
        }
        Op::Conv { .. } | Op::Gemm { .. } | Op::MatMul if slot == 0 => {
            scale_const_input(g, u, 1, k)
        }
        // A product with a constant (the Newton steps' `x · 1`): scale the constant.
        Op::Mul
            if g.node(u).inputs().len() == 2
                && g.constant(g.node(u).inputs()[1 - slot.min(1)]).is_some() =>
        {
            scale_const_input(g, u, 1 - slot.min(1), k)
        }
        Op::Poly(mut p) => {
            p.in_scale *= k;
            // Polynomials sharing one interval compensate each other with reciprocals:
            // (1/B)·B is 1 up to rounding, and must be exactly 1 to count as folded.
            if (p.in_scale - 1.0).abs() < 1e-12 {
                p.in_scale = 1.0;
            }
            *g.op_mut(u) = Op::Poly(p);
            true
        }
        _ => false,
    }
}

/// Makes the producer of `v` emit `c·v`.
fn scale_producer(g: &mut Graph, v: ValueId, c: f64, depth: usize) -> bool {
    let Some(p) = g.producer(v) else { return false };
    let node = g.node(p).clone();
    let ins = node.inputs().to_vec();
    match &node.op {
        Op::Conv { .. } | Op::Gemm { .. } => {
            if let Op::Gemm { beta, .. } = node.op {
                if beta != 1.0 && ins.len() > 2 {
                    return false;
                }
            }
            scale_const_input(g, p, 1, c) && (ins.len() < 3 || scale_const_input(g, p, 2, c))
        }
        Op::MatMul => scale_const_input(g, p, 1, c),
        Op::Mul => {
            if g.constant(ins[1]).is_some() {
                scale_const_input(g, p, 1, c)
            } else if g.constant(ins[0]).is_some() {
                scale_const_input(g, p, 0, c)
            } else {
                false
            }
        }
        Op::Poly(poly) => {
            let mut poly = poly.clone();
            poly.out_scale *= c;
            *g.op_mut(p) = Op::Poly(poly);
            true
        }
        Op::Add | Op::Sub => {
            if ins[0] == ins[1] {
                return scale_value(g, ins[0], c, p, depth + 1);
            }
            ins.iter().all(|&i| match g.constant(i) {
                Some(_) => scale_const_input(g, p, ins.iter().position(|&j| j == i).unwrap(), c),
                None => scale_value(g, i, c, p, depth + 1),
            })
        }
        Op::Concat { .. } => ins.iter().all(|&i| scale_value(g, i, c, p, depth + 1)),
        Op::Relu
        | Op::GlobalAveragePool
        | Op::AveragePool { .. }
        | Op::Flatten { .. }
        | Op::Transpose { .. } => scale_value(g, ins[0], c, p, depth + 1),
        Op::Reshape { .. } | Op::Squeeze | Op::Unsqueeze => scale_value(g, ins[0], c, p, depth + 1),
        _ => false,
    }
}

/// Replaces constant input `slot` of `n` by a fresh constant multiplied by `k`.
fn scale_const_input(g: &mut Graph, n: NodeId, slot: usize, k: f64) -> bool {
    let Some(&v) = g.node(n).inputs().get(slot) else {
        return false;
    };
    let Some(t) = g.constant(v) else { return false };
    let scaled = Tensor::from_f64(t.shape(), t.to_f64_vec().iter().map(|x| x * k).collect())
        .expect("same shape")
        .cast(t.dtype());
    let name = unique_name(g, format!("{}_s", g.value(v).name));
    let Ok(c) = g.add_constant(name, scaled) else {
        return false;
    };
    g.set_input(n, slot, c).is_ok()
}
