//! The operator registry, by ONNX name. Each family file provides, for each of its ops, a
//! `parse` (ONNX node at the model's opset → typed [`Op`]) and a `write` (IR node → ONNX
//! node(s) in the form of the target opset).
//!
//! Parsers validate every attribute (unknown attributes, wrong types and out-of-range values
//! are errors naming the node, op and opset) and bring attribute-like data into the newest
//! opset's input form (e.g. `Squeeze`'s `axes` attribute becomes a constant input).

use crate::error::OnnxError;
use crate::infer;
use crate::pb;
use crate::pb::attribute_proto::AttributeType;
use pannc_ir::{DType, Graph, Node, Op, Tensor, TensorType, ValueId};
use std::collections::{HashMap, HashSet};

mod constant;
mod conv_pool;
pub(crate) mod elementwise;
mod index;
mod linear;
mod logic;
mod math;
mod norm;
pub(crate) mod opaque;
mod shape;

/// Parses one ONNX node into IR nodes.
pub(crate) type ParseFn = fn(&mut ParseCtx) -> Result<(), OnnxError>;
/// Writes one IR node as ONNX node(s).
pub(crate) type WriteFn = fn(&mut WriteCtx) -> Result<(), OnnxError>;

/// One operator: the first opset at which pannc reads it, and its parser and writer.
pub(crate) struct OpDef {
    pub name: &'static str,
    /// The first default-domain opset at which the op exists (with semantics pannc reads).
    pub since: i64,
    pub parse: ParseFn,
    /// `None` for ops that import into other IR ops and are never written (e.g. `Sum`).
    pub write: Option<WriteFn>,
}

const FAMILIES: &[&[OpDef]] = &[
    conv_pool::OPS,
    linear::OPS,
    elementwise::OPS,
    math::OPS,
    logic::OPS,
    norm::OPS,
    shape::OPS,
    index::OPS,
    constant::OPS,
];

/// The registry entry for an ONNX op type of the default domain.
pub(crate) fn lookup(op_type: &str) -> Option<&'static OpDef> {
    FAMILIES
        .iter()
        .flat_map(|f| f.iter())
        .find(|d| d.name == op_type)
}

/// Names of all ops pannc reads, sorted.
pub(crate) fn supported_ops() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = FAMILIES
        .iter()
        .flat_map(|f| f.iter())
        .map(|d| d.name)
        .collect();
    v.sort_unstable();
    v
}

/// Hands out value names that are unique in a graph.
#[derive(Default)]
pub(crate) struct NameGen {
    taken: HashSet<String>,
}

impl NameGen {
    pub fn reserve(&mut self, name: &str) {
        self.taken.insert(name.to_string());
    }
    /// `base` itself if free, else `base_1`, `base_2`, ...
    pub fn fresh(&mut self, base: &str) -> String {
        if self.taken.insert(base.to_string()) {
            return base.to_string();
        }
        let mut k = 1usize;
        loop {
            let n = format!("{base}_{k}");
            if self.taken.insert(n.clone()) {
                return n;
            }
            k += 1;
        }
    }
}

/// What the importer keeps while it builds the IR graph.
pub(crate) struct ImportState {
    pub g: Graph,
    pub names: NameGen,
    /// Static types from the model's inputs, outputs and value_info, by value name.
    pub types: HashMap<String, TensorType>,
    /// Names read by some node or listed as a graph output.
    pub used: HashSet<String>,
    /// Names whose every use is as shape or index data (narrow integers may widen to i64).
    pub index_only: HashSet<String>,
    /// The limits of this import and the running total of constant data (initializers and
    /// `Constant` values are counted before nodes are parsed; parsers add what they
    /// materialise later, such as `ConstantOfShape` outputs of a constant shape).
    pub(crate) budget: crate::limits::Budget,
    /// Encoded declared types (`TypeProto`) of opaque nodes' outputs that are not dense
    /// tensors pannc can type, by value name.
    pub foreign: HashMap<String, Vec<u8>>,
    /// Where external tensor data may be read from.
    pub ext: crate::external::Source,
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Everything a parser sees of one ONNX node, plus the means to emit IR nodes for it.
pub(crate) struct ParseCtx<'a> {
    pub st: &'a mut ImportState,
    pub node: &'a pb::NodeProto,
    /// The model's default-domain opset.
    pub opset: i64,
    pub name: String,
    pub op: String,
    inputs: Vec<Option<ValueId>>,
}

