//! The accuracy lab: what `pannc eval` and `pannc sensitivity` compute, minus the I/O.
//!
//! - [`Lab::evaluate`] compiles the backbone at one precision with a set of [`Techniques`] and
//!   measures the PANN on labelled data: top-1, logit deviation from the backbone, levels,
//!   inputs outside the calibrated intervals.
//! - [`Lab::allocate`] chooses α per activation (technique `alloc`): the fewest total levels
//!   (then ct×ct multiplications) such that the PANN's top-1 disagrees with the backbone's on
//!   at most `SAFETY · budget` of the calibration samples. Disagreement bounds the accuracy
//!   drop from above (a sample can only lose its correct label by changing its prediction), so
//!   the budget needs no calibration labels; the factor [`SAFETY`] leaves room for sampling
//!   error, since a few hundred calibration images estimate a 0.5% rate only to about ±0.4%.
//! - [`Lab::sensitivity_report`] perturbs the activations of the *backbone* (one at a time or
//!   all at once) on their negative inputs, positive inputs or both, by noise of size `2^-α·B`
//!   or by the compiled polynomial's own error `p(x) − f(x)`, and measures the damage with
//!   bootstrap intervals (module [`sensitivity`]).
//!
//! Everything is deterministic: interpreter runs are bitwise independent of threads, the noise
//! is a hash of the perturbed value, and searches visit candidates in a fixed order.

pub mod budget;

use pannc_driver::{compile, predictions, simulate, top1, DriverError};
use pannc_interp::{Hook, RunOptions};
use pannc_ir::{Graph, NodeId, Tensor};
use pannc_passes::analysis::is_activation;
use pannc_passes::{PassError, Pipeline, Policy, Report};
use std::collections::BTreeMap;

pub mod sensitivity;
pub use sensitivity::{
    bootstrap, ActivationInfo, ErrorStats, Injected, Layers, SensitivityOptions, SensitivityReport,
    SensitivityRow, SideErrors,
};

/// Share of the accuracy budget the allocation may spend on the calibration set.
pub const SAFETY: f64 = 0.5;

/// Which accuracy techniques a compilation uses (on top of the baseline composite ReLU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Techniques {
    /// Negative-side error shaping.
    pub shape: bool,
    /// Bias correction.
    pub bias: bool,
    /// Per-layer precision allocation under an accuracy budget.
    pub alloc: bool,
}

impl Techniques {
    /// Parses `baseline`, `all`, or a `+`-separated list of `shape`, `bias`, `alloc`.
    pub fn parse(s: &str) -> Result<Techniques, String> {
        let mut t = Techniques::default();
        match s {
            "baseline" => return Ok(t),
            "all" => {
                return Ok(Techniques {
                    shape: true,
                    bias: true,
                    alloc: true,
                })
            }
            _ => {}
        }
        for part in s.split('+') {
            match part {
                "shape" => t.shape = true,
                "bias" => t.bias = true,
                "alloc" => t.alloc = true,
                _ => {
                    return Err(format!(
                        "unknown technique '{part}' (known: baseline, shape, bias, alloc, all, or a '+' list such as shape+bias)"
                    ))
                }
            }
        }
        Ok(t)
    }

    pub fn name(&self) -> String {
        match (self.shape, self.bias, self.alloc) {
            (false, false, false) => "baseline".into(),
            (true, true, true) => "all".into(),
            _ => [
                ("shape", self.shape),
                ("bias", self.bias),
                ("alloc", self.alloc),
            ]
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join("+"),
        }
    }

    /// The policy for these techniques (allocation is applied separately, as overrides).
    pub fn policy(&self, base: &Policy, alpha: u32) -> Policy {
        Policy {
            alpha,
            shape: self.shape,
            bias_correct: self.bias,
            ..base.clone()
        }
    }
}

/// One evaluated configuration.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EvalResult {
    pub alpha: u32,
    pub techniques: String,
    /// Top-1 accuracy as a fraction.
    pub top1: f64,
    /// 95% bootstrap interval of `top1` over the samples, and paired interval of the drop
    /// (backbone top-1 − `top1`); see [`bootstrap`].
    pub top1_ci: [f64; 2],
    pub drop_ci: [f64; 2],
    /// Levels of the whole network.
    pub levels: usize,
    /// Σ ct×ct multiplications over the activations (per slot-packed evaluation).
    pub ct_mults: u64,
    /// Largest and mean |PANN logit − backbone logit|.
    pub logit_dev_max: f64,
    pub logit_dev_mean: f64,
    /// Activation inputs outside their polynomial's interval, and samples affected.
    pub out_of_range_inputs: usize,
    pub out_of_range_samples: usize,
    /// α per activation when it differs from `alpha` (allocation).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub alphas: BTreeMap<String, u32>,
}

