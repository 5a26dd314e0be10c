//! [`Model`] → ONNX bytes, writing each op in the form of the target opset.
//!
//! Opaque nodes are written back as the `NodeProto` they were read from, with the graph's
//! names; their outputs' declared non-tensor types (a sequence of maps) are written as they
//! were read.
//!
//! Constants whose node name equals their value name (initializers, and constants added by
//! passes) become initializers; other constants (from ONNX `Constant` nodes) stay `Constant`
//! nodes. A constant that the IR only uses where the target opset takes an attribute (e.g.
//! `Squeeze` axes before opset 13) is folded into that attribute and not written.

use crate::error::OnnxError;
use crate::import::{MAX_OPSET, MIN_OPSET};
use crate::infer;
use crate::ops::{self, NameGen, WriteCtx};
use crate::pb;
use crate::tensor::{tensor_to_proto, type_to_proto};
use crate::Model;
use pannc_ir::{Dim, Graph, Op, TensorType, ValueId};
use prost::Message;
use std::collections::HashSet;

/// The lowest IR version that may carry a given default-domain opset (onnx's version table).
pub fn min_ir_version(opset: i64) -> i64 {
    match opset {
        ..=8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        12..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        21..=22 => 10,
        23 => 11,
        24 => 12,
        _ => 13,
    }
}

fn value_info(name: &str, ty: &TensorType) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(type_to_proto(ty)),
        ..Default::default()
    }
}

/// The type written for a graph output: its static type, or dtype and rank inferred from its
/// producers (with unknown dimensions).
fn output_type(g: &Graph, v: ValueId) -> Option<TensorType> {
    if let Some(t) = &g.value(v).ty {
        return Some(t.clone());
    }
    let dtype = infer::known_dtype(g, v)?;
    let rank = infer::known_rank(g, v)?;
    Some(TensorType::new(
        dtype,
        (0..rank).map(|k| Dim::Sym(format!("?out{k}"))).collect(),
    ))
}

/// The declared non-tensor type of a value produced by an opaque node.
fn foreign_type(g: &Graph, v: ValueId) -> Option<pb::TypeProto> {
    match g.value(v).producer() {
        pannc_ir::Producer::Node { node, port } => {
            ops::opaque::foreign_type(&g.node(node).op, port)
        }
        pannc_ir::Producer::Input => None,
    }
}

