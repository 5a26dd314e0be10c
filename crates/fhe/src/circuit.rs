//! The circuit data model (`pannc-circuit` version 1), its builder, level
//! accounting, plaintext evaluator and JSON (de)serialisation.
//!
//! See `docs/circuit-format.md` for the normative description. In short: a
//! circuit is a list of SSA ops over ciphertext values; value ids are dense,
//! inputs come first (ids `0..inputs.len()`), op `i` defines value
//! `inputs.len() + i`. Each value carries its *level* = number of rescales on
//! the longest path from an input (input levels are given, default 0) or from
//! the last bootstrap that refreshed it (version 2: [`BootstrapPoint`]s reset
//! the listed values to level 0 between two ops). Optional [`LayerInfo`]
//! records say which ops came from which network layer (informational).
//!
//! | op | level of result | CKKS meaning |
//! |---|---|---|
//! | `add`, `sub` | max(level a, level b) | the higher-level operand is mod-switched down |
//! | `neg`, `mul_int`, `add_const` | level a | no rescale (integer × ct is repeated addition) |
//! | `mul` | max(level a, level b) + 1 | ct×ct, relinearise, one rescale |
//! | `mul_const` | level a + 1 | ct × real scalar encoded at scale Δ, one rescale |

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::cheb::Affine;
use crate::error::{FheError, Result};

/// Value `format` field of every circuit document.
pub const FORMAT_NAME: &str = "pannc-circuit";
/// The newest circuit format version this crate reads and writes. Version 2
/// adds `bootstraps`; a document without bootstraps is written as version 1
/// (it is one), so version-1 readers keep reading everything they can.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version this crate reads.
pub const MIN_FORMAT_VERSION: u32 = 1;

/// Id of a ciphertext value (dense, inputs first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValueId(pub u32);

/// Index into [`Circuit::constants`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConstId(pub u32);

/// One circuit operation. Operands `a`, `b` are ciphertext values; `c` names a
/// real constant in the constant table; `k` is an integer scalar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `a + b` (0 levels).
    Add { a: ValueId, b: ValueId },
    /// `a - b` (0 levels).
    Sub { a: ValueId, b: ValueId },
    /// `-a` (0 levels).
    Neg { a: ValueId },
    /// `a × b`, ciphertext × ciphertext, relinearise + rescale (1 level).
    Mul { a: ValueId, b: ValueId },
    /// `a × constants[c]`, real scalar, rescale (1 level).
    MulConst { a: ValueId, c: ConstId },
    /// `a × k`, integer scalar (0 levels; repeated addition / integer plaintext).
    MulInt { a: ValueId, k: i64 },
    /// `a + constants[c]` (0 levels).
    AddConst { a: ValueId, c: ConstId },
}

impl Op {
    /// The JSON tag of this op.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Add { .. } => "add",
            Op::Sub { .. } => "sub",
            Op::Neg { .. } => "neg",
            Op::Mul { .. } => "mul",
            Op::MulConst { .. } => "mul_const",
            Op::MulInt { .. } => "mul_int",
            Op::AddConst { .. } => "add_const",
        }
    }

    /// Ciphertext operands.
    pub fn args(&self) -> Vec<ValueId> {
        match *self {
            Op::Add { a, b } | Op::Sub { a, b } | Op::Mul { a, b } => vec![a, b],
            Op::Neg { a }
            | Op::MulConst { a, .. }
            | Op::MulInt { a, .. }
            | Op::AddConst { a, .. } => {
                vec![a]
            }
        }
    }

    /// Constant-table reference, if any.
    pub fn const_ref(&self) -> Option<ConstId> {
        match *self {
            Op::MulConst { c, .. } | Op::AddConst { c, .. } => Some(c),
            _ => None,
        }
    }

    /// Level of the result given the operand levels (the cost model of §2).
    pub fn result_level(&self, level_of: impl Fn(ValueId) -> u32) -> u32 {
        match *self {
            Op::Add { a, b } | Op::Sub { a, b } => level_of(a).max(level_of(b)),
            Op::Mul { a, b } => level_of(a).max(level_of(b)) + 1,
            Op::MulConst { a, .. } => level_of(a) + 1,
            Op::Neg { a } | Op::MulInt { a, .. } | Op::AddConst { a, .. } => level_of(a),
        }
    }
}

/// An op together with the value it defines and that value's level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpEntry {
    pub out: ValueId,
    #[serde(flatten)]
    pub op: Op,
    pub level: u32,
}

/// A circuit input (one ciphertext; slot-per-sample packing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    pub value: ValueId,
    /// Levels already consumed when the ciphertext enters the circuit (v1 writers use 0).
    #[serde(default)]
    pub level: u32,
    /// Range of the values this input is expected to carry (in this input's units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
    /// If present, the producer must deliver `scale·x + shift` of its raw
    /// activation `x` (the compiler folds this map into the previous linear
    /// layer so that it costs no level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer_affine: Option<Affine>,
}

/// A named circuit output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub name: String,
    pub value: ValueId,
}

