//! Shape manipulation: Flatten, Reshape, Transpose, Concat, Pad, Squeeze, Unsqueeze, Shape,
//! Gather.

use super::{a_float, a_int, a_ints, a_str, a_usizes, scalar_value, OpDef, ParseCtx, WriteCtx};
use crate::error::OnnxError;
use pannc_ir::{Op, PadMode};

pub(crate) const OPS: &[OpDef] = &[
    OpDef {
        name: "Flatten",
        since: 1,
        parse: parse_flatten,
        write: Some(write_flatten),
    },
    OpDef {
        name: "Reshape",
        since: 5,
        parse: parse_reshape,
        write: Some(write_reshape),
    },
    OpDef {
        name: "Transpose",
        since: 1,
        parse: parse_transpose,
        write: Some(write_transpose),
    },
    OpDef {
        name: "Concat",
        since: 4,
        parse: parse_concat,
        write: Some(write_concat),
    },
    OpDef {
        name: "Pad",
        since: 2,
        parse: parse_pad,
        write: Some(write_pad),
    },
    OpDef {
        name: "Squeeze",
        since: 1,
        parse: parse_squeeze,
        write: Some(write_squeeze),
    },
    OpDef {
        name: "Unsqueeze",
        since: 1,
        parse: parse_unsqueeze,
        write: Some(write_unsqueeze),
    },
    OpDef {
        name: "Shape",
        since: 1,
        parse: parse_shape,
        write: Some(write_shape),
    },
    OpDef {
        name: "Gather",
        since: 1,
        parse: parse_gather,
        write: Some(write_gather),
    },
];

/// Writes a possibly negative axis; opsets before 11 need it non-negative, which needs the rank.
fn axis_for_opset(ctx: &WriteCtx, axis: i64, rank_extra: usize) -> Result<i64, OnnxError> {
    if axis >= 0 || ctx.opset >= 11 {
        return Ok(axis);
    }
    match ctx.in_rank(0) {
        Some(r) if axis + (r + rank_extra) as i64 >= 0 => Ok(axis + (r + rank_extra) as i64),
        _ => Err(ctx.err(format!(
            "negative axis {axis} needs opset 11 or later, or a known input rank"
        ))),
    }
}

fn parse_flatten(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["axis"])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "Flatten has one output")?;
    let x = ctx.input(0)?;
    let axis = ctx.old_axis(ctx.int_or("axis", 1)?, x, None)?;
    if let Some(r) = ctx.rank_of(x, None) {
        let r = r as i64;
        if axis < -r || axis > r {
            return Err(ctx.err(format!("axis {axis} is out of range for rank {r}")));
        }
    }
    ctx.emit(Op::Flatten { axis }, &[x])?;
    Ok(())
}

fn write_flatten(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Flatten { axis } = ctx.node.op else {
        unreachable!()
    };
    let axis = axis_for_opset(ctx, axis, 0)?;
    let x = ctx.in_name(0);
    ctx.push("Flatten", vec![x], vec![a_int("axis", axis)]);
    Ok(())
}

fn parse_reshape(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    if ctx.opset >= 14 {
        ctx.allow(&["allowzero"])?;
    } else {
        ctx.allow(&[])?;
    }
    ctx.expect_inputs(2, 2)?;
    ctx.only_outputs(1, "Reshape has one output")?;
    let allowzero = ctx.flag("allowzero", false)?;
    if let Some(s) = ctx.const_input(1) {
        if s.shape().len() != 1 {
            return Err(ctx.err(format!(
                "the shape input must be 1-D, has shape {:?}",
                s.shape()
            )));
        }
        let v = s.to_i64_vec();
        if v.iter().filter(|&&d| d == -1).count() > 1 {
            return Err(ctx.err(format!("the shape {v:?} has more than one -1")));
        }
        if let Some(d) = v.iter().find(|&&d| d < -1) {
            return Err(ctx.err(format!("the shape {v:?} has invalid dimension {d}")));
        }
    }
    let (x, s) = (ctx.input(0)?, ctx.input(1)?);
    ctx.emit(Op::Reshape { allowzero }, &[x, s])?;
    Ok(())
}

fn write_reshape(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Reshape { allowzero } = ctx.node.op else {
        unreachable!()
    };
    let mut attrs = vec![];
    if allowzero {
        if ctx.opset < 14 {
            return Err(ctx.err("allowzero needs opset 14 or later"));
        }
        attrs.push(a_int("allowzero", 1));
    }
    let ins = ctx.in_names();
    ctx.push("Reshape", ins, attrs);
    Ok(())
}

