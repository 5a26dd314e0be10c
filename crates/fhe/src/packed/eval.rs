//! Plaintext semantics (`docs/packed-format.md`, "Plaintext semantics"): every ciphertext
//! becomes its vector of S reals, `rotate` a cyclic shift, `poly` the embedded circuit's f64
//! evaluation, `bootstrap` the identity, and `linear` the baby-step giant-step formula of the
//! spec,
//!
//! ```text
//! y_o = b_o + Σ_g rot_{g·n1}( Σ_i Σ_j rot_{-g·n1}(d[o,i,g·n1+j]) ⊙ rot_j(x_i) )
//! ```
//!
//! evaluated as written (pre-rotated diagonals, one baby rotation per (i, j), one giant
//! rotation per (o, g)), so that evaluating a program checks the decomposition a runner uses;
//! [`linear_direct`] is the plain diagonal sum to compare with.

use std::collections::BTreeMap;

use super::layout::positions;
use super::{op_where, LinearWeights, OpKind, PackedError, Program, Result, Weights};
use crate::circuit::{Circuit, Op as COp};

/// `rot_k(v)[s] = v[(s + k) mod S]` (left rotation).
pub fn rotate(v: &[f64], k: usize) -> Vec<f64> {
    let s = v.len();
    if s == 0 {
        return vec![];
    }
    let k = k % s;
    let mut out = Vec::with_capacity(s);
    out.extend_from_slice(&v[k..]);
    out.extend_from_slice(&v[..k]);
    out
}

/// One sample's elements (row-major) placed in the slots of a value with this shape and
/// layout: `m·S` reals, zeros in unused slots.
pub fn pack(
    x: &[f64],
    shape: &[usize],
    layout: Option<&super::Layout>,
    cts: usize,
    slots: usize,
) -> Vec<f64> {
    let mut v = vec![0.0; cts * slots];
    for (e, p) in positions(shape, layout).into_iter().enumerate() {
        v[p] = x[e];
    }
    v
}

/// The elements (row-major) of a value from its slots.
pub fn unpack(v: &[f64], shape: &[usize], layout: Option<&super::Layout>) -> Vec<f64> {
    positions(shape, layout).into_iter().map(|p| v[p]).collect()
}

/// `used[p]` for every position of a value of `cts` ciphertexts.
pub fn used_mask(
    shape: &[usize],
    layout: Option<&super::Layout>,
    cts: usize,
    slots: usize,
) -> Vec<bool> {
    let mut m = vec![false; cts * slots];
    for p in positions(shape, layout) {
        m[p] = true;
    }
    m
}

/// The diagonal sum `y_o[s] = Σ d[o,i,k][s]·x_i[(s+k) mod S] + b_o[s]`, directly.
pub fn linear_direct(w: &LinearWeights, x: &[f64], m_out: usize, slots: usize) -> Vec<f64> {
    let s = slots;
    let mut y = w.bias.clone();
    y.resize(m_out * s, 0.0);
    for (r, &[o, i, k]) in w.index.iter().enumerate() {
        let d = w.diag_row(r, s);
        let xi = &x[i * s..(i + 1) * s];
        let yo = &mut y[o * s..(o + 1) * s];
        for t in 0..s {
            yo[t] += d[t] * xi[(t + k) % s];
        }
    }
    y
}

/// `(i, j, rot_{-g·n1}(d))`: the pre-rotated diagonals of one giant step.
type Terms = Vec<(usize, usize, Vec<f64>)>;

/// A linear op prepared for baby-step giant-step evaluation.
struct Prepared {
    n1: usize,
    m_out: usize,
    /// Per output ciphertext: `(g, [(i, j, rot_{-g·n1}(d))])`.
    groups: Vec<Vec<(usize, Terms)>>,
    /// `(i, j)` baby rotations needed (j = 0 included).
    babies: Vec<(usize, usize)>,
    bias: Vec<f64>,
}

impl Prepared {
    fn new(w: &LinearWeights, n1: usize, m_out: usize, slots: usize) -> Prepared {
        let s = slots;
        let n1 = n1.max(1);
        let mut groups: Vec<BTreeMap<usize, Terms>> = vec![BTreeMap::new(); m_out];
        let mut babies = std::collections::BTreeSet::new();
        for (r, &[o, i, k]) in w.index.iter().enumerate() {
            let (g, j) = (k / n1, k % n1);
            // rot_{-g·n1}(d) = rot_{S - g·n1 mod S}(d)
            let d = rotate(w.diag_row(r, s), (s - (g * n1) % s) % s);
            groups[o].entry(g).or_default().push((i, j, d));
            babies.insert((i, j));
        }
        Prepared {
            n1,
            m_out,
            groups: groups
                .into_iter()
                .map(|m| m.into_iter().collect())
                .collect(),
            babies: babies.into_iter().collect(),
            bias: w.bias.clone(),
        }
    }

    fn apply(&self, x: &[f64], slots: usize) -> Vec<f64> {
        let s = slots;
        let baby: BTreeMap<(usize, usize), Vec<f64>> = self
            .babies
            .iter()
            .map(|&(i, j)| ((i, j), rotate(&x[i * s..(i + 1) * s], j)))
            .collect();
        let mut y = self.bias.clone();
        y.resize(self.m_out * s, 0.0);
        for (o, gs) in self.groups.iter().enumerate() {
            for (g, terms) in gs {
                let mut inner = vec![0.0; s];
                for (i, j, d) in terms {
                    let b = &baby[&(*i, *j)];
                    for t in 0..s {
                        inner[t] += d[t] * b[t];
                    }
                }
                let inner = rotate(&inner, (g * self.n1) % s);
                for (yt, it) in y[o * s..(o + 1) * s].iter_mut().zip(inner) {
                    *yt += it;
                }
            }
        }
        y
    }
}

