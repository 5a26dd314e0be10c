//! Sensitivity analysis: which activations, and which side of their inputs, an approximation
//! error hurts, with the PANN's own error and bootstrap intervals.
//!
//! The backbone (exact activations) is run with an error added to activation outputs:
//!
//! - [`Noise::PannError`]: the error `p(x) − f(x)` of the polynomial `p` that pannc compiles for
//!   that activation at precision α (with the chosen techniques), evaluated on the input `x`
//!   the activation sees. Injected in every activation at once on both sides, this *is* the
//!   PANN (up to rounding), which [`SensitivityReport::pann_top1`] measures independently;
//!   restricted to the negative (or positive) inputs, it answers "how much of the PANN's loss
//!   comes from the error on negative inputs".
//! - [`Noise::Uniform`]: zero-mean noise in `[-a, a]`, `a = 2^-α·B` (a hash of the value, so
//!   runs are reproducible).
//! - [`Noise::Constant`]: `sign·a` on every touched input (one-signed, like a composite ReLU's
//!   error near its transition).
//!
//! Each figure comes with a 95% percentile-bootstrap interval over the test images
//! ([`bootstrap`]): top-1 resamples the images; the drop resamples them *paired* (the same
//! images for backbone and perturbed run), so it is much tighter than the difference of two
//! top-1 intervals.

use crate::{deviation, run_chunked, Lab, LabError, Noise, Side, Techniques};
use pannc_driver::predictions;
use pannc_interp::Hook;
use pannc_ir::{Graph, NodeId, Op, Poly, Tensor};
use pannc_passes::analysis::{activation_inputs, calibrate};
use pannc_passes::shaping::exact;
use pannc_passes::{Context, Pipeline, Policy, Report};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

/// Confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// Seed of the bootstrap resampling (fixed: intervals are reproducible).
const BOOTSTRAP_SEED: u64 = 0x5EED_B007;

/// Whether the perturbation goes into every activation at once or one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layers {
    /// Every activation at once (one row per side).
    All,
    /// One activation at a time (one row per activation and side).
    Each,
}

/// What to run: see the module doc.
#[derive(Clone, Debug)]
pub struct SensitivityOptions {
    pub alpha: u32,
    /// Safety margin on calibrated ranges (`B = margin · max|x|`), as in compile.
    pub margin: f64,
    pub noise: Noise,
    /// Sign of [`Noise::Constant`]: `+1.0` or `-1.0`.
    pub sign: f64,
    pub sides: Vec<Side>,
    pub layers: Layers,
    /// Techniques of the compiled polynomials ([`Noise::PannError`] only; `shape` or none:
    /// bias correction moves part of the error into the next layer's bias, so it is not an
    /// activation's own error; `alloc` is refused too).
    pub techniques: Techniques,
    /// Base policy (degree of smooth activations; α, margin and techniques are set from the
    /// fields above).
    pub base: Policy,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
}

impl SensitivityOptions {
    /// The defaults of `pannc sensitivity` for `noise`.
    pub fn new(alpha: u32, noise: Noise) -> SensitivityOptions {
        let pann = noise == Noise::PannError;
        SensitivityOptions {
            alpha,
            margin: 1.3,
            noise,
            sign: -1.0,
            sides: if pann {
                vec![Side::Negative, Side::Positive, Side::Both]
            } else {
                vec![Side::Negative, Side::Positive]
            },
            layers: if pann { Layers::All } else { Layers::Each },
            techniques: Techniques::default(),
            base: Policy::default(),
            resamples: 1000,
        }
    }
}

/// Statistics of an error `e` over a set of activation inputs.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ErrorStats {
    pub count: usize,
    /// Values with `|e| >` [`WILD`] (or NaN): in `max_abs`, not in the means (which are over
    /// the other `count − wild` values).
    pub wild: usize,
    /// Mean of `e`.
    pub mean: f64,
    /// Mean of `|e|`.
    pub mean_abs: f64,
    /// `sqrt(mean(e²))`.
    pub rms: f64,
    pub max_abs: f64,
}

/// Fixed-point scale of [`Acc`]'s sums: exact integer sums are independent of the order in
/// which the interpreter's threads report their parts.
const FIXED: f64 = (1u64 << 40) as f64;

