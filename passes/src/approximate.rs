//! Replacement of nonlinearities by polynomials on calibrated ranges.
//!
//! Guarantees: every Relu, LeakyRelu, Clip (constant bounds), Gelu, Silu, Sigmoid and Tanh
//! becomes a `Poly` node on `[-B, B]`, `B = margin · max|x|` over the calibration data, with
//! the input scaling `x/B` recorded as the node's `in_scale` (folded into the producer by
//! `range-control`). Positively homogeneous functions use `f(x) = B·f(x/B)`: their polynomial
//! lives on `[-1, 1]` and the `×B` is the node's `out_scale` (merged, no level). Sign-based
//! functions use the composite minimax sign at precision 2^-α; smooth ones one minimax
//! polynomial of the policy's degree. A nonlinearity pannc cannot approximate (a standalone
//! Erf, a Clip with data-dependent bounds) is an error naming the node.

use crate::analysis::{activation_inputs, calibrate, intervals, is_activation};
use crate::context::ActivationReport;
use crate::shaping;
use crate::{Context, Pass, PassError};
use pannc_approx::{approximate, Approximation, Budget, Function, Method, Shaping};
use pannc_ir::{Graph, NodeId, Op, Poly, PolyCombine, PolyStage};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

pub struct Approximate;

/// Composite approximations by `function/α` key (deterministic, so sharing them is safe).
fn composite_cache() -> &'static Mutex<HashMap<String, Approximation>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Approximation>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Smallest B: an activation whose calibrated inputs are all (near) zero still gets a
/// non-degenerate interval.
const MIN_BOUND: f64 = 1e-3;

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
        if !cx.calib.is_empty() {
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
        let mut cache = composite_cache().lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = false;
        for id in order {
            let op = g.node(id).op.clone();
            if !is_activation(&op) {
                continue;
            }
            let x = g.node(id).inputs()[0];
            let stats = cx.ranges.get(&x).cloned();
            let interval = bounds.as_ref().and_then(|b| b.get(&x)).copied();
            let bound = match (&stats, interval) {
                (Some(s), _) => s.abs_max() * cx.policy.margin,
                (None, Some((lo, hi))) if lo.is_finite() && hi.is_finite() => {
                    lo.abs().max(hi.abs())
                }
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
            }
            .max(MIN_BOUND);
            let name = g.node(id).name.clone();
            let (mut poly, approx, method) = self.build(g, id, &op, bound, cx, &mut cache)?;
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
            let p = g
                .add_simple(
                    format!("{name}.poly"),
                    Op::Poly(Box::new(poly.clone())),
                    &[x],
                )
                .map_err(|e| self.err(g, id, e))?;
            crate::util::replace_keeping_name(g, y, p).map_err(|e| self.err(g, id, e))?;
            g.remove_node(id);
            // Sign-based combines are the homogeneous ones: their polynomial lives on [-1, 1]
            // and its error scales with B.
            let homogeneous = !matches!(poly.combine, PolyCombine::Identity);
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
                scale_folded: false,
                shaped: shaped_flag,
                calib_error,
                bias_correction: None,
            });
            changed = true;
        }
        Ok(changed)
    }
}

impl Approximate {
    /// Ops that are neither linear, polynomial, nor handled here: a PANN cannot contain them.
    fn reject_unapproximable(&self, g: &Graph) -> Result<(), PassError> {
        for id in g.node_ids() {
            let node = g.node(id);
            let bad = match &node.op {
                Op::Lrn { .. } | Op::Softmax { .. } | Op::MaxPool { .. } => true,
                Op::Div => g.constant(node.inputs()[1]).is_none(),
                _ => false,
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

    fn build(
        &self,
        g: &Graph,
        id: NodeId,
        op: &Op,
        bound: f64,
        cx: &Context,
        cache: &mut HashMap<String, Approximation>,
    ) -> Result<(Poly, Approximation, &'static str), PassError> {
        let name = &g.node(id).name;
        let override_ = cx.policy.overrides.get(name).copied();
        let alpha = override_.unwrap_or(cx.policy.alpha);
        let degree = override_.map(|d| d as usize).unwrap_or(cx.policy.degree);
        let mut composite = |f: Function, key: String| -> Result<Approximation, PassError> {
            if let Some(a) = cache.get(&key) {
                return Ok(a.clone());
            }
            let a = approximate(
                f,
                Method::Composite,
                Budget::Alpha(alpha),
                (-1.0, 1.0),
                Shaping::default(),
            )
            .map_err(|e| self.err(g, id, e))?;
            cache.insert(key, a.clone());
            Ok(a)
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
            let a = approximate(
                f,
                Method::Minimax,
                Budget::Degree(degree),
                (-bound, bound),
                shaping,
            )
            .map_err(|e| self.err(g, id, e))?;
            let p = Poly {
                function: function.to_string(),
                in_scale: 1.0 / bound,
                out_scale: 1.0,
                stages: stages(&a, -1.0, 1.0),
                combine: PolyCombine::Identity,
            };
            Ok((p, a, "minimax"))
        };
        match op {
            Op::Relu => {
                let a = composite(Function::Relu, format!("relu/{alpha}"))?;
                Ok((homogeneous(&a, PolyCombine::Relu, "relu"), a, "composite"))
            }
            Op::LeakyRelu { alpha: slope } => {
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
            Op::Clip { has_min, has_max } => {
                let bound_of = |k: usize, default: f64| -> Result<f64, PassError> {
                    let v = g.node(id).inputs()[k];
                    let t = g.constant(v).ok_or_else(|| {
                        self.err(g, id, "Clip bounds must be constants to approximate")
                    })?;
                    Ok(t.to_f64_vec().first().copied().unwrap_or(default))
                };
                let lo = if *has_min {
                    bound_of(1, f64::NEG_INFINITY)?
                } else {
                    f64::NEG_INFINITY
                };
                let hi = if *has_max {
                    bound_of(1 + *has_min as usize, f64::INFINITY)?
                } else {
                    f64::INFINITY
                };
                if lo == f64::NEG_INFINITY && hi == f64::INFINITY {
                    return Err(self.err(g, id, "Clip without bounds should have been removed"));
                }
                if !(lo.is_finite() && hi.is_finite()) {
                    return Err(self.err(
                        g,
                        id,
                        "one-sided Clip other than ReLU is not supported; give both bounds",
                    ));
                }
                let (l, h) = (lo / bound, hi / bound);
                let a = approximate(
                    Function::Clip { lo: l, hi: h },
                    Method::Composite,
                    Budget::Alpha(alpha),
                    (-1.0, 1.0),
                    Shaping::default(),
                )
                .map_err(|e| self.err(g, id, e))?;
                Ok((
                    homogeneous(&a, PolyCombine::Clip { lo: l, hi: h }, "clip"),
                    a,
                    "composite",
                ))
            }
            Op::Gelu { tanh: false } => smooth(Function::Gelu, "gelu"),
            Op::Gelu { tanh: true } => Err(self.err(
                g,
                id,
                "tanh-approximated GELU is not supported; export with approximate='none'",
            )),
            Op::Silu => smooth(Function::Silu, "silu"),
            Op::Sigmoid => smooth(Function::Sigmoid, "sigmoid"),
            Op::Tanh => smooth(Function::Tanh, "tanh"),
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
