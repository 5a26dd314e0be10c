//! Extraction cost: lexicographic (levels, ct×ct multiplications, size).
//!
//! Levels are a max over children (DAG-exact). Multiplications and size are
//! tree sums (egg extracts trees), so shared subterms count once per use; the
//! optimiser therefore recounts the extracted DAG and keeps the input when it
//! is not strictly better.

use std::collections::HashSet;

use egg::{CostFunction, EGraph, Id, Language};

use crate::lang::{node_level, ClassData, Fhe, LevelAnalysis};

/// `(levels, ct×ct mults, size)`; `Cheb`/`Pow` nodes are unextractable (max).
pub type Cost = (u32, u64, u64);

/// Cost function reading constant-ness from the e-graph's analysis.
///
/// `shared` holds (canonical) classes that the input circuit computes anyway;
/// using one as an operand adds no multiplications to the tree count. This
/// makes extraction prefer reusing the planner's values (baby steps, giant
/// steps) over re-deriving scaled copies of them; size stays a true tree size,
/// so costs still grow strictly along any extracted path.
pub struct LevelCost<'a> {
    pub egraph: &'a EGraph<Fhe, LevelAnalysis>,
    pub shared: HashSet<Id>,
}

impl CostFunction<Fhe> for LevelCost<'_> {
    type Cost = Cost;

    fn cost<C>(&mut self, enode: &Fhe, mut costs: C) -> Cost
    where
        C: FnMut(Id) -> Cost,
    {
        if matches!(enode, Fhe::Cheb(_) | Fhe::Pow(_)) {
            return (u32::MAX, u64::MAX, u64::MAX);
        }
        let kids: Vec<(Id, Cost)> = enode.children().iter().map(|&c| (c, costs(c))).collect();
        let eg = self.egraph;
        let child = |id: Id| {
            let c = kids
                .iter()
                .find(|(k, _)| *k == id)
                .map(|(_, c)| *c)
                .unwrap_or((u32::MAX, 0, 0));
            ClassData {
                constant: eg[id].data.constant,
                level: c.0,
            }
        };
        let level = node_level(enode, |s| eg.analysis.var_level(s), child);
        let ct_ct = match enode {
            Fhe::Mul([a, b]) => eg[*a].data.constant.is_none() && eg[*b].data.constant.is_none(),
            _ => false,
        };
        let mults = kids.iter().fold(ct_ct as u64, |m, (k, c)| {
            if self.shared.contains(&eg.find(*k)) {
                m
            } else {
                m.saturating_add(c.1)
            }
        });
        let size = kids.iter().fold(1u64, |s, (_, c)| s.saturating_add(c.2));
        (level, mults, size)
    }
}
