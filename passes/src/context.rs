//! What passes read from outside (calibration data, policy) and what they report.

use crate::analysis::Ranges;
use pannc_ir::Tensor;
use std::collections::BTreeMap;

/// How nonlinearities are approximated.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Precision 2^-α of sign-based approximations (ReLU, LeakyReLU, Clip, max-pool's ReLUs).
    pub alpha: u32,
    /// Degree of the single minimax polynomial used for smooth functions (GELU, SiLU,
    /// Sigmoid, Tanh).
    pub degree: usize,
    /// `B = margin · max |x|` over the calibration data.
    pub margin: f64,
    /// Per-node overrides of `alpha` (sign-based) or `degree` (smooth), by node name.
    pub overrides: BTreeMap<String, u32>,
    /// Keep Softmax and LogSoftmax in the graph (an error when approximating) instead of
    /// splitting them off with the client-side tail.
    pub keep_softmax: bool,
    /// Declared range of every graph-input element: enables the (sound, looser) interval
    /// analysis, reported next to calibration, and used for B when there is no calibration data.
    pub input_range: Option<(f64, f64)>,
    /// Negative-side error shaping (technique `shape`): the last stage of ReLU-family
    /// composites is refitted by least squares over the calibrated inputs with errors on
    /// negative inputs weighted `negative_weight` times; smooth functions use weighted minimax.
    /// Zero extra levels.
    pub shape: bool,
    /// Weight of errors on negative inputs relative to positive ones, for `shape`.
    pub negative_weight: f64,
    /// Bias correction (technique `bias`): subtract each channel's mean approximation error,
    /// measured on the calibration data, after the polynomial (folded into the next linear
    /// layer's bias where that is exact). Zero levels.
    pub bias_correct: bool,
    /// Per-node choice of approximation for ReLUs (and the ReLUs of Clip and max-pool), by
    /// node name: what `compile --budget` chose. Takes precedence over `alpha`/`overrides`.
    pub choices: BTreeMap<String, Choice>,
    /// The choice for every ReLU without one in `choices` (`None`: the composite at α).
    pub relu: Option<Choice>,
    /// Degrees and structure of the transformer approximations (exp, inverse square root,
    /// reciprocal; see `decompose-layernorm`, `decompose-softmax`).
    pub transformer: TransformerPolicy,
}

/// How one ReLU is approximated on `[-B, B]` (the menu of `compile --budget`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Choice {
    /// `x·(1 + s(x))/2` with `s` the composite minimax sign at precision 2^-α.
    Composite { alpha: u32 },
    /// One minimax polynomial of ReLU on `[-1, 1]` (uniform error), of this degree.
    Minimax { degree: usize },
    /// One polynomial of this degree fitted to ReLU by weighted minimax, the weight growing
    /// with the density of this activation's calibrated inputs (see `approximate`): never
    /// worse than a fixed multiple of the plain minimax error, smaller where inputs crowd.
    Fitted { degree: usize },
}

/// A `METHOD:N` that names no approximation of the menu (see [`Choice::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("'{0}' is not METHOD:N (composite:9, minimax:31, fit:31)")]
    Syntax(String),
    #[error("'{n}' in '{text}' is not a number")]
    Number { n: String, text: String },
    #[error("unknown method '{method}' in '{text}' (known: composite, minimax, fit)")]
    Method { method: String, text: String },
}

