//! `pannc sensitivity`: which activations, and which side of them, a PANN's error hurts.

use crate::cmd_eval::{load_lab, progress_bar, LabArgs};
use anyhow::{bail, Result};
use pannc_lab::{Noise, Side};

/// Perturb one activation of the trained network at a time, on its negative or on its
/// positive inputs only, and measure the damage.
///
/// The perturbation has the size of a precision-α approximation error, 2^-α·B (B = margin ·
/// max|x| over --calib, as `pannc compile` uses): uniform noise in [-a, a] (zero mean, a hash
/// of the value, so runs are reproducible), or a constant -a (the one-signed error a
/// composite ReLU makes near its transition). Reported per activation and side: top-1, its
/// drop from the backbone, and the logit deviation.
///
/// Example:
///   pannc sensitivity fixtures/resnet_fmnist/model.onnx --data fixtures/resnet_fmnist/test_x.npy \
///       --labels fixtures/resnet_fmnist/test_y.npy --calib fixtures/resnet_fmnist/calib_x.npy \
///       --alpha 6 --noise constant
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SensitivityArgs {
    #[command(flatten)]
    pub lab: LabArgs,
    /// Perturbation size 2^-α·B.
    #[arg(long, default_value_t = 9)]
    pub alpha: u32,
    /// `uniform` (zero-mean noise) or `constant` (−2^-α·B on every touched input).
    #[arg(long, value_parser = ["uniform", "constant"], default_value = "uniform")]
    pub noise: String,
    /// Safety margin on calibrated ranges (as in compile).
    #[arg(long, default_value_t = 1.3)]
    pub margin: f64,
    /// Print JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(a: &SensitivityArgs) -> Result<()> {
    if !(1..=52).contains(&a.alpha) {
        bail!("--alpha must be between 1 and 52 (got {})", a.alpha);
    }
    if !(a.margin >= 1.0 && a.margin.is_finite()) {
        bail!("--margin must be ≥ 1 (got {})", a.margin);
    }
    let noise = if a.noise == "constant" {
        Noise::Constant
    } else {
        Noise::Uniform
    };
    let t0 = std::time::Instant::now();
    let lab = load_lab(&a.lab)?;
    let pb = progress_bar(2 * lab.activations()?.len() as u64, a.quiet);
    let rows = lab.sensitivity(a.alpha, a.margin, noise, &mut |m| {
        pb.set_message(m.to_string());
        pb.inc(1);
    })?;
    pb.finish_and_clear();
    let side_total = |s: Side| -> f64 { rows.iter().filter(|r| r.side == s).map(|r| r.drop).sum() };
    if a.json {
        let json = serde_json::json!({
            "model": a.lab.model.display().to_string(),
            "samples": lab.labels.len(),
            "alpha": a.alpha,
            "noise": noise,
            "backbone_top1": lab.backbone_top1,
            "rows": rows,
            "total_drop_negative": side_total(Side::Negative),
            "total_drop_positive": side_total(Side::Positive),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!(
            "backbone top-1: {:.2}% ({} samples); perturbation 2^-{}·B, {:?} noise",
            100.0 * lab.backbone_top1,
            lab.labels.len(),
            a.alpha,
            noise
        );
        println!(
            "{:<28} {:<9} {:>7} {:>11} {:>8} {:>8} {:>11} {:>11}",
            "activation",
            "side",
            "share",
            "amplitude",
            "top-1 %",
            "drop",
            "max |Δlog|",
            "mean |Δlog|"
        );
        for r in &rows {
            println!(
                "{:<28} {:<9} {:>6.1}% {:>11.3e} {:>8.2} {:>+8.2} {:>11.3e} {:>11.3e}",
                r.node,
                format!("{:?}", r.side).to_lowercase(),
                100.0 * r.fraction,
                r.amplitude,
                100.0 * r.top1,
                100.0 * r.drop,
                r.logit_dev_max,
                r.logit_dev_mean
            );
        }
        println!(
            "sum of drops: negative side {:+.2} points, positive side {:+.2} points",
            100.0 * side_total(Side::Negative),
            100.0 * side_total(Side::Positive)
        );
    }
    eprintln!(
        "{} runs on {} samples in {:.1} s",
        rows.len(),
        lab.labels.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
