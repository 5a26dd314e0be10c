//! Lowering of a compiled PANN to a **packed** CKKS program (`pannc-circuit` version 3,
//! `docs/packed-format.md`): one sample's activation tensor in the slots of one ciphertext
//! (or a few), linear layers as generalised-diagonal maps evaluated with rotations.
//!
//! # Linear chains become one `linear` op
//!
//! Every IR value is carried as an unevaluated affine *form* `Σ_src M_src·src + b` over the
//! packed values computed so far ([`maps::Form`]); `M_src` is a sparse matrix over tensor
//! elements. Conv (any stride, padding, groups, dilation), Gemm/MatMul with a constant matrix,
//! BatchNormalization, AveragePool, GlobalAveragePool, Add/Sub/Mul/Div with constants,
//! Flatten/Reshape/Squeeze/Unsqueeze/Identity/Dropout, Transpose and Concat compose into the
//! form: each node's matrix is built tap by tap from its weights ([`linear`]) and multiplied
//! sparsely into the form, never as a dense matrix (except Gemm/MatMul, dense by nature). A
//! residual `Add` of two computed tensors adds forms. A form is *materialised* only where a
//! ciphertext is needed — a polynomial's input and the graph outputs: each term whose matrix
//! is not the identity becomes one `linear` op (diagonals accumulated per (output ciphertext,
//! input ciphertext, offset) straight from the matrix entries), the bias rides on one of them,
//! identity terms are used as they are, and `add` ops sum the parts. So a chain of linear
//! nodes between two polynomials costs one level, and a residual join costs none.
//!
//! # Polynomials and scales
//!
//! Each `Poly` becomes a `poly` op whose circuit is planned by `pannc_fhe::plan_composite`
//! exactly as in [`super::slot_per_sample`]: the input normalisation (`in_scale` and the map of
//! the first stage's interval onto [-1, 1]) is folded into the producing linear op; the
//! `out_scale` goes into the next linear ops' weights when every reader composes into a linear
//! op, else into the coefficients; LeakyReLU's `slope·x` term stays in the form.
//!
//! # Layouts
//!
//! Graph inputs and outputs are compact. The output layout of every other materialisation is
//! chosen among compact and the *multiplexed* continuations of its sources' layouts (a stride
//! `s` keeps the pixel grid and multiplies the gap by `s`), by the estimated time of the
//! linear ops it needs (rotations and diagonals); an identity term forces its source's layout
//! (so residual branches meet in one layout at no cost).
//!
//! # Slots
//!
//! The smallest power of two that holds the largest activation tensor, unless the caller sets
//! it; larger tensors then span several ciphertexts.

#[path = "packed/linear.rs"]
pub mod linear;
#[path = "packed/maps.rs"]
pub mod maps;
#[path = "packed/verify.rs"]
pub mod verify;

use std::collections::{BTreeMap, HashMap};

use pannc_fhe::packed::{
    cost, layout, BootstrapParams, CkksParams, Io, Layer, Layout, LinearWeights, Op as POp, OpKind,
    Program, Stats, Value as PValue, Weights,
};
use pannc_fhe::{plan_composite, Combine, Interval, PlanOptions, Stage};
use pannc_ir::{Dim, Graph, NodeId, Op, Poly, PolyCombine, Tensor, ValueId};

use crate::CkksError;
use maps::{Form, Map};

/// Options of [`lower`].
#[derive(Clone, Debug)]
pub struct PackedOptions {
    /// Program name (default: the graph's).
    pub name: Option<String>,
    /// Slots per ciphertext (a power of two); default: the smallest holding the largest tensor.
    pub slots: Option<usize>,
    /// Levels allowed above the optimum per polynomial stage.
    pub extra_levels: u32,
    /// Refuse graphs whose composed linear maps would hold more coefficients than this.
    pub max_coefficients: usize,
}

impl Default for PackedOptions {
    fn default() -> Self {
        PackedOptions {
            name: None,
            slots: None,
            extra_levels: 0,
            max_coefficients: 200_000_000,
        }
    }
}

/// What a packed value holds, in terms of the IR (for the checks against the interpreter).
#[derive(Clone, Debug, PartialEq)]
pub enum Meaning {
    /// `scale·ir + shift`, element by element.
    Affine { ir: ValueId, scale: f64, shift: f64 },
    /// The output of a poly op: `ir_out = lazy·value + slope_coef·ir_in`.
    PolyOut {
        node: NodeId,
        ir_out: ValueId,
        ir_in: ValueId,
        lazy: f64,
        slope_coef: f64,
    },
    /// One part of a sum (no IR value of its own).
    Partial,
}

/// A lowered program before bootstrap placement.
#[derive(Clone, Debug)]
pub struct Lowered {
    /// Levels derived, `ckks.levels = depth`, no ranges yet.
    pub program: Program,
    pub weights: Weights,
    /// Per packed value.
    pub meanings: Vec<Meaning>,
}