/// Errors larger than this (in the activation's units) are counted as [`ErrorStats::wild`]
/// and kept out of the sums: a polynomial evaluated outside its interval `[-B, B]` grows
/// without bound (10^35 has been seen), and one such value would swamp every mean.
pub const WILD: f64 = 1024.0;

#[derive(Clone, Debug, Default)]
struct Acc {
    n: usize,
    wild: usize,
    sum: i128,
    sum_abs: i128,
    sum_sq: i128,
    max: f64,
}

impl Acc {
    fn add(&mut self, e: f64) {
        self.n += 1;
        let a = if e.is_nan() { f64::INFINITY } else { e.abs() };
        self.max = self.max.max(a);
        if a > WILD {
            self.wild += 1;
            return;
        }
        let fixed = |v: f64| (v * FIXED).round() as i128;
        self.sum += fixed(e);
        self.sum_abs += fixed(a);
        self.sum_sq += fixed(e * e);
    }
    fn merge(&mut self, a: &Acc) {
        self.n += a.n;
        self.wild += a.wild;
        self.sum += a.sum;
        self.sum_abs += a.sum_abs;
        self.sum_sq += a.sum_sq;
        self.max = self.max.max(a.max);
    }
    fn stats(&self) -> ErrorStats {
        let n = (self.n - self.wild).max(1) as f64;
        let real = |v: i128| v as f64 / FIXED;
        ErrorStats {
            count: self.n,
            wild: self.wild,
            mean: real(self.sum) / n,
            mean_abs: real(self.sum_abs) / n,
            rms: (real(self.sum_sq) / n).sqrt(),
            max_abs: self.max,
        }
    }
}

/// An error's statistics on an activation's negative inputs, non-negative inputs, and all.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SideErrors {
    pub negative: ErrorStats,
    pub positive: ErrorStats,
    pub both: ErrorStats,
}

impl SideErrors {
    pub fn get(&self, side: Side) -> &ErrorStats {
        match side {
            Side::Negative => &self.negative,
            Side::Positive => &self.positive,
            Side::Both => &self.both,
        }
    }
}

/// One activation of the backbone.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ActivationInfo {
    pub node: String,
    /// Share of its inputs that are negative, over the calibration data and over the test data
    /// (backbone, unperturbed).
    pub negative_share_calib: f64,
    pub negative_share_test: f64,
    /// `B = margin · max|x|` over the calibration data.
    pub bound: f64,
    /// `2^-α·B`: the size of [`Noise::Uniform`] / [`Noise::Constant`].
    pub amplitude: f64,
    /// [`Noise::PannError`]: max |p − f| on `[-B, B]` as compiled (the report's `max_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_error: Option<f64>,
    /// [`Noise::PannError`]: the PANN's own error `p(x) − f(x)` at this activation, measured
    /// in the compiled PANN on the test data (its inputs carry the upstream errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pann_error: Option<SideErrors>,
}

/// The injected error at one activation during one run, on the inputs it touched.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Injected {
    pub node: String,
    #[serde(flatten)]
    pub stats: ErrorStats,
}

/// Damage from one perturbation (one activation or all, one side).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SensitivityRow {
    /// The perturbed activation, or `all`.
    pub node: String,
    pub side: Side,
    /// Share of the perturbed activations' calibrated inputs on that side.
    pub fraction: f64,
    /// `2^-α·B` ([`Noise::Uniform`] / [`Noise::Constant`], one activation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amplitude: Option<f64>,
    pub top1: f64,
    /// 95% bootstrap interval of `top1`.
    pub top1_ci: [f64; 2],
    /// Backbone top-1 minus perturbed top-1 (fraction).
    pub drop: f64,
    /// 95% paired-bootstrap interval of `drop`.
    pub drop_ci: [f64; 2],
    pub logit_dev_max: f64,
    pub logit_dev_mean: f64,
    /// The error actually injected, per perturbed activation ([`Noise::PannError`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub injected: Vec<Injected>,
}

/// Everything [`Lab::sensitivity_report`] measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SensitivityReport {
    pub samples: usize,
    pub alpha: u32,
    pub margin: f64,
    pub noise: Noise,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign: Option<f64>,
    pub layers: Layers,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub techniques: Option<String>,
    pub confidence: f64,
    pub resamples: usize,
    pub backbone_top1: f64,
    pub backbone_top1_ci: [f64; 2],
    /// [`Noise::PannError`]: the compiled PANN's own top-1 and drop, simulated on the same data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pann_top1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pann_top1_ci: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pann_drop_ci: Option<[f64; 2]>,
    /// [`Noise::PannError`]: polynomials of the PANN that stand for no activation of the
    /// backbone (for example the ReLUs of a lowered MaxPool) and so get no injected error: when
    /// this is not empty, injecting in every activation is not the whole PANN.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_injected: Vec<String>,
    pub activations: Vec<ActivationInfo>,
    pub rows: Vec<SensitivityRow>,
}

