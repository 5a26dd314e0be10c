//! The top-level entry point: [`approximate`] a [`Function`] on a domain under a [`Budget`] with a
//! [`Method`], returning an [`Approximation`] whose stages, combine rule, cost and measured error
//! are enough to re-evaluate it independently.
//!
//! # How a result is evaluated
//! Let `q = p_k ∘ … ∘ p_1` be the stages composed (`stages[0]` first), each stage
//! `p_i(y) = Σ_k c_k T_k((2y − a_i − b_i)/(b_i − a_i))` on its own `[a_i, b_i]`. The result is
//! `combine(q)`:
//!
//! | combine | value |
//! |---|---|
//! | `identity` | `f(x) ≈ q(x)` |
//! | `relu` | `f(x) ≈ x·(1 + q(x))/2` (`q ≈ sign`) |
//! | `abs` | `f(x) ≈ x·q(x)` |
//! | `leaky_relu` | `f(x) ≈ x·((1 + slope) + (1 − slope)·q(x))/2` |
//! | `clip` | `f(x) ≈ (lo + hi + (x − lo)·q(x − lo) − (x − hi)·q(x − hi))/2` |
//! | `max` | `max(a, b) ≈ (a + b + (a − b)·q(a − b))/2` |
//! | `max_via_relu` | `max(a, b) ≈ b + q(a − b)` (`q ≈ ReLU`) |
//!
//! For `max` the domain is the range of `a − b`, and `max_error` is the error of `max(a, b)`
//! (which only depends on `a − b`).
//!
//! # Precision
//! `--alpha α` asks for `max_error ≤ 2^-α` in the function's own units on the whole domain (for
//! `sign`: on the domain minus the gap `(-2^-α R, 2^-α R)`, `R = max|domain|`). Composites are
//! built on `[-1, 1]` and stretched to `[-R, R]` by their first stage's interval; the internal
//! precision is raised by `⌈log2 R⌉` (plus one for `abs` and `clip`) so the stretched result
//! still meets `2^-α`. The reported `max_error` is always *measured* (≥ 2^16 + 1 points per piece
//! plus points clustered at the ends and at the breakpoints), never predicted.

use crate::cheb::{chebyshev_interp, ChebSeries};
use crate::composite::{composite_sign, CompositeOptions, SignTarget, ALPHA_MAX, ALPHA_MIN};
use crate::cost::Cost;
use crate::functions::Function;
use crate::lsq::{lsq, ErrorSign, LsqConstraints};
use crate::remez::{minimax_with, Parity, RemezOptions, Weight};
use crate::ApproxError;
use serde::{Deserialize, Serialize};

/// Largest degree of a single polynomial (`--degree`, or the search under `--alpha`).
pub const MAX_SINGLE_DEGREE: usize = 1023;

/// Points per piece used to measure `max_error`.
pub const MEASURE_POINTS: usize = (1 << 16) + 1;

/// How to approximate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// One weighted minimax polynomial (Remez).
    Minimax,
    /// Composite minimax sign, for sign-based functions.
    Composite,
    /// Chebyshev interpolation.
    Chebyshev,
    /// Weighted least squares against a sample distribution.
    Lsq,
}

impl Method {
    pub fn parse(s: &str) -> Result<Method, ApproxError> {
        Ok(match s {
            "minimax" | "remez" => Method::Minimax,
            "composite" => Method::Composite,
            "chebyshev" | "cheb" => Method::Chebyshev,
            "lsq" => Method::Lsq,
            _ => {
                return Err(ApproxError::InvalidInput(format!(
                    "unknown method '{s}' (known: minimax, composite, chebyshev, lsq)"
                )))
            }
        })
    }
    pub fn name(&self) -> &'static str {
        match self {
            Method::Minimax => "minimax",
            Method::Composite => "composite",
            Method::Chebyshev => "chebyshev",
            Method::Lsq => "lsq",
        }
    }
}

/// What to spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Reach `max_error ≤ 2^-α` as cheaply as possible.
    Alpha(u32),
    /// One polynomial of this degree.
    Degree(usize),
    /// The most precise result within this many levels.
    Depth(u32),
}

