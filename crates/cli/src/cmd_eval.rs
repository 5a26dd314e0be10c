//! `pannc eval`: backbone vs PANN accuracy across precisions and accuracy techniques.

use crate::cmd_compile::check_input;
use crate::load;
use anyhow::{bail, Context as _, Result};
use pannc_lab::{Allocation, EvalResult, Lab, Techniques};
use pannc_passes::analysis::weight_norms;
use pannc_passes::Policy;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Measure a network's PANN accuracy across precisions α and accuracy techniques.
///
/// For each α and each technique set, the model is compiled (calibrated on --calib) and the
/// PANN is simulated on --data: top-1 against --labels, logit deviation from the backbone,
/// levels, and activation inputs outside their calibrated intervals.
///
/// Techniques (combine with '+', list with ','):
///   baseline  composite minimax ReLU, symmetric error (Lee et al.)
///   shape     negative-side error shaping: the sign transition moves onto positive inputs,
///             chosen on the calibrated distribution (zero extra levels)
///   bias      bias correction: each channel's mean approximation error on the calibration
///             data is subtracted / folded into the next bias (zero extra levels)
///   alloc     per-layer α: the fewest levels whose top-1 disagrees with the backbone on at
///             most half of --budget of the calibration samples (the other half is margin for
///             sampling error); α in the sweep is then an upper bound
///   all       shape+bias+alloc
///
/// Examples:
///   pannc eval fixtures/resnet_fmnist/model.onnx --data fixtures/resnet_fmnist/test_x.npy \
///       --labels fixtures/resnet_fmnist/test_y.npy --calib fixtures/resnet_fmnist/calib_x.npy \
///       --alpha 5..14 --techniques baseline,shape,bias,all --plot acc.svg
///   pannc eval MODEL --data X.npy --labels Y.npy --calib C.npy --alpha 9 --techniques alloc \
///       --budget 0.5% --json > eval.json
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct EvalArgs {
    #[command(flatten)]
    pub lab: LabArgs,
    /// Precisions: a range A..B (inclusive), a list A,B,C, or one value.
    #[arg(long, default_value = "5..14")]
    pub alpha: String,
    /// Technique sets to compare, comma-separated (see above).
    #[arg(long, default_value = "baseline,all")]
    pub techniques: String,
    /// Accuracy budget of `alloc`, as a percentage (0.5%) or a fraction (0.005): the allocation
    /// keeps its disagreement with the backbone on the calibration set within half of it.
    #[arg(long, default_value = "0.5%")]
    pub budget: String,
    /// Degree of the minimax polynomial for smooth activations.
    #[arg(long, default_value_t = 31)]
    pub degree: usize,
    /// Safety margin on calibrated ranges.
    #[arg(long, default_value_t = 1.3)]
    pub margin: f64,
    /// Print JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write an SVG plot of top-1 against α, one line per technique set.
    #[arg(long, value_name = "OUT.svg")]
    pub plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The model and data every accuracy-lab command reads (`eval`, `sensitivity`).
#[derive(clap::Args, Debug)]
pub struct LabArgs {
    /// The trained ONNX model.
    pub model: PathBuf,
    /// Evaluation inputs (.npy, batch first).
    #[arg(long)]
    pub data: PathBuf,
    /// Labels for --data (.npy, integers).
    #[arg(long)]
    pub labels: PathBuf,
    /// Calibration inputs (.npy): ranges, bias correction, allocation and B are measured on
    /// them. Keep them disjoint from --data.
    #[arg(long)]
    pub calib: PathBuf,
    #[command(flatten)]
    pub mem: load::MemoryArgs,
}

/// Parses `5..14`, `5,7,9` or `9`.
pub fn parse_alphas(s: &str) -> Result<Vec<u32>> {
    let bad = || format!("--alpha {s}: expected A..B, A,B,C or A with 4 ≤ α ≤ 14");
    let v: Vec<u32> = if let Some((a, b)) = s.split_once("..") {
        let (a, b): (u32, u32) = (
            a.trim().parse().with_context(bad)?,
            b.trim().trim_start_matches('=').parse().with_context(bad)?,
        );
        if a > b {
            bail!(bad());
        }
        (a..=b).collect()
    } else {
        s.split(',')
            .map(|x| x.trim().parse::<u32>().with_context(bad))
            .collect::<Result<_>>()?
    };
    if v.is_empty() || v.iter().any(|&a| !(4..=14).contains(&a)) {
        bail!(bad());
    }
    Ok(v)
}

/// Parses `0.5%` or `0.005`.
pub fn parse_budget(s: &str) -> Result<f64> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    }
    .with_context(|| format!("--budget {s}: expected a percentage like 0.5% or a fraction"))?;
    if !(0.0..1.0).contains(&v) {
        bail!("--budget {s}: must be between 0 and 100%");
    }
    Ok(v)
}

pub(crate) fn progress_bar(len: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb
}

pub(crate) fn load_lab(a: &LabArgs) -> Result<Lab> {
    a.mem.apply()?;
    let m = load::load_model(&a.model)?;
    let g = m.graph;
    let x = check_input(&g, load::read_npy(&a.data)?, "--data")?;
    let c = check_input(&g, load::read_npy(&a.calib)?, "--calib")?;
    let y = load::read_npy(&a.labels)?.to_i64_vec();
    if y.len() != x.shape()[0] {
        bail!(
            "--labels has {} entries, --data has {} samples",
            y.len(),
            x.shape()[0]
        );
    }
    Ok(Lab::new(g, vec![c], vec![x], y)?)
}