/// Per-sample correctness of `logits` against `labels` (non-finite rows are wrong).
pub fn correct(logits: &Tensor, labels: &[i64]) -> Vec<bool> {
    predictions(logits)
        .iter()
        .zip(labels)
        .map(|(p, &l)| p.is_some_and(|p| p as i64 == l))
        .collect()
}

/// 95% percentile-bootstrap intervals over samples: of the accuracy of `correct`, and (paired:
/// the same resampled samples) of `accuracy(reference) − accuracy(correct)`. Deterministic
/// (fixed seed); `resamples` ≥ 1.
pub fn bootstrap(correct: &[bool], reference: &[bool], resamples: usize) -> ([f64; 2], [f64; 2]) {
    let n = correct.len().min(reference.len());
    if n == 0 || resamples == 0 {
        return ([0.0; 2], [0.0; 2]);
    }
    let mut state = BOOTSTRAP_SEED;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut acc = Vec::with_capacity(resamples);
    let mut diff = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let (mut a, mut r) = (0usize, 0usize);
        for _ in 0..n {
            // Multiply-shift: an unbiased-enough index in [0, n) without division.
            let i = (((next() >> 32) * n as u64) >> 32) as usize;
            a += correct[i] as usize;
            r += reference[i] as usize;
        }
        acc.push(a as f64 / n as f64);
        diff.push((r as f64 - a as f64) / n as f64);
    }
    (percentiles(acc), percentiles(diff))
}

fn percentiles(mut v: Vec<f64>) -> [f64; 2] {
    v.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    let k = v.len();
    let lo = ((k as f64 * tail).floor() as usize).min(k - 1);
    let hi = ((k as f64 * (1.0 - tail)).ceil() as usize)
        .saturating_sub(1)
        .min(k - 1);
    [v[lo], v[hi]]
}

/// What a hook injects at one activation.
#[derive(Clone)]
enum Inject {
    /// Add `p(x) − f(x)`.
    Poly(Poly),
    /// Uniform / constant noise of this amplitude, with a per-run seed.
    Noise { amplitude: f64, seed: u64 },
}

fn touches(side: Side, x: f64) -> bool {
    match side {
        Side::Negative => x < 0.0,
        Side::Positive => x >= 0.0,
        Side::Both => true,
    }
}

impl Lab {
    /// 95% bootstrap interval of the backbone's top-1 on the data.
    pub fn backbone_top1_ci(&self, resamples: usize) -> [f64; 2] {
        let ok = correct(&self.logits, &self.labels);
        bootstrap(&ok, &ok, resamples).0
    }

    /// Compiles the backbone like `pannc compile` but stops before `range-control`, so each
    /// `Poly` still takes the activation's own input (`in_scale = 1/B`): the same function
    /// as the PANN up to rounding, and each polynomial can be evaluated on backbone values.
    fn compile_unscaled(&self, policy: Policy) -> Result<(Graph, Report), LabError> {
        let mut g = self.backbone.clone();
        let mut cx = Context {
            calib: self.calib.clone(),
            policy,
            ..Default::default()
        };
        Pipeline::pann_unscaled().run_with(&mut g, &mut cx, |_, _| {})?;
        Ok((g, cx.report))
    }

