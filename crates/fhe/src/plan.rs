//! Depth-optimal evaluation planner for Chebyshev-basis polynomials.
//!
//! # Cost model and what "optimal" means
//!
//! Levels follow the table in [`crate::circuit`]: ct×ct and ct×(non-integer
//! constant) cost one level each, additions and integer scalars cost none. In
//! this model a value at level `t` is a polynomial of degree ≤ 2^t whose
//! leading coefficient is an integer when the degree is exactly 2^t
//! (induction over the ops). So a polynomial of degree `d` with a non-integer
//! leading coefficient needs at least `⌈log2(d+1)⌉` levels; the planner always
//! reaches that bound (plus `extra_levels` if asked).
//!
//! # Algorithm
//!
//! `p = Σ c_k T_k` is split recursively at powers of two `g = 2^s` with the
//! Chebyshev product identity `2·T_g·T_j = T_{g+j} + T_{|g−j|}`:
//!
//! ```text
//! p = q·T_g + r,   q = c_g + Σ_{j≥1} 2·c_{g+j}·T_j,   r = Σ_{k<g} c_k T_k − Σ_{j≥1} c_{g+j}·T_{|g−j|}
//! ```
//!
//! and polynomials of degree ≤ `L` (the leaf degree) are evaluated as a
//! linear combination of precomputed `T_j`. A polynomial evaluated at relative
//! depth `t` may be a leaf iff `⌈log2 n⌉ + 1 ≤ t` (the scalar costs its level on
//! top of `T_n`), and a split at `2^s` needs `q` within `t−1` levels and `r`
//! within `t`. A dynamic program over (degree, depth) picks, for each
//! subproblem, the leaf or the split with the fewest ct×ct multiplications;
//! this is how non-integer scalars get "merged into products": the scalar of a
//! top coefficient travels down the `q` chain to a low-degree leaf whose level
//! has slack, instead of multiplying a full-depth `T_j`. The outer loop tries
//! every leaf degree `L ∈ {2^i−1, 2^i, 3·2^(i−1)}` and keeps the circuit with the
//! fewest ct×ct multiplications (ties: fewer ops, smaller L).
//!
//! `T_k` is computed as `2·T_a·T_b − T_{a−b}` with `a` the largest power of two
//! below `k`, which puts it at its optimal level `⌈log2 k⌉`; only the `T_k`
//! actually referenced are emitted, so odd/even polynomials (exact zero
//! coefficients) never compute the other parity's baby steps, and the splits
//! at even `g` preserve parity.
//!
//! # Multiplication count
//!
//! In this cost model the leading term `c_d T_d` of a degree `d = 2^m − 1`
//! polynomial can only be produced as `(c·q)·T_{2^(m−1)}` with `q` again tight
//! one level lower, so depth optimality forces a chain of up to one product per
//! level on top of the usual baby-step/giant-step work. Measured (random dense
//! coefficients): 8, 13, 18, 27, 36 ct×ct at degrees 15, 31, 63, 127, 255,
//! against 7, 11, 16, 24, 33 for the textbook BSGS that spends one more level;
//! tests check `≤ PS(d) + ⌈log2(d+1)⌉` for every degree up to 300 and some up to
//! 4096, with `PS(d)` the Chebyshev Paterson–Stockmeyer count of Bossuat et al.
//! 2021. [`PlanOptions::extra_levels`] trades levels back for multiplications.
//!
//! # Input normalisation
//!
//! With [`InputMode::Normalised`] the circuit input is already
//! `u = (2x−a−b)/(b−a)`: the compiler folds the affine map into the producer
//! (the previous linear layer), recorded as the input's `producer_affine`. The
//! depth is then exactly `⌈log2(d+1)⌉`. With [`InputMode::AffineInCircuit`] the
//! circuit computes `u` itself: one extra level when `2/(b−a)` is not an
//! integer, none otherwise (e.g. `[-1,1]`, `[0,1]`, `[-0.5,0.5]`).
//!
//! # Compositions
//!
//! [`plan_composite`] evaluates `p_k∘…∘p_1`; the map from stage `i`'s output
//! onto stage `i+1`'s interval is folded into stage `i`'s coefficients (free).
//! [`Combine::Relu`] computes `x·(1+s(x))/2 = x/2 + x·(s(x)/2)` with the ½
//! folded into the last stage's coefficients, so the ReLU costs
//! `Σ⌈log2(d_i+1)⌉ + 1` levels. [`PlanOptions::output_scale`] is folded the
//! same way (last-stage coefficients, and the `x/2` term, which has slack).