/// Non-batch dimensions of a batch-first type, if all known.
pub(crate) fn feature_shape(ty: Option<&pannc_ir::TensorType>) -> Option<Vec<usize>> {
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

/// The slots a graph needs by default: the smallest power of two ≥ its largest activation.
pub fn default_slots(g: &Graph) -> Result<usize, CkksError> {
    let mut n = 1usize;
    for v in g.value_ids() {
        if g.constant(v).is_some() {
            continue;
        }
        if let Some(s) = feature_shape(g.value(v).ty.as_ref()) {
            n = n.max(s.iter().product());
        }
    }
    Ok(n.next_power_of_two().max(2))
}

/// `Some(c)` when the map is `c` times the identity with `c` a non-zero integer of modest size.
fn integer_scale(m: &Map) -> Option<i64> {
    match m {
        Map::Identity { scale, .. }
            if *scale != 0.0 && scale.fract() == 0.0 && scale.abs() <= (1u64 << 20) as f64 =>
        {
            Some(*scale as i64)
        }
        _ => None,
    }
}

struct Lowerer<'g> {
    g: &'g Graph,
    opts: &'g PackedOptions,
    s: usize,
    p: Program,
    w: Weights,
    meanings: Vec<Meaning>,
    forms: HashMap<ValueId, Form>,
    cache: HashMap<(ValueId, u64, u64, bool), u32>,
    coefficients: usize,
}

/// Lowers a PANN-form graph to a packed program (see the module doc).
pub fn lower(g: &Graph, opts: &PackedOptions) -> Result<Lowered, CkksError> {
    lower_inner(g, opts).map_err(|e| match e {
        // A refused op: say in the same line everything else the graph needs that the
        // lowering lacks (a transformer's data movement and attention products).
        CkksError::Unsupported {
            node,
            op,
            mut reason,
        } => {
            reason.push_str(&super::lacking_clause(g, &node, "lowering", lowers_op));
            CkksError::Unsupported { node, op, reason }
        }
        e => e,
    })
}

/// The ops on computed values this lowering handles (polynomials included).
fn lowers_op(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv { .. }
            | Op::Gemm { .. }
            | Op::MatMul
            | Op::BatchNormalization { .. }
            | Op::AveragePool { .. }
            | Op::GlobalAveragePool
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Div
            | Op::Flatten { .. }
            | Op::Reshape { .. }
            | Op::Squeeze
            | Op::Unsqueeze
            | Op::Transpose { .. }
            | Op::Concat { .. }
            | Op::Identity
            | Op::Dropout
            | Op::Poly(_)
    )
}

fn lower_inner(g: &Graph, opts: &PackedOptions) -> Result<Lowered, CkksError> {
    let s = match opts.slots {
        Some(s) if s >= 2 && s.is_power_of_two() => s,
        Some(s) => {
            return Err(CkksError::Graph(format!(
                "slots {s} is not a power of two ≥ 2"
            )))
        }
        None => default_slots(g)?,
    };
    let name = opts.name.clone().unwrap_or_else(|| {
        if g.name.is_empty() {
            "network".into()
        } else {
            g.name.clone()
        }
    });
    let mut l = Lowerer {
        g,
        opts,
        s,
        p: Program {
            name,
            slots: s,
            values: vec![],
            inputs: vec![],
            outputs: vec![],
            ops: vec![],
            rotations: vec![],
            depth: 0,
            stats: Stats::default(),
            ckks: CkksParams {
                ring_dim: 2 * s as u64,
                slots: s,
                scale_bits: 59,
                first_mod_bits: 60,
                levels: 0,
                bootstrap: BootstrapParams::default(),
                security: "HEStd_NotSet".into(),
            },
            estimate: None,
            layers: vec![],
        },
        w: Weights::new(),
        meanings: vec![],
        forms: HashMap::new(),
        cache: HashMap::new(),
        coefficients: 0,
    };
    l.inputs()?;
    let order = g
        .topo_order()
        .map_err(|e| CkksError::Graph(e.to_string()))?;
    for id in order {
        l.node(id)?;
    }
    l.outputs()?;
    let Lowerer {
        mut p, w, meanings, ..
    } = l;
    p.refresh_derived(&w)
        .map_err(|e| CkksError::Internal(format!("lowered program: {e}")))?;
    p.ckks.levels = p.depth;
    Ok(Lowered {
        program: p,
        weights: w,
        meanings,
    })
}

fn unsupported(g: &Graph, id: NodeId, reason: impl Into<String>) -> CkksError {
    let n = g.node(id);
    CkksError::Unsupported {
        node: n.name.clone(),
        op: n.op.name().to_string(),
        reason: reason.into(),
    }
}

