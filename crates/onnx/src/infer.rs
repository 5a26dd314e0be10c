//! A small, conservative dtype and rank inference over the IR, used where an ONNX form needs
//! them (typing attribute-to-input constants at import, old-opset attribute forms and graph
//! output types at export). It answers `None` whenever it is not sure.

use pannc_ir::{DType, Graph, Op, Tensor, ValueId};

/// Bound on the walk through producers, so hostile graphs cannot make it slow.
const MAX_STEPS: usize = 10_000;

/// The element type of `v`, if its static type says so or its producers determine it.
pub(crate) fn known_dtype(g: &Graph, v: ValueId) -> Option<DType> {
    let mut v = v;
    for _ in 0..MAX_STEPS {
        let val = g.try_value(v).ok()?;
        if let Some(t) = &val.ty {
            return Some(t.dtype);
        }
        let node = g.node(g.producer(v)?);
        match &node.op {
            Op::Constant(t) => return Some(t.dtype()),
            Op::Cast { to } => return Some(*to),
            Op::Shape { .. } => return Some(DType::I64),
            Op::ConstantOfShape { value } => return Some(value.dtype()),
            Op::Opaque(_) => return None,
            Op::Equal
            | Op::Less
            | Op::LessOrEqual
            | Op::Greater
            | Op::GreaterOrEqual
            | Op::And
            | Op::Or
            | Op::Xor
            | Op::Not => return Some(DType::Bool),
            Op::ArgMax { .. } | Op::ArgMin { .. } | Op::Size => return Some(DType::I64),
            Op::Where => v = *node.inputs().get(1)?,
            _ => v = *node.inputs().first()?,
        }
    }
    None
}

fn const_len(g: &Graph, v: Option<&ValueId>) -> Option<usize> {
    g.constant(*v?).map(Tensor::len)
}

/// The rank of `v`, if known from its static type or its producers.
pub(crate) fn known_rank(g: &Graph, v: ValueId) -> Option<usize> {
    known_rank_steps(g, v, &mut 0)
}

fn known_rank_steps(g: &Graph, v: ValueId, steps: &mut usize) -> Option<usize> {
    *steps += 1;
    if *steps > MAX_STEPS {
        return None;
    }
    let val = g.try_value(v).ok()?;
    if let Some(t) = &val.ty {
        return Some(t.rank());
    }
    let node = g.node(g.producer(v)?);
    let ins = node.inputs();
    let mut rank = |i: usize| -> Option<usize> { known_rank_steps(g, *ins.get(i)?, steps) };
    match &node.op {
        Op::Constant(t) => Some(t.shape().len()),
        Op::Gemm { .. } | Op::Flatten { .. } => Some(2),
        Op::Shape { .. } => Some(1),
        Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Pow
        | Op::Mod { .. }
        | Op::Equal
        | Op::Less
        | Op::LessOrEqual
        | Op::Greater
        | Op::GreaterOrEqual
        | Op::And
        | Op::Or
        | Op::Xor => Some(rank(0)?.max(rank(1)?)),
        Op::Where => Some(rank(0)?.max(rank(1)?).max(rank(2)?)),
        Op::Range => Some(1),
        Op::Size => Some(0),
        Op::Max | Op::Min => ins
            .iter()
            .try_fold(0usize, |r, &v| Some(r.max(known_rank_steps(g, v, steps)?))),
        Op::Opaque(_) | Op::GatherND { .. } => None,
        Op::Expand => Some(rank(0)?.max(const_len(g, ins.get(1))?)),
        Op::ArgMax { keepdims, .. } | Op::ArgMin { keepdims, .. } => {
            let r = rank(0)?;
            if *keepdims {
                Some(r)
            } else {
                r.checked_sub(1)
            }
        }
        Op::MatMul => {
            let (a, b) = (rank(0)?, rank(1)?);
            match (a, b) {
                (0, _) | (_, 0) => None,
                (1, 1) => Some(0),
                (1, b) => Some(b - 1),
                (a, 1) => Some(a - 1),
                (a, b) => Some(a.max(b)),
            }
        }
        Op::Transpose { perm } if !perm.is_empty() => Some(perm.len()),
        Op::Reshape { .. } => const_len(g, ins.get(1)),
        Op::Unsqueeze => Some(rank(0)? + const_len(g, ins.get(1))?),
        Op::Squeeze => {
            let r = rank(0)?;
            r.checked_sub(const_len(g, ins.get(1))?)
        }
        Op::ReduceMean {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceSum {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceMax {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceMin {
            keepdims,
            noop_with_empty_axes,
        } => {
            let r = rank(0)?;
            if *keepdims {
                return Some(r);
            }
            match ins.get(1) {
                Some(&a) => {
                    let n = g.constant(a)?.len();
                    if n == 0 {
                        Some(if *noop_with_empty_axes { r } else { 0 })
                    } else {
                        r.checked_sub(n)
                    }
                }
                None => Some(if *noop_with_empty_axes { r } else { 0 }),
            }
        }
        Op::Gather { .. } => Some(rank(0)?.checked_sub(1)? + rank(1)?),
        Op::ConstantOfShape { .. } => {
            let s = *ins.first()?;
            match g.constant(s) {
                Some(t) => Some(t.len()),
                None => match &g.try_value(s).ok()?.ty {
                    Some(t) => match t.shape.first() {
                        Some(pannc_ir::Dim::Known(n)) if t.rank() == 1 => Some(*n),
                        _ => None,
                    },
                    None => None,
                },
            }
        }
        // Everything else keeps its first input's rank.
        _ => rank(0),
    }
}