/// Error shaping on negative inputs (see the design notes: errors on negative ReLU inputs hurt
/// most).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shaping {
    /// Weight of the error on `x < 0` relative to `x ≥ 0` (1 = none). Minimax minimises
    /// `max w|e|`; least squares uses `w²` on the squared error, so both mean "w times smaller".
    pub negative_weight: f64,
    /// Keep `p − f` of one sign on `x < 0` (least squares only).
    pub negative_sign: Option<ErrorSign>,
    /// Zero mean of `p − f` on `x < 0` under the sample distribution (least squares only).
    pub negative_zero_mean: bool,
}

impl Default for Shaping {
    fn default() -> Self {
        Shaping {
            negative_weight: 1.0,
            negative_sign: None,
            negative_zero_mean: false,
        }
    }
}

impl Shaping {
    pub fn is_none(&self) -> bool {
        self.negative_weight == 1.0 && self.negative_sign.is_none() && !self.negative_zero_mean
    }
}

/// A full request; [`approximate`] covers the common case.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub function: Function,
    pub method: Method,
    pub budget: Budget,
    pub domain: (f64, f64),
    pub shaping: Shaping,
    /// Sample distribution `(x, weight)` for least squares and for the zero-mean constraint;
    /// default: 4096 equally spaced points of weight 1.
    pub samples: Option<&'a [(f64, f64)]>,
    /// Relative gap for `sign` fitted by a single polynomial under `Budget::Degree`/`Depth`
    /// (default 2^-6): the fit ignores `(-gap·R, gap·R)`.
    pub sign_gap: Option<f64>,
    /// Minimax only: weigh the error by this function too (e.g. the density of the inputs
    /// the polynomial will see), on top of the negative-side weight.
    pub weight: Option<CustomWeight<'a>>,
}

/// A weight `w(x) > 0` for minimax fits: they minimise `max w(x)|p(x) − f(x)|`. `even`
/// promises `w(−x) = w(x)`, which keeps the function's parity structure (ReLU = x/2 + an
/// even part, at fewer ct×ct multiplications).
#[derive(Clone, Copy)]
pub struct CustomWeight<'a> {
    pub w: &'a (dyn Fn(f64) -> f64 + Sync),
    pub even: bool,
}

impl std::fmt::Debug for CustomWeight<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomWeight {{ even: {} }}", self.even)
    }
}

/// One stage of a result, in the Chebyshev basis of its own interval.
#[derive(Clone, Debug, Serialize)]
pub struct Stage {
    pub domain: [f64; 2],
    pub degree: usize,
    pub basis: &'static str,
    pub coefficients: Vec<f64>,
}

/// Parameters of the combine rule (only those it uses are set).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CombineParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slope: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lo: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hi: Option<f64>,
}

/// How the composed stages make the function (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Combine {
    Identity,
    Relu,
    Abs,
    LeakyRelu { slope: f64 },
    Clip { lo: f64, hi: f64 },
    Max,
    MaxViaRelu,
}

impl Combine {
    pub fn name(&self) -> &'static str {
        match self {
            Combine::Identity => "identity",
            Combine::Relu => "relu",
            Combine::Abs => "abs",
            Combine::LeakyRelu { .. } => "leaky_relu",
            Combine::Clip { .. } => "clip",
            Combine::Max => "max",
            Combine::MaxViaRelu => "max_via_relu",
        }
    }
    fn params(&self) -> Option<CombineParams> {
        match *self {
            Combine::LeakyRelu { slope } => Some(CombineParams {
                slope: Some(slope),
                ..Default::default()
            }),
            Combine::Clip { lo, hi } => Some(CombineParams {
                lo: Some(lo),
                hi: Some(hi),
                ..Default::default()
            }),
            _ => None,
        }
    }
    /// Value at `x` (for the max rules, `x = a − b` with `b = 0`) given the composed stages `q`.
    pub fn apply(&self, q: &dyn Fn(f64) -> f64, x: f64) -> f64 {
        match *self {
            Combine::Identity => q(x),
            Combine::Relu | Combine::Max => x * (1.0 + q(x)) / 2.0,
            Combine::Abs => x * q(x),
            Combine::LeakyRelu { slope } => x * ((1.0 + slope) + (1.0 - slope) * q(x)) / 2.0,
            Combine::Clip { lo, hi } => {
                (lo + hi + (x - lo) * q(x - lo) - (x - hi) * q(x - hi)) / 2.0
            }
            Combine::MaxViaRelu => q(x),
        }
    }
}

