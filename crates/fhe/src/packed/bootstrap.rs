//! Bootstrap placement for packed programs.
//!
//! **Model.** Refreshing a value means a `bootstrap` op right after the op that defines it;
//! every later reader then sees level 0. (Refreshing later, for only some readers, never
//! helps: a refreshed copy is at level 0, below any unrefreshed one, and costs the same.) A
//! placement is a set of values; it is feasible when every op's level stays ≤ `L` (a poly's
//! internal levels never exceed its result's), each refreshed value is at level ≥ 1 when it
//! is refreshed and is *eligible* (the compiler measured its range within the bootstrap input
//! bound, on every slot); its cost is the number of ciphertexts refreshed.
//!
//! **Why not cuts.** The layer-boundary dynamic program of [`crate::bootstrap`] refreshes
//! *every* live value at a cut, so in a residual block the skip branch is refreshed together
//! with the main branch. In a ResNet that doubles the bootstraps: the skip `x` of a block only
//! needs to arrive at the join at a level ≤ `L` (the `add` takes the max of its operands'
//! levels; the runner mod-switches the lower one down), and refreshing the main branch alone,
//! right before or after a polynomial, is enough.
//!
//! **Algorithm (exact).** Ops are visited in program order. After op `j`, the future depends
//! only on the levels of the *live* values (defined, and read by a later op or an output), so
//! a state is the vector of their levels and the dynamic program keeps, per state, the
//! cheapest way to reach it (ties: fewer bootstrap ops, then the first found — deterministic).
//! Each op either keeps its result's level or, if eligible and at level ≥ 1, refreshes it.
//! States are pruned by Pareto dominance (levels componentwise ≤ and cost ≤, which is sound
//! because every level rule is monotone), so for networks whose live sets are small (a ResNet
//! has at most three live values between ops) the state set stays tiny and the result is the
//! minimum, as the brute-force tests check on small residual graphs. If a program's state set
//! ever exceeds [`MAX_STATES`], the cheapest states are kept and the result says it is not
//! proven minimal (`exact: false`).

use std::collections::BTreeMap;

use super::{op_where, OpKind, PackedError, Program, Result, Weights};

/// Cap on the states kept per op (see the module doc).
pub const MAX_STATES: usize = 20_000;

/// The result of [`place`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Values (ids in the program without bootstraps) refreshed right after their definition,
    /// ascending.
    pub refreshed: Vec<u32>,
    /// Ciphertexts refreshed in total.
    pub ciphertexts: usize,
    /// True when no state was dropped: the placement is minimal.
    pub exact: bool,
    /// The largest state set the dynamic program held.
    pub max_states: usize,
}

/// Eligibility by the values' `range` and `ckks.bootstrap.input_bound`.
pub fn eligible_by_range(p: &Program) -> Vec<bool> {
    let b = p.ckks.bootstrap.input_bound;
    p.values
        .iter()
        .map(|v| v.range.is_some_and(|[lo, hi]| lo >= -b && hi <= b))
        .collect()
}

#[derive(Clone, Copy, Debug)]
struct Info {
    cost: usize,
    boots: usize,
    /// Index into the arena of refresh decisions (usize::MAX: none).
    trail: usize,
}

