//! Observing values of a graph over a dataset, one chunk of samples at a time.

use crate::{Context, Dce, Pass};
use pannc_interp::RunOptions;
use pannc_ir::{Graph, Tensor, ValueId};

/// Runs `g` on `inputs` (batch-first) in chunks of `chunk` samples and hands each chunk's
/// value of `values[k]` to `f(k, tensor)`, in order (chunks in sequence, so whatever `f`
/// accumulates is deterministic). Memory stays bounded by one chunk.
pub fn observe(
    g: &Graph,
    inputs: &[Tensor],
    values: &[ValueId],
    chunk: usize,
    mut f: impl FnMut(usize, &Tensor),
) -> Result<(), pannc_interp::InterpError> {
    if values.is_empty() {
        return Ok(());
    }
    let mut probe = g.clone();
    probe.set_outputs(values.to_vec());
    // Only what the observed values depend on runs. (DCE fails only on a cycle, which the
    // interpreter reports below.)
    let _ = Dce.run(&mut probe, &mut Context::default());
    let n = inputs.first().map(|t| t.shape()[0]).unwrap_or(0);
    let chunk = chunk.max(1);
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let part: Vec<Tensor> = inputs.iter().map(|t| t.slice_batch(start, end)).collect();
        let res = pannc_interp::run(&probe, &part, &RunOptions::default())?;
        for (k, t) in res.iter().enumerate() {
            f(k, t);
        }
        start = end;
    }
    Ok(())
}
