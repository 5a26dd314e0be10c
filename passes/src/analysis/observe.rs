//! Observing values of a graph over a dataset, one chunk of samples at a time.

use crate::{Context, Dce, Pass};
use pannc_interp::RunOptions;
use pannc_ir::{Graph, Tensor, ValueId};

/// Runs `g` on `inputs` (batch-first) in chunks of `chunk` samples and hands each chunk's
/// values (`values[k]` at index k) to `f`, chunk after chunk (so whatever `f` accumulates is
/// deterministic). Memory stays bounded by one chunk. With a `memo` (made
/// for `inputs`), values computed the same way in earlier runs are reused
/// (`pannc_interp::run_memo`); the results are the same.
pub fn observe(
    g: &Graph,
    inputs: &[Tensor],
    values: &[ValueId],
    chunk: usize,
    memo: Option<&pannc_interp::Memo>,
    mut f: impl FnMut(&[Tensor]),
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
        let res = match memo {
            Some(m) => {
                pannc_interp::run_memo(&probe, &part, (start, end), m, &RunOptions::default())?
            }
            None => pannc_interp::run(&probe, &part, &RunOptions::default())?,
        };
        f(&res);
        start = end;
    }
    Ok(())
}
