//! `pannc approx`: approximate one activation function by a polynomial (or a composition of
//! polynomials) and report its cost (degrees, depth, ct×ct multiplications) and measured error.

use anyhow::{bail, Context, Result};
use pannc_approx::{
    approximate_with, Approximation, Budget, ErrorSign, Function, Method, Request, Shaping,
};
use std::path::{Path, PathBuf};

/// Approximate FUNC on a domain: relu, leaky_relu, relu6, clip, abs, sign, max, gelu, silu,
/// sigmoid, tanh, exp, reciprocal, invsqrt, sqrt, inv_square (the last four on a positive
/// --domain A,B; exp and the powers are fitted by relative-error minimax).
///
/// Budget: --alpha N (error ≤ 2^-N, the cheapest result), --degree D (one polynomial), or
/// --depth L (the most precise result within L levels). Default: --degree 15. Method default:
/// composite for sign-based functions under --alpha/--depth, minimax otherwise.
///
/// `--emit circuit` prints the depth-optimal CKKS circuit of the result (pannc-circuit JSON),
/// e.g. `pannc approx relu --alpha 9 --emit circuit > relu9.json`.
#[derive(clap::Args, Debug)]
pub struct ApproxArgs {
    /// Function to approximate.
    pub function: String,
    /// Target precision: max error ≤ 2^-ALPHA on the domain.
    #[arg(long, conflicts_with_all = ["degree", "depth"])]
    pub alpha: Option<u32>,
    /// Degree of a single polynomial.
    #[arg(long, conflicts_with = "depth")]
    pub degree: Option<usize>,
    /// Level budget.
    #[arg(long)]
    pub depth: Option<u32>,
    /// minimax, composite, chebyshev or lsq.
    #[arg(long, value_parser = ["minimax", "composite", "chebyshev", "lsq"])]
    pub method: Option<String>,
    /// Input domain A,B (default -1,1); for max, the range of a − b.
    #[arg(long, allow_hyphen_values = true, value_name = "A,B")]
    pub domain: Option<String>,
    /// Print the full result as JSON (stages, coefficients, cost, error).
    #[arg(long)]
    pub json: bool,
    /// Write the error curve approx(x) − f(x) as an SVG.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Negative slope of leaky_relu (default 0.01).
    #[arg(long, allow_hyphen_values = true)]
    pub slope: Option<f64>,
    /// Bounds LO,HI of clip (default -1,1; relu6 is 0,6).
    #[arg(long, allow_hyphen_values = true, value_name = "LO,HI")]
    pub clip: Option<String>,
    /// Weight of the error on negative inputs (minimax, lsq).
    #[arg(long)]
    pub neg_weight: Option<f64>,
    /// Keep the error p − f on negative inputs ≥ 0 (above) or ≤ 0 (below) (lsq).
    #[arg(long, value_parser = ["above", "below"])]
    pub neg_sign: Option<String>,
    /// Zero mean error on negative inputs under the sample distribution (lsq).
    #[arg(long)]
    pub neg_zero_mean: bool,
    /// Sample distribution for lsq: one "x" or "x,weight" per line (e.g. a calibrated histogram).
    #[arg(long, value_name = "FILE")]
    pub samples: Option<PathBuf>,
    /// Relative gap excluded around 0 when fitting sign with one polynomial (default 1/64).
    #[arg(long)]
    pub gap: Option<f64>,
    /// `circuit`: print the planned CKKS circuit (pannc-circuit JSON, depth-optimal) instead
    /// of the summary.
    #[arg(long, value_parser = ["circuit"])]
    pub emit: Option<String>,
    /// reciprocal, invsqrt: follow the polynomial by K Newton steps (y ← y(2 − xy), resp.
    /// y ← y(3 − xy²)/2) and report their levels, ct×ct multiplications and measured error.
    #[arg(long, value_name = "K")]
    pub newton: Option<u32>,
    /// Write the planned CKKS circuit (pannc-circuit JSON) to this file.
    #[arg(long, value_name = "OUT.json")]
    pub circuit: Option<PathBuf>,
}

fn parse_pair(s: &str, what: &str) -> Result<(f64, f64)> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() != 2 {
        bail!("{what} expects two numbers A,B (e.g. -8,8), got '{s}'");
    }
    let a: f64 = parts[0]
        .parse()
        .with_context(|| format!("{what}: '{}' is not a number", parts[0]))?;
    let b: f64 = parts[1]
        .parse()
        .with_context(|| format!("{what}: '{}' is not a number", parts[1]))?;
    Ok((a, b))
}

fn read_samples(path: &Path) -> Result<Vec<(f64, f64)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect();
        let num = |s: &str| -> Result<f64> {
            s.parse()
                .with_context(|| format!("{}:{}: '{s}' is not a number", path.display(), i + 1))
        };
        match fields.as_slice() {
            [x] => out.push((num(x)?, 1.0)),
            [x, w] => out.push((num(x)?, num(w)?)),
            _ => bail!("{}:{}: expected 'x' or 'x,weight'", path.display(), i + 1),
        }
    }
    Ok(out)
}

