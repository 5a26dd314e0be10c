//! Packed CKKS programs (`pannc-circuit` version 3, `docs/packed-format.md`).
//!
//! A packed program runs one compiled network on CKKS with a whole activation tensor of one
//! sample in the slots of one ciphertext (or a few): convolutions and dense layers are
//! [`OpKind::Linear`] maps given by generalised diagonals and evaluated baby-step giant-step
//! with rotations, polynomials act slot-wise ([`OpKind::Poly`], a version-1 circuit), residual
//! joins are [`OpKind::Add`], and [`OpKind::Bootstrap`] refreshes levels. This module is
//! graph-free, like the rest of the crate:
//!
//! - the program types and their deterministic JSON ([`Program::to_json`],
//!   [`Program::from_json`]), the `weights.npz` sidecar ([`Weights`], [`npz`]) and the program
//!   directory ([`write_dir`], [`read_dir`]);
//! - [`validate`]: every rule of the spec's Validity section, one-line errors naming the op
//!   and the rule;
//! - [`Program::refresh_derived`]: levels, depth, rotation keys and counts recomputed;
//! - [`eval`]: the plaintext evaluator (S-slot f64 vectors, cyclic rotations, linear maps
//!   evaluated with the baby-step giant-step formula of the spec);
//! - [`bootstrap`]: bootstrap placement under a level budget (fewest refreshed ciphertexts,
//!   exact dynamic program over the op order whose state is the levels of the live values);
//! - [`cost`]: the choice of baby steps `n1` per linear op and the time estimate;
//! - [`layout`]: compact and multiplexed layouts.

pub mod bootstrap;
pub mod cost;
pub mod eval;
pub mod layout;
pub mod npz;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::circuit::Circuit;
pub use layout::Layout;
pub use validate::validate;

/// `version` of packed programs.
pub const PACKED_VERSION: u32 = 3;

/// Errors of packed programs. Validation errors read `<where>: <what> [rule N: <name>]`.
#[derive(Debug, thiserror::Error)]
pub enum PackedError {
    /// The program breaks a rule of the spec.
    #[error("{0}")]
    Invalid(String),
    #[error("program.json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("weights.npz: {0}")]
    Npz(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("evaluation: {0}")]
    Eval(String),
    #[error("bootstrap placement: {0}")]
    Placement(String),
}

pub type Result<T, E = PackedError> = std::result::Result<T, E>;

/// One tensor value (one sample, batch dimension dropped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Value {
    pub id: u32,
    pub shape: Vec<usize>,
    pub ciphertexts: usize,
    /// Levels consumed since encryption or the last bootstrap.
    pub level: u32,
    /// Bound of every used slot, when the compiler measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
    /// Multiplexed layout; `None` is compact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
}

impl Value {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A graph input or output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Io {
    pub name: String,
    pub value: u32,
    pub shape: Vec<usize>,
}

/// What an op computes. `C` is the embedded circuit of `poly` ops: a [`Circuit`] in memory, a
/// JSON value in the document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpKind<C = Box<Circuit>> {
    /// `y = A·x + b` by generalised diagonals (arrays `{weights}_index|diag|bias`).
    Linear {
        #[serde(rename = "in")]
        input: u32,
        weights: String,
        n1: usize,
        diagonals: usize,
        out_shape: Vec<usize>,
    },
    /// A version-1 circuit applied slot-wise to every ciphertext of `in`.
    Poly {
        #[serde(rename = "in")]
        input: u32,
        circuit: C,
    },
    Add {
        a: u32,
        b: u32,
    },
    MulConst {
        a: u32,
        c: f64,
    },
    /// Left rotation by `k` of a one-ciphertext value.
    Rotate {
        a: u32,
        k: usize,
    },
    Bootstrap {
        #[serde(rename = "in")]
        input: u32,
    },
}

