//! Normalisation and reduction: BatchNormalization (inference), LayerNormalization, LRN,
//! Softmax, LogSoftmax, ReduceMean, ReduceSum, ReduceMax, ReduceMin, ArgMax, ArgMin.

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
        name: "LogSoftmax",
        since: 1,
        parse: parse_softmax,
        write: Some(write_softmax),
    },
    OpDef {
        name: "ReduceMean",
        since: 1,
        parse: parse_reduce,
        write: Some(write_reduce),
    },
    OpDef {
        name: "ReduceSum",
        since: 1,
        parse: parse_reduce,
        write: Some(write_reduce),
    },
    OpDef {
        name: "ReduceMax",
        since: 1,
        parse: parse_reduce,
        write: Some(write_reduce),
    },
    OpDef {
        name: "ReduceMin",
        since: 1,
        parse: parse_reduce,
        write: Some(write_reduce),
    },
    OpDef {
        name: "ArgMax",
        since: 1,
        parse: parse_arg,
        write: Some(write_arg),
    },
    OpDef {
        name: "ArgMin",
        since: 1,
        parse: parse_arg,
        write: Some(write_arg),
    },
    OpDef {
        name: "LayerNormalization",
        since: 17,
        parse: parse_layer_norm,
        write: Some(write_layer_norm),
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

/// Before opset 13, Softmax (and LogSoftmax) flattens its input to 2-D at `axis` and
/// normalises each row. That is the opset-13 form when `axis` is the last axis; otherwise it is
/// written out as `Reshape(Softmax(Flatten(x, axis), 1), Shape(x))`, which is exact.
fn parse_softmax(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["axis"])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, &format!("{} has one output", ctx.op))?;
    let log = ctx.op == "LogSoftmax";
    let mk = |axis: i64| {
        if log {
            Op::LogSoftmax { axis }
        } else {
            Op::Softmax { axis }
        }
    };
    let x = ctx.input(0)?;
    if ctx.opset >= 13 {
        let axis = ctx.int_or("axis", -1)?;
        ctx.emit(mk(axis), &[x])?;
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
            ctx.emit(mk(axis), &[x])?;
            return Ok(());
        }
    } else if axis == -1 {
        ctx.emit(mk(axis), &[x])?;
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
    let sm = ctx.emit_tmp("softmax2d", mk(1), &[flat])?;
    ctx.emit(Op::Reshape { allowzero: false }, &[sm, shape])?;
    Ok(())
}

