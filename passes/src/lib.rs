//! # pannc passes
//!
//! Every transform of the graph is a [`Pass`]: it has a name (used by `--passes` and
//! `--print-after`), a one-line summary, and a `run` that edits the graph in place and says
//! whether anything changed. Passes do no I/O: what they need from outside (calibration
//! data, the approximation policy) and what they report travels in a [`Context`]. Analyses
//! (facts computed about a graph: types, calibrated ranges) live apart from transforms, in
//! [`analysis`] and in `pannc_interp::infer_types`.
//!
//! Named pipelines ([`Pipeline::cleanup`], [`Pipeline::recognized`], [`Pipeline::pann`]) run
//! passes in order and can hand the graph to a hook after each pass (for printing or for
//! verifying). Which pipeline runs when, with what checks between, is the compile driver's
//! business (`pannc-driver`); this crate holds transforms and analyses only.

pub mod analysis;
mod approximate;
mod approximate_interval;
mod bias_correct;
mod build;
mod const_fold;
mod context;
mod dce;
mod decompose_layernorm;
mod decompose_softmax;
mod fold_batchnorm;
mod lower_maxpool;
mod lower_poly;
mod range_control;
mod recognize;
mod remove_identity;
pub mod shaping;
mod split_tail;
mod util;

pub use approximate::Approximate;
pub use bias_correct::BiasCorrect;
pub use const_fold::ConstFold;
pub use context::{
    ActivationReport, CalibError, Choice, ChoiceError, Context, Policy, Report, TransformerPolicy,
};
pub use dce::Dce;
pub use decompose_layernorm::DecomposeLayerNorm;
pub use decompose_softmax::DecomposeSoftmax;
pub use fold_batchnorm::FoldBatchNorm;
pub use lower_maxpool::LowerMaxPool;
pub use lower_poly::LowerPoly;
pub use range_control::RangeControl;
pub use recognize::Recognize;
pub use remove_identity::RemoveIdentity;
pub use split_tail::SplitTail;

use pannc_ir::Graph;

/// Errors from a pass; each names the pass and the node it failed on.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("pass '{pass}': node '{node}' ({op}): {message}")]
    Node {
        pass: &'static str,
        node: String,
        op: &'static str,
        message: String,
    },
    #[error("pass '{pass}': {message}")]
    Graph { pass: &'static str, message: String },
    #[error("after pass '{pass}' the graph is invalid: {errors}")]
    Verify { pass: &'static str, errors: String },
    #[error("unknown pass '{name}' (known: {known})")]
    UnknownPass { name: String, known: String },
}

/// A graph transform.
pub trait Pass {
    /// Short kebab-case name, as used on the command line.
    fn name(&self) -> &'static str;
    /// One line saying what the pass guarantees.
    fn summary(&self) -> &'static str;
    /// Transforms `g`; returns whether it changed anything.
    fn run(&self, g: &mut Graph, cx: &mut Context) -> Result<bool, PassError>;
}

/// An ordered list of passes.
pub struct Pipeline {
    passes: Vec<Box<dyn Pass>>,
}

/// Every pass pannc has, in pipeline order, for `--passes` and `--help`.
pub fn all_passes() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(RemoveIdentity),
        Box::new(ConstFold),
        Box::new(Dce),
        Box::new(Recognize),
        Box::new(SplitTail),
        Box::new(FoldBatchNorm),
        Box::new(LowerMaxPool),
        Box::new(DecomposeLayerNorm),
        Box::new(DecomposeSoftmax),
        Box::new(Approximate),
        Box::new(BiasCorrect),
        Box::new(RangeControl),
        Box::new(LowerPoly),
    ]
}

impl Pipeline {
    pub fn new(passes: Vec<Box<dyn Pass>>) -> Self {
        Pipeline { passes }
    }

    /// The passes named in `names` (comma-separated on the command line), in that order.
    pub fn from_names(names: &[&str]) -> Result<Self, PassError> {
        let mut out = Vec::new();
        for n in names {
            let p = all_passes()
                .into_iter()
                .find(|p| p.name() == *n)
                .ok_or_else(|| {
                    let known: Vec<&str> = all_passes().iter().map(|p| p.name()).collect();
                    PassError::UnknownPass {
                        name: n.to_string(),
                        known: known.join(", "),
                    }
                })?;
            out.push(p);
        }
        Ok(Pipeline::new(out))
    }