/// Op counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub ct_ct_mults: u32,
    pub ct_const_mults: u32,
    pub ct_int_mults: u32,
    pub additions: u32,
    pub const_additions: u32,
    pub negations: u32,
    /// Ciphertexts refreshed by bootstrapping (sum over all bootstrap points; version 2).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bootstraps: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Suggested CKKS parameters (a suggestion; runners may override).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CkksParams {
    pub ring_dim: u32,
    pub scale_bits: u32,
    pub first_mod_bits: u32,
    pub multiplicative_depth: u32,
    /// Rough size of the ciphertext modulus plus one special prime, in bits.
    pub log_q_estimate: u32,
    /// OpenFHE security level name the ring dimension is chosen for.
    pub security: String,
}

impl CkksParams {
    /// Smallest power-of-two ring dimension whose HE-standard 128-bit budget
    /// (438/881/1772/3576 bits for 2^14..2^17) holds
    /// `first + scale·depth + first` bits. Scale 2^50, first prime 60 bits.
    pub fn suggest(depth: u32) -> CkksParams {
        let (scale_bits, first_mod_bits) = (50u32, 60u32);
        let log_q = first_mod_bits * 2 + scale_bits * depth;
        let budgets = [
            (1u32 << 14, 438u32),
            (1 << 15, 881),
            (1 << 16, 1772),
            (1 << 17, 3576),
        ];
        let (ring_dim, security) = budgets
            .iter()
            .find(|(_, b)| log_q <= *b)
            .map(|(n, _)| (*n, "HEStd_128_classic"))
            .unwrap_or((1 << 17, "HEStd_NotSet"));
        CkksParams {
            ring_dim,
            scale_bits,
            first_mod_bits,
            multiplicative_depth: depth,
            log_q_estimate: log_q,
            security: security.to_string(),
        }
    }
}

/// Planner provenance recorded in the circuit (informational).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanInfo {
    /// `"chebyshev"` or `"composite"`.
    pub kind: String,
    /// One entry per polynomial stage.
    pub stages: Vec<StageInfo>,
    /// `"none"`, `"relu"` or `"abs"`.
    pub combine: String,
    /// `"normalised"` (producer folds the map) or `"affine_in_circuit"`.
    pub input_mode: String,
    /// Levels of the input normalisation inside the circuit (0 or 1).
    pub input_map_levels: u32,
    /// Levels of the combine step (ReLU: 1).
    pub combine_levels: u32,
}

/// Per-stage planner record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageInfo {
    pub degree: usize,
    pub interval: [f64; 2],
    /// `"odd"`, `"even"` or `"none"` (detected from exact zero coefficients).
    pub parity: String,
    /// Largest Chebyshev index evaluated directly in a leaf.
    pub leaf_degree: usize,
    /// Levels this stage consumed (`⌈log2(d+1)⌉` + extra levels requested).
    pub levels: u32,
    /// ct×ct multiplications spent in this stage.
    pub ct_ct_mults: u32,
}

/// Provenance of a group of consecutive ops: the network layer they implement
/// (informational; written by compilers, checked for consistency by readers).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Layer (graph node) name.
    pub name: String,
    /// What it is: `"linear"`, `"poly"`, `"output"`, ...
    pub kind: String,
    /// Its ops: indices `[start, end)` into `ops`.
    pub ops: [usize; 2],
    /// The values it hands to later layers (or outputs).
    pub outputs: Vec<ValueId>,
    /// Max level of the values it reads from earlier layers (0 if none).
    pub level_in: u32,
    /// Max level of its `outputs`.
    pub level: u32,
    /// Planner record when the layer is a planned polynomial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanInfo>,
}

impl LayerInfo {
    /// Levels this layer adds on top of its inputs.
    pub fn levels(&self) -> u32 {
        self.level.saturating_sub(self.level_in)
    }
}

/// A bootstrap (version 2): before op `before_op` executes (`ops.len()` = after
/// the last op), every listed ciphertext is refreshed in place; from then on
/// its level is 0 (the levels the bootstrapping itself consumes are outside the
/// circuit's budget, see the format doc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapPoint {
    pub before_op: usize,
    pub values: Vec<ValueId>,
}

/// A CKKS arithmetic circuit.
#[derive(Clone, Debug, PartialEq)]
pub struct Circuit {
    pub name: String,
    pub inputs: Vec<Input>,
    pub constants: Vec<f64>,
    pub ops: Vec<OpEntry>,
    pub outputs: Vec<Output>,
    /// Max level over outputs and over values at the moment they are bootstrapped.
    pub depth: u32,
    pub stats: Stats,
    pub ckks: CkksParams,
    pub plan: Option<PlanInfo>,
    /// Per-layer provenance (empty for single polynomials).
    pub layers: Vec<LayerInfo>,
    /// Bootstrap points in execution order (version 2; empty otherwise).
    pub bootstraps: Vec<BootstrapPoint>,
}

