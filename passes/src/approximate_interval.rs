//! The part of `approximate` for functions on asymmetric, calibrated intervals: `Exp` and the
//! powers `x^p` on positive ranges (`Reciprocal`, `Sqrt`, `Pow(x, p)` with a constant
//! non-integer or negative `p`; `decompose-layernorm` emits `Pow(·, −1/2)`,
//! `decompose-softmax` `Pow(·, −2)` and `Reciprocal`).
//!
//! The interval `[a, b]` is the calibrated range widened by the margin: multiplicatively for
//! powers (`[min/m, max·m]`, so it stays positive), additively for `Exp`
//! (`[min − δ, max + δ]`, `δ = (m − 1)(max − min)/2`). One minimax polynomial of the policy's
//! degree for the function fits it with *relative* error weight (what a normalisation or a
//! Newton step needs). The `Poly` keeps the interval's affine map inside its stage: `in_scale
//! = 2/(b − a)` and the stage interval `[a·in_scale, b·in_scale]`, of width 2, so that once range
//! control folds `in_scale` into the producer (the variance or row-sum weights, which are
//! constants) what is left of the map is `t = y − (a + b)/(b − a)`, a plaintext addition:
//! no level. `Poly::domain_position` measures inputs against this interval.
//!
//! Optional Newton steps (`Policy::transformer.newton_steps`, reciprocal and inverse square
//! root only) follow the polynomial as graph nodes (`y ← y(2 − xy)`, `y ← y(3 − xy²)/2`), their
//! `x` read through a `Mul` by a constant so that range control compensates it exactly.
//!
//! Techniques: `shape` (negative-side weighting) has no negative side here and is not applied;
//! `bias-correct` skips these polynomials (their errors are relative and enter through
//! products and normalisations, where a subtracted mean is not a correction). Both say so in the
//! report's notes.

use crate::analysis::RangeStats;
use crate::build::{float_dtype, Builder};
use crate::context::{ActivationReport, CalibError};
use crate::{Context, PassError};
use pannc_approx::{approximate, Approximation, Budget, Function, Method, Shaping};
use pannc_ir::{Graph, NodeId, Op, Poly, PolyCombine, PolyStage};
use std::collections::HashMap;

const PASS: &str = "approximate";

/// Degrees tried, cheapest first, under `TransformerPolicy::relative_target`.
const TARGET_DEGREES: [usize; 5] = [3, 7, 15, 31, 63];

/// Max relative error of `x`'s single stage on `[a, b]` (on `MEASURE_POINTS` points).
fn relative_error(x: &Approximation, f: Function, (a, b): (f64, f64)) -> f64 {
    pannc_approx::ChebSeries::new(a, b, x.stages[0].coefficients.clone())
        .map_or(f64::INFINITY, |s| {
            pannc_approx::max_relative_error(&s, f, (a, b))
        })
}

fn err(g: &Graph, id: NodeId, message: impl ToString) -> PassError {
    PassError::Node {
        pass: PASS,
        node: g.node(id).name.clone(),
        op: g.node(id).op.name(),
        message: message.to_string(),
    }
}

/// The function an `Exp`/`Reciprocal`/`Sqrt`/`Pow` node computes, or `None` for a `Pow` by a
/// constant non-negative integer (a polynomial, left as it is) and for other ops.
pub(crate) fn interval_function(g: &Graph, id: NodeId) -> Result<Option<Function>, PassError> {
    let node = g.node(id);
    Ok(Some(match node.op {
        Op::Exp => Function::Exp,
        Op::Reciprocal => Function::Power { p: -1.0 },
        Op::Sqrt => Function::Power { p: 0.5 },
        Op::Pow => {
            let e = g
                .constant(node.inputs()[1])
                .map(|t| t.to_f64_vec())
                .filter(|v| v.len() == 1 && v[0].is_finite())
                .ok_or_else(|| err(g, id, "Pow needs a constant scalar exponent to approximate"))?
                [0];
            if e >= 0.0 && e.fract() == 0.0 && e <= 64.0 {
                return Ok(None);
            }
            Function::Power { p: e }
        }
        _ => return Ok(None),
    }))
}

