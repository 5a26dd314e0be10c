//! Range analysis by calibration: run the reference interpreter on sample inputs and record,
//! for each value of interest, min, max, quantiles and the fraction of negative entries.
//!
//! The statistics are a streaming reduction: the calibration set is interpreted [`CHUNK`]
//! samples at a time and each chunk is folded into one [`Accumulator`] per value, so memory
//! stays bounded by one chunk's activations (plus 0.2% of the values for the quantiles)
//! instead of every activation of every sample. The reduction visits values in the same
//! order as one run over the whole set, so the result is bit-identical to it: the mean is the
//! same sequence of f64 additions, the sample the same strided indices, and the quantiles are
//! exact (see [`Accumulator`]).

use pannc_interp::RunOptions;
use pannc_ir::{Graph, Op, Tensor, ValueId};
use rayon::prelude::*;
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

/// Calibration samples interpreted at a time (memory is bounded by one chunk's activations).
pub const CHUNK: usize = 128;

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

    /// Statistics of `values` (the same as streaming them through an [`Accumulator`]).
    pub fn of(values: &[f64]) -> RangeStats {
        let mut acc = Accumulator::new(values.len());
        acc.extend(values.iter().copied());
        acc.finish()
    }
}

/// Index of quantile `p` among `n` sorted values (nearest rank).
fn rank(p: f64, n: usize) -> usize {
    ((p * n.saturating_sub(1) as f64).round() as usize).min(n.saturating_sub(1))
}

/// A key whose integer order is `f64::total_cmp`'s order (negated for `DESC`).
#[inline]
fn key<const DESC: bool>(v: f64) -> i64 {
    let b = v.to_bits() as i64;
    let k = b ^ (((b >> 63) as u64) >> 1) as i64;
    if DESC {
        !k
    } else {
        k
    }
}

/// The `k + 1` smallest values seen (largest when `DESC`), under `f64::total_cmp`, kept
/// exactly in a buffer of at most `2(k + 1)`: once full, a selection keeps the `k + 1`
/// smallest and later values are admitted only below the largest of them (a value that is
/// not can never be among the `k + 1` smallest). The `k`-th smallest is then exact, whatever
/// the chunking.
struct Smallest<const DESC: bool> {
    k: usize,
    /// Keys of the kept values.
    keep: Vec<i64>,
    /// The largest kept key once a selection left `k + 1` of them (admit all until then).
    bar: Option<i64>,
}

impl<const DESC: bool> Smallest<DESC> {
    fn new(k: usize) -> Self {
        Smallest {
            k,
            keep: Vec::new(),
            bar: None,
        }
    }

    #[inline]
    fn push(&mut self, v: f64) {
        let x = key::<DESC>(v);
        if self.bar.is_none_or(|b| x < b) {
            self.keep.push(x);
            if self.keep.len() >= 2 * (self.k + 1) {
                self.compact();
            }
        }
    }

    fn compact(&mut self) {
        let k = self.k;
        self.keep.select_nth_unstable(k);
        self.keep.truncate(k + 1);
        // The k-th element is the largest of the kept ones after the selection.
        self.bar = Some(self.keep[k]);
    }

    /// The `k`-th smallest value (0-based).
    fn get(mut self) -> Option<f64> {
        if self.keep.len() <= self.k {
            return None;
        }
        let x = *self.keep.select_nth_unstable(self.k).1;
        let b = if DESC { !x } else { x };
        Some(f64::from_bits(
            (b ^ (((b >> 63) as u64) >> 1) as i64) as u64,
        ))
    }
}