impl<C> OpKind<C> {
    /// The JSON tag.
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::Linear { .. } => "linear",
            OpKind::Poly { .. } => "poly",
            OpKind::Add { .. } => "add",
            OpKind::MulConst { .. } => "mul_const",
            OpKind::Rotate { .. } => "rotate",
            OpKind::Bootstrap { .. } => "bootstrap",
        }
    }

    /// Operand value ids.
    pub fn args(&self) -> Vec<u32> {
        match *self {
            OpKind::Linear { input, .. }
            | OpKind::Poly { input, .. }
            | OpKind::Bootstrap { input } => vec![input],
            OpKind::Add { a, b } => vec![a, b],
            OpKind::MulConst { a, .. } | OpKind::Rotate { a, .. } => vec![a],
        }
    }

    /// Operand ids, mutably (for renumbering).
    pub fn args_mut(&mut self) -> Vec<&mut u32> {
        match self {
            OpKind::Linear { input, .. }
            | OpKind::Poly { input, .. }
            | OpKind::Bootstrap { input } => vec![input],
            OpKind::Add { a, b } => vec![a, b],
            OpKind::MulConst { a, .. } | OpKind::Rotate { a, .. } => vec![a],
        }
    }

    fn map_circuit<D, E>(
        self,
        f: impl FnOnce(C) -> std::result::Result<D, E>,
    ) -> std::result::Result<OpKind<D>, E> {
        Ok(match self {
            OpKind::Linear {
                input,
                weights,
                n1,
                diagonals,
                out_shape,
            } => OpKind::Linear {
                input,
                weights,
                n1,
                diagonals,
                out_shape,
            },
            OpKind::Poly { input, circuit } => OpKind::Poly {
                input,
                circuit: f(circuit)?,
            },
            OpKind::Add { a, b } => OpKind::Add { a, b },
            OpKind::MulConst { a, c } => OpKind::MulConst { a, c },
            OpKind::Rotate { a, k } => OpKind::Rotate { a, k },
            OpKind::Bootstrap { input } => OpKind::Bootstrap { input },
        })
    }
}

impl OpKind {
    /// Level of the result from the operands' levels (the table of the spec).
    pub fn result_level(&self, level_of: impl Fn(u32) -> u32) -> u32 {
        match self {
            OpKind::Linear { input, .. } => level_of(*input) + 1,
            OpKind::Poly { input, circuit } => level_of(*input) + circuit.depth,
            OpKind::Add { a, b } => level_of(*a).max(level_of(*b)),
            OpKind::MulConst { a, c } => level_of(*a) + u32::from(c.fract() != 0.0),
            OpKind::Rotate { a, .. } => level_of(*a),
            OpKind::Bootstrap { .. } => 0,
        }
    }
}

/// An op: the value it defines, what it computes, and that value's level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op<C = Box<Circuit>> {
    pub out: u32,
    #[serde(flatten)]
    pub kind: OpKind<C>,
    pub level: u32,
}

/// Per-sample counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub linear: usize,
    pub poly: usize,
    /// Ciphertexts refreshed.
    pub bootstraps: usize,
    /// Rotations executed: baby steps (per input ciphertext) and giant steps (per output
    /// ciphertext) of every linear op, plus `rotate` ops.
    pub rotations: usize,
    /// ct×ct products (per ciphertext of every poly).
    pub ct_ct_mults: usize,
    /// Plaintext-ciphertext products (one per diagonal; `mul_const` ops).
    pub pt_mults: usize,
    /// Rotation keys.
    pub keys: usize,
}

/// Bootstrapping parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapParams {
    pub level_budget: [u32; 2],
    pub secret: String,
    /// Used slots of a bootstrap input stay within `[-input_bound, input_bound]`.
    pub input_bound: f64,
}

impl Default for BootstrapParams {
    fn default() -> Self {
        BootstrapParams {
            level_budget: [3, 3],
            secret: "uniform_ternary".into(),
            input_bound: 1.0,
        }
    }
}

/// The CKKS parameters a program was planned for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CkksParams {
    pub ring_dim: u64,
    pub slots: usize,
    pub scale_bits: u32,
    pub first_mod_bits: u32,
    /// Levels between bootstraps (`depth ≤ levels`).
    pub levels: u32,
    pub bootstrap: BootstrapParams,
    pub security: String,
}

/// Predicted single-thread time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub seconds: f64,
    pub model: String,
}

/// Provenance of an op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub op: usize,
    pub node: String,
}

/// A packed program (`program.json` without its header fields).
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub name: String,
    pub slots: usize,
    pub values: Vec<Value>,
    pub inputs: Vec<Io>,
    pub outputs: Vec<Io>,
    pub ops: Vec<Op>,
    pub rotations: Vec<usize>,
    pub depth: u32,
    pub stats: Stats,
    pub ckks: CkksParams,
    pub estimate: Option<Estimate>,
    pub layers: Vec<Layer>,
}

#[derive(Serialize, Deserialize)]
struct Document {
    format: String,
    version: u32,
    packing: String,
    name: String,
    slots: usize,
    values: Vec<Value>,
    inputs: Vec<Io>,
    outputs: Vec<Io>,
    ops: Vec<Op<serde_json::Value>>,
    rotations: Vec<usize>,
    depth: u32,
    stats: Stats,
    ckks: CkksParams,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    estimate: Option<Estimate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    layers: Vec<Layer>,
}

