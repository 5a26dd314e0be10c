//! Comparisons, logic and selection: Equal, Less, LessOrEqual, Greater, GreaterOrEqual, And,
//! Or, Xor, Not, Where.

use super::{OpDef, ParseCtx, WriteCtx};
use crate::error::OnnxError;
use pannc_ir::Op;

const fn binary(name: &'static str, since: i64) -> OpDef {
    OpDef {
        name,
        since,
        parse: parse_binary,
        write: Some(write_same),
    }
}

/// From opset 7 these broadcast like numpy (opset 1 had `broadcast`/`axis` attributes).
pub(crate) const OPS: &[OpDef] = &[
    binary("Equal", 7),
    binary("Less", 7),
    binary("Greater", 7),
    binary("LessOrEqual", 12),
    binary("GreaterOrEqual", 12),
    binary("And", 7),
    binary("Or", 7),
    binary("Xor", 7),
    OpDef {
        name: "Not",
        since: 1,
        parse: parse_not,
        write: Some(write_same),
    },
    OpDef {
        name: "Where",
        since: 9,
        parse: parse_where,
        write: Some(write_same),
    },
];

fn parse_binary(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(2, 2)?;
    ctx.only_outputs(1, "comparisons have one output")?;
    let op = match ctx.op.as_str() {
        "Equal" => Op::Equal,
        "Less" => Op::Less,
        "Greater" => Op::Greater,
        "LessOrEqual" => Op::LessOrEqual,
        "GreaterOrEqual" => Op::GreaterOrEqual,
        "And" => Op::And,
        "Or" => Op::Or,
        "Xor" => Op::Xor,
        other => return Err(ctx.err(format!("internal: {other} is not a comparison"))),
    };
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    ctx.emit(op, &[a, b])?;
    Ok(())
}

fn parse_not(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "Not has one output")?;
    let x = ctx.input(0)?;
    ctx.emit(Op::Not, &[x])?;
    Ok(())
}

fn parse_where(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(3, 3)?;
    ctx.only_outputs(1, "Where has one output")?;
    let ins = [ctx.input(0)?, ctx.input(1)?, ctx.input(2)?];
    ctx.emit(Op::Where, &ins)?;
    Ok(())
}

/// Writes the op with its inputs as they are (no attributes, same form since `since`).
fn write_same(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let op_type = ctx.node.op.name();
    let since = super::lookup(op_type).map_or(1, |d| d.since);
    if ctx.opset < since {
        return Err(ctx.err(format!("{op_type} needs opset {since} or later")));
    }
    // Equal takes floats from opset 11, Less and Greater integers from opset 9.
    let dt = ctx.in_dtype(if op_type == "Where" { 1 } else { 0 });
    let need = match (op_type, dt) {
        ("Equal", Some(d)) if d.is_float() => 11,
        ("Equal", None) => 11,
        ("Less" | "Greater", Some(d)) if !d.is_float() => 9,
        ("Less" | "Greater", None) => 9,
        _ => since,
    };
    if ctx.opset < need {
        return Err(ctx.err(format!(
            "{op_type} of {} needs opset {need} or later",
            dt.map_or("an unknown type".into(), |d| d.to_string())
        )));
    }
    let ins = ctx.in_names();
    ctx.push(op_type, ins, vec![]);
    Ok(())
}
