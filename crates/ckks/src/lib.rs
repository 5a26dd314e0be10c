//! # pannc-ckks: the CKKS backend
//!
//! The only crate that sees both the IR (`pannc-ir`) and the graph-free FHE layer
//! (`pannc-fhe`, `pannc-eqsat`), in the way a compiler backend sees both its IR and its
//! machine layer:
//!
//! - [`lower`]: one module per packing; [`lower::slot_per_sample`] (one ciphertext per
//!   feature, samples in the slots; MLPs) and [`lower::packed`] (one sample per ciphertext,
//!   rotations, any CNN of the supported ops; `pannc-circuit` version 3).
//! - [`levels`]: every activation's polynomial planned as a circuit and checked with egg.
//! - [`emit`]: lower, place bootstraps under a level budget, and check the result with the
//!   independent depth checker — what `pannc compile --circuit` writes; [`emit_packed`]:
//!   lower packed, check against the interpreter, place bootstraps, choose CKKS parameters
//!   and validate — what `pannc compile --emit ckks` writes.
//!
//! Input graphs must be in PANN form (`pannc_ir::Form::Pann`); the driver checks that before
//! calling in.

pub mod levels;
pub mod lower;

pub use pannc_eqsat::Limits;
pub use pannc_fhe as fhe;

pub use lower::slot_per_sample::{approximation_circuit, to_circuit, CircuitError, CircuitOptions};
use pannc_fhe::{BootstrapPlan, CheckReport, Circuit};
use pannc_ir::Graph;

