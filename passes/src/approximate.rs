//! Replacement of nonlinearities by polynomials on calibrated ranges.
//!
//! Guarantees: every Relu, LeakyRelu, Gelu, Silu, Sigmoid and Tanh becomes a `Poly` node on
//! `[-B, B]`, `B = margin · max|x|` over the calibration data, with
//! the input scaling `x/B` recorded as the node's `in_scale` (folded into the producer by
//! `range-control`). Positively homogeneous functions use `f(x) = B·f(x/B)`: their polynomial
//! lives on `[-1, 1]` and the `×B` is the node's `out_scale` (merged, no level). Sign-based
//! functions use the composite minimax sign at precision 2^-α; smooth ones one minimax
//! polynomial of the policy's degree. A Clip with constant bounds (ReLU6, Hardtanh) becomes
//! `lo + ReLU(x − lo) − ReLU(x − hi)` with both ReLUs on one interval: two sign evaluations side
//! by side, at the levels of one ReLU. A nonlinearity pannc cannot approximate (a standalone
//! Erf, a Clip with data-dependent bounds) is an error naming the node.

use crate::analysis::RangeStats;
use crate::analysis::{activation_inputs, calibrate, intervals, is_activation};
use crate::context::Choice;
use crate::context::{ActivationReport, CalibError};
use crate::shaping;
use crate::util::unique_name;
use crate::{Context, Pass, PassError};
use pannc_approx::{
    approximate, approximate_with, Approximation, Budget, CustomWeight, Function, Method, Request,
    Shaping,
};
use pannc_ir::{DType, Graph, NodeId, Op, Poly, PolyCombine, PolyStage, Tensor, ValueId};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

pub struct Approximate;

/// Fitted approximations by a key naming every input of the fit (fits are deterministic, so
/// sharing them is safe), for the whole process: sweeps compile the same network many times.
fn fit_cache() -> &'static Mutex<HashMap<String, Approximation>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Approximation>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Smallest B: an activation whose calibrated inputs are all (near) zero still gets a
/// non-degenerate interval.
const MIN_BOUND: f64 = 1e-3;

/// Entries the fit cache holds before it starts over (bounds memory in long sweeps).
const CACHE_LIMIT: usize = 4096;

