//! pannc-eqsat: equality saturation (egg) over `pannc-fhe` circuits.
//!
//! [`optimize`] turns a circuit into an e-graph, saturates it with the named
//! rules of [`rules()`] under explicit node/iteration/time limits, extracts the
//! cheapest circuit under the lexicographic cost (levels, then ct×ct
//! multiplications, then size) and reports what happened, including egg's stop
//! reason and the semantic depth lower bound of the circuit
//! ([`pannc_fhe::depth_lower_bound`]). The input circuit is returned unchanged
//! when extraction does not beat it (tree extraction can lose sharing).
//!
//! - [`lang`]: the egg language ([`Fhe`]) and the e-class analysis (constant
//!   folding + minimum level, [`LevelAnalysis`]).
//! - [`mod@rules`]: named rewrite rules in four groups ([`RuleSet`]).
//! - [`cost`]: the extraction cost ([`LevelCost`]).
//! - [`convert`]: circuit ⇄ e-graph.
//!
//! Plain saturation from a Horner form finds optimal depth only at small
//! degree; the intended use is to start from the planner's circuit and let egg
//! prove (via the lower bound) or improve it locally, e.g. absorb a trailing
//! scalar into the polynomial's leaves.

pub mod convert;
pub mod cost;
pub mod lang;
pub mod rules;

use std::fmt;
use std::time::{Duration, Instant};

use egg::{EGraph, Language, Runner};
use pannc_fhe::Circuit;

pub use convert::{circuit_to_recexpr, extract_circuit};
pub use cost::LevelCost;
pub use lang::{ClassData, Fhe, LevelAnalysis, Scalar};
pub use rules::{rule_names, rules, RuleSet};

/// Errors of the optimiser.
#[derive(Debug, thiserror::Error)]
pub enum EqsatError {
    #[error(transparent)]
    Circuit(#[from] pannc_fhe::FheError),
    #[error("eqsat: {0}")]
    Unsupported(String),
    #[error("eqsat extraction: {0}")]
    Extraction(String),
}

/// Saturation limits; all three are always applied.
#[derive(Clone, Debug)]
pub struct Limits {
    pub node_limit: usize,
    pub iter_limit: usize,
    pub time_limit: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            node_limit: 20_000,
            iter_limit: 30,
            time_limit: Duration::from_secs(5),
        }
    }
}

/// Why saturation stopped (mirror of egg's `StopReason`).
#[derive(Clone, Debug, PartialEq)]
pub enum StopReason {
    Saturated,
    IterationLimit(usize),
    NodeLimit(usize),
    TimeLimit(f64),
    Other(String),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Saturated => write!(f, "saturated"),
            StopReason::IterationLimit(n) => write!(f, "iteration limit ({n})"),
            StopReason::NodeLimit(n) => write!(f, "node limit ({n})"),
            StopReason::TimeLimit(s) => write!(f, "time limit ({s} s)"),
            StopReason::Other(s) => write!(f, "other: {s}"),
        }
    }
}

/// What an [`optimize`] run did.
#[derive(Clone, Debug)]
pub struct Report {
    pub levels_before: u32,
    pub levels_after: u32,
    pub ct_mults_before: u32,
    pub ct_mults_after: u32,
    /// Semantic lower bound on the levels (single-input circuits only).
    pub lower_bound: Option<u32>,
    /// Minimum level of the output classes according to the e-class analysis.
    pub egraph_best_level: u32,
    pub stop_reason: StopReason,
    pub iterations: usize,
    pub egraph_nodes: usize,
    pub egraph_classes: usize,
    pub seconds: f64,
    /// True when the extracted circuit was not better and the input was kept.
    pub kept_input: bool,
}

impl Report {
    /// The result's depth equals the lower bound: no circuit can use fewer levels.
    pub fn proved_optimal(&self) -> bool {
        self.lower_bound == Some(self.levels_after)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "levels {} -> {} (lower bound {}), ct×ct {} -> {}, stop: {}, {} iterations, {} nodes / {} classes, {:.2} s{}",
            self.levels_before,
            self.levels_after,
            self.lower_bound.map_or("n/a".to_string(), |b| b.to_string()),
            self.ct_mults_before,
            self.ct_mults_after,
            self.stop_reason,
            self.iterations,
            self.egraph_nodes,
            self.egraph_classes,
            self.seconds,
            if self.kept_input { ", input kept" } else { "" }
        )
    }
}

