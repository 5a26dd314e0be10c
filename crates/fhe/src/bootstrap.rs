//! Bootstrap placement at layer boundaries.
//!
//! A circuit whose depth exceeds the level budget `L` of the CKKS parameters
//! needs bootstrapping. [`place_bootstraps`] refreshes ciphertexts only at the
//! boundaries between the circuit's [`LayerInfo`](crate::LayerInfo) records
//! (a "cut" before the first op of a layer), and picks the cuts that refresh
//! the fewest ciphertexts in total, subject to every value staying at level
//! ≤ `L`.
//!
//! At a cut, every *live* ciphertext (defined before the cut, read after it or
//! an output) whose level is above 0 is bootstrapped; values at level 0 need
//! nothing. So a residual branch crossing a cut is refreshed together with the
//! main branch, and both arrive at the join with levels that only depend on
//! what happened after the cut: branches never need separate refreshes, and
//! the level rule of `add` (max of the operands) prices the join correctly.
//!
//! The levels after a cut depend only on where the last cut was (everything
//! live there is at level 0), so the problem is a shortest path over the
//! candidate positions: `best[p] = min over earlier cuts s of best[s] +
//! refreshed(s → p)`, where the segment `s → p` must stay within `L`. One
//! forward level simulation per start position gives every `refreshed(s → ·)`
//! and the feasibility of every segment from `s`, so the dynamic program costs
//! `O(cuts × ops)`. Ties are broken by fewer cuts, then by earlier cuts.
//! Layers are the unit: a single layer deeper than `L` is an error naming it.

use crate::circuit::{BootstrapPoint, Circuit, ValueId};
use crate::error::{FheError, Result};

/// The result of [`place_bootstraps`].
#[derive(Clone, Debug, PartialEq)]
pub struct BootstrapPlan {
    /// The circuit with bootstrap points (levels, depth, stats recomputed).
    pub circuit: Circuit,
    /// The level budget it was placed for.
    pub max_level: u32,
    /// Indices (into `circuit.layers`) of the layers before which a cut was placed.
    pub cut_before_layers: Vec<usize>,
    /// Ciphertexts refreshed in total.
    pub bootstrapped: u32,
}