/// A version-1 circuit applied slot-wise to a vector.
pub fn circuit_slotwise(c: &Circuit, x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut vals: Vec<Vec<f64>> = Vec::with_capacity(1 + c.ops.len());
    vals.push(x.to_vec());
    for e in &c.ops {
        let v = match e.op {
            COp::Add { a, b } => zip(&vals[a.0 as usize], &vals[b.0 as usize], |p, q| p + q),
            COp::Sub { a, b } => zip(&vals[a.0 as usize], &vals[b.0 as usize], |p, q| p - q),
            COp::Mul { a, b } => zip(&vals[a.0 as usize], &vals[b.0 as usize], |p, q| p * q),
            COp::Neg { a } => vals[a.0 as usize].iter().map(|p| -p).collect(),
            COp::MulConst { a, c: k } => {
                let k = c.constants[k.0 as usize];
                vals[a.0 as usize].iter().map(|p| p * k).collect()
            }
            COp::MulInt { a, k } => vals[a.0 as usize].iter().map(|p| p * k as f64).collect(),
            COp::AddConst { a, c: k } => {
                let k = c.constants[k.0 as usize];
                vals[a.0 as usize].iter().map(|p| p + k).collect()
            }
        };
        debug_assert_eq!(v.len(), n);
        vals.push(v);
    }
    vals.swap_remove(c.outputs[0].value.0 as usize)
}

fn zip(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    a.iter().zip(b).map(|(&p, &q)| f(p, q)).collect()
}

/// Evaluates a program in plaintext, one sample at a time.
pub struct Evaluator<'p> {
    p: &'p Program,
    prepared: Vec<Option<Prepared>>,
}

impl<'p> Evaluator<'p> {
    /// Prepares every linear op (the program is assumed valid: [`super::validate`]).
    pub fn new(p: &'p Program, w: &Weights) -> Result<Evaluator<'p>> {
        let mut prepared = Vec::with_capacity(p.ops.len());
        for (j, op) in p.ops.iter().enumerate() {
            prepared.push(match &op.kind {
                OpKind::Linear { weights, n1, .. } => {
                    let lw = w.get(weights).ok_or_else(|| {
                        PackedError::Eval(format!("{}: no weights '{weights}'", op_where(j, op)))
                    })?;
                    let m_out = p.values[op.out as usize].ciphertexts;
                    Some(Prepared::new(lw, *n1, m_out, p.slots))
                }
                _ => None,
            });
        }
        Ok(Evaluator { p, prepared })
    }

    /// Every value's slots (`m·S` reals each) for one sample; `inputs[i]` holds input `i`'s
    /// elements in row-major order. `hook(j, y)` may rewrite the result of op `j` before later
    /// ops read it (the compiler uses it to substitute values in checks).
    pub fn run(
        &self,
        inputs: &[&[f64]],
        mut hook: impl FnMut(usize, &mut Vec<f64>),
    ) -> Result<Vec<Vec<f64>>> {
        let p = self.p;
        let s = p.slots;
        if inputs.len() != p.inputs.len() {
            return Err(PackedError::Eval(format!(
                "the program has {} inputs, got {}",
                p.inputs.len(),
                inputs.len()
            )));
        }
        let mut vals: Vec<Vec<f64>> = Vec::with_capacity(p.values.len());
        for (i, x) in inputs.iter().enumerate() {
            let v = &p.values[i];
            if x.len() != v.numel() {
                return Err(PackedError::Eval(format!(
                    "input '{}' has {} elements, got {}",
                    p.inputs[i].name,
                    v.numel(),
                    x.len()
                )));
            }
            vals.push(pack(x, &v.shape, v.layout.as_ref(), v.ciphertexts, s));
        }
        for (j, op) in p.ops.iter().enumerate() {
            let mut y = match &op.kind {
                OpKind::Linear { input, .. } => self.prepared[j]
                    .as_ref()
                    .expect("prepared")
                    .apply(&vals[*input as usize], s),
                OpKind::Poly { input, circuit } => {
                    circuit_slotwise(circuit, &vals[*input as usize])
                }
                OpKind::Add { a, b } => zip(&vals[*a as usize], &vals[*b as usize], |p, q| p + q),
                OpKind::MulConst { a, c } => vals[*a as usize].iter().map(|x| x * c).collect(),
                OpKind::Rotate { a, k } => rotate(&vals[*a as usize], *k),
                OpKind::Bootstrap { input } => vals[*input as usize].clone(),
            };
            hook(j, &mut y);
            vals.push(y);
        }
        Ok(vals)
    }

    /// The outputs' elements (row-major) for one sample.
    pub fn outputs(&self, inputs: &[&[f64]]) -> Result<Vec<Vec<f64>>> {
        let vals = self.run(inputs, |_, _| {})?;
        Ok(self
            .p
            .outputs
            .iter()
            .map(|o| {
                let v = &self.p.values[o.value as usize];
                unpack(&vals[o.value as usize], &v.shape, v.layout.as_ref())
            })
            .collect())
    }
}
