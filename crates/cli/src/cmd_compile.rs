//! `pannc compile`: turn a trained network into a PANN.

use crate::load;
use anyhow::{bail, Context as _, Result};
use pannc_ckks::fhe;
use pannc_driver::{self as driver, CompileOptions, EmitOptions};
use pannc_ir::Tensor;
use pannc_passes::{Pipeline, Policy};
use std::path::PathBuf;

/// Compile a trained network into a PANN: fold batch-norm, calibrate ranges, replace every
/// nonlinearity with a polynomial, fold the range scaling into linear layers, and emit ONNX,
/// a packed CKKS program (`--emit ckks`: one sample per ciphertext, convolutions as rotations,
/// bootstraps; any CNN of the supported ops) or a slot-per-sample CKKS circuit (`--emit
/// circuit`/`--circuit`; MLPs only).
///
/// Examples:
///   pannc compile fixtures/resnet_fmnist/model.onnx --calib fixtures/resnet_fmnist/calib_x.npy \
///       --alpha 7 --techniques shape+bias --emit ckks --max-level 10 -o resnet.ckks
///   python -m pannc_openfhe run resnet.ckks --input x.npy --output y.npy
///   pannc compile fixtures/resnet_fmnist/model.onnx --calib fixtures/resnet_fmnist/calib_x.npy \
///       --alpha 9 -o pann.onnx --report report.json \
///       --check fixtures/resnet_fmnist/test_x.npy --labels fixtures/resnet_fmnist/test_y.npy
///   pannc compile fixtures/gelu_digits/model.onnx --calib fixtures/gelu_digits/calib_x.npy \
///       --circuit gelu_digits.circuit.json
///   scripts/openfhe_run.py gelu_digits.circuit.json --inputs-npy fixtures/gelu_digits/test_x.npy
#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    /// The trained ONNX model.
    pub model: PathBuf,
    /// Calibration inputs (.npy, batch first): each activation's range is measured on them.
    #[arg(long, required_unless_present = "input_range")]
    pub calib: Option<PathBuf>,
    /// Declared range A,B of every input element: also bound each activation by (sound,
    /// looser) interval analysis; used for the intervals when no --calib is given.
    #[arg(long, value_name = "A,B", allow_hyphen_values = true)]
    pub input_range: Option<String>,
    /// Precision 2^-α of ReLU-like approximations (composite minimax sign).
    #[arg(long, default_value_t = 9)]
    pub alpha: u32,
    /// Degree of the minimax polynomial for smooth activations (GELU, SiLU, Sigmoid, Tanh).
    #[arg(long, default_value_t = 31)]
    pub degree: usize,
    /// Safety margin: each polynomial's interval is ±margin·max|x| over the calibration data.
    #[arg(long, default_value_t = 1.3)]
    pub margin: f64,
    /// Accuracy techniques: `shape` (negative-side error shaping), `bias` (bias correction),
    /// both as `shape+bias`; each costs zero extra levels. (`alloc` lives in `pannc eval`.)
    #[arg(long, default_value = "baseline")]
    pub techniques: String,
    /// Weight of errors on negative inputs relative to positive ones, for `shape`.
    #[arg(long, default_value_t = 4.0)]
    pub negative_weight: f64,
    /// Per-node override of α (ReLU-like) or degree (smooth), by node name; or of a ReLU's
    /// approximation: NODE=composite:α, NODE=minimax:D (one minimax polynomial of degree D),
    /// NODE=fit:D (one polynomial fitted to the node's calibrated inputs). Repeatable.
    #[arg(long = "set", value_name = "NODE=N")]
    pub overrides: Vec<String>,
    /// Approximation of every ReLU not set by --set: composite:α, minimax:D or fit:D
    /// (default: the composite at --alpha).
    #[arg(long, value_name = "METHOD:N")]
    pub relu: Option<String>,
    /// Where to write the PANN: ONNX (polynomials as Mul/Add); with `--emit ckks` a directory
    /// (program.json + weights.npz); with `--emit circuit` the circuit (stdout when absent).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// What -o writes: `onnx` (default); `ckks`, a packed CKKS program (pannc-circuit v3,
    /// docs/packed-format.md: each sample's tensors packed in the slots of one ciphertext,
    /// convolutions and dense layers as rotation-based linear maps, real bootstraps under
    /// --max-level; checked against the interpreter before it is written); `circuit`, the
    /// slot-per-sample circuit (pannc-circuit JSON v1/v2; MLPs only).
    #[arg(long, value_parser = ["onnx", "ckks", "circuit"], default_value = "onnx")]
    pub emit: String,
    /// `--emit ckks`: slots per ciphertext (a power of two); tensors larger than S span several
    /// ciphertexts. Default: the smallest power of two holding the largest tensor.
    #[arg(long, value_name = "S")]
    pub slots: Option<usize>,
    /// `--emit ckks`: plan test-size CKKS parameters (ring dimension 2·S, at least 2^12;
    /// `HEStd_NotSet`) instead of 128-bit security (`HEStd_128_classic`). Never for real data.
    #[arg(long)]
    pub insecure: bool,
    /// `--emit ckks`: calibration samples evaluated in plaintext against the interpreter
    /// before writing (they also measure the ranges bootstraps need).
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub check_samples: usize,
    /// Also write the CKKS circuit (pannc-circuit JSON; one ciphertext per feature, samples in
    /// the slots) here. Supports Gemm/MatMul, Add/Sub, Flatten/Reshape and polynomials.
    #[arg(long, value_name = "OUT.json")]
    pub circuit: Option<PathBuf>,
    /// Level budget of the CKKS parameters between bootstraps: when the program is deeper,
    /// place bootstraps refreshing the fewest ciphertexts. `--emit ckks`: on normalised values
    /// (polynomial inputs and outputs), residual branches refreshed only where needed; with
    /// OpenFHE's recipe (depth 30, level budget [3,3], uniform ternary) L = 10. `--circuit`:
    /// at layer boundaries (circuit format version 2).
    #[arg(long, value_name = "L")]
    pub max_level: Option<u32>,
    /// Plan every activation's polynomial as a CKKS circuit and check its levels with
    /// equality saturation (egg, under node/iteration/time limits): levels planned, the
    /// per-stage bound Σ⌈log2(dᵢ+1)⌉ (+1 for ×x), the semantic bound ⌈log2(D+1)⌉, the distance.
    #[arg(long)]
    pub prove_levels: bool,
    /// Where to write the JSON compile report.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Simulate the PANN on these inputs (.npy) and report accuracy and out-of-range counts.
    #[arg(long)]
    pub check: Option<PathBuf>,
    /// Labels (.npy, int64) for --check.
    #[arg(long, requires = "check")]
    pub labels: Option<PathBuf>,
    /// Run only these passes, in this order (comma-separated). Passes: remove-identity,
    /// const-fold, dce, recognize, split-tail, fold-batchnorm, lower-maxpool,
    /// decompose-layernorm, decompose-softmax, approximate, bias-correct, range-control,
    /// lower-poly.
    #[arg(long, value_delimiter = ',')]
    pub passes: Vec<String>,
    /// Print the IR after this pass (repeatable; `all` for every pass).
    #[arg(long = "print-after", value_name = "PASS")]
    pub print_after: Vec<String>,
    /// Where to write the client-side tail that follows the logits (Softmax, ArgMax,
    /// scikit-learn's ZipMap/ArrayFeatureExtractor/label casts): it is not run under encryption
    /// but split off as a plaintext ONNX graph that reads the PANN's outputs by name. Default:
    /// next to -o (`NAME.tail.onnx`, or `DIR/tail.onnx` with --emit ckks).
    #[arg(long, value_name = "OUT.onnx")]
    pub tail: Option<PathBuf>,
    /// Keep Softmax/LogSoftmax in the network instead of splitting them off with the tail
    /// (an error: pannc cannot approximate them).
    #[arg(long)]
    pub keep_softmax: bool,
    /// Choose each ReLU's approximation (composite α, minimax degree, fitted degree; bias
    /// correction on) to minimise the network's levels, then its ct×ct multiplications, while
    /// the PANN disagrees with the backbone's top-1 on at most this share of the --calib
    /// inputs: a percentage (0.5%) or a fraction (0.005). No labels needed. Replaces --alpha,
    /// --relu and --techniques for ReLUs; the report says what each ReLU got and why.
    #[arg(long, value_name = "P%", conflicts_with_all = ["relu", "passes"])]
    pub budget: Option<String>,
    /// Transformers: degree of the minimax exp in decomposed softmaxes [default: 15].
    #[arg(long, value_name = "D")]
    pub exp_degree: Option<usize>,
    /// Transformers: degree of the minimax inverse square root in LayerNorms [default: 31].
    #[arg(long, value_name = "D")]
    pub invsqrt_degree: Option<usize>,
    /// Transformers: degree of the softmax's final minimax reciprocal [default: 15].
    #[arg(long, value_name = "D")]
    pub reciprocal_degree: Option<usize>,
    /// Transformers: Newton steps after each reciprocal and inverse square root [default: 0].
    #[arg(long, value_name = "K")]
    pub newton: Option<u32>,
    /// Transformers: instead of the fixed degrees, give each exp, inverse square root and
    /// reciprocal the cheapest degree (3, 7, 15, 31, 63) whose relative error on its calibrated
    /// interval is at most E.
    #[arg(long, value_name = "E")]
    pub relative_error: Option<f64>,
    /// Transformers: softmax squarings r (default: calibrated, first row sums within a ratio of 32).
    #[arg(long, value_name = "R")]
    pub softmax_squarings: Option<u32>,
    #[command(flatten)]
    pub mem: load::MemoryArgs,
}