fn parse_transpose(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["perm"])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "Transpose has one output")?;
    let perm = ctx.usizes("perm", 0)?;
    let mut seen = vec![false; perm.len()];
    for &p in &perm {
        if p >= perm.len() || std::mem::replace(&mut seen[p], true) {
            return Err(ctx.err(format!("attribute 'perm' {perm:?} is not a permutation")));
        }
    }
    let x = ctx.input(0)?;
    if let Some(r) = ctx.rank_of(x, Some(0)) {
        if !perm.is_empty() && perm.len() != r {
            return Err(ctx.err(format!(
                "attribute 'perm' has {} entries for a rank-{r} input",
                perm.len()
            )));
        }
    }
    ctx.emit(Op::Transpose { perm }, &[x])?;
    Ok(())
}

fn write_transpose(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Transpose { perm } = &ctx.node.op else {
        unreachable!()
    };
    let attrs = if perm.is_empty() {
        vec![]
    } else {
        vec![a_usizes("perm", perm)]
    };
    let x = ctx.in_name(0);
    ctx.push("Transpose", vec![x], attrs);
    Ok(())
}

fn parse_concat(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["axis"])?;
    ctx.expect_inputs(1, usize::MAX)?;
    ctx.only_outputs(1, "Concat has one output")?;
    let axis = ctx
        .int("axis")?
        .ok_or_else(|| ctx.err("attribute 'axis' is required"))?;
    let ins: Vec<_> = (0..ctx.n_inputs())
        .map(|i| ctx.input(i))
        .collect::<Result<_, _>>()?;
    let axis = ctx.old_axis(axis, ins[0], Some(0))?;
    ctx.emit(Op::Concat { axis }, &ins)?;
    Ok(())
}

fn write_concat(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Concat { axis } = ctx.node.op else {
        unreachable!()
    };
    let axis = axis_for_opset(ctx, axis, 0)?;
    let ins = ctx.in_names();
    ctx.push("Concat", ins, vec![a_int("axis", axis)]);
    Ok(())
}

fn parse_pad_mode(ctx: &ParseCtx) -> Result<PadMode, OnnxError> {
    match ctx.string("mode")?.as_deref() {
        None | Some("constant") => Ok(PadMode::Constant),
        Some("reflect") => Ok(PadMode::Reflect),
        Some("edge") => Ok(PadMode::Edge),
        Some("wrap") if ctx.opset >= 19 => Ok(PadMode::Wrap),
        Some(other) => Err(ctx.err(format!(
            "attribute 'mode' is '{other}'; expected constant, reflect, edge{}",
            if ctx.opset >= 19 {
                " or wrap"
            } else {
                " (wrap needs opset 19)"
            }
        ))),
    }
}

fn pad_mode_str(m: PadMode) -> &'static str {
    match m {
        PadMode::Constant => "constant",
        PadMode::Reflect => "reflect",
        PadMode::Edge => "edge",
        PadMode::Wrap => "wrap",
    }
}

fn parse_pad(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.only_outputs(1, "Pad has one output")?;
    let x = ctx.input(0)?;
    let mut ins = vec![x];
    if ctx.opset < 11 {
        ctx.allow(&["mode", "pads", "value"])?;
        ctx.expect_inputs(1, 1)?;
        let mode = parse_pad_mode(ctx)?;
        let pads = ctx
            .ints("pads")?
            .ok_or_else(|| ctx.err("attribute 'pads' is required"))?;
        if pads.len() % 2 != 0 {
            return Err(ctx.err(format!("attribute 'pads' has odd length {}", pads.len())));
        }
        ins.push(ctx.i64s("pads", pads)?);
        if let Some(v) = ctx.float("value")? {
            let dtype = ctx.dtype_of(x).ok_or_else(|| {
                ctx.err(
                    "cannot tell the input's element type, needed to turn 'value' into an input",
                )
            })?;
            ins.push(ctx.scalar("value", dtype, v as f64)?);
        }
        ctx.emit(Op::Pad { mode }, &ins)?;
        return Ok(());
    }
    ctx.allow(&["mode"])?;
    ctx.expect_inputs(2, if ctx.opset >= 18 { 4 } else { 3 })?;
    let mode = parse_pad_mode(ctx)?;
    ins.push(ctx.input(1)?);
    match (ctx.opt_input(2), ctx.opt_input(3)) {
        (Some(c), axes) => {
            ins.push(c);
            ins.extend(axes);
        }
        (None, Some(axes)) => {
            // The IR has no gaps among inputs: a default pad value of the data's type.
            let dtype = ctx.dtype_of(x).ok_or_else(|| {
                ctx.err("constant_value is absent while axes is given, and the input's element type is unknown")
            })?;
            ins.push(ctx.gap_constant("value", pannc_ir::Tensor::scalar_of(dtype, 0.0))?);
            ins.push(axes);
        }
        (None, None) => {}
    }
    ctx.emit(Op::Pad { mode }, &ins)?;
    Ok(())
}

