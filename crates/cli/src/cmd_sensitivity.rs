//! `pannc sensitivity`: which activations, and which side of them, a PANN's error hurts.

use crate::cmd_eval::{load_lab, progress_bar, LabArgs};
use anyhow::{bail, Result};
use pannc_lab::{Layers, Noise, SensitivityOptions, SensitivityReport, Side, Techniques};
use pannc_passes::Policy;

/// Perturb the activations of the trained network (the backbone, exact activations) on their
/// negative inputs, positive inputs or both, and measure the damage on --data.
///
/// Noise (--noise):
///   pann-error  the error p(x) − f(x) of the polynomial p that `pannc compile` makes for each
///               activation at this α (and --techniques), evaluated on the input x the
///               activation sees. Default: every activation at once, one row per side
///               (negative, positive, both). On both sides at once this IS the PANN (up to
///               rounding): the report also simulates the compiled PANN itself and gives its
///               top-1 and, per activation, its own measured error p(x) − f(x) next to the
///               injected one. "negative" then answers: how much of the PANN's loss comes
///               from the error on negative inputs?
///   uniform     zero-mean noise in [-a, a], a = 2^-α·B (B = margin · max|x| over --calib, as
///               `pannc compile` uses; a hash of the value, so runs are reproducible).
///               Default: one activation at a time, rows for the negative and positive side.
///   constant    sign·a on every touched input (--sign, default −): a one-signed error, like
///               a composite ReLU's near its transition. Defaults as for uniform.
///
/// Every top-1 and drop comes with a 95% bootstrap interval over the --data samples (the drop
/// paired: the same resampled images for backbone and perturbed run). Each activation's share
/// of negative inputs is reported on --calib and on --data. Use the full test set: 1 000
/// images resolve ±1.7 points of top-1 at best.
///
/// Examples:
///   pannc sensitivity fixtures/resnet_fmnist/model.onnx --data fixtures/resnet_fmnist/test_x.npy \
///       --labels fixtures/resnet_fmnist/test_y.npy --calib fixtures/resnet_fmnist/calib_x.npy \
///       --alpha 6 --noise pann-error
///   pannc sensitivity MODEL --data X.npy --labels Y.npy --calib C.npy --alpha 6 \
///       --noise pann-error --layers each --side negative --json > sens.json
///   pannc sensitivity MODEL --data X.npy --labels Y.npy --calib C.npy --alpha 6 \
///       --noise constant --sign +
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SensitivityArgs {
    #[command(flatten)]
    pub lab: LabArgs,
    /// Precision α: noise size 2^-α·B, or the polynomials compiled at α (pann-error).
    #[arg(long, default_value_t = 9)]
    pub alpha: u32,
    /// What to inject (see above).
    #[arg(long, value_parser = ["uniform", "constant", "pann-error"], default_value = "uniform")]
    pub noise: String,
    /// Sign of the constant noise (--noise constant only): + or −.
    #[arg(long, value_parser = ["+", "-"], allow_hyphen_values = true)]
    pub sign: Option<String>,
    /// Sides to perturb, comma-separated: negative, positive, both
    /// [default: negative,positive,both for pann-error, else negative,positive].
    #[arg(long)]
    pub side: Option<String>,
    /// `all` (every activation at once) or `each` (one at a time)
    /// [default: all for pann-error, else each].
    #[arg(long, value_parser = ["all", "each"])]
    pub layers: Option<String>,
    /// Techniques of the compiled polynomials (pann-error only): baseline or shape. Bias
    /// correction moves part of the error into the next layer's bias, so it is not an
    /// activation's own error.
    #[arg(long)]
    pub techniques: Option<String>,
    /// Degree of the minimax polynomial for smooth activations (pann-error).
    #[arg(long, default_value_t = 31)]
    pub degree: usize,
    /// Safety margin on calibrated ranges (as in compile).
    #[arg(long, default_value_t = 1.3)]
    pub margin: f64,
    /// Bootstrap resamples per interval.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Print JSON on stdout instead of the tables (identical whatever the thread count).
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_sides(s: &str) -> Result<Vec<Side>> {
    let mut v = Vec::new();
    for part in s.split(',') {
        let side = match part.trim() {
            "negative" | "neg" => Side::Negative,
            "positive" | "pos" => Side::Positive,
            "both" => Side::Both,
            other => bail!("--side: unknown side '{other}' (known: negative, positive, both)"),
        };
        if !v.contains(&side) {
            v.push(side);
        }
    }
    Ok(v)
}

/// The options `a` asks for, checked.
pub fn options(a: &SensitivityArgs) -> Result<SensitivityOptions> {
    if !(1..=52).contains(&a.alpha) {
        bail!("--alpha must be between 1 and 52 (got {})", a.alpha);
    }
    if !(a.margin >= 1.0 && a.margin.is_finite()) {
        bail!("--margin must be ≥ 1 (got {})", a.margin);
    }
    if a.bootstrap == 0 {
        bail!("--bootstrap must be at least 1");
    }
    let noise = match a.noise.as_str() {
        "constant" => Noise::Constant,
        "pann-error" => Noise::PannError,
        _ => Noise::Uniform,
    };
    if a.sign.is_some() && noise != Noise::Constant {
        bail!("--sign applies to --noise constant only");
    }
    if a.techniques.is_some() && noise != Noise::PannError {
        bail!("--techniques applies to --noise pann-error only");
    }
    let mut o = SensitivityOptions::new(a.alpha, noise);
    o.margin = a.margin;
    o.resamples = a.bootstrap;
    o.base = Policy {
        degree: a.degree,
        ..Default::default()
    };
    if a.sign.as_deref() == Some("+") {
        o.sign = 1.0;
    }
    if let Some(s) = &a.side {
        o.sides = parse_sides(s)?;
    }
    if let Some(l) = &a.layers {
        o.layers = if l == "all" {
            Layers::All
        } else {
            Layers::Each
        };
    }
    if let Some(t) = &a.techniques {
        let t = Techniques::parse(t).map_err(anyhow::Error::msg)?;
        if t.bias || t.alloc {
            bail!(
                "--techniques {}: pann-error injects each polynomial's own error; use baseline or shape (bias correction and allocation are not an activation's own error)",
                t.name()
            );
        }
        o.techniques = t;
    }
    Ok(o)
}

fn pct(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

fn ci(c: [f64; 2]) -> String {
    format!("[{}, {}]", pct(c[0]), pct(c[1]))
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Negative => "negative",
        Side::Positive => "positive",
        Side::Both => "both",
    }
}

pub fn run(a: &SensitivityArgs) -> Result<()> {
    let opt = options(a)?;
    let t0 = std::time::Instant::now();
    let lab = load_lab(&a.lab)?;
    let groups = match opt.layers {
        Layers::All => 1,
        Layers::Each => lab.activations()?.len(),
    };
    let runs = (groups * opt.sides.len()) as u64 + u64::from(opt.noise == Noise::PannError);
    let pb = progress_bar(runs, a.quiet);
    let r = lab.sensitivity_report(&opt, &mut |m| {
        pb.set_message(m.to_string());
        pb.inc(1);
    })?;
    pb.finish_and_clear();
    if a.json {
        let mut json = serde_json::json!({ "model": a.lab.model.display().to_string() });
        if let (Some(o), serde_json::Value::Object(fields)) =
            (json.as_object_mut(), serde_json::to_value(&r)?)
        {
            o.extend(fields);
            // Sums of the one-at-a-time drops per side (what scripts/experiments_report.py reads).
            if r.layers == Layers::Each {
                for (key, side) in [
                    ("total_drop_negative", Side::Negative),
                    ("total_drop_positive", Side::Positive),
                ] {
                    let rows = r.rows.iter().filter(|x| x.side == side);
                    o.insert(key.into(), rows.map(|x| x.drop).sum::<f64>().into());
                }
            }
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_tables(&r);
    }
    eprintln!(
        "{} runs on {} samples in {:.1} s",
        r.rows.len() + usize::from(r.pann_top1.is_some()),
        r.samples,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn print_tables(r: &SensitivityReport) {
    let what = match r.noise {
        Noise::PannError => format!(
            "the compiled polynomials' error p(x) − f(x) at α={} ({})",
            r.alpha,
            r.techniques.as_deref().unwrap_or("baseline")
        ),
        Noise::Uniform => format!("uniform noise of size 2^-{}·B", r.alpha),
        Noise::Constant => format!(
            "constant {}2^-{}·B",
            if r.sign == Some(1.0) { "+" } else { "−" },
            r.alpha
        ),
    };
    println!(
        "backbone top-1: {}% {} on {} samples (95% bootstrap intervals, {} resamples)",
        pct(r.backbone_top1),
        ci(r.backbone_top1_ci),
        r.samples,
        r.resamples
    );
    println!(
        "injected: {what}, {}",
        match r.layers {
            Layers::All => "in every activation at once",
            Layers::Each => "in one activation at a time",
        }
    );
    if let (Some(t), Some(c), Some(d)) = (r.pann_top1, r.pann_top1_ci, r.pann_drop_ci) {
        println!(
            "compiled PANN (simulated): top-1 {}% {}, drop {} points {}",
            pct(t),
            ci(c),
            pct(r.backbone_top1 - t),
            ci(d)
        );
    }
    println!();
    println!(
        "{:<30} {:>9} {:>9} {:>10} {:>10} {:>11} {:>11} {:>11} {:>11}",
        "activation",
        "neg calib",
        "neg test",
        "B",
        "2^-α·B",
        "PANN e̅ neg",
        "PANN |e| neg",
        "PANN e̅ pos",
        "PANN |e| pos"
    );
    for i in &r.activations {
        let (a, b, c, d) = match &i.pann_error {
            Some(e) => (
                format!("{:.3e}", e.negative.mean),
                format!("{:.3e}", e.negative.mean_abs),
                format!("{:.3e}", e.positive.mean),
                format!("{:.3e}", e.positive.mean_abs),
            ),
            None => ("–".into(), "–".into(), "–".into(), "–".into()),
        };
        println!(
            "{:<30} {:>8.1}% {:>8.1}% {:>10.3e} {:>10.3e} {a:>11} {b:>11} {c:>11} {d:>11}",
            i.node,
            100.0 * i.negative_share_calib,
            100.0 * i.negative_share_test,
            i.bound,
            i.amplitude
        );
    }
    println!();
    println!(
        "{:<30} {:<9} {:>6} {:>7} {:>16} {:>7} {:>16} {:>11}",
        "perturbed", "side", "share", "top-1 %", "95% CI", "drop", "95% CI", "max |Δlog|"
    );
    for row in &r.rows {
        println!(
            "{:<30} {:<9} {:>5.1}% {:>7} {:>16} {:>+7.2} {:>16} {:>11.3e}",
            row.node,
            side_name(row.side),
            100.0 * row.fraction,
            pct(row.top1),
            ci(row.top1_ci),
            100.0 * row.drop,
            ci(row.drop_ci),
            row.logit_dev_max
        );
    }
    // Injected vs the PANN's own error, per activation and side (pann-error).
    let pann_rows: Vec<_> = r.rows.iter().filter(|x| !x.injected.is_empty()).collect();
    if !pann_rows.is_empty() {
        println!();
        println!("injected error vs the PANN's own error on the same side (mean / mean |e|):");
        for row in pann_rows {
            for inj in &row.injected {
                let own = r
                    .activations
                    .iter()
                    .find(|i| i.node == inj.node)
                    .and_then(|i| i.pann_error.as_ref())
                    .map(|e| e.get(row.side).clone())
                    .unwrap_or_default();
                println!(
                    "  {:<30} {:<9} injected {:>10.3e} / {:>9.3e}   PANN {:>10.3e} / {:>9.3e}",
                    inj.node,
                    side_name(row.side),
                    inj.stats.mean,
                    inj.stats.mean_abs,
                    own.mean,
                    own.mean_abs
                );
            }
        }
    }
}
