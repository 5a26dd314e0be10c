//! Nodes kept without interpretation ([`pannc_ir::Opaque`]): the `ai.onnx.ml` operators
//! scikit-learn exports append after the logits (`ZipMap`, `ArrayFeatureExtractor`,
//! `Normalizer`, `LabelEncoder`, ...), and initializers of element types pannc does not read
//! (string class labels) when only such nodes use them. They are stored as their encoded
//! `NodeProto` and written back verbatim, with the graph's names for their inputs and outputs.

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

/// The declared non-tensor type of output `port` of an opaque node, if it has one.
pub(crate) fn foreign_type(op: &Op, port: usize) -> Option<pb::TypeProto> {
    let Op::Opaque(o) = op else { return None };
    let bytes = o.foreign_types.get(port)?.as_ref()?;
    pb::TypeProto::decode(bytes.as_slice()).ok()
}