pub(crate) fn model_to_proto(model: &Model, opset: i64) -> Result<pb::ModelProto, OnnxError> {
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
        return Err(OnnxError::UnsupportedOpset {
            opset,
            min: MIN_OPSET,
            max: MAX_OPSET,
        });
    }
    let g = &model.graph;
    let errs = pannc_ir::verify(g);
    if !errs.is_empty() {
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        return Err(OnnxError::ExportGraph(format!(
            "the graph fails verification: {}",
            msgs.join("; ")
        )));
    }
    let order = g
        .topo_order()
        .map_err(|e| OnnxError::ExportGraph(e.to_string()))?;
    let mut names = NameGen::default();
    for v in g.value_ids() {
        names.reserve(&g.value(v).name);
    }

    // Pass 1: write every non-constant node; note which names the written nodes read.
    let mut written: Vec<Option<(Vec<pb::NodeProto>, Vec<pb::TensorProto>)>> =
        Vec::with_capacity(order.len());
    let mut referenced: HashSet<String> = HashSet::new();
    for &id in &order {
        let node = g.node(id);
        if matches!(node.op, Op::Constant(_)) {
            written.push(None);
            continue;
        }
        if let Op::Opaque(_) = node.op {
            let n = ops::opaque::export_node(g, node, opset)?;
            referenced.extend(n.input.iter().filter(|s| !s.is_empty()).cloned());
            // A kept initializer (read as an opaque Constant) is written back as one.
            written.push(Some(match ops::opaque::as_initializer(&n) {
                Some(t) => (vec![], vec![t]),
                None => (vec![n], vec![]),
            }));
            continue;
        }
        if let Some(w) = ops::elementwise::write_internal(g, node, opset, &mut names)? {
            for n in &w.0 {
                referenced.extend(n.input.iter().filter(|s| !s.is_empty()).cloned());
            }
            written.push(Some(w));
            continue;
        }
        let def = ops::lookup(node.op.name())
            .and_then(|d| d.write)
            .ok_or_else(|| OnnxError::Export {
                node: node.name.clone(),
                op: node.op.name().to_string(),
                opset,
                msg: "no writer for this op".into(),
            })?;
        let mut ctx = WriteCtx::new(g, node, opset, &mut names);
        def(&mut ctx)?;
        for n in &ctx.nodes {
            referenced.extend(n.input.iter().filter(|s| !s.is_empty()).cloned());
        }
        written.push(Some((ctx.nodes, ctx.inits)));
    }
    for &v in g.outputs() {
        referenced.insert(g.value(v).name.clone());
    }

    // Pass 2: assemble in topological order, keeping the constants still read.
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut init_types: Vec<(String, TensorType)> = Vec::new();
    for (&id, w) in order.iter().zip(written) {
        let node = g.node(id);
        match (w, &node.op) {
            (Some((n, i)), _) => {
                nodes.extend(n);
                inits.extend(i);
            }
            (None, Op::Constant(t)) => {
                let Some(&v) = node.outputs().first() else {
                    continue;
                };
                let vname = &g.value(v).name;
                if !referenced.contains(vname) && g.is_used(v) {
                    continue; // folded into attributes at this opset
                }
                if node.name == *vname {
                    inits.push(tensor_to_proto(vname, t));
                    init_types.push((vname.clone(), TensorType::known(t.dtype(), t.shape())));
                } else {
                    let mut ctx = WriteCtx::new(g, node, opset, &mut names);
                    (ops::lookup("Constant")
                        .and_then(|d| d.write)
                        .expect("Constant has a writer"))(&mut ctx)?;
                    nodes.extend(ctx.nodes);
                }
            }
            (None, _) => unreachable!("only constants are deferred"),
        }
    }

    let ir_version = model.ir_version.max(min_ir_version(opset));
    let mut inputs = Vec::new();
    for &v in g.inputs() {
        let val = g.value(v);
        let ty = val.ty.as_ref().ok_or_else(|| {
            OnnxError::ExportGraph(format!(
                "graph input '{}' has no static type (ONNX requires one)",
                val.name
            ))
        })?;
        inputs.push(value_info(&val.name, ty));
    }
    if ir_version < 4 {
        // IR version 3 requires every initializer to be listed as a graph input.
        for (n, t) in &init_types {
            inputs.push(value_info(n, t));
        }
    }
    let mut outputs = Vec::new();
    let out_set: HashSet<ValueId> = g.outputs().iter().copied().collect();
    for &v in g.outputs() {
        let val = g.value(v);
        if let Some(tp) = foreign_type(g, v) {
            outputs.push(pb::ValueInfoProto {
                name: Some(val.name.clone()),
                r#type: Some(tp),
                ..Default::default()
            });
            continue;
        }
        let ty = output_type(g, v).ok_or_else(|| {
            OnnxError::ExportGraph(format!(
                "graph output '{}' has no static type and its dtype/rank cannot be inferred; run shape inference first",
                val.name
            ))
        })?;
        outputs.push(value_info(&val.name, &ty));
    }
    let in_set: HashSet<ValueId> = g.inputs().iter().copied().collect();
    let mut infos = Vec::new();
    for &id in &order {
        let node = g.node(id);
        if matches!(node.op, Op::Constant(_)) {
            continue;
        }
        for &v in node.outputs() {
            if out_set.contains(&v) || in_set.contains(&v) {
                continue;
            }
            if let Some(ty) = &g.value(v).ty {
                infos.push(value_info(&g.value(v).name, ty));
            } else if let Some(tp) = foreign_type(g, v) {
                infos.push(pb::ValueInfoProto {
                    name: Some(g.value(v).name.clone()),
                    r#type: Some(tp),
                    ..Default::default()
                });
            }
        }
    }

    let mut opset_import = vec![pb::OperatorSetIdProto {
        domain: Some(String::new()),
        version: Some(opset),
    }];
    for (d, v) in &model.opset_imports {
        if !d.is_empty() {
            opset_import.push(pb::OperatorSetIdProto {
                domain: Some(d.clone()),
                version: Some(*v),
            });
        }
    }
    let some = |s: &str| {
        if s.is_empty() {
            None
        } else {
            Some(s.to_string())
        }
    };
    Ok(pb::ModelProto {
        ir_version: Some(ir_version),
        opset_import,
        producer_name: some(&model.producer_name),
        producer_version: some(&model.producer_version),
        domain: some(&model.domain),
        model_version: if model.model_version != 0 {
            Some(model.model_version)
        } else {
            None
        },
        doc_string: some(&model.doc_string),
        graph: Some(pb::GraphProto {
            node: nodes,
            name: Some(if g.name.is_empty() {
                "pannc".to_string()
            } else {
                g.name.clone()
            }),
            initializer: inits,
            doc_string: some(&model.graph_doc_string),
            input: inputs,
            output: outputs,
            value_info: infos,
            ..Default::default()
        }),
        metadata_props: model
            .metadata_props
            .iter()
            .map(|(k, v)| pb::StringStringEntryProto {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect(),
        ..Default::default()
    })
}

pub(crate) fn export_model(model: &Model, opset: i64) -> Result<Vec<u8>, OnnxError> {
    Ok(model_to_proto(model, opset)?.encode_to_vec())
}
