//! Emit a pannc circuit for a Chebyshev polynomial.
//!
//! ```text
//! cargo run -p pannc-fhe --example cheb_circuit -- --coeffs file.json [--interval a,b]
//!     [--affine-in-circuit] [--extra-levels k] [--out circuit.json]
//! cargo run -p pannc-fhe --example cheb_circuit -- --relu-interp 27 [--out circuit.json]
//! cargo run -p pannc-fhe --example cheb_circuit -- --relu-minimax 27 [--out circuit.json]
//! cargo run -p pannc-fhe --example cheb_circuit -- --relu-composite 9 [--out circuit.json]
//! cargo run -p pannc-fhe --example cheb_circuit -- --composite stages.json --combine relu
//! ```
//!
//! `--coeffs` reads either a JSON array `[c0, c1, ...]` or an object
//! `{"coeffs": [...], "interval": [a, b]}`. `--composite` reads
//! `{"stages": [{"coeffs": [...], "interval": [a, b]}, ...]}`.
//! `--relu-interp d` uses the degree-d Chebyshev interpolant of ReLU on [-1, 1]
//! (the same construction as OpenFHE's EvalChebyshevFunction); `--relu-minimax d`
//! the degree-d minimax ReLU on [-1, 1] from `pannc-approx` (Remez);
//! `--relu-composite α` ReLU as `x(1+s(x))/2` with `pannc-approx`'s composite sign
//! for precision 2^-α (degrees chosen by its dynamic program).
//! The circuit goes to `--out` (default stdout); a one-line summary to stderr.

use std::process::ExitCode;

use pannc_fhe::{
    chebyshev_interpolant, plan_chebyshev, plan_composite, Combine, InputMode, Interval,
    PlanOptions, Stage,
};
use serde_json::Value;

fn parse_interval(v: &Value) -> Result<Interval, String> {
    let a = v.as_array().ok_or("interval must be [a, b]")?;
    if a.len() != 2 {
        return Err("interval must be [a, b]".into());
    }
    let lo = a[0].as_f64().ok_or("interval bound is not a number")?;
    let hi = a[1].as_f64().ok_or("interval bound is not a number")?;
    Interval::new(lo, hi).map_err(|e| e.to_string())
}

