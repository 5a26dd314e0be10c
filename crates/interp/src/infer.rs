//! Static shape and dtype inference.
//!
//! Types flow from the graph inputs' declared types and the constants. Symbolic dimensions
//! ([`Dim::Sym`], normally the batch `N`) propagate where the op keeps them (Conv keeps
//! `N`, Flatten(axis=1) of `[N,8,7,7]` gives `[N,392]`); where a size depends on unknown
//! values it becomes a fresh symbol `unkK`. Small integer tensors are tracked by value, and
//! symbolically when they hold symbolic sizes (`Shape(x)` of `[N,8,7,7]` is `[N,8,7,7]`),
//! so the Shape → Gather → Unsqueeze → Concat → Reshape chains that exporters emit resolve.
//! Nodes whose inputs are all known small tensors are evaluated outright.

use crate::error::{op_err, InterpError};
use crate::eval::{self, Arg};
use pannc_ir::{DType, Dim, Graph, NodeId, Op, Tensor, TensorType, ValueId};
use std::collections::{HashMap, HashSet};

/// Nodes whose inputs are all known are evaluated when their inputs and output hold at
/// most this many elements.
const FOLD_LIMIT: usize = 1 << 16;

/// Fills `value_mut(v).ty` for every value of `g` from the graph inputs' types (which must
/// be set) and the constants. Existing types of non-input values are overwritten. Dropout's
/// optional mask output (a boolean tensor, which the IR has no dtype for) is left untyped.
pub fn infer_types(g: &mut Graph) -> Result<(), InterpError> {
    let inf = infer(g)?;
    for (v, t) in inf.types {
        g.value_mut(v).ty = Some(t);
    }
    Ok(())
}

/// One element of a small symbolic integer vector.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SymInt {
    K(i64),
    S(String),
}

/// The result of inference, kept apart from the graph.
pub(crate) struct Inferred {
    pub types: HashMap<ValueId, TensorType>,
    /// Values of small 0-D/1-D i64 tensors, possibly holding symbolic sizes.
    pub symv: HashMap<ValueId, Vec<SymInt>>,
}

/// A label for a node in messages: its name, or its first output's name.
pub(crate) fn node_label(g: &Graph, id: NodeId) -> String {
    let n = g.node(id);
    if !n.name.is_empty() {
        return n.name.clone();
    }
    match n.outputs().first() {
        Some(&v) => format!("<producer of '{}'>", g.value(v).name),
        None => "<unnamed>".into(),
    }
}

struct Ctx<'g> {
    g: &'g Graph,
    types: HashMap<ValueId, TensorType>,
    symv: HashMap<ValueId, Vec<SymInt>>,
    folded: HashMap<ValueId, Tensor>,
    used_names: HashSet<String>,
    next: usize,
    /// Outputs of opaque nodes and values computed from them.
    foreign: HashSet<ValueId>,
}

impl<'g> Ctx<'g> {
    fn fresh(&mut self) -> Dim {
        loop {
            let s = format!("unk{}", self.next);
            self.next += 1;
            if self.used_names.insert(s.clone()) {
                return Dim::Sym(s);
            }
        }
    }
    fn known(&self, v: ValueId) -> Option<&Tensor> {
        self.g.constant(v).or_else(|| self.folded.get(&v))
    }
    fn ints(&self, v: ValueId) -> Option<Vec<SymInt>> {
        self.symv.get(&v).cloned()
    }
    fn const_ints(&self, v: ValueId) -> Option<Vec<i64>> {
        self.symv
            .get(&v)?
            .iter()
            .map(|e| if let SymInt::K(k) = e { Some(*k) } else { None })
            .collect()
    }
}

fn dims_of(s: &[usize]) -> Vec<Dim> {
    s.iter().map(|&d| Dim::Known(d)).collect()
}

fn kn(d: &Dim) -> Option<usize> {
    match d {
        Dim::Known(n) => Some(*n),
        Dim::Sym(_) => None,
    }
}

pub(crate) fn infer(g: &Graph) -> Result<Inferred, InterpError> {
    let order = g.topo_order().map_err(|e| InterpError::Graph {
        graph: g.name.clone(),
        msg: e.to_string(),
    })?;
    let mut cx = Ctx {
        g,
        types: HashMap::new(),
        symv: HashMap::new(),
        folded: HashMap::new(),
        used_names: HashSet::new(),
        next: 0,
        foreign: HashSet::new(),
    };
    for (i, &v) in g.inputs().iter().enumerate() {
        let val = g.value(v);
        let Some(t) = &val.ty else {
            return Err(InterpError::Input {
                index: i,
                name: val.name.clone(),
                msg: "has no declared type".into(),
            });
        };
        for d in &t.shape {
            if let Dim::Sym(s) = d {
                cx.used_names.insert(s.clone());
            }
        }
        cx.types.insert(v, t.clone());
    }
    for id in order {
        infer_node(&mut cx, id).map_err(|e| e.at_node(&node_label(g, id)))?;
    }
    Ok(Inferred {
        types: cx.types,
        symv: cx.symv,
    })
}

