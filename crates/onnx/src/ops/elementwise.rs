//! Elementwise ops: Add, Sub, Mul, Div, Sum (imported as Adds), Relu, LeakyRelu, Clip,
//! Sigmoid, Tanh, Erf, Gelu, Identity, Dropout (inference).

use super::{a_float, a_int, a_str, scalar_value, OpDef, ParseCtx, WriteCtx};
use crate::error::OnnxError;
use pannc_ir::{DType, Op, Tensor};

pub(crate) const OPS: &[OpDef] = &[
    OpDef {
        name: "Add",
        since: 6,
        parse: parse_binary,
        write: Some(write_binary),
    },
    OpDef {
        name: "Sub",
        since: 6,
        parse: parse_binary,
        write: Some(write_binary),
    },
    OpDef {
        name: "Mul",
        since: 6,
        parse: parse_binary,
        write: Some(write_binary),
    },
    OpDef {
        name: "Div",
        since: 6,
        parse: parse_binary,
        write: Some(write_binary),
    },
    OpDef {
        name: "Sum",
        since: 6,
        parse: parse_sum,
        write: None,
    },
    OpDef {
        name: "Relu",
        since: 6,
        parse: parse_unary,
        write: Some(write_unary),
    },
    OpDef {
        name: "Sigmoid",
        since: 6,
        parse: parse_unary,
        write: Some(write_unary),
    },
    OpDef {
        name: "Tanh",
        since: 6,
        parse: parse_unary,
        write: Some(write_unary),
    },
    OpDef {
        name: "Erf",
        since: 9,
        parse: parse_unary,
        write: Some(write_unary),
    },
    OpDef {
        name: "Identity",
        since: 1,
        parse: parse_unary,
        write: Some(write_unary),
    },
    OpDef {
        name: "LeakyRelu",
        since: 6,
        parse: parse_leaky,
        write: Some(write_leaky),
    },
    OpDef {
        name: "Clip",
        since: 6,
        parse: parse_clip,
        write: Some(write_clip),
    },
    OpDef {
        name: "Gelu",
        since: 20,
        parse: parse_gelu,
        write: Some(write_gelu),
    },
    OpDef {
        name: "Dropout",
        since: 6,
        parse: parse_dropout,
        write: Some(write_dropout),
    },
];

fn parse_binary(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    if ctx.opset < 7 {
        ctx.allow(&["broadcast", "axis"])?;
        if ctx.has_attr("axis") {
            return Err(ctx
                .err("legacy broadcasting with an 'axis' attribute (opset < 7) is not supported"));
        }
        // broadcast=1 without axis aligns trailing dimensions, as numpy broadcasting does.
        ctx.flag("broadcast", false)?;
    } else {
        ctx.allow(&[])?;
    }
    ctx.expect_inputs(2, 2)?;
    ctx.only_outputs(1, "binary ops have one output")?;
    let op = match ctx.op.as_str() {
        "Add" => Op::Add,
        "Sub" => Op::Sub,
        "Mul" => Op::Mul,
        "Div" => Op::Div,
        other => return Err(ctx.err(format!("internal: {other} is not a binary op"))),
    };
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    ctx.emit(op, &[a, b])?;
    Ok(())
}

fn write_binary(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let mut attrs = Vec::new();
    if ctx.opset < 7 {
        let ins = ctx.node.inputs();
        let ty = |i: usize| ctx.g.value(ins[i]).ty.clone();
        let same = matches!((ty(0), ty(1)), (Some(a), Some(b)) if a.shape == b.shape);
        if !same {
            // Legacy broadcasting: trailing-aligned, as in numpy, for B broadcast to A.
            attrs.push(a_int("broadcast", 1));
        }
    }
    let op_type = ctx.node.op.name();
    let ins = ctx.in_names();
    ctx.push(op_type, ins, attrs);
    Ok(())
}

fn parse_sum(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(1, usize::MAX)?;
    ctx.only_outputs(1, "Sum has one output")?;
    let n = ctx.n_inputs();
    let ins: Vec<_> = (0..n).map(|i| ctx.input(i)).collect::<Result<_, _>>()?;
    if n == 1 {
        ctx.emit(Op::Identity, &ins)?;
        return Ok(());
    }
    let mut acc = ins[0];
    for (i, &x) in ins.iter().enumerate().skip(1) {
        if i + 1 == n {
            ctx.emit(Op::Add, &[acc, x])?;
        } else {
            acc = ctx.emit_tmp(&format!("sum{i}"), Op::Add, &[acc, x])?;
        }
    }
    Ok(())
}

fn parse_unary(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "unary ops have one output")?;
    let op = match ctx.op.as_str() {
        "Relu" => Op::Relu,
        "Sigmoid" => Op::Sigmoid,
        "Tanh" => Op::Tanh,
        "Erf" => Op::Erf,
        "Identity" => Op::Identity,
        other => return Err(ctx.err(format!("internal: {other} is not a unary op"))),
    };
    let x = ctx.input(0)?;
    ctx.emit(op, &[x])?;
    Ok(())
}

