//! Indexing and replication: Slice, Split, Expand, Tile, GatherND, Range.

use super::{a_int, a_ints, OpDef, ParseCtx, WriteCtx};
use crate::error::OnnxError;
use pannc_ir::{Dim, Op, Tensor};

pub(crate) const OPS: &[OpDef] = &[
    OpDef {
        name: "Slice",
        since: 1,
        parse: parse_slice,
        write: Some(write_slice),
    },
    OpDef {
        name: "Split",
        since: 2,
        parse: parse_split,
        write: Some(write_split),
    },
    OpDef {
        name: "Expand",
        since: 8,
        parse: parse_two_inputs,
        write: Some(write_same),
    },
    OpDef {
        name: "Tile",
        since: 6,
        parse: parse_two_inputs,
        write: Some(write_same),
    },
    OpDef {
        name: "GatherND",
        since: 11,
        parse: parse_gather_nd,
        write: Some(write_gather_nd),
    },
    OpDef {
        name: "Range",
        since: 11,
        parse: parse_range,
        write: Some(write_same),
    },
];

/// Before opset 10 Slice takes `starts`, `ends` and `axes` as attributes; they become
/// constant inputs. From opset 10 an absent `axes` with `steps` given becomes `0..n`.
fn parse_slice(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.only_outputs(1, "Slice has one output")?;
    let x = ctx.input(0)?;
    let mut ins = vec![x];
    if ctx.opset < 10 {
        ctx.allow(&["starts", "ends", "axes"])?;
        ctx.expect_inputs(1, 1)?;
        let starts = ctx
            .ints("starts")?
            .ok_or_else(|| ctx.err("attribute 'starts' is required"))?;
        let ends = ctx
            .ints("ends")?
            .ok_or_else(|| ctx.err("attribute 'ends' is required"))?;
        ins.push(ctx.i64s("starts", starts)?);
        ins.push(ctx.i64s("ends", ends)?);
        if let Some(axes) = ctx.ints("axes")? {
            ins.push(ctx.i64s("axes", axes)?);
        }
    } else {
        ctx.allow(&[])?;
        ctx.expect_inputs(3, 5)?;
        ins.push(ctx.input(1)?);
        ins.push(ctx.input(2)?);
        match (ctx.opt_input(3), ctx.opt_input(4)) {
            (Some(a), steps) => {
                ins.push(a);
                ins.extend(steps);
            }
            (None, Some(steps)) => {
                // The IR has no gaps among inputs: the default axes, 0..len(starts).
                let n = ctx.const_input(1).map(Tensor::len).ok_or_else(|| {
                    ctx.err("axes is absent while steps is given, and starts is not a constant")
                })?;
                let axes = Tensor::from_i64(&[n], (0..n as i64).collect())
                    .ok_or_else(|| ctx.err("internal: axes"))?;
                ins.push(ctx.gap_constant("axes", axes)?);
                ins.push(steps);
            }
            (None, None) => {}
        }
    }
    ctx.emit(Op::Slice, &ins)?;
    Ok(())
}

fn write_slice(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    if ctx.opset >= 10 {
        let ins = ctx.in_names();
        ctx.push("Slice", ins, vec![]);
        return Ok(());
    }
    if ctx.n_inputs() > 4
        && ctx
            .need_const(4, "steps")?
            .to_i64_vec()
            .iter()
            .any(|&s| s != 1)
    {
        return Err(ctx.err("steps other than 1 need opset 10 or later"));
    }
    let mut attrs = vec![
        a_ints("starts", ctx.need_const(1, "starts")?.to_i64_vec()),
        a_ints("ends", ctx.need_const(2, "ends")?.to_i64_vec()),
    ];
    if ctx.n_inputs() > 3 {
        attrs.push(a_ints("axes", ctx.need_const(3, "axes")?.to_i64_vec()));
    }
    let x = ctx.in_name(0);
    ctx.push("Slice", vec![x], attrs);
    Ok(())
}

/// Split: the part sizes come from the `split` attribute (before opset 13) or input; without
/// them the parts are equal (`num_outputs` from opset 18, where the last part may be
/// smaller). The IR's `num_outputs` is the node's output count.
fn parse_split(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    let x = ctx.input(0)?;
    let mut ins = vec![x];
    let n = ctx.node.output.len();
    if ctx.opset < 13 {
        ctx.allow(&["axis", "split"])?;
        ctx.expect_inputs(1, 1)?;
        if let Some(split) = ctx.ints("split")? {
            ins.push(ctx.i64s("split", split)?);
        }
    } else {
        if ctx.opset >= 18 {
            ctx.allow(&["axis", "num_outputs"])?;
        } else {
            ctx.allow(&["axis"])?;
        }
        ctx.expect_inputs(1, 2)?;
        if let Some(k) = ctx.int("num_outputs")? {
            if ctx.opt_input(1).is_some() {
                return Err(ctx.err("has both a split input and num_outputs"));
            }
            if k < 1 || k as usize != n {
                return Err(ctx.err(format!("num_outputs is {k} but the node has {n} outputs")));
            }
        } else if ctx.opset >= 18 && ctx.opt_input(1).is_none() {
            return Err(ctx.err("needs a split input or the num_outputs attribute"));
        }
        ins.extend(ctx.opt_input(1));
    }
    if n == 0 {
        return Err(ctx.err("has no outputs"));
    }
    if let Some(s) = ctx.const_input(1) {
        if s.shape().len() != 1 || s.len() != n {
            return Err(ctx.err(format!("split has shape {:?} for {n} outputs", s.shape())));
        }
    }
    let axis = ctx.old_axis(ctx.int_or("axis", 0)?, x, Some(0))?;
    ctx.emit_n(
        Op::Split {
            axis,
            num_outputs: n,
        },
        &ins,
        n,
    )?;
    Ok(())
}