/// [`optimize_with`] using every rule group.
pub fn optimize(circuit: &Circuit, limits: &Limits) -> Result<(Circuit, Report), EqsatError> {
    optimize_with(circuit, limits, &RuleSet::default())
}

/// Saturate `circuit` with the rules of `set` under `limits` and extract.
pub fn optimize_with(
    circuit: &Circuit,
    limits: &Limits,
    set: &RuleSet,
) -> Result<(Circuit, Report), EqsatError> {
    circuit.validate()?;
    if limits.node_limit == 0 || limits.iter_limit == 0 || limits.time_limit.is_zero() {
        return Err(EqsatError::Unsupported("limits must be positive".into()));
    }
    let start = Instant::now();
    let lower_bound = pannc_fhe::depth_lower_bound(circuit);
    let (expr, roots) = circuit_to_recexpr(circuit)?;
    let analysis = LevelAnalysis {
        input_levels: circuit
            .inputs
            .iter()
            .map(|i| (egg::Symbol::from(i.name.as_str()), i.level))
            .collect(),
    };
    let mut egraph = EGraph::new(analysis);
    let mut ids = Vec::with_capacity(expr.as_ref().len());
    for node in expr.as_ref() {
        let n = node.clone().map_children(|c| ids[usize::from(c)]);
        ids.push(egraph.add(n));
    }
    let roots: Vec<egg::Id> = roots.iter().map(|r| ids[usize::from(*r)]).collect();
    if set.chebyshev {
        // Seed T_1(x) = x for every input so that the recognition rules can fire.
        for (node, id) in expr.as_ref().iter().zip(&ids) {
            if let Fhe::Var(_) = node {
                let one = egraph.add(Fhe::Num(Scalar::new(1.0)));
                let t1 = egraph.add(Fhe::Cheb([one, *id]));
                egraph.union(*id, t1);
            }
        }
        egraph.rebuild();
    }
    let runner = Runner::default()
        .with_egraph(egraph)
        .with_node_limit(limits.node_limit)
        .with_iter_limit(limits.iter_limit)
        .with_time_limit(limits.time_limit)
        .run(&rules(set));
    let stop_reason = match runner.stop_reason.clone() {
        Some(egg::StopReason::Saturated) => StopReason::Saturated,
        Some(egg::StopReason::IterationLimit(n)) => StopReason::IterationLimit(n),
        Some(egg::StopReason::NodeLimit(n)) => StopReason::NodeLimit(n),
        Some(egg::StopReason::TimeLimit(s)) => StopReason::TimeLimit(s),
        Some(egg::StopReason::Other(s)) => StopReason::Other(s),
        None => StopReason::Other("runner did not report".into()),
    };
    let egraph = &runner.egraph;
    let egraph_best_level = roots
        .iter()
        .map(|r| egraph[*r].data.level)
        .max()
        .unwrap_or(0);
    // Two extractions: plain tree cost (monotone, always acyclic) and the
    // sharing-aware cost (reuses the input's values; may pick a cyclic choice,
    // then it is skipped). The best of {input, both} by (depth, DAG ct×ct) wins.
    let mut best = circuit.clone();
    let mut kept_input = true;
    for shared in [&[][..], &ids[..]] {
        let candidate = match extract_circuit(egraph, &roots, circuit, shared) {
            Ok(c) => c,
            Err(EqsatError::Extraction(_)) if !shared.is_empty() => continue,
            Err(e) => return Err(e),
        };
        if (candidate.depth, candidate.stats.ct_ct_mults) < (best.depth, best.stats.ct_ct_mults) {
            best = candidate;
            kept_input = false;
        }
    }
    let result = best;
    let report = Report {
        levels_before: circuit.depth,
        levels_after: result.depth,
        ct_mults_before: circuit.stats.ct_ct_mults,
        ct_mults_after: result.stats.ct_ct_mults,
        lower_bound,
        egraph_best_level,
        stop_reason,
        iterations: runner.iterations.len(),
        egraph_nodes: egraph.total_number_of_nodes(),
        egraph_classes: egraph.number_of_classes(),
        seconds: start.elapsed().as_secs_f64(),
        kept_input,
    };
    Ok((result, report))
}
