//! The verifier: checks a graph's structural invariants and collects every violation.

use crate::graph::{Graph, Producer, ValueId};
use crate::op::Op;
use crate::tensor::DType;
use std::fmt;

/// One invariant violation, naming the node (or value) concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    pub node: String,
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node '{}': {}", self.node, self.message)
    }
}

/// Checks the graph and returns all violations found (empty when valid):
/// acyclicity, input arity per op, Split's output count, that every referenced value exists and is
/// produced by the node it claims, that graph outputs exist, and that constant values'
/// recorded types match their tensors.
pub fn verify(g: &Graph) -> Vec<VerifyError> {
    let mut errs = Vec::new();
    let mut err = |node: &str, message: String| {
        errs.push(VerifyError {
            node: node.to_string(),
            message,
        })
    };
    if let Err(e) = g.topo_order() {
        err("<graph>", e.to_string());
    }
    for id in g.node_ids() {
        let node = g.node(id);
        let (lo, hi) = node.op.input_arity();
        let n = node.inputs().len();
        if n < lo || n > hi {
            let want = if lo == hi {
                lo.to_string()
            } else if hi == usize::MAX {
                format!("at least {lo}")
            } else {
                format!("{lo} to {hi}")
            };
            err(
                &node.name,
                format!("{} takes {} inputs, has {}", node.op.name(), want, n),
            );
        }
        for &v in node.inputs() {
            if g.try_value(v).is_err() {
                err(&node.name, format!("reads missing value {v}"));
            }
        }
        for (port, &v) in node.outputs().iter().enumerate() {
            match g.try_value(v) {
                Ok(val) if val.producer() == (Producer::Node { node: id, port }) => {}
                Ok(_) => err(
                    &node.name,
                    format!("output {port} ({v}) names another producer"),
                ),
                Err(_) => err(&node.name, format!("output {port} ({v}) is missing")),
            }
        }
        if node.outputs().is_empty() {
            err(&node.name, "has no outputs".into());
        }
        if let Op::Split { num_outputs, .. } = &node.op {
            if node.outputs().len() != *num_outputs {
                err(
                    &node.name,
                    format!(
                        "Split has num_outputs={num_outputs} but {} outputs",
                        node.outputs().len()
                    ),
                );
            }
        }
        if let Op::Constant(t) = &node.op {
            if let Some(ty) = node
                .outputs()
                .first()
                .and_then(|&v| g.try_value(v).ok())
                .and_then(|v| v.ty.as_ref())
            {
                if ty.dtype != t.dtype() || ty.known_shape().as_deref() != Some(t.shape()) {
                    err(
                        &node.name,
                        format!("constant typed {ty} but holds {}", t.summary()),
                    );
                }
            }
        }
    }
    for &v in g.outputs() {
        if g.try_value(v).is_err() {
            err("<graph>", format!("output {v} is missing"));
        }
    }
    for &v in g.inputs() {
        if let Ok(val) = g.try_value(v) {
            if val.producer() != Producer::Input {
                err("<graph>", format!("input {v} has a producer"));
            }
        }
    }
    errs
}

/// The forms a graph takes on its way through pannc; each is a promise the next stage relies
/// on (see the IR spec in the crate doc).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Form {
    /// What an importer produced: the structural invariants of [`verify`] hold.
    Imported,
    /// A PANN: additionally, no nonlinearity ([`Op::is_nonlinear`]) is left; every one became
    /// a [`Op::Poly`] or linear ops. Simulation and the CKKS backends take this form.
    Pann,
    /// A PANN whose polynomials are lowered to Mul/Add (no `Poly` left): what ONNX runtimes run.
    Lowered,
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Form::Imported => "imported",
            Form::Pann => "PANN",
            Form::Lowered => "lowered",
        })
    }
}