/// A finished approximation (serialises to the JSON of `pannc approx --json`).
#[derive(Clone, Debug, Serialize)]
pub struct Approximation {
    pub function: &'static str,
    pub method: Method,
    pub domain: [f64; 2],
    /// Requested precision `α` (if the budget was one).
    pub alpha: Option<u32>,
    /// `2^-α` when asked for.
    pub error_target: Option<f64>,
    pub degrees: Vec<usize>,
    pub depth: u32,
    pub ct_mults: u32,
    pub stage_ct_mults: Vec<u32>,
    /// Measured `max |approx − f|` on `error_domain`.
    pub max_error: f64,
    /// Where `max_error` was measured (the domain, minus the gap for `sign`).
    pub error_domain: Vec<[f64; 2]>,
    pub combine: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub combine_params: Option<CombineParams>,
    /// Composites: the sign is accurate outside `(-sign_gap, sign_gap)` (in stage-0 units).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_gap: Option<f64>,
    /// Composites: the precision statement the stages meet (`sign` or `relu`, see
    /// [`SignTarget`]), and the internal α it was met at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_target: Option<SignTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_alpha: Option<u32>,
    pub shaping: Shaping,
    /// Stages in composition order.
    pub stages: Vec<Stage>,
    #[serde(skip)]
    pub series: Vec<ChebSeries>,
    #[serde(skip)]
    pub combine_rule: Combine,
    #[serde(skip)]
    pub target: Function,
    /// Anything worth knowing (mean error on negative inputs, conditioning, …).
    pub notes: Vec<String>,
}

impl Approximation {
    /// The composed stages `q(x)`.
    pub fn composed(&self, x: f64) -> f64 {
        self.series.iter().fold(x, |v, s| s.eval(v))
    }
    /// The approximation at `x` (for `max`: of `max(x, 0)`).
    pub fn eval(&self, x: f64) -> f64 {
        self.combine_rule.apply(&|y| self.composed(y), x)
    }
    /// `f(x)`.
    pub fn reference(&self, x: f64) -> f64 {
        self.target.eval(x)
    }
}

/// Approximates `function` on `domain` with `method` under `budget`.
pub fn approximate(
    function: Function,
    method: Method,
    budget: Budget,
    domain: (f64, f64),
    shaping: Shaping,
) -> Result<Approximation, ApproxError> {
    approximate_with(&Request {
        weight: None,
        function,
        method,
        budget,
        domain,
        shaping,
        samples: None,
        sign_gap: None,
    })
}

fn check_alpha(a: u32) -> Result<(), ApproxError> {
    if !(ALPHA_MIN..=ALPHA_MAX).contains(&a) {
        return Err(ApproxError::AlphaOutOfRange {
            alpha: a,
            min: ALPHA_MIN,
            max: ALPHA_MAX,
        });
    }
    Ok(())
}

/// [`approximate`] with every option.
pub fn approximate_with(req: &Request) -> Result<Approximation, ApproxError> {
    let (a, b) = req.domain;
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(ApproxError::InvalidDomain { a, b });
    }
    if !(req.shaping.negative_weight.is_finite() && req.shaping.negative_weight > 0.0) {
        return Err(ApproxError::InvalidInput(format!(
            "negative-side weight must be positive, got {}",
            req.shaping.negative_weight
        )));
    }
    match req.budget {
        Budget::Alpha(al) => check_alpha(al)?,
        Budget::Degree(d) if d > MAX_SINGLE_DEGREE => {
            return Err(ApproxError::DegreeTooLarge {
                degree: d,
                max: MAX_SINGLE_DEGREE,
            })
        }
        Budget::Depth(l) if l == 0 || l > 40 => {
            return Err(ApproxError::InvalidInput(format!(
                "depth budget must be within 1..=40, got {l}"
            )))
        }
        _ => {}
    }
    if let Function::Clip { lo, hi } = req.function {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(ApproxError::InvalidInput(format!(
                "clip needs lo < hi, got [{lo}, {hi}]"
            )));
        }
    }
    if req.function.needs_positive_domain() && a <= 0.0 {
        return Err(ApproxError::InvalidInput(format!(
            "{} needs a positive domain (0 < A < B), got [{a}, {b}]",
            req.function.name()
        )));
    }
    if let Function::LeakyRelu { slope } = req.function {
        if !(slope.is_finite() && slope < 1.0) {
            return Err(ApproxError::InvalidInput(format!(
                "leaky_relu needs a finite slope < 1, got {slope}"
            )));
        }
    }
    match req.method {
        Method::Composite => composite(req),
        _ => single(req),
    }
}

