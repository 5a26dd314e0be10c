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
}

impl RangeStats {
    pub fn abs_max(&self) -> f64 {
        self.min.abs().max(self.max.abs())
    }

    fn of(values: &mut [f64]) -> RangeStats {
        values.sort_by(|a, b| a.total_cmp(b));
        let n = values.len();
        let q = |p: f64| values[((p * (n - 1) as f64).round() as usize).min(n - 1)];
        RangeStats {
            min: values[0],
            max: values[n - 1],
            p001: q(0.001),
            p999: q(0.999),
            mean: values.iter().sum::<f64>() / n as f64,
            negative: values.iter().filter(|&&v| v < 0.0).count() as f64 / n as f64,
            count: n,
        }
    }
}

/// Calibrated statistics, by value.
pub type Ranges = BTreeMap<ValueId, RangeStats>;

/// The inputs of every node that a PANN must approximate (its nonlinear operand).
pub fn activation_inputs(g: &Graph) -> Vec<ValueId> {
    let mut out: Vec<ValueId> = g
        .node_ids()
        .into_iter()
        .filter(|&n| {
            matches!(
                g.node(n).op,
                Op::Relu
                    | Op::LeakyRelu { .. }
                    | Op::Clip { .. }
                    | Op::Sigmoid
                    | Op::Tanh
                    | Op::Gelu { .. }
                    | Op::Silu
                    | Op::Erf
            )
        })
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