/// Places bootstraps so that no value exceeds level `max_level`, refreshing
/// the fewest ciphertexts (see the module doc). A circuit already within the
/// budget is returned unchanged.
pub fn place_bootstraps(c: &Circuit, max_level: u32) -> Result<BootstrapPlan> {
    c.validate()?;
    if !c.bootstraps.is_empty() {
        return Err(FheError::Plan(
            "circuit already has bootstrap points".into(),
        ));
    }
    if c.depth <= max_level {
        return Ok(BootstrapPlan {
            circuit: c.clone(),
            max_level,
            cut_before_layers: vec![],
            bootstrapped: 0,
        });
    }
    if c.layers.is_empty() {
        return Err(FheError::Plan(format!(
            "depth {} exceeds max level {max_level} and the circuit has no layer records to place bootstraps between",
            c.depth
        )));
    }
    let n_in = c.inputs.len();
    let n_ops = c.ops.len();
    let nv = c.num_values();
    if let Some(inp) = c.inputs.iter().find(|i| i.level > max_level) {
        return Err(FheError::Plan(format!(
            "input '{}' enters at level {} > max level {max_level}",
            inp.name, inp.level
        )));
    }
    // Candidate cut positions: layer starts strictly inside the op list.
    let mut cand: Vec<(usize, usize)> = c
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.ops[0] > 0 && l.ops[0] < n_ops)
        .map(|(i, l)| (l.ops[0], i))
        .collect();
    cand.sort_unstable();
    cand.dedup_by_key(|x| x.0);
    let positions: Vec<usize> = cand.iter().map(|x| x.0).collect();

    // Liveness: value v is live at position p (before op p) iff def(v) ≤ p ≤ last_use(v).
    let def_pos = |v: usize| if v < n_in { 0 } else { v - n_in + 1 };
    let mut last_use: Vec<Option<usize>> = vec![None; nv];
    for (i, e) in c.ops.iter().enumerate() {
        for a in e.op.args() {
            last_use[a.0 as usize] = Some(i);
        }
    }
    for o in &c.outputs {
        last_use[o.value.0 as usize] = Some(n_ops);
    }
    let live_at = |p: usize| -> Vec<usize> {
        (0..nv)
            .filter(|&v| def_pos(v) <= p && last_use[v].is_some_and(|u| u >= p))
            .collect()
    };
    let live: Vec<Vec<usize>> = positions.iter().map(|&p| live_at(p)).collect();

    // Forward simulation from start index s (0 = circuit start, k+1 = positions[k]).
    // Returns, per later position index, Some(refresh count) if the segment is
    // feasible, and whether the segment to the end is feasible; plus the first
    // op that breaks the budget.
    struct Sim {
        to_pos: Vec<Option<u32>>,
        to_end: bool,
        breaks_at: Option<usize>,
    }
    let simulate = |s: usize| -> Sim {
        let start = if s == 0 { 0 } else { positions[s - 1] };
        let mut cur: Vec<u32> = vec![0; nv];
        for (i, inp) in c.inputs.iter().enumerate() {
            cur[i] = if s == 0 { inp.level } else { 0 };
        }
        let mut to_pos = vec![None; positions.len()];
        let mut next = s; // index into positions of the next candidate after start
        let mut breaks_at = None;
        for k in start..=n_ops {
            while next < positions.len() && positions[next] == k {
                if k > start {
                    let cnt = live[next].iter().filter(|&&v| cur[v] > 0).count() as u32;
                    to_pos[next] = Some(cnt);
                }
                next += 1;
            }
            if k == n_ops {
                break;
            }
            let e = &c.ops[k];
            let l = e.op.result_level(|v: ValueId| cur[v.0 as usize]);
            cur[n_in + k] = l;
            if l > max_level {
                breaks_at = Some(k);
                break;
            }
        }
        let to_end = breaks_at.is_none()
            && c.outputs
                .iter()
                .all(|o| cur[o.value.0 as usize] <= max_level);
        Sim {
            to_pos,
            to_end,
            breaks_at,
        }
    };

    // best[i]: (refreshed, cuts, previous index) for start index i (0 = start).
    type Best = Option<(u32, u32, usize)>;
    let mut best: Vec<Best> = vec![None; positions.len() + 1];
    best[0] = Some((0, 0, 0));
    let mut end_best: Best = None;
    let mut first_break: Option<usize> = None;
    for s in 0..=positions.len() {
        let Some((cost, cuts, _)) = best[s] else {
            continue;
        };
        let sim = simulate(s);
        if let Some(k) = sim.breaks_at {
            first_break = Some(first_break.map_or(k, |f: usize| f.max(k)));
        }
        for (j, r) in sim.to_pos.iter().enumerate() {
            let Some(r) = r else { continue };
            let cand = (cost + r, cuts + 1, s);
            let slot = &mut best[j + 1];
            if slot.is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                *slot = Some(cand);
            }
        }
        if sim.to_end {
            let cand = (cost, cuts, s);
            if end_best.is_none_or(|b| (cand.0, cand.1) < (b.0, b.1)) {
                end_best = Some(cand);
            }
        }
    }
    let Some((total, _, mut at)) = end_best else {
        // Name the layer holding the op that breaks the budget even right after a cut.
        let k = first_break.unwrap_or(0);
        let layer = c
            .layers
            .iter()
            .find(|l| l.ops[0] <= k && k < l.ops[1])
            .map(|l| format!("layer '{}' ({})", l.name, l.kind))
            .unwrap_or_else(|| format!("op #{k}"));
        return Err(FheError::Plan(format!(
            "{layer} alone needs more than max level {max_level} even right after a bootstrap"
        )));
    };
    let mut chosen: Vec<usize> = Vec::new();
    while at != 0 {
        chosen.push(at - 1);
        at = best[at].expect("reachable").2;
    }
    chosen.reverse();

    // Rebuild with the refreshes: replay levels to know which live values are above 0.
    let mut out = c.clone();
    let mut cur: Vec<u32> = c.inputs.iter().map(|i| i.level).collect();
    let mut points = Vec::new();
    let mut ci = 0;
    for k in 0..n_ops {
        if ci < chosen.len() && positions[chosen[ci]] == k {
            let vals: Vec<ValueId> = live[chosen[ci]]
                .iter()
                .filter(|&&v| cur[v] > 0)
                .map(|&v| ValueId(v as u32))
                .collect();
            for v in &vals {
                cur[v.0 as usize] = 0;
            }
            if !vals.is_empty() {
                points.push(BootstrapPoint {
                    before_op: k,
                    values: vals,
                });
            }
            ci += 1;
        }
        let l = c.ops[k].op.result_level(|v: ValueId| cur[v.0 as usize]);
        cur.push(l);
    }
    out.bootstraps = points;
    out.refresh_derived()?;
    let bootstrapped = out.stats.bootstraps;
    debug_assert_eq!(bootstrapped, total);
    Ok(BootstrapPlan {
        cut_before_layers: chosen.iter().map(|&i| cand[i].1).collect(),
        circuit: out,
        max_level,
        bootstrapped,
    })
}
