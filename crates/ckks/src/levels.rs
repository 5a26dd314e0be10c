//! Levels per activation, planned and then checked by equality saturation.
//!
//! For every polynomial of a compiled graph, the planner's circuit for the whole activation
//! (input already normalised by range control, `×½`, the final `×x` of sign-based combines and
//! the output scale folded into coefficients) is handed to egg ([`pannc_eqsat::optimize`],
//! always under node/iteration/time limits). The report says how many levels the plan uses,
//! the per-stage bound `Σ⌈log2(dᵢ+1)⌉ (+1 for the final product)`, the semantic lower bound
//! of the circuit's polynomial (`⌈log2(D+1)⌉` of its total degree D; below the per-stage
//! bound for compositions), what egg found and why it stopped. Identical polynomials (all
//! ReLUs at one α share a composite) are checked once.

use crate::CkksError;
use pannc_eqsat::{optimize, Limits};
use pannc_fhe::{plan_composite, Combine, Interval, PlanOptions, Stage};
use pannc_ir::{Graph, Op, Poly, PolyCombine};

/// What the level check found for one activation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ActivationLevels {
    pub node: String,
    pub function: String,
    pub degrees: Vec<usize>,
    /// Levels of the planner's circuit.
    pub planned: u32,
    /// `Σ⌈log2(dᵢ+1)⌉`, plus one for a sign-based combine.
    pub stage_bound: u32,
    /// `⌈log2(D+1)⌉` for the circuit's total degree D (no circuit can do better).
    pub semantic_bound: Option<u32>,
    /// Levels after equality saturation (never more than planned).
    pub after_egg: u32,
    pub ct_mults_planned: u32,
    pub ct_mults_after_egg: u32,
    /// `after_egg − stage_bound`.
    pub distance: i64,
    pub egg_stop: String,
    pub egg_seconds: f64,
}

/// Checks every polynomial of `g` (see the module doc).
pub fn activation_levels(g: &Graph, limits: &Limits) -> Result<Vec<ActivationLevels>, CkksError> {
    let order = g
        .topo_order()
        .map_err(|e| CkksError::Graph(e.to_string()))?;
    let mut seen: Vec<(Poly, ActivationLevels)> = Vec::new();
    let mut out = Vec::new();
    for id in order {
        let Op::Poly(p) = &g.node(id).op else {
            continue;
        };
        let node = g.node(id).name.trim_end_matches(".poly").to_string();
        let same = |q: &Poly| q.stages == p.stages && q.combine == p.combine;
        if let Some((_, r)) = seen.iter().find(|(q, _)| same(q)) {
            out.push(ActivationLevels { node, ..r.clone() });
            continue;
        }
        let rep = poly_levels(&node, p, Some(limits))?;
        seen.push(((**p).clone(), rep.clone()));
        out.push(rep);
    }
    Ok(out)
}

/// The level check of one polynomial (see the module doc), reported under `node`; with
/// `limits` `None`, the planner's circuit only (egg skipped: `after_egg` is the plan's).
pub fn poly_levels(
    node: &str,
    p: &Poly,
    limits: Option<&Limits>,
) -> Result<ActivationLevels, CkksError> {
    let combine = match p.combine {
        PolyCombine::Identity => Combine::None,
        PolyCombine::Relu | PolyCombine::LeakyRelu { .. } => Combine::Relu,
    };
    let stages: Vec<Stage> = p
        .stages
        .iter()
        .map(|s| {
            Ok(Stage {
                coeffs: s.coeffs.clone(),
                interval: Interval::new(s.lo, s.hi).map_err(|e| level_err(node, e))?,
            })
        })
        .collect::<Result<_, CkksError>>()?;
    let opts = PlanOptions {
        name: Some(node.to_string()),
        output_scale: p.out_scale,
        ..PlanOptions::default()
    };
    let c = plan_composite(&stages, combine, &opts).map_err(|e| level_err(node, e))?;
    // (levels, ct×ct) after egg, semantic bound, stop reason, seconds.
    let (depth, ct, lower, stop, seconds) = match limits {
        Some(limits) => {
            let (o, r) = optimize(&c, limits).map_err(|e| level_err(node, e))?;
            (
                o.depth,
                o.stats.ct_ct_mults,
                r.lower_bound,
                r.stop_reason.to_string(),
                r.seconds,
            )
        }
        None => (
            c.depth,
            c.stats.ct_ct_mults,
            None,
            "not run".to_string(),
            0.0,
        ),
    };
    let stage_bound = p.depth() as u32;
    Ok(ActivationLevels {
        node: node.to_string(),
        function: p.function.clone(),
        degrees: p.degrees(),
        planned: c.depth,
        stage_bound,
        semantic_bound: lower,
        after_egg: depth,
        ct_mults_planned: c.stats.ct_ct_mults,
        ct_mults_after_egg: ct,
        distance: depth as i64 - stage_bound as i64,
        egg_stop: stop,
        egg_seconds: seconds,
    })
}

fn level_err(node: &str, e: impl std::fmt::Display) -> CkksError {
    CkksError::Level {
        node: node.to_string(),
        message: e.to_string(),
    }
}