fn write_pad(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Pad { mode } = ctx.node.op else {
        unreachable!()
    };
    if mode == PadMode::Wrap && ctx.opset < 19 {
        return Err(ctx.err("mode 'wrap' needs opset 19 or later"));
    }
    if ctx.n_inputs() > 3 && ctx.opset < 18 {
        return Err(ctx.err("the axes input needs opset 18 or later"));
    }
    let mut attrs = Vec::new();
    if mode != PadMode::Constant {
        attrs.push(a_str("mode", pad_mode_str(mode)));
    }
    if ctx.opset >= 11 {
        let ins = ctx.in_names();
        ctx.push("Pad", ins, attrs);
        return Ok(());
    }
    let pads = ctx.need_const(1, "pads")?.to_i64_vec();
    attrs.push(a_ints("pads", pads));
    if ctx.n_inputs() > 2 {
        let t = ctx.need_const(2, "constant_value")?;
        let v = scalar_value(t).ok_or_else(|| ctx.err("constant_value must be a scalar"))?;
        attrs.push(a_float("value", v as f32));
    }
    let x = ctx.in_name(0);
    ctx.push("Pad", vec![x], attrs);
    Ok(())
}

fn parse_squeeze(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.only_outputs(1, "Squeeze has one output")?;
    let x = ctx.input(0)?;
    let mut ins = vec![x];
    if ctx.opset < 13 {
        ctx.allow(&["axes"])?;
        ctx.expect_inputs(1, 1)?;
        if let Some(axes) = ctx.ints("axes")? {
            ins.push(ctx.i64s("axes", axes)?);
        }
    } else {
        ctx.allow(&[])?;
        ctx.expect_inputs(1, 2)?;
        ins.extend(ctx.opt_input(1));
    }
    ctx.emit(Op::Squeeze, &ins)?;
    Ok(())
}

fn write_squeeze(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    if ctx.opset >= 13 {
        let ins = ctx.in_names();
        ctx.push("Squeeze", ins, vec![]);
        return Ok(());
    }
    let attrs = if ctx.n_inputs() > 1 {
        vec![a_ints("axes", ctx.need_const(1, "axes")?.to_i64_vec())]
    } else {
        vec![]
    };
    let x = ctx.in_name(0);
    ctx.push("Squeeze", vec![x], attrs);
    Ok(())
}

fn parse_unsqueeze(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.only_outputs(1, "Unsqueeze has one output")?;
    let x = ctx.input(0)?;
    let axes = if ctx.opset < 13 {
        ctx.allow(&["axes"])?;
        ctx.expect_inputs(1, 1)?;
        let axes = ctx
            .ints("axes")?
            .ok_or_else(|| ctx.err("attribute 'axes' is required"))?;
        ctx.i64s("axes", axes)?
    } else {
        ctx.allow(&[])?;
        ctx.expect_inputs(2, 2)?;
        ctx.input(1)?
    };
    ctx.emit(Op::Unsqueeze, &[x, axes])?;
    Ok(())
}

fn write_unsqueeze(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    if ctx.opset >= 13 {
        let ins = ctx.in_names();
        ctx.push("Unsqueeze", ins, vec![]);
        return Ok(());
    }
    let axes = ctx.need_const(1, "axes")?.to_i64_vec();
    let x = ctx.in_name(0);
    ctx.push("Unsqueeze", vec![x], vec![a_ints("axes", axes)]);
    Ok(())
}

fn parse_shape(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    if ctx.opset >= 15 {
        ctx.allow(&["start", "end"])?;
    } else {
        ctx.allow(&[])?;
    }
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "Shape has one output")?;
    let start = ctx.int_or("start", 0)?;
    let end = ctx.int("end")?;
    let x = ctx.input(0)?;
    ctx.emit(Op::Shape { start, end }, &[x])?;
    Ok(())
}

fn write_shape(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Shape { start, end } = ctx.node.op else {
        unreachable!()
    };
    let mut attrs = Vec::new();
    if start != 0 || end.is_some() {
        if ctx.opset < 15 {
            return Err(ctx.err("Shape with start/end needs opset 15 or later"));
        }
        if start != 0 {
            attrs.push(a_int("start", start));
        }
        if let Some(e) = end {
            attrs.push(a_int("end", e));
        }
    }
    let x = ctx.in_name(0);
    ctx.push("Shape", vec![x], attrs);
    Ok(())
}

fn parse_gather(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["axis"])?;
    ctx.expect_inputs(2, 2)?;
    ctx.only_outputs(1, "Gather has one output")?;
    let (x, i) = (ctx.input(0)?, ctx.input(1)?);
    let axis = ctx.old_axis(ctx.int_or("axis", 0)?, x, None)?;
    if let Some(d) = ctx.dtype_of(i) {
        if d != pannc_ir::DType::I64 {
            return Err(ctx.err(format!("indices must be integers, are {d}")));
        }
    }
    ctx.emit(Op::Gather { axis }, &[x, i])?;
    Ok(())
}

fn write_gather(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Gather { axis } = ctx.node.op else {
        unreachable!()
    };
    let axis = axis_for_opset(ctx, axis, 0)?;
    let ins = ctx.in_names();
    ctx.push("Gather", ins, vec![a_int("axis", axis)]);
    Ok(())
}
