//! The interpreter: runs a whole graph, optionally split into batch chunks in parallel.

use crate::error::InterpError;
use crate::eval::{self, Arg};
use crate::infer::{infer, node_label, Inferred};
use ndarray::{Axis, Slice};
use pannc_ir::{DType, Dim, Graph, NodeId, Op, Tensor, ValueId};
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Arithmetic precision of a run.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Tensors keep their dtypes (f32 models run in f32, like onnxruntime).
    #[default]
    F32,
    /// Every float constant and input is promoted to f64 (Cast to f32 yields f64), and
    /// float outputs are f64: a high-precision reference for error analysis.
    F64,
}

/// How [`run`] executes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    pub precision: Precision,
    /// Samples per chunk when the batch is split (0: never split). Splitting happens only
    /// when every graph input's first dimension is the same symbolic batch dimension and
    /// the graph provably treats samples independently; results do not depend on it.
    pub batch_chunk: usize,
    /// Worker threads for chunks (0: rayon's global pool).
    pub threads: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            precision: Precision::F32,
            batch_chunk: 64,
            threads: 0,
        }
    }
}

/// Runs `g` on `inputs` (in the order of `g.inputs()`) and returns its outputs (in the
/// order of `g.outputs()`).
///
/// Inputs are checked against the declared input types: dtype (f32 inputs may also be
/// given as f64 and vice versa in [`Precision::F64`] mode), rank and known dimensions;
/// symbolic dimensions match any size but must bind to the same size across inputs.
/// Nodes run in topological order and intermediate tensors are freed after their last use.
/// The result is bitwise independent of `batch_chunk` and `threads`.
///
/// A model exported for a fixed batch size (every input declares the same known first
/// dimension `b`, as exporters write when the example input had batch 1) accepts `n = k·b`
/// samples: it runs `k` times on `b` samples each (in parallel, like batch chunks) and the
/// outputs, which must then all have first dimension `b`, are concatenated.
pub fn run(g: &Graph, inputs: &[Tensor], opts: &RunOptions) -> Result<Vec<Tensor>, InterpError> {
    run_hooked(g, inputs, opts, None)
}

/// A callback that may rewrite the first output of chosen nodes while a graph runs (used to
/// inject perturbations for sensitivity analysis). It is called once per batch chunk with
/// the node, its first input and its first output, so it must be a pure function of them
/// for results to stay independent of chunking.
pub struct Hook<'a> {
    pub nodes: HashSet<NodeId>,
    #[allow(clippy::type_complexity)]
    pub f: &'a (dyn Fn(NodeId, &Tensor, &mut Tensor) + Sync),
}

/// [`run`], calling `hook` after each node in `hook.nodes`.
pub fn run_hooked(
    g: &Graph,
    inputs: &[Tensor],
    opts: &RunOptions,
    hook: Option<&Hook<'_>>,
) -> Result<Vec<Tensor>, InterpError> {
    let mut plan = Plan::new(g, opts.precision, hook.map(|h| &h.nodes))?;
    plan.hook = hook;
    let f64_mode = opts.precision == Precision::F64;
    let promote = |t: &Tensor| -> Option<Tensor> {
        (f64_mode && t.dtype() == DType::F32).then(|| t.cast(DType::F64))
    };
    let fixed = fixed_batch(g, inputs);
    let ranges: Vec<(usize, usize)> = match fixed {
        // A model exported for batches of exactly b: runs of b samples.
        Some(b) => {
            let n = inputs[0].shape()[0];
            (0..n).step_by(b).map(|s| (s, s + b)).collect()
        }
        None => {
            let batch = check_inputs(g, inputs, opts.precision)?;
            let chunk = opts.batch_chunk;
            let split = match &batch {
                Some((sym, n)) if chunk > 0 && *n > chunk && !inputs.is_empty() => {
                    chunkable(g, sym)
                }
                _ => false,
            };
            if !split {
                let args = inputs.iter().map(|t| match promote(t) {
                    Some(p) => Arg::Own(p),
                    None => Arg::Ref(t),
                });
                return plan.exec(args.collect());
            }
            let n = batch.as_ref().map_or(0, |b| b.1);
            (0..n)
                .step_by(chunk)
                .map(|s| (s, (s + chunk).min(n)))
                .collect()
        }
    };
    let work = || -> Result<Vec<Vec<Tensor>>, InterpError> {
        ranges
            .par_iter()
            .map(|&(s, e)| {
                let part: Vec<Tensor> = inputs.iter().map(|t| slice0(t, s, e)).collect();
                if fixed.is_some() {
                    check_inputs(g, &part, opts.precision)?;
                }
                let args = part
                    .into_iter()
                    .map(|c| Arg::Own(promote(&c).unwrap_or(c)))
                    .collect();
                plan.exec(args)
            })
            .collect()
    };
    let parts = if opts.threads > 0 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads)
            .build()
            .map_err(|e| InterpError::Graph {
                graph: g.name.clone(),
                msg: format!("thread pool: {e}"),
            })?;
        pool.install(work)?
    } else {
        work()?
    };
    if let (Some(b), Some(first)) = (fixed, parts.first()) {
        for (i, t) in first.iter().enumerate() {
            if t.shape().first() != Some(&b) {
                return Err(InterpError::Graph {
                    graph: g.name.clone(),
                    msg: format!(
                        "the model is declared for batches of {b} and was given {} samples, but output '{}' (shape {:?}) does not have the batch as its first axis, so the runs of {b} cannot be put together",
                        inputs[0].shape()[0],
                        g.value(g.outputs()[i]).name,
                        t.shape()
                    ),
                });
            }
        }
    }
    (0..g.outputs().len())
        .map(|i| concat0(g, i, &parts))
        .collect()
}