/// Streaming statistics of one value, for a known total number of entries `n`: min, max,
/// sum and negative count in one pass (the sum in arrival order), the [`SAMPLE`] entries at
/// indices `0, s, 2s, …` with `s = ⌈n / SAMPLE⌉`, and the 0.1% / 99.9% quantiles exactly
/// (nearest rank, as a full sort would give) from the `0.001·n + 1` smallest and largest
/// entries. Feeding the entries in the same order as one pass over all of them gives
/// bit-identical [`RangeStats`].
pub struct Accumulator {
    n: usize,
    seen: usize,
    stride: usize,
    /// Index of the next sampled entry, counted from the next entry.
    skip: usize,
    min: f64,
    max: f64,
    sum: f64,
    neg: usize,
    sample: Vec<f64>,
    low: Smallest<false>,
    high: Smallest<true>,
}

impl Accumulator {
    /// An accumulator expecting `n` entries in all.
    pub fn new(n: usize) -> Accumulator {
        let (lo, hi) = (rank(0.001, n), rank(0.999, n));
        Accumulator {
            n,
            seen: 0,
            stride: n.div_ceil(SAMPLE).max(1),
            skip: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            neg: 0,
            sample: Vec::new(),
            low: Smallest::new(lo),
            // The hi-th smallest is the (n − 1 − hi)-th largest.
            high: Smallest::new(n.saturating_sub(1) - hi),
        }
    }

    /// Folds in the next entries, in order.
    pub fn extend(&mut self, values: impl IntoIterator<Item = f64>) {
        let mut block = [0.0f64; 1024];
        let mut it = values.into_iter();
        loop {
            let mut len = 0;
            for (slot, v) in block.iter_mut().zip(&mut it) {
                *slot = v;
                len += 1;
            }
            if len == 0 {
                break;
            }
            self.extend_slice(&block[..len]);
        }
    }

    fn extend_slice(&mut self, values: &[f64]) {
        // One tight loop per statistic: the sum is a sequential chain (bit-identical to one
        // pass), the others are independent of it.
        let mut sum = self.sum;
        for &v in values {
            sum += v;
        }
        self.sum = sum;
        let (mut min, mut max, mut neg) = (self.min, self.max, self.neg);
        // Comparisons rather than f64::min/max (which vectorise poorly): NaN is skipped the
        // same way, and of +0 and −0 the first seen stays.
        for &v in values {
            min = if v < min { v } else { min };
            max = if v > max { v } else { max };
            neg += usize::from(v < 0.0);
        }
        (self.min, self.max, self.neg) = (min, max, neg);
        let mut i = self.skip;
        while i < values.len() {
            self.sample.push(values[i]);
            i += self.stride;
        }
        self.skip = i - values.len();
        self.seen += values.len();
        for &v in values {
            self.low.push(v);
        }
        for &v in values {
            self.high.push(v);
        }
    }

    /// Folds in every element of `t` in row-major order.
    pub fn extend_tensor(&mut self, t: &Tensor) {
        match t {
            Tensor::F32(a) => self.extend(a.iter().map(|&x| x as f64)),
            Tensor::F64(a) => self.extend(a.iter().copied()),
            Tensor::I64(a) => self.extend(a.iter().map(|&x| x as f64)),
            Tensor::Bool(a) => self.extend(a.iter().map(|&x| x as u8 as f64)),
        }
    }

