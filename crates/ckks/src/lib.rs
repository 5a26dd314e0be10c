//! # pannc-ckks: the CKKS backend
//!
//! The only crate that sees both the IR (`pannc-ir`) and the graph-free FHE layer
//! (`pannc-fhe`, `pannc-eqsat`), in the way a compiler backend sees both its IR and its
//! machine layer:
//!
//! - [`lower`]: one module per packing; [`lower::slot_per_sample`] (one ciphertext per
//!   feature, samples in the slots; MLPs).
//! - [`levels`]: every activation's polynomial planned as a circuit and checked with egg.
//! - [`emit`]: lower, place bootstraps under a level budget, and check the result with the
//!   independent depth checker — what `pannc compile --circuit` writes.
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