/// The declared batch `b` of a model exported for a fixed batch size, when `inputs` hold a
/// multiple of it: every graph input declares the same known first dimension `b`, and every
/// given input has the declared rank and the same first dimension `n = k·b` with `k > 1`.
/// (Exporters specialise the batch dimension to the example's, usually 1.)
fn fixed_batch(g: &Graph, inputs: &[Tensor]) -> Option<usize> {
    if inputs.is_empty() || inputs.len() != g.inputs().len() {
        return None;
    }
    let (mut b, mut n) = (None, None);
    for (&v, t) in g.inputs().iter().zip(inputs) {
        let ty = g.value(v).ty.as_ref()?;
        let Some(Dim::Known(d)) = ty.shape.first() else {
            return None;
        };
        if *d == 0 || t.shape().len() != ty.rank() || b.replace(*d).is_some_and(|x| x != *d) {
            return None;
        }
        let m = t.shape()[0];
        if n.replace(m).is_some_and(|x| x != m) {
            return None;
        }
    }
    let (b, n) = (b?, n?);
    (n > b && n % b == 0).then_some(b)
}

fn slice0(t: &Tensor, s: usize, e: usize) -> Tensor {
    let sl = Slice::from(s..e);
    match t {
        Tensor::F32(a) => Tensor::F32(a.slice_axis(Axis(0), sl).as_standard_layout().into_owned()),
        Tensor::F64(a) => Tensor::F64(a.slice_axis(Axis(0), sl).as_standard_layout().into_owned()),
        Tensor::I64(a) => Tensor::I64(a.slice_axis(Axis(0), sl).as_standard_layout().into_owned()),
        Tensor::Bool(a) => {
            Tensor::Bool(a.slice_axis(Axis(0), sl).as_standard_layout().into_owned())
        }
    }
}

fn concat0(g: &Graph, i: usize, parts: &[Vec<Tensor>]) -> Result<Tensor, InterpError> {
    let err = |msg: String| InterpError::Graph {
        graph: g.name.clone(),
        msg,
    };
    macro_rules! cat {
        ($v:ident) => {{
            let views: Option<Vec<_>> = parts
                .iter()
                .map(|p| {
                    if let Tensor::$v(a) = &p[i] {
                        Some(a.view())
                    } else {
                        None
                    }
                })
                .collect();
            let views =
                views.ok_or_else(|| err(format!("output {i} changes dtype between chunks")))?;
            Tensor::$v(
                ndarray::concatenate(Axis(0), &views)
                    .map_err(|e| err(format!("output {i}: {e}")))?,
            )
        }};
    }
    Ok(match &parts[0][i] {
        Tensor::F32(_) => cat!(F32),
        Tensor::F64(_) => cat!(F64),
        Tensor::I64(_) => cat!(I64),
        Tensor::Bool(_) => cat!(Bool),
    })
}

