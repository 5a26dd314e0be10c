//! `pannc compile --budget P%`: choose every ReLU's approximation to minimise the network's
//! depth (levels, what the CKKS parameters pay), then its ct×ct multiplications, while the
//! PANN disagrees with the backbone's top-1 on at most P% of the calibration inputs (no
//! labels needed: a disagreement bounds a lost correct answer).
//!
//! The menu per ReLU (and the ReLUs of Clip and lowered max-pool), by depth `L`: the
//! composite minimax sign at the largest α whose ReLU takes `L` levels, one minimax
//! polynomial of degree `2^L − 1` (uniform error), and one fitted to the activation's
//! calibrated inputs by density-weighted minimax of the same degree (`fit`). Bias correction
//! (zero levels) is applied throughout. Costs are the planner's levels and ct×ct for each
//! distinct polynomial (the same circuit `--prove-levels` checks with egg).
//!
//! The search, on a backbone prepared once ([`pannc_driver::prepare`]: prefix passes and
//! calibration), compiling only from `approximate` on for each trial:
//! 1. **uniform**: the shallowest depth at which some method, used for every ReLU, meets the
//!    budget (every method tried at that depth; the one disagreeing least is kept);
//! 2. **lower**: each ReLU is probed one level shallower (best method there, others kept);
//!    then, least damaging first, each is lowered level by level while the budget holds and
//!    the network gets cheaper — (levels, ct×ct) lexicographically, so a ReLU off the critical
//!    path is lowered only when that saves ct×ct;
//! 3. **cheapen**: at its final depth, each ReLU takes the method with the fewest ct×ct that
//!    still meets the budget.
//!
//! Every step visits candidates in a fixed order and compares exact counts, so the result is
//! deterministic (interpreter runs are bitwise independent of threads).

use crate::LabError;
use pannc_driver::{
    compile_prepared, compile_prepared_with, predictions, simulate, Memo, Prepared,
};
use pannc_interp::run_memo;
use pannc_interp::RunOptions;
use pannc_ir::{Op, Poly, PolyCombine, PolyStage, Tensor};
use pannc_passes::{Choice, Policy, Report};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Shallowest and deepest ReLU depth the menu offers.
const MIN_DEPTH: u32 = 3;
const MAX_DEPTH: u32 = 9;

/// Samples per interpreter call when the backbone runs.
const CHUNK: usize = 512;

/// Samples per interpreter call in a trial (it stops early once over the budget).
const TRIAL_CHUNK: usize = 128;

/// Memory for values reused across trials, and how many trials an unused value survives.
const MEMO_BYTES: usize = 3 << 29;
const MEMO_GENERATIONS: u64 = 2;

/// What the search decided for one activation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ActivationChoice {
    pub node: String,
    pub choice: Choice,
    /// Levels of its polynomial(s) (planner).
    pub levels: u32,
    /// ct×ct multiplications of its polynomial(s) (planner).
    pub ct_mults: u32,
    /// Why this choice (the step that settled it and the disagreement it measured).
    pub why: String,
}

/// The result of [`search`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct BudgetResult {
    /// Allowed disagreement (fraction of the calibration inputs).
    pub budget: f64,
    /// Disagreement of the chosen PANN with the backbone on the calibration inputs.
    pub calib_disagreement: f64,
    pub calib_samples: usize,
    /// Network levels and total ct×ct of the chosen PANN.
    pub levels: usize,
    pub ct_mults: u64,
    /// The uniform start: method, depth, network levels, disagreement.
    pub uniform: Option<UniformStart>,
    /// Compilations tried.
    pub trials: usize,
    pub activations: Vec<ActivationChoice>,
    /// The policy that compiles the chosen PANN.
    #[serde(skip)]
    pub policy: Policy,
}

/// Step 1's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct UniformStart {
    pub depth: u32,
    pub choice: String,
    pub levels: usize,
    pub ct_mults: u64,
    pub calib_disagreement: f64,
}

/// A method family of the menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    Minimax,
    Fit,
    Composite,
}

/// One trial's outcome.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    disagree: usize,
    levels: usize,
    ct: u64,
}

