//! The checks run before a packed program is written: every packed value against the IR
//! interpreter (f64), once with random inputs *and random polynomial outputs* (so every linear
//! op is checked on arbitrary data, unused slots filled with garbage that must not leak), and
//! once on calibration samples end to end (polynomials included), which also measures the
//! ranges the bootstrap placement needs.

use std::collections::BTreeSet;

use pannc_fhe::packed::eval::{pack, unpack, used_mask, Evaluator};
use pannc_fhe::packed::{OpKind, Weights};
use pannc_interp::{Hook, Precision, RunOptions};
use pannc_ir::{Graph, Op, Tensor, ValueId};

use super::{Lowered, Meaning};
use crate::CkksError;

/// What [`check`] measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CheckReport {
    /// Values compared with the interpreter (per run).
    pub values_checked: usize,
    /// Largest `max|packed − interpreter| / max|interpreter|` over values, random run.
    pub random_max_rel_error: f64,
    /// The same on calibration samples.
    pub calib_max_rel_error: f64,
    /// Calibration samples evaluated.
    pub samples: usize,
}

/// Per packed value, over the calibration samples: `[min, max]` of its used slots and the
/// largest magnitude in its unused slots (what a polynomial leaves there).
#[derive(Clone, Debug, PartialEq)]
pub struct Ranges {
    pub used: Vec<Option<[f64; 2]>>,
    pub unused_max: Vec<f64>,
}