/// Result of [`Lab::allocate`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct Allocation {
    pub budget: f64,
    /// α per activation.
    pub alphas: BTreeMap<String, u32>,
    pub levels: usize,
    pub ct_mults: u64,
    /// Disagreement with the backbone on the calibration set.
    pub calib_disagreement: f64,
    /// The smallest uniform α meeting the same criterion on the calibration set, and its cost.
    pub uniform_alpha: Option<u32>,
    pub uniform_levels: Option<usize>,
    pub uniform_ct_mults: Option<u64>,
    /// Compilations tried.
    pub trials: usize,
}

/// Which inputs of an activation a perturbation touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Negative,
    Positive,
    /// Every input.
    Both,
}

/// The shape of the injected perturbation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Noise {
    /// Uniform in `[-a, a]`, independent per element (a hash of the value): zero mean.
    Uniform,
    /// `sign·a` everywhere: a one-signed error, like a composite ReLU's near its transition.
    Constant,
    /// The compiled polynomial's own error `p(x) − f(x)` (see [`sensitivity`]).
    #[serde(rename = "pann-error")]
    PannError,
}

/// Labelled data, calibration data and the backbone's reference outputs.
pub struct Lab {
    /// The backbone after the clean-up pipeline.
    pub backbone: Graph,
    pub calib: Vec<Tensor>,
    pub data: Vec<Tensor>,
    pub labels: Vec<i64>,
    /// Backbone logits on `data` and predictions on `calib`.
    pub logits: Tensor,
    calib_pred: Vec<Option<usize>>,
    pub backbone_top1: f64,
    pub chunk: usize,
}

