//! Convolution and pooling: Conv, MaxPool, AveragePool, GlobalAveragePool.

use super::{a_int, a_str, a_usizes, OpDef, ParseCtx, WriteCtx};
use crate::error::OnnxError;
use crate::pb;
use pannc_ir::{AutoPad, Op, Window};

pub(crate) const OPS: &[OpDef] = &[
    OpDef {
        name: "Conv",
        since: 1,
        parse: parse_conv,
        write: Some(write_conv),
    },
    OpDef {
        name: "MaxPool",
        since: 1,
        parse: parse_maxpool,
        write: Some(write_maxpool),
    },
    OpDef {
        name: "AveragePool",
        since: 1,
        parse: parse_avgpool,
        write: Some(write_avgpool),
    },
    OpDef {
        name: "GlobalAveragePool",
        since: 1,
        parse: parse_gap,
        write: Some(write_gap),
    },
];

fn parse_auto_pad(ctx: &ParseCtx) -> Result<AutoPad, OnnxError> {
    match ctx.string("auto_pad")?.as_deref() {
        None | Some("NOTSET") | Some("") => Ok(AutoPad::NotSet),
        Some("SAME_UPPER") => Ok(AutoPad::SameUpper),
        Some("SAME_LOWER") => Ok(AutoPad::SameLower),
        Some("VALID") => Ok(AutoPad::Valid),
        Some(other) => Err(ctx.err(format!(
            "attribute 'auto_pad' is '{other}'; expected NOTSET, SAME_UPPER, SAME_LOWER or VALID"
        ))),
    }
}

fn auto_pad_str(a: AutoPad) -> &'static str {
    match a {
        AutoPad::NotSet => "NOTSET",
        AutoPad::SameUpper => "SAME_UPPER",
        AutoPad::SameLower => "SAME_LOWER",
        AutoPad::Valid => "VALID",
    }
}

/// Reads and cross-checks the window attributes present on the node.
fn parse_window(ctx: &ParseCtx, kernel_required: bool) -> Result<Window, OnnxError> {
    let kernel_shape = ctx.usizes("kernel_shape", 1)?;
    if kernel_required && kernel_shape.is_empty() {
        return Err(ctx.err("attribute 'kernel_shape' is required"));
    }
    let w = Window {
        strides: ctx.usizes("strides", 1)?,
        pads: ctx.usizes("pads", 0)?,
        dilations: ctx.usizes("dilations", 1)?,
        auto_pad: parse_auto_pad(ctx)?,
        ceil_mode: ctx.flag("ceil_mode", false)?,
        kernel_shape,
    };
    // All given per-axis lists must agree on the number of spatial axes.
    let mut k: Option<(usize, &str)> = None;
    for (name, len) in [
        ("kernel_shape", w.kernel_shape.len()),
        ("strides", w.strides.len()),
        ("dilations", w.dilations.len()),
        ("pads", w.pads.len()),
    ] {
        if len == 0 {
            continue;
        }
        let axes = if name == "pads" {
            if len % 2 != 0 {
                return Err(ctx.err(format!("attribute 'pads' has odd length {len}")));
            }
            len / 2
        } else {
            len
        };
        match k {
            None => k = Some((axes, name)),
            Some((k0, n0)) if k0 != axes => {
                return Err(ctx.err(format!(
                    "attribute '{name}' implies {axes} spatial axes but '{n0}' implies {k0}"
                )))
            }
            _ => {}
        }
    }
    Ok(w)
}

fn window_attrs(
    ctx: &WriteCtx,
    w: &Window,
    dilations_since: i64,
) -> Result<Vec<pb::AttributeProto>, OnnxError> {
    let mut a = Vec::new();
    if w.auto_pad != AutoPad::NotSet {
        a.push(a_str("auto_pad", auto_pad_str(w.auto_pad)));
    }
    if !w.kernel_shape.is_empty() {
        a.push(a_usizes("kernel_shape", &w.kernel_shape));
    }
    if !w.pads.is_empty() {
        a.push(a_usizes("pads", &w.pads));
    }
    if !w.strides.is_empty() {
        a.push(a_usizes("strides", &w.strides));
    }
    if !w.dilations.is_empty() {
        if ctx.opset >= dilations_since {
            a.push(a_usizes("dilations", &w.dilations));
        } else if w.dilations.iter().any(|&d| d != 1) {
            return Err(ctx.err(format!("dilations need opset {dilations_since} or later")));
        }
    }
    if w.ceil_mode {
        if ctx.opset < 10 {
            return Err(ctx.err("ceil_mode needs opset 10 or later"));
        }
        // Opset 22 changed the ceil_mode output size (a last window starting in the end
        // padding is dropped), so the graph's own opset tells which rule it follows.
        if (ctx.g.opset >= 22) != (ctx.opset >= 22) {
            return Err(ctx.err(format!(
                "ceil_mode output sizes follow different rules before and from opset 22; the graph is at opset {}",
                ctx.g.opset
            )));
        }
        a.push(a_int("ceil_mode", 1));
    }
    Ok(a)
}