use std::collections::BTreeMap;

use crate::cheb::{ceil_log2, optimal_depth, Affine, Interval};
use crate::circuit::{Circuit, CircuitBuilder, Output, PlanInfo, StageInfo, Term, ValueId};
use crate::error::{FheError, Result};

/// Hard cap on the degree any plan accepts (keeps memory and time bounded).
pub const DEGREE_HARD_LIMIT: usize = 1 << 14;

/// Where the map onto [-1, 1] happens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputMode {
    /// The input already is `u = (2x−a−b)/(b−a)` (folded into the producer).
    #[default]
    Normalised,
    /// The circuit applies the affine map to the raw input (may cost a level).
    AffineInCircuit,
}

/// Planner options.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub input: InputMode,
    /// Levels allowed above `⌈log2(d+1)⌉` per stage; more levels buy fewer ct×ct mults.
    pub extra_levels: u32,
    /// Reject degrees above this (≤ [`DEGREE_HARD_LIMIT`]).
    pub max_degree: usize,
    /// Circuit name (default derived from the degrees).
    pub name: Option<String>,
    /// Constant factor applied to the result, folded into the last stage's
    /// coefficients (and the combine's `x` term), so it costs no level
    /// (default 1). Compilers use it for an activation's output scale.
    pub output_scale: f64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            input: InputMode::Normalised,
            extra_levels: 0,
            max_degree: 4096,
            name: None,
            output_scale: 1.0,
        }
    }
}

/// One stage of a composition: `Σ c_k T_k((2y−a−b)/(b−a))` on `interval`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub coeffs: Vec<f64>,
    pub interval: Interval,
}

/// How the composed value `s` is combined with the raw input `x`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Combine {
    /// Output `s`.
    #[default]
    None,
    /// Output `x·(1+s)/2` (ReLU from a sign approximation).
    Relu,
    /// Output `x·s` (|x| from a sign approximation).
    Abs,
}

impl Combine {
    fn name(self) -> &'static str {
        match self {
            Combine::None => "none",
            Combine::Relu => "relu",
            Combine::Abs => "abs",
        }
    }
}

/// Plan a single Chebyshev polynomial `p(x) = Σ c_k T_k((2x−a−b)/(b−a))`.
///
/// The resulting circuit has one input (`u` if normalised, else `x`) and one
/// output `y`; its depth is `⌈log2(d+1)⌉ + extra_levels` (+1 for an in-circuit
/// non-integer input map), where `d` is the index of the last non-zero
/// coefficient.
pub fn plan_chebyshev(coeffs: &[f64], interval: Interval, opts: &PlanOptions) -> Result<Circuit> {
    plan_composite(
        &[Stage {
            coeffs: coeffs.to_vec(),
            interval,
        }],
        Combine::None,
        opts,
    )
    .map(|mut c| {
        if let Some(p) = c.plan.as_mut() {
            p.kind = "chebyshev".into();
        }
        c
    })
}

