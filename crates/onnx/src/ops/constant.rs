//! Constants and types: Constant, ConstantOfShape, Cast, CastLike (imported as a Cast to the
//! second input's element type, which must be known).

use super::{a_int, a_tensor, OpDef, ParseCtx, WriteCtx};
use crate::error::OnnxError;
use crate::tensor::{code_of, dtype_from_code, dtype_name, element_count, tensor_from_proto};
use pannc_ir::{Op, Tensor};

pub(crate) const OPS: &[OpDef] = &[
    OpDef {
        name: "Constant",
        since: 1,
        parse: parse_constant,
        write: Some(write_constant),
    },
    OpDef {
        name: "ConstantOfShape",
        since: 9,
        parse: parse_cos,
        write: Some(write_cos),
    },
    OpDef {
        name: "Cast",
        since: 6,
        parse: parse_cast,
        write: Some(write_cast),
    },
    OpDef {
        name: "CastLike",
        since: 15,
        parse: parse_cast_like,
        write: None,
    },
];

const VALUE_ATTRS: &[&str] = &[
    "value",
    "sparse_value",
    "value_float",
    "value_floats",
    "value_int",
    "value_ints",
    "value_string",
    "value_strings",
];

fn parse_constant(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    let allowed: &[&str] = match ctx.opset {
        ..=10 => &VALUE_ATTRS[..1],
        11 => &VALUE_ATTRS[..2],
        _ => VALUE_ATTRS,
    };
    ctx.allow(allowed)?;
    ctx.expect_inputs(0, 0)?;
    ctx.only_outputs(1, "Constant has one output")?;
    let given: Vec<&str> = VALUE_ATTRS
        .iter()
        .copied()
        .filter(|a| ctx.has_attr(a))
        .collect();
    if given.len() != 1 {
        return Err(ctx.err(format!(
            "needs exactly one value attribute, has {}: {:?}",
            given.len(),
            given
        )));
    }
    let out = ctx.output_name(0).unwrap_or_default().to_string();
    let t = match given[0] {
        "value" => {
            let tp = ctx
                .tensor_attr("value")?
                .ok_or_else(|| ctx.err("attribute 'value' holds no tensor"))?;
            let widen = ctx.st.index_only.contains(&out);
            tensor_from_proto(tp, &out, widen, &ctx.st.budget.limits, &ctx.st.ext)?
        }
        "value_float" => Tensor::scalar_f32(ctx.float("value_float")?.unwrap_or_default()),
        "value_floats" => {
            let v = ctx.floats("value_floats")?.unwrap_or_default();
            Tensor::from_f32(&[v.len()], v).ok_or_else(|| ctx.err("bad value_floats"))?
        }
        "value_int" => Tensor::scalar_i64(ctx.int("value_int")?.unwrap_or_default()),
        "value_ints" => {
            let v = ctx.ints("value_ints")?.unwrap_or_default();
            Tensor::from_i64(&[v.len()], v).ok_or_else(|| ctx.err("bad value_ints"))?
        }
        "sparse_value" => return Err(ctx.err("sparse constants are not supported")),
        _ => {
            return Err(OnnxError::UnsupportedDType {
                what: format!("Constant node '{}' (output '{out}')", ctx.name),
                dtype: "STRING".into(),
                extra: "",
            })
        }
    };
    ctx.emit_constant(t)?;
    Ok(())
}

/// IR constants whose node name differs from their value's name are written as `Constant`
/// nodes (they came from one); the others become initializers (see `export`).
fn write_constant(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Constant(t) = &ctx.node.op else {
        unreachable!()
    };
    let attr = a_tensor("value", t);
    ctx.push("Constant", vec![], vec![attr]);
    Ok(())
}