    /// The statistics. Entries beyond the announced `n` are folded into min, max, mean and
    /// the negative share; the quantiles stay those of the announced count's ranks.
    pub fn finish(self) -> RangeStats {
        let n = self.seen;
        let p001 = self.low.get().unwrap_or(f64::NAN);
        let p999 = self.high.get().unwrap_or(p001);
        debug_assert!(self.n == n, "announced {} entries, saw {n}", self.n);
        RangeStats {
            min: self.min,
            max: self.max,
            p001,
            p999,
            mean: self.sum / n as f64,
            negative: self.neg as f64 / n as f64,
            count: n,
            sample: self.sample,
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
///
/// When the graph treats samples independently (`pannc_interp::splittable_batch`), the
/// inputs are interpreted [`CHUNK`] samples at a time and reduced as they come (see the
/// module doc); otherwise in one run. Either way the statistics are those of one run over
/// every sample, bit for bit.
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
    // Only what the observed values depend on runs. (DCE fails only on a cycle, which the
    // interpreter reports.)
    let _ = crate::Pass::run(&crate::Dce, &mut probe, &mut crate::Context::default());
    let n = inputs.first().map(|t| t.shape()[0]).unwrap_or(0);
    let chunk = if n > CHUNK && pannc_interp::splittable_batch(&probe).is_some() {
        CHUNK
    } else {
        n.max(1)
    };
    let mut accs: Vec<Option<Accumulator>> = values.iter().map(|_| None).collect();
    let mut start = 0;
    loop {
        let end = (start + chunk).min(n);
        let part: Vec<Tensor> = if start == 0 && end == n {
            inputs.to_vec()
        } else {
            inputs.iter().map(|t| t.slice_batch(start, end)).collect()
        };
        let outs = pannc_interp::run(&probe, &part, &RunOptions::default())?;
        // Each value's reduction is sequential (deterministic); values reduce in parallel.
        accs.par_iter_mut().zip(&outs).for_each(|(acc, t)| {
            let acc = acc.get_or_insert_with(|| {
                // Entries per sample × samples (a batch-major value, since it was split).
                let total = if chunk < n {
                    t.len() / (end - start).max(1) * n
                } else {
                    t.len()
                };
                Accumulator::new(total)
            });
            acc.extend_tensor(t);
        });
        start = end;
        if start >= n {
            break;
        }
    }
    let mut ranges = Ranges::new();
    for (&v, acc) in values.iter().zip(accs) {
        if let Some(acc) = acc.filter(|a| a.n > 0) {
            ranges.insert(v, acc.finish());
        }
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::{Accumulator, RangeStats, SAMPLE};

    fn by_sort(v: &[f64]) -> (f64, f64, f64, f64) {
        let mut sorted = v.to_vec();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| sorted[(p * (sorted.len() - 1) as f64).round() as usize];
        (sorted[0], sorted[sorted.len() - 1], q(0.001), q(0.999))
    }

    #[test]
    fn quantiles_match_a_sort() {
        let v: Vec<f64> = (0..10_007)
            .map(|i| ((i * 7919) % 10_007) as f64 - 3000.0)
            .collect();
        let s = RangeStats::of(&v);
        assert_eq!((s.min, s.max, s.p001, s.p999), by_sort(&v));
        assert_eq!(s.count, 10_007);
        assert!((s.negative - 3000.0 / 10_007.0).abs() < 1e-12);
    }

    /// Streaming in chunks of any size gives the statistics of one pass, bit for bit,
    /// including ties, a heavy tail and sizes around the quantile ranks.
    #[test]
    fn chunked_equals_one_pass() {
        for n in [1usize, 2, 999, 1000, 1001, 2003, 50_000, 100_003] {
            // A skewed distribution with many repeated values.
            let v: Vec<f64> = (0..n)
                .map(|i| {
                    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                    let x = (h % 1000) as f64 / 100.0 - 3.0;
                    if h.is_multiple_of(97) {
                        x * 40.0
                    } else {
                        (x * 4.0).round() / 4.0
                    }
                })
                .collect();
            let whole = RangeStats::of(&v);
            assert_eq!(
                (whole.min, whole.max, whole.p001, whole.p999),
                by_sort(&v),
                "n = {n}"
            );
            let stride = n.div_ceil(SAMPLE).max(1);
            let strided: Vec<f64> = v.iter().step_by(stride).copied().collect();
            assert_eq!(whole.sample, strided);
            for chunk in [1, 7, 128, 4096] {
                let mut acc = Accumulator::new(n);
                for c in v.chunks(chunk) {
                    acc.extend(c.iter().copied());
                }
                let s = acc.finish();
                assert_eq!(s, whole, "n = {n}, chunk = {chunk}");
                assert_eq!(s.mean.to_bits(), whole.mean.to_bits());
            }
        }
    }
}