impl Pass for Approximate {
    fn name(&self) -> &'static str {
        "approximate"
    }
    fn summary(&self) -> &'static str {
        "replace every nonlinearity by a polynomial on its calibrated range (composite sign for ReLU-like, minimax for smooth)"
    }
    fn run(&self, g: &mut Graph, cx: &mut Context) -> Result<bool, PassError> {
        self.reject_unapproximable(g)?;
        let acts = activation_inputs(g);
        if acts.is_empty() {
            return Ok(false);
        }
        if cx.calib.is_empty() && cx.policy.input_range.is_none() {
            return Err(PassError::Graph {
                pass: self.name(),
                message: "calibration data (or a declared input range) is needed to choose each activation's range"
                    .into(),
            });
        }
        // A driver that compiles one backbone many times calibrates it once and hands the
        // ranges in (they depend only on the graph up to here and the data).
        let given = !cx.ranges.is_empty() && acts.iter().all(|v| cx.ranges.contains_key(v));
        if !cx.calib.is_empty() && !given {
            cx.ranges = calibrate(g, &cx.calib, &acts).map_err(|e| PassError::Graph {
                pass: self.name(),
                message: format!("calibration run failed: {e}"),
            })?;
        }
        let bounds = cx.policy.input_range.map(|r| intervals(g, r));
        let order = g.topo_order().map_err(|e| PassError::Graph {
            pass: self.name(),
            message: e.to_string(),
        })?;
        // Composite approximations on [-1, 1] depend only on (function, α): compute once per
        // process (sweeps compile the same network many times).
        let mut cache = fit_cache().lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = false;
        let mut interval_polys = 0usize;
        for id in order {
            let op = g.node(id).op.clone();
            if !is_activation(&op) {
                continue;
            }
            let x = g.node(id).inputs()[0];
            let stats = cx.ranges.get(&x).cloned();
            let interval = bounds.as_ref().and_then(|b| b.get(&x)).copied();
            if is_interval_op(&op) {
                if let Some(f) = crate::approximate_interval::interval_function(g, id)? {
                    let report = crate::approximate_interval::approximate_node(
                        g, id, f, stats, interval, cx, &mut cache,
                    )?;
                    cx.report.activations.push(report);
                    interval_polys += 1;
                    changed = true;
                }
                continue;
            }
            if let Some(kinks) = self.kinks(g, id, &op)? {
                let report = self.relu_pair(g, id, kinks, stats, interval, cx, &mut cache)?;
                cx.report.activations.push(report);
                changed = true;
                continue;
            }
            let bound = self.bound(g, id, stats.as_ref(), interval, cx.policy.margin, |a, b| {
                a.abs().max(b.abs())
            })?;
            let name = g.node(id).name.clone();
            let (mut poly, approx, method) =
                self.build(g, id, &op, bound, stats.as_ref(), cx, &mut cache)?;
            let mut shaped_flag = false;
            let mut max_error = None;
            if cx.policy.shape {
                if let Some(shaped) =
                    shaping::shape_relu(&poly, stats.as_ref(), cx.policy.negative_weight)
                {
                    max_error = shaping::max_error(&shaped, bound);
                    poly = shaped;
                    shaped_flag = true;
                }
            }
            let calib_error = stats
                .as_ref()
                .and_then(|s| shaping::calib_error(&poly, &s.sample));
            let y = g.node(id).outputs()[0];
            let poly_name = unique_name(g, format!("{name}.poly"));
            let p = g
                .add_simple(poly_name.clone(), Op::Poly(Box::new(poly.clone())), &[x])
                .map_err(|e| self.err(g, id, e))?;
            crate::util::replace_keeping_name(g, y, p).map_err(|e| self.err(g, id, e))?;
            g.remove_node(id);
            // Homogeneous activations' polynomials live on [-1, 1] and their error scales
            // with B.
            let homogeneous =
                !matches!(poly.combine, PolyCombine::Identity) || poly.function == "relu";
            cx.report.activations.push(ActivationReport {
                node: name,
                op: op.name().to_string(),
                calibrated: stats.map(|s| [s.min, s.max]),
                interval: interval.map(|(lo, hi)| [lo, hi]),
                bound,
                method: method.to_string(),
                degrees: approx.degrees.clone(),
                depth: poly.depth(),
                ct_mults: approx.ct_mults,
                max_error: max_error
                    .unwrap_or(approx.max_error * if homogeneous { bound } else { 1.0 }),
                domain: None,
                scale_folded: false,
                shaped: shaped_flag,
                calib_error,
                bias_correction: None,
                polys: vec![poly_name],
            });
            changed = true;
        }
        if interval_polys > 0 && cx.policy.shape {
            cx.report.notes.push(format!(
                "shape: not applied to the {interval_polys} exp/reciprocal/inverse-square-root polynomial(s) (positive or asymmetric intervals with no negative side to weight; fitted by relative-error minimax instead)"
            ));
        }
        Ok(changed)
    }
}

impl Approximate {
    /// The polynomial's bound B: `radius` of the calibrated range times the margin, else of
    /// the interval analysis' range; at least `MIN_BOUND`. `radius(a, b)` is how far the
    /// approximated function's interval must reach to cover `[a, b]`.
    fn bound(
        &self,
        g: &Graph,
        id: NodeId,
        stats: Option<&RangeStats>,
        interval: Option<(f64, f64)>,
        margin: f64,
        radius: impl Fn(f64, f64) -> f64,
    ) -> Result<f64, PassError> {
        let b = match (stats, interval) {
            (Some(s), _) => radius(s.min, s.max) * margin,
            (None, Some((a, b))) if a.is_finite() && b.is_finite() => radius(a, b),
            (None, Some(_)) => {
                return Err(self.err(
                    g,
                    id,
                    "interval analysis gives no finite bound here; give calibration data",
                ))
            }
            (None, None) => {
                return Err(self.err(g, id, "no calibrated range (empty calibration output)"))
            }
        };
        Ok(b.max(MIN_BOUND))
    }

