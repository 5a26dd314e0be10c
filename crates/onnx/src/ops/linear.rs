//! Matrix products: Gemm, MatMul.

use super::{a_float, a_int, OpDef, ParseCtx, WriteCtx};
use crate::error::OnnxError;
use pannc_ir::Op;

pub(crate) const OPS: &[OpDef] = &[
    OpDef {
        name: "Gemm",
        since: 1,
        parse: parse_gemm,
        write: Some(write_gemm),
    },
    OpDef {
        name: "MatMul",
        since: 1,
        parse: parse_matmul,
        write: Some(write_matmul),
    },
];

fn parse_gemm(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    if ctx.opset < 7 {
        // Opset 6's `broadcast` flag allows C to broadcast; the IR's Gemm always allows the
        // (unidirectional) broadcast of C, which includes both settings.
        ctx.allow(&["alpha", "beta", "transA", "transB", "broadcast"])?;
        ctx.flag("broadcast", false)?;
    } else {
        ctx.allow(&["alpha", "beta", "transA", "transB"])?;
    }
    ctx.expect_inputs(2, 3)?;
    ctx.only_outputs(1, "Gemm has one output")?;
    let op = Op::Gemm {
        alpha: ctx.finite_or("alpha", 1.0)?,
        beta: ctx.finite_or("beta", 1.0)?,
        trans_a: ctx.flag("transA", false)?,
        trans_b: ctx.flag("transB", false)?,
    };
    let mut ins = vec![ctx.input(0)?, ctx.input(1)?];
    if let Some(c) = ctx.opt_input(2) {
        ins.push(c);
    }
    ctx.emit(op, &ins)?;
    Ok(())
}

fn write_gemm(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Gemm {
        alpha,
        beta,
        trans_a,
        trans_b,
    } = ctx.node.op.clone()
    else {
        unreachable!()
    };
    let has_c = ctx.n_inputs() == 3;
    if !has_c && ctx.opset < 11 {
        return Err(ctx.err("Gemm without C needs opset 11 or later"));
    }
    let mut attrs = Vec::new();
    if alpha != 1.0 {
        attrs.push(a_float("alpha", alpha));
    }
    if beta != 1.0 {
        attrs.push(a_float("beta", beta));
    }
    if trans_a {
        attrs.push(a_int("transA", 1));
    }
    if trans_b {
        attrs.push(a_int("transB", 1));
    }
    if ctx.opset < 7 && has_c {
        attrs.push(a_int("broadcast", 1));
    }
    let ins = ctx.in_names();
    ctx.push("Gemm", ins, attrs);
    Ok(())
}

fn parse_matmul(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(2, 2)?;
    ctx.only_outputs(1, "MatMul has one output")?;
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    ctx.emit(Op::MatMul, &[a, b])?;
    Ok(())
}

fn write_matmul(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let ins = ctx.in_names();
    ctx.push("MatMul", ins, vec![]);
    Ok(())
}
