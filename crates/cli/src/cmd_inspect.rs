//! `pannc inspect`: what a model contains and whether pannc supports it.
//!
//! A model that loads is described (inputs, outputs, op histogram, parameters, nodes kept
//! without interpretation). A model that does not load prints nothing but the error (one line
//! on stderr, exit code 1); with `--json`, stdout also gets `{model, error, unsupported}` with
//! the unsupported ops grouped by type.

use anyhow::Result;
use pannc_onnx::{OnnxError, UnsupportedGroup};
use serde::Serialize;
use std::path::PathBuf;

/// Show a model's inputs, outputs, op histogram, parameter count and unsupported ops.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The ONNX model to inspect (its external data files, if any, next to it).
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
    /// `f32`, ...; for values only kept, not typed, their ONNX type (`seq(map(INT64,
    /// tensor(FLOAT)))`) or `?`.
    dtype: String,
    /// `None` when the value is not a typed tensor.
    shape: Option<Vec<String>>,
}

/// Nodes of one op type: unsupported ones, or opaque ones kept without interpretation.
#[derive(Serialize)]
struct Group {
    op_type: String,
    domain: String,
    count: usize,
    first_node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<UnsupportedGroup> for Group {
    fn from(g: UnsupportedGroup) -> Group {
        Group {
            op_type: g.op_type,
            domain: g.domain,
            count: g.count,
            first_node: g.first_node,
            reason: Some(g.reason),
        }
    }
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
    /// Nodes pannc keeps but does not interpret (scikit-learn's `ai.onnx.ml` tail).
    kept: Vec<Group>,
    /// Always empty in a report (a model with unsupported ops does not load).
    unsupported: Vec<Group>,
}

/// What `--json` prints for a model that does not load.
#[derive(Serialize)]
struct Failure {
    model: String,
    error: String,
    unsupported: Vec<Group>,
}

pub fn run(args: &InspectArgs) -> Result<()> {
    args.mem.apply()?;
    match report(args) {
        Ok(r) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_text(&r);
            }
            Ok(())
        }
        Err((error, unsupported)) => {
            if args.json {
                let f = Failure {
                    model: args.model.display().to_string(),
                    error: error.clone(),
                    unsupported,
                };
                println!("{}", serde_json::to_string_pretty(&f)?);
            }
            Err(anyhow::anyhow!(error))
        }
    }
}

/// The report of a model that loads; else the one-line error and the unsupported ops.
fn report(args: &InspectArgs) -> Result<Report, (String, Vec<Group>)> {
    let fail = |e: anyhow::Error| (format!("{e:#}"), vec![]);
    let path = &args.model;
    let bytes = crate::load::read_model_file(path).map_err(fail)?;
    let ops = pannc_onnx::op_histogram(&bytes).map_err(|e| {
        (
            format!("{}: {}", path.display(), crate::load::describe(&e)),
            vec![],
        )
    })?;
    let limits = crate::load::limits().map_err(fail)?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut model = pannc_onnx::import_with_dir(&bytes, dir, &limits).map_err(|e| {
        let groups = match &e {
            OnnxError::Unsupported(list) => pannc_onnx::group_unsupported(list)
                .into_iter()
                .map(Group::from)
                .collect(),
            _ => vec![],
        };
        (
            format!("{}: {}", path.display(), crate::load::describe(&e)),
            groups,
        )
    })?;
    let parameters = parameter_count(&model.graph);
    crate::load::canonicalize(&mut model.graph)
        .map_err(|e| (format!("{}: {e:#}", path.display()), vec![]))?;
    let g = &model.graph;
    let io = |v: pannc_ir::ValueId| {
        let val = g.value(v);
        let (dtype, shape) = match &val.ty {
            Some(t) => (
                t.dtype.to_string(),
                Some(t.shape.iter().map(|d| d.to_string()).collect()),
            ),
            None => (foreign_type(g, v).unwrap_or_else(|| "?".into()), None),
        };
        Io {
            name: val.name.clone(),
            dtype,
            shape,
        }
    };
    Ok(Report {
        model: path.display().to_string(),
        ir_version: model.ir_version,
        opset: g.opset,
        producer: format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string(),
        inputs: g.inputs().iter().map(|&v| io(v)).collect(),
        outputs: g.outputs().iter().map(|&v| io(v)).collect(),
        ops,
        parameters,
        kept: kept(g),
        unsupported: vec![],
    })
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

/// The kept (non-tensor) type of a value computed by an opaque node, e.g. ZipMap's sequence of
/// maps.
fn foreign_type(g: &pannc_ir::Graph, v: pannc_ir::ValueId) -> Option<String> {
    let pannc_ir::Producer::Node { node, port } = g.value(v).producer() else {
        return None;
    };
    let pannc_ir::Op::Opaque(o) = &g.node(node).op else {
        return None;
    };
    pannc_onnx::foreign_type_name(o.foreign_types.get(port)?.as_ref()?)
}

/// Opaque nodes grouped by domain and op type, in the graph's order.
fn kept(g: &pannc_ir::Graph) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let Ok(order) = g.topo_order() else {
        return groups;
    };
    for id in order {
        let node = g.node(id);
        let pannc_ir::Op::Opaque(o) = &node.op else {
            continue;
        };
        match groups
            .iter_mut()
            .find(|x| x.op_type == o.op_type && x.domain == o.domain)
        {
            Some(x) => x.count += 1,
            None => groups.push(Group {
                op_type: o.op_type.clone(),
                domain: o.domain.clone(),
                count: 1,
                first_node: node.name.clone(),
                reason: None,
            }),
        }
    }
    groups
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
            match &x.shape {
                Some(s) => println!("  {:<24} {}[{}]", x.name, x.dtype, s.join(",")),
                None => println!("  {:<24} {}", x.name, x.dtype),
            }
        }
    };
    io("inputs", &r.inputs);
    io("outputs", &r.outputs);
    println!("parameters: {}", r.parameters);
    println!("ops:");
    for (op, n) in &r.ops {
        println!("  {op:<24} {n}");
    }
    if !r.kept.is_empty() {
        let items: Vec<String> = r
            .kept
            .iter()
            .map(|g| {
                let dom = if g.domain.is_empty() {
                    String::new()
                } else {
                    format!("{}.", g.domain)
                };
                format!(
                    "{dom}{} ×{} (first: '{}')",
                    g.op_type, g.count, g.first_node
                )
            })
            .collect();
        println!("kept, not interpreted: {}", items.join(", "));
    }
    println!("unsupported ops: none");
}