    /// Ops that are neither linear, polynomial, nor handled here: a PANN cannot contain them.
    fn reject_unapproximable(&self, g: &Graph) -> Result<(), PassError> {
        for id in g.node_ids() {
            let node = g.node(id);
            let bad = match &node.op {
                Op::Div => g.constant(node.inputs()[1]).is_none(),
                op => op.is_nonlinear() && !is_activation(op),
            };
            if bad {
                let what = if matches!(node.op, Op::Div) {
                    "Div by a computed value".to_string()
                } else {
                    node.op.name().to_string()
                };
                return Err(self.err(g, id, format!("cannot approximate {what} (opset {}); a PANN may only hold linear layers and polynomials", g.opset)));
            }
        }
        Ok(())
    }

    fn err(&self, g: &Graph, id: NodeId, message: impl ToString) -> PassError {
        let n = g.node(id);
        PassError::Node {
            pass: self.name(),
            node: n.name.clone(),
            op: n.op.name(),
            message: message.to_string(),
        }
    }

    /// The kinks of a piecewise-linear activation built from ReLUs, or `None` for every other
    /// op: `Clip(x; lo, hi) = lo + ReLU(x − lo) − ReLU(x − hi)`, `Clip(x; lo) = lo + ReLU(x − lo)`,
    /// `Clip(x; −∞, hi) = hi − ReLU(hi − x)`.
    fn kinks(&self, g: &Graph, id: NodeId, op: &Op) -> Result<Option<Kinks>, PassError> {
        let hard_sigmoid = |a: f64, b: f64, tail: fn(f64) -> Tail| {
            if !(a > 0.0 && a.is_finite() && b.is_finite()) {
                return Err(self.err(
                    g,
                    id,
                    format!(
                        "HardSigmoid needs a positive finite alpha and a finite beta, got {a}, {b}"
                    ),
                ));
            }
            // clip(a·x + b, 0, 1) = a·(ReLU(x − lo) − ReLU(x − hi)), lo = −b/a, hi = (1 − b)/a.
            Ok(Some(Kinks {
                lo: Some(-b / a),
                hi: Some((1.0 - b) / a),
                tail: tail(a),
            }))
        };
        let (has_min, has_max) = match op {
            Op::Clip { has_min, has_max } => (has_min, has_max),
            Op::HardSigmoid { alpha, beta } => {
                return hard_sigmoid(*alpha as f64, *beta as f64, Tail::Scale)
            }
            Op::HardSwish => return hard_sigmoid(1.0 / 6.0, 0.5, Tail::TimesInput),
            _ => return Ok(None),
        };
        let bound_of = |k: usize| -> Result<f64, PassError> {
            let v = g.node(id).inputs()[k];
            let t = g
                .constant(v)
                .ok_or_else(|| self.err(g, id, "Clip bounds must be constants to approximate"))?;
            match t.to_f64_vec().first() {
                Some(b) if b.is_finite() => Ok(*b),
                Some(b) => Err(self.err(g, id, format!("Clip bound {b} is not finite"))),
                None => Err(self.err(g, id, "empty Clip bound")),
            }
        };
        let lo = has_min.then(|| bound_of(1)).transpose()?;
        let hi = has_max
            .then(|| bound_of(1 + *has_min as usize))
            .transpose()?;
        if let (Some(l), Some(h)) = (lo, hi) {
            if l >= h {
                return Err(self.err(g, id, format!("Clip needs min < max, got [{l}, {h}]")));
            }
        }
        if lo.is_none() && hi.is_none() {
            return Err(self.err(g, id, "Clip without bounds should have been removed"));
        }
        Ok(Some(Kinks {
            lo,
            hi,
            tail: Tail::Clip,
        }))
    }

