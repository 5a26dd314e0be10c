//! Pattern recognition: exporters spell some activations as subgraphs; this pass turns them
//! back into one op so every opset imports to the same IR.
//!
//! Guarantees: `x·0.5·(1 + erf(x/√2))` (any association/commutation of the two products, the
//! division also as multiplication by 1/√2) becomes `Gelu`; `x·Sigmoid(x)` becomes `Silu`
//! when the `Sigmoid` has no other reader. Intermediate nodes read elsewhere are left alone.

use crate::{Pass, PassError};
use pannc_ir::{Graph, NodeId, Op, ValueId};

pub struct Recognize;

const SQRT2: f64 = std::f64::consts::SQRT_2;

impl Pass for Recognize {
    fn name(&self) -> &'static str {
        "recognize"
    }
    fn summary(&self) -> &'static str {
        "turn exported GELU (Erf form) and SiLU (x·Sigmoid(x)) subgraphs into single ops"
    }
    fn run(&self, g: &mut Graph, _cx: &mut crate::Context) -> Result<bool, PassError> {
        let mut changed = false;
        for id in g.node_ids() {
            if !g.contains_node(id) {
                continue;
            }
            match g.node(id).op {
                Op::Erf => changed |= self.gelu(g, id)?,
                Op::Sigmoid => changed |= self.silu(g, id)?,
                _ => {}
            }
        }
        Ok(changed)
    }
}

/// The scalar value of a constant, if `v` is a one-element constant.
fn scalar(g: &Graph, v: ValueId) -> Option<f64> {
    let t = g.constant(v)?;
    (t.len() == 1).then(|| t.to_f64_vec()[0])
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

/// The only reader of `v`, if it has exactly one and `v` is not a graph output.
fn sole_user(g: &Graph, v: ValueId) -> Option<NodeId> {
    let users = g.users(v);
    (users.len() == 1 && !g.outputs().contains(&v)).then(|| users[0].0)
}

/// For a binary node, the input other than `v`.
fn other_input(g: &Graph, n: NodeId, v: ValueId) -> Option<ValueId> {
    let ins = g.node(n).inputs();
    match ins {
        [a, b] if *a == v => Some(*b),
        [a, b] if *b == v => Some(*a),
        _ => None,
    }
}

impl Recognize {
    fn err(&self, g: &Graph, id: NodeId, e: impl ToString) -> PassError {
        let n = g.node(id);
        PassError::Node {
            pass: self.name(),
            node: n.name.clone(),
            op: n.op.name(),
            message: e.to_string(),
        }
    }

    fn gelu(&self, g: &mut Graph, erf: NodeId) -> Result<bool, PassError> {
        // erf(x/√2) or erf(x·(1/√2))
        let arg = g.node(erf).inputs()[0];
        let Some(scale_node) = g.producer(arg) else {
            return Ok(false);
        };
        let x = match (&g.node(scale_node).op, g.node(scale_node).inputs()) {
            (Op::Div, &[x, c]) if scalar(g, c).is_some_and(|c| close(c, SQRT2)) => x,
            (Op::Mul, &[a, b]) if scalar(g, b).is_some_and(|c| close(c, 1.0 / SQRT2)) => a,
            (Op::Mul, &[a, b]) if scalar(g, a).is_some_and(|c| close(c, 1.0 / SQRT2)) => b,
            _ => return Ok(false),
        };
        let erf_out = g.node(erf).outputs()[0];
        // 1 + erf
        let Some(add) = sole_user(g, erf_out) else {
            return Ok(false);
        };
        if !matches!(g.node(add).op, Op::Add)
            || !other_input(g, add, erf_out)
                .and_then(|c| scalar(g, c))
                .is_some_and(|c| close(c, 1.0))
        {
            return Ok(false);
        }
        let one_plus = g.node(add).outputs()[0];
        let Some(m1) = sole_user(g, one_plus) else {
            return Ok(false);
        };
        if !matches!(g.node(m1).op, Op::Mul) {
            return Ok(false);
        }
        let Some(other) = other_input(g, m1, one_plus) else {
            return Ok(false);
        };
        let m1_out = g.node(m1).outputs()[0];
        // Form A: (x·(1+erf))·0.5 ; form B: (x·0.5)·(1+erf) ; form C: (0.5·(1+erf))... via m1 = x*... handled by A.
        let result = if other == x {
            let Some(m2) = sole_user(g, m1_out) else {
                return Ok(false);
            };
            let ok = matches!(g.node(m2).op, Op::Mul)
                && other_input(g, m2, m1_out)
                    .and_then(|c| scalar(g, c))
                    .is_some_and(|c| close(c, 0.5));
            if !ok {
                return Ok(false);
            }
            g.node(m2).outputs()[0]
        } else {
            // other must be x·0.5 read only here
            let Some(half) = g.producer(other) else {
                return Ok(false);
            };
            let ok = matches!(g.node(half).op, Op::Mul)
                && other_input(g, half, x)
                    .and_then(|c| scalar(g, c))
                    .is_some_and(|c| close(c, 0.5))
                && sole_user(g, other) == Some(m1);
            if !ok {
                return Ok(false);
            }
            m1_out
        };
        let name = g.node(erf).name.clone();
        let y = g
            .add_simple(format!("{name}.gelu"), Op::Gelu { tanh: false }, &[x])
            .map_err(|e| self.err(g, erf, e))?;
        crate::util::replace_keeping_name(g, result, y).map_err(|e| self.err(g, erf, e))?;
        Ok(true)
    }

    fn silu(&self, g: &mut Graph, sig: NodeId) -> Result<bool, PassError> {
        let x = g.node(sig).inputs()[0];
        let s = g.node(sig).outputs()[0];
        let Some(m) = sole_user(g, s) else {
            return Ok(false);
        };
        if !matches!(g.node(m).op, Op::Mul) || other_input(g, m, s) != Some(x) {
            return Ok(false);
        }
        let out = g.node(m).outputs()[0];
        let name = g.node(m).name.clone();
        let y = g
            .add_simple(format!("{name}.silu"), Op::Silu, &[x])
            .map_err(|e| self.err(g, sig, e))?;
        crate::util::replace_keeping_name(g, out, y).map_err(|e| self.err(g, sig, e))?;
        Ok(true)
    }
}