pub fn run(a: &EvalArgs) -> Result<()> {
    let alphas = parse_alphas(&a.alpha)?;
    let sets: Vec<Techniques> = a
        .techniques
        .split(',')
        .map(|s| Techniques::parse(s.trim()).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    let budget = parse_budget(&a.budget)?;
    if !(a.margin >= 1.0 && a.margin.is_finite()) {
        bail!("--margin must be ≥ 1 (got {})", a.margin);
    }
    let t0 = std::time::Instant::now();
    let lab = load_lab(&a.lab)?;
    let base = Policy {
        degree: a.degree,
        margin: a.margin,
        ..Default::default()
    };
    let pb = progress_bar((alphas.len() * sets.len()) as u64, a.quiet);
    pb.set_message(format!(
        "backbone top-1 {:.2}% on {} samples",
        100.0 * lab.backbone_top1,
        lab.labels.len()
    ));
    // Allocation: once per technique set that asks for it, over the whole α range.
    let (lo, hi) = (alphas[0], *alphas.iter().max().unwrap_or(&14));
    let mut allocations: BTreeMap<String, Allocation> = BTreeMap::new();
    for t in sets.iter().filter(|t| t.alloc) {
        if allocations.contains_key(&t.name()) {
            continue;
        }
        let al = lab.allocate(&base, *t, lo..=hi, budget, &mut |m| {
            pb.set_message(m.to_string())
        })?;
        allocations.insert(t.name(), al);
    }
    let mut results: Vec<EvalResult> = Vec::new();
    for &alpha in &alphas {
        for t in &sets {
            pb.set_message(format!("α={alpha} {}", t.name()));
            let overrides = match allocations.get(&t.name()) {
                Some(al) if al.uniform_alpha.is_some_and(|u| u <= alpha) => al
                    .alphas
                    .iter()
                    .map(|(n, &x)| (n.clone(), x.min(alpha)))
                    .collect(),
                _ => BTreeMap::new(),
            };
            let r = lab.evaluate(&base, alpha, *t, &overrides)?;
            results.push(r);
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    if let Some(p) = &a.plot {
        plot(&results, &sets, lab.backbone_top1, p)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if a.json {
        let json = serde_json::json!({
            "model": a.lab.model.display().to_string(),
            "samples": lab.labels.len(),
            "calib_samples": lab.calib[0].shape()[0],
            "backbone_top1": lab.backbone_top1,
            "backbone_top1_ci": lab.backbone_top1_ci(1000),
            "budget": budget,
            "results": results,
            "allocations": allocations,
            "weight_norms": weight_norms(&lab.backbone),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_table(&lab, &results, &allocations);
    }
    eprintln!(
        "evaluated {} configurations on {} samples in {secs:.1} s",
        results.len(),
        lab.labels.len()
    );
    Ok(())
}

fn print_table(lab: &Lab, results: &[EvalResult], allocations: &BTreeMap<String, Allocation>) {
    println!(
        "backbone top-1: {:.2}% ({} samples)",
        100.0 * lab.backbone_top1,
        lab.labels.len()
    );
    println!(
        "{:>3}  {:<16} {:>8} {:>8} {:>7} {:>9} {:>11} {:>11} {:>9}",
        "α",
        "techniques",
        "top-1 %",
        "Δ pts",
        "levels",
        "ct×ct",
        "max |Δlog|",
        "mean |Δlog|",
        "outside"
    );
    for r in results {
        println!(
            "{:>3}  {:<16} {:>8.2} {:>+8.2} {:>7} {:>9} {:>11.3e} {:>11.3e} {:>9}",
            r.alpha,
            r.techniques,
            100.0 * r.top1,
            100.0 * (r.top1 - lab.backbone_top1),
            r.levels,
            r.ct_mults,
            r.logit_dev_max,
            r.logit_dev_mean,
            r.out_of_range_inputs
        );
    }
    for (name, al) in allocations {
        let alphas: Vec<String> = al.alphas.iter().map(|(n, a)| format!("{n}={a}")).collect();
        println!(
            "allocation '{name}' (budget {:.2}%): {} levels, {} ct×ct, calibration disagreement {:.2}%, {} trials; uniform α {} → {} levels\n  {}",
            100.0 * al.budget,
            al.levels,
            al.ct_mults,
            100.0 * al.calib_disagreement,
            al.trials,
            al.uniform_alpha.map_or("none".into(), |u| u.to_string()),
            al.uniform_levels.map_or("-".into(), |u| u.to_string()),
            alphas.join(" ")
        );
    }
}

fn plot(results: &[EvalResult], sets: &[Techniques], backbone: f64, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let amin = results.iter().map(|r| r.alpha).min().unwrap_or(4) as f64;
    let amax = results.iter().map(|r| r.alpha).max().unwrap_or(14) as f64;
    let lowest = results
        .iter()
        .map(|r| r.top1)
        .fold(backbone, f64::min)
        .max(0.0);
    let ymin = (100.0 * lowest - 2.0).floor().max(0.0);
    let ymax = (100.0 * backbone + 2.0).min(100.0);
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("PANN top-1 accuracy vs precision 2^-α", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d((amin - 0.2)..(amax + 0.2), ymin..ymax)?;
    chart
        .configure_mesh()
        .x_desc("α")
        .y_desc("top-1 (%)")
        .x_labels((amax - amin) as usize + 1)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            [
                (amin - 0.2, 100.0 * backbone),
                (amax + 0.2, 100.0 * backbone),
            ],
            BLACK.stroke_width(1),
        ))?
        .label(format!("backbone {:.2}%", 100.0 * backbone))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    let mut seen = Vec::new();
    for t in sets {
        let name = t.name();
        if seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        let color = Palette99::pick(seen.len() - 1).to_rgba();
        let pts: Vec<(f64, f64)> = results
            .iter()
            .filter(|r| r.techniques == name)
            .map(|r| (r.alpha as f64, 100.0 * r.top1))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