/// Plan `combine(x, p_k∘…∘p_1(x))`.
pub fn plan_composite(stages: &[Stage], combine: Combine, opts: &PlanOptions) -> Result<Circuit> {
    if stages.is_empty() {
        return Err(FheError::Plan("composite needs at least one stage".into()));
    }
    if opts.max_degree > DEGREE_HARD_LIMIT {
        return Err(FheError::Plan(format!(
            "max_degree {} exceeds the hard limit {DEGREE_HARD_LIMIT}",
            opts.max_degree
        )));
    }
    // Validate and trim.
    let mut coeffs: Vec<Vec<f64>> = Vec::with_capacity(stages.len());
    for (i, st) in stages.iter().enumerate() {
        st.interval
            .validate()
            .map_err(|e| FheError::Plan(format!("stage {i}: {e}")))?;
        if st.coeffs.is_empty() {
            return Err(FheError::Plan(format!("stage {i}: no coefficients")));
        }
        if let Some(k) = st.coeffs.iter().position(|c| !c.is_finite()) {
            return Err(FheError::Plan(format!(
                "stage {i}: coefficient c_{k} = {} is not finite",
                st.coeffs[k]
            )));
        }
        let d = degree_of(&st.coeffs);
        if d > opts.max_degree {
            return Err(FheError::Plan(format!(
                "stage {i}: degree {d} exceeds max_degree {}",
                opts.max_degree
            )));
        }
        if stages.len() > 1 && d == 0 {
            return Err(FheError::Plan(format!(
                "stage {i}: constant stage in a composition"
            )));
        }
        coeffs.push(st.coeffs[..=d].to_vec());
    }
    // Fold the map from stage i's output onto stage i+1's interval into stage i.
    for i in 0..stages.len() - 1 {
        let m = stages[i + 1].interval.to_unit();
        fold_affine(&mut coeffs[i], m);
    }
    let os = opts.output_scale;
    if !(os.is_finite() && os != 0.0) {
        return Err(FheError::Plan(format!(
            "output_scale must be finite and non-zero (got {os})"
        )));
    }
    let last = coeffs.len() - 1;
    fold_affine(
        &mut coeffs[last],
        Affine {
            scale: if combine == Combine::Relu {
                0.5 * os
            } else {
                os
            },
            shift: 0.0,
        },
    );

    let first = stages[0].interval;
    let name = opts.name.clone().unwrap_or_else(|| {
        let ds: Vec<String> = coeffs.iter().map(|c| (c.len() - 1).to_string()).collect();
        match (stages.len(), combine) {
            (1, Combine::None) => format!("chebyshev_d{}", ds[0]),
            _ => format!("composite_{}_{}", ds.join("_"), combine.name()),
        }
    });
    let mut b = CircuitBuilder::new(name);
    let (x, u, input_map_levels) = match opts.input {
        InputMode::Normalised => {
            let x = b.input("u")?;
            let inp = b.input_mut(x).expect("just added");
            inp.range = Some([-1.0, 1.0]);
            if !first.is_unit() {
                inp.producer_affine = Some(first.to_unit());
            }
            (x, x, 0)
        }
        InputMode::AffineInCircuit => {
            let x = b.input("x")?;
            b.input_mut(x).expect("just added").range = Some([first.lo, first.hi]);
            let m = first.to_unit();
            let u = if m.is_identity() {
                x
            } else {
                match b.affine(x, m) {
                    Term::Ct(v) => v,
                    Term::Const(_) => unreachable!("affine map with non-zero scale"),
                }
            };
            (x, u, b.level(u))
        }
    };

    let mut infos = Vec::with_capacity(stages.len());
    let mut cur = u;
    let mut result = Term::Ct(u);
    for (i, c) in coeffs.iter().enumerate() {
        let (t, info) = emit_stage(&mut b, cur, c, opts.extra_levels, stages[i].interval)?;
        infos.push(info);
        result = t;
        match t {
            Term::Ct(v) => cur = v,
            Term::Const(_) if i + 1 < coeffs.len() => {
                return Err(FheError::Plan(format!("stage {i} evaluates to a constant")));
            }
            Term::Const(_) => {}
        }
    }
    let s_level = b.term_level(result);
    let raw = match opts.input {
        InputMode::Normalised => first.from_unit(),
        InputMode::AffineInCircuit => Affine::IDENTITY,
    };
    let y = match combine {
        Combine::None => result,
        Combine::Abs => {
            let xr = b.affine(x, raw);
            b.mul_terms(xr, result)
        }
        Combine::Relu => {
            let xr = b.affine(x, raw);
            let prod = b.mul_terms(xr, result);
            let half = b.affine(
                x,
                Affine {
                    scale: raw.scale * 0.5 * os,
                    shift: raw.shift * 0.5 * os,
                },
            );
            b.add_terms(prod, half)
        }
    };
    let combine_levels = b.term_level(y).saturating_sub(s_level);
    let yv = b.materialise(y, x);
    let plan = PlanInfo {
        kind: "composite".into(),
        stages: infos,
        combine: combine.name().into(),
        input_mode: match opts.input {
            InputMode::Normalised => "normalised".into(),
            InputMode::AffineInCircuit => "affine_in_circuit".into(),
        },
        input_map_levels,
        combine_levels,
    };
    b.finish(
        vec![Output {
            name: "y".into(),
            value: yv,
        }],
        Some(plan),
    )
}