fn write_softmax(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let (Op::Softmax { axis } | Op::LogSoftmax { axis }) = ctx.node.op else {
        unreachable!()
    };
    let op_type = ctx.node.op.name();
    let x = ctx.in_name(0);
    if ctx.opset >= 13 {
        ctx.push(op_type, vec![x], vec![a_int("axis", axis)]);
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
    ctx.push(op_type, vec![x], vec![a_int("axis", written)]);
    Ok(())
}

/// The opset from which a reduction takes its axes as an input instead of an attribute.
fn axes_input_since(op: &str) -> i64 {
    if op == "ReduceSum" {
        13
    } else {
        18
    }
}

fn reduce_op(name: &str, keepdims: bool, noop_with_empty_axes: bool) -> Option<Op> {
    Some(match name {
        "ReduceMean" => Op::ReduceMean {
            keepdims,
            noop_with_empty_axes,
        },
        "ReduceSum" => Op::ReduceSum {
            keepdims,
            noop_with_empty_axes,
        },
        "ReduceMax" => Op::ReduceMax {
            keepdims,
            noop_with_empty_axes,
        },
        "ReduceMin" => Op::ReduceMin {
            keepdims,
            noop_with_empty_axes,
        },
        _ => return None,
    })
}

/// ReduceMean, ReduceSum, ReduceMax, ReduceMin: an `axes` attribute before the opset of
/// [`axes_input_since`] becomes a constant input.
fn parse_reduce(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.only_outputs(1, "reductions have one output")?;
    let x = ctx.input(0)?;
    let keepdims = ctx.flag("keepdims", true)?;
    let mut ins = vec![x];
    let noop_with_empty_axes;
    if ctx.opset < axes_input_since(&ctx.op) {
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
    let op = reduce_op(&ctx.op, keepdims, noop_with_empty_axes)
        .ok_or_else(|| ctx.err("internal: not a reduction"))?;
    ctx.emit(op, &ins)?;
    Ok(())
}

fn write_reduce(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let (Op::ReduceMean {
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
    }) = ctx.node.op
    else {
        unreachable!()
    };
    let op_type = ctx.node.op.name();
    let x = ctx.in_name(0);
    let mut attrs = vec![a_int("keepdims", keepdims as i64)];
    if ctx.opset >= axes_input_since(op_type) {
        if noop_with_empty_axes {
            attrs.push(a_int("noop_with_empty_axes", 1));
        }
        let ins = ctx.in_names();
        ctx.push(op_type, ins, attrs);
        return Ok(());
    }
    let axes = if ctx.n_inputs() > 1 {
        ctx.need_const(1, "axes")?.to_i64_vec()
    } else {
        vec![]
    };
    if axes.is_empty() && noop_with_empty_axes {
        return Err(ctx.err(format!(
            "noop_with_empty_axes needs opset {} or later",
            axes_input_since(op_type)
        )));
    }
    if !axes.is_empty() {
        attrs.push(a_ints("axes", axes));
    }
    ctx.push(op_type, vec![x], attrs);
    Ok(())
}

fn parse_arg(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    if ctx.opset >= 12 {
        ctx.allow(&["axis", "keepdims", "select_last_index"])?;
    } else {
        ctx.allow(&["axis", "keepdims"])?;
    }
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, &format!("{} has one output", ctx.op))?;
    let x = ctx.input(0)?;
    let keepdims = ctx.flag("keepdims", true)?;
    let axis = ctx.old_axis(
        ctx.int_or("axis", 0)?,
        x,
        if keepdims { Some(0) } else { None },
    )?;
    let select_last_index = ctx.flag("select_last_index", false)?;
    let op = if ctx.op == "ArgMax" {
        Op::ArgMax {
            axis,
            keepdims,
            select_last_index,
        }
    } else {
        Op::ArgMin {
            axis,
            keepdims,
            select_last_index,
        }
    };
    ctx.emit(op, &[x])?;
    Ok(())
}

fn write_arg(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let (Op::ArgMax {
        axis,
        keepdims,
        select_last_index,
    }
    | Op::ArgMin {
        axis,
        keepdims,
        select_last_index,
    }) = ctx.node.op
    else {
        unreachable!()
    };
    let op_type = ctx.node.op.name();
    let axis = if axis < 0 && ctx.opset < 11 {
        match ctx.in_rank(0) {
            Some(r) => axis + r as i64,
            None => return Err(ctx.err("a negative axis needs opset 11 or a known input rank")),
        }
    } else {
        axis
    };
    let mut attrs = vec![a_int("axis", axis), a_int("keepdims", keepdims as i64)];
    if select_last_index {
        if ctx.opset < 12 {
            return Err(ctx.err("select_last_index needs opset 12 or later"));
        }
        attrs.push(a_int("select_last_index", 1));
    }
    let x = ctx.in_name(0);
    ctx.push(op_type, vec![x], attrs);
    Ok(())
}

/// LayerNormalization (opset 17). `stash_type` only matters for 16-bit inputs, which pannc
/// does not read. The Mean and InvStdDev outputs are computed too.
fn parse_layer_norm(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["axis", "epsilon", "stash_type"])?;
    ctx.expect_inputs(2, 3)?;
    if ctx.node.output.len() > 3 {
        return Err(ctx.err(format!(
            "has {} outputs; LayerNormalization has at most 3 (Y, Mean, InvStdDev)",
            ctx.node.output.len()
        )));
    }
    let st = ctx.int_or("stash_type", 1)?;
    if st != 1 {
        return Err(ctx.err(format!(
            "stash_type {st} is not supported (only 1, float32 statistics)"
        )));
    }
    let axis = ctx.int_or("axis", -1)?;
    let epsilon = ctx.finite_or("epsilon", 1e-5)?;
    let mut ins = vec![ctx.input(0)?, ctx.input(1)?];
    ins.extend(ctx.opt_input(2));
    // Optional outputs may be left unnamed; named ones become outputs of the IR node.
    let named: Vec<usize> = (0..ctx.node.output.len())
        .filter(|&i| ctx.output_name(i).is_some())
        .collect();
    if named != (0..named.len()).collect::<Vec<_>>() || named.is_empty() {
        return Err(
            ctx.err("outputs must be named in order (Y, then optionally Mean, then InvStdDev)")
        );
    }
    ctx.emit_n(Op::LayerNormalization { axis, epsilon }, &ins, named.len())?;
    Ok(())
}

fn write_layer_norm(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::LayerNormalization { axis, epsilon } = ctx.node.op else {
        unreachable!()
    };
    if ctx.opset < 17 {
        return Err(ctx.err("LayerNormalization needs opset 17 or later"));
    }
    let ins = ctx.in_names();
    ctx.push(
        "LayerNormalization",
        ins,
        vec![a_int("axis", axis), a_float("epsilon", epsilon)],
    );
    Ok(())
}