fn infer_node(cx: &mut Ctx<'_>, id: NodeId) -> Result<(), InterpError> {
    let g = cx.g;
    let node = g.node(id);
    let op = &node.op;
    let ins = node.inputs();
    let outs = node.outputs();
    let (lo, hi) = op.input_arity();
    if ins.len() < lo || ins.len() > hi {
        return Err(op_err(
            op,
            format!("takes {lo}..={hi} inputs, has {}", ins.len()),
        ));
    }
    let (min_out, max_out) = match op {
        Op::MaxPool { .. } | Op::Dropout => (1, 2),
        Op::LayerNormalization { .. } => (1, 3),
        Op::Split { num_outputs, .. } => (*num_outputs, *num_outputs),
        Op::Opaque(_) => (0, usize::MAX),
        _ => (1, 1),
    };
    if outs.is_empty() || outs.len() < min_out || outs.len() > max_out {
        return Err(op_err(
            op,
            format!(
                "has {} outputs, expected {}",
                outs.len(),
                if min_out == max_out {
                    min_out.to_string()
                } else {
                    format!("{min_out}..={max_out}")
                }
            ),
        ));
    }
    // Opaque nodes keep their declared output types; what depends on an untyped opaque
    // output stays untyped (it belongs to the part of the graph pannc does not interpret).
    if let Op::Opaque(_) = op {
        for &v in outs {
            cx.foreign.insert(v);
            if let Some(t) = &g.value(v).ty {
                cx.types.insert(v, t.clone());
            }
        }
        return Ok(());
    }
    let mut its: Vec<TensorType> = Vec::with_capacity(ins.len());
    for &v in ins {
        match cx.types.get(&v) {
            Some(t) => its.push(t.clone()),
            None if cx.foreign.contains(&v) => {
                cx.foreign.extend(outs.iter().copied());
                return Ok(());
            }
            None => {
                return Err(op_err(
                    op,
                    format!("input '{}' has no type", g.value(v).name),
                ))
            }
        }
    }
    if ins.iter().any(|v| cx.foreign.contains(v)) {
        cx.foreign.extend(outs.iter().copied());
    }
    // Constant folding of small all-known subgraphs.
    let all_known = !matches!(op, Op::Constant(_))
        && !ins.is_empty()
        && ins
            .iter()
            .try_fold(0usize, |a, &v| cx.known(v).map(|t| a + t.len()))
            .is_some_and(|n| n <= FOLD_LIMIT);
    if all_known {
        // Infer first, so that the output size is bounded before evaluating.
        let tys = rule(cx, op, ins, &its)?;
        let small = tys.iter().all(|t| {
            t.known_shape().is_some_and(|s| {
                s.iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(d))
                    .is_some_and(|n| n <= FOLD_LIMIT)
            })
        });
        if small {
            let args = ins
                .iter()
                .map(|&v| Arg::Ref(cx.known(v).expect("known")))
                .collect();
            let res = eval::eval_args(op, args, outs.len())?;
            for (&v, t) in outs.iter().zip(res) {
                record(cx, v, TensorType::known(t.dtype(), t.shape()), Some(t));
            }
        } else {
            for (&v, t) in outs.iter().zip(tys) {
                record(cx, v, t, None);
            }
        }
        return Ok(());
    }
    let tys = rule(cx, op, ins, &its)?;
    for (&v, t) in outs.iter().zip(tys) {
        record(cx, v, t, None);
    }
    if let Some(sv) = sym_value(cx, op, ins, &its) {
        // A fully known value becomes a known tensor, so that the chains around it fold.
        let ks: Option<Vec<i64>> = sv
            .iter()
            .map(|e| if let SymInt::K(k) = e { Some(*k) } else { None })
            .collect();
        if let (Some(ks), Some(t)) = (ks, cx.types.get(&outs[0])) {
            if t.dtype == DType::I64 && t.rank() <= 1 {
                let shape: Vec<usize> = if t.rank() == 0 {
                    vec![]
                } else {
                    vec![ks.len()]
                };
                if let Some(tv) = Tensor::from_i64(&shape, ks) {
                    cx.folded.insert(outs[0], tv);
                }
            }
        }
        cx.symv.insert(outs[0], sv);
    }
    Ok(())
}

fn record(cx: &mut Ctx<'_>, v: ValueId, t: TensorType, val: Option<Tensor>) {
    if let Some(Tensor::I64(a)) = val.as_ref().or_else(|| cx.g.constant(v)) {
        if a.ndim() <= 1 && a.len() <= 64 {
            cx.symv.insert(v, a.iter().map(|&k| SymInt::K(k)).collect());
        }
    }
    if let Some(tv) = val {
        cx.folded.insert(v, tv);
    }
    cx.types.insert(v, t);
}

/// Symbolic value propagation for small integer tensors (not all-known inputs).
fn sym_value(cx: &Ctx<'_>, op: &Op, ins: &[ValueId], its: &[TensorType]) -> Option<Vec<SymInt>> {
    match op {
        Op::Shape { start, end } => {
            let s = &its[0].shape;
            let (a, b) = eval::shape_range(s.len(), *start, *end);
            Some(
                s[a..b]
                    .iter()
                    .map(|d| match d {
                        Dim::Known(n) => SymInt::K(*n as i64),
                        Dim::Sym(x) => SymInt::S(x.clone()),
                    })
                    .collect(),
            )
        }
        Op::Identity | Op::Squeeze | Op::Unsqueeze | Op::Dropout | Op::Reshape { .. } => {
            if its[0].shape.len() > 1 && !matches!(op, Op::Reshape { .. }) {
                return None;
            }
            cx.ints(ins[0])
        }
        Op::Cast { to: DType::I64 } => cx.ints(ins[0]),
        Op::Size => {
            let n = its[0]
                .known_shape()?
                .iter()
                .try_fold(1i64, |a, &d| a.checked_mul(i64::try_from(d).ok()?))?;
            Some(vec![SymInt::K(n)])
        }
        Op::Gather { axis } => {
            let data = cx.ints(ins[0])?;
            if its[0].shape.len() != 1 || !(*axis == 0 || *axis == -1) {
                return None;
            }
            let idx = cx.const_ints(ins[1])?;
            let n = data.len() as i64;
            idx.iter()
                .map(|&i| {
                    let j = if i < 0 { i + n } else { i };
                    (0..n).contains(&j).then(|| data[j as usize].clone())
                })
                .collect()
        }
        Op::Concat { .. } => {
            let mut v = Vec::new();
            for &i in ins {
                v.extend(cx.ints(i)?);
            }
            Some(v)
        }
        Op::Slice => {
            if its[0].shape.len() != 1 {
                return None;
            }
            let data = cx.ints(ins[0])?;
            let c: Vec<Vec<i64>> = ins[1..]
                .iter()
                .map(|&v| cx.const_ints(v))
                .collect::<Option<_>>()?;
            let params = eval::slice_params(
                op,
                1,
                &c[0],
                &c[1],
                c.get(2).map(Vec::as_slice),
                c.get(3).map(Vec::as_slice),
            )
            .ok()?;
            match params[0] {
                None => Some(data),
                Some((s, e, st)) => {
                    let (first, len) = eval::slice_axis(data.len(), s, e, st);
                    Some(
                        (0..len as i64)
                            .map(|k| data[(first + k * st) as usize].clone())
                            .collect(),
                    )
                }
            }
        }
        _ => None,
    }
}

fn need_float(op: &Op, t: &TensorType) -> Result<(), InterpError> {
    if !t.dtype.is_float() {
        return Err(op_err(
            op,
            format!("expects a float tensor, got {}", t.dtype),
        ));
    }
    Ok(())
}