fn parse_cos(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&["value"])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "ConstantOfShape has one output")?;
    let value = match ctx.tensor_attr("value")? {
        None => {
            Tensor::from_f32(&[1], vec![0.0]).ok_or_else(|| ctx.err("internal: default value"))?
        }
        Some(tp) => {
            let fallback = format!("{}.value", ctx.name);
            let t = tensor_from_proto(tp, &fallback, false, &ctx.st.budget.limits, &ctx.st.ext)?;
            if t.len() != 1 {
                return Err(ctx.err(format!(
                    "attribute 'value' must hold one element, holds {}",
                    t.len()
                )));
            }
            t
        }
    };
    let s = ctx.input(0)?;
    if let Some(shape) = ctx.const_input(0) {
        if shape.shape().len() != 1 {
            return Err(ctx.err(format!(
                "the shape input must be 1-D, has shape {:?}",
                shape.shape()
            )));
        }
        let dims = shape.to_i64_vec();
        if let Some(d) = dims.iter().find(|&&d| d < 0) {
            return Err(ctx.err(format!("the shape input has negative dimension {d}")));
        }
        // Constant folding will materialise the output: it counts as constant data.
        let out = ctx.output_name(0).unwrap_or(&ctx.name).to_string();
        let limits = ctx.st.budget.limits;
        limits.check_rank(&format!("tensor '{out}'"), dims.len())?;
        let n = element_count(&out, &dims)?;
        let bytes = n as u128 * value.dtype().size() as u128;
        let dtype = dtype_name(code_of(value.dtype()));
        limits.check_tensor(&out, &dims, dtype.clone(), bytes)?;
        ctx.st.budget.add(&out, &dims, dtype, bytes)?;
    }
    ctx.emit(Op::ConstantOfShape { value }, &[s])?;
    Ok(())
}

fn write_cos(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::ConstantOfShape { value } = &ctx.node.op else {
        unreachable!()
    };
    if ctx.opset < 9 {
        return Err(ctx.err("ConstantOfShape needs opset 9 or later"));
    }
    let attr = a_tensor("value", value);
    let ins = ctx.in_names();
    ctx.push("ConstantOfShape", ins, vec![attr]);
    Ok(())
}

fn parse_cast(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    let mut allowed = vec!["to"];
    if ctx.opset >= 19 {
        allowed.push("saturate"); // only affects float8 targets
    }
    if ctx.opset >= 24 {
        allowed.push("round_mode"); // only affects float8e8m0 targets
    }
    ctx.allow(&allowed)?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "Cast has one output")?;
    let code = ctx
        .int("to")?
        .ok_or_else(|| ctx.err("attribute 'to' is required"))?;
    let code32 = i32::try_from(code).unwrap_or(-1);
    let to = dtype_from_code(code32).ok_or_else(|| OnnxError::UnsupportedDType {
        what: format!("the target of Cast node '{}'", ctx.name),
        dtype: dtype_name(code32),
        extra: "",
    })?;
    let x = ctx.input(0)?;
    ctx.emit(Op::Cast { to }, &[x])?;
    Ok(())
}

fn parse_cast_like(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    let mut allowed = vec![];
    if ctx.opset >= 19 {
        allowed.push("saturate"); // only affects float8 targets
    }
    if ctx.opset >= 24 {
        allowed.push("round_mode");
    }
    ctx.allow(&allowed)?;
    ctx.expect_inputs(2, 2)?;
    ctx.only_outputs(1, "CastLike has one output")?;
    let (x, like) = (ctx.input(0)?, ctx.input(1)?);
    let to = ctx.dtype_of(like).ok_or_else(|| {
        ctx.err(format!(
            "the element type of target_type '{}' is unknown",
            ctx.st.g.value(like).name
        ))
    })?;
    ctx.emit(Op::Cast { to }, &[x])?;
    Ok(())
}

fn write_cast(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Cast { to } = ctx.node.op else {
        unreachable!()
    };
    let x = ctx.in_name(0);
    ctx.push("Cast", vec![x], vec![a_int("to", code_of(to) as i64)]);
    Ok(())
}