impl Outcome {
    fn cost(&self) -> (usize, u64) {
        (self.levels, self.ct)
    }
}

/// Searches (see the module doc). `base` gives the margin, negative weight and the policy
/// for everything but ReLUs; `budget` is a fraction (0.005 for 0.5%). `progress` hears every
/// trial.
pub fn search(
    prepared: &Prepared,
    base: &Policy,
    budget: f64,
    progress: &mut dyn FnMut(&str),
) -> Result<BudgetResult, LabError> {
    search_with(prepared, base, budget, MEMO_BYTES, progress)
}

/// [`search`] keeping at most `memo_bytes` of values across trials (0: recompute everything;
/// the result is the same, only slower).
pub fn search_with(
    prepared: &Prepared,
    base: &Policy,
    budget: f64,
    memo_bytes: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<BudgetResult, LabError> {
    let mut s = Search::new(prepared, base, budget, memo_bytes)?;
    s.run(progress)
}

struct Search<'a> {
    prepared: &'a Prepared,
    base: Policy,
    /// The backbone's prediction per calibration sample.
    reference: Vec<Option<usize>>,
    allowed: usize,
    budget: f64,
    /// The ReLU-like nodes the menu applies to, in graph order, and whether a `fit` applies.
    nodes: Vec<(String, bool)>,
    /// α of the composite at each depth.
    composite_at: BTreeMap<u32, u32>,
    /// Planner levels and ct×ct of one polynomial of each menu entry.
    menu: BTreeMap<Choice, (u32, u32)>,
    trials: usize,
    /// Values reused across trials (everything upstream of a changed ReLU).
    memo: Arc<Memo>,
}