pub fn run(a: &CompileArgs) -> Result<()> {
    a.mem.apply()?;
    let model = load::load_model(&a.model)?;
    let mut graph = model.graph.clone();
    let calib = match &a.calib {
        Some(p) => vec![check_input(&graph, load::read_npy(p)?, "--calib")?],
        None => vec![],
    };
    let input_range = match &a.input_range {
        Some(r) => {
            let parsed = r.split_once(',').and_then(|(x, y)| {
                Some((x.trim().parse::<f64>().ok()?, y.trim().parse::<f64>().ok()?))
            });
            match parsed {
                Some((lo, hi)) if lo <= hi && lo.is_finite() && hi.is_finite() => Some((lo, hi)),
                _ => bail!("--input-range {r}: expected A,B with A ≤ B"),
            }
        }
        None => None,
    };
    let techniques = pannc_lab::Techniques::parse(&a.techniques).map_err(anyhow::Error::msg)?;
    if techniques.alloc {
        bail!("--techniques alloc needs labelled data and a budget: use `pannc eval --techniques alloc`, then pass its α per node with --set");
    }
    if !(a.negative_weight > 0.0 && a.negative_weight.is_finite()) {
        bail!(
            "--negative-weight must be positive (got {})",
            a.negative_weight
        );
    }
    let mut policy = Policy {
        shape: techniques.shape,
        bias_correct: techniques.bias,
        negative_weight: a.negative_weight,
        alpha: a.alpha,
        degree: a.degree,
        margin: a.margin,
        keep_softmax: a.keep_softmax,
        input_range,
        ..Default::default()
    };
    {
        let t = &mut policy.transformer;
        t.exp_degree = a.exp_degree.unwrap_or(t.exp_degree);
        t.invsqrt_degree = a.invsqrt_degree.unwrap_or(t.invsqrt_degree);
        t.reciprocal_degree = a.reciprocal_degree.unwrap_or(t.reciprocal_degree);
        t.newton_steps = a.newton.unwrap_or(t.newton_steps);
        t.softmax_squarings = a.softmax_squarings.or(t.softmax_squarings);
        t.relative_target = a.relative_error.or(t.relative_target);
    }
    for o in &a.overrides {
        let (node, v) = o
            .split_once('=')
            .with_context(|| format!("--set {o}: expected NODE=N"))?;
        if v.contains(':') {
            let c =
                pannc_passes::Choice::parse(v).map_err(|e| anyhow::anyhow!("--set {o}: {e}"))?;
            policy.choices.insert(node.to_string(), c);
            continue;
        }
        let v: u32 = v
            .parse()
            .with_context(|| format!("--set {o}: N must be a number or METHOD:N"))?;
        policy.overrides.insert(node.to_string(), v);
    }
    if let Some(r) = &a.relu {
        policy.relu =
            Some(pannc_passes::Choice::parse(r).map_err(|e| anyhow::anyhow!("--relu {r}: {e}"))?);
    }
    if !(a.margin >= 1.0 && a.margin.is_finite()) {
        bail!("--margin must be ≥ 1 (got {})", a.margin);
    }
    let pipeline = if a.passes.is_empty() {
        None
    } else {
        let names: Vec<&str> = a.passes.iter().map(|s| s.as_str()).collect();
        Some(Pipeline::from_names(&names)?)
    };
    let names = pipeline
        .as_ref()
        .map_or_else(|| Pipeline::pann().names(), |p| p.names());
    for p in &a.print_after {
        if p != "all" && !names.contains(&p.as_str()) {
            bail!(
                "--print-after {p}: no such pass in the pipeline ({})",
                names.join(", ")
            );
        }
    }
    let opts = CompileOptions {
        policy,
        pipeline,
        verify: true,
    };
    let t0 = std::time::Instant::now();
    let mut chosen = None;
    let compiled = match &a.budget {
        None => driver::compile_with(&mut graph, calib, opts, |name, g| {
            if a.print_after.iter().any(|p| p == name || p == "all") {
                println!("; after {name}\n{}", pannc_ir::print(g));
            }
        })?,
        Some(b) => {
            let budget = crate::cmd_eval::parse_budget(b)?;
            if calib.is_empty() {
                bail!("--budget needs --calib (the disagreement is measured on it)");
            }
            if !a.print_after.is_empty() {
                bail!("--print-after does not apply to --budget");
            }
            let prepared = driver::prepare(&graph, calib, &opts.policy)?;
            let result = pannc_lab::budget::search(&prepared, &opts.policy, budget, &mut |m| {
                if std::env::var_os("PANNC_PROGRESS").is_some() {
                    eprintln!("{m}");
                }
            })?;
            let (g, report) = driver::compile_prepared(&prepared, result.policy.clone())?;
            graph = g;
            chosen = Some(result);
            driver::Compiled {
                report,
                tail: prepared.tail().cloned(),
            }
        }
    };
    let report = compiled.report;
    summarize(&report);
    if let Some(r) = &chosen {
        summarize_budget(r);
    }
    if let Some(tail) = &compiled.tail {
        let path = a.tail.clone().or_else(|| {
            a.output.as_ref().map(|o| match a.emit.as_str() {
                "ckks" => o.join("tail.onnx"),
                _ => o.with_extension("tail.onnx"),
            })
        });
        match path {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                let mut m = model.clone();
                m.graph = tail.clone();
                pannc_onnx::export_to_path(&m, &p, &pannc_onnx::ExportOptions::default())?;
                eprintln!(
                    "wrote the plaintext tail to {} (inputs: {})",
                    p.display(),
                    tail.inputs()
                        .iter()
                        .map(|&v| tail.value(v).name.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            None => eprintln!("note: the tail was not written; give --tail FILE or -o"),
        }
    } else if a.tail.is_some() {
        eprintln!("note: the model has no client-side tail; --tail writes nothing");
    }
    eprintln!("compiled in {:.2} s", t0.elapsed().as_secs_f64());

    let levels = if a.prove_levels {
        let l = pannc_ckks::levels::activation_levels(&graph, &pannc_eqsat::Limits::default())?;
        summarize_levels(&l);
        Some(l)
    } else {
        None
    };
    let mut json = serde_json::json!({ "model": a.model.display().to_string(), "alpha": a.alpha, "degree": a.degree, "margin": a.margin, "compile": &report });
    if let Some(l) = &levels {
        json["activation_levels"] = serde_json::to_value(l)?;
    }
    if let Some(r) = &chosen {
        json["budget"] = serde_json::to_value(r)?;
    }
    if let Some(x) = &a.check {
        let x = check_input(&graph, load::read_npy(x)?, "--check")?;
        let backbone = driver::backbone_of(&model.graph, &graph)?;
        let backbone = driver::simulate(&backbone, std::slice::from_ref(&x), 500)?.outputs;
        let sim = driver::simulate(&graph, std::slice::from_ref(&x), 500)?;
        let (outs, oor) = (sim.outputs, sim.out_of_range);
        let dev = driver::deviation(&outs[0], &backbone[0]);
        let (pp, bp) = (
            driver::predictions(&outs[0]),
            driver::predictions(&backbone[0]),
        );
        let agree = pp
            .iter()
            .zip(&bp)
            .filter(|(p, b)| p.is_some() && p == b)
            .count();
        let n = x.shape()[0];
        let max_dev = if dev.non_finite_rows < n {
            format!("{:.3e}", dev.max_finite)
        } else {
            "— (no finite logits)".to_string()
        };
        eprintln!(
            "check on {n} samples: max |logit(PANN) − logit(backbone)| = {max_dev} over finite logits; top-1 agrees with the backbone on {agree}/{n} ({:.2}%)",
            100.0 * agree as f64 / n.max(1) as f64
        );
        if dev.non_finite_rows > 0 {
            eprintln!(
                "  FAILED: {} of {n} samples have non-finite (NaN/∞) logits; they count as wrong everywhere",
                dev.non_finite_rows
            );
        }
        let outside: Vec<_> = oor.iter().filter(|o| o.outside > 0).collect();
        match outside.first() {
            Some(first) => {
                eprintln!(
                    "  {} activation(s) saw inputs outside their interval; the first in graph order is '{}': {} of {} inputs, worst |x|/B = {:.2}",
                    outside.len(),
                    first.node,
                    first.outside,
                    first.total,
                    first.worst
                );
                for o in &outside[1..] {
                    eprintln!(
                        "  then '{}': {} of {} inputs outside (worst |x|/B = {:.2})",
                        o.node, o.outside, o.total, o.worst
                    );
                }
            }
            None => eprintln!("  no activation input left its interval"),
        }
        let samples_outside = sim.sample_outside.iter().filter(|&&b| b).count();
        json["check"] = serde_json::json!({
            "samples": n,
            "max_logit_deviation": dev.max_finite,
            "non_finite_samples": dev.non_finite_rows,
            "top1_agreement": agree as f64 / n.max(1) as f64,
            "samples_outside": samples_outside,
            "first_outside": outside.first().map(|o| o.node.clone()),
            "out_of_range": oor,
        });
        if let Some(l) = &a.labels {
            let labels = load::read_npy(l)?.to_i64_vec();
            if labels.len() != x.shape()[0] {
                bail!(
                    "--labels has {} entries, --check has {} samples",
                    labels.len(),
                    x.shape()[0]
                );
            }
            let (b, p) = (
                driver::top1(&backbone[0], &labels),
                driver::top1(&outs[0], &labels),
            );
            eprintln!(
                "  top-1: backbone {:.2}%, PANN {:.2}% ({:+.2} points)",
                100.0 * b,
                100.0 * p,
                100.0 * (p - b)
            );
            json["check"]["backbone_top1"] = b.into();
            json["check"]["pann_top1"] = p.into();
        }
    }
    let want_circuit = a.circuit.is_some() || a.emit == "circuit";
    let want_packed = a.emit == "ckks";
    if !want_circuit && !want_packed && a.max_level.is_some() {
        bail!("--max-level needs --emit ckks, --emit circuit or --circuit");
    }
    if !want_packed && (a.slots.is_some() || a.insecure) {
        bail!("--slots and --insecure need --emit ckks");
    }
    if want_packed {
        let Some(dir) = &a.output else {
            bail!("--emit ckks needs -o DIR (the program directory: program.json, weights.npz)");
        };
        let calib = match &a.calib {
            Some(p) => vec![check_input(&model.graph, load::read_npy(p)?, "--calib")?],
            None => bail!("--emit ckks needs --calib (the program is checked on calibration samples and bootstraps need their ranges)"),
        };
        let t0 = std::time::Instant::now();
        let opts = driver::PackedEmitOptions {
            lower: pannc_ckks::lower::packed::PackedOptions {
                slots: a.slots,
                ..Default::default()
            },
            max_level: a.max_level,
            security: if a.insecure {
                driver::Security::Insecure
            } else {
                driver::Security::Classic128
            },
            check_samples: a.check_samples,
            ..Default::default()
        };
        let e = driver::emit_packed(&graph, &calib, &opts)?;
        let secs = t0.elapsed().as_secs_f64();
        let size = fhe::packed::write_dir(dir, &e.program, &e.weights)?;
        summarize_packed(&e, secs);
        eprintln!(
            "wrote {} (program.json {} B, weights.npz {:.1} MB)",
            dir.display(),
            e.json.len(),
            size as f64 / 1e6
        );
        json["ckks"] = packed_report(&e, secs, size);
    }
    if want_circuit {
        let t0 = std::time::Instant::now();
        let emitted = driver::emit_ckks(
            &graph,
            &EmitOptions {
                max_level: a.max_level,
                ..EmitOptions::default()
            },
        )?;
        let (c, text, placed) = (&emitted.circuit, &emitted.json, &emitted.bootstraps);
        let plain_depth = emitted.depth_without_bootstraps;
        summarize_circuit(c, plain_depth, placed.as_ref());
        eprintln!("circuit built in {:.2} s", t0.elapsed().as_secs_f64());
        json["circuit"] = serde_json::json!({
            "depth": c.depth,
            "depth_without_bootstraps": plain_depth,
            "inputs": c.inputs.len(),
            "outputs": c.outputs.len(),
            "stats": &c.stats,
            "ckks": &c.ckks,
            "bootstraps": placed.as_ref().map(|p| serde_json::json!({
                "max_level": p.max_level,
                "refreshed_ciphertexts": p.bootstrapped,
                "before_layers": p.cut_before_layers.iter().map(|&i| c.layers[i].name.clone()).collect::<Vec<_>>(),
            })),
            "layers": c.layers.iter().map(|l| serde_json::json!({
                "name": l.name, "kind": l.kind, "width": l.outputs.len(),
                "level_in": l.level_in, "level": l.level,
            })).collect::<Vec<_>>(),
        });
        let mut targets: Vec<&PathBuf> = a.circuit.iter().collect();
        if a.emit == "circuit" {
            match &a.output {
                Some(o) => targets.push(o),
                None => print!("{text}"),
            }
        }
        for path in targets {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    if let Some(path) = &a.report {
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let (Some(out), "onnx") = (&a.output, a.emit.as_str()) {
        let lowered = driver::lowered(&graph)?;
        let mut m = model.clone();
        m.graph = lowered;
        // Weights go to OUT.data only past protobuf's 2 GiB limit.
        match pannc_onnx::export_to_path(&m, out, &pannc_onnx::ExportOptions::default())? {
            Some(data) => eprintln!("wrote {} (weights in {})", out.display(), data.display()),
            None => eprintln!("wrote {}", out.display()),
        }
    }
    Ok(())
}

/// Checks that `t` fits the model's first input (all but the batch dimension), naming the
/// expected shape otherwise.
pub(crate) fn check_input(g: &pannc_ir::Graph, t: Tensor, flag: &str) -> Result<Tensor> {
    let Some(&v) = g.inputs().first() else {
        bail!("the model has no inputs")
    };
    let val = g.value(v);
    if let Some(ty) = &val.ty {
        let want: Vec<String> = ty.shape.iter().map(|d| d.to_string()).collect();
        let fits = t.shape().len() == ty.shape.len()
            && ty.shape.iter().zip(t.shape()).skip(1).all(|(d, &n)| {
                matches!(d, pannc_ir::Dim::Known(k) if *k == n)
                    || matches!(d, pannc_ir::Dim::Sym(_))
            });
        if !fits {
            bail!(
                "{flag}: data of shape {:?} does not fit input '{}' of shape [{}]",
                t.shape(),
                val.name,
                want.join(",")
            );
        }
        return load::conform_dtype(&val.name, t, ty.dtype);
    }
    Ok(t)
}

fn summarize(r: &pannc_passes::Report) {
    eprintln!(
        "{:<28} {:<10} {:>19} {:>8} {:<10} {:>5} {:>9} {:>6}",
        "activation", "op", "calibrated range", "B", "degrees", "depth", "max err", "folded"
    );
    for a in &r.activations {
        let degs: Vec<String> = a.degrees.iter().map(|d| d.to_string()).collect();
        eprintln!(
            "{:<28} {:<10} [{:>8.3},{:>8.3}] {:>8.3} {:<10} {:>5} {:>9.2e} {:>6}",
            truncate(&a.node, 28),
            a.op,
            a.calibrated.or(a.interval).map_or(f64::NAN, |r| r[0]),
            a.calibrated.or(a.interval).map_or(f64::NAN, |r| r[1]),
            a.bound,
            degs.join(","),
            a.depth,
            a.max_error,
            if a.scale_folded { "yes" } else { "NO" }
        );
        if let Some([lo, hi]) = a.domain {
            eprintln!(
                "{:<28} {:<10} polynomial on [{lo:.4}, {hi:.4}]; {} ct×ct; {}{}",
                "",
                "",
                a.ct_mults,
                a.method,
                a.calib_error.as_ref().map_or(String::new(), |c| format!(
                    "; mean |err| on calibration {:.2e}",
                    c.mean_abs
                ))
            );
        }
        if let (Some(_), Some(iv)) = (a.calibrated, a.interval) {
            eprintln!(
                "{:<28} {:<10} [{:>8.3},{:>8.3}] (interval analysis, sound)",
                "", "", iv[0], iv[1]
            );
        }
    }
    let depth = r.activations.iter().map(|a| a.depth).max().unwrap_or(0);
    eprintln!(
        "{} activations; deepest polynomial {} levels; network {} levels, {} ct×ct per sample; range control costs {} level(s)",
        r.activations.len(),
        depth,
        r.levels,
        r.ct_ct_mults,
        r.range_control_levels
    );
    let shaped = r.activations.iter().filter(|a| a.shaped).count();
    let corrected: Vec<f64> = r
        .activations
        .iter()
        .filter_map(|a| a.bias_correction)
        .collect();
    if shaped > 0 {
        eprintln!("shape: {shaped} polynomial(s) refitted on their calibrated inputs");
    }
    if !corrected.is_empty() {
        eprintln!(
            "bias: {} activation(s) corrected, largest per-channel mean error {:.3e}",
            corrected.len(),
            corrected.iter().cloned().fold(0.0, f64::max)
        );
    }
    for n in &r.notes {
        eprintln!("note: {n}");
    }
}

fn summarize_budget(r: &pannc_lab::budget::BudgetResult) {
    println!(
        "budget {:.2}% of {} calibration inputs: disagreement {:.2}%, network {} levels, {} ct×ct (ReLUs), {} trials",
        100.0 * r.budget,
        r.calib_samples,
        100.0 * r.calib_disagreement,
        r.levels,
        r.ct_mults,
        r.trials
    );
    if let Some(u) = &r.uniform {
        println!(
            "  uniform start: {} for every ReLU (depth {}): {} levels, {} ct×ct, disagreement {:.2}%",
            u.choice,
            u.depth,
            u.levels,
            u.ct_mults,
            100.0 * u.calib_disagreement
        );
    }
    println!(
        "{:<28} {:<14} {:>6} {:>6}  why",
        "activation", "choice", "levels", "ct×ct"
    );
    for c in &r.activations {
        println!(
            "{:<28} {:<14} {:>6} {:>6}  {}",
            truncate(&c.node, 28),
            c.choice.to_string(),
            c.levels,
            c.ct_mults,
            c.why
        );
    }
}

fn summarize_levels(l: &[pannc_ckks::levels::ActivationLevels]) {
    eprintln!(
        "{:<28} {:<10} {:>7} {:>7} {:>8} {:>5} {:>8} {:>14}  egg stop",
        "activation",
        "degrees",
        "planned",
        "bound",
        "semantic",
        "egg",
        "distance",
        "ct×ct plan/egg"
    );
    for r in l {
        let degs: Vec<String> = r.degrees.iter().map(|d| d.to_string()).collect();
        eprintln!(
            "{:<28} {:<10} {:>7} {:>7} {:>8} {:>5} {:>8} {:>14}  {} ({:.2} s)",
            truncate(&r.node, 28),
            degs.join(","),
            r.planned,
            r.stage_bound,
            r.semantic_bound.map_or("-".into(), |b| b.to_string()),
            r.after_egg,
            r.distance,
            format!("{}/{}", r.ct_mults_planned, r.ct_mults_after_egg),
            r.egg_stop,
            r.egg_seconds
        );
    }
}

fn summarize_circuit(c: &fhe::Circuit, plain_depth: u32, placed: Option<&fhe::BootstrapPlan>) {
    eprintln!(
        "circuit '{}': {} input ciphertexts, {} outputs, {} ops ({} ct×ct, {} ct×const, {} additions)",
        c.name,
        c.inputs.len(),
        c.outputs.len(),
        c.ops.len(),
        c.stats.ct_ct_mults,
        c.stats.ct_const_mults,
        c.stats.additions
    );
    eprintln!(
        "{:<32} {:<14} {:>5} {:>8} {:>6} {:>6}",
        "layer", "kind", "width", "level in", "level", "+levels"
    );
    for l in &c.layers {
        eprintln!(
            "{:<32} {:<14} {:>5} {:>8} {:>6} {:>6}",
            truncate(&l.name, 32),
            truncate(&l.kind, 14),
            l.outputs.len(),
            l.level_in,
            l.level,
            l.levels()
        );
    }
    if let Some(p) = placed {
        if p.bootstrapped > 0 {
            eprintln!(
                "bootstraps: {} ciphertexts refreshed at {} layer boundaries (max level {}; depth {} without)",
                p.bootstrapped,
                p.cut_before_layers.len(),
                p.max_level,
                plain_depth
            );
        } else {
            eprintln!(
                "no bootstrap needed: depth {} ≤ max level {}",
                c.depth, p.max_level
            );
        }
    }
    eprintln!(
        "total depth {}; suggested CKKS: ring dimension {}, scale 2^{}, first prime {} bits, log Q ≈ {} bits, {}",
        c.depth,
        c.ckks.ring_dim,
        c.ckks.scale_bits,
        c.ckks.first_mod_bits,
        c.ckks.log_q_estimate,
        c.ckks.security
    );
}

/// Per op of a packed program: its cost counts.
fn op_counts(p: &fhe::packed::Program, j: usize) -> (usize, usize, usize, usize) {
    use fhe::packed::OpKind;
    let op = &p.ops[j];
    let cts = |v: u32| p.values[v as usize].ciphertexts;
    match &op.kind {
        OpKind::Linear { .. } => (0, 0, 0, 0),
        OpKind::Poly { input, circuit } => {
            (0, 0, circuit.stats.ct_ct_mults as usize * cts(*input), 0)
        }
        OpKind::Bootstrap { input } => (0, 0, 0, cts(*input)),
        OpKind::Rotate { .. } => (1, 0, 0, 0),
        OpKind::MulConst { a, .. } => (0, cts(*a), 0, 0),
        OpKind::Add { .. } => (0, 0, 0, 0),
    }
}

fn summarize_packed(e: &driver::PackedEmitted, secs: f64) {
    use fhe::packed::{cost, OpKind};
    let p = &e.program;
    let model = cost::CostModel::at(p.ckks.ring_dim);
    eprintln!(
        "packed CKKS program '{}': {} slots, {} ops ({} linear, {} poly), depth {} ({} without bootstraps)",
        p.name, p.slots, p.ops.len(), p.stats.linear, p.stats.poly, p.depth, e.depth_without_bootstraps
    );
    eprintln!(
        "{:>3} {:<9} {:<34} {:>4} {:>9} {:>5} {:>6} {:>4} {:>5} {:>5} {:>8}",
        "op", "kind", "node", "cts", "level", "diag", "n1", "baby", "giant", "ct×ct", "est s"
    );
    for (j, op) in p.ops.iter().enumerate() {
        let node = p
            .layers
            .iter()
            .find(|l| l.op == j)
            .map_or("", |l| l.node.as_str());
        let args = op.kind.args();
        let lin = args
            .iter()
            .map(|&a| p.values[a as usize].level)
            .max()
            .unwrap_or(0);
        let cts = p.values[op.out as usize].ciphertexts;
        let (mut st, diag, n1, baby, giant) = match &op.kind {
            OpKind::Linear { weights, n1, .. } => {
                let w = &e.weights[weights];
                let b = cost::Bsgs::new(&w.index, *n1, p.slots);
                let st = fhe::packed::Stats {
                    rotations: b.rotations(),
                    pt_mults: w.index.len(),
                    ..Default::default()
                };
                (
                    st,
                    w.index.len().to_string(),
                    n1.to_string(),
                    b.baby.len().to_string(),
                    b.giant.len().to_string(),
                )
            }
            _ => (
                fhe::packed::Stats::default(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ),
        };
        let (r, pt, cc, bs) = op_counts(p, j);
        st.rotations += r;
        st.pt_mults += pt;
        st.ct_ct_mults = cc;
        st.bootstraps = bs;
        let kind = match &op.kind {
            OpKind::Poly { circuit, .. } => format!("poly/{}", circuit.depth),
            k => k.name().to_string(),
        };
        eprintln!(
            "{:>3} {:<9} {:<34} {:>4} {:>4}→{:<4} {:>5} {:>6} {:>4} {:>5} {:>5} {:>8.1}",
            j,
            truncate(&kind, 9),
            truncate(node, 34),
            cts,
            lin,
            op.level,
            diag,
            n1,
            baby,
            giant,
            if cc > 0 {
                cc.to_string()
            } else {
                String::new()
            },
            model.seconds(&st)
        );
    }
    match &e.placement {
        Some(pl) => {
            let at: Vec<String> = p
                .ops
                .iter()
                .enumerate()
                .filter(|(_, o)| matches!(o.kind, OpKind::Bootstrap { .. }))
                .map(|(j, o)| {
                    let OpKind::Bootstrap { input } = o.kind else {
                        unreachable!()
                    };
                    let src = &p.ops[j - 1];
                    let node = p
                        .layers
                        .iter()
                        .find(|l| l.op == j)
                        .map_or("?", |l| l.node.as_str());
                    let r = p.values[input as usize]
                        .range
                        .unwrap_or([f64::NAN, f64::NAN]);
                    format!(
                        "value {input} ({} of '{node}', range [{:.2}, {:.2}])",
                        src.kind.name(),
                        r[0],
                        r[1]
                    )
                })
                .collect();
            eprintln!(
                "bootstraps: {} ciphertexts refreshed ({}; max level {}):",
                pl.ciphertexts,
                if pl.exact {
                    "minimal"
                } else {
                    "state set truncated: not proven minimal"
                },
                p.ckks.levels
            );
            for a in at {
                eprintln!("  {a}");
            }
        }
        None => eprintln!(
            "bootstraps: none (depth {} ≤ levels {})",
            p.depth, p.ckks.levels
        ),
    }
    let keys: Vec<String> = p.rotations.iter().take(12).map(|k| k.to_string()).collect();
    eprintln!(
        "rotations: {} per sample, {} plaintext products, {} ct×ct; rotation keys: {} ({}{})",
        p.stats.rotations,
        p.stats.pt_mults,
        p.stats.ct_ct_mults,
        p.stats.keys,
        keys.join(", "),
        if p.rotations.len() > 12 { ", …" } else { "" }
    );
    eprintln!(
        "check: {} values vs the interpreter (f64): random inputs max rel. error {:.2e}, {} calibration samples {:.2e}",
        e.check.values_checked, e.check.random_max_rel_error, e.check.samples, e.check.calib_max_rel_error
    );
    let c = &p.ckks;
    eprintln!(
        "CKKS: ring dimension {}, {} slots, scale 2^{}, first prime {} bits, {} levels + {} for bootstrapping = multiplicative depth {}, log QP ≈ {} bits, {}{}",
        c.ring_dim,
        c.slots,
        c.scale_bits,
        c.first_mod_bits,
        c.levels,
        e.multiplicative_depth - c.levels,
        e.multiplicative_depth,
        e.log_qp,
        c.security,
        if c.security == "HEStd_NotSet" { " (INSECURE test parameters: never use them for real data)" } else { " (128-bit security)" }
    );
    if let Some(est) = &p.estimate {
        eprintln!(
            "estimated encrypted time: {:.0} s per sample ({})",
            est.seconds, est.model
        );
    }
    eprintln!("packed program built and checked in {secs:.2} s");
}

fn packed_report(e: &driver::PackedEmitted, secs: f64, size: u64) -> serde_json::Value {
    use fhe::packed::OpKind;
    let p = &e.program;
    serde_json::json!({
        "slots": p.slots,
        "depth": p.depth,
        "depth_without_bootstraps": e.depth_without_bootstraps,
        "stats": &p.stats,
        "ckks": &p.ckks,
        "multiplicative_depth": e.multiplicative_depth,
        "log_qp": e.log_qp,
        "estimate": &p.estimate,
        "check": &e.check,
        "seconds": secs,
        "weights_bytes": size,
        "bootstraps": e.placement.as_ref().map(|pl| serde_json::json!({
            "ciphertexts": pl.ciphertexts, "minimal": pl.exact,
            "values": p.ops.iter().filter_map(|o| match o.kind { OpKind::Bootstrap { input } => Some(input), _ => None }).collect::<Vec<_>>(),
        })),
        "ops": p.ops.iter().enumerate().map(|(j, o)| {
            let mut r = serde_json::json!({
                "op": o.kind.name(),
                "node": p.layers.iter().find(|l| l.op == j).map(|l| l.node.clone()),
                "level_in": o.kind.args().iter().map(|&a| p.values[a as usize].level).max(),
                "level": o.level,
                "ciphertexts": p.values[o.out as usize].ciphertexts,
            });
            if let OpKind::Linear { weights, n1, diagonals, .. } = &o.kind {
                let b = fhe::packed::cost::Bsgs::new(&e.weights[weights].index, *n1, p.slots);
                r["diagonals"] = (*diagonals).into();
                r["n1"] = (*n1).into();
                r["rotations"] = b.rotations().into();
            }
            r
        }).collect::<Vec<_>>(),
    })
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{t}")
    }
}