fn write_unary(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let op_type = ctx.node.op.name();
    if op_type == "Erf" && ctx.opset < 9 {
        return Err(ctx.err("Erf needs opset 9 or later"));
    }
    let ins = ctx.in_names();
    ctx.push(op_type, ins, vec![]);
    Ok(())
}

fn parse_leaky(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["alpha"])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "LeakyRelu has one output")?;
    let alpha = ctx.finite_or("alpha", 0.01)?;
    let x = ctx.input(0)?;
    ctx.emit(Op::LeakyRelu { alpha }, &[x])?;
    Ok(())
}

fn write_leaky(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::LeakyRelu { alpha } = ctx.node.op else {
        unreachable!()
    };
    let ins = ctx.in_names();
    ctx.push("LeakyRelu", ins, vec![a_float("alpha", alpha)]);
    Ok(())
}

fn parse_clip(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.only_outputs(1, "Clip has one output")?;
    let x = ctx.input(0)?;
    let mut ins = vec![x];
    let (has_min, has_max);
    if ctx.opset < 11 {
        ctx.allow(&["min", "max"])?;
        ctx.expect_inputs(1, 1)?;
        let (lo, hi) = (ctx.float("min")?, ctx.float("max")?);
        if let (Some(l), Some(h)) = (lo, hi) {
            if l.is_nan() || h.is_nan() {
                return Err(ctx.err("attributes 'min'/'max' must not be NaN"));
            }
        }
        let dtype = if lo.is_some() || hi.is_some() {
            ctx.dtype_of(x).ok_or_else(|| {
                ctx.err("cannot tell the input's element type, needed to turn the 'min'/'max' attributes into inputs")
            })?
        } else {
            DType::F32
        };
        has_min = lo.is_some();
        has_max = hi.is_some();
        if let Some(l) = lo {
            ins.push(ctx.scalar("min", dtype, l as f64)?);
        }
        if let Some(h) = hi {
            ins.push(ctx.scalar("max", dtype, h as f64)?);
        }
    } else {
        ctx.allow(&[])?;
        ctx.expect_inputs(1, 3)?;
        has_min = ctx.opt_input(1).is_some();
        has_max = ctx.opt_input(2).is_some();
        if let Some(m) = ctx.opt_input(1) {
            ins.push(m);
        }
        if let Some(m) = ctx.opt_input(2) {
            ins.push(m);
        }
    }
    ctx.emit(Op::Clip { has_min, has_max }, &ins)?;
    Ok(())
}

fn write_clip(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Clip { has_min, has_max } = ctx.node.op else {
        unreachable!()
    };
    let x = ctx.in_name(0);
    let min_slot = if has_min { Some(1) } else { None };
    let max_slot = if has_max {
        Some(1 + has_min as usize)
    } else {
        None
    };
    if ctx.opset < 11 {
        let mut attrs = Vec::new();
        for (slot, attr) in [(min_slot, "min"), (max_slot, "max")] {
            if let Some(s) = slot {
                let t = ctx.need_const(s, attr)?;
                let v =
                    scalar_value(t).ok_or_else(|| ctx.err(format!("{attr} must be a scalar")))?;
                attrs.push(a_float(attr, v as f32));
            }
        }
        ctx.push("Clip", vec![x], attrs);
    } else {
        let mut ins = vec![x];
        ins.push(min_slot.map(|s| ctx.in_name(s)).unwrap_or_default());
        ins.push(max_slot.map(|s| ctx.in_name(s)).unwrap_or_default());
        while ins.last().is_some_and(|s| s.is_empty()) {
            ins.pop();
        }
        ctx.push("Clip", ins, vec![]);
    }
    Ok(())
}

fn parse_gelu(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["approximate"])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "Gelu has one output")?;
    let tanh = match ctx.string("approximate")?.as_deref() {
        None | Some("none") => false,
        Some("tanh") => true,
        Some(other) => {
            return Err(ctx.err(format!(
                "attribute 'approximate' is '{other}'; expected 'none' or 'tanh'"
            )))
        }
    };
    let x = ctx.input(0)?;
    ctx.emit(Op::Gelu { tanh }, &[x])?;
    Ok(())
}

