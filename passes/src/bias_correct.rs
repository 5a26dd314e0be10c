//! Bias correction: cancel each polynomial's mean error per channel.
//!
//! A polynomial's error `p(x) − f(x)` has a mean over the data that is not zero (a composite
//! ReLU is below ReLU on both sides of its sign transition), and the next linear layer sums
//! it over many inputs into a shift of every output. This pass runs the network as compiled
//! so far on the calibration data, measures the mean error of every `Poly` per channel
//! (axis 1) on the inputs it actually sees, and subtracts it right after the polynomial. When
//! every reader of the polynomial is a `Gemm` or an unpadded, ungrouped `Conv` with constant
//! weights, the subtraction is folded into their bias (`b − W·m`), which is exact; otherwise it
//! stays a plaintext subtraction. Either way it costs no level.
//!
//! Must run after `approximate` and before `range-control` (it needs each smooth
//! polynomial's `in_scale` to still be `1/B` to know the function it stands for).

use crate::analysis::{activation_inputs, observe};
use crate::shaping::{exact, Exact};
use crate::util::unique_name;
use crate::{Context, Pass, PassError};
use pannc_ir::{AutoPad, Graph, NodeId, Op, Poly, PolyCombine, Tensor};

pub struct BiasCorrect;

/// Polynomials standing for exp or a power (the transformer normalisations).
fn is_normalisation(function: &str) -> bool {
    matches!(
        function,
        "exp" | "reciprocal" | "invsqrt" | "sqrt" | "inv_square" | "power"
    )
}

/// Calibration samples per interpreter call.
const CHUNK: usize = 256;

/// Measure-and-correct rounds.
const ROUNDS: usize = 2;

/// Accumulates a polynomial's error per channel: `Σ (y − f(x))` and the count, over the
/// elements whose input lies inside the interval, in element order.
struct Measure {
    in_scale: f64,
    exact: Exact,
    per_channel: usize,
    channels: usize,
}

impl Measure {
    fn add<T: Copy + Into<f64>>(&self, x: &[T], y: &[T], acc: &mut [(f64, usize)]) {
        // (channel, position within the channel's block) of the next element.
        let mut at = (0usize, 0usize);
        for (&x, &y) in x.iter().zip(y) {
            let (x, y): (f64, f64) = (x.into(), y.into());
            let ch = at.0;
            at.1 += 1;
            if at.1 == self.per_channel {
                at = ((at.0 + 1) % self.channels, 0);
            }
            // Inputs outside the interval are a range failure (reported by simulation), not
            // approximation error: one would swamp the mean.
            if !(self.in_scale * x).abs().le(&1.0) {
                continue;
            }
            acc[ch].0 += y - self.exact.at(x);
            acc[ch].1 += 1;
        }
    }
}

