//! Error type of the FHE crate.

/// Errors raised while building, planning, (de)serialising or evaluating circuits.
///
/// Messages name the op index and op kind (circuit errors) or the stage and
/// coefficient index (planner errors) so that the caller can locate the problem.
#[derive(Debug, thiserror::Error)]
pub enum FheError {
    /// The JSON is not a `pannc-circuit` document of a supported version.
    #[error("circuit format: {0}")]
    Format(String),
    /// serde_json failed to parse or write the document.
    #[error("circuit json: {0}")]
    Json(#[from] serde_json::Error),
    /// An op refers to an undefined value, a missing constant, or declares a wrong level.
    #[error("circuit op #{index} ({op}): {msg}")]
    InvalidOp {
        index: usize,
        op: &'static str,
        msg: String,
    },
    /// The circuit as a whole is inconsistent (outputs, inputs, depth, stats).
    #[error("circuit: {0}")]
    InvalidCircuit(String),
    /// The planner rejected its input (bad coefficients, interval, degree limit).
    #[error("planner: {0}")]
    Plan(String),
    /// Plaintext evaluation was called with the wrong number of inputs.
    #[error("evaluation: {0}")]
    Eval(String),
}

pub type Result<T, E = FheError> = std::result::Result<T, E>;
