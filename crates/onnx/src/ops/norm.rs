//! Normalisation and reduction: BatchNormalization (inference), LRN, Softmax, ReduceMean.

use super::{a_float, a_int, a_ints, OpDef, ParseCtx, WriteCtx};
use crate::error::OnnxError;
use pannc_ir::Op;

pub(crate) const OPS: &[OpDef] = &[
    OpDef {
        name: "BatchNormalization",
        since: 6,
        parse: parse_bn,
        write: Some(write_bn),
    },
    OpDef {
        name: "LRN",
        since: 1,
        parse: parse_lrn,
        write: Some(write_lrn),
    },
    OpDef {
        name: "Softmax",
        since: 1,
        parse: parse_softmax,
        write: Some(write_softmax),
    },
    OpDef {
        name: "ReduceMean",
        since: 1,
        parse: parse_reduce_mean,
        write: Some(write_reduce_mean),
    },
];

fn parse_bn(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    match ctx.opset {
        ..=6 => ctx.allow(&["epsilon", "momentum", "is_test", "spatial"])?,
        7..=8 => ctx.allow(&["epsilon", "momentum", "spatial"])?,
        9..=13 => ctx.allow(&["epsilon", "momentum"])?,
        _ => ctx.allow(&["epsilon", "momentum", "training_mode"])?,
    }
    if ctx.opset <= 6 && !ctx.flag("is_test", false)? {
        return Err(ctx.err(
            "is_test=0 (the default before opset 7) is training mode; only inference is supported",
        ));
    }
    if !ctx.flag("spatial", true)? {
        return Err(ctx.err("spatial=0 (per-activation statistics) is not supported"));
    }
    if ctx.flag("training_mode", false)? {
        return Err(ctx.err("training_mode=1 is not supported; only inference"));
    }
    ctx.expect_inputs(5, 5)?;
    ctx.only_outputs(
        1,
        "training-mode outputs (running/saved mean and variance) are not supported",
    )?;
    let epsilon = ctx.finite_or("epsilon", 1e-5)?;
    ctx.finite_or("momentum", 0.9)?;
    let ins: Vec<_> = (0..5).map(|i| ctx.input(i)).collect::<Result<_, _>>()?;
    ctx.emit(Op::BatchNormalization { epsilon }, &ins)?;
    Ok(())
}

fn write_bn(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::BatchNormalization { epsilon } = ctx.node.op else {
        unreachable!()
    };
    let mut attrs = vec![a_float("epsilon", epsilon)];
    if ctx.opset <= 6 {
        attrs.push(a_int("is_test", 1));
    }
    let ins = ctx.in_names();
    ctx.push("BatchNormalization", ins, attrs);
    Ok(())
}

/// LRN has had the same attributes and meaning since opset 1 (opset 13 only widened its
/// types to bfloat16).
fn parse_lrn(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["alpha", "beta", "bias", "size"])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "LRN has one output")?;
    let size = match ctx.int("size")? {
        None => return Err(ctx.err("attribute 'size' is required")),
        Some(s) if s >= 1 => {
            usize::try_from(s).map_err(|_| ctx.err(format!("size {s} is too large")))?
        }
        Some(s) => return Err(ctx.err(format!("attribute 'size' must be at least 1, not {s}"))),
    };
    let alpha = ctx.finite_or("alpha", 1e-4)?;
    let beta = ctx.finite_or("beta", 0.75)?;
    let bias = ctx.finite_or("bias", 1.0)?;
    let x = ctx.input(0)?;
    ctx.emit(
        Op::Lrn {
            alpha,
            beta,
            bias,
            size,
        },
        &[x],
    )?;
    Ok(())
}

fn write_lrn(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Lrn {
        alpha,
        beta,
        bias,
        size,
    } = ctx.node.op
    else {
        unreachable!()
    };
    let size = i64::try_from(size)
        .map_err(|_| ctx.err(format!("size {size} does not fit ONNX's int64")))?;
    let attrs = vec![
        a_float("alpha", alpha),
        a_float("beta", beta),
        a_float("bias", bias),
        a_int("size", size),
    ];
    let x = ctx.in_name(0);
    ctx.push("LRN", vec![x], attrs);
    Ok(())
}

