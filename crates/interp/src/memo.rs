//! Reusing computed values across runs of graphs that share their upstream part.
//!
//! A search that compiles one network many times, changing one activation per trial, runs
//! graphs that agree on everything upstream of the change. [`run_memo`] keys every value by a
//! structural hash of how it is computed (the op and its attributes, constant contents and
//! the hashes of its inputs, down to the graph inputs), keeps the outputs of polynomial nodes
//! in a [`Memo`], and on the next run starts from the deepest values it already has: the
//! graph is cut there (those values become inputs) and only what lies downstream runs.
//! The interpreter is deterministic and independent of chunking, so a value computed the same
//! way from the same data is the same tensor, bit for bit: results equal [`run`]'s.

use crate::error::InterpError;
use crate::run::{run, RunOptions};
use pannc_ir::{Dim, Graph, Op, Tensor, ValueId};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

/// Values kept between runs, for one data set (see the module doc). Entries are keyed by
/// value hash and the rows `[start, end)` of the data they cover.
pub struct Memo {
    data: u64,
    rows: usize,
    budget: usize,
    inner: Mutex<Inner>,
}

/// A value's hash and the rows `[start, end)` it covers.
type Key = (u64, usize, usize);

#[derive(Default)]
struct Inner {
    /// Value, generation last used, pinned.
    map: HashMap<Key, (Arc<Tensor>, u64, bool)>,
    generation: u64,
    bytes: usize,
    hits: usize,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        write!(
            f,
            "Memo {{ values: {}, bytes: {}, hits: {} }}",
            m.map.len(),
            m.bytes,
            m.hits
        )
    }
}

impl Memo {
    /// A memo for runs on (row ranges of) `data`, one tensor per graph input, holding at most
    /// `budget_bytes` of values.
    pub fn new(data: &[Tensor], budget_bytes: usize) -> Memo {
        let mut h = DefaultHasher::new();
        for t in data {
            format!("{:?}", t.dtype()).hash(&mut h);
            t.shape().hash(&mut h);
            match t {
                Tensor::F32(a) => a.iter().for_each(|x| x.to_bits().hash(&mut h)),
                Tensor::F64(a) => a.iter().for_each(|x| x.to_bits().hash(&mut h)),
                Tensor::I64(a) => a.iter().for_each(|x| x.hash(&mut h)),
                Tensor::Bool(a) => a.iter().for_each(|x| x.hash(&mut h)),
            }
        }
        Memo {
            data: h.finish(),
            rows: data
                .first()
                .map_or(0, |t| t.shape().first().copied().unwrap_or(0)),
            budget: budget_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Starts a new generation and drops the values no run used in the last `keep`
    /// generations (a search calls this once per trial). Values are also dropped, least
    /// recently used first, when new ones would exceed the memory budget.
    pub fn next_generation(&self, keep: u64) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.generation += 1;
        let oldest = m.generation.saturating_sub(keep);
        let mut freed = 0;
        m.map.retain(|_, (t, g, pinned)| {
            let live = *pinned || *g >= oldest;
            if !live {
                freed += t.len() * t.dtype().size();
            }
            live
        });
        m.bytes -= freed;
    }

    /// Pins the values used in the current generation (a search calls this after the trial
    /// whose graph becomes the base of the next ones) and unpins all others: pinned values
    /// survive generations and are dropped for room last.
    pub fn commit(&self) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let g = m.generation;
        for e in m.map.values_mut() {
            e.2 = e.1 == g;
        }
    }