fn attr_kind(a: &pb::AttributeProto) -> AttributeType {
    match AttributeType::try_from(a.r#type.unwrap_or(0)) {
        Ok(AttributeType::Undefined) | Err(_) => {
            // IR version 1 had no type field: tell by which field is set.
            if a.f.is_some() {
                AttributeType::Float
            } else if a.i.is_some() {
                AttributeType::Int
            } else if a.s.is_some() {
                AttributeType::String
            } else if a.t.is_some() {
                AttributeType::Tensor
            } else if a.g.is_some() {
                AttributeType::Graph
            } else if !a.floats.is_empty() {
                AttributeType::Floats
            } else if !a.ints.is_empty() {
                AttributeType::Ints
            } else if !a.strings.is_empty() {
                AttributeType::Strings
            } else {
                AttributeType::Undefined
            }
        }
        Ok(t) => t,
    }
}

impl<'a> ParseCtx<'a> {
    pub(crate) fn new(
        st: &'a mut ImportState,
        node: &'a pb::NodeProto,
        opset: i64,
        inputs: Vec<Option<ValueId>>,
    ) -> Self {
        ParseCtx {
            st,
            node,
            opset,
            name: node.name().to_string(),
            op: node.op_type().to_string(),
            inputs,
        }
    }

    /// An error about this node.
    pub fn err(&self, msg: impl Into<String>) -> OnnxError {
        OnnxError::BadNode {
            node: self.name.clone(),
            op: self.op.clone(),
            opset: self.opset,
            msg: msg.into(),
        }
    }

    // --- attributes -------------------------------------------------------------------------

    /// Fails on any attribute not in `allowed`, on duplicates and on references to function
    /// attributes.
    pub fn allow(&self, allowed: &[&str]) -> Result<(), OnnxError> {
        let mut seen = HashSet::new();
        for a in &self.node.attribute {
            let n = a.name();
            if !allowed.contains(&n) {
                return Err(self.err(format!(
                    "attribute '{n}' is not defined for {} at opset {} (allowed: {})",
                    self.op,
                    self.opset,
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                )));
            }
            if !seen.insert(n) {
                return Err(self.err(format!("attribute '{n}' is given twice")));
            }
            if a.ref_attr_name.as_deref().is_some_and(|r| !r.is_empty()) {
                return Err(self.err(format!("attribute '{n}' refers to a function attribute, which is only valid inside functions")));
            }
        }
        Ok(())
    }

