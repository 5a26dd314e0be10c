//! Nodes kept without interpretation ([`pannc_ir::Opaque`]): the `ai.onnx.ml` operators
//! scikit-learn exports append after the logits (`ZipMap`, `ArrayFeatureExtractor`,
//! `Normalizer`, `LabelEncoder`, ...) and every node computed from their outputs (the
//! `Reshape`/`Cast` of the label: together, the client-side tail), and initializers of element
//! types pannc does not read (int32 or string class labels) when only such nodes use them.
//! They are stored as their encoded `NodeProto` and written back verbatim, with the graph's
//! names for their inputs and outputs.

use super::ImportState;
use crate::error::OnnxError;
use crate::pb;
use pannc_ir::{Op, Opaque, ValueId};
use prost::Message;

/// Operator domains whose nodes are preserved instead of refused.
pub(crate) const PRESERVED_DOMAINS: &[&str] = &["ai.onnx.ml"];

pub(crate) fn is_preserved(domain: &str) -> bool {
    PRESERVED_DOMAINS.contains(&domain)
}

/// Which nodes are kept opaque: those of a preserved domain, and every node that reads a
/// value computed by a kept node (found by walking consumers, linear in the graph's size).
/// Nodes with subgraph attributes are never kept (their subgraphs could read any value).
pub(crate) fn preserved_tail(g: &pb::GraphProto) -> Vec<bool> {
    use std::collections::HashMap;
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for x in n.input.iter().filter(|x| !x.is_empty()) {
            consumers.entry(x.as_str()).or_default().push(i);
        }
    }
    let has_graph = |n: &pb::NodeProto| {
        n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
    };
    let mut keep = vec![false; g.node.len()];
    let mut todo: Vec<usize> = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        if is_preserved(n.domain()) && !has_graph(n) {
            keep[i] = true;
            todo.push(i);
        }
    }
    while let Some(i) = todo.pop() {
        for o in g.node[i].output.iter().filter(|o| !o.is_empty()) {
            for &c in consumers.get(o.as_str()).map_or(&[][..], Vec::as_slice) {
                if !keep[c] && !has_graph(&g.node[c]) {
                    keep[c] = true;
                    todo.push(c);
                }
            }
        }
    }
    keep
}

/// Adds an opaque node for `n`, whose non-empty inputs are `inputs`. Outputs get their declared
/// tensor types; `foreign` holds the encoded declared types that are not dense tensors.
pub(crate) fn import_node(
    st: &mut ImportState,
    n: &pb::NodeProto,
    inputs: &[ValueId],
) -> Result<(), OnnxError> {
    let outs: Vec<String> = n.output.iter().filter(|o| !o.is_empty()).cloned().collect();
    if outs.is_empty() {
        return Err(OnnxError::BadNode {
            node: n.name().to_string(),
            op: n.op_type().to_string(),
            opset: st.g.opset,
            msg: "has no (named) outputs".into(),
        });
    }
    let foreign_types = outs.iter().map(|o| st.foreign.get(o).cloned()).collect();
    let op = Op::Opaque(Box::new(Opaque {
        domain: n.domain().to_string(),
        op_type: n.op_type().to_string(),
        encoded: n.encode_to_vec(),
        foreign_types,
    }));
    let (_, vs) =
        st.g.add_node(n.name(), op, inputs, &outs)
            .map_err(|e| OnnxError::BadModel(e.to_string()))?;
    for (&v, o) in vs.iter().zip(&outs) {
        if let Some(t) = st.types.get(o) {
            st.g.value_mut(v).ty = Some(t.clone());
        }
    }
    Ok(())
}

/// An initializer pannc cannot read, used only by preserved nodes: an opaque `Constant` node.
pub(crate) fn import_initializer(
    st: &mut ImportState,
    t: &pb::TensorProto,
) -> Result<(), OnnxError> {
    let node = super::make_node(
        "Constant",
        "",
        vec![],
        vec![t.name().to_string()],
        vec![pb::AttributeProto {
            name: Some("value".into()),
            r#type: Some(pb::attribute_proto::AttributeType::Tensor as i32),
            t: Some(t.clone()),
            ..Default::default()
        }],
    );
    let op = Op::Opaque(Box::new(Opaque {
        domain: String::new(),
        op_type: "Constant".into(),
        encoded: node.encode_to_vec(),
        foreign_types: vec![None],
    }));
    st.g.add_node(t.name(), op, &[], &[t.name().to_string()])
        .map_err(|e| OnnxError::BadModel(e.to_string()))?;
    Ok(())
}