/// The arrays of one linear op: `index` rows `(o, i, k)` sorted and unique, `diag` `[D, S]`
/// row-major, `bias` `[m_out, S]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinearWeights {
    pub index: Vec<[usize; 3]>,
    pub diag: Vec<f64>,
    pub bias: Vec<f64>,
}

impl LinearWeights {
    /// Row `r` of `diag` (S slots).
    pub fn diag_row(&self, r: usize, slots: usize) -> &[f64] {
        &self.diag[r * slots..(r + 1) * slots]
    }
}

/// The sidecar: arrays of every linear op, by `weights` key.
pub type Weights = BTreeMap<String, LinearWeights>;

fn invalid(where_: impl std::fmt::Display, rule: &str, msg: impl std::fmt::Display) -> PackedError {
    PackedError::Invalid(format!("{where_}: {msg} [{rule}]"))
}

/// `op #j (kind -> value v)`, as errors name ops.
pub fn op_where<C>(j: usize, op: &Op<C>) -> String {
    format!("op #{j} ({} -> value {})", op.kind.name(), op.out)
}

impl Program {
    /// Serialises to pretty JSON (deterministic), newline-terminated.
    pub fn to_json(&self) -> Result<String> {
        let ops = self
            .ops
            .iter()
            .map(|o| {
                Ok(Op {
                    out: o.out,
                    level: o.level,
                    kind: o.kind.clone().map_circuit(|c| embedded_to_value(&c))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let doc = Document {
            format: crate::circuit::FORMAT_NAME.into(),
            version: PACKED_VERSION,
            packing: "packed".into(),
            name: self.name.clone(),
            slots: self.slots,
            values: self.values.clone(),
            inputs: self.inputs.clone(),
            outputs: self.outputs.clone(),
            ops,
            rotations: self.rotations.clone(),
            depth: self.depth,
            stats: self.stats.clone(),
            ckks: self.ckks.clone(),
            estimate: self.estimate.clone(),
            layers: self.layers.clone(),
        };
        Ok(serde_json::to_string_pretty(&doc)? + "\n")
    }

    /// Parses `program.json` (rule 1's header checks and rule 5's circuits included); the
    /// rest of the rules need the weights: [`validate`].
    pub fn from_json(text: &str) -> Result<Program> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        let r1 = "rule 1: header";
        if v.get("format").and_then(|f| f.as_str()) != Some(crate::circuit::FORMAT_NAME) {
            return Err(invalid(
                "program",
                r1,
                format!(
                    "format {}, expected \"pannc-circuit\"",
                    v.get("format").unwrap_or(&serde_json::Value::Null)
                ),
            ));
        }
        let version = v.get("version").and_then(|x| x.as_u64());
        if version != Some(PACKED_VERSION as u64) {
            return Err(invalid(
                "program",
                r1,
                format!(
                    "version {} is not a packed program (version {PACKED_VERSION})",
                    v.get("version").unwrap_or(&serde_json::Value::Null)
                ),
            ));
        }
        if v.get("packing").and_then(|f| f.as_str()) != Some("packed") {
            return Err(invalid("program", r1, "packing is not \"packed\""));
        }
        let doc: Document = serde_json::from_value(v)?;
        let ops = doc
            .ops
            .into_iter()
            .enumerate()
            .map(|(j, o)| {
                let where_ = op_where(j, &o);
                Ok(Op {
                    out: o.out,
                    level: o.level,
                    kind: o.kind.map_circuit(|c| {
                        embedded_from_value(c)
                            .map_err(|m| invalid(&where_, "rule 5: poly circuit", m))
                    })?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Program {
            name: doc.name,
            slots: doc.slots,
            values: doc.values,
            inputs: doc.inputs,
            outputs: doc.outputs,
            ops,
            rotations: doc.rotations,
            depth: doc.depth,
            stats: doc.stats,
            ckks: doc.ckks,
            estimate: doc.estimate,
            layers: doc.layers,
        })
    }

    /// Recomputes every op's and value's level, `depth`, `rotations` and `stats` from the
    /// ops and weights (ops must be in order with operands defined before use).
    pub fn refresh_derived(&mut self, weights: &Weights) -> Result<()> {
        let n_in = self.inputs.len();
        let mut levels: Vec<u32> = self.values[..n_in].iter().map(|v| v.level).collect();
        let mut rot = BTreeSet::new();
        let mut st = Stats::default();
        for (j, op) in self.ops.iter_mut().enumerate() {
            for a in op.kind.args() {
                if a as usize >= levels.len() {
                    return Err(invalid(
                        op_where(j, op),
                        "rule 1: header",
                        format!("operand {a} is not defined before use"),
                    ));
                }
            }
            let l = op.kind.result_level(|v| levels[v as usize]);
            op.level = l;
            levels.push(l);
            let cts_in = |v: u32| self.values.get(v as usize).map_or(0, |x| x.ciphertexts);
            match &op.kind {
                OpKind::Linear {
                    input,
                    weights: key,
                    n1,
                    ..
                } => {
                    st.linear += 1;
                    let w = weights.get(key).ok_or_else(|| {
                        invalid(
                            op_where(j, op),
                            "rule 4: linear",
                            format!("no weights '{key}'"),
                        )
                    })?;
                    let plan = cost::Bsgs::new(&w.index, *n1, self.slots);
                    st.rotations += plan.baby.len() + plan.giant.len();
                    st.pt_mults += w.index.len();
                    rot.extend(plan.amounts());
                    let _ = input;
                }
                OpKind::Poly { input, circuit } => {
                    st.poly += 1;
                    st.ct_ct_mults += circuit.stats.ct_ct_mults as usize * cts_in(*input);
                }
                OpKind::Add { .. } => {}
                OpKind::MulConst { a, .. } => st.pt_mults += cts_in(*a),
                OpKind::Rotate { k, .. } => {
                    st.rotations += 1;
                    rot.insert(*k);
                }
                OpKind::Bootstrap { input } => st.bootstraps += cts_in(*input),
            }
        }
        for (v, l) in self.values.iter_mut().zip(&levels) {
            v.level = *l;
        }
        self.depth = levels.iter().copied().max().unwrap_or(0);
        self.rotations = rot.into_iter().collect();
        st.keys = self.rotations.len();
        self.stats = st;
        Ok(())
    }

    /// The value ids the op at index `j` reads.
    pub fn reads(&self, j: usize) -> Vec<u32> {
        self.ops[j].kind.args()
    }
}

/// A circuit as embedded in a `poly` op: the version-1 document without `ckks`.
fn embedded_to_value(c: &Circuit) -> Result<serde_json::Value> {
    let mut v = c
        .to_value()
        .map_err(|e| PackedError::Invalid(format!("poly circuit: {e}")))?;
    if let Some(m) = v.as_object_mut() {
        m.remove("ckks");
    }
    Ok(v)
}

fn embedded_from_value(mut v: serde_json::Value) -> std::result::Result<Box<Circuit>, String> {
    let obj = v
        .as_object_mut()
        .ok_or("the embedded circuit is not an object")?;
    if obj.get("version").and_then(|x| x.as_u64()) != Some(1) {
        return Err("the embedded circuit must be a version-1 circuit".into());
    }
    let depth = obj.get("depth").and_then(|d| d.as_u64()).unwrap_or(0) as u32;
    obj.entry("ckks").or_insert_with(|| {
        serde_json::to_value(crate::circuit::CkksParams::suggest(depth)).expect("plain struct")
    });
    let c = Circuit::from_value(v).map_err(|e| e.to_string())?;
    if c.inputs.len() != 1 || c.outputs.len() != 1 {
        return Err(format!(
            "the embedded circuit has {} inputs and {} outputs (one each)",
            c.inputs.len(),
            c.outputs.len()
        ));
    }
    if c.inputs[0].level != 0 {
        return Err("the embedded circuit's input must be at level 0".into());
    }
    Ok(Box::new(c))
}

/// Writes `program.json` and `weights.npz` into `dir` (created if missing). Returns the size
/// of `weights.npz` in bytes.
pub fn write_dir(dir: &Path, p: &Program, w: &Weights) -> Result<u64> {
    let io = |path: &Path, e: std::io::Error| PackedError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let json = p.to_json()?;
    let pj = dir.join("program.json");
    std::fs::write(&pj, json).map_err(|e| io(&pj, e))?;
    let wp = dir.join("weights.npz");
    let f = std::fs::File::create(&wp).map_err(|e| io(&wp, e))?;
    let mut f = std::io::BufWriter::new(f);
    let m_out: BTreeMap<&str, usize> = p
        .ops
        .iter()
        .filter_map(|o| match &o.kind {
            OpKind::Linear { weights, .. } => Some((
                weights.as_str(),
                p.values.get(o.out as usize).map_or(0, |v| v.ciphertexts),
            )),
            _ => None,
        })
        .collect();
    let s = p.slots;
    let mut shapes: Vec<(String, [Vec<usize>; 3])> = Vec::new();
    for (k, lw) in w {
        let d = lw.index.len();
        let mo = m_out
            .get(k.as_str())
            .copied()
            .unwrap_or(lw.bias.len() / s.max(1));
        shapes.push((k.clone(), [vec![d, 3], vec![d, s], vec![mo, s]]));
    }
    let index: Vec<Vec<i64>> = w
        .values()
        .map(|lw| lw.index.iter().flat_map(|r| r.map(|x| x as i64)).collect())
        .collect();
    let mut entries = Vec::new();
    for (((k, sh), lw), idx) in shapes.iter().zip(w.values()).zip(&index) {
        entries.push((format!("{k}_bias"), npz::NpyRef::F64(&sh[2], &lw.bias)));
        entries.push((format!("{k}_diag"), npz::NpyRef::F64(&sh[1], &lw.diag)));
        entries.push((format!("{k}_index"), npz::NpyRef::I64(&sh[0], idx)));
    }
    let n = npz::write_npz(&mut f, entries).map_err(|e| io(&wp, e))?;
    use std::io::Write;
    f.flush().map_err(|e| io(&wp, e))?;
    Ok(n)
}

/// Reads a program directory and validates it ([`validate`]).
pub fn read_dir(dir: &Path) -> Result<(Program, Weights)> {
    let io = |path: &Path, e: std::io::Error| PackedError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let pj = dir.join("program.json");
    let text = std::fs::read_to_string(&pj).map_err(|e| io(&pj, e))?;
    let p = Program::from_json(&text)?;
    let wp = dir.join("weights.npz");
    let bytes = std::fs::read(&wp).map_err(|e| io(&wp, e))?;
    let w = weights_from_npz(&p, &bytes)?;
    validate(&p, &w)?;
    Ok((p, w))
}

/// The weights of every linear op of `p` from the bytes of `weights.npz`, checking the arrays'
/// presence, dtypes and shapes (rule 4).
pub fn weights_from_npz(p: &Program, bytes: &[u8]) -> Result<Weights> {
    let mut arrays = npz::read_npz(bytes).map_err(PackedError::Npz)?;
    let s = p.slots;
    let mut w = Weights::new();
    for (j, op) in p.ops.iter().enumerate() {
        let OpKind::Linear {
            weights: key,
            diagonals,
            ..
        } = &op.kind
        else {
            continue;
        };
        let where_ = op_where(j, op);
        let r4 = "rule 4: linear";
        let m_out = p.values.get(op.out as usize).map_or(0, |v| v.ciphertexts);
        let mut take = |suffix: &str| {
            arrays.remove(&format!("{key}_{suffix}")).ok_or_else(|| {
                invalid(
                    &where_,
                    r4,
                    format!("weights.npz has no array `{key}_{suffix}`"),
                )
            })
        };
        let (index, diag, bias) = (take("index")?, take("diag")?, take("bias")?);
        let d = match (&index.data, index.shape.as_slice()) {
            (npz::NpyData::I64(_), [d, 3]) => *d,
            _ => {
                return Err(invalid(
                    &where_,
                    r4,
                    format!(
                        "`{key}_index` must be int64 [D, 3], is {} {:?}",
                        index.dtype(),
                        index.shape
                    ),
                ))
            }
        };
        if *diagonals != d {
            return Err(invalid(
                &where_,
                r4,
                format!("diagonals = {diagonals} but `{key}_index` has {d} rows"),
            ));
        }
        let npz::NpyData::I64(iv) = index.data else {
            unreachable!()
        };
        let mut rows = Vec::with_capacity(d);
        for (r, c) in iv.chunks_exact(3).enumerate() {
            if c.iter().any(|&x| x < 0) {
                return Err(invalid(
                    &where_,
                    r4,
                    format!("`{key}_index` row {r} has a negative entry"),
                ));
            }
            rows.push([c[0] as usize, c[1] as usize, c[2] as usize]);
        }
        let f64_of = |a: npz::NpyArray, want: [usize; 2], name: &str| match a.data {
            npz::NpyData::F64(v) if a.shape == want => Ok(v),
            _ => Err(invalid(
                &where_,
                r4,
                format!(
                    "`{key}_{name}` must be float64 {want:?}, is {} {:?}",
                    a.dtype(),
                    a.shape
                ),
            )),
        };
        let diag = f64_of(diag, [d, s], "diag")?;
        let bias = f64_of(bias, [m_out, s], "bias")?;
        w.insert(
            key.clone(),
            LinearWeights {
                index: rows,
                diag,
                bias,
            },
        );
    }
    Ok(w)
}
