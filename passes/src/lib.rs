//! # pannc passes
//!
//! Every transform of the graph is a [`Pass`]: it has a name (used by `--passes` and
//! `--print-after`), a one-line summary, and a `run` that edits the graph in place and says
//! whether anything changed. Passes do no I/O. Analyses (facts computed about a graph, such
//! as types) live apart from transforms; a pass that needs types recomputes them with
//! [`pannc_interp::infer_types`] when it has changed the graph.
//!
//! Named pipelines ([`Pipeline::cleanup`]) run passes in order and can hand the graph to a
//! hook after each pass (for printing or for verifying in tests).

mod bn;
mod cleanup;
mod fold;
// mod recognize; (needs Op::Silu; wired in with the PANN pipeline)
mod util;

pub use cleanup::{Dce, RemoveIdentity};
pub use bn::FoldBatchNorm;
pub use fold::ConstFold;


use pannc_ir::Graph;

/// Errors from a pass; each names the pass and the node it failed on.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("pass '{pass}': node '{node}' ({op}): {message}")]
    Node { pass: &'static str, node: String, op: &'static str, message: String },
    #[error("pass '{pass}': {message}")]
    Graph { pass: &'static str, message: String },
    #[error("after pass '{pass}' the graph is invalid: {errors}")]
    Verify { pass: &'static str, errors: String },
}

/// A graph transform.
pub trait Pass {
    /// Short kebab-case name, as used on the command line.
    fn name(&self) -> &'static str;
    /// One line saying what the pass guarantees.
    fn summary(&self) -> &'static str;
    /// Transforms `g`; returns whether it changed anything.
    fn run(&self, g: &mut Graph) -> Result<bool, PassError>;
}

/// An ordered list of passes.
pub struct Pipeline {
    passes: Vec<Box<dyn Pass>>,
}

impl Pipeline {
    pub fn new(passes: Vec<Box<dyn Pass>>) -> Self {
        Pipeline { passes }
    }

    /// Canonicalisation run right after import: folds constant subgraphs (including the
    /// Shape/Gather/Concat chains exporters emit around reshapes), drops Identity/Dropout,
    /// removes dead nodes, and infers types.
    pub fn cleanup() -> Self {
        Pipeline::new(vec![Box::new(RemoveIdentity), Box::new(ConstFold), Box::new(Dce)])
    }

    /// Names of the passes, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Runs every pass, calling `after(pass_name, graph)` after each. Types are re-inferred
    /// after every pass that changed the graph.
    pub fn run_with(&self, g: &mut Graph, mut after: impl FnMut(&'static str, &Graph)) -> Result<(), PassError> {
        for p in &self.passes {
            let changed = p.run(g)?;
            if changed {
                pannc_interp::infer_types(g).map_err(|e| PassError::Graph { pass: p.name(), message: e.to_string() })?;
            }
            after(p.name(), g);
        }
        Ok(())
    }

    /// Runs every pass and verifies the graph after each (as tests do).
    pub fn run_verified(&self, g: &mut Graph) -> Result<(), PassError> {
        let mut failure = None;
        self.run_with(g, |name, g| {
            let errs = pannc_ir::verify(g);
            if failure.is_none() && !errs.is_empty() {
                let errors = errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
                failure = Some(PassError::Verify { pass: name, errors });
            }
        })?;
        failure.map_or(Ok(()), Err)
    }

    pub fn run(&self, g: &mut Graph) -> Result<(), PassError> {
        self.run_with(g, |_, _| {})
    }
}