    /// Replaces a Clip by ReLUs of `x − lo` and `x − hi` (see [`Self::kinks`]), every ReLU
    /// approximated on the same interval `[-B, B]` (so range control folds all scalings into
    /// the one producer of `x`) by the same composite as a plain ReLU at α: sign evaluations
    /// side by side, the levels of one ReLU.
    #[allow(clippy::too_many_arguments)]
    fn relu_pair(
        &self,
        g: &mut Graph,
        id: NodeId,
        kinks: Kinks,
        stats: Option<RangeStats>,
        interval: Option<(f64, f64)>,
        cx: &Context,
        cache: &mut HashMap<String, Approximation>,
    ) -> Result<ActivationReport, PassError> {
        let Kinks { lo, hi, tail } = kinks;
        let x = g.node(id).inputs()[0];
        let points: Vec<f64> = lo.into_iter().chain(hi).collect();
        let radius = |a: f64, b: f64| {
            points
                .iter()
                .map(|k| (a - k).abs().max((b - k).abs()))
                .fold(0.0, f64::max)
        };
        let bound = self.bound(g, id, stats.as_ref(), interval, cx.policy.margin, radius)?;
        let op = g.node(id).op.clone();
        let name = g.node(id).name.clone();
        // The branches see shifted inputs: a fit to this node's own distribution does not
        // apply, so a `fit` choice falls back to the uniform minimax of its degree.
        let (relu, approx, _) = self.build(g, id, &Op::Relu, bound, None, cx, cache)?;
        let dtype = g
            .value(x)
            .ty
            .as_ref()
            .map(|t| t.dtype)
            .unwrap_or(DType::F32);
        let mut polys = Vec::new();
        let mut shaped = false;
        // A branch approximates ReLU(x − k), or ReLU(k − x) when `flip`.
        let mut branch =
            |g: &mut Graph, k: f64, flip: bool, tag: &str| -> Result<(ValueId, Poly), PassError> {
                let mut poly = relu.clone();
                // HardSigmoid's and HardSwish's slope rides on the polynomials' output scale
                // (free), not on a separate multiplication before the product with x.
                if let Tail::Scale(a) | Tail::TimesInput(a) = tail {
                    poly.out_scale *= a;
                }
                if cx.policy.shape {
                    let st = stats.as_ref().map(|s| {
                        let d = s.shifted(k);
                        if flip {
                            d.negated()
                        } else {
                            d
                        }
                    });
                    if let Some(p) =
                        shaping::shape_relu(&poly, st.as_ref(), cx.policy.negative_weight)
                    {
                        poly = p;
                        shaped = true;
                    }
                }
                let c =
                    scalar(g, format!("{name}.{tag}"), k, dtype).map_err(|e| self.err(g, id, e))?;
                let sub_name = unique_name(g, format!("{name}.minus_{tag}"));
                let operands = if flip { [c, x] } else { [x, c] };
                let d = g
                    .add_simple(sub_name, Op::Sub, &operands)
                    .map_err(|e| self.err(g, id, e))?;
                let poly_name = unique_name(g, format!("{name}.poly_{tag}"));
                polys.push(poly_name.clone());
                let p = g
                    .add_simple(poly_name, Op::Poly(Box::new(poly.clone())), &[d])
                    .map_err(|e| self.err(g, id, e))?;
                Ok((p, poly))
            };
        // With a lower bound: lo + R(x − lo) − R(x − hi). Without: hi − R(hi − x), so that x
        // feeds polynomials only (range control folds their scaling into its producer).
        let low = lo.map(|l| branch(g, l, false, "lo")).transpose()?;
        let high = hi.map(|h| branch(g, h, lo.is_none(), "hi")).transpose()?;
        let add = |g: &mut Graph, op: Op, a: ValueId, b: ValueId, tag: &str| {
            let n = unique_name(g, format!("{name}.{tag}"));
            g.add_simple(n, op, &[a, b]).map_err(|e| self.err(g, id, e))
        };
        // The tail: lo + R(x − lo) − R(x − hi), lo + R(x − lo) or hi − R(hi − x) for a Clip;
        // a·(R(x − lo) − R(x − hi)) for HardSigmoid; x times that for HardSwish.
        let y = match (&low, &high, lo) {
            (Some((p_lo, _)), Some((p_hi, _)), Some(_)) if tail != Tail::Clip => {
                let d = add(g, Op::Sub, *p_lo, *p_hi, "relu_diff")?;
                if matches!(tail, Tail::TimesInput(_)) {
                    add(g, Op::Mul, x, d, "times_input")?
                } else {
                    d
                }
            }
            (Some((p_lo, _)), Some((p_hi, _)), Some(l)) => {
                let d = add(g, Op::Sub, *p_lo, *p_hi, "relu_diff")?;
                if l == 0.0 {
                    d
                } else {
                    let c = scalar(g, format!("{name}.lo_out"), l, dtype)
                        .map_err(|e| self.err(g, id, e))?;
                    add(g, Op::Add, d, c, "shift")?
                }
            }
            (Some((p_lo, _)), None, Some(0.0)) => *p_lo,
            (Some((p_lo, _)), None, Some(l)) => {
                let c = scalar(g, format!("{name}.lo_out"), l, dtype)
                    .map_err(|e| self.err(g, id, e))?;
                add(g, Op::Add, *p_lo, c, "shift")?
            }
            (None, Some((p_hi, _)), _) => {
                let h = hi.unwrap_or(0.0);
                let c = scalar(g, format!("{name}.hi_out"), h, dtype)
                    .map_err(|e| self.err(g, id, e))?;
                add(g, Op::Sub, c, *p_hi, "cap")?
            }
            _ => unreachable!("kinks has at least one bound"),
        };
        let old = g.node(id).outputs()[0];
        crate::util::replace_keeping_name(g, old, y).map_err(|e| self.err(g, id, e))?;
        g.remove_node(id);
        // Measured error of the whole activation where every polynomial is valid (x − k
        // within [-B, B] for each kink k).
        // The PANN's activation and the exact one, in the activation's own terms.
        let f = |v: f64| {
            let r_lo = low
                .as_ref()
                .map_or(0.0, |(_, p)| p.eval(v - lo.unwrap_or(0.0)));
            let r_hi = high
                .as_ref()
                .map_or(0.0, |(_, p)| p.eval(v - hi.unwrap_or(0.0)));
            match (tail, lo, hi) {
                (Tail::Scale(_), _, _) => r_lo - r_hi,
                (Tail::TimesInput(_), _, _) => v * (r_lo - r_hi),
                (Tail::Clip, Some(l), _) => l + r_lo - r_hi,
                (Tail::Clip, None, Some(h)) => {
                    h - high.as_ref().map_or(0.0, |(_, p)| p.eval(h - v))
                }
                (Tail::Clip, None, None) => v,
            }
        };
        let exact = |v: f64| {
            let c = v
                .max(lo.unwrap_or(f64::NEG_INFINITY))
                .min(hi.unwrap_or(f64::INFINITY));
            let l = lo.unwrap_or(0.0);
            match tail {
                Tail::Clip => c,
                Tail::Scale(a) => a * (c - l),
                Tail::TimesInput(a) => v * a * (c - l),
            }
        };
        let a = points
            .iter()
            .fold(f64::NEG_INFINITY, |m, &k| m.max(k - bound));
        let b = points.iter().fold(f64::INFINITY, |m, &k| m.min(k + bound));
        let n = 1 << 14;
        let max_error = (0..=n)
            .map(|i| a + (b - a) * i as f64 / n as f64)
            .map(|v| (f(v) - exact(v)).abs())
            .fold(0.0, f64::max);
        let calib_error = stats.as_ref().map(|s| {
            let (mut abs, mut neg, mut nn, mut pos, mut np) = (0.0, 0.0, 0usize, 0.0, 0usize);
            for &v in &s.sample {
                let e = f(v) - exact(v);
                abs += e.abs();
                if v < 0.0 {
                    neg += e;
                    nn += 1;
                } else {
                    pos += e;
                    np += 1;
                }
            }
            CalibError {
                mean_abs: abs / s.sample.len().max(1) as f64,
                mean_negative: neg / nn.max(1) as f64,
                mean_positive: pos / np.max(1) as f64,
            }
        });
        Ok(ActivationReport {
            node: name,
            op: op.name().to_string(),
            calibrated: stats.map(|s| [s.min, s.max]),
            interval: interval.map(|(a, b)| [a, b]),
            bound,
            domain: None,
            method: format!("composite relu ×{}", points.len()),
            degrees: approx.degrees.clone(),
            // HardSwish multiplies by its input: one more level and ct×ct product.
            depth: relu.depth() + usize::from(matches!(tail, Tail::TimesInput(_))),
            ct_mults: points.len() as u32 * approx.ct_mults
                + u32::from(matches!(tail, Tail::TimesInput(_))),
            max_error,
            scale_folded: false,
            shaped,
            calib_error,
            bias_correction: None,
            polys,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        g: &Graph,
        id: NodeId,
        op: &Op,
        bound: f64,
        stats: Option<&RangeStats>,
        cx: &Context,
        cache: &mut HashMap<String, Approximation>,
    ) -> Result<(Poly, Approximation, &'static str), PassError> {
        let name = &g.node(id).name;
        let override_ = cx.policy.overrides.get(name).copied();
        let choice = cx
            .policy
            .choices
            .get(name)
            .copied()
            .or(cx.policy.relu.filter(|_| override_.is_none()));
        let alpha = match choice {
            Some(Choice::Composite { alpha }) => alpha,
            _ => override_.unwrap_or(cx.policy.alpha),
        };
        let degree = override_.map(|d| d as usize).unwrap_or(cx.policy.degree);
        // Identical fits (same function, interval, precision and shaping) are computed once:
        // every ReLU at one α shares its composite, and smooth fits repeat across the
        // compilations of a sweep.
        let cache = std::cell::RefCell::new(cache);
        let fit = |key: String,
                   f: Function,
                   method: Method,
                   budget: Budget,
                   domain: (f64, f64),
                   shaping: Shaping|
         -> Result<Approximation, PassError> {
            if let Some(a) = cache.borrow().get(&key) {
                return Ok(a.clone());
            }
            let a =
                approximate(f, method, budget, domain, shaping).map_err(|e| self.err(g, id, e))?;
            let mut cache = cache.borrow_mut();
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, a.clone());
            Ok(a)
        };
        let composite = |f: Function, key: String| -> Result<Approximation, PassError> {
            fit(
                key,
                f,
                Method::Composite,
                Budget::Alpha(alpha),
                (-1.0, 1.0),
                Shaping::default(),
            )
        };
        let stages = |a: &Approximation, lo: f64, hi: f64| -> Vec<PolyStage> {
            // A stage on [-B, B] at y equals the same coefficients on [-1, 1] at y/B.
            a.stages
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let (l, h) = if i == 0 {
                        (lo, hi)
                    } else {
                        (s.domain[0], s.domain[1])
                    };
                    PolyStage {
                        lo: l,
                        hi: h,
                        coeffs: s.coefficients.clone(),
                    }
                })
                .collect()
        };
        let homogeneous = |a: &Approximation, combine: PolyCombine, function: &str| Poly {
            function: function.to_string(),
            in_scale: 1.0 / bound,
            out_scale: bound,
            stages: stages(a, a.stages[0].domain[0], a.stages[0].domain[1]),
            combine,
        };
        let smooth = |f: Function,
                      function: &str|
         -> Result<(Poly, Approximation, &'static str), PassError> {
            let shaping = if cx.policy.shape {
                Shaping {
                    negative_weight: cx.policy.negative_weight,
                    ..Shaping::default()
                }
            } else {
                Shaping::default()
            };
            // The key holds the exact bits of every input of the fit.
            let key = format!(
                "{function}/minimax/{degree}/{:x}/{:x}/{}",
                bound.to_bits(),
                shaping.negative_weight.to_bits(),
                cx.policy.shape
            );
            let a = fit(
                key,
                f,
                Method::Minimax,
                Budget::Degree(degree),
                (-bound, bound),
                shaping,
            )?;
            let p = Poly {
                function: function.to_string(),
                in_scale: 1.0 / bound,
                out_scale: 1.0,
                stages: stages(&a, -1.0, 1.0),
                combine: PolyCombine::Identity,
            };
            Ok((p, a, "minimax"))
        };
        // A single polynomial standing for ReLU itself on [-1, 1] (homogeneous: ×B out).
        let single_relu = |a: &Approximation| Poly {
            function: "relu".to_string(),
            in_scale: 1.0 / bound,
            out_scale: bound,
            stages: stages(a, -1.0, 1.0),
            combine: PolyCombine::Identity,
        };
        match (op, choice) {
            (Op::Relu, Some(Choice::Minimax { degree }))
            | (Op::Relu, Some(Choice::Fitted { degree })) => {
                let density = match (choice, stats) {
                    (Some(Choice::Fitted { .. }), Some(s)) if !s.sample.is_empty() => {
                        Some(Density::of(&s.sample, bound))
                    }
                    _ => None,
                };
                let a = match &density {
                    None => fit(
                        format!("relu/minimax/{degree}"),
                        Function::Relu,
                        Method::Minimax,
                        Budget::Degree(degree),
                        (-1.0, 1.0),
                        Shaping::default(),
                    )?,
                    Some(dens) => {
                        // Keyed by the exact bits of the weight.
                        let key = format!("relu/weighted/{degree}/{:x}", dens.fingerprint());
                        let hit = cache.borrow().get(&key).cloned();
                        if let Some(a) = hit {
                            a
                        } else {
                            let w = |x: f64| dens.at(x);
                            let a = approximate_with(&Request {
                                function: Function::Relu,
                                method: Method::Minimax,
                                budget: Budget::Degree(degree),
                                domain: (-1.0, 1.0),
                                shaping: Shaping::default(),
                                samples: None,
                                sign_gap: None,
                                weight: Some(CustomWeight { w: &w, even: true }),
                            })
                            .map_err(|e| self.err(g, id, e))?;
                            let mut c = cache.borrow_mut();
                            if c.len() >= CACHE_LIMIT {
                                c.clear();
                            }
                            c.insert(key, a.clone());
                            a
                        }
                    }
                };
                let method = if density.is_some() { "fit" } else { "minimax" };
                Ok((single_relu(&a), a, method))
            }
            (Op::Relu, _) => {
                let a = composite(Function::Relu, format!("relu/{alpha}"))?;
                Ok((homogeneous(&a, PolyCombine::Relu, "relu"), a, "composite"))
            }
            (Op::LeakyRelu { alpha: slope }, _) => {
                let slope = *slope as f64;
                let a = composite(
                    Function::LeakyRelu { slope },
                    format!("leaky/{slope}/{alpha}"),
                )?;
                Ok((
                    homogeneous(&a, PolyCombine::LeakyRelu { slope }, "leaky_relu"),
                    a,
                    "composite",
                ))
            }
            (Op::Gelu { tanh: false }, _) => smooth(Function::Gelu, "gelu"),
            (Op::Gelu { tanh: true }, _) => Err(self.err(
                g,
                id,
                "tanh-approximated GELU is not supported; export with approximate='none'",
            )),
            (Op::Silu, _) => smooth(Function::Silu, "silu"),
            (Op::Sigmoid, _) => smooth(Function::Sigmoid, "sigmoid"),
            (Op::Tanh, _) => smooth(Function::Tanh, "tanh"),
            _ => Err(self.err(
                g,
                id,
                format!(
                    "pannc cannot approximate {} (node '{name}', opset {})",
                    op.name(),
                    g.opset
                ),
            )),
        }
    }
}

