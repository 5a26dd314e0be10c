//! Elementwise math beyond the activations: Neg, Abs, Sqrt, Reciprocal, Exp, Log, Floor, Ceil,
//! Pow, Mod, Max, Min, HardSigmoid, HardSwish; and Size.

use super::{a_float, a_int, OpDef, ParseCtx, WriteCtx};
use crate::error::OnnxError;
use pannc_ir::Op;

pub(crate) const OPS: &[OpDef] = &[
    unary("Neg"),
    unary("Abs"),
    unary("Sqrt"),
    unary("Reciprocal"),
    unary("Exp"),
    unary("Log"),
    unary("Floor"),
    unary("Ceil"),
    OpDef {
        name: "HardSwish",
        since: 14,
        parse: parse_unary,
        write: Some(write_unary),
    },
    OpDef {
        name: "HardSigmoid",
        since: 6,
        parse: parse_hard_sigmoid,
        write: Some(write_hard_sigmoid),
    },
    OpDef {
        name: "Pow",
        since: 7,
        parse: parse_pow,
        write: Some(write_pow),
    },
    OpDef {
        name: "Max",
        since: 6,
        parse: parse_variadic,
        write: Some(write_variadic),
    },
    OpDef {
        name: "Min",
        since: 6,
        parse: parse_variadic,
        write: Some(write_variadic),
    },
    OpDef {
        name: "Size",
        since: 1,
        parse: parse_size,
        write: Some(write_size),
    },
    OpDef {
        name: "Mod",
        since: 10,
        parse: parse_mod,
        write: Some(write_mod),
    },
];

/// The unary ops whose form has not changed since opset 6 (which dropped `consumed_inputs`).
const fn unary(name: &'static str) -> OpDef {
    OpDef {
        name,
        since: 6,
        parse: parse_unary,
        write: Some(write_unary),
    }
}

fn parse_unary(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "unary ops have one output")?;
    let op = match ctx.op.as_str() {
        "Neg" => Op::Neg,
        "Abs" => Op::Abs,
        "Sqrt" => Op::Sqrt,
        "Reciprocal" => Op::Reciprocal,
        "Exp" => Op::Exp,
        "Log" => Op::Log,
        "Floor" => Op::Floor,
        "Ceil" => Op::Ceil,
        "HardSwish" => Op::HardSwish,
        other => return Err(ctx.err(format!("internal: {other} is not a unary math op"))),
    };
    let x = ctx.input(0)?;
    ctx.emit(op, &[x])?;
    Ok(())
}

fn write_unary(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let op_type = ctx.node.op.name();
    if op_type == "HardSwish" && ctx.opset < 14 {
        // x · HardSigmoid(x; 1/6, 1/2), which is how ONNX defines it.
        let x = ctx.in_name(0);
        let hs = ctx.push_tmp(
            "hardsigmoid",
            "HardSigmoid",
            vec![x.clone()],
            vec![a_float("alpha", 1.0 / 6.0), a_float("beta", 0.5)],
        );
        ctx.push("Mul", vec![x, hs], vec![]);
        return Ok(());
    }
    let ins = ctx.in_names();
    ctx.push(op_type, ins, vec![]);
    Ok(())
}

fn parse_hard_sigmoid(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["alpha", "beta"])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "HardSigmoid has one output")?;
    let alpha = ctx.finite_or("alpha", 0.2)?;
    let beta = ctx.finite_or("beta", 0.5)?;
    let x = ctx.input(0)?;
    ctx.emit(Op::HardSigmoid { alpha, beta }, &[x])?;
    Ok(())
}

fn write_hard_sigmoid(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::HardSigmoid { alpha, beta } = ctx.node.op else {
        unreachable!()
    };
    let x = ctx.in_name(0);
    ctx.push(
        "HardSigmoid",
        vec![x],
        vec![a_float("alpha", alpha), a_float("beta", beta)],
    );
    Ok(())
}

fn parse_pow(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(2, 2)?;
    ctx.only_outputs(1, "Pow has one output")?;
    let (x, y) = (ctx.input(0)?, ctx.input(1)?);
    ctx.emit(Op::Pow, &[x, y])?;
    Ok(())
}

/// Before opset 12, Pow's base and exponent are floats of one type.
fn write_pow(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    if ctx.opset < 12 {
        match (ctx.in_dtype(0), ctx.in_dtype(1)) {
            (Some(a), Some(b)) if a == b && a.is_float() => {}
            (a, b) => {
                return Err(ctx.err(format!(
                    "Pow of {} by {} needs opset 12 (before, both must be the same float type)",
                    a.map_or("?".into(), |d| d.to_string()),
                    b.map_or("?".into(), |d| d.to_string())
                )))
            }
        }
    }
    let ins = ctx.in_names();
    ctx.push("Pow", ins, vec![]);
    Ok(())
}

fn parse_mod(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["fmod"])?;
    ctx.expect_inputs(2, 2)?;
    ctx.only_outputs(1, "Mod has one output")?;
    let fmod = ctx.flag("fmod", false)?;
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    if !fmod && ctx.dtype_of(a).is_some_and(|d| d.is_float()) {
        return Err(
            ctx.err("fmod=0 on floating-point inputs is not defined (ONNX requires fmod=1)")
        );
    }
    ctx.emit(Op::Mod { fmod }, &[a, b])?;
    Ok(())
}

fn write_mod(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Mod { fmod } = ctx.node.op else {
        unreachable!()
    };
    let attrs = if fmod { vec![a_int("fmod", 1)] } else { vec![] };
    let ins = ctx.in_names();
    ctx.push("Mod", ins, attrs);
    Ok(())
}

/// Max and Min: one or more inputs (same shapes before opset 8, broadcasting from it).
fn parse_variadic(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(1, usize::MAX)?;
    ctx.only_outputs(1, &format!("{} has one output", ctx.op))?;
    let ins: Vec<_> = (0..ctx.n_inputs())
        .map(|i| ctx.input(i))
        .collect::<Result<_, _>>()?;
    let op = if ctx.op == "Max" { Op::Max } else { Op::Min };
    ctx.emit(op, &ins)?;
    Ok(())
}

fn write_variadic(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let op_type = ctx.node.op.name();
    // Broadcasting needs opset 8, integers 12.
    let need = if ctx.in_dtype(0).is_none_or(|d| !d.is_float()) {
        12
    } else {
        8
    };
    if ctx.opset < need {
        return Err(ctx.err(format!("{op_type} needs opset {need} or later here")));
    }
    let ins = ctx.in_names();
    ctx.push(op_type, ins, vec![]);
    Ok(())
}

fn parse_size(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "Size has one output")?;
    let x = ctx.input(0)?;
    ctx.emit(Op::Size, &[x])?;
    Ok(())
}

fn write_size(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let x = ctx.in_name(0);
    ctx.push("Size", vec![x], vec![]);
    Ok(())
}