fn need_num(op: &Op, t: &TensorType) -> Result<(), InterpError> {
    if t.dtype == DType::Bool {
        return Err(op_err(op, "expects numbers, got bool"));
    }
    Ok(())
}

fn need_bool(op: &Op, t: &TensorType) -> Result<(), InterpError> {
    if t.dtype != DType::Bool {
        return Err(op_err(
            op,
            format!("expects a bool tensor, got {}", t.dtype),
        ));
    }
    Ok(())
}

/// A 1-D i64 input (shapes, repeats, slice bounds).
fn need_ints(op: &Op, t: &TensorType, what: &str) -> Result<(), InterpError> {
    if t.dtype != DType::I64 || t.rank() > 1 {
        return Err(op_err(
            op,
            format!("{what} must be a 1-D i64 tensor, got {t}"),
        ));
    }
    Ok(())
}

/// The dimensions a shape input (Expand) asks for: its value where tracked (symbolic entries
/// as symbols), else fresh symbols for each of its (known) length.
fn shape_spec(
    cx: &mut Ctx<'_>,
    op: &Op,
    v: ValueId,
    t: &TensorType,
) -> Result<Vec<Dim>, InterpError> {
    need_ints(op, t, "shape")?;
    match cx.ints(v) {
        Some(list) => list
            .into_iter()
            .map(|e| match e {
                SymInt::K(k) => usize::try_from(k)
                    .map(Dim::Known)
                    .map_err(|_| op_err(op, format!("shape has negative dimension {k}"))),
                SymInt::S(s) => Ok(Dim::Sym(s)),
            })
            .collect(),
        None => match t.shape.first().and_then(kn) {
            Some(k) => {
                check_rank(op, k)?;
                Ok((0..k).map(|_| cx.fresh()).collect())
            }
            None => Err(op_err(
                op,
                "cannot infer the output rank from a shape of unknown length",
            )),
        },
    }
}

fn same_dtypes(op: &Op, its: &[TensorType]) -> Result<DType, InterpError> {
    let d = its[0].dtype;
    for t in &its[1..] {
        if t.dtype != d {
            return Err(op_err(
                op,
                format!("mixed input dtypes {d} and {}", t.dtype),
            ));
        }
    }
    Ok(d)
}

/// Broadcasts two symbolic shapes.
fn broadcast(cx: &mut Ctx<'_>, op: &Op, a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, InterpError> {
    let r = a.len().max(b.len());
    let one = Dim::Known(1);
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        let da = if i + a.len() >= r {
            &a[i + a.len() - r]
        } else {
            &one
        };
        let db = if i + b.len() >= r {
            &b[i + b.len() - r]
        } else {
            &one
        };
        out.push(match (da, db) {
            (x, y) if x == y => x.clone(),
            (Dim::Known(1), y) => y.clone(),
            (x, Dim::Known(1)) => x.clone(),
            (Dim::Known(x), Dim::Known(y)) => {
                return Err(op_err(
                    op,
                    format!(
                        "shapes {} and {} are not broadcastable (axis {i}: {x} vs {y})",
                        fmt_dims(a),
                        fmt_dims(b)
                    ),
                ))
            }
            (Dim::Known(k), Dim::Sym(_)) | (Dim::Sym(_), Dim::Known(k)) => Dim::Known(*k),
            (Dim::Sym(_), Dim::Sym(_)) => cx.fresh(),
        });
    }
    Ok(out)
}