impl Choice {
    /// `composite:9`, `minimax:31`, `fit:31` (the `--set NODE=…` syntax).
    pub fn parse(s: &str) -> Result<Choice, ChoiceError> {
        let (kind, n) = s
            .split_once(':')
            .ok_or_else(|| ChoiceError::Syntax(s.to_string()))?;
        let n: usize = n.parse().map_err(|_| ChoiceError::Number {
            n: n.to_string(),
            text: s.to_string(),
        })?;
        match kind {
            "composite" => Ok(Choice::Composite { alpha: n as u32 }),
            "minimax" => Ok(Choice::Minimax { degree: n }),
            "fit" => Ok(Choice::Fitted { degree: n }),
            _ => Err(ChoiceError::Method {
                method: kind.to_string(),
                text: s.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Choice::Composite { alpha } => write!(f, "composite:{alpha}"),
            Choice::Minimax { degree } => write!(f, "minimax:{degree}"),
            Choice::Fitted { degree } => write!(f, "fit:{degree}"),
        }
    }
}

/// How LayerNorm and Softmax are approximated once decomposed.
#[derive(Clone, Debug)]
pub struct TransformerPolicy {
    /// Degree of the minimax `exp` (softmax numerators, on the centred, scaled scores).
    pub exp_degree: usize,
    /// Degree of the minimax `x^(-1/2)` (LayerNorm, on the calibrated variance + ε).
    pub invsqrt_degree: usize,
    /// Degree of the minimax `1/x` (the softmax's last normalisation, on the row sums).
    pub reciprocal_degree: usize,
    /// Degree of the minimax `x^-2` of the softmax's intermediate normalisations (their error
    /// is a per-row common factor that the next normalisation removes: low degrees do).
    pub norm_degree: usize,
    /// Largest ratio max/min of the first softmax row sums: sets the squarings `r`.
    pub softmax_ratio: f64,
    /// Fixed number of softmax squarings instead of the calibrated choice.
    pub softmax_squarings: Option<u32>,
    /// Newton steps after each reciprocal / inverse square root polynomial.
    pub newton_steps: u32,
    /// When set, each exp, inverse square root and final reciprocal gets the cheapest degree
    /// (3, 7, 15, 31, 63) whose measured relative error on its interval is at most this,
    /// instead of the fixed degrees above: fewer levels where calibrated intervals are narrow.
    pub relative_target: Option<f64>,
}

impl Default for TransformerPolicy {
    fn default() -> Self {
        TransformerPolicy {
            exp_degree: 15,
            invsqrt_degree: 31,
            reciprocal_degree: 15,
            norm_degree: 7,
            softmax_ratio: 32.0,
            softmax_squarings: None,
            newton_steps: 0,
            relative_target: None,
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            alpha: 9,
            degree: 31,
            margin: 1.3,
            overrides: BTreeMap::new(),
            keep_softmax: false,
            input_range: None,
            shape: false,
            negative_weight: 4.0,
            bias_correct: false,
            choices: BTreeMap::new(),
            relu: None,
            transformer: TransformerPolicy::default(),
        }
    }
}

/// One approximated activation, as reported by `pannc compile`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ActivationReport {
    pub node: String,
    pub op: String,
    /// Calibrated input range `[min, max]` (when calibration data was given).
    pub calibrated: Option<[f64; 2]>,
    /// Sound bounds from interval analysis of the declared input range (when declared).
    pub interval: Option<[f64; 2]>,
    /// The half-width B of the polynomial's interval `[-B, B]` (of `domain` when asymmetric).
    pub bound: f64,
    /// The polynomial's interval when it is not `[-B, B]` (exp, powers on positive ranges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<[f64; 2]>,
    pub method: String,
    pub degrees: Vec<usize>,
    /// Levels of the polynomial (scales folded or merged).
    pub depth: usize,
    pub ct_mults: u32,
    /// Measured max |p − f| on [-B, B], in the activation's own units.
    pub max_error: f64,
    /// Whether the input scaling x/B was folded into the producer (else it costs a level).
    pub scale_folded: bool,
    /// Whether negative-side shaping refitted this polynomial (technique `shape`).
    pub shaped: bool,
    /// Mean |p − f| over the calibration inputs, and its mean on negative inputs (signed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calib_error: Option<CalibError>,
    /// Largest per-channel bias correction applied (technique `bias`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias_correction: Option<f64>,
    /// Names of the `Poly` nodes that implement this activation (one, or two for Clip-like
    /// functions built from two ReLUs).
    pub polys: Vec<String>,
}

/// Approximation error measured on the calibrated inputs of one activation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CalibError {
    /// Mean of |p − f|.
    pub mean_abs: f64,
    /// Mean of p − f on negative inputs, and on non-negative inputs.
    pub mean_negative: f64,
    pub mean_positive: f64,
}

/// What a compilation did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub activations: Vec<ActivationReport>,
    /// Levels spent on range scaling that could not be folded (0 is the goal).
    pub range_control_levels: usize,
    /// Levels of the whole network (see `analysis::levels`), filled by the driver.
    pub levels: usize,
    /// ct×ct multiplications per sample of the whole network in the slot-per-sample model
    /// (products of two computed values, MatMuls of two activations, and the polynomials'),
    /// see `analysis::ct_ct_mults`; filled by the driver.
    pub ct_ct_mults: u64,
    /// Notes for the user (a removed softmax, a lowered max-pool, ...).
    pub notes: Vec<String>,
}

impl Report {
    /// The activation implemented (in part) by the `Poly` node named `poly`.
    pub fn activation_of_poly(&mut self, poly: &str) -> Option<&mut ActivationReport> {
        self.activations
            .iter_mut()
            .find(|a| a.polys.iter().any(|p| p == poly))
    }
}

/// Input and output of the passes beyond the graph itself.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Calibration inputs (one tensor per graph input, batch first).
    pub calib: Vec<Tensor>,
    pub policy: Policy,
    /// Calibrated ranges of the activations' inputs (filled by `approximate`).
    pub ranges: Ranges,
    pub report: Report,
    /// Values kept across compilations of one backbone on `calib` (a search's trials): passes
    /// that run the graph on the calibration data reuse what earlier runs computed the same
    /// way (`pannc_interp::run_memo`). Results are the same with or without.
    pub memo: Option<std::sync::Arc<pannc_interp::Memo>>,
    /// The client-side tail after the logits, split off by `split-tail` (a graph of its own
    /// whose inputs are the values it reads, by name).
    pub tail: Option<pannc_ir::Graph>,
}
