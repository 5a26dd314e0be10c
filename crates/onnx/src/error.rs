//! Errors of import and export. Every message names what is wrong and where: the node (name
//! and op type), the opset, the tensor or value.

use crate::limits::human_bytes;
use std::fmt;

/// One node whose operator pannc cannot import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The ONNX operator type, e.g. `Einsum`.
    pub op_type: String,
    /// The node's name (may be empty in the model).
    pub node: String,
    /// The node's operator domain (`""` is the default ONNX domain).
    pub domain: String,
    /// The opset version the model imports for that domain, if it imports one.
    pub opset: Option<i64>,
    /// Why: not implemented, not defined at this opset, or a non-default domain.
    pub reason: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = if self.domain.is_empty() {
            "ai.onnx"
        } else {
            &self.domain
        };
        let opset = match self.opset {
            Some(v) => v.to_string(),
            None => "none".into(),
        };
        write!(
            f,
            "{} (node '{}', domain {}, opset {}): {}",
            self.op_type, self.node, domain, opset, self.reason
        )
    }
}

/// Unsupported nodes of one op type (and domain and reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedGroup {
    pub op_type: String,
    /// `""` for the default ONNX domain.
    pub domain: String,
    /// The opset version the model imports for that domain.
    pub opset: Option<i64>,
    pub count: usize,
    /// The name of the first such node in the file.
    pub first_node: String,
    pub reason: String,
}

impl fmt::Display for UnsupportedGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.domain.is_empty() {
            write!(f, "{}.", self.domain)?;
        }
        let first = if self.first_node.is_empty() {
            "an unnamed node".to_string()
        } else {
            format!("'{}'", self.first_node)
        };
        write!(
            f,
            "{} ×{} (first: {first}; {})",
            self.op_type, self.count, self.reason
        )
    }
}

/// Groups unsupported nodes by op type, domain and reason, in order of first occurrence.
pub fn group_unsupported(v: &[Unsupported]) -> Vec<UnsupportedGroup> {
    let mut groups: Vec<UnsupportedGroup> = Vec::new();
    for u in v {
        match groups
            .iter_mut()
            .find(|g| g.op_type == u.op_type && g.domain == u.domain && g.reason == u.reason)
        {
            Some(g) => g.count += 1,
            None => groups.push(UnsupportedGroup {
                op_type: u.op_type.clone(),
                domain: u.domain.clone(),
                opset: u.opset,
                count: 1,
                first_node: u.node.clone(),
                reason: u.reason.clone(),
            }),
        }
    }
    groups
}

fn list_unsupported(v: &[Unsupported]) -> String {
    let items: Vec<String> = group_unsupported(v).iter().map(|g| g.to_string()).collect();
    items.join(", ")
}