/// [`verify`], plus the promises of `form`; returns every violation.
///
/// PANN and lowered form promise that every operation on a value computed from the graph's
/// inputs (what a CKKS backend holds encrypted; see [`computed_values`]) is one CKKS can
/// evaluate: Add/Sub/Mul/Neg, MatMul/Gemm/Conv, the linear reductions and pools, `Poly`
/// (PANN form only), and data movement whose indices, shapes and conditions are plaintext;
/// `Div` only by a plaintext divisor, `Pow` only by a constant non-negative integer
/// exponent. Shape and Size read metadata only. Nodes whose inputs are all plaintext
/// (constants, shapes) are the server's own arithmetic and are not restricted.
pub fn verify_form(g: &Graph, form: Form) -> Vec<VerifyError> {
    let mut errs = verify(g);
    if form == Form::Imported || !errs.is_empty() {
        return errs;
    }
    let computed = computed_values(g);
    for id in g.topo_order().unwrap_or_default() {
        let node = g.node(id);
        if matches!(node.op, Op::Opaque(_)) {
            // Opaque nodes (kept ai.onnx.ml tails) have no evaluation at all.
            errs.push(VerifyError {
                node: node.name.clone(),
                message: format!("{} is not allowed in {form} form", node.op.name()),
            });
            continue;
        }
        let enc = |k: usize| node.inputs().get(k).is_some_and(|v| computed.contains(v));
        if !(0..node.inputs().len()).any(enc) {
            continue;
        }
        let why = match &node.op {
            Op::Poly(_) if form == Form::Lowered => {
                Some(format!("Poly is not allowed in {form} form"))
            }
            op if ckks_evaluable(op) => None,
            Op::Div if enc(1) => Some("Div by a computed value".to_string()),
            Op::Div => None,
            Op::Pow => match g.constant(node.inputs()[1]) {
                Some(t)
                    if !enc(1)
                        && t.to_f64_vec()
                            .iter()
                            .all(|e| *e >= 0.0 && e.fract() == 0.0 && *e <= 64.0) =>
                {
                    None
                }
                _ => Some("Pow whose exponent is not a constant non-negative integer".to_string()),
            },
            Op::Reshape { .. }
            | Op::Expand
            | Op::Tile
            | Op::Gather { .. }
            | Op::GatherND { .. }
            | Op::Slice
            | Op::Split { .. }
            | Op::Pad { .. }
            | Op::Squeeze
            | Op::Unsqueeze
            | Op::ReduceMean { .. }
            | Op::ReduceSum { .. }
            | Op::BatchNormalization { .. } => {
                let bad = (1..node.inputs().len()).find(|&k| enc(k));
                bad.map(|k| {
                    format!(
                        "{} whose input {k} (shape, indices or parameters) is computed",
                        node.op.name()
                    )
                })
            }
            Op::Where if enc(0) => Some("Where on a computed condition".to_string()),
            Op::Where => None,
            Op::Cast { to } if !matches!(to, DType::F32 | DType::F64) => {
                Some(format!("Cast of a computed value to {to}"))
            }
            Op::Cast { .. } => None,
            _ => Some(format!("{} of a computed value", node.op.name())),
        };
        if let Some(message) = why {
            let message = if message.contains("not allowed") {
                message
            } else {
                format!("{message} is not allowed in {form} form (not CKKS-evaluable)")
            };
            errs.push(VerifyError {
                node: node.name.clone(),
                message,
            });
        }
    }
    errs
}

/// Ops CKKS evaluates on ciphertexts whatever their operands (data movement here takes its
/// layout from attributes only).
fn ckks_evaluable(op: &Op) -> bool {
    matches!(
        op,
        Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Neg
            | Op::MatMul
            | Op::Gemm { .. }
            | Op::Conv { .. }
            | Op::Poly(_)
            | Op::AveragePool { .. }
            | Op::GlobalAveragePool
            | Op::Flatten { .. }
            | Op::Transpose { .. }
            | Op::Concat { .. }
            | Op::Identity
            | Op::Dropout
            | Op::Shape { .. }
            | Op::Size
    )
}

/// The values computed from the graph's inputs (in a CKKS deployment: the encrypted ones).
/// `Shape` and `Size` read metadata only, so what is computed from them is plaintext.
pub fn computed_values(g: &Graph) -> std::collections::HashSet<ValueId> {
    let mut out: std::collections::HashSet<ValueId> = g.inputs().iter().copied().collect();
    for id in g.topo_order().unwrap_or_default() {
        let node = g.node(id);
        if matches!(node.op, Op::Shape { .. } | Op::Size) {
            continue;
        }
        if node.inputs().iter().any(|v| out.contains(v)) {
            out.extend(node.outputs().iter().copied());
        }
    }
    out
}