fn composite(req: &Request) -> Result<Approximation, ApproxError> {
    let f = req.function;
    if !f.is_sign_based() {
        return Err(ApproxError::Unsupported {
            method: "composite",
            reason: format!(
                "{} is not built from sign; use minimax, chebyshev or lsq",
                f.name()
            ),
        });
    }
    if !req.shaping.is_none() {
        return Err(ApproxError::Unsupported {
            method: "composite",
            reason: "error shaping applies to single polynomials (minimax, lsq)".into(),
        });
    }
    let (a, b) = req.domain;
    let r_x = a.abs().max(b.abs());
    let (combine, r, extra_bits, evals, extra_mults, target) = match f {
        Function::Sign => (Combine::Identity, r_x, 0.0, 1, 0, SignTarget::Sign),
        Function::Relu => (Combine::Relu, r_x, r_x.log2(), 1, 1, SignTarget::Relu),
        Function::Max => (Combine::Max, r_x, r_x.log2(), 1, 1, SignTarget::Relu),
        Function::Abs => (Combine::Abs, r_x, 1.0 + r_x.log2(), 1, 1, SignTarget::Relu),
        Function::LeakyRelu { slope } => (
            Combine::LeakyRelu { slope },
            r_x,
            ((1.0 - slope) * r_x).log2(),
            1,
            1,
            SignTarget::Relu,
        ),
        Function::Clip { lo, hi } => {
            let r = [a - lo, b - lo, a - hi, b - hi]
                .iter()
                .fold(0.0f64, |m, v| m.max(v.abs()));
            (
                Combine::Clip { lo, hi },
                r,
                1.0 + r.log2(),
                2,
                2,
                SignTarget::Relu,
            )
        }
        _ => unreachable!("checked sign-based"),
    };
    if r <= 0.0 {
        return Err(ApproxError::InvalidDomain { a, b });
    }
    let opts = CompositeOptions::default();
    let internal = |alpha: u32| -> Result<u32, ApproxError> {
        let ia = (alpha as f64 + extra_bits).ceil().max(ALPHA_MIN as f64);
        if ia > ALPHA_MAX as f64 {
            return Err(ApproxError::InvalidInput(format!(
                "2^-{alpha} on this domain needs internal precision 2^-{ia}, beyond the supported 2^-{ALPHA_MAX}"
            )));
        }
        Ok(ia as u32)
    };
    let build = |ia: u32| composite_sign(ia, target, &opts);
    let (alpha, ia, comp) = match req.budget {
        Budget::Alpha(al) => {
            let ia = internal(al)?;
            (Some(al), ia, build(ia)?)
        }
        Budget::Degree(_) => {
            return Err(ApproxError::Unsupported {
                method: "composite",
                reason: "a composite is chosen by --alpha or --depth, not --degree".into(),
            })
        }
        Budget::Depth(l) => {
            // The most precise internal α whose composite fits in l levels (with the combine).
            let mut best = None;
            for ia in ALPHA_MIN..=ALPHA_MAX {
                let c = build(ia)?;
                if c.depth + u32::from(extra_mults > 0) > l {
                    break;
                }
                best = Some((ia, c));
            }
            let (ia, c) = best.ok_or(ApproxError::InvalidInput(format!(
                "no composite {} fits in {l} levels",
                f.name()
            )))?;
            (None, ia, c)
        }
    };
    let mut series = comp.stages.clone();
    series[0] = ChebSeries::new(-r, r, series[0].coeffs.clone())?;
    let cost = Cost::of_stages(&series, evals, u32::from(extra_mults > 0), extra_mults);
    let gap = comp.eps * r;
    let error_domain = if f == Function::Sign {
        let mut v = Vec::new();
        if a < -gap {
            v.push([a, (-gap).min(b)]);
        }
        if b > gap {
            v.push([gap.max(a), b]);
        }
        v
    } else {
        vec![[a, b]]
    };
    let mut notes = vec![format!(
        "stage errors {:?}; sign gap {:.4e} (2^{:.2}) relative to the first stage's interval",
        comp.stage_errors
            .iter()
            .map(|e| format!("{e:.3e}"))
            .collect::<Vec<_>>(),
        comp.eps,
        comp.eps.log2()
    )];
    if target == SignTarget::Relu {
        notes.push(format!(
            "stages meet the ReLU statement |x(1+s)/2 − ReLU(x)| ≤ 2^-{ia} on [-1,1] (gap chosen by the search)"
        ));
    }
    finish(
        req,
        series,
        combine,
        cost,
        alpha,
        error_domain,
        Some(gap),
        Some(target),
        Some(ia),
        notes,
    )
}