/// Levels of a circuit recomputed from its ops (see [`Circuit::trace`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelTrace {
    /// Level of every value when it is defined (what ops declare).
    pub defined: Vec<u32>,
    /// Level of every value after the last op (bootstrapped values: 0 or what
    /// they reached after their last refresh — i.e. their defined level unless refreshed).
    pub last: Vec<u32>,
    /// Max level of any value at the moment it is bootstrapped (0 if none).
    pub refreshed_max: u32,
    /// `max(levels of the outputs at the end, refreshed_max)`.
    pub depth: u32,
}

#[derive(Serialize, Deserialize)]
struct Document {
    format: String,
    version: u32,
    name: String,
    inputs: Vec<Input>,
    constants: Vec<f64>,
    ops: Vec<OpEntry>,
    outputs: Vec<Output>,
    depth: u32,
    stats: Stats,
    ckks: CkksParams,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plan: Option<PlanInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    layers: Vec<LayerInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bootstraps: Vec<BootstrapPoint>,
}

impl Circuit {
    /// Number of values (inputs + ops).
    pub fn num_values(&self) -> usize {
        self.inputs.len() + self.ops.len()
    }

    /// The format version this circuit needs: 2 with bootstraps, else 1.
    pub fn version(&self) -> u32 {
        if self.bootstraps.is_empty() {
            1
        } else {
            2
        }
    }

    /// Levels of all values at definition, recomputed from the ops (does not
    /// trust `level` fields).
    pub fn recompute_levels(&self) -> Result<Vec<u32>> {
        Ok(self.trace()?.defined)
    }

    /// Recomputes every level from the ops and bootstrap points (does not trust
    /// `level` fields): SSA numbering, operands defined before use, constants
    /// in range, bootstrap points in order and naming defined values.
    pub fn trace(&self) -> Result<LevelTrace> {
        let mut defined: Vec<u32> = Vec::with_capacity(self.num_values());
        for (i, inp) in self.inputs.iter().enumerate() {
            if inp.value.0 as usize != i {
                return Err(FheError::InvalidCircuit(format!(
                    "input '{}' has value id {} but inputs must be numbered 0..{}",
                    inp.name,
                    inp.value.0,
                    self.inputs.len()
                )));
            }
            defined.push(inp.level);
        }
        let mut cur = defined.clone();
        let mut refreshed_max = 0u32;
        let mut next_bs = 0usize;
        let mut prev_at: Option<usize> = None;
        let mut apply_bootstraps = |k: usize,
                                    cur: &mut Vec<u32>,
                                    next_bs: &mut usize,
                                    refreshed_max: &mut u32|
         -> Result<()> {
            while let Some(bp) = self.bootstraps.get(*next_bs) {
                if bp.before_op != k {
                    break;
                }
                if prev_at == Some(k) {
                    return Err(FheError::InvalidCircuit(format!(
                        "two bootstrap points before op #{k}; merge them"
                    )));
                }
                prev_at = Some(k);
                if bp.values.is_empty() {
                    return Err(FheError::InvalidCircuit(format!(
                        "bootstrap point before op #{k} lists no values"
                    )));
                }
                let mut seen = std::collections::HashSet::new();
                for v in &bp.values {
                    let l = cur.get(v.0 as usize).copied().ok_or_else(|| {
                        FheError::InvalidCircuit(format!(
                            "bootstrap point before op #{k} refreshes value {} which is not defined yet",
                            v.0
                        ))
                    })?;
                    if !seen.insert(v.0) {
                        return Err(FheError::InvalidCircuit(format!(
                            "bootstrap point before op #{k} lists value {} twice",
                            v.0
                        )));
                    }
                    *refreshed_max = (*refreshed_max).max(l);
                    cur[v.0 as usize] = 0;
                }
                *next_bs += 1;
            }
            Ok(())
        };
        for (i, e) in self.ops.iter().enumerate() {
            apply_bootstraps(i, &mut cur, &mut next_bs, &mut refreshed_max)?;
            let id = defined.len();
            let name = e.op.name();
            if e.out.0 as usize != id {
                return Err(FheError::InvalidOp {
                    index: i,
                    op: name,
                    msg: format!("defines value {} but the next value id is {id}", e.out.0),
                });
            }
            for a in e.op.args() {
                if a.0 as usize >= id {
                    return Err(FheError::InvalidOp {
                        index: i,
                        op: name,
                        msg: format!("operand {} is not defined before use", a.0),
                    });
                }
            }
            if let Some(c) = e.op.const_ref() {
                if c.0 as usize >= self.constants.len() {
                    return Err(FheError::InvalidOp {
                        index: i,
                        op: name,
                        msg: format!(
                            "constant {} out of range ({} constants)",
                            c.0,
                            self.constants.len()
                        ),
                    });
                }
            }
            let l = e.op.result_level(|v| cur[v.0 as usize]);
            defined.push(l);
            cur.push(l);
        }
        apply_bootstraps(self.ops.len(), &mut cur, &mut next_bs, &mut refreshed_max)?;
        if let Some(bp) = self.bootstraps.get(next_bs) {
            return Err(FheError::InvalidCircuit(format!(
                "bootstrap point before op #{} is out of order or past the end ({} ops)",
                bp.before_op,
                self.ops.len()
            )));
        }
        let mut depth = refreshed_max;
        for o in &self.outputs {
            let l = cur.get(o.value.0 as usize).ok_or_else(|| {
                FheError::InvalidCircuit(format!(
                    "output '{}' refers to undefined value {}",
                    o.name, o.value.0
                ))
            })?;
            depth = depth.max(*l);
        }
        Ok(LevelTrace {
            defined,
            last: cur,
            refreshed_max,
            depth,
        })
    }