/// How much more a [`Choice::Fitted`] polynomial weighs errors where the calibrated inputs
/// are densest than where there are none.
const FIT_EMPHASIS: f64 = 2.0;
/// Bins of the density of `|x|/B` over `[0, 1]`.
const DENSITY_BINS: usize = 64;

/// The weight of a [`Choice::Fitted`] minimax fit on `[-1, 1]`: `1 + FIT_EMPHASIS·h(|x|)`,
/// `h` the histogram of an activation's calibrated `|x|/B` (smoothed over three bins, scaled
/// to peak 1, interpolated linearly between bin centres). Even and at least 1, so the fit keeps
/// ReLU's parity structure (the ct×ct count of the plain minimax) and its error stays below
/// the weighted level everywhere, while shrinking where the inputs crowd.
struct Density {
    h: Vec<f64>,
}

impl Density {
    fn of(sample: &[f64], bound: f64) -> Density {
        let mut raw = vec![0.0f64; DENSITY_BINS];
        for &x in sample {
            let u = (x.abs() / bound).min(1.0);
            raw[((u * DENSITY_BINS as f64) as usize).min(DENSITY_BINS - 1)] += 1.0;
        }
        let smooth: Vec<f64> = (0..DENSITY_BINS)
            .map(|i| {
                let lo = i.saturating_sub(1);
                let hi = (i + 1).min(DENSITY_BINS - 1);
                raw[lo..=hi].iter().sum::<f64>() / (hi - lo + 1) as f64
            })
            .collect();
        let peak = smooth
            .iter()
            .cloned()
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE);
        Density {
            h: smooth.iter().map(|v| v / peak).collect(),
        }
    }

    fn at(&self, x: f64) -> f64 {
        let u = x.abs().min(1.0) * DENSITY_BINS as f64 - 0.5;
        let i = (u.floor().max(0.0) as usize).min(DENSITY_BINS - 1);
        let j = (i + 1).min(DENSITY_BINS - 1);
        let t = (u - i as f64).clamp(0.0, 1.0);
        1.0 + FIT_EMPHASIS * (self.h[i] * (1.0 - t) + self.h[j] * t)
    }

    /// A 64-bit FNV-1a hash of the histogram's bits (a cache key).
    fn fingerprint(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for v in &self.h {
            for b in v.to_bits().to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }
}

