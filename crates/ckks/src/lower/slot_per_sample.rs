//! Emission of a compiled PANN as a CKKS circuit (`pannc-circuit`, see `docs/circuit-format.md`).
//!
//! Packing is **slot-per-sample**: every feature of every tensor is one ciphertext whose slots
//! hold that feature for a batch of samples, so there are no rotations and each circuit input
//! is one input feature (`input[i]`, row-major over the non-batch dimensions).
//!
//! Supported graphs: what `pannc compile` makes of MLPs — `Gemm`/`MatMul` with constant
//! weights (and bias), `Add`/`Sub` (of two activations or an activation and a constant),
//! `Mul`/`Div` by a constant, `Flatten`/`Reshape`/`Identity`/`Dropout` that keep the batch
//! first, and `Poly` nodes. Anything else is an error naming the node; convolutions say
//! "conv layers are not supported by the circuit emitter yet".
//!
//! # Levels: what is merged where
//!
//! Linear layers are not emitted where they appear: each feature is carried as an unevaluated
//! affine form `Σ cᵢ·ctᵢ + c₀` over ciphertexts, and consecutive linear nodes compose into one
//! form. A form is *materialised* only where a ciphertext is needed: at a polynomial's input
//! and at the graph outputs. There, terms with integer coefficients cost nothing (`mul_int`,
//! `add`), a non-integer coefficient costs one level on its term (`mul_const`), and the bias
//! is an `add_const`. So:
//!
//! * a chain of linear nodes (Gemm → Add → Gemm …) between two activations costs one level
//!   in total, not one per node; runners execute the materialisation as one weighted sum with
//!   one rescale (`scripts/openfhe_run.py` fuses `mul_const`/`add` trees into it);
//! * each polynomial's input normalisation (`in_scale` left over by range control, and the map
//!   of its first stage's interval onto [-1, 1]) is folded into the weights of that form;
//! * each polynomial's `out_scale` is folded into the next form's weights when every reader
//!   is linear, otherwise into the polynomial's coefficients (`PlanOptions::output_scale`);
//!   both are free. LeakyReLU is planned as `(1 − slope)·ReLU(x') + slope·x'`, the second term
//!   staying in the form;
//! * a polynomial costs exactly its planned depth `Σ⌈log₂(dᵢ+1)⌉ (+1 for a sign-based
//!   combine)` on top of its input (the planner's depth-optimal circuit, inlined per feature).
//!
//! A layer `Gemm → Poly` of degree 31 therefore costs 1 + 5 levels. The weight level is not
//! free in general: `p(Σ wᵢxᵢ)` in 5 levels of the `xᵢ` would need the degree-16 factors of its
//! top products to have integer leading parts (`pannc_fhe::bounds`), which `T₁₆(Σ wᵢxᵢ)` does
//! not. The known ways around it multiply the work — moving each weight into the previous
//! polynomial's top-level products repeats them for every (input, output) pair (64×64 copies
//! here), expanding in integer-led monomials of the inputs is worse — so pannc pays the level.
//!
//! The circuit's `layers` records one entry per emitted layer (`linear` for a materialised
//! form, named after the node that produced it; `poly:<function>` with the planner record;
//! `output`), with the levels going in and out.

use std::collections::HashMap;

use pannc_approx::Approximation;
use pannc_fhe::{
    plan_composite, Circuit, CircuitBuilder, Combine, FheError, Interval, Output, PlanOptions,
    Stage, Term, ValueId as Ct,
};
use pannc_ir::{Dim, Graph, NodeId, Op, Poly, PolyCombine, Tensor, ValueId};