    fn attr(
        &self,
        name: &str,
        want: AttributeType,
    ) -> Result<Option<&'a pb::AttributeProto>, OnnxError> {
        let node: &'a pb::NodeProto = self.node;
        match node.attribute.iter().find(|a| a.name() == name) {
            None => Ok(None),
            Some(a) => {
                let k = attr_kind(a);
                if k != want {
                    return Err(self.err(format!(
                        "attribute '{name}' must be {}, not {}",
                        want.as_str_name(),
                        k.as_str_name()
                    )));
                }
                Ok(Some(a))
            }
        }
    }

    pub fn has_attr(&self, name: &str) -> bool {
        self.node.attribute.iter().any(|a| a.name() == name)
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, OnnxError> {
        Ok(self.attr(name, AttributeType::Int)?.map(|a| a.i()))
    }
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, OnnxError> {
        Ok(self.int(name)?.unwrap_or(default))
    }
    /// A 0/1 flag.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, OnnxError> {
        match self.int(name)? {
            None => Ok(default),
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(self.err(format!("attribute '{name}' must be 0 or 1, not {v}"))),
        }
    }
    pub fn float(&self, name: &str) -> Result<Option<f32>, OnnxError> {
        Ok(self.attr(name, AttributeType::Float)?.map(|a| a.f()))
    }
    pub fn float_or(&self, name: &str, default: f32) -> Result<f32, OnnxError> {
        Ok(self.float(name)?.unwrap_or(default))
    }
    /// A finite float attribute.
    pub fn finite_or(&self, name: &str, default: f32) -> Result<f32, OnnxError> {
        let v = self.float_or(name, default)?;
        if !v.is_finite() {
            return Err(self.err(format!("attribute '{name}' must be finite, not {v}")));
        }
        Ok(v)
    }
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, OnnxError> {
        Ok(self
            .attr(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }
    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, OnnxError> {
        Ok(self
            .attr(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }
    pub fn string(&self, name: &str) -> Result<Option<String>, OnnxError> {
        match self.attr(name, AttributeType::String)? {
            None => Ok(None),
            Some(a) => match std::str::from_utf8(a.s()) {
                Ok(s) => Ok(Some(s.to_string())),
                Err(_) => Err(self.err(format!("attribute '{name}' is not UTF-8"))),
            },
        }
    }
    pub fn tensor_attr(&self, name: &str) -> Result<Option<&'a pb::TensorProto>, OnnxError> {
        Ok(self
            .attr(name, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref()))
    }
    /// Non-negative integers (sizes, strides, pads) from an `ints` attribute.
    pub fn usizes(&self, name: &str, min: usize) -> Result<Vec<usize>, OnnxError> {
        let v = self.ints(name)?.unwrap_or_default();
        v.iter()
            .map(|&x| match usize::try_from(x) {
                Ok(u) if u >= min => Ok(u),
                _ => Err(self.err(format!(
                    "attribute '{name}' has value {x}; each must be >= {min}"
                ))),
            })
            .collect()
    }

    // --- inputs and outputs -----------------------------------------------------------------

    pub fn n_inputs(&self) -> usize {
        self.inputs.len()
    }
    /// Checks the number of inputs (trailing empty names do not count).
    pub fn expect_inputs(&self, min: usize, max: usize) -> Result<(), OnnxError> {
        let n = self.inputs.len();
        if n < min || n > max {
            let want = if min == max {
                min.to_string()
            } else {
                format!("{min} to {max}")
            };
            return Err(self.err(format!("takes {want} inputs, has {n}")));
        }
        Ok(())
    }
    pub fn input(&self, i: usize) -> Result<ValueId, OnnxError> {
        self.opt_input(i)
            .ok_or_else(|| self.err(format!("required input {i} is missing")))
    }
    pub fn opt_input(&self, i: usize) -> Option<ValueId> {
        self.inputs.get(i).copied().flatten()
    }
    /// The constant tensor feeding input `i`, if it is a constant.
    pub fn const_input(&self, i: usize) -> Option<&Tensor> {
        self.st.g.constant(self.opt_input(i)?)
    }
    /// Output `i`'s name, if the node lists a non-empty one.
    pub fn output_name(&self, i: usize) -> Option<&'a str> {
        let node: &'a pb::NodeProto = self.node;
        node.output
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
    /// Fails if any output from index `n` on is named (pannc does not produce it).
    pub fn only_outputs(&self, n: usize, what: &str) -> Result<(), OnnxError> {
        for i in n..self.node.output.len() {
            if let Some(o) = self.output_name(i) {
                return Err(self.err(format!("output {i} ('{o}') is not supported: {what}")));
            }
        }
        Ok(())
    }
    pub fn is_used(&self, name: &str) -> bool {
        self.st.used.contains(name)
    }
    /// The element type of a value, when known.
    pub fn dtype_of(&self, v: ValueId) -> Option<DType> {
        infer::known_dtype(&self.st.g, v)
    }
    /// The rank of input `i`, from its static type or producers, or from the declared type of
    /// output `same_rank_output` when the op keeps ranks.
    pub fn rank_of(&self, v: ValueId, same_rank_output: Option<usize>) -> Option<usize> {
        infer::known_rank(&self.st.g, v).or_else(|| {
            let o = self.output_name(same_rank_output?)?;
            self.st.types.get(o).map(TensorType::rank)
        })
    }

    /// Before opset 11 axes are non-negative: a negative one (which some exporters write
    /// anyway) is normalised with the input's rank, or rejected when the rank is unknown.
    pub fn old_axis(
        &self,
        axis: i64,
        x: ValueId,
        same_rank_output: Option<usize>,
    ) -> Result<i64, OnnxError> {
        if axis >= 0 || self.opset >= 11 {
            return Ok(axis);
        }
        match self.rank_of(x, same_rank_output) {
            Some(r) if axis + r as i64 >= 0 => Ok(axis + r as i64),
            Some(r) => Err(self.err(format!("axis {axis} is out of range for rank {r}"))),
            None => Err(self.err(format!(
                "negative axis {axis} before opset 11 needs a known input rank"
            ))),
        }
    }

    fn out0(&self) -> Result<&'a str, OnnxError> {
        self.output_name(0)
            .ok_or_else(|| self.err("has no (named) output 0"))
    }

    /// Emits the node's IR op, writing ONNX output 0.
    pub fn emit(&mut self, op: Op, inputs: &[ValueId]) -> Result<ValueId, OnnxError> {
        let out = self.out0()?.to_string();
        let (_, outs) = self
            .st
            .g
            .add_node(self.name.clone(), op, inputs, std::slice::from_ref(&out))
            .map_err(|e| self.err(e.to_string()))?;
        let v = outs[0];
        if let Some(t) = self.st.types.get(&out) {
            self.st.g.value_mut(v).ty = Some(t.clone());
        }
        Ok(v)
    }

    /// Emits the node's IR op with the node's first `n` ONNX outputs (Split, the statistics
    /// of LayerNormalization), which must be named.
    pub fn emit_n(
        &mut self,
        op: Op,
        inputs: &[ValueId],
        n: usize,
    ) -> Result<Vec<ValueId>, OnnxError> {
        let mut outs = Vec::with_capacity(n);
        for i in 0..n {
            let o = self
                .output_name(i)
                .ok_or_else(|| self.err(format!("output {i} has no name")))?;
            outs.push(o.to_string());
        }
        let (_, vs) = self
            .st
            .g
            .add_node(self.name.clone(), op, inputs, &outs)
            .map_err(|e| self.err(e.to_string()))?;
        for (&v, o) in vs.iter().zip(&outs) {
            if let Some(t) = self.st.types.get(o) {
                self.st.g.value_mut(v).ty = Some(t.clone());
            }
        }
        Ok(vs)
    }

    /// Emits a `Constant` node for an ONNX `Constant`, typed from its tensor.
    pub fn emit_constant(&mut self, t: Tensor) -> Result<ValueId, OnnxError> {
        let out = self.out0()?.to_string();
        let ty = TensorType::known(t.dtype(), t.shape());
        let (_, outs) = self
            .st
            .g
            .add_node(
                self.name.clone(),
                Op::Constant(t),
                &[],
                std::slice::from_ref(&out),
            )
            .map_err(|e| self.err(e.to_string()))?;
        self.st.g.value_mut(outs[0]).ty = Some(ty);
        Ok(outs[0])
    }

    /// Emits a helper node (part of a decomposition) with a fresh output name.
    pub fn emit_tmp(
        &mut self,
        suffix: &str,
        op: Op,
        inputs: &[ValueId],
    ) -> Result<ValueId, OnnxError> {
        let base = format!("{}__{suffix}", self.out0()?);
        let out = self.st.names.fresh(&base);
        let node_name = if self.name.is_empty() {
            String::new()
        } else {
            format!("{}__{suffix}", self.name)
        };
        let (_, outs) = self
            .st
            .g
            .add_node(node_name, op, inputs, &[out])
            .map_err(|e| self.err(e.to_string()))?;
        Ok(outs[0])
    }

    /// Adds a constant (an attribute brought into input form) with a fresh name.
    pub fn constant(&mut self, suffix: &str, t: Tensor) -> Result<ValueId, OnnxError> {
        let base = format!("{}__{suffix}", self.out0()?);
        let name = self.st.names.fresh(&base);
        self.st
            .g
            .add_constant(name, t)
            .map_err(|e| self.err(e.to_string()))
    }

    /// A constant filling a gap among optional inputs (the IR has none), written back as a
    /// `Constant` node where it stands rather than as an initializer, so that a model keeps the
    /// same IR through export and re-import.
    pub fn gap_constant(&mut self, suffix: &str, t: Tensor) -> Result<ValueId, OnnxError> {
        let base = format!("{}__{suffix}", self.out0()?);
        let name = self.st.names.fresh(&base);
        let ty = TensorType::known(t.dtype(), t.shape());
        let (_, outs) = self
            .st
            .g
            .add_node("", Op::Constant(t), &[], &[name])
            .map_err(|e| self.err(e.to_string()))?;
        self.st.g.value_mut(outs[0]).ty = Some(ty);
        Ok(outs[0])
    }

    /// A constant scalar of `dtype` holding `x` (for attribute bounds and pad values).
    pub fn scalar(&mut self, suffix: &str, dtype: DType, x: f64) -> Result<ValueId, OnnxError> {
        self.constant(suffix, Tensor::scalar_of(dtype, x))
    }

    /// A 1-D i64 constant.
    pub fn i64s(&mut self, suffix: &str, v: Vec<i64>) -> Result<ValueId, OnnxError> {
        let n = v.len();
        let t = Tensor::from_i64(&[n], v).ok_or_else(|| self.err("internal: bad i64 constant"))?;
        self.constant(suffix, t)
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// One IR node being written at the target opset.
pub(crate) struct WriteCtx<'a> {
    pub g: &'a Graph,
    pub node: &'a Node,
    pub opset: i64,
    pub names: &'a mut NameGen,
    /// ONNX nodes written for this IR node, in order.
    pub nodes: Vec<pb::NodeProto>,
    /// Initializers this node needs beyond the IR's constants (decompositions).
    pub inits: Vec<pb::TensorProto>,
}

impl<'a> WriteCtx<'a> {
    pub(crate) fn new(g: &'a Graph, node: &'a Node, opset: i64, names: &'a mut NameGen) -> Self {
        WriteCtx {
            g,
            node,
            opset,
            names,
            nodes: Vec::new(),
            inits: Vec::new(),
        }
    }

    pub fn err(&self, msg: impl Into<String>) -> OnnxError {
        OnnxError::Export {
            node: self.node.name.clone(),
            op: self.node.op.name().to_string(),
            opset: self.opset,
            msg: msg.into(),
        }
    }
    pub fn n_inputs(&self) -> usize {
        self.node.inputs().len()
    }
    pub fn in_name(&self, i: usize) -> String {
        self.node
            .inputs()
            .get(i)
            .map(|&v| self.g.value(v).name.clone())
            .unwrap_or_default()
    }
    pub fn in_names(&self) -> Vec<String> {
        self.node
            .inputs()
            .iter()
            .map(|&v| self.g.value(v).name.clone())
            .collect()
    }
    pub fn out_names(&self) -> Vec<String> {
        self.node
            .outputs()
            .iter()
            .map(|&v| self.g.value(v).name.clone())
            .collect()
    }
    /// The constant tensor feeding input `i`.
    pub fn in_const(&self, i: usize) -> Option<&'a Tensor> {
        let g: &'a Graph = self.g;
        g.constant(*self.node.inputs().get(i)?)
    }
    /// Input `i` as a constant, or an error saying the target opset needs it constant.
    pub fn need_const(&self, i: usize, what: &str) -> Result<&'a Tensor, OnnxError> {
        self.in_const(i).ok_or_else(|| {
            self.err(format!(
                "{what} (input {i}) must be a constant to be written as an attribute at this opset"
            ))
        })
    }
    pub fn in_dtype(&self, i: usize) -> Option<DType> {
        infer::known_dtype(self.g, *self.node.inputs().get(i)?)
    }
    pub fn in_rank(&self, i: usize) -> Option<usize> {
        let v = *self.node.inputs().get(i)?;
        infer::known_rank(self.g, v).or_else(|| {
            // ops that keep ranks: the output's type tells too
            let o = *self.node.outputs().first()?;
            if self.node.op.is_unary_elementwise()
                || matches!(self.node.op, Op::Softmax { .. } | Op::LogSoftmax { .. })
            {
                infer::known_rank(self.g, o)
            } else {
                None
            }
        })
    }

    /// Writes `op_type` with the IR node's name and outputs.
    pub fn push(&mut self, op_type: &str, inputs: Vec<String>, attrs: Vec<pb::AttributeProto>) {
        let outputs = self.out_names();
        self.nodes
            .push(make_node(op_type, &self.node.name, inputs, outputs, attrs));
    }
    /// Writes a helper node with a fresh output name, returned.
    pub fn push_tmp(
        &mut self,
        suffix: &str,
        op_type: &str,
        inputs: Vec<String>,
        attrs: Vec<pb::AttributeProto>,
    ) -> String {
        let base = format!(
            "{}__{suffix}",
            self.out_names().first().cloned().unwrap_or_default()
        );
        let out = self.names.fresh(&base);
        let name = if self.node.name.is_empty() {
            String::new()
        } else {
            format!("{}__{suffix}", self.node.name)
        };
        self.nodes
            .push(make_node(op_type, &name, inputs, vec![out.clone()], attrs));
        out
    }
    /// Adds an initializer with a fresh name, returned.
    pub fn add_init(&mut self, suffix: &str, t: &Tensor) -> String {
        let base = format!(
            "{}__{suffix}",
            self.out_names().first().cloned().unwrap_or_default()
        );
        let name = self.names.fresh(&base);
        self.inits.push(crate::tensor::tensor_to_proto(&name, t));
        name
    }
}

