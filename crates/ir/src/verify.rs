//! The verifier: checks a graph's structural invariants and collects every violation.

use crate::graph::{Graph, Producer};
use crate::op::Op;
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
pub fn verify_form(g: &Graph, form: Form) -> Vec<VerifyError> {
    let mut errs = verify(g);
    if form == Form::Imported {
        return errs;
    }
    for id in g.node_ids() {
        let node = g.node(id);
        let bad = node.op.is_nonlinear()
            || matches!(node.op, Op::Opaque(_))
            || (form == Form::Lowered && matches!(node.op, Op::Poly(_)));
        if bad {
            errs.push(VerifyError {
                node: node.name.clone(),
                message: format!("{} is not allowed in {form} form", node.op.name()),
            });
        }
    }
    errs
}