/// Checks inputs against declared types; returns the batch symbol and size when every
/// input's first dimension is the same symbol.
fn check_inputs(
    g: &Graph,
    inputs: &[Tensor],
    precision: Precision,
) -> Result<Option<(String, usize)>, InterpError> {
    if inputs.len() != g.inputs().len() {
        return Err(InterpError::Graph {
            graph: g.name.clone(),
            msg: format!("expects {} inputs, got {}", g.inputs().len(), inputs.len()),
        });
    }
    let mut binds: HashMap<String, (usize, usize)> = HashMap::new();
    let mut batch: Option<String> = None;
    let mut all_batched = true;
    for (i, (&v, t)) in g.inputs().iter().zip(inputs).enumerate() {
        let val = g.value(v);
        let err = |msg: String| InterpError::Input {
            index: i,
            name: val.name.clone(),
            msg,
        };
        let Some(ty) = &val.ty else {
            all_batched = false;
            continue;
        };
        let ok_dtype = ty.dtype == t.dtype()
            || (precision == Precision::F64 && ty.dtype.is_float() && t.dtype().is_float());
        if !ok_dtype {
            return Err(err(format!("expected {}, got {}", ty.dtype, t.dtype())));
        }
        let s = t.shape();
        if s.len() != ty.rank() {
            return Err(err(format!(
                "expected shape {ty}, got {s:?} (rank {} ≠ {})",
                s.len(),
                ty.rank()
            )));
        }
        for (ax, (d, &n)) in ty.shape.iter().zip(s).enumerate() {
            match d {
                Dim::Known(k) if *k != n => {
                    return Err(err(format!(
                        "expected shape {ty}, got {s:?} (axis {ax}: {n} ≠ {k})"
                    )))
                }
                Dim::Sym(name) => match binds.get(name) {
                    Some(&(k, j)) if k != n => {
                        return Err(err(format!(
                            "dimension {name} is {n} here (axis {ax}) but {k} in input {j} ('{}')",
                            g.value(g.inputs()[j]).name
                        )))
                    }
                    Some(_) => {}
                    None => {
                        binds.insert(name.clone(), (n, i));
                    }
                },
                _ => {}
            }
        }
        match ty.shape.first() {
            Some(Dim::Sym(name)) if batch.as_ref().is_none_or(|b| b == name) => {
                batch = Some(name.clone())
            }
            _ => all_batched = false,
        }
    }
    Ok(match batch {
        Some(b) if all_batched => {
            let n = binds[&b].0;
            Some((b, n))
        }
        _ => None,
    })
}

/// A prepared graph: constants (promoted in f64 mode), ops, use counts.
struct Plan<'g> {
    g: &'g Graph,
    steps: Vec<Step<'g>>,
    consts: HashMap<ValueId, Cow<'g, Tensor>>,
    /// Uses of each value by nodes (index by `ValueId::index`).
    uses: Vec<usize>,
    is_output: Vec<bool>,
    nvals: usize,
    hook: Option<&'g Hook<'g>>,
}

struct Step<'g> {
    id: NodeId,
    op: Cow<'g, Op>,
    /// Nodes evaluated in the same pass over this Conv's output (see [`fuse`]).
    fused: Option<Fused>,
}

/// A Conv → [BatchNormalization] → [Relu] chain run as one step: the Conv's kernel applies
/// the normalization and the ReLU to each output element as it writes it, by the same
/// operations in the same order as the separate kernels (`eval::Epilogue`), so the result is
/// bitwise the unfused graph's. The intermediate values are never materialised.
struct Fused {
    /// The BatchNormalization node and its ε.
    bn: Option<(NodeId, f32)>,
    relu: Option<NodeId>,
    /// The last node of the chain: the step produces its output.
    last: NodeId,
}