fn fmt_ints(v: &[SymInt]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|e| match e {
            SymInt::K(k) => k.to_string(),
            SymInt::S(s) => s.clone(),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

pub(crate) fn fmt_dims(d: &[Dim]) -> String {
    let v: Vec<String> = d.iter().map(|x| x.to_string()).collect();
    format!("[{}]", v.join(","))
}

/// Product of dims: known if all known, the symbol if it is the only non-1 factor.
fn product(cx: &mut Ctx<'_>, op: &Op, d: &[Dim]) -> Result<Dim, InterpError> {
    let mut k: usize = 1;
    let mut syms = Vec::new();
    for x in d {
        match x {
            Dim::Known(n) => {
                k = k
                    .checked_mul(*n)
                    .ok_or_else(|| op_err(op, "shape product overflows"))?
            }
            Dim::Sym(s) => syms.push(s.clone()),
        }
    }
    Ok(match (syms.len(), k) {
        (0, _) => Dim::Known(k),
        (_, 0) => Dim::Known(0),
        (1, 1) => Dim::Sym(syms.pop().expect("one")),
        _ => cx.fresh(),
    })
}

/// Substitutes symbolic dims by `fill(i)` so that the static shape functions can run; the
/// caller replaces the affected outputs by fresh symbols.
fn subst(d: &[Dim], fill: impl Fn(usize) -> usize) -> Vec<usize> {
    d.iter()
        .enumerate()
        .map(|(i, x)| kn(x).unwrap_or_else(|| fill(i)))
        .collect()
}

fn dilated_kernel(w: &pannc_ir::Window, kernel: &[usize], i: usize) -> usize {
    let dil = w.dilations.get(i).copied().unwrap_or(1).max(1);
    dil.saturating_mul(kernel.get(i).copied().unwrap_or(1).saturating_sub(1))
        .saturating_add(1)
}

/// Output types of one node.
fn rule(
    cx: &mut Ctx<'_>,
    op: &Op,
    ins: &[ValueId],
    its: &[TensorType],
) -> Result<Vec<TensorType>, InterpError> {
    if let Op::Constant(t) = op {
        return Ok(vec![TensorType::known(t.dtype(), t.shape())]);
    }
    let Some(t0) = its.first() else {
        return Err(op_err(op, "has no inputs"));
    };
    let ty = |d: DType, s: Vec<Dim>| TensorType::new(d, s);
    Ok(match op {
        Op::Constant(_) => unreachable!("handled above"),
        Op::Conv { window, group } => {
            let dt = same_dtypes(op, its)?;
            need_float(op, t0)?;
            let x = &t0.shape;
            let Some(ws) = its[1].known_shape() else {
                return Err(op_err(
                    op,
                    format!("weight shape {} must be static", fmt_dims(&its[1].shape)),
                ));
            };
            if x.len() < 3 || ws.len() != x.len() {
                return Err(op_err(
                    op,
                    format!(
                        "input {} and weight {ws:?} must have equal rank ≥ 3",
                        fmt_dims(x)
                    ),
                ));
            }
            let kernel = ws[2..].to_vec();
            let xs = subst(x, |i| match i {
                0 => 1,
                1 => ws[1] * (*group).max(1),
                _ => dilated_kernel(window, &kernel, i - 2),
            });
            let bias = its.get(2).map(|b| subst(&b.shape, |_| ws[0]));
            let (_, out) = eval::conv_shapes(op, window, *group, &xs, &ws, bias.as_deref())?;
            let mut d = vec![x[0].clone(), Dim::Known(out[1])];
            for i in 2..x.len() {
                d.push(if kn(&x[i]).is_some() {
                    Dim::Known(out[i])
                } else {
                    cx.fresh()
                });
            }
            vec![ty(dt, d)]
        }
        Op::MaxPool { window } | Op::AveragePool { window, .. } => {
            need_float(op, t0)?;
            let x = &t0.shape;
            let xs = subst(x, |i| {
                if i < 2 {
                    1
                } else {
                    dilated_kernel(window, &window.kernel_shape, i - 2)
                }
            });
            let (_, out) = eval::pool_shapes(op, window, &xs)?;
            let mut d = vec![x[0].clone(), x[1].clone()];
            for i in 2..x.len() {
                d.push(if kn(&x[i]).is_some() {
                    Dim::Known(out[i])
                } else {
                    cx.fresh()
                });
            }
            let mut v = vec![ty(t0.dtype, d.clone())];
            if matches!(op, Op::MaxPool { .. }) {
                v.push(ty(DType::I64, d));
            }
            v
        }
        Op::Gemm {
            trans_a, trans_b, ..
        } => {
            let dt = same_dtypes(op, its)?;
            let (a, b) = (&t0.shape, &its[1].shape);
            if a.len() != 2 || b.len() != 2 {
                return Err(op_err(
                    op,
                    format!(
                        "A and B must be 2-D, got {} and {}",
                        fmt_dims(a),
                        fmt_dims(b)
                    ),
                ));
            }
            let (m, k) = if *trans_a {
                (&a[1], &a[0])
            } else {
                (&a[0], &a[1])
            };
            let (k2, n) = if *trans_b {
                (&b[1], &b[0])
            } else {
                (&b[0], &b[1])
            };
            if let (Some(x), Some(y)) = (kn(k), kn(k2)) {
                if x != y {
                    return Err(op_err(
                        op,
                        format!("inner dimensions differ: A' is {m}×{k}, B' is {k2}×{n}"),
                    ));
                }
            }
            let out = vec![m.clone(), n.clone()];
            if let Some(c) = its.get(2) {
                let ok = c.shape.len() <= 2
                    && c.shape.iter().rev().zip(out.iter().rev()).all(|(d, w)| {
                        match (kn(d), kn(w)) {
                            (Some(x), Some(y)) => x == y || x == 1,
                            _ => true,
                        }
                    });
                if !ok {
                    return Err(op_err(
                        op,
                        format!(
                            "C of shape {} does not broadcast to {}",
                            fmt_dims(&c.shape),
                            fmt_dims(&out)
                        ),
                    ));
                }
            }
            vec![ty(dt, out)]
        }
        Op::MatMul => {
            let dt = same_dtypes(op, its)?;
            let (a, b) = (&t0.shape, &its[1].shape);
            if a.is_empty() || b.is_empty() {
                return Err(op_err(op, "operands must have rank ≥ 1"));
            }
            let a2: Vec<Dim> = if a.len() == 1 {
                vec![Dim::Known(1), a[0].clone()]
            } else {
                a.clone()
            };
            let b2: Vec<Dim> = if b.len() == 1 {
                vec![b[0].clone(), Dim::Known(1)]
            } else {
                b.clone()
            };
            let (ra, rb) = (a2.len(), b2.len());
            if let (Some(x), Some(y)) = (kn(&a2[ra - 1]), kn(&b2[rb - 2])) {
                if x != y {
                    return Err(op_err(
                        op,
                        format!("inner dimensions differ: {} × {}", fmt_dims(a), fmt_dims(b)),
                    ));
                }
            }
            let mut out = broadcast(cx, op, &a2[..ra - 2], &b2[..rb - 2])?;
            if a.len() > 1 {
                out.push(a2[ra - 2].clone());
            }
            if b.len() > 1 {
                out.push(b2[rb - 1].clone());
            }
            vec![ty(dt, out)]
        }
        Op::Add | Op::Sub | Op::Mul | Op::Div => {
            let dt = same_dtypes(op, its)?;
            vec![ty(dt, broadcast(cx, op, &t0.shape, &its[1].shape)?)]
        }
        Op::BatchNormalization { .. } => {
            let dt = same_dtypes(op, its)?;
            need_float(op, t0)?;
            if t0.rank() < 2 {
                return Err(op_err(
                    op,
                    format!(
                        "input must have rank ≥ 2 (N, C, ...), got {}",
                        fmt_dims(&t0.shape)
                    ),
                ));
            }
            for (name, p) in ["scale", "B", "mean", "var"].iter().zip(&its[1..]) {
                let ok = p.rank() == 1
                    && (kn(&p.shape[0]).is_none()
                        || kn(&t0.shape[1]).is_none()
                        || p.shape[0] == t0.shape[1]);
                if !ok {
                    return Err(op_err(
                        op,
                        format!(
                            "{name} has shape {}, expected [{}] (the input's channels)",
                            fmt_dims(&p.shape),
                            t0.shape[1]
                        ),
                    ));
                }
            }
            vec![ty(dt, t0.shape.clone())]
        }
        Op::Relu | Op::Clip { .. } | Op::Identity => {
            if let Op::Clip { .. } = op {
                for b in &its[1..] {
                    if b.known_shape()
                        .is_some_and(|s| s.iter().product::<usize>() > 1)
                    {
                        return Err(op_err(
                            op,
                            format!("bounds must be scalars, got shape {}", fmt_dims(&b.shape)),
                        ));
                    }
                    if b.dtype != t0.dtype {
                        return Err(op_err(
                            op,
                            format!("bound dtype {} ≠ input dtype {}", b.dtype, t0.dtype),
                        ));
                    }
                }
            }
            vec![t0.clone()]
        }
        Op::Dropout => vec![t0.clone(), ty(DType::Bool, t0.shape.clone())],
        Op::LeakyRelu { .. }
        | Op::Sigmoid
        | Op::Tanh
        | Op::Erf
        | Op::Gelu { .. }
        | Op::Silu
        | Op::Poly(_) => {
            need_float(op, t0)?;
            vec![t0.clone()]
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            need_float(op, t0)?;
            eval::norm_axis(op, *axis, t0.rank())?;
            vec![t0.clone()]
        }
        Op::Lrn { size, .. } => {
            need_float(op, t0)?;
            if t0.rank() < 2 {
                return Err(op_err(
                    op,
                    format!(
                        "input must have rank ≥ 2 (N, C, ...), got {}",
                        fmt_dims(&t0.shape)
                    ),
                ));
            }
            if *size == 0 {
                return Err(op_err(op, "size must be at least 1"));
            }
            vec![t0.clone()]
        }
        Op::GlobalAveragePool => {
            need_float(op, t0)?;
            if t0.rank() < 2 {
                return Err(op_err(
                    op,
                    format!("input must have rank ≥ 2, got {}", fmt_dims(&t0.shape)),
                ));
            }
            let mut d = t0.shape[..2].to_vec();
            d.extend(std::iter::repeat_n(Dim::Known(1), t0.rank() - 2));
            vec![ty(t0.dtype, d)]
        }
        Op::ReduceMean {
            keepdims,
            noop_with_empty_axes,
        } => {
            need_float(op, t0)?;
            reduce_rule(cx, op, ins, t0, *keepdims, *noop_with_empty_axes)?
        }
        Op::Flatten { axis } => {
            let r = t0.rank() as i64;
            if *axis < -r || *axis > r {
                return Err(op_err(
                    op,
                    format!("axis {axis} is out of range for rank {r}"),
                ));
            }
            let a = if *axis < 0 { axis + r } else { *axis } as usize;
            let d0 = product(cx, op, &t0.shape[..a])?;
            let d1 = product(cx, op, &t0.shape[a..])?;
            vec![ty(t0.dtype, vec![d0, d1])]
        }
        Op::Reshape { allowzero } => vec![ty(
            t0.dtype,
            reshape_rule(cx, op, *allowzero, t0, ins[1], &its[1])?,
        )],
        Op::Transpose { perm } => {
            let p = eval::transpose_perm(op, perm, t0.rank())?;
            vec![ty(
                t0.dtype,
                p.iter().map(|&i| t0.shape[i].clone()).collect(),
            )]
        }
        Op::Concat { axis } => {
            let dt = same_dtypes(op, its)?;
            let r = t0.rank();
            if r == 0 {
                return Err(op_err(op, "cannot concatenate scalars"));
            }
            let ax = eval::norm_axis(op, *axis, r)?;
            let mut out = t0.shape.clone();
            for t in &its[1..] {
                if t.rank() != r {
                    return Err(op_err(
                        op,
                        format!(
                            "input shapes {} and {} differ in rank",
                            fmt_dims(&t0.shape),
                            fmt_dims(&t.shape)
                        ),
                    ));
                }
                for (i, (o, d)) in out.iter_mut().zip(&t.shape).enumerate() {
                    if i == ax {
                        continue;
                    }
                    match (kn(o), kn(d)) {
                        (Some(a), Some(b)) if a != b => {
                            return Err(op_err(
                                op,
                                format!(
                                    "input shapes {} and {} differ outside axis {ax}",
                                    fmt_dims(&t0.shape),
                                    fmt_dims(&t.shape)
                                ),
                            ))
                        }
                        (None, Some(b)) => *o = Dim::Known(b),
                        _ => {}
                    }
                }
            }
            let along: Vec<Dim> = its.iter().map(|t| t.shape[ax].clone()).collect();
            out[ax] = match along.iter().map(kn).collect::<Option<Vec<usize>>>() {
                Some(v) => Dim::Known(
                    v.iter()
                        .try_fold(0usize, |a, &b| a.checked_add(b))
                        .ok_or_else(|| op_err(op, "size overflows"))?,
                ),
                None if along.iter().filter(|d| **d != Dim::Known(0)).count() == 1 => along
                    .into_iter()
                    .find(|d| *d != Dim::Known(0))
                    .expect("one"),
                None => cx.fresh(),
            };
            vec![ty(dt, out)]
        }
        Op::Pad { .. } => {
            let r = t0.rank();
            let pads = cx.const_ints(ins[1]);
            let axes = match ins.get(3) {
                Some(&a) => cx.const_ints(a).map(Some),
                None => Some(None),
            };
            let d = match (pads, axes) {
                (Some(p), Some(ax)) => {
                    let am = eval::pad_amounts(op, r, &p, ax.as_deref())?;
                    let mut d = Vec::with_capacity(r);
                    for (x, &(b, e)) in t0.shape.iter().zip(&am) {
                        d.push(match kn(x) {
                            Some(n) => Dim::Known(eval::pad_shape(op, &[n], &[(b, e)])?[0]),
                            None if b == 0 && e == 0 => x.clone(),
                            None => cx.fresh(),
                        });
                    }
                    d
                }
                _ => (0..r).map(|_| cx.fresh()).collect(),
            };
            if let Some(c) = its.get(2) {
                if c.dtype != t0.dtype {
                    return Err(op_err(
                        op,
                        format!("constant_value dtype {} ≠ data dtype {}", c.dtype, t0.dtype),
                    ));
                }
            }
            vec![ty(t0.dtype, d)]
        }
        Op::Squeeze => {
            let d = match ins.get(1) {
                Some(&a) => {
                    let axes = cx
                        .const_ints(a)
                        .ok_or_else(|| op_err(op, "axes must be a constant"))?;
                    let r = t0.rank();
                    let mut drop = vec![false; r];
                    for &x in &axes {
                        let x = eval::norm_axis(op, x, r)?;
                        if kn(&t0.shape[x]).is_some_and(|n| n != 1) {
                            return Err(op_err(
                                op,
                                format!(
                                    "cannot squeeze axis {x} of size {} (shape {})",
                                    t0.shape[x],
                                    fmt_dims(&t0.shape)
                                ),
                            ));
                        }
                        drop[x] = true;
                    }
                    if axes.is_empty() {
                        t0.shape
                            .iter()
                            .filter(|d| **d != Dim::Known(1))
                            .cloned()
                            .collect()
                    } else {
                        t0.shape
                            .iter()
                            .zip(&drop)
                            .filter(|(_, &dr)| !dr)
                            .map(|(d, _)| d.clone())
                            .collect()
                    }
                }
                None => t0
                    .shape
                    .iter()
                    .filter(|d| **d != Dim::Known(1))
                    .cloned()
                    .collect(),
            };
            vec![ty(t0.dtype, d)]
        }
        Op::Unsqueeze => {
            let axes = cx
                .const_ints(ins[1])
                .ok_or_else(|| op_err(op, "axes must be a constant"))?;
            let pos = eval::unsqueeze_axes(op, t0.rank(), &axes)?;
            vec![ty(
                t0.dtype,
                eval::unsqueeze_shape(&t0.shape, &pos, Dim::Known(1)),
            )]
        }
        Op::Shape { start, end } => {
            let (a, b) = eval::shape_range(t0.rank(), *start, *end);
            vec![TensorType::known(DType::I64, &[b - a])]
        }
        Op::Gather { .. } if its[1].dtype != DType::I64 => {
            return Err(op_err(
                op,
                format!("indices must be i64, got {}", its[1].dtype),
            ));
        }
        Op::Gather { axis } => {
            let (ax, out) = eval::gather_shape(op, &t0.shape, &its[1].shape, *axis)?;
            if let (Some(n), Some(idx)) = (kn(&t0.shape[ax]), cx.const_ints(ins[1])) {
                if let Some(&bad) = idx.iter().find(|&&i| i < -(n as i64) || i >= n as i64) {
                    return Err(op_err(
                        op,
                        format!("index {bad} is out of range for axis {ax} of size {n}"),
                    ));
                }
            }
            vec![ty(t0.dtype, out)]
        }
        Op::Cast { to } => vec![ty(*to, t0.shape.clone())],
        Op::ConstantOfShape { value } => {
            if value.len() != 1 {
                return Err(op_err(
                    op,
                    format!("value must hold one element, holds {}", value.len()),
                ));
            }
            if t0.dtype != DType::I64 || t0.rank() > 1 {
                return Err(op_err(
                    op,
                    format!("shape input must be a 1-D i64 tensor, got {t0}"),
                ));
            }
            let d = match cx.ints(ins[0]) {
                Some(v) => {
                    let mut d = Vec::with_capacity(v.len());
                    for e in v {
                        d.push(match e {
                            SymInt::K(k) => Dim::Known(
                                usize::try_from(k)
                                    .map_err(|_| op_err(op, format!("negative dimension {k}")))?,
                            ),
                            SymInt::S(s) => Dim::Sym(s),
                        });
                    }
                    let ks: Vec<usize> = d.iter().filter_map(kn).collect();
                    eval::checked_numel(op, &ks)?;
                    d
                }
                None => match t0.shape.first().and_then(kn) {
                    Some(k) => {
                        check_rank(op, k)?;
                        (0..k).map(|_| cx.fresh()).collect()
                    }
                    None if t0.rank() == 0 => vec![],
                    None => {
                        return Err(op_err(
                            op,
                            "cannot infer the output rank from a shape of unknown length",
                        ))
                    }
                },
            };
            vec![ty(value.dtype(), d)]
        }
        Op::HardSigmoid { .. }
        | Op::HardSwish
        | Op::Sqrt
        | Op::Reciprocal
        | Op::Exp
        | Op::Log
        | Op::Floor
        | Op::Ceil => {
            need_float(op, t0)?;
            vec![t0.clone()]
        }
        Op::Neg | Op::Abs => {
            need_num(op, t0)?;
            vec![t0.clone()]
        }
        Op::Pow => {
            need_num(op, t0)?;
            need_num(op, &its[1])?;
            vec![ty(t0.dtype, broadcast(cx, op, &t0.shape, &its[1].shape)?)]
        }
        Op::Max | Op::Min => {
            let dt = same_dtypes(op, its)?;
            need_num(op, t0)?;
            let mut shape = t0.shape.clone();
            for t in &its[1..] {
                shape = broadcast(cx, op, &shape, &t.shape)?;
            }
            vec![ty(dt, shape)]
        }
        Op::Size => vec![TensorType::known(DType::I64, &[])],
        Op::Mod { .. } => {
            let dt = same_dtypes(op, its)?;
            need_num(op, t0)?;
            vec![ty(dt, broadcast(cx, op, &t0.shape, &its[1].shape)?)]
        }
        Op::Equal | Op::Less | Op::LessOrEqual | Op::Greater | Op::GreaterOrEqual => {
            same_dtypes(op, its)?;
            if !matches!(op, Op::Equal) {
                need_num(op, t0)?;
            }
            vec![ty(
                DType::Bool,
                broadcast(cx, op, &t0.shape, &its[1].shape)?,
            )]
        }
        Op::And | Op::Or | Op::Xor => {
            need_bool(op, t0)?;
            need_bool(op, &its[1])?;
            vec![ty(
                DType::Bool,
                broadcast(cx, op, &t0.shape, &its[1].shape)?,
            )]
        }
        Op::Not => {
            need_bool(op, t0)?;
            vec![t0.clone()]
        }
        Op::Where => {
            need_bool(op, t0)?;
            if its[1].dtype != its[2].dtype {
                return Err(op_err(
                    op,
                    format!("X is {} but Y is {}", its[1].dtype, its[2].dtype),
                ));
            }
            let xy = broadcast(cx, op, &its[1].shape, &its[2].shape)?;
            vec![ty(its[1].dtype, broadcast(cx, op, &t0.shape, &xy)?)]
        }
        Op::Expand => {
            let spec = shape_spec(cx, op, ins[1], &its[1])?;
            vec![ty(t0.dtype, broadcast(cx, op, &t0.shape, &spec)?)]
        }
        Op::Tile => {
            need_ints(op, &its[1], "repeats")?;
            let d = match cx.const_ints(ins[1]) {
                Some(r) => {
                    if r.len() != t0.rank() {
                        return Err(op_err(
                            op,
                            format!(
                                "repeats has {} entries for a rank-{} input",
                                r.len(),
                                t0.rank()
                            ),
                        ));
                    }
                    let mut d = Vec::with_capacity(r.len());
                    for (x, &k) in t0.shape.iter().zip(&r) {
                        let k = usize::try_from(k).map_err(|_| {
                            op_err(op, format!("repeats {r:?} has a negative entry"))
                        })?;
                        d.push(match (kn(x), k) {
                            (_, 1) => x.clone(),
                            (Some(n), k) => Dim::Known(
                                n.checked_mul(k)
                                    .ok_or_else(|| op_err(op, "tiled size overflows"))?,
                            ),
                            (None, 0) => Dim::Known(0),
                            (None, _) => cx.fresh(),
                        });
                    }
                    let ks: Vec<usize> = d.iter().filter_map(kn).collect();
                    eval::checked_numel(op, &ks)?;
                    d
                }
                None => (0..t0.rank()).map(|_| cx.fresh()).collect(),
            };
            vec![ty(t0.dtype, d)]
        }
        Op::Slice => {
            for (t, what) in its[1..].iter().zip(["starts", "ends", "axes", "steps"]) {
                need_ints(op, t, what)?;
            }
            let consts: Option<Vec<Vec<i64>>> =
                ins[1..].iter().map(|&v| cx.const_ints(v)).collect();
            let r = t0.rank();
            let d = match consts {
                Some(c) => {
                    let params = eval::slice_params(
                        op,
                        r,
                        &c[0],
                        &c[1],
                        c.get(2).map(Vec::as_slice),
                        c.get(3).map(Vec::as_slice),
                    )?;
                    let mut d = Vec::with_capacity(r);
                    for (x, p) in t0.shape.iter().zip(&params) {
                        d.push(match (p, kn(x)) {
                            (None, _) => x.clone(),
                            (Some((s, e, st)), Some(n)) => {
                                Dim::Known(eval::slice_axis(n, *s, *e, *st).1)
                            }
                            // the whole axis (exporters write end = i64::MAX)
                            (Some((0, e, 1)), None) if *e >= i32::MAX as i64 => x.clone(),
                            (Some(_), None) => cx.fresh(),
                        });
                    }
                    d
                }
                None => (0..r).map(|_| cx.fresh()).collect(),
            };
            vec![ty(t0.dtype, d)]
        }
        Op::Split { axis, num_outputs } => {
            if t0.rank() == 0 {
                return Err(op_err(op, "cannot split a scalar"));
            }
            let ax = eval::norm_axis(op, *axis, t0.rank())?;
            let split = match ins.get(1) {
                Some(&v) => {
                    need_ints(op, &its[1], "split")?;
                    Some(
                        cx.const_ints(v)
                            .ok_or_else(|| op_err(op, "split must be a constant"))?,
                    )
                }
                None => None,
            };
            let sizes: Option<Vec<usize>> = match (kn(&t0.shape[ax]), &split) {
                (Some(n), sp) => Some(eval::split_sizes(op, n, sp.as_deref(), *num_outputs)?),
                (None, Some(sp)) => Some(eval::split_sizes(
                    op,
                    sp.iter().map(|&v| v.max(0) as usize).sum(),
                    Some(sp),
                    *num_outputs,
                )?),
                (None, None) => None,
            };
            (0..*num_outputs)
                .map(|i| {
                    let mut d = t0.shape.clone();
                    d[ax] = match &sizes {
                        Some(sz) => Dim::Known(sz[i]),
                        None => cx.fresh(),
                    };
                    ty(t0.dtype, d)
                })
                .collect()
        }
        Op::GatherND { batch_dims } => {
            if its[1].dtype != DType::I64 {
                return Err(op_err(
                    op,
                    format!("indices must be i64, got {}", its[1].dtype),
                ));
            }
            let out = eval::gather_nd_shape(
                op,
                &t0.shape,
                &its[1].shape,
                its[1].shape.last().and_then(kn),
                *batch_dims,
                |a: &Dim, b: &Dim| matches!((kn(a), kn(b)), (Some(x), Some(y)) if x != y),
            )?;
            vec![ty(t0.dtype, out)]
        }
        Op::Range => {
            let dt = same_dtypes(op, its)?;
            need_num(op, t0)?;
            for (t, what) in its.iter().zip(["start", "limit", "delta"]) {
                if t.known_shape()
                    .is_none_or(|s| s.iter().product::<usize>() != 1)
                {
                    return Err(op_err(
                        op,
                        format!("{what} must be a scalar, has shape {}", fmt_dims(&t.shape)),
                    ));
                }
            }
            vec![ty(dt, vec![cx.fresh()])]
        }
        Op::ArgMax { axis, keepdims, .. } | Op::ArgMin { axis, keepdims, .. } => {
            need_num(op, t0)?;
            if t0.rank() == 0 {
                return Err(op_err(op, "input must have rank ≥ 1"));
            }
            let ax = eval::norm_axis(op, *axis, t0.rank())?;
            let d = t0
                .shape
                .iter()
                .enumerate()
                .filter_map(|(i, d)| match (i == ax, *keepdims) {
                    (true, true) => Some(Dim::Known(1)),
                    (true, false) => None,
                    (false, _) => Some(d.clone()),
                })
                .collect();
            vec![ty(DType::I64, d)]
        }
        Op::ReduceSum {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceMax {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceMin {
            keepdims,
            noop_with_empty_axes,
        } => {
            if matches!(op, Op::ReduceSum { .. }) {
                need_num(op, t0)?;
            }
            reduce_rule(cx, op, ins, t0, *keepdims, *noop_with_empty_axes)?
        }
        Op::LayerNormalization { axis, .. } => {
            need_float(op, t0)?;
            for (t, what) in its[1..].iter().zip(["scale", "B"]) {
                if t.dtype != t0.dtype {
                    return Err(op_err(
                        op,
                        format!("{what} is {} but X is {}", t.dtype, t0.dtype),
                    ));
                }
            }
            if t0.rank() == 0 {
                return Err(op_err(op, "input must have rank ≥ 1"));
            }
            let ax = eval::norm_axis(op, *axis, t0.rank())?;
            let mut stat = t0.shape[..ax].to_vec();
            stat.extend(std::iter::repeat_n(Dim::Known(1), t0.rank() - ax));
            vec![t0.clone(), ty(t0.dtype, stat.clone()), ty(t0.dtype, stat)]
        }
        Op::Opaque(_) => return Err(op_err(op, "opaque nodes have no inference rule")),
        #[allow(unreachable_patterns)]
        _ => return Err(op_err(op, "is not supported by shape inference")),
    })
}

/// Output type of the reductions (`(data, axes?)`), whose axes must be constant unless
/// `keepdims` keeps the rank.
fn reduce_rule(
    cx: &mut Ctx<'_>,
    op: &Op,
    ins: &[ValueId],
    t0: &TensorType,
    keepdims: bool,
    noop_with_empty_axes: bool,
) -> Result<Vec<TensorType>, InterpError> {
    let axes = match ins.get(1) {
        Some(&a) => match cx.const_ints(a) {
            Some(v) => Some(v),
            None if keepdims => {
                let d = (0..t0.rank()).map(|_| cx.fresh()).collect();
                return Ok(vec![TensorType::new(t0.dtype, d)]);
            }
            None => {
                return Err(op_err(
                    op,
                    "axes must be a constant to infer the output rank",
                ))
            }
        },
        None => None,
    };
    Ok(
        match eval::reduce_axes(op, axes.as_deref(), t0.rank(), noop_with_empty_axes)? {
            None => vec![t0.clone()],
            Some(ax) => {
                let d = t0
                    .shape
                    .iter()
                    .enumerate()
                    .filter_map(|(i, d)| match (ax.contains(&i), keepdims) {
                        (true, true) => Some(Dim::Known(1)),
                        (true, false) => None,
                        (false, _) => Some(d.clone()),
                    })
                    .collect();
                vec![TensorType::new(t0.dtype, d)]
            }
        },
    )
}

/// Largest rank a computed shape may have (the importer's limit for declared shapes).
const MAX_RANK: usize = 64;

/// A shape computed from data (ConstantOfShape, Reshape) must not have an absurd rank: each
/// dimension costs a symbol here and a stride at run time.
fn check_rank(op: &Op, k: usize) -> Result<(), InterpError> {
    if k > MAX_RANK {
        return Err(op_err(
            op,
            format!("computed shape has rank {k}, above the limit of {MAX_RANK}"),
        ));
    }
    Ok(())
}

fn reshape_rule(
    cx: &mut Ctx<'_>,
    op: &Op,
    allowzero: bool,
    t0: &TensorType,
    shape_v: ValueId,
    shape_t: &TensorType,
) -> Result<Vec<Dim>, InterpError> {
    if shape_t.dtype != DType::I64 || shape_t.rank() != 1 {
        return Err(op_err(
            op,
            format!("shape must be a 1-D i64 tensor, got {shape_t}"),
        ));
    }
    if let Some(k) = kn(&shape_t.shape[0]) {
        check_rank(op, k)?;
    }
    let Some(spec) = cx.ints(shape_v) else {
        return match kn(&shape_t.shape[0]) {
            Some(k) => Ok((0..k).map(|_| cx.fresh()).collect()),
            None => Err(op_err(
                op,
                "cannot infer the output rank from a shape of unknown length",
            )),
        };
    };
    let x = &t0.shape;
    if let (Some(xs), Some(ks)) = (
        t0.known_shape(),
        spec.iter()
            .map(|e| if let SymInt::K(k) = e { Some(*k) } else { None })
            .collect::<Option<Vec<i64>>>(),
    ) {
        return Ok(dims_of(&eval::reshape_shape(op, &xs, &ks, allowzero)?));
    }
    let mut out: Vec<Option<Dim>> = Vec::with_capacity(spec.len());
    let mut infer_at = None;
    for (i, e) in spec.iter().enumerate() {
        let d = match e {
            SymInt::S(s) => Dim::Sym(s.clone()),
            SymInt::K(-1) => {
                if infer_at.replace(i).is_some() {
                    return Err(op_err(op, "shape has more than one -1"));
                }
                out.push(None);
                continue;
            }
            SymInt::K(0) if !allowzero => match x.get(i) {
                Some(d) => d.clone(),
                None => {
                    return Err(op_err(
                        op,
                        format!(
                            "shape copies axis {i} (0), but the input {} has rank {}",
                            fmt_dims(x),
                            x.len()
                        ),
                    ))
                }
            },
            SymInt::K(k) if *k < 0 => {
                return Err(op_err(op, format!("invalid dimension {k} in shape")))
            }
            SymInt::K(k) => Dim::Known(*k as usize),
        };
        out.push(Some(d));
    }
    // Multisets of symbols and known products on both sides.
    let split = |d: &mut dyn Iterator<Item = &Dim>| -> Option<(u128, Vec<String>)> {
        let mut k: u128 = 1;
        let mut s = Vec::new();
        for x in d {
            match x {
                Dim::Known(n) => k = k.checked_mul(*n as u128)?,
                Dim::Sym(n) => s.push(n.clone()),
            }
        }
        s.sort();
        Some((k, s))
    };
    let (kin, sin) = split(&mut x.iter()).ok_or_else(|| op_err(op, "shape product overflows"))?;
    let (kout, sout) =
        split(&mut out.iter().flatten()).ok_or_else(|| op_err(op, "shape product overflows"))?;
    // Remaining input symbols after cancelling those named on the output side.
    let mut rem = sin.clone();
    let mut cancelled = true;
    for s in &sout {
        match rem.iter().position(|r| r == s) {
            Some(p) => {
                rem.remove(p);
            }
            None => cancelled = false,
        }
    }
    match infer_at {
        None => {
            if cancelled && rem.is_empty() && kin != kout {
                return Err(op_err(
                    op,
                    format!("cannot reshape {} to {}", fmt_dims(x), fmt_ints(&spec)),
                ));
            }
        }
        Some(i) => {
            out[i] = Some(if cancelled && rem.is_empty() && kout != 0 {
                if kin % kout != 0 {
                    return Err(op_err(
                        op,
                        format!("cannot reshape {} to {}", fmt_dims(x), fmt_ints(&spec)),
                    ));
                }
                Dim::Known((kin / kout) as usize)
            } else if cancelled && rem.len() == 1 && kin == kout && kout != 0 {
                Dim::Sym(rem[0].clone())
            } else {
                cx.fresh()
            });
        }
    }
    Ok(out.into_iter().map(|d| d.expect("filled")).collect())
}