/// Before opset 13, Softmax flattens its input to 2-D at `axis` and normalises each row. That
/// is the opset-13 form when `axis` is the last axis; otherwise it is written out as
/// `Reshape(Softmax(Flatten(x, axis), 1), Shape(x))`, which is exact.
fn parse_softmax(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["axis"])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "Softmax has one output")?;
    let x = ctx.input(0)?;
    if ctx.opset >= 13 {
        let axis = ctx.int_or("axis", -1)?;
        ctx.emit(Op::Softmax { axis }, &[x])?;
        return Ok(());
    }
    let axis = ctx.old_axis(ctx.int_or("axis", 1)?, x, Some(0))?;
    let rank = ctx.rank_of(x, Some(0));
    if let Some(r) = rank {
        let r = r as i64;
        let a = if axis < 0 { axis + r } else { axis };
        if a < 0 || a > r || (r > 0 && a == r) {
            return Err(ctx.err(format!("axis {axis} is out of range for rank {r}")));
        }
        if a == r - 1 {
            ctx.emit(Op::Softmax { axis }, &[x])?;
            return Ok(());
        }
    } else if axis == -1 {
        ctx.emit(Op::Softmax { axis }, &[x])?;
        return Ok(());
    }
    let shape = ctx.emit_tmp(
        "shape",
        Op::Shape {
            start: 0,
            end: None,
        },
        &[x],
    )?;
    let flat = ctx.emit_tmp("flat", Op::Flatten { axis }, &[x])?;
    let sm = ctx.emit_tmp("softmax2d", Op::Softmax { axis: 1 }, &[flat])?;
    ctx.emit(Op::Reshape { allowzero: false }, &[sm, shape])?;
    Ok(())
}

fn write_softmax(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Softmax { axis } = ctx.node.op else {
        unreachable!()
    };
    let x = ctx.in_name(0);
    if ctx.opset >= 13 {
        ctx.push("Softmax", vec![x], vec![a_int("axis", axis)]);
        return Ok(());
    }
    // Older opsets: only a softmax over the last axis has the same meaning.
    let rank = ctx.in_rank(0);
    let written = match (axis, rank) {
        (-1, _) if ctx.opset >= 11 => -1,
        (a, Some(r)) if r > 0 && ((a >= 0 && a as usize == r - 1) || (a < 0 && a + r as i64 == r as i64 - 1)) => {
            r as i64 - 1
        }
        (_, None) => {
            return Err(ctx.err(format!(
                "before opset 13 Softmax flattens at its axis; cannot show axis {axis} is the last without the input's rank"
            )))
        }
        (_, Some(r)) => {
            return Err(ctx.err(format!("Softmax over axis {axis} of a rank-{r} input is not the last axis; needs opset 13")))
        }
    };
    ctx.push("Softmax", vec![x], vec![a_int("axis", written)]);
    Ok(())
}

fn parse_reduce_mean(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.only_outputs(1, "ReduceMean has one output")?;
    let x = ctx.input(0)?;
    let keepdims = ctx.flag("keepdims", true)?;
    let mut ins = vec![x];
    let noop_with_empty_axes;
    if ctx.opset < 18 {
        ctx.allow(&["axes", "keepdims"])?;
        ctx.expect_inputs(1, 1)?;
        noop_with_empty_axes = false;
        if let Some(axes) = ctx.ints("axes")? {
            ins.push(ctx.i64s("axes", axes)?);
        }
    } else {
        ctx.allow(&["keepdims", "noop_with_empty_axes"])?;
        ctx.expect_inputs(1, 2)?;
        noop_with_empty_axes = ctx.flag("noop_with_empty_axes", false)?;
        if let Some(a) = ctx.opt_input(1) {
            ins.push(a);
        }
    }
    ctx.emit(
        Op::ReduceMean {
            keepdims,
            noop_with_empty_axes,
        },
        &ins,
    )?;
    Ok(())
}

fn write_reduce_mean(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::ReduceMean {
        keepdims,
        noop_with_empty_axes,
    } = ctx.node.op
    else {
        unreachable!()
    };
    let x = ctx.in_name(0);
    let mut attrs = vec![a_int("keepdims", keepdims as i64)];
    if ctx.opset >= 18 {
        if noop_with_empty_axes {
            attrs.push(a_int("noop_with_empty_axes", 1));
        }
        let ins = ctx.in_names();
        ctx.push("ReduceMean", ins, attrs);
        return Ok(());
    }
    let axes = if ctx.n_inputs() > 1 {
        ctx.need_const(1, "axes")?.to_i64_vec()
    } else {
        vec![]
    };
    if axes.is_empty() && noop_with_empty_axes {
        return Err(ctx.err("noop_with_empty_axes needs opset 18 or later"));
    }
    if !axes.is_empty() {
        attrs.push(a_ints("axes", axes));
    }
    ctx.push("ReduceMean", vec![x], attrs);
    Ok(())
}