/// The chain fused after Conv `id`, if any: each link's input must be the previous link's
/// only output, used nowhere else and not a graph output; no link may be hooked; the
/// normalization's parameters must be constants of the weight's dtype, shaped `[M]` for a
/// constant weight of `M` output channels (so the fused step cannot fail where the separate
/// ops would not).
fn fuse(
    g: &Graph,
    id: NodeId,
    uses: &[usize],
    is_output: &[bool],
    hooked: Option<&HashSet<NodeId>>,
) -> Option<Fused> {
    let free = |n: NodeId| hooked.is_none_or(|h| !h.contains(&n));
    let node = g.node(id);
    if !matches!(node.op, Op::Conv { .. }) || !free(id) || !(2..=3).contains(&node.inputs().len()) {
        return None;
    }
    let w = g.constant(node.inputs()[1])?;
    let m = *w.shape().first()?;
    // The single reader of `v`, when `v` feeds nothing else.
    let next = |v: ValueId| -> Option<NodeId> {
        if uses[v.index()] != 1 || is_output[v.index()] {
            return None;
        }
        match g.users(v).as_slice() {
            [(u, 0)] if free(*u) && g.node(*u).outputs().len() == 1 => Some(*u),
            _ => None,
        }
    };
    let mut fused = Fused {
        bn: None,
        relu: None,
        last: id,
    };
    let mut v = *node.outputs().first()?;
    if node.outputs().len() != 1 {
        return None;
    }
    if let Some(b) = next(v) {
        if let Op::BatchNormalization { epsilon } = g.node(b).op {
            let params = &g.node(b).inputs()[1..];
            let ok = params.len() == 4
                && params.iter().all(|&p| {
                    g.constant(p)
                        .is_some_and(|t| t.shape() == [m] && t.dtype() == w.dtype())
                });
            if ok {
                fused.bn = Some((b, epsilon));
                fused.last = b;
                v = g.node(b).outputs()[0];
            }
        }
    }
    if let Some(r) = next(v) {
        if matches!(g.node(r).op, Op::Relu) && (fused.bn.is_some() || fused.last == id) {
            fused.relu = Some(r);
            fused.last = r;
        }
    }
    (fused.last != id).then_some(fused)
}

