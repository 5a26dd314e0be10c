//! `pannc inspect`: what a model contains and whether pannc supports it.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;

/// Show a model's inputs, outputs, op histogram, parameter count and unsupported ops.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The ONNX model to inspect.
    pub model: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub mem: crate::load::MemoryArgs,
}

#[derive(Serialize)]
struct Io {
    name: String,
    dtype: String,
    shape: Vec<String>,
}

#[derive(Serialize)]
struct Unsupported {
    op_type: String,
    node: String,
    domain: String,
    opset: Option<i64>,
}

#[derive(Serialize)]
struct Report {
    model: String,
    ir_version: i64,
    opset: i64,
    producer: String,
    inputs: Vec<Io>,
    outputs: Vec<Io>,
    ops: Vec<(String, usize)>,
    parameters: usize,
    unsupported: Vec<Unsupported>,
    /// Why the model could not be imported, other than unsupported ops.
    error: Option<String>,
}

pub fn run(args: &InspectArgs) -> Result<()> {
    args.mem.apply()?;
    let bytes = crate::load::read_model_file(&args.model)?;
    let ops =
        pannc_onnx::op_histogram(&bytes).with_context(|| format!("{}", args.model.display()))?;
    let mut report = Report {
        model: args.model.display().to_string(),
        ir_version: 0,
        opset: 0,
        producer: String::new(),
        inputs: vec![],
        outputs: vec![],
        ops,
        parameters: 0,
        unsupported: vec![],
        error: None,
    };
    match pannc_onnx::import_with_limits(&bytes, &crate::load::limits()?) {
        Ok(mut model) => {
            report.ir_version = model.ir_version;
            report.opset = model.graph.opset;
            report.producer = format!("{} {}", model.producer_name, model.producer_version)
                .trim()
                .to_string();
            report.parameters = parameter_count(&model.graph);
            if let Err(e) = crate::load::canonicalize(&mut model.graph) {
                report.error = Some(format!("{e:#}"));
            }
            let g = &model.graph;
            let io = |v: pannc_ir::ValueId| {
                let val = g.value(v);
                let (dtype, shape) = match &val.ty {
                    Some(t) => (
                        t.dtype.to_string(),
                        t.shape.iter().map(|d| d.to_string()).collect(),
                    ),
                    None => ("?".into(), vec![]),
                };
                Io {
                    name: val.name.clone(),
                    dtype,
                    shape,
                }
            };
            report.inputs = g.inputs().iter().map(|&v| io(v)).collect();
            report.outputs = g.outputs().iter().map(|&v| io(v)).collect();
        }
        Err(pannc_onnx::OnnxError::Unsupported(list)) => {
            report.unsupported = list
                .into_iter()
                .map(|u| Unsupported {
                    op_type: u.op_type,
                    node: u.node,
                    domain: u.domain,
                    opset: u.opset,
                })
                .collect();
        }
        Err(e) => report.error = Some(crate::load::describe(&e)),
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    if !report.unsupported.is_empty() {
        anyhow::bail!(
            "{}: {} unsupported op node(s) (listed above)",
            report.model,
            report.unsupported.len()
        );
    }
    if let Some(e) = &report.error {
        anyhow::bail!("{}: {e}", report.model);
    }
    Ok(())
}

/// Number of floating-point constant elements (weights, biases, batch-norm statistics).
fn parameter_count(g: &pannc_ir::Graph) -> usize {
    g.node_ids()
        .into_iter()
        .filter_map(|id| match &g.node(id).op {
            pannc_ir::Op::Constant(t) if t.dtype().is_float() => Some(t.len()),
            _ => None,
        })
        .sum()
}

fn print_text(r: &Report) {
    println!("{}", r.model);
    println!(
        "  ONNX IR v{}, opset {}, produced by {}",
        r.ir_version,
        r.opset,
        if r.producer.is_empty() {
            "?"
        } else {
            &r.producer
        }
    );
    let io = |label: &str, list: &[Io]| {
        println!("{label}:");
        for x in list {
            println!("  {:<24} {}[{}]", x.name, x.dtype, x.shape.join(","));
        }
    };
    io("inputs", &r.inputs);
    io("outputs", &r.outputs);
    println!("parameters: {}", r.parameters);
    println!("ops:");
    for (op, n) in &r.ops {
        println!("  {op:<24} {n}");
    }
    if r.unsupported.is_empty() {
        println!("unsupported ops: none");
    } else {
        println!("unsupported ops ({}):", r.unsupported.len());
        for u in &r.unsupported {
            let dom = if u.domain.is_empty() {
                String::new()
            } else {
                format!("{}.", u.domain)
            };
            let opset = u.opset.map_or("?".to_string(), |o| o.to_string());
            println!("  {dom}{} (node '{}', opset {opset})", u.op_type, u.node);
        }
    }
}
