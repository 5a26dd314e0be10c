//! The PANN compile driver and its simulation: what `pannc compile` runs, minus the I/O.

use crate::{Context, PassError, Pipeline, Policy, Report};
use pannc_interp::RunOptions;
use pannc_ir::{Graph, Op, Tensor, ValueId};

/// Compiles `g` into a PANN in place with the default pipeline and returns the report.
/// `calib` holds one batch-first tensor per graph input.
pub fn compile(g: &mut Graph, calib: Vec<Tensor>, policy: Policy) -> Result<Report, PassError> {
    let mut cx = Context {
        calib,
        policy,
        ..Default::default()
    };
    Pipeline::pann().run_with(g, &mut cx, |_, _| {})?;
    cx.report.levels = crate::analysis::levels(g).map_err(|message| PassError::Graph {
        pass: "levels",
        message,
    })?;
    Ok(cx.report)
}

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
    let _ = crate::Pass::run(&crate::Dce, &mut probe, &mut Context::default());
    let n = inputs.first().map(|t| t.shape()[0]).unwrap_or(0);
    let chunk = chunk.max(1);
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let part: Vec<Tensor> = inputs.iter().map(|t| slice_batch(t, start, end)).collect();
        let res = pannc_interp::run(&probe, &part, &RunOptions::default())?;
        for (k, t) in res.iter().enumerate() {
            f(k, t);
        }
        start = end;
    }
    Ok(())
}

/// The compiled graph as ONNX runtimes can run it: polynomials lowered to Mul/Add.
pub fn lowered(g: &Graph) -> Result<Graph, PassError> {
    let mut h = g.clone();
    let mut cx = Context::default();
    Pipeline::new(vec![Box::new(crate::LowerPoly)]).run_with(&mut h, &mut cx, |_, _| {})?;
    Ok(h)
}

/// Per polynomial node: how many of its inputs fell outside the interval it is accurate on.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OutOfRange {
    pub node: String,
    pub outside: usize,
    pub total: usize,
    /// Largest |x|/B seen (1 = at the edge of the interval).
    pub worst: f64,
}

/// The result of [`simulate`].
#[derive(Clone, Debug)]
pub struct Simulation {
    pub outputs: Vec<Tensor>,
    /// Per polynomial node: inputs outside its interval.
    pub out_of_range: Vec<OutOfRange>,
    /// Per sample: whether any of its activation inputs left an interval.
    pub sample_outside: Vec<bool>,
}

/// Runs the PANN on `inputs` (batch-first) in chunks of `chunk` samples, returning its outputs
/// and, for each polynomial, how many inputs left `[-B, B]` (a polynomial outside its interval
/// is garbage, so this is the first thing to check when accuracy drops).
pub fn simulate(
    g: &Graph,
    inputs: &[Tensor],
    chunk: usize,
) -> Result<Simulation, pannc_interp::InterpError> {
    let polys: Vec<(String, ValueId, f64)> = g
        .node_ids()
        .into_iter()
        .filter_map(|id| match &g.node(id).op {
            Op::Poly(p) => Some((g.node(id).name.clone(), g.node(id).inputs()[0], p.in_scale)),
            _ => None,
        })
        .collect();
    let mut probe = g.clone();
    let n_out = g.outputs().len();
    let mut outs: Vec<ValueId> = g.outputs().to_vec();
    outs.extend(polys.iter().map(|p| p.1));
    probe.set_outputs(outs);
    let n = inputs.first().map(|t| t.shape()[0]).unwrap_or(0);
    let mut results: Vec<Vec<Tensor>> = vec![Vec::new(); n_out];
    let mut sample_outside = vec![false; n];
    let mut counts: Vec<OutOfRange> = polys
        .iter()
        .map(|p| OutOfRange {
            node: p.0.clone(),
            outside: 0,
            total: 0,
            worst: 0.0,
        })
        .collect();
    let chunk = chunk.max(1);
    let mut start = 0;
    while start < n.max(1) {
        let end = (start + chunk).min(n);
        let part: Vec<Tensor> = inputs.iter().map(|t| slice_batch(t, start, end)).collect();
        let mut res = pannc_interp::run(&probe, &part, &RunOptions::default())?;
        let extra = res.split_off(n_out);
        for (k, t) in res.into_iter().enumerate() {
            results[k].push(t);
        }
        for ((c, t), p) in counts.iter_mut().zip(extra).zip(&polys) {
            let per_sample = t.len() / (end - start).max(1);
            for (i, v) in t.to_f64_vec().into_iter().enumerate() {
                let r = (v * p.2).abs();
                c.total += 1;
                if r > 1.0 {
                    c.outside += 1;
                    sample_outside[start + i / per_sample.max(1)] = true;
                }
                if r > c.worst {
                    c.worst = r;
                }
            }
        }
        if n == 0 {
            break;
        }
        start = end;
    }
    let outputs = results
        .into_iter()
        .map(|parts| concat_batch(&parts))
        .collect();
    Ok(Simulation {
        outputs,
        out_of_range: counts,
        sample_outside,
    })
}