impl<'g> Plan<'g> {
    fn new(
        g: &'g Graph,
        prec: Precision,
        hooked: Option<&HashSet<NodeId>>,
    ) -> Result<Plan<'g>, InterpError> {
        let order = g.topo_order().map_err(|e| InterpError::Graph {
            graph: g.name.clone(),
            msg: e.to_string(),
        })?;
        let nvals = g.value_ids().map(|v| v.index() + 1).max().unwrap_or(0);
        let mut uses = vec![0usize; nvals];
        let mut is_output = vec![false; nvals];
        for &o in g.outputs() {
            g.try_value(o).map_err(|e| InterpError::Graph {
                graph: g.name.clone(),
                msg: e.to_string(),
            })?;
            is_output[o.index()] = true;
        }
        let f64_mode = prec == Precision::F64;
        // Nodes kept without interpretation: refuse up front, naming the first one that is
        // not a constant (the one the user will recognise, e.g. ai.onnx.ml ZipMap).
        let opaque: Vec<NodeId> = order
            .iter()
            .copied()
            .filter(|&id| matches!(g.node(id).op, Op::Opaque(_)))
            .collect();
        if let Some(&first) = opaque
            .iter()
            .find(|&&id| !g.node(id).inputs().is_empty())
            .or(opaque.first())
        {
            let Op::Opaque(o) = &g.node(first).op else {
                unreachable!("filtered")
            };
            return Err(InterpError::Node {
                node: node_label(g, first),
                op: "Opaque",
                msg: format!(
                    "{} is kept from the model without interpretation; pannc cannot run it ({} such node(s); run the part of the graph before them)",
                    o.qualified_name(),
                    opaque.len()
                ),
            });
        }
        let mut steps = Vec::new();
        let mut consts = HashMap::new();
        for &id in &order {
            for &v in g.node(id).inputs() {
                g.try_value(v).map_err(|e| InterpError::Graph {
                    graph: g.name.clone(),
                    msg: e.to_string(),
                })?;
                uses[v.index()] += 1;
            }
        }
        let mut absorbed: HashSet<NodeId> = HashSet::new();
        for id in order {
            if absorbed.contains(&id) {
                continue;
            }
            let node = g.node(id);
            match &node.op {
                Op::Constant(t) => {
                    let Some(&out) = node.outputs().first() else {
                        return Err(crate::error::op_err(&node.op, "has no output")
                            .at_node(&node_label(g, id)));
                    };
                    let t = if f64_mode && t.dtype() == DType::F32 {
                        Cow::Owned(t.cast(DType::F64))
                    } else {
                        Cow::Borrowed(t)
                    };
                    consts.insert(out, t);
                }
                op => {
                    let op = match op {
                        Op::Cast { to: DType::F32 } if f64_mode => {
                            Cow::Owned(Op::Cast { to: DType::F64 })
                        }
                        Op::ConstantOfShape { value }
                            if f64_mode && value.dtype() == DType::F32 =>
                        {
                            Cow::Owned(Op::ConstantOfShape {
                                value: value.cast(DType::F64),
                            })
                        }
                        op => Cow::Borrowed(op),
                    };
                    let fused = fuse(g, id, &uses, &is_output, hooked);
                    if let Some(f) = &fused {
                        absorbed.extend(f.bn.map(|b| b.0));
                        absorbed.extend(f.relu);
                    }
                    steps.push(Step { id, op, fused });
                }
            }
        }
        Ok(Plan {
            g,
            steps,
            consts,
            uses,
            is_output,
            nvals,
            hook: None,
        })
    }

    fn exec(&self, inputs: Vec<Arg<'_>>) -> Result<Vec<Tensor>, InterpError> {
        let g = self.g;
        let mut vals: Vec<Option<Arg<'_>>> = (0..self.nvals).map(|_| None).collect();
        for (&v, t) in g.inputs().iter().zip(inputs) {
            vals[v.index()] = Some(t);
        }
        for (v, t) in &self.consts {
            vals[v.index()] = Some(Arg::Ref(t.as_ref()));
        }
        let mut rem = self.uses.clone();
        for step in &self.steps {
            let node = g.node(step.id);
            let ins = node.inputs();
            let label = || node_label(g, step.id);
            // Take ownership of inputs at their last use, so kernels can reuse buffers.
            let mut owned: Vec<Option<Arg<'_>>> = (0..ins.len()).map(|_| None).collect();
            for (slot, &v) in ins.iter().enumerate() {
                let i = v.index();
                rem[i] -= 1;
                let once = ins.iter().filter(|&&w| w == v).count() == 1;
                if rem[i] == 0 && !self.is_output[i] && once {
                    owned[slot] = vals[i].take();
                }
            }
            let mut args = Vec::with_capacity(ins.len());
            for (slot, o) in owned.into_iter().enumerate() {
                let v = ins[slot];
                match o {
                    Some(a) => args.push(a),
                    None => match &vals[v.index()] {
                        Some(a) => args.push(Arg::Ref(a.t())),
                        None => {
                            return Err(InterpError::Node {
                                node: label(),
                                op: step.op.name(),
                                msg: format!("input '{}' is not available", g.value(v).name),
                            })
                        }
                    },
                }
            }
            let hooked = self.hook.filter(|h| h.nodes.contains(&step.id));
            let first_in = match (hooked, args.first()) {
                (Some(_), Some(a)) => Some(a.t().clone()),
                _ => None,
            };
            if let Some(f) = &step.fused {
                let out = self
                    .exec_fused(step, f, &args, &vals)
                    .map_err(|e| e.at_node(&label()))?;
                drop(args);
                // Release the inputs of every node of the chain at their last use.
                let mut chain = vec![step.id];
                chain.extend(f.bn.map(|b| b.0));
                chain.extend(f.relu);
                for (k, &n) in chain.iter().enumerate() {
                    let ins = g.node(n).inputs();
                    for (slot, &v) in ins.iter().enumerate() {
                        if k > 0 && slot == 0 {
                            continue; // the previous link's output, never materialised
                        }
                        if k > 0 {
                            rem[v.index()] -= 1;
                        }
                        if rem[v.index()] == 0 && !self.is_output[v.index()] {
                            vals[v.index()] = None;
                        }
                    }
                }
                vals[g.node(f.last).outputs()[0].index()] = Some(Arg::Own(out));
                continue;
            }
            let mut outs = eval::eval_args(&step.op, args, node.outputs().len())
                .map_err(|e| e.at_node(&label()))?;
            if let (Some(h), Some(x), Some(y)) = (hooked, &first_in, outs.first_mut()) {
                (h.f)(step.id, x, y);
            }
            for &v in ins {
                if rem[v.index()] == 0 && !self.is_output[v.index()] {
                    vals[v.index()] = None;
                }
            }
            let mut outs = outs.into_iter();
            for (port, &v) in node.outputs().iter().enumerate() {
                let needed = self.uses[v.index()] > 0 || self.is_output[v.index()];
                match outs.next() {
                    Some(t) if needed => vals[v.index()] = Some(Arg::Own(t)),
                    Some(_) => {}
                    None if needed => {
                        return Err(InterpError::Node {
                            node: label(),
                            op: step.op.name(),
                            msg: format!("output {port} ('{}') is not supported", g.value(v).name),
                        })
                    }
                    None => {}
                }
            }
        }
        let mut res = Vec::with_capacity(g.outputs().len());
        for &o in g.outputs() {
            let t = match &vals[o.index()] {
                Some(a) => a.t().clone(),
                None => {
                    return Err(InterpError::Graph {
                        graph: g.name.clone(),
                        msg: format!("output '{}' was not computed", g.value(o).name),
                    })
                }
            };
            res.push(t);
        }
        Ok(res)
    }
}

