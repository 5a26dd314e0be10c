//! Polynomial approximation for CKKS: Chebyshev series, Remez minimax, least squares and composite
//! minimax sign, each with its cost in levels and ciphertext multiplications. No graph dependency.

mod approx;
pub mod cheb;
pub mod composite;
pub mod cost;
mod dd;
pub mod functions;
mod linalg;
pub mod lsq;
pub mod newton;
pub mod remez;

pub use approx::max_relative_error;
pub use approx::{
    approximate, approximate_with, Approximation, Budget, Combine, CombineParams, CustomWeight,
    Method, Request, Shaping, Stage, MAX_SINGLE_DEGREE, MEASURE_POINTS,
};
pub use cheb::{chebyshev_interp, ChebSeries, MonomialForm, SeriesParity, MAX_DEGREE};
pub use composite::{
    composite_sign, composite_with_degrees, Composite, CompositeOptions, SignTarget,
};
pub use cost::{bsgs_plan, poly_depth, BsgsPlan, Cost};
pub use functions::Function;
pub use lsq::{lsq, ErrorSign, LsqConstraints, LsqFit};
pub use newton::{refine, Refined};
pub use remez::{minimax, minimax_with, Minimax, Parity, RemezOptions, Weight};

/// Errors of this crate. Messages are one line and name the offending value.
#[derive(Debug, thiserror::Error)]
pub enum ApproxError {
    #[error("empty or invalid domain [{a}, {b}]: need finite a < b")]
    InvalidDomain { a: f64, b: f64 },
    #[error("degree {degree} is too large (maximum {max})")]
    DegreeTooLarge { degree: usize, max: usize },
    #[error("alpha {alpha} out of range (supported: {min}..={max})")]
    AlphaOutOfRange { alpha: u32, min: u32, max: u32 },
    #[error("unknown function '{0}' (known: relu, leaky_relu, relu6, clip, abs, sign, max, gelu, silu, sigmoid, tanh, exp, reciprocal, invsqrt, sqrt, inv_square)")]
    UnknownFunction(String),
    #[error("method {method} cannot do this: {reason}")]
    Unsupported {
        method: &'static str,
        reason: String,
    },
    #[error("Remez exchange failed at degree {degree}: {reason}")]
    RemezFailed { degree: usize, reason: String },
    #[error("singular linear system in {context}")]
    Singular { context: &'static str },
    #[error("the function is not finite at x = {x}")]
    NonFinite { x: f64 },
    #[error("{0}")]
    InvalidInput(String),
}

/// Least squares `min ‖A x − b‖₂` by Householder QR, `A` row-major `m × n` with `m ≥ n`
/// (for callers that fit their own bases, such as data-weighted refits of a composite's
/// last stage).
pub fn least_squares(a: &[f64], b: &[f64], m: usize, n: usize) -> Result<Vec<f64>, ApproxError> {
    linalg::lstsq(a, b, m, n, "least squares")
}
