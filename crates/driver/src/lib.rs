//! # pannc-driver: the compile driver
//!
//! The only place that knows the order of compilation: import is the caller's (the graph
//! arrives in imported form), then [`compile`] runs a pipeline of passes (by default
//! [`Pipeline::pann`]), checking the graph after every pass and its form at the end; then
//! [`simulate`] runs the PANN on data, [`lowered`] prepares it for ONNX runtimes and
//! [`emit_ckks`] hands it to the CKKS backend. Nothing here does I/O: the CLI reads files,
//! calls in, prints and writes.
//!
//! ```text
//! imported ──compile──► PANN ──lowered──► lowered (ONNX)
//!                        ├──simulate──► outputs, out-of-range counts
//!                        ├──emit_ckks──► pannc-circuit v1/v2 (slot-per-sample, + bootstraps, checked)
//!                        └──emit_packed──► pannc-circuit v3 (packed: rotations, bootstraps; checked
//!                                          against the interpreter)
//! ```

use pannc_interp::RunOptions;
use pannc_ir::{verify_form, Form, Graph, Op, Tensor, ValueId};
use pannc_passes::{Context, PassError, Pipeline};

pub use pannc_ckks::levels::ActivationLevels;
pub use pannc_ckks::{EmitOptions, Emitted, PackedEmitOptions, PackedEmitted, Security};
pub use pannc_interp::Memo;
pub use pannc_passes::{ActivationReport, Policy, Report};

/// Errors of the driver: a pass failed, a stage broke its promise, or the interpreter or the
/// backend refused.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Pass(#[from] PassError),
    /// A graph is not in the form a stage promises or requires (a bug in a pass when it
    /// follows one; an unsupported model when it is the input).
    #[error("{stage}: the graph is not in {form} form: {errors}")]
    Form {
        stage: &'static str,
        form: Form,
        errors: String,
    },
    #[error(transparent)]
    Interp(#[from] pannc_interp::InterpError),
    #[error(transparent)]
    Ckks(#[from] pannc_ckks::CkksError),
    #[error("levels: {0}")]
    Levels(#[from] pannc_ir::GraphError),
    #[error("simulation: the batches of output {output} disagree in type or shape")]
    Chunks { output: usize },
}

/// How [`compile_with`] runs.
pub struct CompileOptions {
    pub policy: Policy,
    /// The passes to run; `None` means [`Pipeline::pann`] (and then the result must be in
    /// PANN form).
    pub pipeline: Option<Pipeline>,
    /// Verify the graph's structural invariants after every pass (on by default; the check is
    /// linear in the graph's size, negligible next to calibration).
    pub verify: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            policy: Policy::default(),
            pipeline: None,
            verify: true,
        }
    }
}

fn check_form(g: &Graph, stage: &'static str, form: Form) -> Result<(), DriverError> {
    let errs = verify_form(g, form);
    if errs.is_empty() {
        return Ok(());
    }
    let errors: Vec<String> = errs.iter().take(8).map(|e| e.to_string()).collect();
    let more = errs.len().saturating_sub(8);
    Err(DriverError::Form {
        stage,
        form,
        errors: errors.join("; ")
            + &if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            },
    })
}

/// Compiles `g` into a PANN in place with the default pipeline and returns the report.
/// `calib` holds one batch-first tensor per graph input.
pub fn compile(g: &mut Graph, calib: Vec<Tensor>, policy: Policy) -> Result<Report, DriverError> {
    Ok(compile_with(
        g,
        calib,
        CompileOptions {
            policy,
            ..CompileOptions::default()
        },
        |_, _| {},
    )?
    .report)
}

/// What [`compile_with`] made besides the PANN itself (compiled in place).
#[derive(Debug)]
pub struct Compiled {
    pub report: Report,
    /// The client-side tail after the logits (softmax, argmax, `ai.onnx.ml` post-processing),
    /// split off to run in plaintext on the decrypted outputs: a graph whose inputs are the
    /// PANN outputs it reads, by name.
    pub tail: Option<Graph>,
}