/// Replace `p` by `m.scale·p + m.shift` in the Chebyshev basis.
fn fold_affine(c: &mut [f64], m: Affine) {
    for v in c.iter_mut() {
        *v *= m.scale;
    }
    c[0] += m.shift;
}

/// Index of the last non-zero coefficient (0 for the zero polynomial).
fn degree_of(c: &[f64]) -> usize {
    c.iter().rposition(|&v| v != 0.0).unwrap_or(0)
}

fn parity_of(c: &[f64]) -> &'static str {
    let d = degree_of(c);
    if d == 0 {
        return "none";
    }
    let odd = c.iter().step_by(2).all(|&v| v == 0.0);
    let even = c.iter().skip(1).step_by(2).all(|&v| v == 0.0);
    match (odd, even) {
        (true, _) => "odd",
        (_, true) => "even",
        _ => "none",
    }
}

/// Emit one stage on input `x`; tries every leaf degree and keeps the cheapest.
fn emit_stage(
    b: &mut CircuitBuilder,
    x: ValueId,
    c: &[f64],
    extra: u32,
    interval: Interval,
) -> Result<(Term, StageInfo)> {
    let d = degree_of(c);
    let target = optimal_depth(d) + extra;
    let base = b.level(x);
    let mut caps: Vec<usize> = vec![1];
    let mut p = 2usize;
    while p / 2 <= d.max(1) {
        caps.extend([p - 1, p, p + p / 2]);
        p *= 2;
    }
    caps.retain(|&l| l >= 1 && l <= d.max(1));
    caps.sort_unstable();
    caps.dedup();

    let before = b.ct_ct_mults();
    let mut best: Option<(u32, usize, usize, CircuitBuilder, Term)> = None;
    for &cap in &caps {
        let mut trial = b.clone();
        let mut em = PolyEmitter {
            b: &mut trial,
            x,
            powers: BTreeMap::new(),
            dp: Dp::new(cap, d, target),
        };
        let Some(t) = em.eval(c, target)? else {
            continue;
        };
        let lvl = trial.term_level(t);
        if lvl > base + target {
            return Err(FheError::Plan(format!(
                "internal: degree {d} with leaf degree {cap} reached level {} > {}",
                lvl - base,
                target
            )));
        }
        let key = (trial.ct_ct_mults() - before, trial.num_ops(), cap);
        if best
            .as_ref()
            .is_none_or(|(m, o, l, _, _)| key < (*m, *o, *l))
        {
            best = Some((key.0, key.1, key.2, trial, t));
        }
    }
    let (mults, _, cap, nb, t) = best.ok_or_else(|| {
        FheError::Plan(format!(
            "internal: no plan for degree {d} within {target} levels"
        ))
    })?;
    *b = nb;
    let info = StageInfo {
        degree: d,
        interval: [interval.lo, interval.hi],
        parity: parity_of(c).into(),
        leaf_degree: cap,
        levels: b.term_level(t) - base,
        ct_ct_mults: mults,
    };
    Ok((t, info))
}

#[derive(Clone, Copy, Debug)]
enum Choice {
    Leaf,
    Split(u32),
}

/// Dynamic program over (degree n, relative depth t) → (ct×ct mults, choice),
/// assuming every coefficient is non-integer and non-zero (worst case).
struct Dp {
    leaf_cap: usize,
    tmax: u32,
    memo: Vec<Option<Option<(u32, Choice)>>>,
}

impl Dp {
    fn new(leaf_cap: usize, nmax: usize, tmax: u32) -> Dp {
        Dp {
            leaf_cap,
            tmax,
            memo: vec![None; (nmax + 1) * (tmax as usize + 1)],
        }
    }