/// Errors of the CKKS backend.
#[derive(Debug, thiserror::Error)]
pub enum CkksError {
    #[error(transparent)]
    Lower(#[from] CircuitError),
    #[error("bootstrap placement: {0}")]
    Bootstrap(#[from] pannc_fhe::FheError),
    /// The lowering produced something its independent checker rejects: a bug in pannc.
    #[error("internal: the circuit fails its depth check: {0}")]
    Inconsistent(String),
    #[error("internal: the circuit cannot be serialised: {0}")]
    Serialize(String),
    #[error("level check: node '{node}': {message}")]
    Level { node: String, message: String },
    #[error("{0}")]
    Graph(String),
    /// An op the packed lowering cannot express.
    #[error("packed CKKS lowering: node '{node}' ({op}) is not supported: {reason}")]
    Unsupported {
        node: String,
        op: String,
        reason: String,
    },
    #[error("packed CKKS lowering: node '{node}': planning its polynomial failed: {message}")]
    Plan { node: String, message: String },
    /// The packed program disagrees with the interpreter or its own checks: a bug in pannc.
    #[error("internal: {0}")]
    Internal(String),
    #[error(transparent)]
    Interp(#[from] pannc_interp::InterpError),
    #[error(transparent)]
    Packed(#[from] pannc_fhe::packed::PackedError),
}

/// Options of [`emit`].
#[derive(Clone, Debug, Default)]
pub struct EmitOptions {
    pub circuit: CircuitOptions,
    /// Level budget of the CKKS parameters: when the circuit is deeper, bootstraps are placed
    /// at layer boundaries (fewest refreshed ciphertexts).
    pub max_level: Option<u32>,
}

/// What [`emit`] made.
#[derive(Clone, Debug)]
pub struct Emitted {
    /// The circuit, with bootstrap points when a budget was given.
    pub circuit: Circuit,
    /// Its JSON text (`pannc-circuit`), as written to disk, newline-terminated.
    pub json: String,
    /// Depth before bootstraps were placed.
    pub depth_without_bootstraps: u32,
    /// The placement, when `max_level` was given.
    pub bootstraps: Option<BootstrapPlan>,
}

/// Lowers `g` (slot-per-sample), places bootstraps under `opts.max_level`, serialises, and
/// checks the serialised circuit with the independent depth checker.
pub fn emit(g: &Graph, opts: &EmitOptions) -> Result<Emitted, CkksError> {
    let mut circuit = to_circuit(g, &opts.circuit)?;
    let depth_without_bootstraps = circuit.depth;
    let mut bootstraps = None;
    if let Some(l) = opts.max_level {
        let p = pannc_fhe::place_bootstraps(&circuit, l)?;
        circuit = p.circuit.clone();
        bootstraps = Some(p);
    }
    let (json, _) = checked_json(&circuit)?;
    Ok(Emitted {
        circuit,
        json,
        depth_without_bootstraps,
        bootstraps,
    })
}

/// Security of the CKKS parameters a packed program is planned for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Security {
    /// `HEStd_128_classic`: the ring dimension the HE standard requires for the modulus.
    #[default]
    Classic128,
    /// `HEStd_NotSet`: the smallest ring dimension holding the slots (tests only).
    Insecure,
}

/// Options of [`emit_packed`].
#[derive(Clone, Debug)]
pub struct PackedEmitOptions {
    pub lower: lower::packed::PackedOptions,
    /// Levels between bootstraps; bootstraps are placed when the program is deeper. `None`:
    /// no bootstraps, the parameters provide the program's depth.
    pub max_level: Option<u32>,
    pub security: Security,
    pub bootstrap: fhe::packed::BootstrapParams,
    /// Calibration samples evaluated in plaintext against the interpreter (and for ranges).
    pub check_samples: usize,
    /// Largest relative difference from the interpreter accepted before writing.
    pub tolerance: f64,
}

impl Default for PackedEmitOptions {
    fn default() -> Self {
        PackedEmitOptions {
            lower: Default::default(),
            max_level: None,
            security: Security::Classic128,
            bootstrap: Default::default(),
            check_samples: 32,
            tolerance: 1e-9,
        }
    }
}

/// What [`emit_packed`] made.
#[derive(Clone, Debug)]
pub struct PackedEmitted {
    pub program: fhe::packed::Program,
    pub weights: fhe::packed::Weights,
    /// `program.json`'s text.
    pub json: String,
    pub check: lower::packed::verify::CheckReport,
    pub depth_without_bootstraps: u32,
    pub placement: Option<fhe::packed::bootstrap::Placement>,
    /// Multiplicative depth of the CKKS context: levels plus what bootstrapping consumes.
    pub multiplicative_depth: u32,
    /// Estimated bits of the ciphertext modulus with its key-switching primes.
    pub log_qp: u32,
}

/// Levels OpenFHE's bootstrapping consumes (`GetBootstrapDepth`) for a level budget of
/// `[3, 3]` (measured, design notes §7).
pub fn bootstrap_depth(secret: &str) -> u32 {
    if secret == "sparse_ternary" {
        16
    } else {
        20
    }
}

/// HE-standard 128-bit classic bounds on log QP per ring dimension.
const HE_STD_128: [(u64, u32); 6] = [
    (1 << 12, 109),
    (1 << 13, 218),
    (1 << 14, 438),
    (1 << 15, 881),
    (1 << 16, 1772),
    (1 << 17, 3576),
];

/// Lowers `g` to a packed program, checks it against the interpreter on random data and on
/// `calib` (refusing to go on when they differ), places bootstraps under `opts.max_level`,
/// chooses the CKKS parameters and validates the result.
pub fn emit_packed(
    g: &Graph,
    calib: &[pannc_ir::Tensor],
    opts: &PackedEmitOptions,
) -> Result<PackedEmitted, CkksError> {
    use fhe::packed::{bootstrap, cost::CostModel, validate, Estimate};
    let lowered = lower::packed::lower(g, &opts.lower)?;
    let (check, ranges) = lower::packed::verify::check(
        g,
        &lowered,
        &lowered.weights,
        calib,
        opts.check_samples,
        opts.tolerance,
    )?;
    let mut p = lowered.program.clone();
    let w = lowered.weights;
    p.ckks.bootstrap = opts.bootstrap.clone();
    let bound = opts.bootstrap.input_bound;
    for (v, r) in p.values.iter_mut().zip(&ranges.used) {
        v.range = *r;
    }
    let depth0 = p.depth;
    let mut placement = None;
    if let Some(l) = opts.max_level {
        if depth0 > l {
            // Normalised values only: polynomial inputs (calibrated into [-1, 1] with a margin)
            // and outputs, measured within the bound on every slot.
            let n_in = p.inputs.len();
            let mut near_poly = vec![false; p.values.len()];
            for (j, op) in p.ops.iter().enumerate() {
                if let fhe::packed::OpKind::Poly { input, .. } = op.kind {
                    near_poly[input as usize] = true;
                    near_poly[n_in + j] = true;
                }
            }
            let eligible: Vec<bool> = ranges
                .used
                .iter()
                .zip(&ranges.unused_max)
                .zip(&near_poly)
                .map(|((r, &u), &near)| {
                    near && r.is_some_and(|[lo, hi]| lo >= -bound && hi <= bound) && u <= bound
                })
                .collect();
            let pl = bootstrap::place(&p, l, &eligible)?;
            let q = bootstrap::insert(&p, &w, &pl.refreshed)?;
            // Bootstraps are the identity in plaintext: the outputs must not move.
            if let Some(x) = calib.first().filter(|t| t.shape()[0] > 0) {
                let xs: Vec<Vec<f64>> = calib
                    .iter()
                    .map(|t| t.slice_batch(0, 1).to_f64_vec())
                    .collect();
                let xr: Vec<&[f64]> = xs.iter().map(|v| v.as_slice()).collect();
                let _ = x;
                let a = fhe::packed::eval::Evaluator::new(&p, &w)?.outputs(&xr)?;
                let b = fhe::packed::eval::Evaluator::new(&q, &w)?.outputs(&xr)?;
                if a != b {
                    return Err(CkksError::Internal(
                        "inserting bootstraps changed the outputs".into(),
                    ));
                }
            }
            p = q;
            placement = Some(pl);
        }
        p.ckks.levels = l;
    } else {
        p.ckks.levels = p.depth;
    }
    let boots = p.stats.bootstraps > 0;
    let mult_depth = p.ckks.levels
        + if boots {
            bootstrap_depth(&p.ckks.bootstrap.secret)
        } else {
            0
        };
    let log_q = p.ckks.first_mod_bits + p.ckks.scale_bits * mult_depth;
    let log_qp = log_q + log_q.div_ceil(3);
    let min_ring = (2 * p.slots as u64).max(1 << 12);
    let (ring, security) = match opts.security {
        Security::Insecure => (min_ring, "HEStd_NotSet"),
        Security::Classic128 => {
            let n = HE_STD_128
                .iter()
                .find(|(n, b)| *n >= min_ring && log_qp <= *b)
                .map(|x| x.0)
                .ok_or_else(|| {
                    CkksError::Graph(format!(
                        "no ring dimension up to 2^17 gives 128-bit security for multiplicative depth {mult_depth} (log QP ≈ {log_qp} bits): lower --max-level, or use --insecure for tests"
                    ))
                })?;
            (n, "HEStd_128_classic")
        }
    };
    p.ckks.ring_dim = ring;
    p.ckks.slots = p.slots;
    p.ckks.security = security.to_string();
    let model = CostModel::at(ring);
    p.estimate = Some(Estimate {
        seconds: (model.seconds(&p.stats) * 10.0).round() / 10.0,
        model: model.describe(),
    });
    validate(&p, &w)?;
    let json = p.to_json()?;
    Ok(PackedEmitted {
        program: p,
        weights: w,
        json,
        check,
        depth_without_bootstraps: depth0,
        placement,
        multiplicative_depth: mult_depth,
        log_qp,
    })
}

/// The circuit's JSON text (newline-terminated) and the independent checker's report on that
/// very text; an error when the checker disagrees with what the circuit claims.
pub fn checked_json(c: &Circuit) -> Result<(String, CheckReport), CkksError> {
    let json = c
        .to_json()
        .map_err(|e| CkksError::Serialize(e.to_string()))?
        + "\n";
    let check = pannc_fhe::check_json(&json).map_err(|e| CkksError::Inconsistent(e.0))?;
    if !check.is_consistent() {
        return Err(CkksError::Inconsistent(check.mismatches.join("; ")));
    }
    Ok((json, check))
}
