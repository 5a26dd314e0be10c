//! pannc-fhe: CKKS arithmetic circuits for pannc.
//!
//! - [`plan`]: depth-optimal Chebyshev-basis polynomial evaluation planner
//!   ([`plan_chebyshev`], [`plan_composite`]); every polynomial of degree `d`
//!   costs exactly `⌈log2(d+1)⌉` levels under the CKKS cost model below.
//! - [`circuit`]: the versioned `pannc-circuit` JSON format (see
//!   `docs/circuit-format.md`), a builder, level accounting and a plaintext
//!   evaluator.
//! - [`bounds`]: the semantic depth lower bound of a single-input circuit.
//! - [`bootstrap`]: bootstrap placement at layer boundaries under a level
//!   budget (fewest refreshed ciphertexts, dynamic programming over the cuts).
//! - [`check`]: an independent depth checker that reads only the JSON.
//! - [`cheb`]: Clenshaw, Chebyshev interpolation and interval maps (reference
//!   helpers; real minimax approximations live in `pannc-approx`).
//!
//! Cost model (design notes §2): ct×ct = 1 level, ct×non-integer constant = 1
//! level, ct×integer, additions and constant additions = 0 levels. The crate
//! knows nothing about graphs (no dependency on `pannc-ir`).

pub mod bootstrap;
pub mod bounds;
pub mod cheb;
pub mod check;
pub mod circuit;
pub mod error;
pub mod plan;

pub use bootstrap::{place_bootstraps, BootstrapPlan};
pub use bounds::{circuit_polynomials, depth_lower_bound, polynomial_depth_lower_bound};
pub use cheb::{chebyshev_interpolant, clenshaw, clenshaw_on, optimal_depth, Affine, Interval};
pub use check::{check_json, check_value, CheckError, CheckReport};
pub use circuit::{
    BootstrapPoint, Circuit, CircuitBuilder, CkksParams, ConstId, Input, LayerInfo, LevelTrace, Op,
    OpEntry, Output, PlanInfo, StageInfo, Stats, Term, ValueId, FORMAT_NAME, FORMAT_VERSION,
    MIN_FORMAT_VERSION,
};
pub use error::{FheError, Result};
pub use plan::{
    plan_chebyshev, plan_composite, Combine, InputMode, PlanOptions, Stage, DEGREE_HARD_LIMIT,
};
pub mod packed;