    /// Recomputes everything derived from the ops, inputs and bootstrap
    /// points: every op's `level`, each layer's `level_in`/`level`, `depth`,
    /// `stats` and the suggested `ckks` parameters.
    pub fn refresh_derived(&mut self) -> Result<()> {
        let t = self.trace()?;
        for e in &mut self.ops {
            e.level = t.defined[e.out.0 as usize];
        }
        // level_in: current levels (after any refresh before the layer's first op).
        let n_in = self.inputs.len();
        let mut cur: Vec<u32> = self.inputs.iter().map(|i| i.level).collect();
        let mut bs = self.bootstraps.iter().peekable();
        let mut level_in_at: Vec<Option<u32>> = vec![None; self.layers.len()];
        let mut starts: Vec<(usize, usize)> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l.ops[0], i))
            .collect();
        starts.sort_unstable();
        let mut si = 0;
        for k in 0..=self.ops.len() {
            while let Some(bp) = bs.peek() {
                if bp.before_op != k {
                    break;
                }
                for v in &bp.values {
                    cur[v.0 as usize] = 0;
                }
                bs.next();
            }
            while si < starts.len() && starts[si].0 == k {
                let li = starts[si].1;
                let [a, b] = self.layers[li].ops;
                let first = (n_in + a) as u32;
                let lin = self.ops[a.min(b)..b.min(self.ops.len())]
                    .iter()
                    .flat_map(|e| e.op.args())
                    .filter(|v| v.0 < first)
                    .map(|v| cur[v.0 as usize])
                    .max()
                    .unwrap_or(0);
                level_in_at[li] = Some(lin);
                si += 1;
            }
            if let Some(e) = self.ops.get(k) {
                cur.push(e.level);
            }
        }
        for (l, lin) in self.layers.iter_mut().zip(level_in_at) {
            l.level_in = lin.unwrap_or(0);
            l.level = l
                .outputs
                .iter()
                .filter_map(|v| t.defined.get(v.0 as usize))
                .copied()
                .max()
                .unwrap_or(0);
        }
        self.depth = t.depth;
        self.stats = self.recompute_stats();
        self.ckks = CkksParams::suggest(t.depth);
        self.validate()
    }

    /// Recount op statistics.
    pub fn recompute_stats(&self) -> Stats {
        let mut s = Stats::default();
        for e in &self.ops {
            match e.op {
                Op::Add { .. } | Op::Sub { .. } => s.additions += 1,
                Op::Neg { .. } => s.negations += 1,
                Op::Mul { .. } => s.ct_ct_mults += 1,
                Op::MulConst { .. } => s.ct_const_mults += 1,
                Op::MulInt { .. } => s.ct_int_mults += 1,
                Op::AddConst { .. } => s.const_additions += 1,
            }
        }
        s.bootstraps = self.bootstraps.iter().map(|b| b.values.len() as u32).sum();
        s
    }

    /// Full structural validation: SSA order, constant table, finite constants,
    /// declared levels, bootstrap points, outputs, depth, stats, layer records
    /// and `ckks.multiplicative_depth ≥ depth`.
    pub fn validate(&self) -> Result<()> {
        for (i, c) in self.constants.iter().enumerate() {
            if !c.is_finite() {
                return Err(FheError::InvalidCircuit(format!(
                    "constant {i} is not finite ({c})"
                )));
            }
        }
        let trace = self.trace()?;
        let levels = &trace.defined;
        for (i, e) in self.ops.iter().enumerate() {
            let want = levels[e.out.0 as usize];
            if e.level != want {
                return Err(FheError::InvalidOp {
                    index: i,
                    op: e.op.name(),
                    msg: format!(
                        "declares level {} but its operands give level {want}",
                        e.level
                    ),
                });
            }
        }
        if self.outputs.is_empty() {
            return Err(FheError::InvalidCircuit("circuit has no outputs".into()));
        }
        let depth = trace.depth;
        if depth != self.depth {
            return Err(FheError::InvalidCircuit(format!(
                "declared depth {} but outputs and bootstrapped values reach level {depth}",
                self.depth
            )));
        }
        if self.stats != self.recompute_stats() {
            return Err(FheError::InvalidCircuit(
                "declared stats do not match the ops".into(),
            ));
        }
        if self.ckks.multiplicative_depth < depth {
            return Err(FheError::InvalidCircuit(format!(
                "ckks.multiplicative_depth {} is below the circuit depth {depth}",
                self.ckks.multiplicative_depth
            )));
        }
        for l in &self.layers {
            let [start, end] = l.ops;
            if start > end || end > self.ops.len() {
                return Err(FheError::InvalidCircuit(format!(
                    "layer '{}': op range [{start}, {end}) outside the {} ops",
                    l.name,
                    self.ops.len()
                )));
            }
            let mut lvl = 0;
            for v in &l.outputs {
                lvl = lvl.max(*levels.get(v.0 as usize).ok_or_else(|| {
                    FheError::InvalidCircuit(format!(
                        "layer '{}': output value {} is undefined",
                        l.name, v.0
                    ))
                })?);
            }
            if lvl != l.level {
                return Err(FheError::InvalidCircuit(format!(
                    "layer '{}': declares level {} but its outputs are at level {lvl}",
                    l.name, l.level
                )));
            }
        }
        Ok(())
    }

    /// Serialise to pretty JSON (deterministic). The document is version 1
    /// unless it has bootstrap points.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(&self.document())?)
    }

    /// The document as a JSON value (what [`Circuit::to_json`] prints).
    pub fn to_value(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(self.document())?)
    }

    fn document(&self) -> Document {
        Document {
            format: FORMAT_NAME.to_string(),
            version: self.version(),
            name: self.name.clone(),
            inputs: self.inputs.clone(),
            constants: self.constants.clone(),
            ops: self.ops.clone(),
            outputs: self.outputs.clone(),
            depth: self.depth,
            stats: self.stats.clone(),
            ckks: self.ckks.clone(),
            plan: self.plan.clone(),
            layers: self.layers.clone(),
            bootstraps: self.bootstraps.clone(),
        }
    }

    /// Parse and validate a circuit document (versions 1 and 2).
    pub fn from_json(text: &str) -> Result<Circuit> {
        Circuit::from_value(serde_json::from_str(text)?)
    }

    /// [`Circuit::from_json`] on a parsed document.
    pub fn from_value(v: serde_json::Value) -> Result<Circuit> {
        match v.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT_NAME) => {}
            other => {
                return Err(FheError::Format(format!(
                    "expected \"format\": \"{FORMAT_NAME}\", found {other:?}"
                )))
            }
        }
        let version = match v.get("version").and_then(|f| f.as_u64()) {
            Some(x) if (MIN_FORMAT_VERSION as u64..=FORMAT_VERSION as u64).contains(&x) => x,
            other => {
                return Err(FheError::Format(format!(
                    "unsupported version {other:?} (this reader supports {MIN_FORMAT_VERSION} to {FORMAT_VERSION})"
                )))
            }
        };
        if version < 2 && v.get("bootstraps").is_some() {
            return Err(FheError::Format(
                "\"bootstraps\" needs format version 2".into(),
            ));
        }
        let doc: Document = serde_json::from_value(v)?;
        let c = Circuit {
            name: doc.name,
            inputs: doc.inputs,
            constants: doc.constants,
            ops: doc.ops,
            outputs: doc.outputs,
            depth: doc.depth,
            stats: doc.stats,
            ckks: doc.ckks,
            plan: doc.plan,
            layers: doc.layers,
            bootstraps: doc.bootstraps,
        };
        c.validate()?;
        Ok(c)
    }

    /// Plaintext (f64) evaluation of every value for one sample; `inputs[i]`
    /// feeds input `i`. Bootstraps are the identity in plaintext.
    pub fn eval_all(&self, inputs: &[f64]) -> Result<Vec<f64>> {
        if inputs.len() != self.inputs.len() {
            return Err(FheError::Eval(format!(
                "circuit '{}' has {} inputs, got {}",
                self.name,
                self.inputs.len(),
                inputs.len()
            )));
        }
        let mut v: Vec<f64> = inputs.to_vec();
        v.reserve(self.ops.len());
        for e in &self.ops {
            let g = |id: ValueId| v[id.0 as usize];
            let c = |id: ConstId| self.constants[id.0 as usize];
            let r = match e.op {
                Op::Add { a, b } => g(a) + g(b),
                Op::Sub { a, b } => g(a) - g(b),
                Op::Neg { a } => -g(a),
                Op::Mul { a, b } => g(a) * g(b),
                Op::MulConst { a, c: k } => g(a) * c(k),
                Op::MulInt { a, k } => g(a) * k as f64,
                Op::AddConst { a, c: k } => g(a) + c(k),
            };
            v.push(r);
        }
        Ok(v)
    }

    /// Plaintext evaluation of the outputs for one sample.
    pub fn eval(&self, inputs: &[f64]) -> Result<Vec<f64>> {
        let all = self.eval_all(inputs)?;
        Ok(self
            .outputs
            .iter()
            .map(|o| all[o.value.0 as usize])
            .collect())
    }
}