struct Rng(u64);
impl Rng {
    fn unif(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

fn rand_at(seed: u64, e: usize) -> f64 {
    Rng(seed.wrapping_mul(0x1000_0000_01B3) ^ (e as u64).wrapping_mul(0x9E37_79B9)).unif()
}

/// The IR values the meanings refer to, probed as outputs of a copy of `g`.
fn probe(g: &Graph, l: &Lowered) -> (Graph, Vec<ValueId>) {
    let mut want: BTreeSet<ValueId> = BTreeSet::new();
    for m in &l.meanings {
        match m {
            Meaning::Affine { ir, .. } => {
                want.insert(*ir);
            }
            Meaning::PolyOut { ir_out, ir_in, .. } => {
                want.insert(*ir_out);
                want.insert(*ir_in);
            }
            Meaning::Partial => {}
        }
    }
    let list: Vec<ValueId> = want.into_iter().collect();
    let mut p = g.clone();
    p.set_outputs(list.clone());
    (p, list)
}

fn compare(got: &[f64], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |a, x| a.max(x.abs())).max(1e-3);
    let err = got
        .iter()
        .zip(want)
        .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
    if err.is_nan() {
        f64::INFINITY
    } else {
        err / scale
    }
}

/// Runs both checks; an [`CkksError::Internal`] naming the value and its op when a packed
/// value differs from the interpreter by more than `tol` (relative to the tensor's largest
/// magnitude). `calib` holds one batch-first tensor per graph input; the first `samples` rows
/// are used.
pub fn check(
    g: &Graph,
    l: &Lowered,
    w: &Weights,
    calib: &[Tensor],
    samples: usize,
    tol: f64,
) -> Result<(CheckReport, Ranges), CkksError> {
    let p = &l.program;
    let s = p.slots;
    let (probe_g, list) = probe(g, l);
    let index_of = |v: ValueId| list.binary_search(&v).expect("probed");
    let ev = Evaluator::new(p, w).map_err(|e| CkksError::Internal(e.to_string()))?;
    let opts = RunOptions {
        precision: Precision::F64,
        batch_chunk: 0,
        threads: 1,
    };
    let name_of = |v: usize| -> String {
        let n_in = p.inputs.len();
        if v < n_in {
            return format!("input '{}'", p.inputs[v].name);
        }
        let j = v - n_in;
        let node = p
            .layers
            .iter()
            .find(|x| x.op == j)
            .map_or("?", |x| x.node.as_str());
        format!(
            "value {v} (op #{j} {}, from node '{node}')",
            p.ops[j].kind.name()
        )
    };
    let mut checked = 0;

    // 1. Random inputs, random polynomial outputs.
    let inputs: Vec<Tensor> = g
        .inputs()
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let shape = &p.values[i].shape;
            let n: usize = shape.iter().product();
            let mut full = vec![1usize];
            full.extend(shape);
            Tensor::from_f64(
                &full,
                (0..n).map(|e| rand_at(0xA11CE + i as u64, e)).collect(),
            )
            .expect("shape")
        })
        .collect();
    let polys: std::collections::HashSet<_> = g
        .node_ids()
        .into_iter()
        .filter(|&id| matches!(g.node(id).op, Op::Poly(_)))
        .collect();
    let f = |id: pannc_ir::NodeId, _x: &Tensor, y: &mut Tensor| {
        let n = y.len();
        let data = (0..n)
            .map(|e| rand_at(0xB0B + id.index() as u64, e))
            .collect();
        *y = Tensor::from_f64(y.shape(), data).expect("shape");
    };
    let hook = Hook {
        nodes: polys,
        f: &f,
    };
    let ir = pannc_interp::run_hooked(&probe_g, &inputs, &opts, Some(&hook))?;
    let ir: Vec<Vec<f64>> = ir.iter().map(|t| t.to_f64_vec()).collect();
    let xs: Vec<Vec<f64>> = inputs.iter().map(|t| t.to_f64_vec()).collect();
    let xr: Vec<&[f64]> = xs.iter().map(|v| v.as_slice()).collect();
    let mut bad: Option<String> = None;
    let vals = ev
        .run(&xr, |j, y| {
            let v = p.ops[j].out as usize;
            if let Meaning::PolyOut {
                ir_out,
                ir_in,
                lazy,
                slope_coef,
                ..
            } = &l.meanings[v]
            {
                let (o, i) = (&ir[index_of(*ir_out)], &ir[index_of(*ir_in)]);
                let e: Vec<f64> = o
                    .iter()
                    .zip(i)
                    .map(|(o, i)| (o - slope_coef * i) / lazy)
                    .collect();
                let val = &p.values[v];
                let mut packed = pack(&e, &val.shape, val.layout.as_ref(), val.ciphertexts, s);
                let used = used_mask(&val.shape, val.layout.as_ref(), val.ciphertexts, s);
                for (t, u) in used.iter().enumerate() {
                    if !u {
                        packed[t] = 1e3 * (1.5 + rand_at(0xDEAD + j as u64, t));
                    }
                }
                *y = packed;
            }
            if matches!(p.ops[j].kind, OpKind::Linear { .. }) && bad.is_none() {
                let val = &p.values[v];
                let used = used_mask(&val.shape, val.layout.as_ref(), val.ciphertexts, s);
                if let Some(t) = (0..y.len()).find(|&t| !used[t] && y[t] != 0.0) {
                    bad = Some(format!(
                        "{} writes {} into unused slot {t}",
                        name_of(v),
                        y[t]
                    ));
                }
            }
        })
        .map_err(|e| CkksError::Internal(e.to_string()))?;
    if let Some(b) = bad {
        return Err(CkksError::Internal(format!(
            "packed check (random inputs): {b}"
        )));
    }
    let mut random_max = 0.0f64;
    for (v, m) in l.meanings.iter().enumerate() {
        if let Meaning::Affine {
            ir: iv,
            scale,
            shift,
        } = m
        {
            let val = &p.values[v];
            let got = unpack(&vals[v], &val.shape, val.layout.as_ref());
            let want: Vec<f64> = ir[index_of(*iv)]
                .iter()
                .map(|x| scale * x + shift)
                .collect();
            let e = compare(&got, &want);
            checked += 1;
            if e > tol {
                return Err(CkksError::Internal(format!(
                    "packed check (random inputs): {} differs from the interpreter's '{}' by {e:.3e} (relative), more than {tol:.0e}",
                    name_of(v),
                    g.value(*iv).name
                )));
            }
            random_max = random_max.max(e);
        }
    }

    // 2. Calibration samples end to end; ranges.
    let n = calib.first().map_or(0, |t| t.shape()[0]).min(samples);
    let mut ranges = Ranges {
        used: vec![None; p.values.len()],
        unused_max: vec![0.0; p.values.len()],
    };
    let mut calib_max = 0.0f64;
    if n > 0 {
        let part: Vec<Tensor> = calib.iter().map(|t| t.slice_batch(0, n)).collect();
        let ir = pannc_interp::run(&probe_g, &part, &opts)?;
        let ir: Vec<Vec<f64>> = ir.iter().map(|t| t.to_f64_vec()).collect();
        let xs: Vec<Vec<f64>> = part.iter().map(|t| t.to_f64_vec()).collect();
        let masks: Vec<Vec<bool>> = p
            .values
            .iter()
            .map(|v| used_mask(&v.shape, v.layout.as_ref(), v.ciphertexts, s))
            .collect();
        let compared = l
            .meanings
            .iter()
            .filter(|m| !matches!(m, Meaning::Partial))
            .count();
        checked += compared;
        // One sample: its largest relative error and its ranges (samples run in parallel; the
        // merge below is in sample order, and min/max do not depend on it).
        let one = |k: usize| -> Result<(f64, Ranges), CkksError> {
            let xk: Vec<&[f64]> = xs
                .iter()
                .zip(&p.values)
                .map(|(x, v)| {
                    let m = v.numel();
                    &x[k * m..(k + 1) * m]
                })
                .collect();
            let vals = ev
                .run(&xk, |_, _| {})
                .map_err(|e| CkksError::Internal(e.to_string()))?;
            let sample_of = |iv: ValueId, len: usize| -> &[f64] {
                let all = &ir[index_of(iv)];
                &all[k * len..(k + 1) * len]
            };
            let mut worst = 0.0f64;
            let mut r = Ranges {
                used: vec![None; p.values.len()],
                unused_max: vec![0.0; p.values.len()],
            };
            for (v, m) in l.meanings.iter().enumerate() {
                let val = &p.values[v];
                let ne = val.numel();
                let want: Option<(Vec<f64>, Vec<f64>, String)> = match m {
                    Meaning::Affine {
                        ir: iv,
                        scale,
                        shift,
                    } => {
                        let got = unpack(&vals[v], &val.shape, val.layout.as_ref());
                        let want = sample_of(*iv, ne)
                            .iter()
                            .map(|x| scale * x + shift)
                            .collect();
                        Some((got, want, g.value(*iv).name.clone()))
                    }
                    Meaning::PolyOut {
                        ir_out,
                        ir_in,
                        lazy,
                        slope_coef,
                        ..
                    } => {
                        let raw = unpack(&vals[v], &val.shape, val.layout.as_ref());
                        let xin = sample_of(*ir_in, ne);
                        let got = raw
                            .iter()
                            .zip(xin)
                            .map(|(q, x)| lazy * q + slope_coef * x)
                            .collect();
                        Some((
                            got,
                            sample_of(*ir_out, ne).to_vec(),
                            g.value(*ir_out).name.clone(),
                        ))
                    }
                    Meaning::Partial => None,
                };
                if let Some((got, want, name)) = want {
                    let e = compare(&got, &want);
                    if e > tol {
                        return Err(CkksError::Internal(format!(
                            "packed check (calibration sample {k}): {} differs from the interpreter's '{name}' by {e:.3e} (relative), more than {tol:.0e}",
                            name_of(v)
                        )));
                    }
                    worst = worst.max(e);
                }
                for (t, &x) in vals[v].iter().enumerate() {
                    if masks[v][t] {
                        let u = r.used[v].get_or_insert([x, x]);
                        u[0] = u[0].min(x);
                        u[1] = u[1].max(x);
                    } else {
                        r.unused_max[v] = r.unused_max[v].max(x.abs());
                    }
                }
            }
            Ok((worst, r))
        };
        use rayon::prelude::*;
        let results: Vec<Result<(f64, Ranges), CkksError>> =
            (0..n).into_par_iter().map(one).collect();
        for res in results {
            let (worst, r) = res?;
            calib_max = calib_max.max(worst);
            for (v, u) in r.used.into_iter().enumerate() {
                if let Some([lo, hi]) = u {
                    let x = ranges.used[v].get_or_insert([lo, hi]);
                    x[0] = x[0].min(lo);
                    x[1] = x[1].max(hi);
                }
                ranges.unused_max[v] = ranges.unused_max[v].max(r.unused_max[v]);
            }
        }
    }
    Ok((
        CheckReport {
            values_checked: checked,
            random_max_rel_error: random_max,
            calib_max_rel_error: calib_max,
            samples: n,
        },
        ranges,
    ))
}