/// Errors of the circuit emitter; each names the node and op.
#[derive(Debug, thiserror::Error)]
pub enum CircuitError {
    #[error("circuit emitter: node '{node}' ({op}): {message}")]
    Node {
        node: String,
        op: &'static str,
        message: String,
    },
    #[error("circuit emitter: {0}")]
    Graph(String),
    #[error("circuit emitter: node '{node}': planning its polynomial failed: {source}")]
    Plan {
        node: String,
        #[source]
        source: FheError,
    },
    #[error("circuit emitter: {0}")]
    Fhe(#[from] FheError),
}

/// Options of [`to_circuit`].
#[derive(Clone, Debug)]
pub struct CircuitOptions {
    /// Circuit name (default: the graph's name).
    pub name: Option<String>,
    /// Levels allowed above the optimum per polynomial stage (fewer ct×ct products).
    pub extra_levels: u32,
    /// Refuse graphs whose circuit would have more ops than this (memory guard).
    pub max_ops: usize,
}

impl Default for CircuitOptions {
    fn default() -> Self {
        CircuitOptions {
            name: None,
            extra_levels: 0,
            max_ops: 20_000_000,
        }
    }
}

/// `Σ c·ct + c0`, terms sorted by ciphertext id, no zero coefficient.
#[derive(Clone, Debug, Default, PartialEq)]
struct Form {
    terms: Vec<(u32, f64)>,
    c0: f64,
}

impl Form {
    fn ct(v: Ct) -> Form {
        Form {
            terms: vec![(v.0, 1.0)],
            c0: 0.0,
        }
    }
    fn constant(c: f64) -> Form {
        Form {
            terms: vec![],
            c0: c,
        }
    }
    fn scaled(&self, k: f64) -> Form {
        if k == 0.0 {
            return Form::constant(0.0);
        }
        Form {
            terms: self.terms.iter().map(|&(v, c)| (v, c * k)).collect(),
            c0: self.c0 * k,
        }
    }
    fn shifted(&self, t: f64) -> Form {
        Form {
            terms: self.terms.clone(),
            c0: self.c0 + t,
        }
    }
    /// `self + k·other`.
    fn plus(&self, other: &Form, k: f64) -> Form {
        let mut acc = Acc::default();
        acc.add(self, 1.0);
        acc.add(other, k);
        acc.finish()
    }
}

/// Accumulates `Σ kᵢ·formᵢ` (deterministic: summation in call order per ciphertext).
#[derive(Default)]
struct Acc {
    coef: HashMap<u32, f64>,
    c0: f64,
}

impl Acc {
    fn add(&mut self, f: &Form, k: f64) {
        if k == 0.0 {
            return;
        }
        for &(v, c) in &f.terms {
            *self.coef.entry(v).or_insert(0.0) += k * c;
        }
        self.c0 += k * f.c0;
    }
    fn finish(self) -> Form {
        let mut terms: Vec<(u32, f64)> = self.coef.into_iter().filter(|t| t.1 != 0.0).collect();
        terms.sort_by_key(|t| t.0);
        Form { terms, c0: self.c0 }
    }
}

/// An activation tensor: its non-batch shape and one form per feature (row-major).
#[derive(Clone, Debug)]
struct Data {
    shape: Vec<usize>,
    feats: Vec<Form>,
    /// The node whose ops a materialisation of these forms is reported under.
    origin: String,
}

struct Emitter<'g> {
    g: &'g Graph,
    b: CircuitBuilder,
    data: HashMap<ValueId, Data>,
    /// Materialised features per (graph value, normalisation map).
    cache: HashMap<(ValueId, u64, u64), Vec<Term>>,
    opts: &'g CircuitOptions,
}

/// Converts a compiled graph (see the module doc for what it may contain) into a circuit.
pub fn to_circuit(g: &Graph, opts: &CircuitOptions) -> Result<Circuit, CircuitError> {
    emit(g, opts).map_err(|e| match e {
        // A refused op: say in the same line everything else the graph needs that the
        // emitter lacks (a transformer's data movement and attention products).
        CircuitError::Node {
            node,
            op,
            mut message,
        } => {
            message.push_str(&super::lacking_clause(g, &node, "emitter", emits_op));
            CircuitError::Node { node, op, message }
        }
        e => e,
    })
}

/// The ops on computed values this emitter handles: linear ones and polynomials.
fn emits_op(op: &Op) -> bool {
    linear_op(op) || matches!(op, Op::Poly(_))
}

/// The linear ops of [`emits_op`] (a polynomial's `out_scale` can fold into them).
fn linear_op(op: &Op) -> bool {
    matches!(
        op,
        Op::Gemm { .. }
            | Op::MatMul
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Flatten { .. }
            | Op::Reshape { .. }
            | Op::Identity
            | Op::Dropout
    )
}

fn emit(g: &Graph, opts: &CircuitOptions) -> Result<Circuit, CircuitError> {
    let name = opts.name.clone().unwrap_or_else(|| {
        if g.name.is_empty() {
            "network".to_string()
        } else {
            g.name.clone()
        }
    });
    let mut e = Emitter {
        g,
        b: CircuitBuilder::new(name),
        data: HashMap::new(),
        cache: HashMap::new(),
        opts,
    };
    e.inputs()?;
    let order = g
        .topo_order()
        .map_err(|err| CircuitError::Graph(err.to_string()))?;
    for id in order {
        e.node(id)?;
        if e.b.num_ops() > opts.max_ops {
            return Err(e.err(
                id,
                format!(
                    "the circuit would exceed {} ops (CircuitOptions::max_ops)",
                    opts.max_ops
                ),
            ));
        }
    }
    e.outputs()
}

fn kind_of(n: &pannc_ir::Node) -> &'static str {
    n.op.name()
}