/// An operand that is either a ciphertext or a plaintext constant (used by
/// builders that fold constants instead of emitting ops for them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Term {
    Ct(ValueId),
    Const(f64),
}

/// Returns `Some(k)` when `c` is an exact integer of modest size (so that
/// `ct × c` costs no level).
pub fn as_small_int(c: f64) -> Option<i64> {
    if c.is_finite() && c.fract() == 0.0 && c.abs() <= (1u64 << 40) as f64 {
        Some(c as i64)
    } else {
        None
    }
}

/// Incremental circuit construction with level tracking and constant dedup.
#[derive(Clone, Debug)]
pub struct CircuitBuilder {
    name: String,
    inputs: Vec<Input>,
    constants: Vec<f64>,
    const_index: HashMap<u64, ConstId>,
    ops: Vec<OpEntry>,
    /// Current level of every value (0 after a bootstrap refreshed it).
    levels: Vec<u32>,
    layers: Vec<LayerInfo>,
    bootstraps: Vec<BootstrapPoint>,
    /// Max level of a value when it was bootstrapped.
    refreshed_max: u32,
    /// First misuse (operand used before definition); reported by `finish`.
    misuse: Option<String>,
}

impl CircuitBuilder {
    pub fn new(name: impl Into<String>) -> Self {
        CircuitBuilder {
            name: name.into(),
            inputs: vec![],
            constants: vec![],
            const_index: HashMap::new(),
            ops: vec![],
            levels: vec![],
            layers: vec![],
            bootstraps: vec![],
            refreshed_max: 0,
            misuse: None,
        }
    }