fn parse_coeffs(v: &Value) -> Result<Vec<f64>, String> {
    v.as_array()
        .ok_or("coeffs must be an array of numbers")?
        .iter()
        .map(|x| {
            x.as_f64()
                .ok_or_else(|| "coefficient is not a number".to_string())
        })
        .collect()
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = PlanOptions::default();
    let mut interval: Option<Interval> = None;
    let mut coeffs: Option<(Vec<f64>, Option<Interval>)> = None;
    let mut stages: Option<Vec<Stage>> = None;
    let mut combine = Combine::None;
    let mut out: Option<String> = None;
    let mut i = 0;
    let next = |i: &mut usize| -> Result<String, String> {
        *i += 1;
        args.get(*i)
            .cloned()
            .ok_or_else(|| format!("{} needs a value", args[*i - 1]))
    };
    while i < args.len() {
        match args[i].as_str() {
            "--coeffs" => {
                let path = next(&mut i)?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                let v: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
                coeffs = Some(match &v {
                    Value::Array(_) => (parse_coeffs(&v)?, None),
                    Value::Object(o) => (
                        parse_coeffs(o.get("coeffs").ok_or("missing \"coeffs\"")?)?,
                        o.get("interval").map(parse_interval).transpose()?,
                    ),
                    _ => return Err(format!("{path}: expected an array or object")),
                });
            }
            "--relu-interp" => {
                let d: usize = next(&mut i)?
                    .parse()
                    .map_err(|e| format!("--relu-interp: {e}"))?;
                coeffs = Some((chebyshev_interpolant(|x| x.max(0.0), d), None));
            }
            "--relu-minimax" => {
                let d: usize = next(&mut i)?
                    .parse()
                    .map_err(|e| format!("--relu-minimax: {e}"))?;
                let opts = pannc_approx::RemezOptions {
                    breakpoints: vec![0.0],
                    ..Default::default()
                };
                let m = pannc_approx::minimax_with(
                    &|x: f64| x.max(0.0),
                    &[(-1.0, 1.0)],
                    d,
                    pannc_approx::Weight::Uniform,
                    pannc_approx::Parity::None,
                    &opts,
                )
                .map_err(|e| format!("--relu-minimax: {e}"))?;
                eprintln!("minimax ReLU degree {d}: error {:.3e}", m.error);
                coeffs = Some((m.series.coeffs, None));
            }
            "--relu-composite" => {
                let alpha: u32 = next(&mut i)?
                    .parse()
                    .map_err(|e| format!("--relu-composite: {e}"))?;
                let c = pannc_approx::composite_sign(
                    alpha,
                    pannc_approx::SignTarget::Relu,
                    &pannc_approx::CompositeOptions::default(),
                )
                .map_err(|e| format!("--relu-composite: {e}"))?;
                eprintln!("composite sign α={alpha}: degrees {:?}", c.degrees);
                stages = Some(
                    c.stages
                        .iter()
                        .map(|s| {
                            Ok(Stage {
                                coeffs: s.coeffs.clone(),
                                interval: Interval::new(s.a, s.b).map_err(|e| e.to_string())?,
                            })
                        })
                        .collect::<Result<_, String>>()?,
                );
                combine = Combine::Relu;
            }
            "--composite" => {
                let path = next(&mut i)?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                let v: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
                let arr = v
                    .get("stages")
                    .and_then(Value::as_array)
                    .ok_or("missing \"stages\" array")?;
                stages = Some(
                    arr.iter()
                        .map(|s| {
                            Ok(Stage {
                                coeffs: parse_coeffs(
                                    s.get("coeffs").ok_or("stage without coeffs")?,
                                )?,
                                interval: s
                                    .get("interval")
                                    .map(parse_interval)
                                    .transpose()?
                                    .unwrap_or(Interval::UNIT),
                            })
                        })
                        .collect::<Result<_, String>>()?,
                );
            }
            "--combine" => {
                combine = match next(&mut i)?.as_str() {
                    "none" => Combine::None,
                    "relu" => Combine::Relu,
                    "abs" => Combine::Abs,
                    o => return Err(format!("--combine: unknown '{o}' (none|relu|abs)")),
                }
            }
            "--interval" => {
                let s = next(&mut i)?;
                let (a, b) = s.split_once(',').ok_or("--interval a,b")?;
                interval = Some(
                    Interval::new(
                        a.trim().parse().map_err(|e| format!("--interval: {e}"))?,
                        b.trim().parse().map_err(|e| format!("--interval: {e}"))?,
                    )
                    .map_err(|e| e.to_string())?,
                );
            }
            "--affine-in-circuit" => opts.input = InputMode::AffineInCircuit,
            "--extra-levels" => {
                opts.extra_levels = next(&mut i)?
                    .parse()
                    .map_err(|e| format!("--extra-levels: {e}"))?
            }
            "--name" => opts.name = Some(next(&mut i)?),
            "--out" => out = Some(next(&mut i)?),
            "-h" | "--help" => {
                eprintln!("see the module doc of crates/fhe/examples/cheb_circuit.rs");
                return Ok(());
            }
            o => return Err(format!("unknown argument '{o}'")),
        }
        i += 1;
    }
    let circuit = match (coeffs, stages) {
        (Some((c, iv)), None) => {
            let iv = interval.or(iv).unwrap_or(Interval::UNIT);
            plan_chebyshev(&c, iv, &opts).map_err(|e| e.to_string())?
        }
        (None, Some(st)) => plan_composite(&st, combine, &opts).map_err(|e| e.to_string())?,
        _ => return Err("give exactly one of --coeffs, --relu-interp, --relu-minimax, --composite, --relu-composite".into()),
    };
    let json = circuit.to_json().map_err(|e| e.to_string())?;
    match out {
        Some(p) => std::fs::write(&p, json + "\n").map_err(|e| format!("{p}: {e}"))?,
        None => println!("{json}"),
    }
    eprintln!(
        "{}: depth {}, ct×ct {}, ct×const {}, ops {}",
        circuit.name,
        circuit.depth,
        circuit.stats.ct_ct_mults,
        circuit.stats.ct_const_mults,
        circuit.ops.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