impl Pass for BiasCorrect {
    fn name(&self) -> &'static str {
        "bias-correct"
    }
    fn summary(&self) -> &'static str {
        "subtract each polynomial's mean error per channel, measured on calibration data (folded into the next bias; zero levels)"
    }
    fn run(&self, g: &mut Graph, cx: &mut Context) -> Result<bool, PassError> {
        if !cx.policy.bias_correct {
            return Ok(false);
        }
        if !activation_inputs(g).is_empty() {
            return Err(
                self.graph_err("run 'approximate' first: the graph still has nonlinearities")
            );
        }
        if cx.calib.is_empty() {
            return Err(self.graph_err("bias correction needs calibration data (--calib)"));
        }
        // Exp and the powers (transformer normalisations) are left alone: their errors are
        // relative and enter through products and normalisations, where subtracting a mean is
        // no correction.
        let mut skipped = 0;
        let polys: Vec<(NodeId, Poly)> = g
            .node_ids()
            .into_iter()
            .filter_map(|id| match &g.node(id).op {
                Op::Poly(p) if is_normalisation(&p.function) => {
                    skipped += 1;
                    None
                }
                Op::Poly(p) => Some((id, (**p).clone())),
                _ => None,
            })
            .collect();
        if skipped > 0 {
            cx.report.notes.push(format!(
                "bias: not applied to the {skipped} exp/reciprocal/inverse-square-root polynomial(s) (relative errors inside normalisations; a subtracted mean is no correction there)"
            ));
        }
        for (id, p) in &polys {
            if p.combine == PolyCombine::Identity && p.in_scale == 1.0 {
                return Err(self.node_err(g, *id, "run bias-correct before range-control"));
            }
            if exact(p, 0.0).is_none() {
                return Err(self.node_err(g, *id, format!("no exact form for '{}'", p.function)));
            }
        }
        // Two rounds: the first measures every layer on the uncorrected network, the second
        // re-measures each layer on inputs shifted by the first round's corrections and
        // replaces its correction (a layer-by-layer sweep costs one run per activation).
        // Each polynomial's input and output: the error measured is what the network sees
        // (the output as computed), so the polynomials are not evaluated a second time.
        let values: Vec<_> = polys
            .iter()
            .map(|(id, _)| g.node(*id).inputs()[0])
            .chain(polys.iter().map(|(id, _)| g.node(*id).outputs()[0]))
            .collect();
        let n = polys.len();
        let mut total: Vec<f64> = vec![0.0; polys.len()];
        // Correction in place per polynomial: a later round replaces it (applies the change),
        // since the polynomial's own error is still there to be measured.
        let mut applied: Vec<Vec<f64>> = vec![Vec::new(); polys.len()];
        let mut changed = false;
        for _round in 0..ROUNDS {
            let mut acc: Vec<Vec<(f64, usize)>> = vec![Vec::new(); polys.len()];
            observe(g, &cx.calib, &values, CHUNK, cx.memo.as_deref(), |ts| {
                for (k, acc) in acc.iter_mut().enumerate() {
                    let (p, t, out) = (&polys[k].1, &ts[k], &ts[n + k]);
                    let shape = t.shape();
                    let c = shape.get(1).copied().unwrap_or(1).max(1);
                    let inner: usize = shape.iter().skip(2).product::<usize>().max(1);
                    if acc.is_empty() {
                        acc.resize(c, (0.0, 0));
                    }
                    let per_channel = if shape.len() >= 2 { inner } else { usize::MAX };
                    let ex = Exact::of(p).expect("checked above");
                    let m = Measure {
                        in_scale: p.in_scale,
                        exact: ex,
                        per_channel,
                        channels: c,
                    };
                    match (t, out) {
                        (Tensor::F32(x), Tensor::F32(y)) => match (x.as_slice(), y.as_slice()) {
                            (Some(x), Some(y)) => m.add(x, y, acc),
                            _ => m.add(&t.to_f64_vec(), &out.to_f64_vec(), acc),
                        },
                        _ => m.add(&t.to_f64_vec(), &out.to_f64_vec(), acc),
                    }
                }
            })
            .map_err(|e| self.graph_err(format!("calibration run failed: {e}")))?;
            for (k, ((id, _), acc)) in polys.iter().zip(&acc).enumerate() {
                let means: Vec<f64> = acc.iter().map(|&(s, n)| s / n.max(1) as f64).collect();
                let largest = means.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                if largest == 0.0 || !largest.is_finite() {
                    continue;
                }
                let delta: Vec<f64> = if applied[k].len() == means.len() {
                    means.iter().zip(&applied[k]).map(|(a, b)| a - b).collect()
                } else {
                    means.clone()
                };
                applied[k] = means;
                let rank = g
                    .value(g.node(*id).outputs()[0])
                    .ty
                    .as_ref()
                    .map(|t| t.rank())
                    .unwrap_or(2);
                self.correct(g, *id, &delta, rank)
                    .map_err(|e| self.node_err(g, *id, e))?;
                total[k] = largest;
                changed = true;
            }
        }
        for ((id, _), t) in polys.iter().zip(&total) {
            if let Some(a) = cx.report.activation_of_poly(&g.node(*id).name) {
                if *t > 0.0 {
                    a.bias_correction = Some(a.bias_correction.unwrap_or(0.0).max(*t));
                }
            }
        }
        Ok(changed)
    }
}