/// Target of a single polynomial: (g fitted, combine).
fn single(req: &Request) -> Result<Approximation, ApproxError> {
    let f = req.function;
    let (a, b) = req.domain;
    let r = a.abs().max(b.abs());
    let combine = if f == Function::Max {
        Combine::MaxViaRelu
    } else {
        Combine::Identity
    };
    // Fitting set.
    let gap_rel = match (f, req.budget) {
        (Function::Sign, Budget::Alpha(al)) => Some(2f64.powi(-(al as i32))),
        (Function::Sign, _) => Some(req.sign_gap.unwrap_or(1.0 / 64.0)),
        _ => None,
    };
    let set: Vec<(f64, f64)> = match gap_rel {
        Some(g) => {
            let g = g * r;
            let mut v = Vec::new();
            if a < -g {
                v.push((a, (-g).min(b)));
            }
            if b > g {
                v.push((g.max(a), b));
            }
            if v.is_empty() {
                return Err(ApproxError::InvalidInput(format!(
                    "the sign gap (-{g}, {g}) covers the whole domain"
                )));
            }
            v
        }
        None => vec![(a, b)],
    };
    let sh = &req.shaping;
    if req.method == Method::Chebyshev && !sh.is_none() {
        return Err(ApproxError::Unsupported {
            method: "chebyshev",
            reason: "interpolation has no freedom to shape the error; use minimax or lsq".into(),
        });
    }
    if req.method == Method::Minimax && (sh.negative_sign.is_some() || sh.negative_zero_mean) {
        return Err(ApproxError::Unsupported {
            method: "minimax",
            reason: "one-sign and zero-mean shaping are least-squares fits; use --method lsq (minimax takes --neg-weight)".into(),
        });
    }
    let default_samples: Vec<(f64, f64)>;
    let samples: &[(f64, f64)] = match req.samples {
        Some(s) => s,
        None => {
            let total: f64 = set.iter().map(|(l, h)| h - l).sum();
            let n = 4096usize;
            default_samples = set
                .iter()
                .flat_map(|&(l, h)| {
                    let k = ((n as f64 * (h - l) / total).round() as usize).max(2);
                    (0..k).map(move |i| (l + (h - l) * i as f64 / (k - 1) as f64, 1.0))
                })
                .collect();
            &default_samples
        }
    };
    let fit = |d: usize| -> Result<(ChebSeries, f64), ApproxError> {
        match req.method {
            Method::Minimax => fit_minimax(f, &set, (a, b), d, sh.negative_weight, req.weight),
            Method::Chebyshev => {
                let s = chebyshev_interp(&|x| f.eval(x), a, b, d)?;
                let e = quick_error(&s, f, &set);
                Ok((s, e))
            }
            Method::Lsq => {
                let w2 = sh.negative_weight * sh.negative_weight;
                let ws: Vec<(f64, f64)> = samples
                    .iter()
                    .map(|&(x, w)| (x, if x < 0.0 { w * w2 } else { w }))
                    .collect();
                let cons = LsqConstraints {
                    negative_zero_mean: sh.negative_zero_mean,
                    negative_sign: sh.negative_sign,
                };
                let fitted = lsq(&|x| f.eval(x), &ws, (a, b), d, &cons)?;
                let e = quick_error(&fitted.series, f, &set);
                Ok((fitted.series, e))
            }
            Method::Composite => unreachable!(),
        }
    };
    let (alpha, series) = match req.budget {
        Budget::Degree(d) => (None, fit(d)?.0),
        Budget::Depth(l) => {
            let d = ((1usize << l.min(20)) - 1).min(MAX_SINGLE_DEGREE);
            (None, fit(d)?.0)
        }
        Budget::Alpha(al) => {
            let target = 2f64.powi(-(al as i32));
            // Smallest degree meeting the target: doubling, then bisection.
            let mut lo = 0usize; // fails (or untested)
            let mut hi = 1usize;
            let mut found: Option<ChebSeries> = None;
            loop {
                let (s, e) = fit(hi)?;
                if e <= target {
                    found = Some(s);
                    break;
                }
                lo = hi;
                if hi == MAX_SINGLE_DEGREE {
                    break;
                }
                hi = (hi * 2).min(MAX_SINGLE_DEGREE);
            }
            let mut best = found.ok_or_else(|| ApproxError::Unsupported {
                method: req.method.name(),
                reason: format!(
                    "2^-{al} needs a single polynomial of degree > {MAX_SINGLE_DEGREE}{}",
                    if f.is_sign_based() {
                        "; use --method composite"
                    } else {
                        ""
                    }
                ),
            })?;
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                let (s, e) = fit(mid)?;
                if e <= target {
                    hi = mid;
                    best = s;
                } else {
                    lo = mid;
                }
            }
            (Some(al), best)
        }
    };
    let cost = Cost::of_stages(std::slice::from_ref(&series), 1, 0, 0);
    let error_domain: Vec<[f64; 2]> = set.iter().map(|&(l, h)| [l, h]).collect();
    let mut notes = Vec::new();
    if f.relative_error() {
        notes.push(format!(
            "max relative error {:.3e} (fitted by relative-error minimax)",
            max_relative_error(&series, f, (a, b))
        ));
    }
    let mono = series.to_monomial();
    if let Some(w) = mono.warning {
        notes.push(w);
    }
    finish(
        req,
        vec![series],
        combine,
        cost,
        alpha,
        error_domain,
        None,
        None,
        None,
        notes,
    )
}