pub(crate) fn make_node(
    op_type: &str,
    name: &str,
    input: Vec<String>,
    output: Vec<String>,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        input,
        output,
        name: if name.is_empty() {
            None
        } else {
            Some(name.to_string())
        },
        op_type: Some(op_type.to_string()),
        attribute,
        ..Default::default()
    }
}

fn attr_base(name: &str, t: AttributeType) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(t as i32),
        ..Default::default()
    }
}
pub(crate) fn a_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        i: Some(v),
        ..attr_base(name, AttributeType::Int)
    }
}
pub(crate) fn a_ints(name: &str, v: impl IntoIterator<Item = i64>) -> pb::AttributeProto {
    pb::AttributeProto {
        ints: v.into_iter().collect(),
        ..attr_base(name, AttributeType::Ints)
    }
}
pub(crate) fn a_usizes(name: &str, v: &[usize]) -> pb::AttributeProto {
    a_ints(name, v.iter().map(|&x| x as i64))
}
pub(crate) fn a_float(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        f: Some(v),
        ..attr_base(name, AttributeType::Float)
    }
}
#[cfg(test)]
pub(crate) fn a_floats(name: &str, v: &[f32]) -> pb::AttributeProto {
    pb::AttributeProto {
        floats: v.to_vec(),
        ..attr_base(name, AttributeType::Floats)
    }
}
pub(crate) fn a_str(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        ..attr_base(name, AttributeType::String)
    }
}
pub(crate) fn a_tensor(name: &str, t: &Tensor) -> pb::AttributeProto {
    pb::AttributeProto {
        t: Some(crate::tensor::tensor_to_proto("", t)),
        ..attr_base(name, AttributeType::Tensor)
    }
}

/// A scalar constant's value as f64, if `t` holds exactly one element.
pub(crate) fn scalar_value(t: &Tensor) -> Option<f64> {
    if t.len() == 1 {
        t.to_f64_vec().first().copied()
    } else {
        None
    }
}