/// Approximates node `id` (an interval function `f`) on its calibrated range; see the module
/// doc. Returns the activation report.
pub(crate) fn approximate_node(
    g: &mut Graph,
    id: NodeId,
    f: Function,
    stats: Option<RangeStats>,
    interval: Option<(f64, f64)>,
    cx: &Context,
    cache: &mut HashMap<String, Approximation>,
) -> Result<ActivationReport, PassError> {
    let margin = cx.policy.margin;
    let (lo, hi) = match (&stats, interval) {
        (Some(s), _) => (s.min, s.max),
        (None, Some((a, b))) if a.is_finite() && b.is_finite() => (a, b),
        (None, Some(_)) => {
            return Err(err(
                g,
                id,
                "interval analysis gives no finite bound here; give calibration data",
            ))
        }
        (None, None) => return Err(err(g, id, "no calibrated range (empty calibration output)")),
    };
    let (a, b) = if f.needs_positive_domain() {
        if lo.is_nan() || lo <= 0.0 {
            return Err(err(
                g,
                id,
                format!(
                    "{} needs a positive input range, calibrated [{lo:.4e}, {hi:.4e}]",
                    f.name()
                ),
            ));
        }
        let (a, b) = (lo / margin, hi * margin);
        (a, b.max(a * (1.0 + 1e-6)))
    } else {
        let d = ((margin - 1.0) * (hi - lo) / 2.0).max(1e-3);
        (lo - d, hi + d)
    };
    let name = g.node(id).name.clone();
    let t = &cx.policy.transformer;
    let default_degree = match f {
        Function::Exp => t.exp_degree,
        Function::Power { p: -0.5 } => t.invsqrt_degree,
        Function::Power { p: -1.0 } => t.reciprocal_degree,
        Function::Power { p: -2.0 } => t.norm_degree,
        _ => cx.policy.degree,
    };
    let fit = |degree: usize, cache: &mut HashMap<String, Approximation>| {
        let key = format!(
            "{}/relative-minimax/{degree}/{:x}/{:x}",
            f.name(),
            a.to_bits(),
            b.to_bits()
        );
        if let Some(x) = cache.get(&key) {
            return Ok(x.clone());
        }
        let x = approximate(
            f,
            Method::Minimax,
            Budget::Degree(degree),
            (a, b),
            Shaping::default(),
        )
        .map_err(|e| err(g, id, e))?;
        cache.insert(key, x.clone());
        Ok::<_, PassError>(x)
    };
    let mut chosen_for = None;
    let approx = match (cx.policy.overrides.get(&name), t.relative_target) {
        (Some(&d), _) => fit(d as usize, cache)?,
        // The intermediate softmax normalisations cancel: their fixed low degree stays.
        (None, Some(target)) if f != (Function::Power { p: -2.0 }) => {
            // The cheapest degree (2^k − 1: each costs one level more than the last) whose
            // measured relative error on the interval meets the target; the largest otherwise.
            let mut best = None;
            for d in TARGET_DEGREES {
                let x = fit(d, cache)?;
                let rel = relative_error(&x, f, (a, b));
                best = Some(x);
                if rel <= target {
                    break;
                }
            }
            chosen_for = Some(target);
            best.expect("at least one degree")
        }
        _ => fit(default_degree, cache)?,
    };
    let c = 2.0 / (b - a);
    let poly = Poly {
        function: f.name().to_string(),
        in_scale: c,
        out_scale: 1.0,
        stages: vec![PolyStage {
            lo: a * c,
            hi: b * c,
            coeffs: approx.stages[0].coefficients.clone(),
        }],
        combine: PolyCombine::Identity,
    };
    let steps = match f {
        Function::Power { p } if p == -1.0 || p == -0.5 => t.newton_steps,
        _ => 0,
    };
    let x = g.node(id).inputs()[0];
    let out = g.node(id).outputs()[0];
    let op_name = g.node(id).op.name().to_string();
    let dtype = float_dtype(g, x);
    let mut bld = Builder::new(g, PASS, id, dtype);
    let poly_name = crate::util::unique_name(bld.g, format!("{name}.poly"));
    let mut y = bld
        .g
        .add_simple(poly_name.clone(), Op::Poly(Box::new(poly.clone())), &[x])
        .map_err(|e| bld.err(e))?;
    if steps > 0 {
        let one = bld.konst("newton_one", &[], vec![1.0])?;
        let xn = bld.node("newton_x", Op::Mul, &[x, one])?;
        for k in 0..steps {
            y = if f == (Function::Power { p: -1.0 }) {
                let xy = bld.node(&format!("newton{k}_xy"), Op::Mul, &[xn, y])?;
                let two = bld.konst(&format!("newton{k}_two"), &[], vec![2.0])?;
                let t = bld.node(&format!("newton{k}_t"), Op::Sub, &[two, xy])?;
                bld.node(&format!("newton{k}"), Op::Mul, &[y, t])?
            } else {
                let yy = bld.node(&format!("newton{k}_yy"), Op::Mul, &[y, y])?;
                let xyy = bld.node(&format!("newton{k}_xyy"), Op::Mul, &[xn, yy])?;
                let three = bld.konst(&format!("newton{k}_three"), &[], vec![3.0])?;
                let t = bld.node(&format!("newton{k}_t"), Op::Sub, &[three, xyy])?;
                let half = bld.konst(&format!("newton{k}_half"), &[], vec![0.5])?;
                let th = bld.node(&format!("newton{k}_half_t"), Op::Mul, &[t, half])?;
                bld.node(&format!("newton{k}"), Op::Mul, &[y, th])?
            };
        }
    }
    crate::util::replace_keeping_name(g, out, y).map_err(|e| err(g, id, e))?;
    g.remove_node(id);
    // Measured errors: on the interval (2^16 + 1 points) and on the calibration sample.
    let eval = |v: f64| {
        let mut r = poly.eval(v);
        for _ in 0..steps {
            r = pannc_approx::newton::step(f, v, r);
        }
        r
    };
    let n = 1usize << 16;
    let (mut max_abs, mut max_rel) = (0.0f64, 0.0f64);
    for i in 0..=n {
        let v = a + (b - a) * i as f64 / n as f64;
        let e = eval(v) - f.eval(v);
        max_abs = max_abs.max(e.abs());
        max_rel = max_rel.max((e / f.eval(v)).abs());
    }
    let calib_error = stats.as_ref().filter(|s| !s.sample.is_empty()).map(|s| {
        let (mut abs, mut sum) = (0.0, 0.0);
        for &v in &s.sample {
            let e = eval(v) - f.eval(v);
            abs += e.abs();
            sum += e;
        }
        let m = s.sample.len() as f64;
        CalibError {
            mean_abs: abs / m,
            mean_negative: 0.0,
            mean_positive: sum / m,
        }
    });
    let (step_levels, step_mults) = if steps > 0 {
        pannc_approx::newton::step_cost(f).map_err(|e| err(g, id, e))?
    } else {
        (0, 0)
    };
    let mut method = format!("minimax (relative error {max_rel:.2e})");
    if let Some(target) = chosen_for {
        method =
            format!("minimax (relative error {max_rel:.2e}, cheapest degree for {target:.0e})");
    }
    if steps > 0 {
        method.push_str(&format!(" + {steps} Newton"));
    }
    Ok(ActivationReport {
        node: name,
        op: op_name,
        calibrated: stats.map(|s| [s.min, s.max]),
        interval: interval.map(|(l, h)| [l, h]),
        bound: (b - a) / 2.0,
        domain: Some([a, b]),
        method,
        degrees: approx.degrees.clone(),
        depth: poly.depth() + (steps * step_levels) as usize,
        ct_mults: approx.ct_mults + steps * step_mults,
        max_error: max_abs,
        scale_folded: false,
        shaped: false,
        calib_error,
        bias_correction: None,
        polys: vec![poly_name],
    })
}