impl<'a> Search<'a> {
    fn new(
        prepared: &'a Prepared,
        base: &Policy,
        budget: f64,
        memo_bytes: usize,
    ) -> Result<Search<'a>, LabError> {
        let g = prepared.graph();
        let calib = prepared.calib();
        if calib.is_empty() {
            return Err(LabError::NoData);
        }
        let out = simulate(g, calib, CHUNK)?;
        let reference = predictions(out.outputs.first().ok_or(LabError::NoOutput)?);
        let n = reference.len();
        // At most ⌊P·n⌋ disagreements (with a little slack against rounding of P·n).
        let allowed = (budget * n as f64 + 1e-9).floor() as usize;
        let nodes = g
            .topo_order()?
            .into_iter()
            .filter_map(|id| {
                let node = g.node(id);
                match node.op {
                    Op::Relu => Some((node.name.clone(), true)),
                    Op::Clip { .. } => Some((node.name.clone(), false)),
                    _ => None,
                }
            })
            .collect();
        // The composite ReLU's depth for each α, and every menu entry's planner cost (on
        // [-1, 1]; scales are merged, so B does not change it, and a `fit` has the parity
        // structure of the minimax of its degree, hence its circuit).
        let mut composite_at = BTreeMap::new();
        let mut menu = BTreeMap::new();
        let relu = |method, budget| {
            pannc_approx::approximate(
                pannc_approx::Function::Relu,
                method,
                budget,
                (-1.0, 1.0),
                pannc_approx::Shaping::default(),
            )
            .map_err(|e| LabError::Menu(e.to_string()))
        };
        let as_poly = |a: &pannc_approx::Approximation, combine: PolyCombine| Poly {
            function: "relu".into(),
            in_scale: 0.5,
            out_scale: 2.0,
            stages: a
                .stages
                .iter()
                .map(|st| PolyStage {
                    lo: st.domain[0],
                    hi: st.domain[1],
                    coeffs: st.coefficients.clone(),
                })
                .collect(),
            combine,
        };
        let plan = |p: &Poly| -> Result<(u32, u32), LabError> {
            let l = pannc_driver::poly_levels("menu", p, false)?;
            Ok((l.planned, l.ct_mults_planned))
        };
        for alpha in 4..=14u32 {
            let a = relu(
                pannc_approx::Method::Composite,
                pannc_approx::Budget::Alpha(alpha),
            )?;
            let cost = plan(&as_poly(&a, PolyCombine::Relu))?;
            // The largest α at each depth.
            composite_at.insert(cost.0, alpha);
            menu.insert(Choice::Composite { alpha }, cost);
        }
        for depth in MIN_DEPTH..=7 {
            let degree = (1usize << depth) - 1;
            let a = relu(
                pannc_approx::Method::Minimax,
                pannc_approx::Budget::Degree(degree),
            )?;
            let cost = plan(&as_poly(&a, PolyCombine::Identity))?;
            menu.insert(Choice::Minimax { degree }, cost);
            menu.insert(Choice::Fitted { degree }, cost);
        }
        Ok(Search {
            prepared,
            base: Policy {
                bias_correct: true,
                shape: false,
                choices: BTreeMap::new(),
                relu: None,
                ..base.clone()
            },
            reference,
            allowed,
            budget,
            nodes,
            composite_at,
            menu,
            trials: 0,
            memo: Arc::new(Memo::new(calib, memo_bytes)),
        })
    }

    /// The choice of `family` at `depth`, if the menu has one (and it applies to the node).
    fn candidate(&self, family: Family, depth: u32, fit_ok: bool) -> Option<Choice> {
        if !(MIN_DEPTH..=MAX_DEPTH).contains(&depth) {
            return None;
        }
        let degree = (1usize << depth) - 1;
        match family {
            Family::Minimax if depth <= 7 => Some(Choice::Minimax { degree }),
            Family::Fit if depth <= 7 && fit_ok => Some(Choice::Fitted { degree }),
            Family::Composite => self
                .composite_at
                .get(&depth)
                .map(|&alpha| Choice::Composite { alpha }),
            _ => None,
        }
    }

    fn policy(&self, choices: &BTreeMap<String, Choice>) -> Policy {
        Policy {
            choices: choices.clone(),
            ..self.base.clone()
        }
    }

    /// Compiles with `choices` and measures disagreement and cost.
    fn trial(
        &mut self,
        choices: &BTreeMap<String, Choice>,
        what: &str,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Outcome, LabError> {
        self.trials += 1;
        self.memo.next_generation(MEMO_GENERATIONS);
        let (g, report) =
            compile_prepared_with(self.prepared, self.policy(choices), Some(self.memo.clone()))?;
        // Disagreements counted chunk by chunk; a trial stops once it is over the budget (its
        // count is then a lower bound, which is all a rejection needs).
        let calib = self.prepared.calib();
        let n = self.reference.len();
        let mut disagree = 0;
        let mut start = 0;
        while start < n {
            let end = (start + TRIAL_CHUNK).min(n);
            let part: Vec<Tensor> = calib.iter().map(|t| t.slice_batch(start, end)).collect();
            let out = run_memo(&g, &part, (start, end), &self.memo, &RunOptions::default())?;
            let pred = predictions(out.first().ok_or(LabError::NoOutput)?);
            disagree += pred
                .iter()
                .zip(&self.reference[start..end])
                .filter(|(a, b)| a.is_none() || a != b)
                .count();
            if disagree > self.allowed {
                break;
            }
            start = end;
        }
        let ct = self.ct_total(choices, &report);
        let o = Outcome {
            disagree,
            levels: report.levels,
            ct,
        };
        progress(&format!(
            "budget trial {}: {what}: disagreement {}/{} ({:.2}%), {} levels, {} ct×ct ({:?})",
            self.trials,
            disagree,
            self.reference.len(),
            100.0 * disagree as f64 / self.reference.len().max(1) as f64,
            o.levels,
            o.ct,
            self.memo
        ));
        Ok(o)
    }

    /// Planner cost of a node's activation under `c`: its polynomials' levels, and their ct×ct
    /// (a Clip has two).
    fn node_cost(&self, c: &Choice, polys: usize) -> (u32, u32) {
        let (l, ct) = self.menu.get(c).copied().unwrap_or((0, 0));
        (l, ct * polys.max(1) as u32)
    }

    /// Σ ct×ct over the menu's activations (the others do not change between trials).
    fn ct_total(&self, choices: &BTreeMap<String, Choice>, report: &Report) -> u64 {
        report
            .activations
            .iter()
            .filter_map(|a| {
                let c = choices.get(&a.node)?;
                Some(self.node_cost(c, a.polys.len()).1 as u64)
            })
            .sum()
    }

    /// Levels of a menu entry's polynomial.
    fn depth(&self, c: &Choice) -> u32 {
        self.menu.get(c).map_or(MAX_DEPTH, |&(l, _)| l)
    }

    fn ok(&self, o: &Outcome) -> bool {
        o.disagree <= self.allowed
    }

    fn pct(&self, o: &Outcome) -> String {
        format!(
            "{:.2}%",
            100.0 * o.disagree as f64 / self.reference.len().max(1) as f64
        )
    }

    fn run(&mut self, progress: &mut dyn FnMut(&str)) -> Result<BudgetResult, LabError> {
        let families = [Family::Minimax, Family::Fit, Family::Composite];
        let uniform = |s: &Search, f: Family, d: u32| -> Option<BTreeMap<String, Choice>> {
            let mut m = BTreeMap::new();
            for (n, fit_ok) in &s.nodes {
                // A Clip cannot take a fit to its own inputs: the minimax of that degree.
                let c = s.candidate(f, d, *fit_ok).or_else(|| {
                    s.candidate(Family::Minimax, d, true)
                        .filter(|_| f == Family::Fit)
                })?;
                m.insert(n.clone(), c);
            }
            Some(m)
        };
        // 1. Uniform start.
        let mut best_at: BTreeMap<u32, Family> = BTreeMap::new();
        let mut start: Option<(u32, Family, BTreeMap<String, Choice>, Outcome)> = None;
        for depth in MIN_DEPTH..=MAX_DEPTH {
            let mut best: Option<(Family, BTreeMap<String, Choice>, Outcome)> = None;
            for f in families {
                let Some(m) = uniform(self, f, depth) else {
                    continue;
                };
                let o = self.trial(&m, &format!("uniform {f:?} at depth {depth}"), progress)?;
                if best.as_ref().is_none_or(|b| o.disagree < b.2.disagree) {
                    // Possibly the start: keep its values for the trials that vary it.
                    self.memo.commit();
                    best = Some((f, m, o));
                }
            }
            if let Some((f, m, o)) = best {
                best_at.insert(depth, f);
                if self.ok(&o) {
                    start = Some((depth, f, m, o));
                    break;
                }
            }
        }
        let Some((depth0, family0, mut cur, mut cur_o)) = start else {
            return Err(LabError::Budget(format!(
                "no uniform choice up to depth {MAX_DEPTH} keeps the disagreement within {:.2}%",
                100.0 * self.budget
            )));
        };
        let uniform_start = UniformStart {
            depth: depth0,
            choice: cur
                .values()
                .next()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            levels: cur_o.levels,
            ct_mults: cur_o.ct,
            calib_disagreement: cur_o.disagree as f64 / self.reference.len().max(1) as f64,
        };
        let mut why: BTreeMap<String, String> = self
            .nodes
            .iter()
            .map(|(n, _)| {
                (
                    n.clone(),
                    format!(
                        "uniform start: {family0:?} at depth {depth0}, the shallowest meeting the budget ({})",
                        self.pct(&cur_o)
                    ),
                )
            })
            .collect();
        // The method to use one level down: the one that did best uniformly there.
        let family_at = |d: u32| best_at.get(&d).copied().unwrap_or(Family::Minimax);
        let lower = |s: &Search, cur: &BTreeMap<String, Choice>, n: &str, fit_ok: bool| {
            let d = s.depth(&cur[n]).saturating_sub(1);
            s.candidate(family_at(d), d, fit_ok)
                .or_else(|| s.candidate(Family::Minimax, d, true))
        };
        // 2. Probe each ReLU one level down, then lower the least damaging first.
        let mut order = Vec::new();
        let nodes = self.nodes.clone();
        for (n, fit_ok) in &nodes {
            let Some(c) = lower(self, &cur, n, *fit_ok) else {
                continue;
            };
            let mut m = cur.clone();
            m.insert(n.clone(), c);
            let o = self.trial(&m, &format!("probe {n} at {c}"), progress)?;
            order.push((o.disagree, n.clone(), *fit_ok, c, o));
        }
        order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        for (k, (_, n, fit_ok, first, probe)) in order.into_iter().enumerate() {
            let mut next = Some(first);
            // The probe measured exactly this change on the start, so the first ReLU's first
            // step needs no new trial.
            let mut known = (k == 0).then_some(probe);
            while let Some(c) = next {
                let mut m = cur.clone();
                m.insert(n.clone(), c);
                let measured_now = known.is_none();
                let o = match known.take() {
                    Some(o) => o,
                    None => self.trial(&m, &format!("lower {n} to {c}"), progress)?,
                };
                if self.ok(&o) && o.cost() < cur_o.cost() {
                    if measured_now {
                        self.memo.commit();
                    }
                    why.insert(
                        n.clone(),
                        format!(
                            "lowered to {c}: network {} → {} levels, {} → {} ct×ct, disagreement {} within budget",
                            cur_o.levels,
                            o.levels,
                            cur_o.ct,
                            o.ct,
                            self.pct(&o)
                        ),
                    );
                    cur = m;
                    cur_o = o;
                    next = lower(self, &cur, &n, fit_ok);
                } else {
                    let reason = if self.ok(&o) {
                        format!("{c} would not make the network cheaper")
                    } else {
                        format!("{c} would disagree on ≥ {} > budget", self.pct(&o))
                    };
                    let w = why.get_mut(&n).expect("every node has a reason");
                    w.push_str(&format!("; kept: {reason}"));
                    next = None;
                }
            }
        }
        // 3. At each ReLU's depth, the method with the fewest ct×ct that meets the budget.
        let (_, report) = compile_prepared(self.prepared, self.policy(&cur))?;
        let polys: BTreeMap<String, usize> = report
            .activations
            .iter()
            .map(|a| (a.node.clone(), a.polys.len()))
            .collect();
        for (n, fit_ok) in &nodes {
            let k = polys.get(n).copied().unwrap_or(1);
            let d = self.depth(&cur[n]);
            let here = self.node_cost(&cur[n], k);
            // Alternatives at this depth with fewer ct×ct, cheapest first.
            let mut alts: Vec<(u32, Choice)> = families
                .iter()
                .filter_map(|&f| self.candidate(f, d, *fit_ok))
                .map(|c| (self.node_cost(&c, k).1, c))
                .filter(|&(ct, _)| ct < here.1)
                .collect();
            alts.sort();
            for (ct, c) in alts {
                let mut m = cur.clone();
                m.insert(n.clone(), c);
                let o = self.trial(&m, &format!("cheapen {n} to {c}"), progress)?;
                if self.ok(&o) && o.cost() < cur_o.cost() {
                    self.memo.commit();
                    let w = why.get_mut(n).expect("every node has a reason");
                    w.push_str(&format!(
                        "; then {c}: {} → {ct} ct×ct at the same depth, disagreement {} within budget",
                        here.1,
                        self.pct(&o)
                    ));
                    cur = m;
                    cur_o = o;
                    break;
                }
            }
        }
        let activations = nodes
            .iter()
            .map(|(n, _)| {
                let (levels, ct_mults) =
                    self.node_cost(&cur[n], polys.get(n).copied().unwrap_or(1));
                ActivationChoice {
                    node: n.clone(),
                    choice: cur[n],
                    levels,
                    ct_mults,
                    why: why[n].clone(),
                }
            })
            .collect();
        Ok(BudgetResult {
            budget: self.budget,
            calib_disagreement: cur_o.disagree as f64 / self.reference.len().max(1) as f64,
            calib_samples: self.reference.len(),
            levels: cur_o.levels,
            ct_mults: cur_o.ct,
            uniform: Some(uniform_start),
            trials: self.trials,
            activations,
            policy: self.policy(&cur),
        })
    }
}