pub fn run(args: &ApproxArgs) -> Result<()> {
    let mut function = Function::parse(&args.function)?;
    if let Some(s) = args.slope {
        match &mut function {
            Function::LeakyRelu { slope } => *slope = s,
            _ => bail!("--slope applies to leaky_relu only"),
        }
    }
    if let Some(c) = &args.clip {
        let (lo, hi) = parse_pair(c, "--clip")?;
        match &mut function {
            Function::Clip { lo: l, hi: h } => {
                *l = lo;
                *h = hi;
            }
            _ => bail!("--clip applies to clip/relu6 only"),
        }
    }
    let domain = match &args.domain {
        Some(d) => parse_pair(d, "--domain")?,
        None => (-1.0, 1.0),
    };
    let budget = match (args.alpha, args.degree, args.depth) {
        (Some(a), _, _) => Budget::Alpha(a),
        (_, Some(d), _) => Budget::Degree(d),
        (_, _, Some(l)) => Budget::Depth(l),
        _ => Budget::Degree(15),
    };
    let method = match &args.method {
        Some(m) => Method::parse(m)?,
        None if function.is_sign_based() && !matches!(budget, Budget::Degree(_)) => {
            Method::Composite
        }
        None => Method::Minimax,
    };
    let shaping = Shaping {
        negative_weight: args.neg_weight.unwrap_or(1.0),
        negative_sign: args.neg_sign.as_deref().map(|s| {
            if s == "above" {
                ErrorSign::Above
            } else {
                ErrorSign::Below
            }
        }),
        negative_zero_mean: args.neg_zero_mean,
    };
    let samples = match &args.samples {
        Some(p) => Some(read_samples(p)?),
        None => None,
    };
    let ap = approximate_with(&Request {
        function,
        method,
        budget,
        domain,
        shaping,
        samples: samples.as_deref(),
        sign_gap: args.gap,
        weight: None,
    })?;
    let refined = match args.newton {
        Some(k) => Some(pannc_approx::refine(
            &ap,
            k,
            pannc_approx::MEASURE_POINTS - 1,
        )?),
        None => None,
    };
    if let Some(path) = &args.plot {
        plot(&ap, path).with_context(|| format!("writing {}", path.display()))?;
    }
    let emit_circuit = args.emit.as_deref() == Some("circuit");
    if emit_circuit || args.circuit.is_some() {
        let c = pannc_ckks::approximation_circuit(&ap, 0)?;
        let (text, check) = pannc_ckks::checked_json(&c)?;
        if let Some(p) = &args.circuit {
            std::fs::write(p, &text).with_context(|| format!("writing {}", p.display()))?;
            eprintln!(
                "wrote {} (depth {}, {} ct×ct multiplications)",
                p.display(),
                check.depth,
                check.ct_ct_mults
            );
        }
        if emit_circuit {
            if args.json {
                bail!("--json and --emit circuit both print to stdout; pick one");
            }
            print!("{text}");
            return Ok(());
        }
    }
    if args.json {
        match &refined {
            Some(r) => println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"approximation": ap, "newton": r})
                )?
            ),
            None => println!("{}", serde_json::to_string_pretty(&ap)?),
        }
    } else {
        print_summary(&ap, args.plot.as_deref());
        if let Some(r) = &refined {
            println!(
                "  + {} Newton step(s): depth {}   ct-mults {}   max error {:.3e}   max relative error {:.3e}",
                r.steps, r.depth, r.ct_mults, r.max_error, r.max_relative_error
            );
        }
    }
    Ok(())
}

fn print_summary(ap: &Approximation, plot: Option<&Path>) {
    let target = match ap.error_target {
        Some(t) => format!(", target 2^-{} = {t:.3e}", ap.alpha.unwrap_or(0)),
        None => String::new(),
    };
    println!(
        "{} on [{}, {}] by {}{}",
        ap.function,
        ap.domain[0],
        ap.domain[1],
        ap.method.name(),
        target
    );
    println!(
        "  degrees {:?}   depth {}   ct-mults {}",
        ap.degrees, ap.depth, ap.ct_mults
    );
    println!(
        "  max error {:.3e} (2^{:.2}), measured on {} point(s) per piece",
        ap.max_error,
        ap.max_error.log2(),
        pannc_approx::MEASURE_POINTS
    );
    let rule = match ap.combine {
        "identity" => "f(x) ≈ q(x)",
        "relu" => "f(x) ≈ x·(1 + q(x))/2",
        "abs" => "f(x) ≈ x·q(x)",
        "leaky_relu" => "f(x) ≈ x·((1+slope) + (1−slope)·q(x))/2",
        "clip" => "f(x) ≈ (lo + hi + (x−lo)·q(x−lo) − (x−hi)·q(x−hi))/2",
        "max" => "max(a,b) ≈ (a + b + (a−b)·q(a−b))/2",
        "max_via_relu" => "max(a,b) ≈ b + q(a−b)",
        _ => "",
    };
    println!("  combine {}: {rule}, q = stages composed", ap.combine);
    if let Some(g) = ap.sign_gap {
        println!("  sign gap ±{g:.4e}");
    }
    for n in &ap.notes {
        println!("  note: {n}");
    }
    if let Some(p) = plot {
        println!("  error curve written to {}", p.display());
    }
}

fn plot(ap: &Approximation, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let mut pts: Vec<Vec<(f64, f64)>> = Vec::new();
    for piece in &ap.error_domain {
        let n = 2000;
        pts.push(
            (0..=n)
                .map(|i| {
                    let x = piece[0] + (piece[1] - piece[0]) * i as f64 / n as f64;
                    (x, ap.eval(x) - ap.reference(x))
                })
                .collect(),
        );
    }
    let ymax = pts
        .iter()
        .flatten()
        .fold(0.0f64, |m, p| m.max(p.1.abs()))
        .max(1e-300)
        * 1.1;
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{} {} error (degrees {:?}, depth {}, max {:.2e})",
        ap.function,
        ap.method.name(),
        ap.degrees,
        ap.depth,
        ap.max_error
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(80)
        .build_cartesian_2d(ap.domain[0]..ap.domain[1], -ymax..ymax)?;
    chart
        .configure_mesh()
        .x_desc("x")
        .y_desc("approx(x) − f(x)")
        .draw()?;
    for p in pts {
        chart.draw_series(LineSeries::new(p, &BLUE))?;
    }
    root.present()?;
    Ok(())
}