fn write_split(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Split { axis, num_outputs } = ctx.node.op else {
        unreachable!()
    };
    let axis = if axis < 0 && ctx.opset < 11 {
        match ctx.in_rank(0) {
            Some(r) => axis + r as i64,
            None => return Err(ctx.err("a negative axis needs opset 11 or a known input rank")),
        }
    } else {
        axis
    };
    let mut attrs = vec![a_int("axis", axis)];
    let x = ctx.in_name(0);
    // Without sizes, before opset 18 the parts must be equal: write the sizes out when the
    // axis is static and does not divide.
    let sizes: Option<Vec<i64>> = if ctx.n_inputs() > 1 {
        None
    } else {
        let dim = ctx.node.inputs().first().and_then(|&v| {
            let t = ctx.g.value(v).ty.as_ref()?;
            let ax = if axis < 0 {
                axis + t.rank() as i64
            } else {
                axis
            };
            match t.shape.get(usize::try_from(ax).ok()?)? {
                Dim::Known(d) => Some(*d),
                Dim::Sym(_) => None,
            }
        });
        match dim {
            Some(d) if d % num_outputs != 0 && ctx.opset < 18 => {
                let chunk = d.div_ceil(num_outputs);
                Some(
                    (0..num_outputs)
                        .map(|i| chunk.min(d.saturating_sub(i * chunk)) as i64)
                        .collect(),
                )
            }
            _ => None,
        }
    };
    if ctx.opset >= 13 {
        let mut ins = ctx.in_names();
        if let Some(s) = sizes {
            let t = Tensor::from_i64(&[s.len()], s).ok_or_else(|| ctx.err("internal: sizes"))?;
            ins.push(ctx.add_init("split", &t));
        } else if ctx.n_inputs() == 1 && ctx.opset >= 18 {
            attrs.push(a_int("num_outputs", num_outputs as i64));
        }
        ctx.push("Split", ins, attrs);
        return Ok(());
    }
    if ctx.n_inputs() > 1 {
        attrs.push(a_ints("split", ctx.need_const(1, "split")?.to_i64_vec()));
    } else if let Some(s) = sizes {
        attrs.push(a_ints("split", s));
    }
    ctx.push("Split", vec![x], attrs);
    Ok(())
}

fn parse_two_inputs(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(2, 2)?;
    ctx.only_outputs(1, &format!("{} has one output", ctx.op))?;
    let op = match ctx.op.as_str() {
        "Expand" => Op::Expand,
        "Tile" => Op::Tile,
        other => return Err(ctx.err(format!("internal: {other}"))),
    };
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    ctx.emit(op, &[a, b])?;
    Ok(())
}

fn write_same(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let op_type = ctx.node.op.name();
    let since = super::lookup(op_type).map_or(1, |d| d.since);
    if ctx.opset < since {
        return Err(ctx.err(format!("{op_type} needs opset {since} or later")));
    }
    let ins = ctx.in_names();
    ctx.push(op_type, ins, vec![]);
    Ok(())
}

fn parse_gather_nd(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    if ctx.opset >= 12 {
        ctx.allow(&["batch_dims"])?;
    } else {
        ctx.allow(&[])?;
    }
    ctx.expect_inputs(2, 2)?;
    ctx.only_outputs(1, "GatherND has one output")?;
    let b = ctx.int_or("batch_dims", 0)?;
    let batch_dims = usize::try_from(b)
        .map_err(|_| ctx.err(format!("attribute 'batch_dims' must be >= 0, not {b}")))?;
    let (d, i) = (ctx.input(0)?, ctx.input(1)?);
    ctx.emit(Op::GatherND { batch_dims }, &[d, i])?;
    Ok(())
}

fn write_gather_nd(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::GatherND { batch_dims } = ctx.node.op else {
        unreachable!()
    };
    if ctx.opset < 11 {
        return Err(ctx.err("GatherND needs opset 11 or later"));
    }
    let mut attrs = vec![];
    if batch_dims != 0 {
        if ctx.opset < 12 {
            return Err(ctx.err("batch_dims needs opset 12 or later"));
        }
        attrs.push(a_int("batch_dims", batch_dims as i64));
    }
    let ins = ctx.in_names();
    ctx.push("GatherND", ins, attrs);
    Ok(())
}

fn parse_range(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(3, 3)?;
    ctx.only_outputs(1, "Range has one output")?;
    let ins = [ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    ctx.emit(Op::Range, &ins)?;
    Ok(())
}