    /// A builder that continues an existing (validated) circuit: its inputs,
    /// constants and ops are kept, new ops append after them.
    pub fn from_circuit(c: &Circuit) -> Result<Self> {
        c.validate()?;
        let trace = c.trace()?;
        let mut const_index = HashMap::new();
        for (i, v) in c.constants.iter().enumerate() {
            const_index.entry(v.to_bits()).or_insert(ConstId(i as u32));
        }
        Ok(CircuitBuilder {
            name: c.name.clone(),
            inputs: c.inputs.clone(),
            constants: c.constants.clone(),
            const_index,
            ops: c.ops.clone(),
            levels: trace.last,
            layers: c.layers.clone(),
            bootstraps: c.bootstraps.clone(),
            refreshed_max: trace.refreshed_max,
            misuse: None,
        })
    }

    /// Add an input. All inputs must be added before the first op.
    pub fn input(&mut self, name: impl Into<String>) -> Result<ValueId> {
        if !self.ops.is_empty() {
            return Err(FheError::InvalidCircuit(
                "inputs must be declared before ops".into(),
            ));
        }
        let id = ValueId(self.levels.len() as u32);
        self.inputs.push(Input {
            name: name.into(),
            value: id,
            level: 0,
            range: None,
            producer_affine: None,
        });
        self.levels.push(0);
        Ok(id)
    }

    /// Mutable access to an input's metadata (range, producer map).
    pub fn input_mut(&mut self, v: ValueId) -> Option<&mut Input> {
        self.inputs.iter_mut().find(|i| i.value == v)
    }

    /// Level of a value defined so far (0 for an undefined id).
    pub fn level(&self, v: ValueId) -> u32 {
        self.levels.get(v.0 as usize).copied().unwrap_or(0)
    }

    /// Level of a term (constants are level 0).
    pub fn term_level(&self, t: Term) -> u32 {
        match t {
            Term::Ct(v) => self.level(v),
            Term::Const(_) => 0,
        }
    }

    /// Number of ops emitted so far.
    pub fn num_ops(&self) -> usize {
        self.ops.len()
    }

    /// Number of ct×ct multiplications emitted so far.
    pub fn ct_ct_mults(&self) -> u32 {
        self.ops
            .iter()
            .filter(|e| matches!(e.op, Op::Mul { .. }))
            .count() as u32
    }

    fn constant(&mut self, c: f64) -> ConstId {
        // Normalise -0.0 so that dedup is by value.
        let c = if c == 0.0 { 0.0 } else { c };
        if let Some(id) = self.const_index.get(&c.to_bits()) {
            return *id;
        }
        let id = ConstId(self.constants.len() as u32);
        self.constants.push(c);
        self.const_index.insert(c.to_bits(), id);
        id
    }

    /// Append a raw op. Operands must be defined already; a violation is
    /// recorded and makes [`Self::finish`] fail (it never panics).
    pub fn push(&mut self, op: Op) -> ValueId {
        let id = ValueId(self.levels.len() as u32);
        for a in op.args() {
            if a.0 >= id.0 && self.misuse.is_none() {
                self.misuse = Some(format!(
                    "op #{} ({}) uses value {} before its definition",
                    self.ops.len(),
                    op.name(),
                    a.0
                ));
            }
        }
        let level = op.result_level(|v| self.levels.get(v.0 as usize).copied().unwrap_or(0));
        self.ops.push(OpEntry { out: id, op, level });
        self.levels.push(level);
        id
    }