/// Places bootstraps in `p` (which must have none) so that no level exceeds `max_level`,
/// refreshing the fewest ciphertexts; `eligible[v]` says whether value `v` may be refreshed.
pub fn place(p: &Program, max_level: u32, eligible: &[bool]) -> Result<Placement> {
    let n_in = p.inputs.len();
    let n_ops = p.ops.len();
    let nv = n_in + n_ops;
    if let Some((j, op)) = p
        .ops
        .iter()
        .enumerate()
        .find(|(_, o)| matches!(o.kind, OpKind::Bootstrap { .. }))
    {
        return Err(PackedError::Placement(format!(
            "{} : the program already has bootstraps",
            op_where(j, op)
        )));
    }
    // Last reader of every value (n_ops: an output).
    let mut last_use: Vec<Option<usize>> = vec![None; nv];
    for (j, op) in p.ops.iter().enumerate() {
        for a in op.kind.args() {
            last_use[a as usize] = Some(j);
        }
    }
    for o in &p.outputs {
        last_use[o.value as usize] = Some(n_ops);
    }
    let mut live: Vec<u32> = (0..n_in as u32)
        .filter(|&v| last_use[v as usize].is_some())
        .collect();
    let start: Vec<u32> = live.iter().map(|&v| p.values[v as usize].level).collect();
    if let Some(&l) = start.iter().find(|&&l| l > max_level) {
        return Err(PackedError::Placement(format!(
            "an input enters at level {l} > max level {max_level}"
        )));
    }
    let mut states: BTreeMap<Vec<u32>, Info> = BTreeMap::new();
    states.insert(
        start,
        Info {
            cost: 0,
            boots: 0,
            trail: usize::MAX,
        },
    );
    let mut arena: Vec<(u32, usize)> = Vec::new();
    let mut exact = true;
    let mut max_states = 1;
    for (j, op) in p.ops.iter().enumerate() {
        let v = (n_in + j) as u32;
        let cts = p.values[v as usize].ciphertexts;
        // The live set after op j.
        let mut next_live: Vec<u32> = live
            .iter()
            .copied()
            .filter(|&a| last_use[a as usize].is_some_and(|u| u > j))
            .collect();
        let v_live = last_use[v as usize].is_some_and(|u| u > j);
        if v_live {
            next_live.push(v);
        }
        let pos: BTreeMap<u32, usize> = live.iter().enumerate().map(|(i, &a)| (a, i)).collect();
        let mut next: BTreeMap<Vec<u32>, Info> = BTreeMap::new();
        let offer =
            |key: Vec<u32>, info: Info, next: &mut BTreeMap<Vec<u32>, Info>| match next.get(&key) {
                Some(old) if (old.cost, old.boots) <= (info.cost, info.boots) => {}
                _ => {
                    next.insert(key, info);
                }
            };
        for (key, info) in &states {
            let l = op.kind.result_level(|a| key[pos[&a]]);
            if l > max_level {
                continue;
            }
            let carried: Vec<u32> = live
                .iter()
                .zip(key)
                .filter(|(a, _)| last_use[**a as usize].is_some_and(|u| u > j))
                .map(|(_, &l)| l)
                .collect();
            let with = |lv: u32| {
                let mut k = carried.clone();
                if v_live {
                    k.push(lv);
                }
                k
            };
            offer(with(l), *info, &mut next);
            if eligible.get(v as usize).copied().unwrap_or(false) && l >= 1 {
                arena.push((v, info.trail));
                offer(
                    with(0),
                    Info {
                        cost: info.cost + cts,
                        boots: info.boots + 1,
                        trail: arena.len() - 1,
                    },
                    &mut next,
                );
            }
        }
        if next.is_empty() {
            let alone = op.kind.result_level(|_| 0);
            let why = if alone > max_level {
                format!("alone needs {alone} levels > max level {max_level}")
            } else {
                format!(
                    "exceeds max level {max_level} and no refresh before it helps (the values it depends on are not eligible: their range is unknown or exceeds the bootstrap input bound {})",
                    p.ckks.bootstrap.input_bound
                )
            };
            return Err(PackedError::Placement(format!("{} {why}", op_where(j, op))));
        }
        // Pareto pruning: drop states another state matches or beats in every level and cost.
        let mut items: Vec<(Vec<u32>, Info)> = next.into_iter().collect();
        items.sort_by(|a, b| (a.1.cost, a.1.boots, &a.0).cmp(&(b.1.cost, b.1.boots, &b.0)));
        let mut kept: Vec<(Vec<u32>, Info)> = Vec::new();
        for (k, i) in items {
            let dominated = kept.iter().any(|(kk, ii)| {
                ii.cost <= i.cost && ii.boots <= i.boots && kk.iter().zip(&k).all(|(a, b)| a <= b)
            });
            if !dominated {
                kept.push((k, i));
            }
            if kept.len() > MAX_STATES {
                exact = false;
                break;
            }
        }
        kept.truncate(MAX_STATES);
        max_states = max_states.max(kept.len());
        states = kept.into_iter().collect();
        live = next_live;
    }
    let best = states
        .iter()
        .min_by(|a, b| (a.1.cost, a.1.boots, a.0).cmp(&(b.1.cost, b.1.boots, b.0)))
        .map(|(_, i)| *i)
        .ok_or_else(|| PackedError::Placement("no feasible placement".into()))?;
    let mut refreshed = Vec::new();
    let mut t = best.trail;
    while t != usize::MAX {
        refreshed.push(arena[t].0);
        t = arena[t].1;
    }
    refreshed.sort_unstable();
    Ok(Placement {
        refreshed,
        ciphertexts: best.cost,
        exact,
        max_states,
    })
}

/// `p` with a `bootstrap` op after the definition of every value in `refreshed` (readers and
/// outputs renumbered to the refreshed copy), levels, depth and counts recomputed.
pub fn insert(p: &Program, w: &Weights, refreshed: &[u32]) -> Result<Program> {
    let n_in = p.inputs.len();
    let set: std::collections::BTreeSet<u32> = refreshed.iter().copied().collect();
    let mut map: Vec<u32> = (0..n_in as u32).collect();
    let mut q = p.clone();
    q.values.truncate(n_in);
    q.ops.clear();
    q.layers.clear();
    let node_of: BTreeMap<usize, &str> = p.layers.iter().map(|l| (l.op, l.node.as_str())).collect();
    for (j, op) in p.ops.iter().enumerate() {
        let mut op = op.clone();
        for a in op.kind.args_mut() {
            *a = map[*a as usize];
        }
        let id = q.values.len() as u32;
        op.out = id;
        let mut val = p.values[n_in + j].clone();
        val.id = id;
        if let Some(n) = node_of.get(&j) {
            q.layers.push(super::Layer {
                op: q.ops.len(),
                node: n.to_string(),
            });
        }
        q.ops.push(op);
        q.values.push(val.clone());
        map.push(id);
        if set.contains(&((n_in + j) as u32)) {
            let b = id + 1;
            if let Some(n) = node_of.get(&j) {
                q.layers.push(super::Layer {
                    op: q.ops.len(),
                    node: n.to_string(),
                });
            }
            q.ops.push(super::Op {
                out: b,
                kind: OpKind::Bootstrap { input: id },
                level: 0,
            });
            val.id = b;
            q.values.push(val);
            map[n_in + j] = b;
        }
    }
    for o in &mut q.outputs {
        o.value = map[o.value as usize];
    }
    q.refresh_derived(w)?;
    Ok(q)
}