fn parse_conv(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[
        "auto_pad",
        "dilations",
        "group",
        "kernel_shape",
        "pads",
        "strides",
    ])?;
    ctx.expect_inputs(2, 3)?;
    ctx.only_outputs(1, "Conv has one output")?;
    let window = parse_window(ctx, false)?;
    let group = ctx.int_or("group", 1)?;
    let group = usize::try_from(group)
        .ok()
        .filter(|&g| g >= 1)
        .ok_or_else(|| ctx.err(format!("attribute 'group' must be >= 1, not {group}")))?;
    if let Some(w) = ctx.const_input(1) {
        let ws = w.shape();
        if ws.len() < 3 {
            return Err(ctx.err(format!("weight W has rank {}, needs at least 3", ws.len())));
        }
        if !window.kernel_shape.is_empty() && window.kernel_shape[..] != ws[2..] {
            return Err(ctx.err(format!(
                "kernel_shape {:?} does not match the weight's spatial shape {:?}",
                window.kernel_shape,
                &ws[2..]
            )));
        }
        if ws[0] % group != 0 {
            return Err(ctx.err(format!(
                "{} output channels are not divisible by group {group}",
                ws[0]
            )));
        }
    }
    let mut ins = vec![ctx.input(0)?, ctx.input(1)?];
    if let Some(b) = ctx.opt_input(2) {
        ins.push(b);
    }
    ctx.emit(Op::Conv { window, group }, &ins)?;
    Ok(())
}

fn write_conv(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::Conv { window, group } = &ctx.node.op else {
        unreachable!()
    };
    let mut attrs = window_attrs(ctx, window, 1)?;
    if *group != 1 {
        attrs.push(a_int("group", *group as i64));
    }
    let ins = ctx.in_names();
    ctx.push("Conv", ins, attrs);
    Ok(())
}

fn parse_maxpool(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    let mut allowed = vec!["auto_pad", "kernel_shape", "pads", "strides"];
    if ctx.opset >= 8 {
        allowed.push("storage_order");
    }
    if ctx.opset >= 10 {
        allowed.extend(["ceil_mode", "dilations"]);
    }
    ctx.allow(&allowed)?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "the Indices output of MaxPool is not supported")?;
    // storage_order only affects Indices; validate it and drop it.
    ctx.flag("storage_order", false)?;
    let window = parse_window(ctx, true)?;
    let x = ctx.input(0)?;
    ctx.emit(Op::MaxPool { window }, &[x])?;
    Ok(())
}

fn write_maxpool(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::MaxPool { window } = &ctx.node.op else {
        unreachable!()
    };
    let attrs = window_attrs(ctx, window, 10)?;
    let ins = ctx.in_names();
    ctx.push("MaxPool", ins, attrs);
    Ok(())
}

fn parse_avgpool(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    let mut allowed = vec!["auto_pad", "kernel_shape", "pads", "strides"];
    if ctx.opset >= 7 {
        allowed.push("count_include_pad");
    }
    if ctx.opset >= 10 {
        allowed.push("ceil_mode");
    }
    if ctx.opset >= 19 {
        allowed.push("dilations");
    }
    ctx.allow(&allowed)?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "AveragePool has one output")?;
    let window = parse_window(ctx, true)?;
    let count_include_pad = ctx.flag("count_include_pad", false)?;
    let x = ctx.input(0)?;
    ctx.emit(
        Op::AveragePool {
            window,
            count_include_pad,
        },
        &[x],
    )?;
    Ok(())
}

fn write_avgpool(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let Op::AveragePool {
        window,
        count_include_pad,
    } = &ctx.node.op
    else {
        unreachable!()
    };
    let mut attrs = window_attrs(ctx, window, 19)?;
    if *count_include_pad {
        if ctx.opset < 7 {
            return Err(ctx.err("count_include_pad needs opset 7 or later"));
        }
        attrs.push(a_int("count_include_pad", 1));
    }
    let ins = ctx.in_names();
    ctx.push("AveragePool", ins, attrs);
    Ok(())
}

fn parse_gap(ctx: &mut ParseCtx) -> Result<(), OnnxError> {
    ctx.allow(&[])?;
    ctx.expect_inputs(1, 1)?;
    ctx.only_outputs(1, "GlobalAveragePool has one output")?;
    let x = ctx.input(0)?;
    ctx.emit(Op::GlobalAveragePool, &[x])?;
    Ok(())
}

fn write_gap(ctx: &mut WriteCtx) -> Result<(), OnnxError> {
    let ins = ctx.in_names();
    ctx.push("GlobalAveragePool", ins, vec![]);
    Ok(())
}