    /// Runs the perturbations of `opt` (see the module doc). `progress` hears each run.
    pub fn sensitivity_report(
        &self,
        opt: &SensitivityOptions,
        progress: &mut dyn FnMut(&str),
    ) -> Result<SensitivityReport, LabError> {
        let pann = opt.noise == Noise::PannError;
        if pann && (opt.techniques.bias || opt.techniques.alloc) {
            return Err(LabError::Request(format!(
                "--noise pann-error injects each polynomial's own error p(x) − f(x); technique '{}' is not an activation's own error (use baseline or shape)",
                opt.techniques.name()
            )));
        }
        if opt.sides.is_empty() {
            return Err(LabError::Request("no side to perturb".into()));
        }
        if opt.resamples == 0 {
            return Err(LabError::Request(
                "bootstrap needs at least 1 resample".into(),
            ));
        }
        let g = &self.backbone;
        let acts = self.activations()?;
        let xs = activation_inputs(g);
        let calib_ranges = calibrate(g, &self.calib, &xs)?;
        let test_ranges = calibrate(g, &self.data, &xs)?;
        let eps = 2f64.powi(-(opt.alpha as i32));
        let reference = correct(&self.logits, &self.labels);
        let (backbone_ci, _) = bootstrap(&reference, &reference, opt.resamples);

        // The compiled polynomials and the PANN's own error, measured in the PANN.
        let mut polys: BTreeMap<String, (Poly, f64)> = BTreeMap::new();
        let mut pann_errors: BTreeMap<String, SideErrors> = BTreeMap::new();
        let mut pann_fig = None;
        let mut not_injected = Vec::new();
        if pann {
            progress("compile and simulate the PANN");
            let policy = Policy {
                margin: opt.margin,
                ..opt.techniques.policy(&opt.base, opt.alpha)
            };
            let (pg, report) = self.compile_unscaled(policy)?;
            let mut poly_nodes: BTreeMap<NodeId, String> = BTreeMap::new();
            for a in &report.activations {
                let [name] = a.polys.as_slice() else { continue };
                let Some(id) = pg
                    .node_ids()
                    .into_iter()
                    .find(|&id| &pg.node(id).name == name)
                else {
                    continue;
                };
                if let Op::Poly(p) = &pg.node(id).op {
                    if exact(p, 0.0).is_some() {
                        polys.insert(a.node.clone(), ((**p).clone(), a.max_error));
                        poly_nodes.insert(id, a.node.clone());
                    }
                }
            }
            let backbone: HashSet<String> =
                acts.iter().map(|&id| g.node(id).name.clone()).collect();
            for id in pg.topo_order()? {
                let stands_for = poly_nodes.get(&id).filter(|n| backbone.contains(*n));
                if matches!(pg.node(id).op, Op::Poly(_)) && stands_for.is_none() {
                    not_injected.push(pg.node(id).name.clone());
                }
            }
            // Hook on every Poly: record p(t) − f(t) on the inputs the PANN gives it.
            let accs: Mutex<BTreeMap<NodeId, [Acc; 3]>> = Mutex::new(BTreeMap::new());
            let f = |id: NodeId, input: &Tensor, out: &mut Tensor| {
                let Op::Poly(p) = &pg.node(id).op else { return };
                let (x, y) = (input.to_f64_vec(), out.to_f64_vec());
                let mut acc: [Acc; 3] = Default::default();
                for (&t, &v) in x.iter().zip(&y) {
                    let Some(fx) = exact(p, t) else { return };
                    let e = v - fx;
                    acc[if t < 0.0 { 0 } else { 1 }].add(e);
                    acc[2].add(e);
                }
                let mut map = accs.lock().unwrap_or_else(|e| e.into_inner());
                let into = map.entry(id).or_default();
                for (i, a) in into.iter_mut().zip(&acc) {
                    i.merge(a);
                }
            };
            let hook = Hook {
                nodes: poly_nodes.keys().copied().collect(),
                f: &f,
            };
            let out = run_chunked(&pg, &self.data, self.chunk, &hook)?;
            let ok = correct(&out, &self.labels);
            let (ci, dci) = bootstrap(&ok, &reference, opt.resamples);
            pann_fig = Some((crate::top1_of(&ok), ci, dci));
            let map = accs.into_inner().unwrap_or_else(|e| e.into_inner());
            for (id, a) in map {
                pann_errors.insert(
                    poly_nodes[&id].clone(),
                    SideErrors {
                        negative: a[0].stats(),
                        positive: a[1].stats(),
                        both: a[2].stats(),
                    },
                );
            }
        }

        // The activations to perturb, with their calibrated facts.
        let mut infos = Vec::new();
        let mut targets: Vec<(NodeId, Inject, f64)> = Vec::new();
        for &id in &acts {
            let name = g.node(id).name.clone();
            let x = g.node(id).inputs()[0];
            let Some(stats) = calib_ranges.get(&x) else {
                continue;
            };
            let bound = opt.margin * stats.abs_max();
            let amplitude = eps * bound;
            let inject = if pann {
                polys.get(&name).map(|(p, _)| Inject::Poly(p.clone()))
            } else {
                Some(Inject::Noise { amplitude, seed: 0 })
            };
            infos.push(ActivationInfo {
                node: name.clone(),
                negative_share_calib: stats.negative,
                negative_share_test: test_ranges.get(&x).map_or(f64::NAN, |s| s.negative),
                bound,
                amplitude,
                max_error: polys.get(&name).map(|p| p.1),
                pann_error: pann_errors.get(&name).cloned(),
            });
            if let Some(inj) = inject {
                targets.push((id, inj, stats.negative));
            }
        }
        if pann && targets.is_empty() {
            return Err(LabError::Request(
                "no activation of this model compiles to a single polynomial to take the error of"
                    .into(),
            ));
        }

        // The runs.
        let groups: Vec<Vec<usize>> = match opt.layers {
            Layers::All => vec![(0..targets.len()).collect()],
            Layers::Each => (0..targets.len()).map(|k| vec![k]).collect(),
        };
        let mut rows = Vec::new();
        for group in &groups {
            for &side in &opt.sides {
                let side_code: u64 = match side {
                    Side::Negative => 0,
                    Side::Positive => 1,
                    Side::Both => 2,
                };
                let plan: BTreeMap<NodeId, Inject> = group
                    .iter()
                    .map(|&k| {
                        let (id, inj, _) = &targets[k];
                        let inj = match inj {
                            Inject::Noise { amplitude, .. } => Inject::Noise {
                                amplitude: *amplitude,
                                seed: (id.index() as u64) << 2 | side_code,
                            },
                            p => p.clone(),
                        };
                        (*id, inj)
                    })
                    .collect();
                let accs: Mutex<BTreeMap<NodeId, Acc>> = Mutex::new(BTreeMap::new());
                let (noise, sign) = (opt.noise, opt.sign);
                let f = |id: NodeId, input: &Tensor, out: &mut Tensor| {
                    let Some(inj) = plan.get(&id) else { return };
                    let mut acc = Acc::default();
                    inject(input, out, side, noise, sign, inj, &mut acc);
                    let mut map = accs.lock().unwrap_or_else(|e| e.into_inner());
                    map.entry(id).or_default().merge(&acc);
                };
                let hook = Hook {
                    nodes: plan.keys().copied().collect::<HashSet<_>>(),
                    f: &f,
                };
                let out = run_chunked(g, &self.data, self.chunk, &hook)?;
                let (dmax, dmean) = deviation(&out, &self.logits);
                let ok = correct(&out, &self.labels);
                let top1 = crate::top1_of(&ok);
                let (top1_ci, drop_ci) = bootstrap(&ok, &reference, opt.resamples);
                let node = match group.as_slice() {
                    [k] => g.node(targets[*k].0).name.clone(),
                    _ => "all".to_string(),
                };
                // Share of the perturbed inputs on this side (calibration data, weighted by
                // each activation's input count).
                let (mut on, mut total) = (0.0, 0.0);
                for &k in group {
                    let x = g.node(targets[k].0).inputs()[0];
                    if let Some(s) = calib_ranges.get(&x) {
                        let share = match side {
                            Side::Negative => s.negative,
                            Side::Positive => 1.0 - s.negative,
                            Side::Both => 1.0,
                        };
                        on += share * s.count as f64;
                        total += s.count as f64;
                    }
                }
                let amplitude = match (group.as_slice(), &targets[group[0]].1) {
                    ([_], Inject::Noise { amplitude, .. }) => Some(*amplitude),
                    _ => None,
                };
                let map = accs.into_inner().unwrap_or_else(|e| e.into_inner());
                let injected = if pann {
                    group
                        .iter()
                        .map(|&k| {
                            let id = targets[k].0;
                            Injected {
                                node: g.node(id).name.clone(),
                                stats: map.get(&id).map(Acc::stats).unwrap_or_default(),
                            }
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                progress(&format!("{node} {side:?}"));
                rows.push(SensitivityRow {
                    node,
                    side,
                    fraction: on / total.max(1.0),
                    amplitude,
                    top1,
                    top1_ci,
                    drop: self.backbone_top1 - top1,
                    drop_ci,
                    logit_dev_max: dmax,
                    logit_dev_mean: dmean,
                    injected,
                });
            }
        }
        Ok(SensitivityReport {
            samples: self.labels.len(),
            alpha: opt.alpha,
            margin: opt.margin,
            noise: opt.noise,
            sign: (opt.noise == Noise::Constant).then_some(opt.sign),
            layers: opt.layers,
            techniques: pann.then(|| opt.techniques.name()),
            confidence: CONFIDENCE,
            resamples: opt.resamples,
            backbone_top1: self.backbone_top1,
            backbone_top1_ci: backbone_ci,
            pann_top1: pann_fig.map(|p| p.0),
            pann_top1_ci: pann_fig.map(|p| p.1),
            pann_drop_ci: pann_fig.map(|p| p.2),
            not_injected,
            activations: infos,
            rows,
        })
    }
}

/// Adds the perturbation to `out` on the inputs of `side`, recording what was added.
fn inject(
    input: &Tensor,
    out: &mut Tensor,
    side: Side,
    noise: Noise,
    sign: f64,
    inj: &Inject,
    acc: &mut Acc,
) {
    let xs = input.to_f64_vec();
    let mut ys = out.to_f64_vec();
    if xs.len() != ys.len() {
        return;
    }
    for (y, &x) in ys.iter_mut().zip(&xs) {
        if !touches(side, x) {
            continue;
        }
        let e = match (inj, noise) {
            (Inject::Poly(p), _) => match exact(p, x) {
                Some(fx) => p.eval(x) - fx,
                None => 0.0,
            },
            (Inject::Noise { amplitude, seed }, Noise::Uniform) => {
                amplitude * crate::hash_unit(x, *seed)
            }
            (Inject::Noise { amplitude, .. }, _) => sign * amplitude,
        };
        *y += e;
        acc.add(e);
    }
    if let Some(t) = Tensor::from_f64(out.shape(), ys) {
        *out = t.cast(out.dtype());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_intervals_cover_the_estimate_and_shrink_with_n() {
        let small: Vec<bool> = (0..100).map(|i| i % 10 != 0).collect();
        let large: Vec<bool> = (0..10_000).map(|i| i % 10 != 0).collect();
        let (a, d) = bootstrap(&small, &small, 500);
        assert!(a[0] < 0.9 && 0.9 < a[1], "{a:?}");
        // Paired against itself: the difference is exactly 0 in every resample.
        assert_eq!(d, [0.0, 0.0]);
        let (b, _) = bootstrap(&large, &large, 500);
        assert!(b[0] < 0.9 && 0.9 < b[1], "{b:?}");
        assert!(b[1] - b[0] < (a[1] - a[0]) / 5.0, "{a:?} vs {b:?}");
        // Binomial standard error at n = 10 000: 0.003, so the 95% interval is ≈ ±0.006.
        assert!((b[1] - b[0] - 0.0118).abs() < 0.003, "{b:?}");
        // Deterministic.
        assert_eq!(
            bootstrap(&small, &small, 500),
            bootstrap(&small, &small, 500)
        );
    }

    #[test]
    fn error_sums_are_order_free_and_keep_wild_values_out() {
        let es = [0.25, -0.5, 1e35, -0.125, f64::NAN, 3.0];
        let (mut fwd, mut parts) = (Acc::default(), [Acc::default(), Acc::default()]);
        for (i, &e) in es.iter().enumerate() {
            fwd.add(e);
            parts[i % 2].add(e);
        }
        let mut merged = parts[1].clone();
        merged.merge(&parts[0]);
        let (a, b) = (fwd.stats(), merged.stats());
        assert_eq!(a, b);
        assert_eq!((a.count, a.wild), (6, 2));
        assert_eq!(a.mean, (0.25 - 0.5 - 0.125 + 3.0) / 4.0);
        assert_eq!(a.mean_abs, (0.25 + 0.5 + 0.125 + 3.0) / 4.0);
        assert_eq!(a.max_abs, f64::INFINITY);
    }

    #[test]
    fn paired_drop_interval_sees_a_consistent_loss() {
        // The perturbed run loses 2% of samples, all previously correct.
        let reference: Vec<bool> = (0..5000).map(|i| i % 10 != 0).collect();
        let pert: Vec<bool> = reference
            .iter()
            .enumerate()
            .map(|(i, &c)| c && i % 50 != 1)
            .collect();
        let (_, d) = bootstrap(&pert, &reference, 400);
        assert!(
            d[0] > 0.01 && d[1] < 0.03 && d[0] < 0.02 && 0.02 < d[1],
            "{d:?}"
        );
    }
}