impl Emitter<'_> {
    fn err(&self, id: NodeId, message: impl Into<String>) -> CircuitError {
        let n = self.g.node(id);
        CircuitError::Node {
            node: n.name.clone(),
            op: kind_of(n),
            message: message.into(),
        }
    }

    fn inputs(&mut self) -> Result<(), CircuitError> {
        let g = self.g;
        if g.inputs().is_empty() {
            return Err(CircuitError::Graph("the graph has no inputs".into()));
        }
        for &v in g.inputs() {
            let val = g.value(v);
            let shape = feature_shape(val.ty.as_ref()).ok_or_else(|| {
                CircuitError::Graph(format!(
                    "input '{}' needs a batch-first type with known non-batch dimensions (got {})",
                    val.name,
                    val.ty
                        .as_ref()
                        .map_or("no type".to_string(), |t| t.to_string())
                ))
            })?;
            let n: usize = shape.iter().product();
            if n > self.opts.max_ops {
                return Err(CircuitError::Graph(format!(
                    "input '{}' has {n} features, more than CircuitOptions::max_ops",
                    val.name
                )));
            }
            let mut feats = Vec::with_capacity(n);
            for i in 0..n {
                let ct = self.b.input(format!("{}[{i}]", val.name))?;
                feats.push(Form::ct(ct));
            }
            self.data.insert(
                v,
                Data {
                    shape,
                    feats,
                    origin: val.name.clone(),
                },
            );
        }
        Ok(())
    }

    fn get(&self, id: NodeId, v: ValueId) -> Result<&Data, CircuitError> {
        self.data.get(&v).ok_or_else(|| {
            self.err(
                id,
                format!(
                    "input '{}' is neither an activation nor a constant",
                    self.g.value(v).name
                ),
            )
        })
    }

    fn node(&mut self, id: NodeId) -> Result<(), CircuitError> {
        let g = self.g;
        let n = g.node(id);
        let ins = n.inputs().to_vec();
        let out = match n.outputs() {
            [o] => *o,
            _ if matches!(n.op, Op::Constant(_)) => return Ok(()),
            [o, ..] if matches!(n.op, Op::Dropout) => *o,
            _ => return Err(self.err(id, "expected exactly one output")),
        };
        let name = n.name.clone();
        let data = match &n.op {
            Op::Constant(_) => return Ok(()),
            Op::Conv { .. } => {
                return Err(self.err(id, "conv layers are not supported by the circuit emitter yet"))
            }
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => {
                if *trans_a {
                    return Err(self.err(id, "transA=1 would mix samples of the batch"));
                }
                let a = self.get(id, ins[0])?.clone();
                let w = self.const_input(id, &ins, 1, "the weight B")?;
                let bias = match ins.get(2) {
                    Some(_) => Some(self.const_input(id, &ins, 2, "the bias C")?),
                    None => None,
                };
                self.gemm(
                    id,
                    &a,
                    &w,
                    *trans_b,
                    *alpha as f64,
                    bias.map(|t| (t, *beta as f64)),
                    &name,
                )?
            }
            Op::MatMul => {
                if g.constant(ins[0]).is_some() {
                    return Err(self.err(
                        id,
                        "constant × activation MatMul would mix samples; only activation × constant is supported",
                    ));
                }
                let a = self.get(id, ins[0])?.clone();
                let w = self.const_input(id, &ins, 1, "the right operand")?;
                self.gemm(id, &a, &w, false, 1.0, None, &name)?
            }
            Op::Add | Op::Sub => {
                let sign = if matches!(n.op, Op::Sub) { -1.0 } else { 1.0 };
                match (g.constant(ins[0]), g.constant(ins[1])) {
                    (None, None) => {
                        let a = self.get(id, ins[0])?;
                        let b = self.get(id, ins[1])?;
                        if a.shape != b.shape {
                            return Err(self.err(
                                id,
                                format!(
                                    "broadcasting between activations of shapes {:?} and {:?} is not supported",
                                    a.shape, b.shape
                                ),
                            ));
                        }
                        let feats = a
                            .feats
                            .iter()
                            .zip(&b.feats)
                            .map(|(x, y)| x.plus(y, sign))
                            .collect();
                        Data {
                            shape: a.shape.clone(),
                            feats,
                            origin: name.clone(),
                        }
                    }
                    (None, Some(c)) => {
                        let a = self.get(id, ins[0])?.clone();
                        let c = self.broadcast(id, c, &a.shape)?;
                        Data {
                            feats: a
                                .feats
                                .iter()
                                .zip(c)
                                .map(|(f, c)| f.shifted(sign * c))
                                .collect(),
                            shape: a.shape,
                            origin: name.clone(),
                        }
                    }
                    (Some(c), None) => {
                        let a = self.get(id, ins[1])?.clone();
                        let c = self.broadcast(id, c, &a.shape)?;
                        Data {
                            feats: a
                                .feats
                                .iter()
                                .zip(c)
                                .map(|(f, c)| f.scaled(sign).shifted(c))
                                .collect(),
                            shape: a.shape,
                            origin: name.clone(),
                        }
                    }
                    (Some(_), Some(_)) => {
                        return Err(self.err(id, "constant subgraph left unfolded"));
                    }
                }
            }
            Op::Mul | Op::Div => {
                let div = matches!(n.op, Op::Div);
                let (x, c) = match (g.constant(ins[0]), g.constant(ins[1])) {
                    (None, Some(c)) => (ins[0], c),
                    (Some(c), None) if !div => (ins[1], c),
                    (None, None) => {
                        return Err(self.err(
                            id,
                            "product of two activations: only polynomial activations (Poly) multiply ciphertexts",
                        ))
                    }
                    _ => return Err(self.err(id, "only activation / constant is supported")),
                };
                let a = self.get(id, x)?.clone();
                let c = self.broadcast(id, c, &a.shape)?;
                let mut feats = Vec::with_capacity(a.feats.len());
                for (f, c) in a.feats.iter().zip(c) {
                    let k = if div {
                        if c == 0.0 {
                            return Err(self.err(id, "division by zero"));
                        }
                        1.0 / c
                    } else {
                        c
                    };
                    feats.push(f.scaled(k));
                }
                Data {
                    shape: a.shape,
                    feats,
                    origin: name.clone(),
                }
            }
            Op::Flatten { .. } | Op::Reshape { .. } | Op::Identity | Op::Dropout => {
                let a = self.get(id, ins[0])?.clone();
                let shape = if matches!(n.op, Op::Identity | Op::Dropout) {
                    a.shape.clone()
                } else {
                    let ty = g.value(out).ty.as_ref();
                    let shape = feature_shape(ty).ok_or_else(|| {
                        self.err(
                            id,
                            "output type unknown or not batch-first with known dimensions (run shape inference)",
                        )
                    })?;
                    if let Op::Flatten { axis } = n.op {
                        let rank = a.shape.len() as i64 + 1;
                        let ax = if axis < 0 { axis + rank } else { axis };
                        if ax != 1 {
                            return Err(self.err(
                                id,
                                format!("Flatten axis {axis} would mix the batch with features; only axis 1 is supported"),
                            ));
                        }
                    }
                    shape
                };
                if shape.iter().product::<usize>() != a.feats.len() {
                    return Err(self.err(
                        id,
                        format!(
                            "reshape from {:?} to {:?} moves data across the batch dimension",
                            a.shape, shape
                        ),
                    ));
                }
                Data {
                    shape,
                    feats: a.feats,
                    origin: a.origin,
                }
            }
            Op::Poly(p) => self.poly(id, p, ins[0], out)?,
            Op::Relu
            | Op::LeakyRelu { .. }
            | Op::Clip { .. }
            | Op::Sigmoid
            | Op::Tanh
            | Op::Erf
            | Op::Gelu { .. }
            | Op::Silu
            | Op::MaxPool { .. } => {
                return Err(self.err(
                    id,
                    "not a polynomial: compile the graph into a PANN first (pannc compile)",
                ))
            }
            other => {
                return Err(self.err(
                    id,
                    format!(
                        "{} is not supported by the circuit emitter (supported: Gemm, MatMul, Add, Sub, Mul/Div by a constant, Flatten, Reshape, Poly)",
                        other.name()
                    ),
                ))
            }
        };
        self.data.insert(out, data);
        Ok(())
    }

    fn const_input(
        &self,
        id: NodeId,
        ins: &[ValueId],
        k: usize,
        what: &str,
    ) -> Result<Tensor, CircuitError> {
        let v = *ins
            .get(k)
            .ok_or_else(|| self.err(id, format!("{what} is missing")))?;
        self.g
            .constant(v)
            .cloned()
            .ok_or_else(|| self.err(id, format!("{what} must be a constant (plaintext weights)")))
    }

    /// Per-feature values of constant `c` broadcast to `[N, shape...]` (its batch dim must be 1).
    fn broadcast(&self, id: NodeId, c: &Tensor, shape: &[usize]) -> Result<Vec<f64>, CircuitError> {
        let cs = c.shape();
        let full_rank = shape.len() + 1;
        let bad = || {
            self.err(
                id,
                format!(
                    "constant of shape {cs:?} does not broadcast per sample to [N,{}]",
                    shape
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            )
        };
        if cs.len() > full_rank {
            return Err(bad());
        }
        // Right-align cs against [1, shape...].
        let mut target = vec![1usize];
        target.extend_from_slice(shape);
        let off = full_rank - cs.len();
        for (i, &d) in cs.iter().enumerate() {
            let t = target[off + i];
            if d != 1 && d != t {
                return Err(bad());
            }
        }
        let vals = c.to_f64_vec();
        let n: usize = shape.iter().product();
        let mut out = Vec::with_capacity(n);
        // Strides of cs (row-major), zero where broadcast.
        let mut strides = vec![0usize; cs.len()];
        let mut s = 1;
        for i in (0..cs.len()).rev() {
            strides[i] = if cs[i] == 1 { 0 } else { s };
            s *= cs[i];
        }
        let mut idx = vec![0usize; shape.len()];
        for _ in 0..n {
            let mut off_c = 0;
            for (i, &st) in strides.iter().enumerate() {
                let axis = off + i; // axis in the full shape; 0 is the batch
                if axis >= 1 {
                    off_c += idx[axis - 1] * st;
                }
            }
            out.push(vals[off_c]);
            for k in (0..idx.len()).rev() {
                idx[k] += 1;
                if idx[k] < shape[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        id: NodeId,
        a: &Data,
        w: &Tensor,
        trans_b: bool,
        alpha: f64,
        bias: Option<(Tensor, f64)>,
        name: &str,
    ) -> Result<Data, CircuitError> {
        if a.shape.len() != 1 {
            return Err(self.err(
                id,
                format!(
                    "activation of shape [N,{}] must be [N, features] (Flatten it first)",
                    a.shape
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ));
        }
        let k_in = a.shape[0];
        let ws = w.shape();
        let (k, m) = match (ws.len(), trans_b) {
            (2, false) => (ws[0], ws[1]),
            (2, true) => (ws[1], ws[0]),
            (1, false) => (ws[0], 1),
            _ => return Err(self.err(id, format!("weight of shape {ws:?} is not a matrix"))),
        };
        if k != k_in {
            return Err(self.err(
                id,
                format!("weight of shape {ws:?} does not fit {k_in} input features"),
            ));
        }
        if k.saturating_mul(m) > self.opts.max_ops {
            return Err(self.err(
                id,
                format!("a {k}×{m} weight matrix exceeds CircuitOptions::max_ops"),
            ));
        }
        let wv = w.to_f64_vec();
        let at = |kk: usize, j: usize| {
            if trans_b {
                wv[j * k + kk]
            } else {
                wv[kk * m + j]
            }
        };
        let bias = match bias {
            Some((t, beta)) => {
                let v = self.broadcast(id, &t, &[m])?;
                v.into_iter().map(|x| x * beta).collect()
            }
            None => vec![0.0; m],
        };
        let vector = ws.len() == 1;
        let mut feats = Vec::with_capacity(m);
        for (j, bj) in bias.iter().enumerate() {
            let mut acc = Acc::default();
            for (kk, f) in a.feats.iter().enumerate() {
                acc.add(f, alpha * at(kk, j));
            }
            acc.c0 += bj;
            feats.push(acc.finish());
        }
        Ok(Data {
            shape: if vector { vec![] } else { vec![m] },
            feats,
            origin: name.to_string(),
        })
    }

    /// Materialises the forms of `v` under the map `x ↦ scale·x + shift`, once per (value, map).
    fn materialise(
        &mut self,
        v: ValueId,
        scale: f64,
        shift: f64,
        kind: &str,
    ) -> Result<Vec<Term>, CircuitError> {
        let key = (v, scale.to_bits(), shift.to_bits());
        if let Some(t) = self.cache.get(&key) {
            return Ok(t.clone());
        }
        let d = self.data.get(&v).cloned().ok_or_else(|| {
            CircuitError::Graph(format!(
                "value '{}' has no ciphertexts",
                self.g.value(v).name
            ))
        })?;
        let start = self.b.num_ops();
        let mut terms = Vec::with_capacity(d.feats.len());
        for f in &d.feats {
            let f = f.scaled(scale).shifted(shift);
            let mut acc: Option<Term> = None;
            for &(ct, c) in &f.terms {
                let t = self.b.scale(Ct(ct), c);
                acc = Some(match acc {
                    None => t,
                    Some(a) => self.b.add_terms(a, t),
                });
            }
            let t = match acc {
                None => Term::Const(f.c0),
                Some(a) => self.b.add_terms(a, Term::Const(f.c0)),
            };
            terms.push(t);
        }
        if self.b.num_ops() > start {
            let outs: Vec<Ct> = terms
                .iter()
                .filter_map(|t| match t {
                    Term::Ct(c) => Some(*c),
                    Term::Const(_) => None,
                })
                .collect();
            self.b.add_layer(d.origin.clone(), kind, start, &outs, None);
        }
        self.cache.insert(key, terms.clone());
        Ok(terms)
    }

    fn poly(
        &mut self,
        id: NodeId,
        p: &Poly,
        x: ValueId,
        out: ValueId,
    ) -> Result<Data, CircuitError> {
        let g = self.g;
        let name = g.node(id).name.clone();
        let input = self.get(id, x)?.clone();
        let (combine, slope) = match p.combine {
            PolyCombine::Identity => (Combine::None, 0.0),
            PolyCombine::Relu => (Combine::Relu, 0.0),
            PolyCombine::LeakyRelu { slope } => (Combine::Relu, slope),
        };
        let first = p
            .stages
            .first()
            .ok_or_else(|| self.err(id, "polynomial without stages"))?;
        let iv = Interval::new(first.lo, first.hi).map_err(|e| self.err(id, e.to_string()))?;
        let to_unit = iv.to_unit();
        // Fold out_scale into the polynomial unless every reader is linear (then into them).
        let linear_readers = !g.outputs().contains(&out)
            && g.users(out).iter().all(|&(u, slot)| {
                linear_op(&g.node(u).op)
                    && (slot == 0 || matches!(g.node(u).op, Op::Add | Op::Sub | Op::Mul))
            });
        let os = p.out_scale;
        let relu_part = 1.0 - slope; // factor of the planned ReLU in LeakyReLU
        let (plan_scale, lazy_scale) = if linear_readers {
            (1.0, os * relu_part)
        } else {
            (os * relu_part, 1.0)
        };
        let stages: Vec<Stage> = p
            .stages
            .iter()
            .map(|s| {
                Ok(Stage {
                    coeffs: s.coeffs.clone(),
                    interval: Interval::new(s.lo, s.hi).map_err(|e| self.err(id, e.to_string()))?,
                })
            })
            .collect::<Result<_, CircuitError>>()?;
        let opts = PlanOptions {
            extra_levels: self.opts.extra_levels,
            name: Some(format!("{name}/{}", p.function)),
            output_scale: plan_scale,
            ..PlanOptions::default()
        };
        let sub = plan_composite(&stages, combine, &opts).map_err(|source| CircuitError::Plan {
            node: name.clone(),
            source,
        })?;
        // u = to_unit(in_scale · x)
        let us = self.materialise(x, to_unit.scale * p.in_scale, to_unit.shift, "linear")?;
        let start = self.b.num_ops();
        let mut feats = Vec::with_capacity(us.len());
        let mut outs = Vec::with_capacity(us.len());
        for (i, u) in us.iter().enumerate() {
            let xf = input.feats[i].scaled(p.in_scale); // x' as a form
            let f = match *u {
                Term::Const(_) => {
                    // A constant input gives a constant output.
                    Form::constant(p.eval(input.feats[i].c0))
                }
                Term::Ct(u) => {
                    let y = self
                        .b
                        .inline(&sub, &[u])
                        .map_err(|source| CircuitError::Plan {
                            node: name.clone(),
                            source,
                        })?[0];
                    outs.push(y);
                    let mut f = Form::ct(y).scaled(lazy_scale);
                    if slope != 0.0 {
                        f = f.plus(&xf, slope * os);
                    }
                    f
                }
            };
            feats.push(f);
        }
        if !outs.is_empty() {
            self.b.add_layer(
                name.clone(),
                format!("poly:{}", p.function),
                start,
                &outs,
                sub.plan.clone(),
            );
        }
        Ok(Data {
            shape: input.shape,
            feats,
            origin: name,
        })
    }

    fn outputs(mut self) -> Result<Circuit, CircuitError> {
        let g = self.g;
        let mut outputs = Vec::new();
        let any = Ct(0);
        for &v in g.outputs() {
            let terms = self.materialise(v, 1.0, 0.0, "output")?;
            let vname = g.value(v).name.clone();
            let start = self.b.num_ops();
            for (j, t) in terms.into_iter().enumerate() {
                let ct = self.b.materialise(t, any);
                outputs.push(Output {
                    name: format!("{vname}[{j}]"),
                    value: ct,
                });
            }
            if self.b.num_ops() > start {
                let outs: Vec<Ct> = outputs.iter().map(|o| o.value).collect();
                self.b
                    .add_layer(format!("{vname} (constants)"), "output", start, &outs, None);
            }
        }
        if outputs.is_empty() {
            return Err(CircuitError::Graph("the graph has no outputs".into()));
        }
        Ok(self.b.finish(outputs, None)?)
    }
}

/// The planned circuit of one approximation from `pannc-approx` (what `pannc approx --emit
/// circuit` writes): its stages composed, then its combine rule — `identity`/`max_via_relu`
/// output the composition, `relu`/`max` (of `a − b`) `x·(1+q)/2`, `abs` `x·q`, `leaky_relu`
/// `(1−slope)·x·(1+q)/2 + slope·x` (the last term on the input, which has level slack). The
/// input is the raw `x` normalised by the producer (`producer_affine`), as for network
/// polynomials. `clip` is not supported yet.
pub fn approximation_circuit(
    a: &Approximation,
    extra_levels: u32,
) -> Result<Circuit, CircuitError> {
    let fail = |m: String| CircuitError::Graph(format!("approximation of {}: {m}", a.function));
    let stages: Vec<Stage> = a
        .stages
        .iter()
        .map(|s| {
            Ok(Stage {
                coeffs: s.coefficients.clone(),
                interval: Interval::new(s.domain[0], s.domain[1])
                    .map_err(|e| fail(e.to_string()))?,
            })
        })
        .collect::<Result<_, CircuitError>>()?;
    if let Some(s) = a.stages.iter().find(|s| s.basis != "chebyshev") {
        return Err(fail(format!("stage basis '{}' is not chebyshev", s.basis)));
    }
    let slope = a
        .combine_params
        .as_ref()
        .and_then(|p| p.slope)
        .unwrap_or(0.0);
    let (combine, scale) = match a.combine {
        "identity" | "max_via_relu" => (Combine::None, 1.0),
        "relu" | "max" => (Combine::Relu, 1.0),
        "abs" => (Combine::Abs, 1.0),
        "leaky_relu" => (Combine::Relu, 1.0 - slope),
        other => {
            return Err(fail(format!(
                "combine rule '{other}' is not supported by the circuit emitter yet"
            )))
        }
    };
    let opts = PlanOptions {
        extra_levels,
        name: Some(format!("{}_{}", a.function, a.method.name())),
        output_scale: scale,
        ..PlanOptions::default()
    };
    let c = plan_composite(&stages, combine, &opts)?;
    if a.combine != "leaky_relu" || slope == 0.0 {
        return Ok(c);
    }
    // + slope·x, x recovered from the normalised input u (level slack: no extra level).
    let raw = stages[0].interval.from_unit();
    let mut b = CircuitBuilder::from_circuit(&c)?;
    let u = c.inputs[0].value;
    let y = c.outputs[0].value;
    let lin = b.affine(
        u,
        pannc_fhe::Affine {
            scale: raw.scale * slope,
            shift: raw.shift * slope,
        },
    );
    let out = b.add_terms(Term::Ct(y), lin);
    let out = b.materialise(out, u);
    let mut plan = c.plan.clone();
    if let Some(p) = plan.as_mut() {
        p.combine = "leaky_relu".into();
    }
    Ok(b.finish(
        vec![Output {
            name: "y".into(),
            value: out,
        }],
        plan,
    )?)
}

/// Non-batch dimensions of a batch-first type, if all known.
fn feature_shape(ty: Option<&pannc_ir::TensorType>) -> Option<Vec<usize>> {
    let ty = ty?;
    if ty.shape.is_empty() {
        return None;
    }
    ty.shape[1..]
        .iter()
        .map(|d| match d {
            Dim::Known(n) => Some(*n),
            Dim::Sym(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pannc_fhe::check_json;
    use pannc_interp::{Precision, RunOptions};
    use pannc_ir::{DType, PolyStage, TensorType};

    fn t(shape: &[usize], f: impl Fn(usize) -> f64) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_f64(shape, (0..n).map(f).collect())
            .unwrap()
            .cast(DType::F32)
    }

    fn sign_stage(lo: f64, hi: f64) -> PolyStage {
        // Chebyshev interpolant of tanh(4u) (degree 7) as a stand-in for a sign stage.
        let coeffs = pannc_fhe::chebyshev_interpolant(|u| (4.0 * u).tanh(), 7);
        PolyStage { lo, hi, coeffs }
    }

    /// x[N,2,3] → Flatten → MatMul+Add → ReLU-poly (scales) → Gemm(α, β, transB) + MatMul skip
    /// → LeakyReLU-poly on [-2,2] → Div, Mul, Sub by constants → Reshape; ReLU-poly also an output.
    fn mlp() -> Graph {
        let mut g = Graph::new("toy", 17);
        let n = Dim::Sym("N".into());
        let x = g
            .add_input(
                "x",
                Some(TensorType::new(
                    DType::F32,
                    vec![n, Dim::Known(2), Dim::Known(3)],
                )),
            )
            .unwrap();
        let w1 = g
            .add_constant("w1", t(&[6, 4], |i| ((i * 7 % 11) as f64 - 5.0) * 0.07))
            .unwrap();
        let b1 = g
            .add_constant("b1", t(&[4], |i| 0.05 * i as f64 - 0.1))
            .unwrap();
        let w2 = g
            .add_constant("w2", t(&[3, 4], |i| ((i * 5 % 7) as f64 - 3.0) * 0.11))
            .unwrap();
        let c2 = g.add_constant("c2", t(&[3], |i| 0.02 * i as f64)).unwrap();
        let w3 = g
            .add_constant("w3", t(&[6, 3], |i| ((i * 3 % 5) as f64 - 2.0) * 0.09))
            .unwrap();
        let four = g.add_constant("four", t(&[], |_| 4.0)).unwrap();
        let row = g
            .add_constant("row", t(&[1, 3], |i| 0.5 + i as f64))
            .unwrap();
        let one = g.add_constant("one", t(&[1], |_| 1.0)).unwrap();
        let shape = g
            .add_constant("shape", Tensor::from_i64(&[2], vec![-1, 3]).unwrap())
            .unwrap();
        let f = g.add_simple("flat", Op::Flatten { axis: 1 }, &[x]).unwrap();
        let m = g.add_simple("mm", Op::MatMul, &[f, w1]).unwrap();
        let a = g.add_simple("bias", Op::Add, &[m, b1]).unwrap();
        let relu = Poly {
            function: "relu".into(),
            in_scale: 0.5,
            out_scale: 2.0,
            stages: vec![sign_stage(-1.0, 1.0)],
            combine: PolyCombine::Relu,
        };
        let p1 = g
            .add_simple("relu", Op::Poly(Box::new(relu)), &[a])
            .unwrap();
        let g2 = g
            .add_simple(
                "fc2",
                Op::Gemm {
                    alpha: 0.5,
                    beta: 2.0,
                    trans_a: false,
                    trans_b: true,
                },
                &[p1, w2, c2],
            )
            .unwrap();
        let skip = g.add_simple("skip", Op::MatMul, &[f, w3]).unwrap();
        let s = g.add_simple("res", Op::Add, &[g2, skip]).unwrap();
        let leaky = Poly {
            function: "leaky_relu".into(),
            in_scale: 0.7,
            out_scale: 1.3,
            stages: vec![sign_stage(-2.0, 2.0)],
            combine: PolyCombine::LeakyRelu { slope: 0.1 },
        };
        let l = g
            .add_simple("leaky", Op::Poly(Box::new(leaky)), &[s])
            .unwrap();
        let d = g.add_simple("div", Op::Div, &[l, four]).unwrap();
        let mu = g.add_simple("mul", Op::Mul, &[row, d]).unwrap();
        let sub = g.add_simple("sub", Op::Sub, &[one, mu]).unwrap();
        let y = g
            .add_simple("reshape", Op::Reshape { allowzero: false }, &[sub, shape])
            .unwrap();
        g.set_outputs(vec![y, p1]);
        pannc_interp::infer_types(&mut g).unwrap();
        g
    }

    #[test]
    fn circuit_computes_the_graph() {
        let g = mlp();
        let c = to_circuit(&g, &CircuitOptions::default()).unwrap();
        let r = check_json(&c.to_json().unwrap()).unwrap();
        assert!(r.is_consistent(), "{:?}", r.mismatches);
        assert_eq!((c.inputs.len(), c.outputs.len()), (6, 3 + 4));
        // Levels: linear 1, ReLU (degree 7: 3, combine 1) 4, linear 1, LeakyReLU 4, linear 1.
        assert_eq!(c.depth, 11);
        // The ReLU output is a graph output: its out_scale is in the polynomial, so it stays
        // at level 1 + 4 (no extra level for the scale).
        let levels = c.recompute_levels().unwrap();
        for o in &c.outputs[3..] {
            assert_eq!(levels[o.value.0 as usize], 5, "{}", o.name);
        }
        let n = 5;
        let xs: Vec<f64> = (0..n * 6)
            .map(|i| ((i as f64) * 0.77).sin() * 1.5)
            .collect();
        let x = Tensor::from_f64(&[n, 2, 3], xs.clone()).unwrap();
        let want = pannc_interp::run(
            &g,
            &[x],
            &RunOptions {
                precision: Precision::F64,
                ..RunOptions::default()
            },
        )
        .unwrap();
        let (y, p) = (want[0].to_f64_vec(), want[1].to_f64_vec());
        for i in 0..n {
            let got = c.eval(&xs[i * 6..(i + 1) * 6]).unwrap();
            for j in 0..3 {
                assert!((got[j] - y[i * 3 + j]).abs() < 1e-9, "y[{i},{j}]");
            }
            for j in 0..4 {
                assert!((got[3 + j] - p[i * 4 + j]).abs() < 1e-9, "relu[{i},{j}]");
            }
        }
        let levels: Vec<(String, u32)> = c
            .layers
            .iter()
            .map(|l| (l.kind.clone(), l.levels()))
            .collect();
        assert_eq!(
            levels,
            vec![
                ("linear".into(), 1),
                ("poly:relu".into(), 4),
                ("linear".into(), 1),
                ("poly:leaky_relu".into(), 4),
                ("output".into(), 1),
            ]
        );
    }

    #[test]
    fn unsupported_graphs_are_errors_naming_the_node() {
        let base = mlp();
        let find = |g: &Graph, name: &str| {
            g.node_ids()
                .into_iter()
                .find(|&id| g.node(id).name == name)
                .unwrap()
        };
        let cases: Vec<(&str, Op, &str)> = vec![
            ("flat", Op::Flatten { axis: 0 }, "axis"),
            ("div", Op::Mul, "activations"),
            ("leaky", Op::Relu, "compile the graph"),
            ("mm", Op::Transpose { perm: vec![] }, "not supported"),
        ];
        for (node, op, msg) in cases {
            let mut g = base.clone();
            let id = find(&g, node);
            if node == "div" {
                // Make it a product of two activations.
                let l = g.node(id).inputs()[0];
                g.set_input(id, 1, l).unwrap();
            }
            *g.op_mut(id) = op;
            let e = to_circuit(&g, &CircuitOptions::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(node) && e.contains(msg), "{node}: {e}");
        }
        // Op limit.
        let e = to_circuit(
            &base,
            &CircuitOptions {
                max_ops: 10,
                ..CircuitOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("max_ops"), "{e}");
    }

    #[test]
    fn leaky_relu_approximation_circuit() {
        let a = pannc_approx::approximate(
            pannc_approx::Function::LeakyRelu { slope: 0.1 },
            pannc_approx::Method::Composite,
            pannc_approx::Budget::Alpha(7),
            (-1.0, 1.0),
            pannc_approx::Shaping::default(),
        )
        .unwrap();
        let c = approximation_circuit(&a, 0).unwrap();
        let r = check_json(&c.to_json().unwrap()).unwrap();
        assert!(r.is_consistent());
        assert_eq!(r.depth, a.depth);
        for i in 0..=100 {
            let x = -1.0 + i as f64 / 50.0;
            assert!((c.eval(&[x]).unwrap()[0] - a.eval(x)).abs() < 1e-9, "{x}");
        }
    }
}