/// Errors of the lab: compiling or running a trial failed, or the data does not fit.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Pass(#[from] PassError),
    #[error(transparent)]
    Interp(#[from] pannc_interp::InterpError),
    #[error("{labels} labels for {samples} samples")]
    Labels { labels: usize, samples: usize },
    #[error("the model has no output")]
    NoOutput,
    #[error("no data")]
    NoData,
    #[error("{0}")]
    Graph(#[from] pannc_ir::GraphError),
    #[error("menu: {0}")]
    Menu(String),
    #[error("budget: {0}")]
    Budget(String),
    /// A request the lab cannot honour (bad combination of options).
    #[error("{0}")]
    Request(String),
}

/// Top-1 from per-sample correctness.
pub(crate) fn top1_of(correct: &[bool]) -> f64 {
    correct.iter().filter(|&&c| c).count() as f64 / correct.len().max(1) as f64
}

fn deviation(a: &Tensor, b: &Tensor) -> (f64, f64) {
    let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
    let mut max: f64 = 0.0;
    let mut sum = 0.0;
    for (p, q) in x.iter().zip(&y) {
        let d = (p - q).abs();
        max = max.max(if d.is_nan() { f64::INFINITY } else { d });
        sum += d;
    }
    (max, sum / x.len().max(1) as f64)
}

impl Lab {
    /// Runs the backbone once on the data and on the calibration set.
    pub fn new(
        mut backbone: Graph,
        calib: Vec<Tensor>,
        data: Vec<Tensor>,
        labels: Vec<i64>,
    ) -> Result<Lab, LabError> {
        // Clean up and recognise exported activation subgraphs (GELU's Erf form, SiLU), so
        // sensitivity perturbs whole activations.
        Pipeline::recognized().run(&mut backbone)?;
        let chunk = 512;
        let run = |x: &[Tensor]| -> Result<Tensor, LabError> {
            let sim = simulate(&backbone, x, chunk)?;
            sim.outputs.into_iter().next().ok_or(LabError::NoOutput)
        };
        let logits = run(&data)?;
        if logits.shape()[0] != labels.len() {
            return Err(LabError::Labels {
                labels: labels.len(),
                samples: logits.shape()[0],
            });
        }
        let calib_pred = predictions(&run(&calib)?);
        let backbone_top1 = top1(&logits, &labels);
        Ok(Lab {
            backbone,
            calib,
            data,
            labels,
            logits,
            calib_pred,
            backbone_top1,
            chunk,
        })
    }

    /// Compiles the backbone under `policy`; returns the PANN and its report.
    pub fn compile(&self, policy: Policy) -> Result<(Graph, Report), LabError> {
        let mut g = self.backbone.clone();
        let report = compile(&mut g, self.calib.clone(), policy)?;
        Ok((g, report))
    }

    /// Compiles at `alpha` with `techniques` (and `overrides` from an allocation) and measures
    /// the result on the labelled data.
    pub fn evaluate(
        &self,
        base: &Policy,
        alpha: u32,
        techniques: Techniques,
        overrides: &BTreeMap<String, u32>,
    ) -> Result<EvalResult, LabError> {
        let mut policy = techniques.policy(base, alpha);
        policy.overrides.extend(overrides.clone());
        let (g, report) = self.compile(policy)?;
        let sim = simulate(&g, &self.data, self.chunk)?;
        let out = &sim.outputs[0];
        let (dmax, dmean) = deviation(out, &self.logits);
        let (top1_ci, drop_ci) = bootstrap(
            &sensitivity::correct(out, &self.labels),
            &sensitivity::correct(&self.logits, &self.labels),
            1000,
        );
        Ok(EvalResult {
            alpha,
            techniques: techniques.name(),
            top1: top1(out, &self.labels),
            top1_ci,
            drop_ci,
            levels: report.levels,
            ct_mults: ct_mults(&report),
            logit_dev_max: dmax,
            logit_dev_mean: dmean,
            out_of_range_inputs: sim.out_of_range.iter().map(|o| o.outside).sum(),
            out_of_range_samples: sim.sample_outside.iter().filter(|&&b| b).count(),
            alphas: overrides.clone(),
        })
    }

    /// Fraction of calibration samples whose PANN prediction differs from the backbone's,
    /// with the PANN's levels and ct×ct multiplications.
    fn calib_trial(&self, policy: Policy) -> Result<(f64, usize, u64), LabError> {
        let (g, report) = self.compile(policy)?;
        let sim = simulate(&g, &self.calib, self.chunk)?;
        let pred = predictions(&sim.outputs[0]);
        let differ = pred
            .iter()
            .zip(&self.calib_pred)
            .filter(|(a, b)| a.is_none() || a != b)
            .count();
        Ok((
            differ as f64 / pred.len().max(1) as f64,
            report.levels,
            ct_mults(&report),
        ))
    }

    /// Per-layer precision allocation (see the module doc). Starts from the smallest uniform
    /// α in `range` that meets `SAFETY · budget` on the calibration set, then, least sensitive
    /// layer first, lowers each activation's α while the whole network stays within that and the
    /// cost (levels, then ct×ct multiplications) goes down. `progress` hears each trial.
    pub fn allocate(
        &self,
        base: &Policy,
        techniques: Techniques,
        range: std::ops::RangeInclusive<u32>,
        budget: f64,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Allocation, LabError> {
        let allowed = SAFETY * budget;
        let mut trials = 0;
        let mut trial = |policy: Policy, what: &str| -> Result<(f64, usize, u64), LabError> {
            trials += 1;
            let r = self.calib_trial(policy)?;
            progress(&format!(
                "alloc trial {trials}: {what}: disagreement {:.2}%, {} levels",
                100.0 * r.0,
                r.1
            ));
            Ok(r)
        };
        let plain = Techniques {
            alloc: false,
            ..techniques
        };
        let (lo, hi) = (*range.start(), *range.end());
        let mut uniform = None;
        for a in lo..=hi {
            let r = trial(plain.policy(base, a), &format!("uniform α={a}"))?;
            if r.0 <= allowed {
                uniform = Some((a, r));
                break;
            }
        }
        let (start, (dis, lv, cm)) = match uniform {
            Some(u) => u,
            None => {
                let r = trial(plain.policy(base, hi), &format!("uniform α={hi}"))?;
                (hi, r)
            }
        };
        // Activation names as the compiled report lists them.
        let names: Vec<String> = self
            .compile(plain.policy(base, start))?
            .1
            .activations
            .iter()
            .filter(|a| a.method == "composite")
            .map(|a| a.node.clone())
            .collect();
        let mut alphas: BTreeMap<String, u32> = names.iter().map(|n| (n.clone(), start)).collect();
        let mut best = (dis, lv, cm);
        // Order: least damaging first, by the disagreement of lowering that layer alone by 2.
        let mut order = Vec::new();
        for n in &names {
            if start <= lo {
                break;
            }
            let mut p = plain.policy(base, start);
            p.overrides = alphas.clone();
            p.overrides
                .insert(n.clone(), start.saturating_sub(2).max(lo));
            let r = trial(p, &format!("probe {n}"))?;
            order.push((r.0, n.clone()));
        }
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (_, n) in order {
            loop {
                let cur = alphas[&n];
                if cur <= lo {
                    break;
                }
                let mut p = plain.policy(base, start);
                p.overrides = alphas.clone();
                p.overrides.insert(n.clone(), cur - 1);
                let r = trial(p, &format!("{n} α={}", cur - 1))?;
                let cheaper = (r.1, r.2) < (best.1, best.2);
                if r.0 <= allowed && cheaper {
                    alphas.insert(n.clone(), cur - 1);
                    best = r;
                } else {
                    break;
                }
            }
        }
        Ok(Allocation {
            budget,
            alphas,
            levels: best.1,
            ct_mults: best.2,
            calib_disagreement: best.0,
            uniform_alpha: uniform.map(|u| u.0),
            uniform_levels: uniform.map(|u| u.1 .1),
            uniform_ct_mults: uniform.map(|u| u.1 .2),
            trials,
        })
    }

    /// Perturbs each activation of the backbone in turn, on its negative and on its positive
    /// inputs, by noise of size `2^-α·B` (a constant is `−2^-α·B`); the rows of
    /// [`Lab::sensitivity_report`] with these options. `progress` hears each run.
    pub fn sensitivity(
        &self,
        alpha: u32,
        margin: f64,
        noise: Noise,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<SensitivityRow>, LabError> {
        let opt = SensitivityOptions {
            margin,
            ..SensitivityOptions::new(alpha, noise)
        };
        Ok(self.sensitivity_report(&opt, progress)?.rows)
    }

    /// Activations the sensitivity analysis perturbs, in topological order.
    pub fn activations(&self) -> Result<Vec<NodeId>, LabError> {
        let g = &self.backbone;
        Ok(g.topo_order()?
            .into_iter()
            .filter(|&id| is_activation(&g.node(id).op))
            .collect())
    }
}

fn ct_mults(r: &Report) -> u64 {
    r.activations.iter().map(|a| a.ct_mults as u64).sum()
}

/// A pseudo-random number in [-1, 1] from a value's bits and a seed (SplitMix64).
fn hash_unit(x: f64, seed: u64) -> f64 {
    let mut z = x.to_bits() ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// Runs `g` on `inputs` in chunks with `hook`; returns the first output.
fn run_chunked(
    g: &Graph,
    inputs: &[Tensor],
    chunk: usize,
    hook: &Hook<'_>,
) -> Result<Tensor, LabError> {
    let n = inputs.first().map(|t| t.shape()[0]).unwrap_or(0);
    let mut parts = Vec::new();
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let part: Vec<Tensor> = inputs.iter().map(|t| t.slice_batch(start, end)).collect();
        let mut out = pannc_interp::run_hooked(g, &part, &RunOptions::default(), Some(hook))?;
        parts.push(out.swap_remove(0));
        start = end;
    }
    Tensor::concat_batch(&parts).ok_or(LabError::NoData)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_names_round_trip() {
        for s in ["baseline", "shape", "bias", "alloc", "shape+bias", "all"] {
            assert_eq!(Techniques::parse(s).unwrap().name(), s);
        }
        assert!(Techniques::parse("magic").is_err());
    }

    #[test]
    fn hash_noise_is_uniform_and_deterministic() {
        let v: Vec<f64> = (0..100_000)
            .map(|i| hash_unit(i as f64 * 0.37, 7))
            .collect();
        assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0 / 3.0).abs() < 0.01, "variance {var}");
        assert_eq!(hash_unit(0.5, 3), hash_unit(0.5, 3));
        assert_ne!(hash_unit(0.5, 3), hash_unit(0.5, 4));
    }
}