impl BiasCorrect {
    fn graph_err(&self, message: impl ToString) -> PassError {
        PassError::Graph {
            pass: self.name(),
            message: message.to_string(),
        }
    }

    fn node_err(&self, g: &Graph, id: NodeId, message: impl ToString) -> PassError {
        let n = g.node(id);
        PassError::Node {
            pass: self.name(),
            node: n.name.clone(),
            op: n.op.name(),
            message: message.to_string(),
        }
    }

    /// Makes the readers of `id`'s output see `y − m` (per channel).
    fn correct(&self, g: &mut Graph, id: NodeId, m: &[f64], rank: usize) -> Result<(), String> {
        let y = g.node(id).outputs()[0];
        let users = g.users(y);
        let foldable = !g.outputs().contains(&y)
            && !users.is_empty()
            && users
                .iter()
                .all(|&(u, slot)| slot == 0 && fold_target(g, u, m.len()));
        if foldable {
            for (u, _) in users {
                fold_into(g, u, m)?;
            }
            return Ok(());
        }
        let base = g.node(id).name.trim_end_matches(".poly").to_string();
        if let [(u, 0)] = users.as_slice() {
            // A second round: add to the correction this pass already placed.
            let node = g.node(*u);
            if node.name == format!("{base}.bias_correct") && matches!(node.op, Op::Sub) {
                let cv = node.inputs()[1];
                if let Some(old) = g.constant(cv).cloned() {
                    let sum: Vec<f64> =
                        old.to_f64_vec().iter().zip(m).map(|(a, b)| a + b).collect();
                    let t = Tensor::from_f64(old.shape(), sum)
                        .ok_or("correction shape")?
                        .cast(old.dtype());
                    let name = unique_name(g, format!("{base}.bias_correction"));
                    let c = g.add_constant(name, t).map_err(|e| e.to_string())?;
                    g.set_input(*u, 1, c).map_err(|e| e.to_string())?;
                    return Ok(());
                }
            }
        }
        let mut shape = vec![m.len()];
        shape.extend(std::iter::repeat_n(1, rank.saturating_sub(2)));
        let dtype = g
            .value(y)
            .ty
            .as_ref()
            .map(|t| t.dtype)
            .unwrap_or(pannc_ir::DType::F32);
        let t = Tensor::from_f64(&shape, m.to_vec())
            .ok_or("correction shape")?
            .cast(dtype);
        let cname = unique_name(g, format!("{base}.bias_correction"));
        let c = g.add_constant(cname, t).map_err(|e| e.to_string())?;
        let z = g
            .add_simple(format!("{base}.bias_correct"), Op::Sub, &[y, c])
            .map_err(|e| e.to_string())?;
        for (u, slot) in users {
            g.set_input(u, slot, z).map_err(|e| e.to_string())?;
        }
        if g.outputs().contains(&y) {
            crate::util::replace_keeping_name(g, y, z)?;
            // replace_keeping_name also redirected the Sub's own input: point it back.
            let sub = g.producer(z).ok_or("no producer")?;
            g.set_input(sub, 0, y).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Whether reader `u` can absorb a per-channel shift of its input 0 into its bias exactly.
fn fold_target(g: &Graph, u: NodeId, channels: usize) -> bool {
    let node = g.node(u);
    let Some(w) = node.inputs().get(1).and_then(|&v| g.constant(v)) else {
        return false;
    };
    let bias_ok = node
        .inputs()
        .get(2)
        .is_none_or(|&b| g.constant(b).is_some());
    match &node.op {
        Op::Gemm {
            trans_a: false,
            trans_b,
            beta,
            ..
        } => {
            // B' = B (or Bᵀ) is [k, n]; the shift is folded along k, which must be the channels.
            let k = w.shape().get(usize::from(*trans_b)).copied();
            bias_ok && *beta != 0.0 && w.shape().len() == 2 && k == Some(channels)
        }
        Op::Conv { window, group: 1 } => {
            bias_ok
                && window.pads.iter().all(|&p| p == 0)
                && matches!(window.auto_pad, AutoPad::NotSet | AutoPad::Valid)
                && w.shape().get(1) == Some(&channels)
        }
        _ => false,
    }
}

/// `bias ← bias − W·m` for a Gemm (`(α/β)·m·B'`) or an unpadded Conv.
fn fold_into(g: &mut Graph, u: NodeId, m: &[f64]) -> Result<(), String> {
    let node = g.node(u).clone();
    let w = g
        .constant(node.inputs()[1])
        .ok_or("weight is not constant")?
        .clone();
    let ws = w.shape().to_vec();
    let wv = w.to_f64_vec();
    let (outs, shift): (usize, Vec<f64>) = match &node.op {
        Op::Gemm {
            alpha,
            beta,
            trans_b,
            ..
        } => {
            let (k, n) = if *trans_b {
                (ws[1], ws[0])
            } else {
                (ws[0], ws[1])
            };
            let at = |i: usize, j: usize| {
                if *trans_b {
                    wv[j * k + i]
                } else {
                    wv[i * n + j]
                }
            };
            let r = *alpha as f64 / *beta as f64;
            (
                n,
                (0..n)
                    .map(|j| r * (0..k).map(|i| m[i] * at(i, j)).sum::<f64>())
                    .collect(),
            )
        }
        Op::Conv { .. } => {
            let o = ws[0];
            let per = wv.len() / o.max(1);
            let spatial = per / m.len().max(1);
            let shift = (0..o)
                .map(|oc| {
                    (0..per)
                        .map(|j| wv[oc * per + j] * m[j / spatial.max(1)])
                        .sum::<f64>()
                })
                .collect();
            (o, shift)
        }
        _ => return Err("not a foldable reader".into()),
    };
    let (bias, dtype) = match node.inputs().get(2).and_then(|&b| g.constant(b)) {
        Some(b) => (b.to_f64_vec(), b.dtype()),
        None => (vec![0.0; outs], w.dtype()),
    };
    if bias.len() != outs && bias.len() != 1 {
        return Err(format!("bias of {} entries for {outs} outputs", bias.len()));
    }
    let new: Vec<f64> = (0..outs)
        .map(|j| bias[if bias.len() == 1 { 0 } else { j }] - shift[j])
        .collect();
    let t = Tensor::from_f64(&[outs], new)
        .ok_or("bias shape")?
        .cast(dtype);
    let name = unique_name(g, format!("{}.bias_corrected", node.name));
    let c = g.add_constant(name, t).map_err(|e| e.to_string())?;
    if node.inputs().len() > 2 {
        g.set_input(u, 2, c).map_err(|e| e.to_string())?;
    } else {
        let mut ins = node.inputs().to_vec();
        ins.push(c);
        g.set_inputs(u, &ins).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pannc_interp::RunOptions;
    use pannc_ir::{DType, Dim, PolyStage, TensorType};

    /// x → Poly → Gemm (or Conv 1×1), with the correction either folded into the reader's
    /// bias or kept as a subtraction: both must compute the same function.
    fn graph(reader: &str) -> (Graph, NodeId) {
        let mut g = Graph::new("t", 17);
        let (c, shape) = if reader == "gemm" {
            (3, vec![Dim::Sym("N".into()), Dim::Known(3)])
        } else {
            (
                3,
                vec![
                    Dim::Sym("N".into()),
                    Dim::Known(3),
                    Dim::Known(2),
                    Dim::Known(2),
                ],
            )
        };
        let x = g
            .add_input("x", Some(TensorType::new(DType::F32, shape)))
            .unwrap();
        let poly = Poly {
            function: "relu".into(),
            in_scale: 0.5,
            out_scale: 2.0,
            stages: vec![PolyStage {
                lo: -1.0,
                hi: 1.0,
                coeffs: vec![0.0, 1.2, 0.0, -0.3],
            }],
            combine: PolyCombine::Relu,
        };
        let (pid, ys) = g
            .add_node("p", Op::Poly(Box::new(poly)), &[x], &[String::new()])
            .unwrap();
        let w: Vec<f64> = (0..c * 4).map(|i| 0.1 * i as f64 - 0.5).collect();
        let out = if reader == "gemm" {
            let w = g
                .add_constant("w", Tensor::from_f64(&[4, c], w).unwrap().cast(DType::F32))
                .unwrap();
            let b = g
                .add_constant(
                    "b",
                    Tensor::from_f64(&[4], vec![0.1, 0.2, 0.3, 0.4])
                        .unwrap()
                        .cast(DType::F32),
                )
                .unwrap();
            let op = Op::Gemm {
                alpha: 1.5,
                beta: 2.0,
                trans_a: false,
                trans_b: true,
            };
            g.add_simple("gemm", op, &[ys[0], w, b]).unwrap()
        } else {
            let w = g
                .add_constant(
                    "w",
                    Tensor::from_f64(&[4, c, 1, 1], w).unwrap().cast(DType::F32),
                )
                .unwrap();
            let op = Op::Conv {
                window: Default::default(),
                group: 1,
            };
            g.add_simple("conv", op, &[ys[0], w]).unwrap()
        };
        g.set_outputs(vec![out]);
        pannc_interp::infer_types(&mut g).unwrap();
        (g, pid)
    }

    #[test]
    fn folding_into_the_reader_equals_subtracting() {
        for reader in ["gemm", "conv"] {
            let (g, p) = graph(reader);
            let m = [0.05, -0.2, 0.125];
            let rank = if reader == "gemm" { 2 } else { 4 };
            let mut folded = g.clone();
            BiasCorrect.correct(&mut folded, p, &m, rank).unwrap();
            assert!(
                folded
                    .node_ids()
                    .iter()
                    .all(|&n| !matches!(folded.node(n).op, Op::Sub)),
                "{reader}: expected a fold"
            );
            // The same correction as an explicit subtraction.
            let mut sub = g.clone();
            let y = sub.node(p).outputs()[0];
            let users = sub.users(y);
            let shape = if rank == 2 { vec![3] } else { vec![3, 1, 1] };
            let c = sub
                .add_constant(
                    "m",
                    Tensor::from_f64(&shape, m.to_vec())
                        .unwrap()
                        .cast(DType::F32),
                )
                .unwrap();
            let z = sub.add_simple("s", Op::Sub, &[y, c]).unwrap();
            for (u, slot) in users {
                sub.set_input(u, slot, z).unwrap();
            }
            pannc_interp::infer_types(&mut folded).unwrap();
            pannc_interp::infer_types(&mut sub).unwrap();
            let n = 5;
            let shape: Vec<usize> = if rank == 2 {
                vec![n, 3]
            } else {
                vec![n, 3, 2, 2]
            };
            let len: usize = shape.iter().product();
            let x = Tensor::from_f64(
                &shape,
                (0..len).map(|i| (i as f64 * 0.37).sin() * 1.5).collect(),
            )
            .unwrap()
            .cast(DType::F32);
            let o = RunOptions::default();
            let a = pannc_interp::run(&folded, std::slice::from_ref(&x), &o).unwrap();
            let b = pannc_interp::run(&sub, std::slice::from_ref(&x), &o).unwrap();
            for (u, v) in a[0].to_f64_vec().iter().zip(b[0].to_f64_vec()) {
                assert!((u - v).abs() < 1e-5, "{reader}: {u} vs {v}");
            }
        }
    }
}
