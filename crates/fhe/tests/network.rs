//! Multi-layer circuits: inlining planned polynomials, output scales, layer records, bootstrap
//! points (format version 2) and their placement.

use pannc_fhe::{
    chebyshev_interpolant, check_json, optimal_depth, place_bootstraps, plan_chebyshev,
    plan_composite, BootstrapPoint, Circuit, CircuitBuilder, Combine, Interval, Output,
    PlanOptions, Stage, ValueId,
};

fn poly(d: usize) -> Circuit {
    let c = chebyshev_interpolant(|x| (1.7 * x).sin() * 0.8 + 0.1, d);
    plan_chebyshev(&c, Interval::UNIT, &PlanOptions::default()).unwrap()
}

#[test]
fn inlined_polynomial_keeps_its_depth_on_top_of_its_input_level() {
    let p = poly(15);
    let mut b = CircuitBuilder::new("t");
    let x = b.input("x").unwrap();
    // Bring x to level 3 first: three scalar products (mul_const always rescales), ×1 overall.
    let mut v = x;
    for c in [0.5, 0.5, 4.0] {
        v = b.mul_const(v, c);
    }
    assert_eq!(b.level(v), 3);
    let y = b.inline(&p, &[v]).unwrap()[0];
    assert_eq!(b.level(y), 3 + optimal_depth(15));
    let c = b
        .finish(
            vec![Output {
                name: "y".into(),
                value: y,
            }],
            None,
        )
        .unwrap();
    for i in 0..=20 {
        let x = -1.0 + i as f64 / 10.0;
        let want = p.eval(&[x]).unwrap()[0];
        assert!((c.eval(&[x]).unwrap()[0] - want).abs() < 1e-12);
    }
    // Arity and undefined inputs are errors.
    let mut b = CircuitBuilder::new("t");
    let x = b.input("x").unwrap();
    assert!(b.inline(&p, &[x, x]).is_err());
    assert!(b.inline(&p, &[ValueId(7)]).is_err());
}