/// Rows `start..end` of a batch-first tensor.
pub fn slice_batch(t: &Tensor, start: usize, end: usize) -> Tensor {
    use ndarray::Axis;
    match t {
        Tensor::F32(a) => Tensor::F32(a.slice_axis(Axis(0), (start..end).into()).to_owned()),
        Tensor::F64(a) => Tensor::F64(a.slice_axis(Axis(0), (start..end).into()).to_owned()),
        Tensor::I64(a) => Tensor::I64(a.slice_axis(Axis(0), (start..end).into()).to_owned()),
        Tensor::Bool(a) => Tensor::Bool(a.slice_axis(Axis(0), (start..end).into()).to_owned()),
    }
}

pub(crate) fn concat_batch(parts: &[Tensor]) -> Tensor {
    use ndarray::Axis;
    match &parts[0] {
        Tensor::F32(_) => {
            let v: Vec<_> = parts
                .iter()
                .map(|t| {
                    if let Tensor::F32(a) = t {
                        a.view()
                    } else {
                        unreachable!()
                    }
                })
                .collect();
            Tensor::F32(ndarray::concatenate(Axis(0), &v).expect("same shapes"))
        }
        Tensor::F64(_) => {
            let v: Vec<_> = parts
                .iter()
                .map(|t| {
                    if let Tensor::F64(a) = t {
                        a.view()
                    } else {
                        unreachable!()
                    }
                })
                .collect();
            Tensor::F64(ndarray::concatenate(Axis(0), &v).expect("same shapes"))
        }
        Tensor::I64(_) => {
            let v: Vec<_> = parts
                .iter()
                .map(|t| {
                    if let Tensor::I64(a) = t {
                        a.view()
                    } else {
                        unreachable!()
                    }
                })
                .collect();
            Tensor::I64(ndarray::concatenate(Axis(0), &v).expect("same shapes"))
        }
        Tensor::Bool(_) => {
            let v: Vec<_> = parts
                .iter()
                .map(|t| {
                    if let Tensor::Bool(a) = t {
                        a.view()
                    } else {
                        unreachable!()
                    }
                })
                .collect();
            Tensor::Bool(ndarray::concatenate(Axis(0), &v).expect("same shapes"))
        }
    }
}

/// Top-1 accuracy of `logits` ([N, classes]) against `labels`.
pub fn top1(logits: &Tensor, labels: &[i64]) -> f64 {
    let (n, k) = (
        logits.shape()[0],
        logits.shape().get(1).copied().unwrap_or(1),
    );
    let v = logits.to_f64_vec();
    let correct = (0..n)
        .filter(|&i| {
            let row = &v[i * k..(i + 1) * k];
            let arg = (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            labels.get(i) == Some(&(arg as i64))
        })
        .count();
    correct as f64 / n.max(1) as f64
}