    /// Values served from the memo so far.
    pub fn hits(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).hits
    }

    fn get(&self, key: (u64, usize, usize)) -> Option<Arc<Tensor>> {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let g = m.generation;
        let t = m.map.get_mut(&key).map(|e| {
            e.1 = g;
            e.0.clone()
        })?;
        m.hits += 1;
        Some(t)
    }

    /// Whether the memo holds `key`; marks it used in this generation.
    fn touch(&self, key: (u64, usize, usize)) -> bool {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let g = m.generation;
        match m.map.get_mut(&key) {
            Some(e) => {
                e.1 = g;
                true
            }
            None => false,
        }
    }

    /// Keeps `t` under `key`, making room by dropping the values least recently used (in an
    /// earlier generation); skips it when only this generation's values are left.
    fn put(&self, key: (u64, usize, usize), t: Tensor) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let size = t.len() * t.dtype().size();
        if m.map.contains_key(&key) || size > self.budget {
            return;
        }
        let g = m.generation;
        while m.bytes + size > self.budget {
            // Unpinned before pinned, then least recently used.
            let oldest = m
                .map
                .iter()
                .filter(|(_, e)| e.1 < g)
                .min_by_key(|(k, e)| (e.2, e.1, **k))
                .map(|(k, _)| *k);
            let Some(k) = oldest else { return };
            if let Some((t, _, _)) = m.map.remove(&k) {
                m.bytes -= t.len() * t.dtype().size();
            }
        }
        m.bytes += size;
        m.map.insert(key, (Arc::new(t), g, false));
    }
}

/// Structural hashes of every value of `g` (by `ValueId` index; 0 for missing ones): graph
/// inputs by position and the memo's data, constants by content, node outputs by op, input
/// hashes and output port.
fn value_hashes(g: &Graph, data: u64) -> Result<Vec<u64>, InterpError> {
    let n = g.value_ids().map(|v| v.index() + 1).max().unwrap_or(0);
    let mut hs = vec![0u64; n];
    for (k, &v) in g.inputs().iter().enumerate() {
        let mut h = DefaultHasher::new();
        ("input", k, data).hash(&mut h);
        hs[v.index()] = h.finish();
    }
    let order = g.topo_order().map_err(|e| InterpError::Graph {
        graph: g.name.clone(),
        msg: e.to_string(),
    })?;
    for id in order {
        let node = g.node(id);
        let mut h = DefaultHasher::new();
        match &node.op {
            Op::Constant(t) => {
                "constant".hash(&mut h);
                t.shape().hash(&mut h);
                format!("{:?}", t.dtype()).hash(&mut h);
                for x in t.to_f64_vec() {
                    x.to_bits().hash(&mut h);
                }
            }
            op => {
                format!("{op:?}").hash(&mut h);
                for &v in node.inputs() {
                    hs[v.index()].hash(&mut h);
                }
            }
        }
        let base = h.finish();
        for (port, &v) in node.outputs().iter().enumerate() {
            let mut h = DefaultHasher::new();
            (base, port).hash(&mut h);
            hs[v.index()] = h.finish();
        }
    }
    Ok(hs)
}