/// Gelu before opset 20 is written as its defining formula.
fn write_gelu(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Gelu { tanh } = ctx.node.op else {
        unreachable!()
    };
    let x = ctx.in_name(0);
    if ctx.opset >= 20 {
        let attrs = if tanh {
            vec![a_str("approximate", "tanh")]
        } else {
            vec![]
        };
        ctx.push("Gelu", vec![x], attrs);
        return Ok(());
    }
    let dtype = ctx.in_dtype(0).filter(|d| d.is_float()).ok_or_else(|| {
        ctx.err("writing Gelu before opset 20 as a formula needs the input's (float) element type")
    })?;
    let c =
        |ctx: &mut WriteCtx, name: &str, v: f64| ctx.add_init(name, &Tensor::scalar_of(dtype, v));
    let half = c(ctx, "half", 0.5);
    let one = c(ctx, "one", 1.0);
    let inner = if tanh {
        if ctx.opset < 6 {
            return Err(ctx.err("needs opset 6 or later"));
        }
        let k = c(ctx, "k", (2.0 / std::f64::consts::PI).sqrt());
        let c3 = c(ctx, "c3", 0.044715);
        let x2 = ctx.push_tmp("x2", "Mul", vec![x.clone(), x.clone()], vec![]);
        let x3 = ctx.push_tmp("x3", "Mul", vec![x2, x.clone()], vec![]);
        let t = ctx.push_tmp("cx3", "Mul", vec![x3, c3], vec![]);
        let u = ctx.push_tmp("u", "Add", vec![x.clone(), t], vec![]);
        let v = ctx.push_tmp("v", "Mul", vec![u, k], vec![]);
        ctx.push_tmp("tanh", "Tanh", vec![v], vec![])
    } else {
        if ctx.opset < 9 {
            return Err(ctx.err("Gelu as a formula needs Erf (opset 9 or later)"));
        }
        let s = c(ctx, "sqrt2", std::f64::consts::SQRT_2);
        let t = ctx.push_tmp("scaled", "Div", vec![x.clone(), s], vec![]);
        ctx.push_tmp("erf", "Erf", vec![t], vec![])
    };
    let z = ctx.push_tmp("onep", "Add", vec![inner, one], vec![]);
    let p = ctx.push_tmp("xz", "Mul", vec![x, z], vec![]);
    ctx.push("Mul", vec![p, half], vec![]);
    Ok(())
}

fn parse_dropout(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    if ctx.opset < 7 {
        ctx.allow(&["is_test", "ratio"])?;
        if !ctx.flag("is_test", false)? {
            return Err(ctx.err("is_test=0 (the default before opset 7) is training mode; only inference is supported"));
        }
        ctx.expect_inputs(1, 1)?;
    } else if ctx.opset < 12 {
        ctx.allow(&["ratio"])?;
        ctx.expect_inputs(1, 1)?;
    } else {
        ctx.allow(&["seed"])?;
        ctx.expect_inputs(1, 3)?;
        if let Some(tm) = ctx.opt_input(2) {
            match ctx.const_input(2) {
                Some(t) if t.to_f64_vec().iter().all(|&v| v == 0.0) => {}
                Some(_) => {
                    return Err(ctx.err("training_mode is true; only inference is supported"))
                }
                None => {
                    let name = ctx.st.g.value(tm).name.clone();
                    return Err(ctx.err(format!(
                        "training_mode ('{name}') is not a constant: training mode is not supported (only inference, a constant false)"
                    )));
                }
            }
        }
    }
    if let Some(mask) = ctx.output_name(1) {
        if ctx.is_used(mask) {
            return Err(ctx.err(format!(
                "the mask output '{mask}' is used: it is not supported (pannc runs Dropout in inference mode and removes it)"
            )));
        }
    }
    ctx.only_outputs(2, "Dropout has at most two outputs")?;
    let x = ctx.input(0)?;
    ctx.emit(Op::Dropout, &[x])?;
    Ok(())
}

fn write_dropout(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let x = ctx.in_name(0);
    let attrs = if ctx.opset < 7 {
        vec![a_int("is_test", 1)]
    } else {
        vec![]
    };
    ctx.push("Dropout", vec![x], attrs);
    Ok(())
}

/// Writes pannc-internal ops that have no ONNX operator of their own: `Silu` as
/// `x·Sigmoid(x)`. A `Poly` must be lowered (pass `lower-poly`) before export. Returns `None`
/// for every other op.
#[allow(clippy::type_complexity)]
pub(crate) fn write_internal(
    g: &pannc_ir::Graph,
    node: &pannc_ir::Node,
    opset: i64,
    names: &mut super::NameGen,
) -> Result<Option<(Vec<crate::pb::NodeProto>, Vec<crate::pb::TensorProto>)>, OnnxError> {
    match node.op {
        Op::Silu => {
            let mut ctx = WriteCtx::new(g, node, opset, names);
            let x = ctx.in_name(0);
            let s = ctx.push_tmp("sigmoid", "Sigmoid", vec![x.clone()], vec![]);
            ctx.push("Mul", vec![x, s], vec![]);
            Ok(Some((ctx.nodes, ctx.inits)))
        }
        Op::Poly(_) => Err(OnnxError::Export {
            node: node.name.clone(),
            op: "Poly".into(),
            opset,
            msg: "polynomial activations must be lowered to Mul/Add first (pass lower-poly)".into(),
        }),
        _ => Ok(None),
    }
}
