//! Print egg reports for Horner forms and planner circuits.
//!
//! ```text
//! cargo run -p pannc-eqsat --example eqsat_report -- horner 15 [nodes] [iters] [seconds]
//! cargo run -p pannc-eqsat --example eqsat_report -- planner 63 [nodes] [iters] [seconds] [groups]
//! ```
//!
//! `groups`: letters of the rule groups to use, default `aspc` (arith, scalar, power, chebyshev).
//! ```text
//! ```

use std::time::Duration;

use pannc_eqsat::{optimize_with, Limits, RuleSet};
use pannc_fhe::{plan_chebyshev, CircuitBuilder, Interval, Output, PlanOptions};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let kind = a.first().map(String::as_str).unwrap_or("horner");
    let d: usize = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(7).max(2);
    let limits = Limits {
        node_limit: a.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000),
        iter_limit: a.get(3).and_then(|s| s.parse().ok()).unwrap_or(60),
        time_limit: Duration::from_secs_f64(a.get(4).and_then(|s| s.parse().ok()).unwrap_or(30.0)),
    };
    // Deterministic non-integer coefficients.
    let c: Vec<f64> = (0..=d)
        .map(|k| 0.3 + 0.37 * ((k * 7919) % 101) as f64 / 101.0)
        .collect();
    let circuit = match kind {
        "horner" => {
            let mut b = CircuitBuilder::new(format!("horner_{d}"));
            let x = b.input("x").expect("input");
            let mut acc = b.mul_const(x, c[d]);
            acc = b.add_const(acc, c[d - 1]);
            for k in (0..d - 1).rev() {
                acc = b.mul(acc, x);
                acc = b.add_const(acc, c[k]);
            }
            b.finish(
                vec![Output {
                    name: "y".into(),
                    value: acc,
                }],
                None,
            )
            .expect("valid")
        }
        _ => plan_chebyshev(&c, Interval::UNIT, &PlanOptions::default()).expect("plan"),
    };
    let g = a.get(5).cloned().unwrap_or_else(|| "aspc".into());
    let set = RuleSet {
        arith: g.contains('a'),
        scalar: g.contains('s'),
        power: g.contains('p'),
        chebyshev: g.contains('c'),
    };
    match optimize_with(&circuit, &limits, &set) {
        Ok((_, r)) => println!("{kind} degree {d}: {r}"),
        Err(e) => eprintln!("error: {e}"),
    }
}