    fn solve(&mut self, n: usize, t: u32) -> Option<(u32, Choice)> {
        if t > self.tmax {
            return None;
        }
        let idx = n * (self.tmax as usize + 1) + t as usize;
        if let Some(Some(r)) = self.memo.get(idx) {
            return *r;
        }
        let res = self.compute(n, t);
        if let Some(slot) = self.memo.get_mut(idx) {
            *slot = Some(res);
        }
        res
    }

    fn compute(&mut self, n: usize, t: u32) -> Option<(u32, Choice)> {
        if n == 0 {
            return Some((0, Choice::Leaf));
        }
        let mut best = None;
        if n <= self.leaf_cap && ceil_log2(n) < t {
            best = Some((0, Choice::Leaf));
        }
        for s in (1..t).rev() {
            let g = 1usize << s;
            if g > n {
                continue;
            }
            let qd = n - g;
            let rd = (g - 1).max(n.saturating_sub(2 * g));
            let cq = if qd == 0 {
                Some(0)
            } else {
                self.solve(qd, t - 1).map(|(m, _)| m + 1)
            };
            let Some(cq) = cq else { continue };
            let Some((cr, _)) = self.solve(rd, t) else {
                continue;
            };
            let cost = cq + cr;
            if best.is_none_or(|(m, _)| cost < m) {
                best = Some((cost, Choice::Split(s)));
            }
        }
        best
    }
}

struct PolyEmitter<'b> {
    b: &'b mut CircuitBuilder,
    x: ValueId,
    powers: BTreeMap<usize, ValueId>,
    dp: Dp,
}

impl PolyEmitter<'_> {
    /// `T_k(x)` at level `⌈log2 k⌉` above `x`.
    fn power(&mut self, k: usize) -> ValueId {
        if k == 1 {
            return self.x;
        }
        if let Some(v) = self.powers.get(&k) {
            return *v;
        }
        let a = 1usize << (ceil_log2(k) - 1);
        let bb = k - a;
        let ta = self.power(a);
        let tb = self.power(bb);
        let p = self.b.mul(ta, tb);
        let p2 = self.b.mul_int(p, 2);
        let v = if a == bb {
            self.b.add_const(p2, -1.0)
        } else {
            let td = self.power(a - bb);
            self.b.sub(p2, td)
        };
        self.powers.insert(k, v);
        v
    }

    /// Evaluate `Σ c_k T_k(x)` within `t` levels above `x`. `Ok(None)` if the
    /// DP finds no plan with this leaf degree.
    fn eval(&mut self, c: &[f64], t: u32) -> Result<Option<Term>> {
        let n = degree_of(c);
        if n == 0 {
            return Ok(Some(Term::Const(c.first().copied().unwrap_or(0.0))));
        }
        let Some((_, choice)) = self.dp.solve(n, t) else {
            return Ok(None);
        };
        match choice {
            Choice::Leaf => {
                let mut terms = Vec::new();
                for (j, &cj) in c.iter().enumerate().take(n + 1).skip(1) {
                    if cj != 0.0 {
                        terms.push((cj, self.power(j)));
                    }
                }
                Ok(Some(self.b.lin_comb(&terms, c[0])))
            }
            Choice::Split(s) => {
                let g = 1usize << s;
                let mut q = vec![0.0; n - g + 1];
                q[0] = c[g];
                for j in 1..=n - g {
                    q[j] = 2.0 * c[g + j];
                }
                let mut r = vec![0.0; g.max(n.saturating_sub(2 * g) + 1)];
                r[..g].copy_from_slice(&c[..g]);
                for j in 1..=n - g {
                    r[g.abs_diff(j)] -= c[g + j];
                }
                let Some(qt) = self.eval(&q, t - 1)? else {
                    return Ok(None);
                };
                let tg = self.power(g);
                let prod = match qt {
                    Term::Const(v) => self.b.scale(tg, v),
                    Term::Ct(qv) => Term::Ct(self.b.mul(qv, tg)),
                };
                let Some(rt) = self.eval(&r, t)? else {
                    return Ok(None);
                };
                Ok(Some(self.b.add_terms(prod, rt)))
            }
        }
    }
}