/// Compiles `g` in place with `opts`, calling `after(pass, graph)` after every pass (for
/// `--print-after`). Checks the imported form first, the structural invariants after every
/// pass when `opts.verify`, and the PANN form at the end when the default pipeline ran.
pub fn compile_with(
    g: &mut Graph,
    calib: Vec<Tensor>,
    opts: CompileOptions,
    after: impl FnMut(&'static str, &Graph),
) -> Result<Compiled, DriverError> {
    check_form(g, "import", Form::Imported)?;
    let full = opts.pipeline.is_none();
    let pipeline = opts.pipeline.unwrap_or_else(Pipeline::pann);
    let mut cx = Context {
        calib,
        policy: opts.policy,
        ..Default::default()
    };
    run_pipeline(&pipeline, g, &mut cx, opts.verify, after)?;
    if full {
        check_form(g, "compile", Form::Pann)?;
    }
    cx.report.levels = pannc_passes::analysis::levels(g)?;
    cx.report.ct_ct_mults = pannc_passes::analysis::ct_ct_mults(g)?;
    Ok(Compiled {
        report: cx.report,
        tail: cx.tail,
    })
}

/// Runs `pipeline`, verifying the graph after every pass when `verify`.
fn run_pipeline(
    pipeline: &Pipeline,
    g: &mut Graph,
    cx: &mut Context,
    verify: bool,
    mut after: impl FnMut(&'static str, &Graph),
) -> Result<(), DriverError> {
    let mut broken = None;
    pipeline.run_with(g, cx, |name, g| {
        after(name, g);
        if verify && broken.is_none() {
            let errs = pannc_ir::verify(g);
            if !errs.is_empty() {
                broken = Some((name, errs));
            }
        }
    })?;
    if let Some((pass, errs)) = broken {
        let errors: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        return Err(PassError::Verify {
            pass,
            errors: errors.join("; "),
        }
        .into());
    }
    Ok(())
}

/// A backbone brought once to where approximation starts, for many compilations under
/// different policies (the accuracy lab, `compile --budget`): the passes before `approximate`
/// ([`Pipeline::pann_prefix`]) have run, and the calibrated statistics of every activation
/// input are computed. [`compile_prepared`] then runs only the rest, and gives exactly what
/// [`compile`] gives from the backbone (same graph, same report), several times faster.
#[derive(Clone, Debug)]
pub struct Prepared {
    graph: Graph,
    calib: Vec<Tensor>,
    ranges: pannc_passes::analysis::Ranges,
    /// What the prefix passes reported (notes on a removed softmax, a lowered max-pool).
    report: Report,
    /// The client-side tail `split-tail` took off (see [`Compiled::tail`]).
    tail: Option<Graph>,
    keep_softmax: bool,
}

impl Prepared {
    /// The graph where approximation starts.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
    /// Calibrated statistics of every activation input of [`Prepared::graph`].
    pub fn ranges(&self) -> &pannc_passes::analysis::Ranges {
        &self.ranges
    }
    pub fn calib(&self) -> &[Tensor] {
        &self.calib
    }
    /// The client-side tail split off the backbone (the same for every compilation).
    pub fn tail(&self) -> Option<&Graph> {
        self.tail.as_ref()
    }
}

/// Prepares `g` (imported form) for [`compile_prepared`]; `policy.keep_softmax` is the only
/// part of the policy this stage reads, and it is fixed for the compilations that follow.
pub fn prepare(g: &Graph, calib: Vec<Tensor>, policy: &Policy) -> Result<Prepared, DriverError> {
    check_form(g, "import", Form::Imported)?;
    let mut graph = g.clone();
    let mut cx = Context {
        calib,
        policy: Policy {
            keep_softmax: policy.keep_softmax,
            ..Policy::default()
        },
        ..Default::default()
    };
    run_pipeline(
        &Pipeline::pann_prefix(),
        &mut graph,
        &mut cx,
        true,
        |_, _| {},
    )?;
    let acts = pannc_passes::analysis::activation_inputs(&graph);
    let ranges = if cx.calib.is_empty() {
        Default::default()
    } else {
        pannc_passes::analysis::calibrate(&graph, &cx.calib, &acts)?
    };
    Ok(Prepared {
        graph,
        calib: cx.calib,
        ranges,
        report: cx.report,
        tail: cx.tail,
        keep_softmax: policy.keep_softmax,
    })
}

/// Compiles a prepared backbone under `policy` (its `keep_softmax` is the prepared one's);
/// returns the PANN and its report, equal to what [`compile`] returns.
pub fn compile_prepared(p: &Prepared, policy: Policy) -> Result<(Graph, Report), DriverError> {
    compile_prepared_with(p, policy, None)
}

/// [`compile_prepared`], the passes that run the graph on the calibration data reusing what
/// earlier compilations computed the same way (a `memo` made for `p.calib()`); same result.
pub fn compile_prepared_with(
    p: &Prepared,
    policy: Policy,
    memo: Option<std::sync::Arc<pannc_interp::Memo>>,
) -> Result<(Graph, Report), DriverError> {
    let mut g = p.graph.clone();
    let mut cx = Context {
        calib: p.calib.clone(),
        policy: Policy {
            keep_softmax: p.keep_softmax,
            ..policy
        },
        ranges: p.ranges.clone(),
        report: p.report.clone(),
        memo,
        tail: p.tail.clone(),
    };
    run_pipeline(
        &Pipeline::pann_approximation(),
        &mut g,
        &mut cx,
        true,
        |_, _| {},
    )?;
    check_form(&g, "compile", Form::Pann)?;
    cx.report.levels = pannc_passes::analysis::levels(&g)?;
    cx.report.ct_ct_mults = pannc_passes::analysis::ct_ct_mults(&g)?;
    Ok((g, cx.report))
}

/// The part of the original network a PANN stands for: `original` with the outputs of
/// `pann` (found by name; the tail split off by `split-tail` ends there) and nothing else.
pub fn backbone_of(original: &Graph, pann: &Graph) -> Result<Graph, DriverError> {
    let mut g = original.clone();
    let mut outs = Vec::new();
    for &v in pann.outputs() {
        let name = &pann.value(v).name;
        outs.push(g.find_value(name).ok_or_else(|| DriverError::Form {
            stage: "backbone",
            form: Form::Imported,
            errors: format!("the original network has no value '{name}' (a PANN output)"),
        })?);
    }
    g.set_outputs(outs);
    Pipeline::new(vec![Box::new(pannc_passes::Dce)]).run(&mut g)?;
    Ok(g)
}

/// The compiled graph as ONNX runtimes can run it: polynomials lowered to Mul/Add.
pub fn lowered(g: &Graph) -> Result<Graph, DriverError> {
    let mut h = g.clone();
    let mut cx = Context::default();
    Pipeline::new(vec![Box::new(pannc_passes::LowerPoly)]).run_with(&mut h, &mut cx, |_, _| {})?;
    check_form(&h, "lower-poly", Form::Lowered)?;
    Ok(h)
}

/// Plans every polynomial of a PANN as a CKKS circuit and checks its levels and ct×ct count
/// with equality saturation under the default limits (`pannc_ckks::levels`).
pub fn prove_levels(g: &Graph) -> Result<Vec<ActivationLevels>, DriverError> {
    Ok(pannc_ckks::levels::activation_levels(
        g,
        &pannc_ckks::Limits::default(),
    )?)
}

/// [`prove_levels`] for one polynomial, reported under `node`; `egg: false` plans it only
/// (fast: levels and ct×ct of the planner's circuit).
pub fn poly_levels(
    node: &str,
    p: &pannc_ir::Poly,
    egg: bool,
) -> Result<ActivationLevels, DriverError> {
    let limits = pannc_ckks::Limits::default();
    Ok(pannc_ckks::levels::poly_levels(
        node,
        p,
        egg.then_some(&limits),
    )?)
}

/// Lowers a PANN to a CKKS circuit (see [`pannc_ckks::emit`]).
pub fn emit_ckks(g: &Graph, opts: &EmitOptions) -> Result<Emitted, DriverError> {
    check_form(g, "emit ckks", Form::Pann)?;
    Ok(pannc_ckks::emit(g, opts)?)
}

/// Lowers a PANN to a packed CKKS program (`pannc-circuit` version 3; see
/// [`pannc_ckks::emit_packed`]): checked against the interpreter on random data and on
/// `calib` (one batch-first tensor per graph input) before it is returned, bootstraps placed
/// under `opts.max_level`.
pub fn emit_packed(
    g: &Graph,
    calib: &[Tensor],
    opts: &PackedEmitOptions,
) -> Result<PackedEmitted, DriverError> {
    check_form(g, "emit ckks", Form::Pann)?;
    Ok(pannc_ckks::emit_packed(g, calib, opts)?)
}

/// Per polynomial node: how many of its inputs fell outside the interval it is accurate on.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OutOfRange {
    pub node: String,
    pub outside: usize,
    pub total: usize,
    /// Largest |x|/B seen (1 = at the edge of the interval; for an asymmetric interval
    /// `[lo, hi]`, `|2x − lo − hi|/(hi − lo)`).
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
pub fn simulate(g: &Graph, inputs: &[Tensor], chunk: usize) -> Result<Simulation, DriverError> {
    // Polynomials in topological order, so the first one with inputs outside its interval is
    // where a failure starts.
    let polys: Vec<(String, ValueId, pannc_ir::Poly)> = g
        .topo_order()?
        .into_iter()
        .filter_map(|id| match &g.node(id).op {
            Op::Poly(p) => Some((
                g.node(id).name.clone(),
                g.node(id).inputs()[0],
                (**p).clone(),
            )),
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
        let part: Vec<Tensor> = inputs.iter().map(|t| t.slice_batch(start, end)).collect();
        let mut res = pannc_interp::run(&probe, &part, &RunOptions::default())?;
        let extra = res.split_off(n_out);
        for (k, t) in res.into_iter().enumerate() {
            results[k].push(t);
        }
        for ((c, t), p) in counts.iter_mut().zip(extra).zip(&polys) {
            let per_sample = t.len() / (end - start).max(1);
            for (i, v) in t.to_f64_vec().into_iter().enumerate() {
                let r = p.2.domain_position(v);
                c.total += 1;
                // NaN is outside every interval, and as bad as it gets.
                let r = if r.is_nan() { f64::INFINITY } else { r };
                if r > 1.0 {
                    c.outside += 1;
                    sample_outside[start + i / per_sample.max(1)] = true;
                }
                c.worst = c.worst.max(r);
            }
        }
        if n == 0 {
            break;
        }
        start = end;
    }
    let outputs = results
        .iter()
        .enumerate()
        .map(|(output, parts)| Tensor::concat_batch(parts).ok_or(DriverError::Chunks { output }))
        .collect::<Result<_, _>>()?;
    Ok(Simulation {
        outputs,
        out_of_range: counts,
        sample_outside,
    })
}

/// Predicted class per row of `[N, classes]` logits; `None` for a row holding a non-finite
/// value (a broken PANN must not score by luck).
pub fn predictions(logits: &Tensor) -> Vec<Option<usize>> {
    let n = logits.shape().first().copied().unwrap_or(0);
    let k = logits.len() / n.max(1);
    let v = logits.to_f64_vec();
    (0..n)
        .map(|i| {
            let row = &v[i * k..(i + 1) * k];
            row.iter()
                .all(|x| x.is_finite())
                .then(|| (0..k).fold(0, |b, j| if row[j] > row[b] { j } else { b }))
        })
        .collect()
}

/// Top-1 accuracy of `logits` ([N, classes]) against `labels`; rows with non-finite logits
/// count as wrong.
pub fn top1(logits: &Tensor, labels: &[i64]) -> f64 {
    let pred = predictions(logits);
    let correct = pred
        .iter()
        .zip(labels)
        .filter(|(p, &l)| p.is_some_and(|p| p as i64 == l))
        .count();
    correct as f64 / pred.len().max(1) as f64
}

/// How two batches of outputs differ: the largest |a − b| over pairs where both are finite,
/// and how many rows (samples) of `a` hold a non-finite value.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Deviation {
    pub max_finite: f64,
    pub non_finite_rows: usize,
    pub rows: usize,
}

/// Compares `a` (e.g. the PANN's outputs) with `b` (the backbone's), row by row.
pub fn deviation(a: &Tensor, b: &Tensor) -> Deviation {
    let rows = a.shape().first().copied().unwrap_or(0);
    let k = a.len() / rows.max(1);
    let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
    let mut d = Deviation {
        rows,
        ..Deviation::default()
    };
    for r in 0..rows {
        let (ra, rb) = (
            &x[r * k..(r + 1) * k],
            &y[(r * k).min(y.len())..((r + 1) * k).min(y.len())],
        );
        if ra.iter().any(|v| !v.is_finite()) {
            d.non_finite_rows += 1;
            continue;
        }
        for (p, q) in ra.iter().zip(rb) {
            if q.is_finite() {
                d.max_finite = d.max_finite.max((p - q).abs());
            }
        }
    }
    d
}