impl Lowerer<'_> {
    fn level(&self, v: u32) -> u32 {
        self.p.values[v as usize].level
    }

    fn push_value(&mut self, shape: Vec<usize>, lay: Option<Layout>, meaning: Meaning) -> u32 {
        let id = self.p.values.len() as u32;
        let ciphertexts = layout::ciphertexts(&shape, lay.as_ref(), self.s).unwrap_or(usize::MAX);
        self.p.values.push(PValue {
            id,
            shape,
            ciphertexts,
            level: 0,
            range: None,
            layout: lay,
        });
        self.meanings.push(meaning);
        id
    }

    fn push_op(
        &mut self,
        kind: OpKind,
        shape: Vec<usize>,
        lay: Option<Layout>,
        meaning: Meaning,
        node: &str,
    ) -> u32 {
        let id = self.push_value(shape, lay, meaning);
        let levels: Vec<u32> = kind.args().iter().map(|&a| self.level(a)).collect();
        let args = kind.args();
        let level =
            kind.result_level(|a| levels[args.iter().position(|&x| x == a).expect("operand")]);
        self.p.values[id as usize].level = level;
        self.p.layers.push(Layer {
            op: self.p.ops.len(),
            node: node.to_string(),
        });
        self.p.ops.push(POp {
            out: id,
            kind,
            level,
        });
        id
    }

    fn shape_of(&self, v: ValueId, id: Option<NodeId>) -> Result<Vec<usize>, CkksError> {
        feature_shape(self.g.value(v).ty.as_ref()).ok_or_else(|| {
            let msg = format!(
                "value '{}' needs a batch-first type with known dimensions (run shape inference)",
                self.g.value(v).name
            );
            match id {
                Some(id) => unsupported(self.g, id, msg),
                None => CkksError::Graph(msg),
            }
        })
    }

    fn inputs(&mut self) -> Result<(), CkksError> {
        let g = self.g;
        if g.inputs().is_empty() {
            return Err(CkksError::Graph("the graph has no inputs".into()));
        }
        for &v in g.inputs() {
            let shape = self.shape_of(v, None)?;
            let id = self.push_value(
                shape.clone(),
                None,
                Meaning::Affine {
                    ir: v,
                    scale: 1.0,
                    shift: 0.0,
                },
            );
            self.p.inputs.push(Io {
                name: g.value(v).name.clone(),
                value: id,
                shape: shape.clone(),
            });
            self.forms.insert(v, Form::source(id, shape));
        }
        Ok(())
    }

    fn form(&self, id: NodeId, v: ValueId) -> Result<&Form, CkksError> {
        self.forms.get(&v).ok_or_else(|| {
            unsupported(
                self.g,
                id,
                format!(
                    "input '{}' is neither an activation nor a constant",
                    self.g.value(v).name
                ),
            )
        })
    }

    fn constant(
        &self,
        id: NodeId,
        ins: &[ValueId],
        k: usize,
        what: &str,
    ) -> Result<Tensor, CkksError> {
        let v = *ins
            .get(k)
            .ok_or_else(|| unsupported(self.g, id, format!("{what} is missing")))?;
        self.g.constant(v).cloned().ok_or_else(|| {
            unsupported(
                self.g,
                id,
                format!("{what} must be a constant (plaintext weights)"),
            )
        })
    }

    fn guard(&mut self, id: NodeId, f: &Form) -> Result<(), CkksError> {
        let n = f.nnz();
        if n > self.opts.max_coefficients {
            return Err(unsupported(
                self.g,
                id,
                format!(
                    "its composed linear map has {n} coefficients, more than PackedOptions::max_coefficients ({})",
                    self.opts.max_coefficients
                ),
            ));
        }
        self.coefficients = self.coefficients.max(n);
        Ok(())
    }

    fn node(&mut self, id: NodeId) -> Result<(), CkksError> {
        let g = self.g;
        let n = g.node(id);
        if matches!(n.op, Op::Constant(_)) {
            return Ok(());
        }
        let ins = n.inputs().to_vec();
        let out = match (n.outputs(), &n.op) {
            ([o], _) => *o,
            ([o, ..], Op::Dropout) => *o,
            _ => return Err(unsupported(g, id, "expected exactly one output")),
        };
        let is_act = |v: &ValueId| self.forms.contains_key(v);
        if !ins.iter().any(is_act) {
            if ins.iter().all(|v| g.constant(*v).is_some()) {
                return Err(unsupported(
                    g,
                    id,
                    "constant subgraph left unfolded (run const-fold)",
                ));
            }
            return Err(unsupported(
                g,
                id,
                "its inputs are not computed from the graph inputs",
            ));
        }
        let out_shape = |s: &Self| s.shape_of(out, Some(id));
        let form = match &n.op {
            Op::Conv { window, group } => {
                let x = self.form(id, ins[0])?.clone();
                let w = self.constant(id, &ins, 1, "the weight")?;
                let b = match ins.get(2) {
                    Some(_) => Some(self.constant(id, &ins, 2, "the bias")?),
                    None => None,
                };
                let os = out_shape(self)?;
                let (l, b0) = linear::conv(&x.shape, &w, b.as_ref(), window, *group, &os)
                    .map_err(|m| unsupported(g, id, m))?;
                x.apply(&l, &b0, os)
            }
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => {
                if *trans_a {
                    return Err(unsupported(g, id, "transA=1 mixes the samples of a batch"));
                }
                let x = self.form(id, ins[0])?.clone();
                let w = self.constant(id, &ins, 1, "the weight B")?;
                let bias = match ins.get(2) {
                    Some(_) => Some((self.constant(id, &ins, 2, "the bias C")?, *beta as f64)),
                    None => None,
                };
                self.gemm(id, &x, &w, *trans_b, *alpha as f64, bias, out)?
            }
            Op::MatMul => {
                if g.constant(ins[0]).is_some() {
                    return Err(unsupported(g, id, "constant × activation MatMul mixes samples; only activation × constant is supported"));
                }
                let x = self.form(id, ins[0])?.clone();
                let w = self.constant(id, &ins, 1, "the right operand")?;
                self.gemm(id, &x, &w, false, 1.0, None, out)?
            }
            Op::Add | Op::Sub => {
                let sign = if matches!(n.op, Op::Sub) { -1.0 } else { 1.0 };
                match (g.constant(ins[0]), g.constant(ins[1])) {
                    (None, None) => {
                        let a = self.form(id, ins[0])?;
                        let b = self.form(id, ins[1])?;
                        if a.shape != b.shape {
                            return Err(unsupported(
                                g,
                                id,
                                format!("broadcasting between activations of shapes {:?} and {:?}", a.shape, b.shape),
                            ));
                        }
                        a.add(1.0, b, sign)
                    }
                    (None, Some(c)) => {
                        let a = self.form(id, ins[0])?.clone();
                        let c = linear::broadcast(c, &a.shape).map_err(|m| unsupported(g, id, m))?;
                        let shift: Vec<f64> = c.iter().map(|x| sign * x).collect();
                        a.scale_shift(&vec![1.0; a.numel()], &shift)
                    }
                    (Some(c), None) => {
                        let a = self.form(id, ins[1])?.clone();
                        let c = linear::broadcast(c, &a.shape).map_err(|m| unsupported(g, id, m))?;
                        a.scale_shift(&vec![sign; a.numel()], &c)
                    }
                    (Some(_), Some(_)) => unreachable!("checked above"),
                }
            }
            Op::Mul | Op::Div => {
                let div = matches!(n.op, Op::Div);
                let (x, c) = match (g.constant(ins[0]), g.constant(ins[1])) {
                    (None, Some(c)) => (ins[0], c),
                    (Some(c), None) if !div => (ins[1], c),
                    (None, None) => {
                        return Err(unsupported(g, id, "product of two activations (only polynomial activations multiply ciphertexts)"))
                    }
                    _ => return Err(unsupported(g, id, "only activation / constant is supported")),
                };
                let a = self.form(id, x)?.clone();
                let mut c = linear::broadcast(c, &a.shape).map_err(|m| unsupported(g, id, m))?;
                if div {
                    if c.contains(&0.0) {
                        return Err(unsupported(g, id, "division by zero"));
                    }
                    c.iter_mut().for_each(|x| *x = 1.0 / *x);
                }
                a.scale_shift(&c, &vec![0.0; a.numel()])
            }
            Op::BatchNormalization { epsilon } => {
                let x = self.form(id, ins[0])?.clone();
                let p: Vec<Vec<f64>> = (1..5)
                    .map(|k| self.constant(id, &ins, k, "a BatchNormalization parameter").map(|t| t.to_f64_vec()))
                    .collect::<Result<_, _>>()?;
                let c = *x.shape.first().unwrap_or(&0);
                if p.iter().any(|v| v.len() != c) {
                    return Err(unsupported(g, id, format!("parameters do not have the input's {c} channels")));
                }
                let per = x.numel() / c.max(1);
                let eps = *epsilon as f64;
                let (mut f, mut sh) = (Vec::with_capacity(x.numel()), Vec::with_capacity(x.numel()));
                for (((sc, b), mean), var) in p[0].iter().zip(&p[1]).zip(&p[2]).zip(&p[3]) {
                    let s = sc / (var + eps).sqrt();
                    let t = b - mean * s;
                    f.extend(std::iter::repeat_n(s, per));
                    sh.extend(std::iter::repeat_n(t, per));
                }
                x.scale_shift(&f, &sh)
            }
            Op::AveragePool {
                window,
                count_include_pad,
            } => {
                let x = self.form(id, ins[0])?.clone();
                let os = out_shape(self)?;
                let l = linear::average_pool(&x.shape, window, *count_include_pad, &os)
                    .map_err(|m| unsupported(g, id, m))?;
                let z = vec![0.0; l.rows()];
                x.apply(&l, &z, os)
            }
            Op::GlobalAveragePool => {
                let x = self.form(id, ins[0])?.clone();
                let os = out_shape(self)?;
                if x.shape.len() < 2 {
                    return Err(unsupported(g, id, "needs [N, C, spatial...]"));
                }
                match self.gap_by_rotations(&x, &os, &n.name) {
                    Some(f) => f,
                    None => {
                        let l = linear::global_average_pool(&x.shape);
                        let z = vec![0.0; l.rows()];
                        x.apply(&l, &z, os)
                    }
                }
            }
            Op::Flatten { axis } => {
                let x = self.form(id, ins[0])?.clone();
                let rank = x.shape.len() as i64 + 1;
                let ax = if *axis < 0 { axis + rank } else { *axis };
                if ax != 1 {
                    return Err(unsupported(g, id, format!("Flatten axis {axis} mixes the batch with features; only axis 1 is supported")));
                }
                self.reshaped(id, x, out)?
            }
            Op::Reshape { .. } | Op::Squeeze | Op::Unsqueeze => {
                let x = self.form(id, ins[0])?.clone();
                self.reshaped(id, x, out)?
            }
            Op::Identity | Op::Dropout => self.form(id, ins[0])?.clone(),
            Op::Transpose { perm } => {
                let x = self.form(id, ins[0])?.clone();
                let (l, os) = linear::transpose(&x.shape, perm).map_err(|m| unsupported(g, id, m))?;
                let z = vec![0.0; l.rows()];
                x.apply(&l, &z, os)
            }
            Op::Concat { axis } => {
                let mut parts = Vec::new();
                for v in &ins {
                    match (self.forms.get(v), g.constant(*v)) {
                        (Some(f), _) => parts.push(f.clone()),
                        _ => return Err(unsupported(g, id, "concatenating a constant with activations")),
                    }
                }
                let rank = parts[0].shape.len() as i64 + 1;
                let ax = if *axis < 0 { axis + rank } else { *axis };
                if ax < 1 || ax >= rank {
                    return Err(unsupported(g, id, format!("Concat axis {axis} is the batch axis or out of range")));
                }
                let ax = (ax - 1) as usize;
                let shapes: Vec<Vec<usize>> = parts.iter().map(|f| f.shape.clone()).collect();
                if shapes.iter().any(|s| s.len() != shapes[0].len() || s.iter().enumerate().any(|(i, d)| i != ax && *d != shapes[0][i])) {
                    return Err(unsupported(g, id, format!("inputs of shapes {shapes:?} do not concatenate along axis {axis}")));
                }
                let mut acc: Option<Form> = None;
                for (k, f) in parts.iter().enumerate() {
                    let (l, os) = linear::concat_part(&shapes, ax, k);
                    let z = vec![0.0; l.rows()];
                    let part = f.apply(&l, &z, os);
                    acc = Some(match acc {
                        None => part,
                        Some(a) => a.add(1.0, &part, 1.0),
                    });
                }
                acc.expect("at least one input")
            }
            Op::Poly(p) => self.poly(id, p, ins[0], out)?,
            op if op.is_nonlinear() => {
                return Err(unsupported(g, id, "not a polynomial: compile the graph into a PANN first (pannc compile)"))
            }
            _ => {
                return Err(unsupported(
                    g,
                    id,
                    "supported: Conv, Gemm, MatMul, BatchNormalization, AveragePool, GlobalAveragePool, Add/Sub/Mul/Div, Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Concat, Identity, Dropout, Poly",
                ))
            }
        };
        let mut form = form;
        if matches!(
            n.op,
            Op::Conv { .. }
                | Op::Gemm { .. }
                | Op::MatMul
                | Op::BatchNormalization { .. }
                | Op::AveragePool { .. }
                | Op::GlobalAveragePool
                | Op::Transpose { .. }
                | Op::Concat { .. }
        ) || (matches!(n.op, Op::Mul | Op::Div))
        {
            form.note(&n.name);
        }
        self.guard(id, &form)?;
        self.forms.insert(out, form);
        Ok(())
    }

    /// GlobalAveragePool of a form whose terms are scaled copies of one-ciphertext `[C, H, W]`
    /// values: each source is summed over its pixel grid by rotations (`rotate` + `add`, no
    /// level), leaving channel `c`'s sum at the position of `(c, 0, 0)`, and the form reads
    /// those positions. Without it the pool composes into the next linear op as a `C×HW`-wide
    /// dense block, whose diagonals are as many as the tensor's slots (1 577 for the ResNet's
    /// last layer instead of ≤ 320 here). `None` when the form does not qualify.
    fn gap_by_rotations(&mut self, x: &Form, os: &[usize], node: &str) -> Option<Form> {
        let [c, h, w] = x.shape[..] else { return None };
        if h * w <= 1 || os.iter().product::<usize>() != c {
            return None;
        }
        let ok = x.terms.iter().all(|(src, m)| {
            let v = &self.p.values[*src as usize];
            matches!(m, Map::Identity { .. }) && v.ciphertexts == 1 && v.shape == x.shape
        });
        if !ok || x.terms.is_empty() {
            return None;
        }
        let n = c * h * w;
        let pool = (h * w) as f64;
        let mut terms = Vec::new();
        for (src, m) in &x.terms {
            let Map::Identity { scale, .. } = m else {
                return None;
            };
            let v = self.p.values[*src as usize].clone();
            let (gap, wg) = v.layout.map_or((1, w), |l| (l.gap, l.grid[1]));
            let rows = self.sum_by_rotations(*src, gap, w, node);
            let total = self.sum_by_rotations(rows, gap * wg, h, node);
            let a = scale / pool;
            let csr = maps::Csr::build(c, n, |r, push| push(r * h * w, a));
            terms.push((total, Map::Sparse(csr)));
        }
        let bias = (0..c)
            .map(|r| x.bias[r * h * w..(r + 1) * h * w].iter().sum::<f64>() / pool)
            .collect();
        Some(Form {
            shape: os.to_vec(),
            terms,
            bias,
            via: Default::default(),
        })
    }

    /// `Σ_{t<count} rot_{t·step}(x)` by doubling: ⌊log₂ count⌋ + popcount(count) − 1
    /// rotations, no level.
    fn sum_by_rotations(&mut self, x: u32, step: usize, count: usize, node: &str) -> u32 {
        let s = self.s;
        let v = self.p.values[x as usize].clone();
        let rot = |me: &mut Self, a: u32, k: usize| -> u32 {
            let k = k % s;
            if k == 0 {
                return a;
            }
            me.push_op(
                OpKind::Rotate { a, k },
                v.shape.clone(),
                v.layout,
                Meaning::Partial,
                node,
            )
        };
        let add = |me: &mut Self, a: u32, b: u32| -> u32 {
            me.push_op(
                OpKind::Add { a, b },
                v.shape.clone(),
                v.layout,
                Meaning::Partial,
                node,
            )
        };
        // powers[i] = Σ_{t<2^i} rot_{t·step}(x)
        let mut powers = vec![x];
        while (1usize << powers.len()) <= count {
            let i = powers.len() - 1;
            let p = powers[i];
            let r = rot(self, p, (1 << i) * step);
            let q = add(self, p, r);
            powers.push(q);
        }
        let mut acc: Option<u32> = None;
        let mut offset = 0usize;
        for i in (0..powers.len()).rev() {
            if count >> i & 1 == 1 {
                let t = rot(self, powers[i], offset * step);
                acc = Some(match acc {
                    None => t,
                    Some(a) => add(self, a, t),
                });
                offset += 1 << i;
            }
        }
        acc.unwrap_or(x)
    }

    fn reshaped(&self, id: NodeId, mut x: Form, out: ValueId) -> Result<Form, CkksError> {
        let os = self.shape_of(out, Some(id))?;
        if os.iter().product::<usize>() != x.numel() {
            return Err(unsupported(
                self.g,
                id,
                format!(
                    "reshape from {:?} to {os:?} moves data across the batch dimension",
                    x.shape
                ),
            ));
        }
        x.shape = os;
        Ok(x)
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        id: NodeId,
        x: &Form,
        w: &Tensor,
        trans_b: bool,
        alpha: f64,
        bias: Option<(Tensor, f64)>,
        out: ValueId,
    ) -> Result<Form, CkksError> {
        let g = self.g;
        if x.shape.len() != 1 {
            return Err(unsupported(
                g,
                id,
                format!(
                    "activation of shape [N,{:?}] must be [N, features] (Flatten it first)",
                    x.shape
                ),
            ));
        }
        let k_in = x.shape[0];
        let ws = w.shape();
        let (k, m) = match (ws.len(), trans_b) {
            (2, false) => (ws[0], ws[1]),
            (2, true) => (ws[1], ws[0]),
            (1, false) => (ws[0], 1),
            _ => {
                return Err(unsupported(
                    g,
                    id,
                    format!("weight of shape {ws:?} is not a matrix"),
                ))
            }
        };
        if k != k_in {
            return Err(unsupported(
                g,
                id,
                format!("weight of shape {ws:?} does not fit {k_in} input features"),
            ));
        }
        let wv = w.to_f64_vec();
        let l = linear::dense(k, m, |kk, j| {
            alpha
                * if trans_b {
                    wv[j * k + kk]
                } else {
                    wv[kk * m + j]
                }
        });
        let b0 = match bias {
            Some((t, beta)) => linear::broadcast(&t, &[m])
                .map_err(|e| unsupported(g, id, e))?
                .into_iter()
                .map(|x| x * beta)
                .collect(),
            None => vec![0.0; m],
        };
        let os = self.shape_of(out, Some(id))?;
        Ok(x.apply(&l, &b0, os))
    }

    /// Whether the out_scale of a polynomial producing `v` can stay lazy: every reader composes
    /// into a linear op (see the module doc).
    fn absorbs(&self, v: ValueId, depth: usize) -> bool {
        let g = self.g;
        if depth > 64 || g.outputs().contains(&v) {
            return false;
        }
        let users = g.users(v);
        !users.is_empty()
            && users.iter().all(|&(u, slot)| {
                let n = g.node(u);
                let other_const =
                    |k: usize| n.inputs().get(k).is_some_and(|&x| g.constant(x).is_some());
                let through = || {
                    n.outputs()
                        .first()
                        .is_some_and(|&o| self.absorbs(o, depth + 1))
                };
                match &n.op {
                    Op::Conv { .. }
                    | Op::Gemm { .. }
                    | Op::AveragePool { .. }
                    | Op::GlobalAveragePool
                    | Op::Transpose { .. }
                    | Op::Concat { .. } => true,
                    Op::MatMul | Op::BatchNormalization { .. } => slot == 0,
                    Op::Mul | Op::Div | Op::Add | Op::Sub => {
                        other_const(1 - slot.min(1)) && through()
                    }
                    Op::Flatten { .. }
                    | Op::Reshape { .. }
                    | Op::Squeeze
                    | Op::Unsqueeze
                    | Op::Identity
                    | Op::Dropout => slot == 0 && through(),
                    _ => false,
                }
            })
    }

    fn poly(&mut self, id: NodeId, p: &Poly, x: ValueId, out: ValueId) -> Result<Form, CkksError> {
        let g = self.g;
        let name = g.node(id).name.clone();
        let input = self.form(id, x)?.clone();
        let (combine, slope) = match p.combine {
            PolyCombine::Identity => (Combine::None, 0.0),
            PolyCombine::Relu => (Combine::Relu, 0.0),
            PolyCombine::LeakyRelu { slope } => (Combine::Relu, slope),
        };
        let first = p
            .stages
            .first()
            .ok_or_else(|| unsupported(g, id, "polynomial without stages"))?;
        let iv =
            Interval::new(first.lo, first.hi).map_err(|e| unsupported(g, id, e.to_string()))?;
        let to_unit = iv.to_unit();
        let os = p.out_scale;
        let relu_part = 1.0 - slope;
        let (plan_scale, lazy) = if self.absorbs(out, 0) {
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
                    interval: Interval::new(s.lo, s.hi)
                        .map_err(|e| unsupported(g, id, e.to_string()))?,
                })
            })
            .collect::<Result<_, CkksError>>()?;
        let popts = PlanOptions {
            extra_levels: self.opts.extra_levels,
            name: Some(format!("{name}/{}", p.function)),
            output_scale: plan_scale,
            ..PlanOptions::default()
        };
        let circuit = plan_composite(&stages, combine, &popts).map_err(|e| CkksError::Plan {
            node: name.clone(),
            message: e.to_string(),
        })?;
        let u = self.materialise(x, to_unit.scale * p.in_scale, to_unit.shift, false, &name)?;
        let (shape, lay) = {
            let v = &self.p.values[u as usize];
            (v.shape.clone(), v.layout)
        };
        let q = self.push_op(
            OpKind::Poly {
                input: u,
                circuit: Box::new(circuit),
            },
            shape.clone(),
            lay,
            Meaning::PolyOut {
                node: id,
                ir_out: out,
                ir_in: x,
                lazy,
                slope_coef: slope * os * p.in_scale,
            },
            &name,
        );
        let mut f = Form {
            shape: input.shape.clone(),
            terms: vec![(
                q,
                Map::Identity {
                    n: input.numel(),
                    scale: lazy,
                },
            )],
            bias: vec![0.0; input.numel()],
            via: Default::default(),
        };
        if slope != 0.0 {
            let c = slope * os * p.in_scale;
            f = f.add(1.0, &input, c);
        }
        Ok(f)
    }

    /// Candidate output layouts for a materialisation of `shape` whose terms read `srcs`.
    fn layout_candidates(&self, shape: &[usize], srcs: &[u32]) -> Vec<Option<Layout>> {
        let mut c: Vec<Option<Layout>> = vec![None];
        let [_, h2, w2] = shape else { return c };
        for &src in srcs {
            let v = &self.p.values[src as usize];
            let (g, grid, h, w) = match (&v.layout, v.shape.as_slice()) {
                (Some(l), [_, h, w]) => (l.gap, l.grid, *h, *w),
                (None, [_, h, w]) => (1, [*h, *w], *h, *w),
                _ => continue,
            };
            let mut ss = vec![1usize];
            if *h2 > 0 && *w2 > 0 {
                ss.push(h.div_ceil(*h2).max(1));
                ss.push((h / h2).max(1));
                ss.push(w.div_ceil(*w2).max(1));
            }
            ss.sort_unstable();
            ss.dedup();
            for s in ss {
                let gap = g * s;
                if gap > 64 {
                    continue;
                }
                let l = Layout {
                    gap,
                    grid: [grid[0].max(gap * h2), grid[1].max(gap * w2)],
                };
                let l = if l.is_compact_for(shape) {
                    None
                } else {
                    Some(l)
                };
                if !c.contains(&l) {
                    c.push(l);
                }
            }
        }
        c
    }

    /// Diagonal keys `(o, i, k)` of a map from `src` to a value of `shape` in layout `lay`.
    fn diagonal_keys(
        &self,
        map: &Map,
        src: u32,
        shape: &[usize],
        lay: Option<&Layout>,
    ) -> Vec<[usize; 3]> {
        let s = self.s;
        let v = &self.p.values[src as usize];
        let pin = layout::positions(&v.shape, v.layout.as_ref());
        let pout = layout::positions(shape, lay);
        let mut keys = Vec::new();
        let csr = map.to_csr();
        for (e, &po) in pout.iter().enumerate() {
            let (o, t) = (po / s, po % s);
            for (a, _) in csr.row(e) {
                let pi = pin[a];
                keys.push([o, pi / s, (pi % s + s - t) % s]);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    fn linear_weights(
        &self,
        map: &Map,
        src: u32,
        shape: &[usize],
        lay: Option<&Layout>,
        bias: Option<&[f64]>,
    ) -> LinearWeights {
        let s = self.s;
        let v = &self.p.values[src as usize];
        let pin = layout::positions(&v.shape, v.layout.as_ref());
        let pout = layout::positions(shape, lay);
        let m_out = layout::ciphertexts(shape, lay, s).unwrap_or(0);
        let csr = map.to_csr();
        let mut diags: BTreeMap<[usize; 3], Vec<f64>> = BTreeMap::new();
        for (e, &po) in pout.iter().enumerate() {
            let (o, t) = (po / s, po % s);
            for (a, c) in csr.row(e) {
                let pi = pin[a];
                let d = diags
                    .entry([o, pi / s, (pi % s + s - t) % s])
                    .or_insert_with(|| vec![0.0; s]);
                d[t] += c;
            }
        }
        let mut b = vec![0.0; m_out * s];
        if let Some(bias) = bias {
            for (e, &po) in pout.iter().enumerate() {
                b[po] = bias[e];
            }
        }
        LinearWeights {
            index: diags.keys().copied().collect(),
            diag: diags.into_values().flatten().collect(),
            bias: b,
        }
    }

    /// Materialises `scale·v + shift` as one packed value (see the module doc).
    fn materialise(
        &mut self,
        v: ValueId,
        scale: f64,
        shift: f64,
        output: bool,
        node: &str,
    ) -> Result<u32, CkksError> {
        let key = (v, scale.to_bits(), shift.to_bits(), output);
        if let Some(&id) = self.cache.get(&key) {
            return Ok(id);
        }
        let g = self.g;
        let origin = g
            .producer(v)
            .map(|n| g.node(n).name.clone())
            .unwrap_or_else(|| g.value(v).name.clone());
        let f = self.forms.get(&v).ok_or_else(|| {
            CkksError::Graph(format!("value '{}' has no ciphertexts", g.value(v).name))
        })?;
        let n = f.numel();
        let f = f.scale_shift(&vec![scale; n], &vec![shift; n]);
        let terms: Vec<(u32, Map)> = f
            .terms
            .iter()
            .filter(|(_, m)| m.nnz() > 0)
            .cloned()
            .collect();
        if terms.is_empty() {
            return Err(CkksError::Unsupported {
                node: origin,
                op: "constant".into(),
                reason: format!(
                    "value '{}' does not depend on the inputs; a ciphertext cannot hold a constant",
                    g.value(v).name
                ),
            });
        }
        let shape = f.shape.clone();
        // Terms that need no linear op: the identity, or an integer multiple of it (a
        // `mul_const` by an integer costs no level), on a source of the same shape.
        let free_ok = |s: &Self, src: u32, m: &Map| {
            let sv = &s.p.values[src as usize];
            integer_scale(m).is_some() && sv.shape == shape && (!output || sv.layout.is_none())
        };
        // Output layout: that of the highest-level identity term, else the cheapest candidate.
        let free_pick = terms
            .iter()
            .filter(|(src, m)| free_ok(self, *src, m))
            .max_by_key(|(src, _)| (self.level(*src), std::cmp::Reverse(*src)))
            .map(|(src, _)| *src);
        let lay: Option<Layout> = match free_pick {
            Some(src) => self.p.values[src as usize].layout,
            None if output => None,
            None => {
                let srcs: Vec<u32> = terms.iter().map(|t| t.0).collect();
                let model = cost::CostModel::at(16384);
                let mut best: Option<(f64, Option<Layout>)> = None;
                for cand in self.layout_candidates(&shape, &srcs) {
                    if layout::ciphertexts(&shape, cand.as_ref(), self.s).is_none() {
                        continue;
                    }
                    let mut t = 0.0;
                    for (src, m) in &terms {
                        let keys = self.diagonal_keys(m, *src, &shape, cand.as_ref());
                        let plan = cost::choose_n1(&keys, self.s);
                        t += model.seconds(&Stats {
                            rotations: plan.rotations(),
                            pt_mults: keys.len(),
                            ..Stats::default()
                        });
                    }
                    if best.as_ref().is_none_or(|b| t < b.0) {
                        best = Some((t, cand));
                    }
                }
                best.and_then(|b| b.1)
            }
        };
        let mut free: Vec<bool> = terms
            .iter()
            .map(|(src, m)| free_ok(self, *src, m) && self.p.values[*src as usize].layout == lay)
            .collect();
        let has_bias = f.bias.iter().any(|&b| b != 0.0);
        if has_bias && free.iter().all(|&x| x) {
            // The bias needs a linear op: put it on the lowest-level term.
            let k = (0..terms.len())
                .min_by_key(|&k| (self.level(terms[k].0), k))
                .expect("non-empty");
            free[k] = false;
        }
        let single = terms.len() == 1;
        let v_ir = v;
        let mut parts = Vec::with_capacity(terms.len());
        let mut bias_done = false;
        for (k, (src, m)) in terms.iter().enumerate() {
            if free[k] {
                match integer_scale(m) {
                    Some(1) => parts.push(*src),
                    Some(c) => {
                        let v = self.p.values[*src as usize].clone();
                        let meaning = if single {
                            Meaning::Affine {
                                ir: v_ir,
                                scale,
                                shift,
                            }
                        } else {
                            Meaning::Partial
                        };
                        let id = self.push_op(
                            OpKind::MulConst {
                                a: *src,
                                c: c as f64,
                            },
                            v.shape,
                            v.layout,
                            meaning,
                            &origin,
                        );
                        parts.push(id);
                    }
                    None => unreachable!("free terms have integer scales"),
                }
                continue;
            }
            let bias = if bias_done {
                None
            } else {
                Some(f.bias.as_slice())
            };
            bias_done = true;
            let lw = self.linear_weights(m, *src, &shape, lay.as_ref(), bias);
            let plan = cost::choose_n1(&lw.index, self.s);
            let key = format!("L{}", self.p.ops.len());
            let diagonals = lw.index.len();
            self.w.insert(key.clone(), lw);
            let meaning = if single {
                Meaning::Affine {
                    ir: v,
                    scale,
                    shift,
                }
            } else {
                Meaning::Partial
            };
            let node = match f.via.get(src) {
                Some(names) if !names.is_empty() => names.join(" + "),
                _ => origin.clone(),
            };
            let id = self.push_op(
                OpKind::Linear {
                    input: *src,
                    weights: key,
                    n1: plan.n1,
                    diagonals,
                    out_shape: shape.clone(),
                },
                shape.clone(),
                lay,
                meaning,
                &node,
            );
            parts.push(id);
        }
        let _ = node;
        let mut acc = parts[0];
        for (k, &part) in parts.iter().enumerate().skip(1) {
            let meaning = if k + 1 == parts.len() {
                Meaning::Affine {
                    ir: v,
                    scale,
                    shift,
                }
            } else {
                Meaning::Partial
            };
            acc = self.push_op(
                OpKind::Add { a: acc, b: part },
                shape.clone(),
                lay,
                meaning,
                &origin,
            );
        }
        self.cache.insert(key, acc);
        Ok(acc)
    }

    fn outputs(&mut self) -> Result<(), CkksError> {
        let g = self.g;
        if g.outputs().is_empty() {
            return Err(CkksError::Graph("the graph has no outputs".into()));
        }
        for &v in g.outputs() {
            let id = self.materialise(v, 1.0, 0.0, true, "output")?;
            let shape = self.p.values[id as usize].shape.clone();
            self.p.outputs.push(Io {
                name: g.value(v).name.clone(),
                value: id,
                shape,
            });
        }
        Ok(())
    }
}