/// Largest `|s − f|/|f|` on `MEASURE_POINTS` equally spaced points of `[a, b]`.
pub fn max_relative_error(s: &ChebSeries, f: Function, (a, b): (f64, f64)) -> f64 {
    let n = MEASURE_POINTS - 1;
    (0..=n)
        .map(|i| a + (b - a) * i as f64 / n as f64)
        .map(|x| ((s.eval(x) - f.eval(x)) / f.eval(x)).abs())
        .fold(0.0, f64::max)
}

/// Error on the set from 4097 Chebyshev-clustered points per piece (used while searching).
fn quick_error(s: &ChebSeries, f: Function, set: &[(f64, f64)]) -> f64 {
    let mut m = 0.0f64;
    for &(l, h) in set {
        for i in 0..=4096 {
            let t = (std::f64::consts::PI * i as f64 / 4096.0).cos();
            let x = 0.5 * ((h - l) * t + l + h);
            m = m.max((s.eval(x) - f.eval(x)).abs());
        }
        for &bp in &f.breakpoints() {
            if bp >= l && bp <= h {
                m = m.max((s.eval(bp) - f.eval(bp)).abs());
            }
        }
    }
    m
}

fn fit_minimax(
    f: Function,
    set: &[(f64, f64)],
    (a, b): (f64, f64),
    d: usize,
    neg_weight: f64,
    custom: Option<CustomWeight<'_>>,
) -> Result<(ChebSeries, f64), ApproxError> {
    let opts = RemezOptions {
        breakpoints: f.breakpoints(),
        ..RemezOptions::default()
    };
    let symmetric = a == -b;
    let even_weight = custom.is_none_or(|c| c.even);
    let structure = f
        .structure()
        .filter(|_| symmetric && neg_weight == 1.0 && even_weight);
    let weight_fn = custom.map(|c| c.w);
    if let Some(st) = structure {
        let g = move |x: f64| f.eval(x) - st.c0 - st.c1 * x;
        let w = match weight_fn {
            Some(w) => Weight::Custom(w),
            None => Weight::Uniform,
        };
        let m = minimax_with(&g, set, d, w, st.parity, &opts)?;
        let mut c = m.series.coeffs.clone();
        c[0] += st.c0;
        if c.len() > 1 {
            c[1] += st.c1 * b;
        } else if st.c1 != 0.0 {
            c.push(st.c1 * b);
        }
        // m.series lives on [-m, m] with m = max|set| = b here.
        let s = ChebSeries::new(a, b, c)?;
        let err = if weight_fn.is_some() {
            quick_error(&s, f, set)
        } else {
            m.error
        };
        return Ok((s, err));
    }
    let sides = move |x: f64| if x < 0.0 { neg_weight } else { 1.0 };
    let combined = move |x: f64| sides(x) * weight_fn.map_or(1.0, |w| w(x));
    let relative = move |x: f64| 1.0 / f.eval(x).abs().max(f64::MIN_POSITIVE);
    let w = if weight_fn.is_some() {
        Weight::Custom(&combined)
    } else if f.relative_error() && neg_weight == 1.0 {
        Weight::Custom(&relative)
    } else if neg_weight == 1.0 {
        Weight::Uniform
    } else {
        Weight::Sides {
            negative: neg_weight,
            positive: 1.0,
        }
    };
    let m = minimax_with(&|x| f.eval(x), set, d, w, Parity::None, &opts)?;
    // The hull of the set may be smaller than the domain (sign gap is interior, so it is not);
    // re-express on [a, b] when it differs.
    let s = if m.series.a == a && m.series.b == b {
        m.series
    } else {
        let id = ChebSeries::identity(a, b)?;
        m.series.compose(&id)?
    };
    let err = quick_error(&s, f, set);
    Ok((s, err))
}