    /// Canonicalisation run right after import: folds constant subgraphs (including the
    /// Shape/Gather/Concat chains exporters emit around reshapes), drops Identity/Dropout,
    /// removes dead nodes, and infers types.
    pub fn cleanup() -> Self {
        Pipeline::new(vec![
            Box::new(RemoveIdentity),
            Box::new(ConstFold),
            Box::new(Dce),
        ])
    }

    /// The PANN pipeline: clean up, recognise exported activation subgraphs, fold
    /// batch-norm, drop a final softmax, lower max-pool to a ReLU tree, decompose LayerNorm
    /// and (attention) Softmax into products and elementwise Pow/Exp/Reciprocal, replace every
    /// nonlinearity by a polynomial on its calibrated range, and fold the range scaling into
    /// the neighbouring linear layers. Polynomials stay `Poly` nodes (simulation, circuits);
    /// [`LowerPoly`] turns them into Mul/Add for ONNX.
    pub fn pann() -> Self {
        let mut passes = Self::pann_prefix().passes;
        passes.extend(Self::pann_approximation().passes);
        Pipeline::new(passes)
    }

    /// The passes of [`Pipeline::pann`] before `approximate`: everything that does not depend
    /// on the approximation policy (but `keep_softmax`), so a driver can run them once for
    /// many compilations of one backbone.
    pub fn pann_prefix() -> Self {
        Pipeline::new(vec![
            Box::new(RemoveIdentity),
            Box::new(ConstFold),
            Box::new(Recognize),
            Box::new(SplitTail),
            Box::new(Dce),
            Box::new(FoldBatchNorm),
            Box::new(LowerMaxPool),
        ])
    }

    /// The rest of [`Pipeline::pann`]: the transformer decompositions (their squarings and
    /// margins follow the policy), then `approximate` on.
    pub fn pann_approximation() -> Self {
        Pipeline::new(vec![
            Box::new(DecomposeLayerNorm),
            Box::new(DecomposeSoftmax),
            Box::new(Approximate),
            Box::new(BiasCorrect),
            Box::new(RangeControl),
            Box::new(Dce),
        ])
    }

    /// [`Pipeline::pann`] without `range-control`: every `Poly` still reads its activation's
    /// own input (`in_scale = 1/B`), so each polynomial can be evaluated on backbone values
    /// (what the lab's sensitivity runs inject). Derived from `pann()`, so the two never drift.
    pub fn pann_unscaled() -> Self {
        let mut p = Self::pann();
        p.passes.retain(|pass| pass.name() != "range-control");
        p
    }

    /// Names of the passes, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Canonicalisation plus recognition of exported activation subgraphs (GELU's Erf form,
    /// SiLU as x·Sigmoid(x)), so that each activation is one node: what the accuracy lab
    /// perturbs and measures.
    pub fn recognized() -> Self {
        Pipeline::new(vec![
            Box::new(RemoveIdentity),
            Box::new(ConstFold),
            Box::new(Recognize),
            Box::new(Dce),
        ])
    }

    /// Runs every pass, calling `after(pass_name, graph)` after each. Types are re-inferred
    /// after every pass that changed the graph.
    pub fn run_with(
        &self,
        g: &mut Graph,
        cx: &mut Context,
        mut after: impl FnMut(&'static str, &Graph),
    ) -> Result<(), PassError> {
        for p in &self.passes {
            let changed = p.run(g, cx)?;
            if changed {
                pannc_interp::infer_types(g).map_err(|e| PassError::Graph {
                    pass: p.name(),
                    message: e.to_string(),
                })?;
            }
            after(p.name(), g);
        }
        Ok(())
    }

    /// Runs every pass and verifies the graph after each (as tests do).
    pub fn run_verified(&self, g: &mut Graph, cx: &mut Context) -> Result<(), PassError> {
        let mut failure = None;
        self.run_with(g, cx, |name, g| {
            let errs = pannc_ir::verify(g);
            if failure.is_none() && !errs.is_empty() {
                let errors = errs
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                failure = Some(PassError::Verify { pass: name, errors });
            }
        })?;
        failure.map_or(Ok(()), Err)
    }

    /// Runs with a default context (for the clean-up passes, which need none).
    pub fn run(&self, g: &mut Graph) -> Result<(), PassError> {
        self.run_with(g, &mut Context::default(), |_, _| {})
    }
}