fn export_err(node: &pannc_ir::Node, opset: i64, msg: String) -> OnnxError {
    OnnxError::Export {
        node: node.name.clone(),
        op: "Opaque".into(),
        opset,
        msg,
    }
}

/// Writes an opaque node back: its encoded `NodeProto` with the name, the non-empty inputs and
/// the non-empty outputs replaced by the graph's (passes may have renamed values).
pub(crate) fn export_node(
    g: &pannc_ir::Graph,
    node: &pannc_ir::Node,
    opset: i64,
) -> Result<pb::NodeProto, OnnxError> {
    let Op::Opaque(o) = &node.op else {
        return Err(export_err(
            node,
            opset,
            "internal: not an opaque node".into(),
        ));
    };
    let mut n = pb::NodeProto::decode(o.encoded.as_slice()).map_err(|e| {
        export_err(
            node,
            opset,
            format!("its stored NodeProto does not decode: {e}"),
        )
    })?;
    let replace = |slots: &mut Vec<String>, vals: &[ValueId], what: &str| {
        let want = slots.iter().filter(|s| !s.is_empty()).count();
        if want != vals.len() {
            return Err(export_err(
                node,
                opset,
                format!(
                    "the node has {} {what}s but its stored NodeProto {want}",
                    vals.len()
                ),
            ));
        }
        let mut it = vals.iter();
        for s in slots.iter_mut().filter(|s| !s.is_empty()) {
            *s = g.value(*it.next().expect("counted")).name.clone();
        }
        Ok(())
    };
    replace(&mut n.input, node.inputs(), "input")?;
    replace(&mut n.output, node.outputs(), "output")?;
    n.name = if node.name.is_empty() {
        None
    } else {
        Some(node.name.clone())
    };
    Ok(n)
}

/// The tensor of a kept initializer (an opaque default-domain `Constant` with a `value`),
/// named after its output, to be written back as an initializer.
pub(crate) fn as_initializer(n: &pb::NodeProto) -> Option<pb::TensorProto> {
    if n.op_type() != "Constant" || !n.domain().is_empty() || n.output.len() != 1 {
        return None;
    }
    let [a] = n.attribute.as_slice() else {
        return None;
    };
    let mut t = a.t.clone().filter(|_| a.name() == "value")?;
    t.name = Some(n.output[0].clone());
    Some(t)
}

/// The declared non-tensor type of output `port` of an opaque node, if it has one.
pub(crate) fn foreign_type(op: &Op, port: usize) -> Option<pb::TypeProto> {
    let Op::Opaque(o) = op else { return None };
    let bytes = o.foreign_types.get(port)?.as_ref()?;
    pb::TypeProto::decode(bytes.as_slice()).ok()
}

/// A readable name of an encoded `TypeProto` (e.g. `seq(map(INT64, tensor(FLOAT)))`), for the
/// declared types of opaque nodes' outputs.
pub(crate) fn type_name(encoded: &[u8]) -> Option<String> {
    fn name(t: &pb::TypeProto, depth: usize) -> String {
        use pb::type_proto::Value;
        if depth > 16 {
            return "…".into();
        }
        let elem = |code: i32| crate::tensor::dtype_name(code);
        match &t.value {
            Some(Value::TensorType(x)) => format!("tensor({})", elem(x.elem_type())),
            Some(Value::SparseTensorType(x)) => format!("sparse_tensor({})", elem(x.elem_type())),
            Some(Value::SequenceType(s)) => match &s.elem_type {
                Some(e) => format!("seq({})", name(e, depth + 1)),
                None => "seq(?)".into(),
            },
            Some(Value::MapType(m)) => format!(
                "map({}, {})",
                elem(m.key_type()),
                m.value_type
                    .as_ref()
                    .map_or("?".into(), |v| name(v, depth + 1))
            ),
            Some(Value::OptionalType(o)) => match &o.elem_type {
                Some(e) => format!("optional({})", name(e, depth + 1)),
                None => "optional(?)".into(),
            },
            None => "?".into(),
        }
    }
    pb::TypeProto::decode(encoded).ok().map(|t| name(&t, 0))
}