/// Exp and the powers: approximated on asymmetric intervals (`approximate_interval`).
fn is_interval_op(op: &Op) -> bool {
    matches!(op, Op::Exp | Op::Reciprocal | Op::Sqrt | Op::Pow)
}

/// The kinks of a piecewise-linear activation: where its ReLUs bend, and what follows them.
#[derive(Copy, Clone, Debug)]
struct Kinks {
    lo: Option<f64>,
    hi: Option<f64>,
    tail: Tail,
}

/// What turns the ReLUs into the activation.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Tail {
    /// Clip (ReLU6, Hardtanh): `lo + R(x − lo) − R(x − hi)` and the one-sided forms.
    Clip,
    /// HardSigmoid: `a·(R(x − lo) − R(x − hi))`.
    Scale(f64),
    /// HardSwish: `x·a·(R(x − lo) − R(x − hi))`, one ct×ct product more.
    TimesInput(f64),
}

/// A scalar constant of `dtype` named after `base`.
fn scalar(g: &mut Graph, base: String, v: f64, dtype: DType) -> Result<ValueId, String> {
    let t = Tensor::from_f64(&[], vec![v]).ok_or("scalar")?.cast(dtype);
    let name = unique_name(g, base);
    g.add_constant(name, t).map_err(|e| e.to_string())
}