/// Measures the error densely and assembles the result.
#[allow(clippy::too_many_arguments)]
fn finish(
    req: &Request,
    series: Vec<ChebSeries>,
    combine: Combine,
    cost: Cost,
    alpha: Option<u32>,
    error_domain: Vec<[f64; 2]>,
    sign_gap: Option<f64>,
    sign_target: Option<SignTarget>,
    internal_alpha: Option<u32>,
    mut notes: Vec<String>,
) -> Result<Approximation, ApproxError> {
    let stages: Vec<Stage> = series
        .iter()
        .map(|s| Stage {
            domain: [s.a, s.b],
            degree: s.degree(),
            basis: "chebyshev",
            coefficients: s.coeffs.clone(),
        })
        .collect();
    let mut ap = Approximation {
        function: req.function.name(),
        method: req.method,
        domain: [req.domain.0, req.domain.1],
        alpha,
        error_target: alpha.map(|al| 2f64.powi(-(al as i32))),
        degrees: cost.degrees.clone(),
        depth: cost.depth,
        ct_mults: cost.ct_mults,
        stage_ct_mults: cost.stage_ct_mults.clone(),
        max_error: 0.0,
        error_domain,
        combine: combine.name(),
        combine_params: combine.params(),
        sign_gap,
        sign_target,
        internal_alpha,
        shaping: req.shaping.clone(),
        stages,
        series,
        combine_rule: combine,
        target: req.function,
        notes: Vec::new(),
    };
    let mut emax = 0.0f64;
    let mut neg_sum = 0.0;
    let mut neg_n = 0usize;
    let bps = req.function.breakpoints();
    for piece in ap.error_domain.clone() {
        let [l, h] = piece;
        let n = MEASURE_POINTS;
        let mut xs: Vec<f64> = (0..n)
            .map(|i| l + (h - l) * i as f64 / (n - 1) as f64)
            .collect();
        xs.extend((0..=4096).map(|i| {
            let t = (std::f64::consts::PI * i as f64 / 4096.0).cos();
            0.5 * ((h - l) * t + l + h)
        }));
        for &bp in &bps {
            for k in 0..40 {
                let dx = (h - l) * 2f64.powi(-(k + 10));
                xs.extend(
                    [bp - dx, bp, bp + dx]
                        .iter()
                        .filter(|x| **x >= l && **x <= h),
                );
            }
        }
        for x in xs {
            let e = ap.eval(x) - ap.reference(x);
            if !e.is_finite() {
                return Err(ApproxError::NonFinite { x });
            }
            emax = emax.max(e.abs());
            if x < 0.0 {
                neg_sum += e;
                neg_n += 1;
            }
        }
    }
    ap.max_error = emax;
    if neg_n > 0 {
        notes.push(format!(
            "mean error on negative inputs (uniform): {:.3e}",
            neg_sum / neg_n as f64
        ));
    }
    if let (Some(t), true) = (
        ap.error_target,
        emax > ap.error_target.unwrap_or(f64::INFINITY),
    ) {
        notes.push(format!(
            "measured error {emax:.3e} exceeds the target {t:.3e}"
        ));
    }
    ap.notes = notes;
    Ok(ap)
}
