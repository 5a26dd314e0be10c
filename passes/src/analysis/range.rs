//! Range analysis by calibration: run the reference interpreter on sample inputs and record,
//! for each value of interest, min, max, quantiles and the fraction of negative entries.

use pannc_interp::RunOptions;
use pannc_ir::{Graph, Op, Tensor, ValueId};
use std::collections::BTreeMap;

/// Statistics of one value over the calibration data.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RangeStats {
    pub min: f64,
    pub max: f64,
    /// 0.1% and 99.9% quantiles.
    pub p001: f64,
    pub p999: f64,
    pub mean: f64,
    /// Fraction of entries < 0.
    pub negative: f64,
    pub count: usize,
    /// Up to [`SAMPLE`] of the values, evenly strided (for fits that weigh the calibrated
    /// distribution, such as negative-side shaping).
    #[serde(skip)]
    pub sample: Vec<f64>,
}

/// Size of [`RangeStats::sample`].
pub const SAMPLE: usize = 8192;

impl RangeStats {
    pub fn abs_max(&self) -> f64 {
        self.min.abs().max(self.max.abs())
    }

    /// The statistics of `x − d` (exact for min/max/quantiles/mean; the negative share is
    /// estimated from the sample).
    pub fn shifted(&self, d: f64) -> RangeStats {
        let sample: Vec<f64> = self.sample.iter().map(|x| x - d).collect();
        let negative = if sample.is_empty() {
            f64::from(u8::from(self.max < d))
        } else {
            sample.iter().filter(|&&x| x < 0.0).count() as f64 / sample.len() as f64
        };
        RangeStats {
            min: self.min - d,
            max: self.max - d,
            p001: self.p001 - d,
            p999: self.p999 - d,
            mean: self.mean - d,
            negative,
            count: self.count,
            sample,
        }
    }

    /// The statistics of `−x`.
    pub fn negated(&self) -> RangeStats {
        let sample: Vec<f64> = self.sample.iter().map(|x| -x).collect();
        let negative = if sample.is_empty() {
            f64::from(u8::from(self.min > 0.0))
        } else {
            sample.iter().filter(|&&x| x < 0.0).count() as f64 / sample.len() as f64
        };
        RangeStats {
            min: -self.max,
            max: -self.min,
            p001: -self.p999,
            p999: -self.p001,
            mean: -self.mean,
            negative,
            count: self.count,
            sample,
        }
    }

    /// Statistics in O(n): one pass for min/max/mean/sign, two selections for the quantiles.
    fn of(values: &mut [f64]) -> RangeStats {
        let n = values.len();
        let stride = n.div_ceil(SAMPLE).max(1);
        let sample: Vec<f64> = values.iter().step_by(stride).copied().collect();
        let (mut min, mut max, mut sum, mut neg) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
        for &v in values.iter() {
            min = min.min(v);
            max = max.max(v);
            sum += v;
            neg += usize::from(v < 0.0);
        }
        let idx = |p: f64| ((p * (n - 1) as f64).round() as usize).min(n - 1);
        let (lo, hi) = (idx(0.001), idx(0.999));
        let (_, &mut p001, rest) = values.select_nth_unstable_by(lo, |a, b| a.total_cmp(b));
        // Everything after `lo` is ≥ it, so the upper quantile is a selection in that part.
        let p999 = if hi > lo {
            *rest
                .select_nth_unstable_by(hi - lo - 1, |a, b| a.total_cmp(b))
                .1
        } else {
            p001
        };
        RangeStats {
            min,
            max,
            p001,
            p999,
            mean: sum / n as f64,
            negative: neg as f64 / n as f64,
            count: n,
            sample,
        }
    }
}

/// Calibrated statistics, by value.
pub type Ranges = BTreeMap<ValueId, RangeStats>;

/// Whether `op` is a nonlinearity a PANN must approximate.
pub fn is_activation(op: &Op) -> bool {
    matches!(
        op,
        Op::Relu
            | Op::LeakyRelu { .. }
            | Op::Clip { .. }
            | Op::Sigmoid
            | Op::Tanh
            | Op::Gelu { .. }
            | Op::Silu
            | Op::Erf
            | Op::Exp
            | Op::Reciprocal
            | Op::Sqrt
            | Op::Pow
            | Op::HardSigmoid { .. }
            | Op::HardSwish
    )
}

/// The inputs of every node that a PANN must approximate (its nonlinear operand).
pub fn activation_inputs(g: &Graph) -> Vec<ValueId> {
    let mut out: Vec<ValueId> = g
        .node_ids()
        .into_iter()
        .filter(|&n| is_activation(&g.node(n).op))
        .map(|n| g.node(n).inputs()[0])
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Runs `g` on `inputs` and returns the statistics of each value in `values`.
pub fn calibrate(
    g: &Graph,
    inputs: &[Tensor],
    values: &[ValueId],
) -> Result<Ranges, pannc_interp::InterpError> {
    if values.is_empty() {
        return Ok(Ranges::new());
    }
    let mut probe = g.clone();
    probe.set_outputs(values.to_vec());
    let outs = pannc_interp::run(&probe, inputs, &RunOptions::default())?;
    let mut ranges = Ranges::new();
    for (&v, t) in values.iter().zip(outs) {
        let mut data = t.to_f64_vec();
        if !data.is_empty() {
            ranges.insert(v, RangeStats::of(&mut data));
        }
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::RangeStats;

    #[test]
    fn quantiles_match_a_sort() {
        let mut v: Vec<f64> = (0..10_007)
            .map(|i| ((i * 7919) % 10_007) as f64 - 3000.0)
            .collect();
        let mut sorted = v.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let s = RangeStats::of(&mut v);
        let q = |p: f64| sorted[(p * (sorted.len() - 1) as f64).round() as usize];
        assert_eq!(
            (s.min, s.max, s.p001, s.p999),
            (sorted[0], sorted[sorted.len() - 1], q(0.001), q(0.999))
        );
        assert_eq!(s.count, 10_007);
        assert!((s.negative - 3000.0 / 10_007.0).abs() < 1e-12);
    }
}