impl Plan<'_> {
    /// A fused Conv chain on the Conv's `args`, with the normalization's constants from `vals`.
    fn exec_fused(
        &self,
        step: &Step<'_>,
        f: &Fused,
        args: &[Arg<'_>],
        vals: &[Option<Arg<'_>>],
    ) -> Result<Tensor, InterpError> {
        let Op::Conv { window, group } = step.op.as_ref() else {
            unreachable!("only Conv steps are fused")
        };
        let param = |v: ValueId| -> Result<&Tensor, InterpError> {
            vals[v.index()]
                .as_ref()
                .map(|a| a.t())
                .ok_or_else(|| InterpError::Graph {
                    graph: self.g.name.clone(),
                    msg: format!("constant '{}' is not available", self.g.value(v).name),
                })
        };
        let bn = match f.bn {
            Some((b, eps)) => {
                let ins = self.g.node(b).inputs();
                Some((
                    eps,
                    [
                        param(ins[1])?,
                        param(ins[2])?,
                        param(ins[3])?,
                        param(ins[4])?,
                    ],
                ))
            }
            None => None,
        };
        let epi = eval::Epilogue {
            bn,
            relu: f.relu.is_some(),
        };
        eval::conv(&step.op, window, *group, args, &epi)
    }
}

/// The symbolic batch dimension along which [`run`] would split this graph's inputs into
/// chunks: every input's first dimension is that symbol and every sample provably flows
/// through the graph independently of the others (no reduction, softmax, concatenation or
/// contraction across it, no arithmetic on the batch size, every output batch-major).
/// `None` means runs are never split (and are still correct).
pub fn splittable_batch(g: &Graph) -> Option<String> {
    let mut sym: Option<&str> = None;
    for &v in g.inputs() {
        match g.value(v).ty.as_ref()?.shape.first()? {
            Dim::Sym(s) if sym.is_none_or(|x| x == s) => sym = Some(s),
            _ => return None,
        }
    }
    let sym = sym?;
    chunkable(g, sym).then(|| sym.to_string())
}

/// Whether every sample of the batch `sym` flows through the graph independently of the
/// others, so the batch can be split into chunks with identical results. Conservative:
/// anything not understood says no.
fn chunkable(g: &Graph, sym: &str) -> bool {
    let Ok(inf) = infer(g) else { return false };
    let Ok(order) = g.topo_order() else {
        return false;
    };
    batch_independent(g, &order, &inf, sym).is_some()
}

fn batch_independent(g: &Graph, order: &[NodeId], inf: &Inferred, sym: &str) -> Option<()> {
    // Position of the batch symbol in a value's shape: Some(Some(p)), Some(None) if absent,
    // None (reject) if it appears twice or the value is untyped.
    let pos = |v: ValueId| -> Option<Option<usize>> {
        let t = inf.types.get(&v)?;
        let ps: Vec<usize> = t
            .shape
            .iter()
            .enumerate()
            .filter(|(_, d)| matches!(d, Dim::Sym(s) if s == sym))
            .map(|(i, _)| i)
            .collect();
        match ps.len() {
            0 => Some(None),
            1 => Some(Some(ps[0])),
            _ => None,
        }
    };
    let rank = |v: ValueId| inf.types.get(&v).map_or(0, |t| t.rank());
    let dim = |v: ValueId, i: usize| inf.types.get(&v).and_then(|t| t.shape.get(i).cloned());
    // Values whose content (not shape) depends on the batch size: Shape chains.
    let mut tainted: HashSet<ValueId> = HashSet::new();
    for &v in g.inputs() {
        if pos(v)? != Some(0) {
            return None;
        }
    }
    for &id in order {
        let node = g.node(id);
        let ins = node.inputs();
        let outs = node.outputs();
        let pin: Vec<Option<usize>> = ins.iter().map(|&v| pos(v)).collect::<Option<_>>()?;
        let tin: Vec<bool> = ins.iter().map(|v| tainted.contains(v)).collect();
        let pout: Vec<Option<usize>> = outs.iter().map(|&v| pos(v)).collect::<Option<_>>()?;
        if pin.iter().all(Option::is_none) && !tin.contains(&true) {
            if pout.iter().any(Option::is_some) {
                return None;
            }
            continue;
        }
        let batched_only_first = pin[1..].iter().all(Option::is_none) && !tin.contains(&true);
        let out0 = pout[0];
        let ok = match &node.op {
            Op::Relu
            | Op::LeakyRelu { .. }
            | Op::Sigmoid
            | Op::Tanh
            | Op::Erf
            | Op::Gelu { .. }
            | Op::Silu
            | Op::Poly(_)
            | Op::Clip { .. }
            | Op::Dropout
            | Op::HardSigmoid { .. }
            | Op::HardSwish
            | Op::Neg
            | Op::Abs
            | Op::Sqrt
            | Op::Reciprocal
            | Op::Exp
            | Op::Log
            | Op::Floor
            | Op::Ceil
            | Op::Not => batched_only_first && out0 == pin[0],
            Op::Identity | Op::Cast { .. } => {
                if tin[0] {
                    tainted.insert(outs[0]);
                    out0.is_none()
                } else {
                    out0 == pin[0]
                }
            }
            Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Pow
            | Op::Mod { .. }
            | Op::Equal
            | Op::Less
            | Op::LessOrEqual
            | Op::Greater
            | Op::GreaterOrEqual
            | Op::And
            | Op::Or
            | Op::Xor
            | Op::Max
            | Op::Min
            | Op::Where => {
                let p = out0?;
                let r = rank(outs[0]);
                !tin.contains(&true)
                    && ins.iter().zip(&pin).all(|(&v, &pi)| {
                        let off = r - rank(v);
                        match pi {
                            Some(q) => q + off == p,
                            None => p < off || dim(v, p - off) == Some(Dim::Known(1)),
                        }
                    })
            }
            Op::Conv { .. }
            | Op::MaxPool { .. }
            | Op::AveragePool { .. }
            | Op::GlobalAveragePool
            | Op::BatchNormalization { .. }
            | Op::Lrn { .. }
            | Op::Flatten { .. } => {
                batched_only_first && pin[0] == Some(0) && pout.iter().all(|p| *p == Some(0))
            }
            Op::Gemm { trans_a, .. } => {
                let c_ok = ins
                    .get(2)
                    .is_none_or(|&c| rank(c) < 2 || dim(c, 0) == Some(Dim::Known(1)));
                batched_only_first
                    && pin[0] == Some(if *trans_a { 1 } else { 0 })
                    && out0 == Some(0)
                    && c_ok
            }
            Op::MatMul => {
                let (ra, rb) = (rank(ins[0]), rank(ins[1]));
                let a_ok = pin[0].is_none_or(|p| ra >= 2 && p < ra - 1);
                let b_ok = pin[1].is_none_or(|p| rb >= 3 && p < rb - 2);
                !tin.contains(&true) && a_ok && b_ok && out0.is_some()
            }
            Op::Softmax { axis } | Op::LogSoftmax { axis } => {
                let ax = eval::norm_axis(&node.op, *axis, rank(ins[0])).ok()?;
                batched_only_first && pin[0].is_some_and(|p| p != ax) && out0.is_some()
            }
            Op::ArgMax { axis, .. } | Op::ArgMin { axis, .. } => {
                let ax = eval::norm_axis(&node.op, *axis, rank(ins[0])).ok()?;
                batched_only_first && pin[0].is_some_and(|p| p != ax) && out0.is_some()
            }
            Op::LayerNormalization { axis, .. } => {
                let ax = eval::norm_axis(&node.op, *axis, rank(ins[0])).ok()?;
                batched_only_first
                    && pin[0].is_some_and(|p| p < ax)
                    && pout.iter().all(|q| *q == pin[0])
            }
            Op::Split { axis, .. } => {
                let ax = eval::norm_axis(&node.op, *axis, rank(ins[0])).ok()?;
                batched_only_first
                    && pin[0].is_some_and(|p| p != ax)
                    && pout.iter().all(|q| *q == pin[0])
            }
            Op::Slice => {
                let c: Option<Vec<Vec<i64>>> = ins[1..]
                    .iter()
                    .map(|&v| {
                        g.constant(v)
                            .map(|t| t.to_i64_vec())
                            .or_else(|| const_ints(inf, v))
                    })
                    .collect();
                let params = c.and_then(|c| {
                    eval::slice_params(
                        &node.op,
                        rank(ins[0]),
                        &c[0],
                        &c[1],
                        c.get(2).map(Vec::as_slice),
                        c.get(3).map(Vec::as_slice),
                    )
                    .ok()
                })?;
                batched_only_first && pin[0].is_some_and(|p| params[p].is_none()) && out0 == pin[0]
            }
            Op::ReduceMean {
                noop_with_empty_axes,
                ..
            }
            | Op::ReduceSum {
                noop_with_empty_axes,
                ..
            }
            | Op::ReduceMax {
                noop_with_empty_axes,
                ..
            }
            | Op::ReduceMin {
                noop_with_empty_axes,
                ..
            } => {
                let axes = match ins.get(1) {
                    Some(&a) => Some(
                        g.constant(a)
                            .map(|t| t.to_i64_vec())
                            .or_else(|| const_ints(inf, a))?,
                    ),
                    None => None,
                };
                let red = eval::reduce_axes(
                    &node.op,
                    axes.as_deref(),
                    rank(ins[0]),
                    *noop_with_empty_axes,
                )
                .ok()?;
                batched_only_first
                    && pin[0].is_some_and(|p| red.is_none_or(|r| !r.contains(&p)))
                    && out0.is_some()
            }
            Op::Reshape { .. } => {
                if pin[0].is_none() && tin[0] {
                    tainted.insert(outs[0]);
                    out0.is_none() && pin[1].is_none()
                } else {
                    pin[0] == Some(0) && pin[1].is_none() && out0 == Some(0)
                }
            }
            Op::Transpose { .. } => out0.is_some(),
            Op::Squeeze | Op::Unsqueeze => {
                if tin[0] {
                    tainted.insert(outs[0]);
                    out0.is_none() && pin[0].is_none()
                } else {
                    batched_only_first && out0.is_some()
                }
            }
            Op::Concat { axis } => {
                if tin.iter().any(|&t| t) {
                    tainted.insert(outs[0]);
                    pin.iter().all(Option::is_none) && out0.is_none()
                } else {
                    let ax = eval::norm_axis(&node.op, *axis, rank(ins[0])).ok()?;
                    pin.iter().all(|p| p.is_some_and(|p| p != ax)) && out0 == pin[0]
                }
            }
            Op::Pad { .. } => {
                let p = pin[0]?;
                let pads = g
                    .constant(ins[1])
                    .map(|t| t.to_i64_vec())
                    .or_else(|| const_ints(inf, ins[1]))?;
                let axes = match ins.get(3) {
                    Some(&a) => Some(
                        g.constant(a)
                            .map(|t| t.to_i64_vec())
                            .or_else(|| const_ints(inf, a))?,
                    ),
                    None => None,
                };
                let am = eval::pad_amounts(&node.op, rank(ins[0]), &pads, axes.as_deref()).ok()?;
                batched_only_first && am[p] == (0, 0) && out0 == Some(p)
            }
            Op::Shape { start, end } => {
                let p = pin[0]?;
                let (s, e) = eval::shape_range(rank(ins[0]), *start, *end);
                if (s..e).contains(&p) {
                    tainted.insert(outs[0]);
                }
                out0.is_none()
            }
            Op::Gather { axis } => {
                if tin[1] {
                    false
                } else if tin[0] {
                    tainted.insert(outs[0]);
                    pin[0].is_none() && pin[1].is_none() && out0.is_none()
                } else {
                    let ax = eval::norm_axis(&node.op, *axis, rank(ins[0])).ok()?;
                    match (pin[0], pin[1]) {
                        (Some(p), None) => p != ax && out0.is_some(),
                        (None, Some(_)) => out0.is_some(),
                        _ => false,
                    }
                }
            }
            Op::ConstantOfShape { .. } => out0 == Some(0),
            Op::Constant(_) => true,
            #[allow(unreachable_patterns)]
            _ => false,
        };
        if !ok {
            return None;
        }
    }
    for &o in g.outputs() {
        if pos(o)? != Some(0) || tainted.contains(&o) {
            return None;
        }
    }
    Some(())
}

fn const_ints(inf: &Inferred, v: ValueId) -> Option<Vec<i64>> {
    inf.symv
        .get(&v)?
        .iter()
        .map(|e| {
            if let crate::infer::SymInt::K(k) = e {
                Some(*k)
            } else {
                None
            }
        })
        .collect()
}