    pub fn add(&mut self, a: ValueId, b: ValueId) -> ValueId {
        self.push(Op::Add { a, b })
    }
    pub fn sub(&mut self, a: ValueId, b: ValueId) -> ValueId {
        self.push(Op::Sub { a, b })
    }
    pub fn neg(&mut self, a: ValueId) -> ValueId {
        self.push(Op::Neg { a })
    }
    pub fn mul(&mut self, a: ValueId, b: ValueId) -> ValueId {
        self.push(Op::Mul { a, b })
    }
    pub fn mul_int(&mut self, a: ValueId, k: i64) -> ValueId {
        self.push(Op::MulInt { a, k })
    }
    /// `a × c` for a real `c` (always emits `mul_const`; see [`Self::scale`]).
    pub fn mul_const(&mut self, a: ValueId, c: f64) -> ValueId {
        let c = self.constant(c);
        self.push(Op::MulConst { a, c })
    }
    pub fn add_const(&mut self, a: ValueId, c: f64) -> ValueId {
        let c = self.constant(c);
        self.push(Op::AddConst { a, c })
    }

    /// `c·a` choosing the cheapest op: nothing for 1, `neg` for −1, `mul_int`
    /// for other integers (0 levels), `mul_const` otherwise (1 level).
    /// Returns `Term::Const(0)` for `c = 0`.
    pub fn scale(&mut self, a: ValueId, c: f64) -> Term {
        if c == 0.0 {
            return Term::Const(0.0);
        }
        Term::Ct(match as_small_int(c) {
            Some(1) => a,
            Some(-1) => self.neg(a),
            Some(k) => self.mul_int(a, k),
            None => self.mul_const(a, c),
        })
    }

    /// `c·t` for a term.
    pub fn scale_term(&mut self, t: Term, c: f64) -> Term {
        match t {
            Term::Const(v) => Term::Const(v * c),
            Term::Ct(a) => self.scale(a, c),
        }
    }

    /// `s·a + t` (affine map of a ciphertext).
    pub fn affine(&mut self, a: ValueId, map: Affine) -> Term {
        let s = self.scale(a, map.scale);
        self.add_terms(s, Term::Const(map.shift))
    }

    /// `x + y` for terms (folds constants, emits `add`/`add_const`).
    pub fn add_terms(&mut self, x: Term, y: Term) -> Term {
        match (x, y) {
            (Term::Const(a), Term::Const(b)) => Term::Const(a + b),
            (Term::Ct(a), Term::Const(c)) | (Term::Const(c), Term::Ct(a)) => {
                if c == 0.0 {
                    Term::Ct(a)
                } else {
                    Term::Ct(self.add_const(a, c))
                }
            }
            (Term::Ct(a), Term::Ct(b)) => Term::Ct(self.add(a, b)),
        }
    }

    /// `x − y` for terms.
    pub fn sub_terms(&mut self, x: Term, y: Term) -> Term {
        match (x, y) {
            (_, Term::Const(c)) => self.add_terms(x, Term::Const(-c)),
            (Term::Const(c), Term::Ct(b)) => {
                let n = self.neg(b);
                self.add_terms(Term::Ct(n), Term::Const(c))
            }
            (Term::Ct(a), Term::Ct(b)) => Term::Ct(self.sub(a, b)),
        }
    }

    /// `x × y` for terms (ct×ct emits `mul`, ct×const goes through [`Self::scale`]).
    pub fn mul_terms(&mut self, x: Term, y: Term) -> Term {
        match (x, y) {
            (Term::Const(a), Term::Const(b)) => Term::Const(a * b),
            (Term::Ct(a), Term::Const(c)) | (Term::Const(c), Term::Ct(a)) => self.scale(a, c),
            (Term::Ct(a), Term::Ct(b)) => Term::Ct(self.mul(a, b)),
        }
    }

    /// `Σ c_i·v_i + c0`, each term scaled with [`Self::scale`], summed left to right.
    pub fn lin_comb(&mut self, terms: &[(f64, ValueId)], c0: f64) -> Term {
        let mut acc = Term::Const(c0);
        for &(c, v) in terms {
            let t = self.scale(v, c);
            acc = self.add_terms(acc, t);
        }
        acc
    }

    /// Turn a term into a ciphertext. A constant `c` needs a ciphertext to
    /// live in: it is emitted as `mul_int(any, 0) + c` (0 levels).
    pub fn materialise(&mut self, t: Term, any: ValueId) -> ValueId {
        match t {
            Term::Ct(v) => v,
            Term::Const(c) => {
                let z = self.mul_int(any, 0);
                self.add_const(z, c)
            }
        }
    }