/// Everything that can go wrong reading or writing ONNX.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnnxError {
    /// The bytes are not a protobuf message of the expected kind (truncated, random, ...).
    #[error("cannot decode {what}: {msg}")]
    Decode { what: &'static str, msg: String },
    #[error("the model has no graph")]
    MissingGraph,
    #[error("the model imports no opset of the default ONNX domain")]
    MissingOpset,
    #[error("opset {opset} of the default ONNX domain is not supported (pannc reads opsets {min}..={max})")]
    UnsupportedOpset { opset: i64, min: i64, max: i64 },
    /// Every node pannc cannot import, all at once; the message groups them by op type.
    #[error("{} unsupported node(s): {}", .0.len(), list_unsupported(.0))]
    Unsupported(Vec<Unsupported>),
    #[error(
        "node '{node}' ({op}) reads '{input}', which no graph input, initializer or node defines"
    )]
    UndefinedInput {
        node: String,
        op: String,
        input: String,
    },
    #[error("graph output '{0}' is not defined by any graph input, initializer or node")]
    UndefinedOutput(String),
    #[error("the graph has a cycle through node '{node}' ({op})")]
    Cycle { node: String, op: String },
    #[error("value name '{name}' is defined twice: {first} and {second}")]
    DuplicateName {
        name: String,
        first: String,
        second: String,
    },
    #[error("tensor '{tensor}': dimension {index} is negative ({value})")]
    NegativeDim {
        tensor: String,
        index: usize,
        value: i64,
    },
    #[error("tensor '{tensor}': the element count of shape {dims:?} overflows")]
    ShapeOverflow { tensor: String, dims: Vec<i64> },
    #[error(
        "tensor '{tensor}': shape {dims:?} of {dtype} needs {bytes} bytes ({}), more than the per-tensor limit of {limit} bytes ({})",
        human_bytes(*.bytes),
        human_bytes(*.limit as u128)
    )]
    TooLarge {
        tensor: String,
        dims: Vec<i64>,
        dtype: String,
        bytes: u128,
        limit: u64,
    },
    /// The tensor that brings the model's constant data over the total limit.
    #[error(
        "tensor '{tensor}': shape {dims:?} of {dtype} needs {bytes} bytes ({}), which brings the model's constant data to {total} bytes ({}), more than the total limit of {limit} bytes ({})",
        human_bytes(*.bytes),
        human_bytes(*.total),
        human_bytes(*.limit as u128)
    )]
    TotalTooLarge {
        tensor: String,
        dims: Vec<i64>,
        dtype: String,
        bytes: u128,
        total: u128,
        limit: u64,
    },
    /// A declared value type (graph input/output, value_info) whose known dimensions alone
    /// need more than the per-tensor limit (`bytes` is `None` when their product overflows).
    #[error(
        "value '{value}': declared shape [{shape}] of {dtype} {}, more than the per-tensor limit of {limit} bytes ({})",
        match .bytes { Some(b) => format!("needs {b} bytes ({})", human_bytes(*b)), None => "has more elements than 64 bits can count".to_string() },
        human_bytes(*.limit as u128)
    )]
    ValueTooLarge {
        value: String,
        shape: String,
        dtype: String,
        bytes: Option<u128>,
        limit: u64,
    },
    #[error("{what} has rank {rank}, more than the limit of {limit} dimensions")]
    RankTooLarge {
        what: String,
        rank: usize,
        limit: usize,
    },
    #[error("tensor '{tensor}': shape {dims:?} of {dtype} promises {expected} {unit}, but the data holds {actual}")]
    DataSize {
        tensor: String,
        dims: Vec<i64>,
        dtype: String,
        expected: usize,
        actual: usize,
        unit: &'static str,
    },
    /// External tensor data that cannot be read safely (see the `external` module).
    #[error("tensor '{tensor}': external data: {msg}")]
    External { tensor: String, msg: String },
    /// A file pannc was asked to read or write.
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    #[error(
        "{what} has element type {dtype}, which pannc does not support (f32, f64, i64, bool{extra})"
    )]
    UnsupportedDType {
        what: String,
        dtype: String,
        extra: &'static str,
    },
    #[error("value '{value}': {msg}")]
    BadType { value: String, msg: String },
    #[error("node '{node}' ({op}, opset {opset}): {msg}")]
    BadNode {
        node: String,
        op: String,
        opset: i64,
        msg: String,
    },
    #[error("model: {0}")]
    BadModel(String),
    #[error("export of node '{node}' ({op}) at opset {opset}: {msg}")]
    Export {
        node: String,
        op: String,
        opset: i64,
        msg: String,
    },
    #[error("export: {0}")]
    ExportGraph(String),
}

impl OnnxError {
    /// A short, stable name of the error kind (for tools and tests).
    pub fn kind(&self) -> &'static str {
        match self {
            OnnxError::Decode { .. } => "decode",
            OnnxError::MissingGraph => "missing-graph",
            OnnxError::MissingOpset => "missing-opset",
            OnnxError::UnsupportedOpset { .. } => "unsupported-opset",
            OnnxError::Unsupported(_) => "unsupported-op",
            OnnxError::UndefinedInput { .. } => "undefined-input",
            OnnxError::UndefinedOutput(_) => "undefined-output",
            OnnxError::Cycle { .. } => "cycle",
            OnnxError::DuplicateName { .. } => "duplicate-name",
            OnnxError::NegativeDim { .. } => "negative-dim",
            OnnxError::ShapeOverflow { .. } => "shape-overflow",
            OnnxError::TooLarge { .. } => "too-large",
            OnnxError::TotalTooLarge { .. } => "total-too-large",
            OnnxError::ValueTooLarge { .. } => "value-too-large",
            OnnxError::RankTooLarge { .. } => "rank-too-large",
            OnnxError::DataSize { .. } => "data-size",
            OnnxError::External { .. } => "external-data",
            OnnxError::Io { .. } => "io",
            OnnxError::UnsupportedDType { .. } => "unsupported-dtype",
            OnnxError::BadType { .. } => "bad-type",
            OnnxError::BadNode { .. } => "bad-node",
            OnnxError::BadModel(_) => "bad-model",
            OnnxError::Export { .. } => "export",
            OnnxError::ExportGraph(_) => "export",
        }
    }
}