/// [`run`] on rows `[start, end)` of the memo's data (`inputs` are those rows), reusing the
/// memo's values where the graph computes the same thing and keeping its polynomials' outputs
/// for later runs. Results equal [`run`]'s.
pub fn run_memo(
    g: &Graph,
    inputs: &[Tensor],
    (start, end): (usize, usize),
    memo: &Memo,
    opts: &RunOptions,
) -> Result<Vec<Tensor>, InterpError> {
    let batch_rows = inputs.first().and_then(|t| t.shape().first().copied());
    let batch_sym = g
        .inputs()
        .first()
        .and_then(|&v| g.value(v).ty.as_ref())
        .and_then(|t| t.shape.first().cloned());
    // Only for what the memo was made for: rows of its data, batch-first inputs.
    let usable = end <= memo.rows
        && batch_rows == Some(end - start)
        && matches!(batch_sym, Some(Dim::Sym(_)));
    if !usable {
        return run(g, inputs, opts);
    }
    let hs = value_hashes(g, memo.data)?;
    let key = |v: ValueId| (hs[v.index()], start, end);
    let batch_major = |v: ValueId| {
        g.value(v)
            .ty
            .as_ref()
            .is_some_and(|t| t.shape.first() == batch_sym.as_ref())
    };
    // Walk back from the outputs; stop at values the memo holds. Everything above a cut is
    // marked used too (later runs that change something upstream of this cut need it).
    let mut cut: Vec<ValueId> = Vec::new();
    let mut needed: HashSet<ValueId> = HashSet::new();
    let mut above: HashSet<ValueId> = HashSet::new();
    let mut stack: Vec<ValueId> = g.outputs().to_vec();
    while let Some(v) = stack.pop() {
        if !needed.insert(v) {
            continue;
        }
        let Some(p) = g.producer(v) else { continue };
        if matches!(g.node(p).op, Op::Constant(_)) {
            continue;
        }
        if batch_major(v) && memo.touch(key(v)) {
            cut.push(v);
            let mut up: Vec<ValueId> = g.node(p).inputs().to_vec();
            while let Some(u) = up.pop() {
                if !above.insert(u) {
                    continue;
                }
                if let Some(q) = g.producer(u) {
                    if batch_major(u) {
                        memo.touch(key(u));
                    }
                    up.extend(g.node(q).inputs().iter().copied());
                }
            }
            continue;
        }
        stack.extend(g.node(p).inputs().iter().copied());
    }
    cut.sort();

    // Polynomial outputs this run computes: kept for the next ones.
    let mut keep: Vec<ValueId> = needed
        .iter()
        .copied()
        .filter(|&v| !cut.contains(&v) && batch_major(v))
        .filter(|&v| {
            g.producer(v)
                .is_some_and(|p| matches!(g.node(p).op, Op::Poly(_)))
        })
        .collect();
    keep.sort();
    let mut g2 = g.clone();
    let mut feeds: Vec<Tensor> = inputs.to_vec();
    for &v in &cut {
        let Some(t) = memo.get(key(v)) else {
            // Evicted since (another thread's generation change): run it all.
            return run(g, inputs, opts);
        };
        let name = format!("{}.memo{}", g.value(v).name, v.index());
        let x = g2
            .add_input(name, g.value(v).ty.clone())
            .map_err(|e| InterpError::Graph {
                graph: g.name.clone(),
                msg: e.to_string(),
            })?;
        for (u, slot) in g2.users(v) {
            g2.set_input(u, slot, x).map_err(|e| InterpError::Graph {
                graph: g.name.clone(),
                msg: e.to_string(),
            })?;
        }
        feeds.push((*t).clone());
    }
    let n_out = g.outputs().len();
    let mut outs: Vec<ValueId> = g
        .outputs()
        .iter()
        .map(|&o| {
            cut.iter()
                .position(|&c| c == o)
                .map_or(o, |i| g2.inputs()[g.inputs().len() + i])
        })
        .collect();
    // Kept values that are not outputs already become extra outputs.
    let extra: Vec<ValueId> = keep
        .iter()
        .copied()
        .filter(|v| !g.outputs().contains(v))
        .collect();
    outs.extend(&extra);
    g2.set_outputs(outs);
    // Drop what no longer feeds an output (upstream of the cut), consumers first.
    let mut live: HashSet<ValueId> = HashSet::new();
    let mut stack: Vec<ValueId> = g2.outputs().to_vec();
    while let Some(v) = stack.pop() {
        if live.insert(v) {
            if let Some(p) = g2.producer(v) {
                stack.extend(g2.node(p).inputs().iter().copied());
            }
        }
    }
    let order = g2.topo_order().map_err(|e| InterpError::Graph {
        graph: g.name.clone(),
        msg: e.to_string(),
    })?;
    for id in order.into_iter().rev() {
        if !g2.node(id).outputs().iter().any(|v| live.contains(v)) {
            g2.remove_node(id);
        }
    }
    let mut res = run(&g2, &feeds, opts)?;
    let kept = res.split_off(n_out);
    for (&v, t) in extra.iter().zip(kept) {
        memo.put(key(v), t);
    }
    for &v in &keep {
        if let Some(i) = g.outputs().iter().position(|&o| o == v) {
            memo.put(key(v), res[i].clone());
        }
    }
    Ok(res)
}
