//! The interpreter's error type.

use pannc_ir::Op;

/// Everything that can go wrong while inferring types or evaluating a graph. Messages name
/// the node (when known), the op and the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InterpError {
    /// A problem with one node of a graph.
    #[error("node '{node}' ({op}): {msg}")]
    Node {
        node: String,
        op: &'static str,
        msg: String,
    },
    /// A problem evaluating one op outside of a graph (see [`crate::eval_op`]).
    #[error("{op}: {msg}")]
    Op { op: &'static str, msg: String },
    /// A graph input does not match its declared type, or is missing.
    #[error("graph input {index} ('{name}'): {msg}")]
    Input {
        index: usize,
        name: String,
        msg: String,
    },
    /// A problem with the graph as a whole (cycles, missing values, wrong input count).
    #[error("graph '{graph}': {msg}")]
    Graph { graph: String, msg: String },
}

impl InterpError {
    /// Attaches a node name to an op-level error.
    pub fn at_node(self, node: &str) -> InterpError {
        match self {
            InterpError::Op { op, msg } => InterpError::Node {
                node: node.to_string(),
                op,
                msg,
            },
            e => e,
        }
    }
}

/// Builds an op-level error.
pub(crate) fn op_err(op: &Op, msg: impl Into<String>) -> InterpError {
    InterpError::Op {
        op: op.name(),
        msg: msg.into(),
    }
}

/// `return Err(op_err(op, format!(...)))`.
macro_rules! bail {
    ($op:expr, $($arg:tt)*) => {
        return Err($crate::error::op_err($op, format!($($arg)*)))
    };
}
pub(crate) use bail;