#[test]
fn output_scale_is_free() {
    let c = chebyshev_interpolant(|x| x.tanh(), 31);
    let plain = plan_chebyshev(&c, Interval::UNIT, &PlanOptions::default()).unwrap();
    let scaled = plan_chebyshev(
        &c,
        Interval::UNIT,
        &PlanOptions {
            output_scale: 3.7,
            ..PlanOptions::default()
        },
    )
    .unwrap();
    assert_eq!(scaled.depth, plain.depth);
    for i in 0..=40 {
        let x = -1.0 + i as f64 / 20.0;
        let (a, b) = (plain.eval(&[x]).unwrap()[0], scaled.eval(&[x]).unwrap()[0]);
        assert!((3.7 * a - b).abs() < 1e-12, "{x}");
    }
    // ReLU combine on a non-unit interval: x·(1+s)/2 scaled, same depth.
    let st = vec![Stage {
        coeffs: chebyshev_interpolant(|x| (5.0 * x).tanh(), 15),
        interval: Interval::new(-2.0, 2.0).unwrap(),
    }];
    let r1 = plan_composite(&st, Combine::Relu, &PlanOptions::default()).unwrap();
    let r2 = plan_composite(
        &st,
        Combine::Relu,
        &PlanOptions {
            output_scale: 0.3,
            ..PlanOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r1.depth, r2.depth);
    for i in 0..=40 {
        let u = -1.0 + i as f64 / 20.0;
        let (a, b) = (r1.eval(&[u]).unwrap()[0], r2.eval(&[u]).unwrap()[0]);
        assert!((0.3 * a - b).abs() < 1e-12);
    }
    for bad in [0.0, f64::NAN, f64::INFINITY] {
        let o = PlanOptions {
            output_scale: bad,
            ..PlanOptions::default()
        };
        assert!(plan_chebyshev(&c, Interval::UNIT, &o).is_err());
    }
}

/// A layered toy network with a residual branch:
/// `h1 = p(w·x)`, `h2 = p(0.5·h1)`, `h3 = p(0.25·h2 + 0.5·h1)` (h1 skips a layer), `y = 0.7·h3`.
/// Per layer: linear 1 level, poly 4 levels (degree 15).
fn layered(width: usize) -> Circuit {
    let p = poly(15);
    let mut b = CircuitBuilder::new("toy");
    let xs: Vec<ValueId> = (0..width)
        .map(|i| b.input(format!("x[{i}]")).unwrap())
        .collect();
    let linear = |b: &mut CircuitBuilder, name: &str, terms: &[(&[ValueId], f64)]| {
        let start = b.num_ops();
        let mut outs = vec![];
        for j in 0..width {
            let mut acc = None;
            for (vals, w) in terms {
                let t = b.mul_const(vals[j], *w + 0.01 * j as f64);
                acc = Some(match acc {
                    None => t,
                    Some(a) => b.add(a, t),
                });
            }
            outs.push(acc.unwrap());
        }
        b.add_layer(name, "linear", start, &outs, None);
        outs
    };
    let layer_poly = |b: &mut CircuitBuilder, name: &str, ins: &[ValueId]| {
        let start = b.num_ops();
        let outs: Vec<ValueId> = ins
            .iter()
            .map(|&u| b.inline(&p, &[u]).unwrap()[0])
            .collect();
        b.add_layer(name, "poly:toy", start, &outs, p.plan.clone());
        outs
    };
    let u1 = linear(&mut b, "fc1", &[(&xs, 0.3)]);
    let h1 = layer_poly(&mut b, "act1", &u1);
    let u2 = linear(&mut b, "fc2", &[(&h1, 0.5)]);
    let h2 = layer_poly(&mut b, "act2", &u2);
    let u3 = linear(&mut b, "fc3", &[(&h2, 0.25), (&h1, 0.5)]);
    let h3 = layer_poly(&mut b, "act3", &u3);
    let y = linear(&mut b, "out", &[(&h3, 0.7)]);
    b.finish(
        y.iter()
            .enumerate()
            .map(|(i, &v)| Output {
                name: format!("y[{i}]"),
                value: v,
            })
            .collect(),
        None,
    )
    .unwrap()
}

#[test]
fn layer_records_carry_levels_that_the_checker_recomputes() {
    let c = layered(3);
    assert_eq!(c.depth, 16, "4 linear layers + 3 polynomials of 4 levels");
    let levels: Vec<(u32, u32)> = c.layers.iter().map(|l| (l.level_in, l.level)).collect();
    assert_eq!(
        levels,
        vec![
            (0, 1),
            (1, 5),
            (5, 6),
            (6, 10),
            (10, 11),
            (11, 15),
            (15, 16)
        ]
    );
    let text = c.to_json().unwrap();
    assert!(text.contains("\"version\": 1"), "no bootstraps: version 1");
    let r = check_json(&text).unwrap();
    assert!(r.is_consistent(), "{:?}", r.mismatches);
    let lv: Vec<u32> = r.layers.iter().map(|l| l.1).collect();
    assert_eq!(lv, vec![1, 5, 6, 10, 11, 15, 16]);
    assert_eq!(Circuit::from_json(&text).unwrap(), c);
    // A lie about a layer's level is caught by both readers.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["layers"][3]["level"] = serde_json::json!(9);
    let lie = v.to_string();
    assert!(Circuit::from_json(&lie).is_err());
    let r = check_json(&lie).unwrap();
    assert!(
        r.mismatches.iter().any(|m| m.contains("act2")),
        "{:?}",
        r.mismatches
    );
}

/// Every subset of layer starts as cuts, refreshing whatever is live above level 0.
fn brute_force(c: &Circuit, max_level: u32) -> Option<u32> {
    let starts: Vec<usize> = c
        .layers
        .iter()
        .map(|l| l.ops[0])
        .filter(|&s| s > 0 && s < c.ops.len())
        .collect();
    let n_in = c.inputs.len();
    let mut last_use = vec![None; c.num_values()];
    for (i, e) in c.ops.iter().enumerate() {
        for a in e.op.args() {
            last_use[a.0 as usize] = Some(i);
        }
    }
    for o in &c.outputs {
        last_use[o.value.0 as usize] = Some(c.ops.len());
    }
    let mut best = None;
    for mask in 0u32..(1 << starts.len()) {
        let mut b = c.clone();
        let mut cur = vec![0u32; c.num_values()];
        for (k, e) in c.ops.iter().enumerate() {
            if (0..starts.len()).any(|i| mask >> i & 1 == 1 && starts[i] == k) {
                let vals: Vec<ValueId> = (0..n_in + k)
                    .filter(|&v| cur[v] > 0 && last_use[v].is_some_and(|u| u >= k))
                    .map(|v| ValueId(v as u32))
                    .collect();
                for v in &vals {
                    cur[v.0 as usize] = 0;
                }
                if !vals.is_empty() {
                    b.bootstraps.push(BootstrapPoint {
                        before_op: k,
                        values: vals,
                    });
                }
            }
            cur[n_in + k] = e.op.result_level(|v| cur[v.0 as usize]);
        }
        let t = b.trace().unwrap();
        if t.depth <= max_level {
            let n: u32 = b.bootstraps.iter().map(|p| p.values.len() as u32).sum();
            best = Some(best.map_or(n, |m: u32| m.min(n)));
        }
    }
    best
}

#[test]
fn bootstrap_placement_is_optimal_and_refreshes_residual_branches() {
    let c = layered(3);
    for l in 5..=16 {
        let p = place_bootstraps(&c, l).unwrap();
        let text = p.circuit.to_json().unwrap();
        let r = check_json(&text).unwrap();
        assert!(r.is_consistent(), "L={l}: {:?}", r.mismatches);
        assert!(r.depth <= l, "L={l}: depth {}", r.depth);
        assert_eq!(Some(p.bootstrapped), brute_force(&c, l), "L={l}");
        assert_eq!(r.bootstrapped, p.bootstrapped);
        // Same function.
        let x = [0.3, -0.7, 0.9];
        assert_eq!(p.circuit.eval(&x).unwrap(), c.eval(&x).unwrap());
        // Round trip (version 2 when there are bootstraps).
        let back = Circuit::from_json(&text).unwrap();
        assert_eq!(back, p.circuit);
        assert_eq!(
            text.contains("\"version\": 2"),
            !p.circuit.bootstraps.is_empty()
        );
        // A cut between act2 and fc3 also refreshes the skip branch h1 (live across it),
        // there or at an earlier cut: both branches reach fc3 at level 0.
        let fc3 = p.circuit.layers.iter().find(|l| l.name == "fc3").unwrap();
        let bs = &p.circuit.bootstraps;
        if bs.iter().any(|b| b.before_op == fc3.ops[0]) {
            let (act1, act2) = (&p.circuit.layers[1], &p.circuit.layers[3]);
            for v in act1.outputs.iter().chain(&act2.outputs) {
                assert!(
                    bs.iter()
                        .any(|b| b.before_op <= fc3.ops[0] && b.values.contains(v)),
                    "L={l}: {v:?} reaches fc3 unrefreshed"
                );
            }
            assert_eq!(fc3.level_in, 0, "L={l}");
        }
    }
    // Within budget: nothing to do.
    let p = place_bootstraps(&c, 16).unwrap();
    assert!(p.circuit.bootstraps.is_empty());
    assert_eq!(p.circuit, c);
    // Too small: a poly layer alone needs 4 levels.
    let e = place_bootstraps(&c, 3).unwrap_err().to_string();
    assert!(e.contains("act1") && e.contains("max level 3"), "{e}");
    // No layer records, no placement.
    let mut bare = c.clone();
    bare.layers.clear();
    assert!(place_bootstraps(&bare, 8).is_err());
}

#[test]
fn bootstrap_points_are_validated() {
    let c = layered(2);
    let p = place_bootstraps(&c, 8).unwrap();
    assert!(!p.circuit.bootstraps.is_empty());
    let text = p.circuit.to_json().unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Version 1 documents cannot have bootstraps.
    let mut bad = v.clone();
    bad["version"] = serde_json::json!(1);
    assert!(Circuit::from_json(&bad.to_string()).is_err());
    assert!(check_json(&bad.to_string()).is_err());
    // Refreshing a value not yet defined.
    let mut bad = v.clone();
    bad["bootstraps"][0]["values"][0] = serde_json::json!(100_000);
    assert!(Circuit::from_json(&bad.to_string()).is_err());
    assert!(check_json(&bad.to_string()).is_err());
    // Points out of order / past the end.
    let mut bad = v.clone();
    bad["bootstraps"][0]["before_op"] = serde_json::json!(1_000_000);
    assert!(Circuit::from_json(&bad.to_string()).is_err());
    assert!(check_json(&bad.to_string()).is_err());
    // Dropping a bootstrap point makes the declared levels lies.
    let mut bad = v.clone();
    bad["bootstraps"].as_array_mut().unwrap().remove(0);
    assert!(Circuit::from_json(&bad.to_string()).is_err());
    assert!(!check_json(&bad.to_string()).unwrap().is_consistent());
    // Builder: bootstrap resets the level and versions the document.
    let mut b = CircuitBuilder::new("b");
    let x = b.input("x").unwrap();
    let y = b.mul(x, x);
    let z = b.mul(y, y);
    b.bootstrap(&[z]).unwrap();
    assert_eq!(b.level(z), 0);
    let w = b.mul(z, z);
    assert!(b.bootstrap(&[ValueId(99)]).is_err());
    let c = b
        .finish(
            vec![Output {
                name: "w".into(),
                value: w,
            }],
            None,
        )
        .unwrap();
    assert_eq!(c.depth, 2, "max(level of z when refreshed = 2, w = 1)");
    assert_eq!(c.stats.bootstraps, 1);
    assert_eq!(c.eval(&[0.5]).unwrap()[0], 0.5f64.powi(8));
    let r = check_json(&c.to_json().unwrap()).unwrap();
    assert_eq!((r.depth, r.bootstrapped), (2, 1));
}
