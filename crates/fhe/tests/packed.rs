//! Packed programs (`pannc-circuit` v3): JSON and npz round trips, validation (one-line errors
//! naming op and rule), the BSGS evaluator against the direct diagonal sum, and bootstrap
//! placement against brute force on small residual graphs.

use std::collections::BTreeMap;

use pannc_fhe::packed::{
    self, bootstrap, cost, eval, layout, validate, BootstrapParams, CkksParams, Io, Layout,
    LinearWeights, Op, OpKind, Program, Stats, Value, Weights,
};
use pannc_fhe::{plan_chebyshev, Interval, PlanOptions};

/// splitmix64
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unif(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Builder {
    p: Program,
    w: Weights,
    rng: Rng,
}

impl Builder {
    fn new(slots: usize, input_shape: &[usize], seed: u64) -> Builder {
        let cts = layout::ciphertexts(input_shape, None, slots).unwrap();
        Builder {
            p: Program {
                name: "test".into(),
                slots,
                values: vec![Value {
                    id: 0,
                    shape: input_shape.to_vec(),
                    ciphertexts: cts,
                    level: 0,
                    range: None,
                    layout: None,
                }],
                inputs: vec![Io {
                    name: "x".into(),
                    value: 0,
                    shape: input_shape.to_vec(),
                }],
                outputs: vec![],
                ops: vec![],
                rotations: vec![],
                depth: 0,
                stats: Stats::default(),
                ckks: CkksParams {
                    ring_dim: 2 * slots as u64,
                    slots,
                    scale_bits: 59,
                    first_mod_bits: 60,
                    levels: 100,
                    bootstrap: BootstrapParams::default(),
                    security: "HEStd_NotSet".into(),
                },
                estimate: None,
                layers: vec![],
            },
            w: Weights::new(),
            rng: Rng(seed),
        }
    }

    fn push(&mut self, kind: OpKind, shape: Vec<usize>, lay: Option<Layout>) -> u32 {
        let id = self.p.values.len() as u32;
        let cts = layout::ciphertexts(&shape, lay.as_ref(), self.p.slots).unwrap();
        self.p.values.push(Value {
            id,
            shape,
            ciphertexts: cts,
            level: 0,
            range: Some([-0.5, 0.5]),
            layout: lay,
        });
        self.p.ops.push(Op {
            out: id,
            kind,
            level: 0,
        });
        id
    }

    /// A random linear map (each (out element, in element) pair with probability `density`).
    fn linear(&mut self, x: u32, shape: &[usize], lay: Option<Layout>, density: f64) -> u32 {
        let s = self.p.slots;
        let xin = self.p.values[x as usize].clone();
        let pin = layout::positions(&xin.shape, xin.layout.as_ref());
        let pout = layout::positions(shape, lay.as_ref());
        let m_out = layout::ciphertexts(shape, lay.as_ref(), s).unwrap();
        let mut diags: BTreeMap<[usize; 3], Vec<f64>> = BTreeMap::new();
        for &po in &pout {
            for &pi in &pin {
                if (self.rng.unif() + 1.0) / 2.0 < density {
                    let (o, t) = (po / s, po % s);
                    let (i, u) = (pi / s, pi % s);
                    let k = (u + s - t) % s;
                    diags.entry([o, i, k]).or_insert_with(|| vec![0.0; s])[t] = self.rng.unif();
                }
            }
        }
        let mut bias = vec![0.0; m_out * s];
        for &po in &pout {
            bias[po] = self.rng.unif();
        }
        let index: Vec<[usize; 3]> = diags.keys().copied().collect();
        let diag: Vec<f64> = diags.values().flatten().copied().collect();
        let plan = cost::choose_n1(&index, s);
        let key = format!("L{}", self.p.ops.len());
        let d = index.len();
        self.w
            .insert(key.clone(), LinearWeights { index, diag, bias });
        self.push(
            OpKind::Linear {
                input: x,
                weights: key,
                n1: plan.n1,
                diagonals: d,
                out_shape: shape.to_vec(),
            },
            shape.to_vec(),
            lay,
        )
    }

    fn poly(&mut self, x: u32, degree: usize) -> u32 {
        let coeffs: Vec<f64> = (0..=degree).map(|_| self.rng.unif() * 0.3).collect();
        let c = plan_chebyshev(&coeffs, Interval::UNIT, &PlanOptions::default()).unwrap();
        let v = self.p.values[x as usize].clone();
        self.push(
            OpKind::Poly {
                input: x,
                circuit: Box::new(c),
            },
            v.shape,
            v.layout,
        )
    }

    fn add(&mut self, a: u32, b: u32) -> u32 {
        let v = self.p.values[a as usize].clone();
        self.push(OpKind::Add { a, b }, v.shape, v.layout)
    }

    fn finish(mut self, out: u32) -> (Program, Weights) {
        let shape = self.p.values[out as usize].shape.clone();
        self.p.outputs = vec![Io {
            name: "y".into(),
            value: out,
            shape,
        }];
        self.p.refresh_derived(&self.w).unwrap();
        self.p.ckks.levels = self.p.depth;
        (self.p, self.w)
    }
}

/// x [2,3,3] (2 ciphertexts at S = 16) → linear → [4,2,2] multiplexed → poly → + linear(x) →
/// poly → linear → [3] (output).
fn sample() -> (Program, Weights) {
    let mut b = Builder::new(16, &[2, 3, 3], 7);
    let mux = Some(Layout {
        gap: 2,
        grid: [4, 4],
    });
    let a = b.linear(0, &[4, 2, 2], mux, 0.5);
    let p = b.poly(a, 3);
    let c = b.linear(0, &[4, 2, 2], mux, 0.5);
    let s = b.add(p, c);
    let q = b.poly(s, 2);
    let y = b.linear(q, &[3], None, 0.7);
    b.finish(y)
}

#[test]
fn program_round_trips_through_json_and_npz() {
    let (p, w) = sample();
    validate(&p, &w).unwrap();
    let json = p.to_json().unwrap();
    assert_eq!(Program::from_json(&json).unwrap(), p);
    assert_eq!(p.to_json().unwrap(), json, "deterministic");
    let dir = std::env::temp_dir().join(format!("pannc_packed_rt_{}", std::process::id()));
    let size = packed::write_dir(&dir, &p, &w).unwrap();
    let bytes = std::fs::read(dir.join("weights.npz")).unwrap();
    assert_eq!(bytes.len() as u64, size);
    let (p2, w2) = packed::read_dir(&dir).unwrap();
    assert_eq!((p2, w2), (p.clone(), w.clone()));
    packed::write_dir(&dir, &p, &w).unwrap();
    assert_eq!(std::fs::read(dir.join("weights.npz")).unwrap(), bytes);
    std::fs::remove_dir_all(&dir).ok();
    // Levels: linear 1, poly degree 3 (2 levels) → 3, add max(3, 1) = 3, poly degree 2 → 5,
    // linear → 6.
    assert_eq!(p.depth, 6);
    assert_eq!(p.stats.linear, 3);
    assert!(p.rotations.iter().all(|&k| k > 0 && k < 16));
}

#[test]
fn bsgs_evaluation_equals_the_direct_diagonal_sum() {
    let (p, w) = sample();
    let mut rng = Rng(3);
    let x: Vec<f64> = (0..18).map(|_| rng.unif()).collect();
    let ev = eval::Evaluator::new(&p, &w).unwrap();
    // Garbage in unused slots must not matter: every op reads used slots only.
    let vals = ev.run(&[&x], |_, _| {}).unwrap();
    let vals_garbage = ev
        .run(&[&x], |j, y| {
            let v = &p.values[p.ops[j].out as usize];
            let used = eval::used_mask(&v.shape, v.layout.as_ref(), v.ciphertexts, p.slots);
            if matches!(p.ops[j].kind, OpKind::Poly { .. }) {
                for (t, u) in used.iter().enumerate() {
                    if !u {
                        y[t] = 1e3 * (t as f64 + 1.0);
                    }
                }
            }
        })
        .unwrap();
    let out = p.outputs[0].value as usize;
    for (a, b) in vals[out].iter().zip(&vals_garbage[out]) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    for (j, op) in p.ops.iter().enumerate() {
        if let OpKind::Linear { input, weights, .. } = &op.kind {
            let m_out = p.values[op.out as usize].ciphertexts;
            let direct = eval::linear_direct(&w[weights], &vals[*input as usize], m_out, p.slots);
            for (a, b) in direct.iter().zip(&vals[op.out as usize]) {
                assert!((a - b).abs() < 1e-12, "op {j}: {a} vs {b}");
            }
            // Every n1 gives the same map.
            for n1 in [1, 2, 3, 5, 16] {
                let mut q = p.clone();
                if let OpKind::Linear { n1: m, .. } = &mut q.ops[j].kind {
                    *m = n1;
                }
                q.refresh_derived(&w).unwrap();
                let v2 = eval::Evaluator::new(&q, &w)
                    .unwrap()
                    .run(&[&x], |_, _| {})
                    .unwrap();
                for (a, b) in direct.iter().zip(&v2[op.out as usize]) {
                    assert!((a - b).abs() < 1e-12, "op {j} n1 {n1}");
                }
            }
        }
    }
}

/// Every broken program is refused with one line naming the op (or value) and the rule.
#[test]
fn validation_rejects_each_broken_rule_with_one_line() {
    let (p, w) = sample();
    type Case = (
        &'static str,
        Box<dyn Fn(&mut Program, &mut Weights)>,
        &'static str,
    );
    let lin = |p: &Program| -> String {
        match &p.ops[0].kind {
            OpKind::Linear { weights, .. } => weights.clone(),
            _ => unreachable!(),
        }
    };
    let cases: Vec<Case> = vec![
        ("slots", Box::new(|p, _| p.slots = 12), "rule 1"),
        ("value ids", Box::new(|p, _| p.values[2].id = 7), "rule 1"),
        (
            "operand order",
            Box::new(|p, _| {
                if let OpKind::Add { b, .. } = &mut p.ops[3].kind {
                    *b = 6
                }
            }),
            "rule 1",
        ),
        (
            "ciphertexts",
            Box::new(|p, _| p.values[1].ciphertexts = 3),
            "rule 2",
        ),
        (
            "layout",
            Box::new(|p, _| {
                p.values[1].layout = Some(Layout {
                    gap: 3,
                    grid: [4, 4],
                })
            }),
            "rule 2",
        ),
        (
            "add shapes",
            Box::new(|p, _| {
                if let OpKind::Add { b, .. } = &mut p.ops[3].kind {
                    *b = 0
                }
            }),
            "rule 2",
        ),
        (
            "output layout",
            Box::new(|p, _| {
                let v = p.outputs[0].value as usize;
                p.values[v].layout = Some(Layout {
                    gap: 1,
                    grid: [3, 1],
                });
            }),
            "rule 2",
        ),
        ("level", Box::new(|p, _| p.ops[1].level += 1), "rule 3"),
        ("depth", Box::new(|p, _| p.depth += 1), "rule 3"),
        ("ckks levels", Box::new(|p, _| p.ckks.levels = 2), "rule 3"),
        (
            "bootstrap at level 0",
            Box::new(|p, _| {
                p.ops[0].kind = OpKind::Bootstrap { input: 0 };
            }),
            "rule",
        ),
        (
            "missing weights",
            Box::new(move |p, w| {
                w.remove(&lin(p));
            }),
            "rule 4",
        ),
        (
            "diagonal count",
            Box::new(|p, _| {
                if let OpKind::Linear { diagonals, .. } = &mut p.ops[0].kind {
                    *diagonals += 1
                }
            }),
            "rule 4",
        ),
        (
            "index order",
            Box::new(move |p, w| {
                let lw = w.get_mut(&lin(p)).unwrap();
                lw.index.swap(0, 1);
            }),
            "rule 4",
        ),
        (
            "index range",
            Box::new(move |p, w| {
                let lw = w.get_mut(&lin(p)).unwrap();
                let last = lw.index.len() - 1;
                lw.index[last][1] = 5;
            }),
            "rule 4",
        ),
        (
            "non-finite",
            Box::new(move |p, w| {
                w.get_mut(&lin(p)).unwrap().diag[3] = f64::NAN;
            }),
            "rule 4",
        ),
        (
            "unused slot read",
            Box::new(move |p, w| {
                // Input has 18 elements in 2 ciphertexts of 16: slots 2..16 of ciphertext 1 are unused.
                let lw = w.get_mut(&lin(p)).unwrap();
                let r = lw.index.iter().position(|r| r[1] == 1).unwrap();
                let k = lw.index[r][2];
                let t = (16 + 5 - k) % 16; // reads slot 5 of ciphertext 1
                lw.diag[r * 16 + t] = 1.0;
            }),
            "unused",
        ),
        (
            "rotation keys",
            Box::new(|p, _| {
                p.rotations.pop();
            }),
            "rule 4",
        ),
        ("output", Box::new(|p, _| p.outputs[0].value = 99), "rule 6"),
        ("stats", Box::new(|p, _| p.stats.pt_mults += 1), "stats"),
    ];
    for (what, f, rule) in cases {
        let (mut q, mut v) = (p.clone(), w.clone());
        f(&mut q, &mut v);
        let e = validate(&q, &v).expect_err(what).to_string();
        assert!(!e.contains('\n'), "{what}: {e}");
        assert!(e.contains(rule), "{what}: {e}");
        if rule.starts_with("rule 4") || rule == "unused" {
            assert!(e.contains("op #0 (linear"), "{what}: {e}");
        }
    }
    // Broken documents: header and embedded circuits, at parse time.
    let json = p.to_json().unwrap();
    for (what, from, to, rule) in [
        ("version", "\"version\": 3", "\"version\": 2", "rule 1"),
        (
            "packing",
            "\"packing\": \"packed\"",
            "\"packing\": \"slots\"",
            "rule 1",
        ),
        (
            "circuit",
            "\"depth\": 2,\n        \"format\"",
            "\"depth\": 1,\n        \"format\"",
            "rule 5",
        ),
    ] {
        assert!(json.contains(from), "{what}: {from}");
        let e = Program::from_json(&json.replacen(from, to, 1))
            .expect_err(what)
            .to_string();
        assert!(!e.contains('\n') && e.contains(rule), "{what}: {e}");
        if what == "circuit" {
            assert!(e.contains("op #1 (poly"), "{e}");
        }
    }
}

/// A random residual program where only levels matter: ops of random costs, skip adds.
fn residual(seed: u64, blocks: usize) -> (Program, Weights, Vec<bool>) {
    let mut b = Builder::new(4, &[4], seed);
    let mut x = 0u32;
    for _ in 0..blocks {
        let wide = b.rng.below(3) == 0;
        let shape = if wide { vec![8] } else { vec![4] };
        let a = b.linear(x, &shape, None, 0.4);
        let d = 1 + b.rng.below(7);
        let p = b.poly(a, d);
        let c = b.linear(p, &[4], None, 0.4);
        let skip = if b.rng.below(2) == 0 {
            x
        } else {
            b.linear(x, &[4], None, 0.4)
        };
        let s = b.add(c, skip);
        let d2 = 1 + b.rng.below(3);
        x = b.poly(s, d2);
    }
    let (p, w) = b.finish(x);
    let mut rng = Rng(seed ^ 0xABCD);
    let eligible = (0..p.values.len()).map(|_| rng.below(4) != 0).collect();
    (p, w, eligible)
}

/// Levels of every value when `set` is refreshed; None if some op exceeds `l`.
fn feasible(p: &Program, l: u32, set: &[bool]) -> bool {
    let n_in = p.inputs.len();
    let mut lv: Vec<u32> = vec![0; n_in];
    for (j, op) in p.ops.iter().enumerate() {
        let x = op.kind.result_level(|a| lv[a as usize]);
        if x > l {
            return false;
        }
        lv.push(if set[n_in + j] && x >= 1 { 0 } else { x });
    }
    true
}

#[test]
fn bootstrap_placement_is_minimal_on_residual_graphs() {
    let mut checked = 0;
    for seed in 0..60u64 {
        let (p, w, eligible) = residual(seed, 2 + (seed as usize % 2));
        let n_in = p.inputs.len();
        let cand: Vec<usize> = (n_in..p.values.len()).filter(|&v| eligible[v]).collect();
        if cand.len() > 16 {
            continue;
        }
        for l in [3u32, 5, 8, 12] {
            let mut best: Option<usize> = None;
            for mask in 0u32..(1 << cand.len()) {
                let mut set = vec![false; p.values.len()];
                let mut cost = 0;
                for (b, &v) in cand.iter().enumerate() {
                    if mask >> b & 1 == 1 {
                        set[v] = true;
                        cost += p.values[v].ciphertexts;
                    }
                }
                if best.is_none_or(|x| cost < x) && feasible(&p, l, &set) {
                    best = Some(cost);
                }
            }
            let got = bootstrap::place(&p, l, &eligible);
            match (best, got) {
                (None, Err(e)) => assert!(!e.to_string().contains('\n')),
                (Some(b), Ok(pl)) => {
                    assert!(pl.exact);
                    assert_eq!(pl.ciphertexts, b, "seed {seed} L {l}");
                    let mut set = vec![false; p.values.len()];
                    for &v in &pl.refreshed {
                        assert!(eligible[v as usize]);
                        set[v as usize] = true;
                    }
                    assert!(feasible(&p, l, &set));
                    // The program with bootstrap ops is valid within L.
                    let mut q = bootstrap::insert(&p, &w, &pl.refreshed).unwrap();
                    q.ckks.levels = l;
                    validate(&q, &w).unwrap();
                    assert!(q.depth <= l);
                    assert_eq!(q.stats.bootstraps, b);
                    // Plaintext meaning unchanged.
                    let x = [0.1, -0.2, 0.3, 0.05];
                    let a = eval::Evaluator::new(&p, &w)
                        .unwrap()
                        .outputs(&[&x])
                        .unwrap();
                    let c = eval::Evaluator::new(&q, &w)
                        .unwrap()
                        .outputs(&[&x])
                        .unwrap();
                    assert_eq!(a, c);
                    checked += 1;
                }
                (b, g) => panic!("seed {seed} L {l}: brute force {b:?}, placement {g:?}"),
            }
        }
    }
    assert!(checked > 60, "{checked}");
}

/// The skip branch of a residual block is not refreshed with the main branch (a cut-based
/// placement refreshes both).
#[test]
fn residual_skip_is_not_refreshed_with_the_main_branch() {
    let mut b = Builder::new(4, &[4], 1);
    let x0 = b.linear(0, &[4], None, 0.5);
    let x = b.poly(x0, 7); // level 4
    let a = b.linear(x, &[4], None, 0.5); // 5
    let r = b.poly(a, 7); // 8 or 3 after a refresh of a
    let c = b.linear(r, &[4], None, 0.5);
    let s = b.add(c, x);
    let y = b.poly(s, 7);
    let (p, _) = b.finish(y);
    let eligible = vec![true; p.values.len()];
    // Levels: x0 1, x 4, a 5, r 8 > 7. Refreshing a alone gives r 3, c 4, s max(4, 4), y 7;
    // a cut before `a` would refresh the live skip `x` too.
    let pl = bootstrap::place(&p, 7, &eligible).unwrap();
    assert_eq!(pl.refreshed, vec![a], "{pl:?}");
    assert_eq!(pl.ciphertexts, 1);
    assert!(!pl.refreshed.contains(&x));
    let _ = (r, s);
}