    /// Copies `sub` (a circuit without bootstraps) into this one with its
    /// inputs bound to `inputs`; returns the values of its outputs. Constants
    /// are re-interned, levels follow from the actual input levels.
    pub fn inline(&mut self, sub: &Circuit, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        if inputs.len() != sub.inputs.len() {
            return Err(FheError::InvalidCircuit(format!(
                "inlining '{}': it has {} inputs, {} given",
                sub.name,
                sub.inputs.len(),
                inputs.len()
            )));
        }
        if !sub.bootstraps.is_empty() {
            return Err(FheError::InvalidCircuit(format!(
                "inlining '{}': circuits with bootstraps cannot be inlined",
                sub.name
            )));
        }
        let next = self.levels.len() as u32;
        if let Some(v) = inputs.iter().find(|v| v.0 >= next) {
            return Err(FheError::InvalidCircuit(format!(
                "inlining '{}': input value {} is not defined",
                sub.name, v.0
            )));
        }
        sub.trace()?;
        let mut map: Vec<ValueId> = inputs.to_vec();
        let c = |k: ConstId| sub.constants[k.0 as usize];
        for e in &sub.ops {
            let m = |v: ValueId| map[v.0 as usize];
            let v = match e.op {
                Op::Add { a, b } => self.add(m(a), m(b)),
                Op::Sub { a, b } => self.sub(m(a), m(b)),
                Op::Neg { a } => self.neg(m(a)),
                Op::Mul { a, b } => self.mul(m(a), m(b)),
                Op::MulConst { a, c: k } => self.mul_const(m(a), c(k)),
                Op::MulInt { a, k } => self.mul_int(m(a), k),
                Op::AddConst { a, c: k } => self.add_const(m(a), c(k)),
            };
            map.push(v);
        }
        Ok(sub
            .outputs
            .iter()
            .map(|o| map[o.value.0 as usize])
            .collect())
    }

    /// Refreshes `values` by bootstrapping at the current position (before the
    /// next op): their level becomes 0. Makes the circuit version 2.
    pub fn bootstrap(&mut self, values: &[ValueId]) -> Result<()> {
        let at = self.ops.len();
        let mut vs: Vec<ValueId> = Vec::with_capacity(values.len());
        for &v in values {
            let l = *self.levels.get(v.0 as usize).ok_or_else(|| {
                FheError::InvalidCircuit(format!("bootstrap of undefined value {}", v.0))
            })?;
            if vs.contains(&v) {
                continue;
            }
            self.refreshed_max = self.refreshed_max.max(l);
            self.levels[v.0 as usize] = 0;
            vs.push(v);
        }
        if vs.is_empty() {
            return Ok(());
        }
        match self.bootstraps.last_mut() {
            Some(bp) if bp.before_op == at => bp.values.extend(vs),
            _ => self.bootstraps.push(BootstrapPoint {
                before_op: at,
                values: vs,
            }),
        }
        Ok(())
    }

    /// Records that ops `start..` (up to now) implement layer `name`, handing
    /// `outputs` on. Its `level_in` is the max (current) level of the values
    /// defined before `start` that its ops read; call it right after the
    /// layer's ops, before any later bootstrap.
    pub fn add_layer(
        &mut self,
        name: impl Into<String>,
        kind: impl Into<String>,
        start: usize,
        outputs: &[ValueId],
        plan: Option<PlanInfo>,
    ) -> &LayerInfo {
        let end = self.ops.len();
        let start = start.min(end);
        let first_value = (self.inputs.len() + start) as u32;
        let level_in = self.ops[start..end]
            .iter()
            .flat_map(|e| e.op.args())
            .filter(|a| a.0 < first_value)
            .map(|a| self.levels.get(a.0 as usize).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let level = outputs
            .iter()
            .map(|v| self.def_level(*v))
            .max()
            .unwrap_or(0);
        self.layers.push(LayerInfo {
            name: name.into(),
            kind: kind.into(),
            ops: [start, end],
            outputs: outputs.to_vec(),
            level_in,
            level,
            plan,
        });
        self.layers.last().expect("just pushed")
    }

    /// Level of `v` when it was defined.
    fn def_level(&self, v: ValueId) -> u32 {
        let n = self.inputs.len();
        let i = v.0 as usize;
        if i < n {
            self.inputs[i].level
        } else {
            self.ops.get(i - n).map(|e| e.level).unwrap_or(0)
        }
    }

    /// Layer records so far.
    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    /// Finish with the given outputs; depth, stats and CKKS parameters are derived.
    pub fn finish(self, outputs: Vec<Output>, plan: Option<PlanInfo>) -> Result<Circuit> {
        if let Some(m) = self.misuse {
            return Err(FheError::InvalidCircuit(m));
        }
        let mut depth = self.refreshed_max;
        for o in &outputs {
            let l = self.levels.get(o.value.0 as usize).ok_or_else(|| {
                FheError::InvalidCircuit(format!(
                    "output '{}' refers to undefined value {}",
                    o.name, o.value.0
                ))
            })?;
            depth = depth.max(*l);
        }
        let mut c = Circuit {
            name: self.name,
            inputs: self.inputs,
            constants: self.constants,
            ops: self.ops,
            outputs,
            depth,
            stats: Stats::default(),
            ckks: CkksParams::suggest(depth),
            plan,
            layers: self.layers,
            bootstraps: self.bootstraps,
        };
        c.stats = c.recompute_stats();
        c.validate()?;
        Ok(c)
    }
}
