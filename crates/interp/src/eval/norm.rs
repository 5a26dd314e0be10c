//! BatchNormalization, LayerNormalization, LRN, Softmax, GlobalAveragePool, ReduceMean.

use super::elementwise::{bcast_strides, for_each_run};
use super::{arr, data_of, dispatch_float, norm_axis, strides_of, Arg, Elem, Float, TArg, AA};
use crate::error::{bail, InterpError};
#[allow(unused_imports)]
use num_traits::{Float as _, One as _, Zero as _};
use pannc_ir::{Op, Tensor};

/// Validates BatchNormalization operand shapes; returns C.
pub(crate) fn bn_check(op: &Op, x: &[usize], params: &[&[usize]]) -> Result<usize, InterpError> {
    if x.len() < 2 {
        bail!(op, "input must have rank ≥ 2 (N, C, ...), got {x:?}");
    }
    let c = x[1];
    for (name, p) in ["scale", "B", "mean", "var"].iter().zip(params) {
        if *p != [c] {
            bail!(
                op,
                "{name} has shape {p:?}, expected [{c}] (the input's channels)"
            );
        }
    }
    Ok(c)
}

/// The per-channel `(s, B − mean·s)` of a batch normalization with parameters
/// `[scale, B, mean, var]` (shared by the fused Conv epilogue, so both round alike).
pub(crate) fn bn_coeffs<T: Float>(eps: f32, p: [&[T]; 4], c: usize) -> (Vec<T>, Vec<T>) {
    let e = T::of32(eps);
    let s: Vec<T> = (0..c)
        .map(|i| p[0][i] * (T::one() / (p[3][i] + e).sqrt()))
        .collect();
    let b: Vec<T> = (0..c).map(|i| p[1][i] - p[2][i] * s[i]).collect();
    (s, b)
}

/// Inference-mode batch normalization, computed as onnxruntime does:
/// `y = x·s + (B − mean·s)` with `s = scale / sqrt(var + ε)`.
pub(crate) fn batchnorm(
    op: &Op,
    eps: f32,
    x: Arg<'_>,
    rest: &[Tensor],
) -> Result<Tensor, InterpError> {
    let shapes: Vec<&[usize]> = rest.iter().map(|t| t.shape()).collect();
    let c = bn_check(op, x.t().shape(), &shapes)?;
    for t in rest {
        if t.dtype() != x.t().dtype() {
            bail!(op, "mixed input dtypes {} and {}", x.t().dtype(), t.dtype());
        }
    }
    let inner: usize = x.t().shape()[2..].iter().product();
    let shape = x.t().shape().to_vec();
    let dt = x.t().dtype();
    dispatch_float!(op, dt, T => {
        let p: Vec<_> = rest.iter().map(|t| data_of::<T>(op, t)).collect::<Result<_, _>>()?;
        let (s, b) = bn_coeffs::<T>(eps, [&p[0], &p[1], &p[2], &p[3]], c);
        let mut v: Vec<T> = match x.split() {
            TArg::F32(a) => cast_vec(a),
            TArg::F64(a) => cast_vec(a),
            TArg::I64(_) | TArg::Bool(_) => bail!(op, "expects float tensors, got {dt}"),
        };
        if inner > 0 {
            for (j, blk) in v.chunks_mut(inner).enumerate() {
                let (sc, bi) = (s[j % c], b[j % c]);
                blk.iter_mut().for_each(|y| *y = *y * sc + bi);
            }
        }
        Ok(T::wrap(arr(&shape, v)))
    })
}

/// Takes an input's data as `Vec<T>` when it already has element type `T` (the dtype was
/// checked by the caller), reusing an owned buffer.
fn cast_vec<S: Elem, T: Elem>(a: AA<'_, S>) -> Vec<T> {
    let v = a.into_vec();
    // SAFETY-free type equality: both are the same type after the dtype check.
    let any: Box<dyn std::any::Any> = Box::new(v);
    *any.downcast::<Vec<T>>().expect("dtype checked by caller")
}

/// Windows of at most this many channels are summed directly; longer ones by block prefix
/// and suffix sums (van Herk / Gil-Werman), so that the work stays linear in the number of
/// channels whatever `size` is, without the cancellation of a running sum.
const LRN_DIRECT_MAX: usize = 64;

/// Local response normalization across channels (axis 1), as ONNX defines it:
/// `y = x / (bias + alpha/size · Σ x²)^beta`, the sum over channels
/// `c − ⌊(size−1)/2⌋ ..= c + ⌈(size−1)/2⌉` clipped to `[0, C)`.
pub(crate) fn lrn(
    op: &Op,
    alpha: f32,
    beta: f32,
    bias: f32,
    size: usize,
    x: Arg<'_>,
) -> Result<Tensor, InterpError> {
    let shape = x.t().shape().to_vec();
    if shape.len() < 2 {
        bail!(op, "input must have rank ≥ 2 (N, C, ...), got {shape:?}");
    }
    if size == 0 {
        bail!(op, "size must be at least 1");
    }
    if !(alpha.is_finite() && beta.is_finite() && bias.is_finite()) {
        bail!(
            op,
            "alpha {alpha}, beta {beta} and bias {bias} must be finite"
        );
    }
    let c = shape[1];
    let inner: usize = shape[2..].iter().product();
    let dt = x.t().dtype();
    dispatch_float!(op, dt, T => {
        let mut v: Vec<T> = match x.split() {
            TArg::F32(a) => cast_vec(a),
            TArg::F64(a) => cast_vec(a),
            TArg::I64(_) | TArg::Bool(_) => bail!(op, "expects a float tensor, got {dt}"),
        };
        if c > 0 && inner > 0 {
            lrn_impl(&mut v, c, inner, alpha, beta, bias, size);
        }
        Ok(T::wrap(arr(&shape, v)))
    })
}

fn lrn_impl<T: Float>(
    v: &mut [T],
    c: usize,
    inner: usize,
    alpha: f32,
    beta: f32,
    bias: f32,
    size: usize,
) {
    // Channels beyond C − 1 on either side change nothing: clip the reach to it.
    let before = ((size - 1) / 2).min(c - 1);
    let after = (size - 1 - (size - 1) / 2).min(c - 1);
    let scale = T::of32(alpha) / T::of(size as f64);
    let (bias, beta) = (T::of32(bias), T::of32(beta));
    let w = before + after + 1;
    let mut sq = vec![T::zero(); c * inner];
    let mut acc = vec![T::zero(); inner];
    let mut blocks = (w > LRN_DIRECT_MAX).then(|| BlockSums::new(c + before + after, w, inner));
    for sample in v.chunks_mut(c * inner) {
        sq.iter_mut()
            .zip(sample.iter())
            .for_each(|(q, &x)| *q = x * x);
        if let Some(b) = blocks.as_mut() {
            b.fill(&sq, before, c);
        }
        for ch in 0..c {
            let lo = ch.saturating_sub(before);
            let hi = (ch + after).min(c - 1);
            match blocks.as_ref() {
                Some(b) => b.window(ch, &mut acc),
                None => {
                    acc.copy_from_slice(&sq[lo * inner..(lo + 1) * inner]);
                    for k in lo + 1..=hi {
                        let q = &sq[k * inner..(k + 1) * inner];
                        acc.iter_mut().zip(q).for_each(|(a, &q)| *a += q);
                    }
                }
            }
            let row = &mut sample[ch * inner..(ch + 1) * inner];
            row.iter_mut()
                .zip(&acc)
                .for_each(|(y, &s)| *y /= (bias + scale * s).powf(beta));
        }
    }
}

/// Sums of every length-`w` window of a zero-padded sequence of planes: within each block of
/// `w` positions, prefix sums from the block's start and suffix sums to its end; a window is
/// one suffix plus one prefix (or one whole block).
struct BlockSums<T> {
    len: usize,
    w: usize,
    inner: usize,
    pre: Vec<T>,
    suf: Vec<T>,
}

impl<T: Float> BlockSums<T> {
    fn new(len: usize, w: usize, inner: usize) -> Self {
        BlockSums {
            len,
            w,
            inner,
            pre: vec![T::zero(); len * inner],
            suf: vec![T::zero(); len * inner],
        }
    }

    /// Loads `c` planes of `sq`, preceded by `pad` zero planes (and followed by zeros).
    fn fill(&mut self, sq: &[T], pad: usize, c: usize) {
        let n = self.inner;
        let val =
            |p: usize| (p >= pad && p < pad + c).then(|| &sq[(p - pad) * n..(p - pad + 1) * n]);
        for p in 0..self.len {
            let (done, rest) = self.pre.split_at_mut(p * n);
            let cur = &mut rest[..n];
            if p.is_multiple_of(self.w) {
                cur.iter_mut().for_each(|x| *x = T::zero());
            } else {
                cur.copy_from_slice(&done[(p - 1) * n..]);
            }
            if let Some(q) = val(p) {
                cur.iter_mut().zip(q).for_each(|(x, &q)| *x += q);
            }
        }
        for p in (0..self.len).rev() {
            let (cur, later) = self.suf[p * n..].split_at_mut(n);
            if p % self.w == self.w - 1 || p + 1 == self.len {
                cur.iter_mut().for_each(|x| *x = T::zero());
            } else {
                cur.copy_from_slice(&later[..n]);
            }
            if let Some(q) = val(p) {
                cur.iter_mut().zip(q).for_each(|(x, &q)| *x += q);
            }
        }
    }

    /// The sum over padded positions `s ..= s + w − 1`.
    fn window(&self, s: usize, out: &mut [T]) {
        let n = self.inner;
        let e = s + self.w - 1;
        let pre = &self.pre[e * n..(e + 1) * n];
        if s.is_multiple_of(self.w) {
            out.copy_from_slice(pre);
        } else {
            let suf = &self.suf[s * n..(s + 1) * n];
            out.iter_mut()
                .zip(suf.iter().zip(pre))
                .for_each(|(o, (&a, &b))| *o = a + b);
        }
    }
}

/// Softmax along one axis (opset ≥ 13): `exp(x − max) / Σ exp(x − max)`; LogSoftmax:
/// `x − max − log Σ exp(x − max)`.
pub(crate) fn softmax(op: &Op, axis: i64, x: Arg<'_>) -> Result<Tensor, InterpError> {
    let shape = x.t().shape().to_vec();
    if shape.is_empty() {
        bail!(op, "input must have rank ≥ 1");
    }
    let ax = norm_axis(op, axis, shape.len())?;
    let n = shape[ax];
    let inner: usize = shape[ax + 1..].iter().product();
    let dt = x.t().dtype();
    dispatch_float!(op, dt, T => {
        let mut v: Vec<T> = match x.split() {
            TArg::F32(a) => cast_vec(a),
            TArg::F64(a) => cast_vec(a),
            TArg::I64(_) | TArg::Bool(_) => bail!(op, "expects a float tensor, got {dt}"),
        };
        if n > 0 && inner > 0 {
            softmax_impl(&mut v, n, inner, matches!(op, Op::LogSoftmax { .. }));
        }
        Ok(T::wrap(arr(&shape, v)))
    })
}

fn softmax_impl<T: Float>(v: &mut [T], n: usize, inner: usize, log: bool) {
    let mut mx = vec![T::zero(); inner];
    let mut sum = vec![T::zero(); inner];
    for blk in v.chunks_mut(n * inner) {
        mx.copy_from_slice(&blk[..inner]);
        for row in blk.chunks(inner).skip(1) {
            mx.iter_mut().zip(row).for_each(|(m, &x)| {
                if x > *m {
                    *m = x
                }
            });
        }
        sum.iter_mut().for_each(|s| *s = T::zero());
        if log {
            for row in blk.chunks(inner) {
                for ((&x, &m), s) in row.iter().zip(&mx).zip(sum.iter_mut()) {
                    *s += (x - m).exp();
                }
            }
            for row in blk.chunks_mut(inner) {
                for ((x, &m), &s) in row.iter_mut().zip(&mx).zip(&sum) {
                    *x = *x - m - s.ln();
                }
            }
            continue;
        }
        for row in blk.chunks_mut(inner) {
            for ((x, &m), s) in row.iter_mut().zip(&mx).zip(sum.iter_mut()) {
                *x = (*x - m).exp();
                *s += *x;
            }
        }
        for row in blk.chunks_mut(inner) {
            row.iter_mut().zip(&sum).for_each(|(x, &s)| *x /= s);
        }
    }
}

/// Mean over all spatial axes, keeping them as size 1.
pub(crate) fn global_average_pool(op: &Op, x: &Tensor) -> Result<Tensor, InterpError> {
    let shape = x.shape();
    if shape.len() < 2 {
        bail!(op, "input must have rank ≥ 2 (N, C, ...), got {shape:?}");
    }
    let plane: usize = shape[2..].iter().product();
    let mut out = shape[..2].to_vec();
    out.extend(std::iter::repeat_n(1, shape.len() - 2));
    dispatch_float!(op, x.dtype(), T => {
        let d = data_of::<T>(op, x)?;
        let cnt = T::of(plane as f64);
        let y: Vec<T> = if plane == 0 {
            vec![T::nan(); shape[0] * shape[1]]
        } else {
            d.chunks(plane).map(|c| c.iter().fold(T::zero(), |s, &v| s + v) / cnt).collect()
        };
        Ok(T::wrap(arr(&out, y)))
    })
}

/// Normalized, deduplicated reduction axes; `None` means "no reduction" (noop).
pub(crate) fn reduce_axes(
    op: &Op,
    axes: Option<&[i64]>,
    rank: usize,
    noop_with_empty_axes: bool,
) -> Result<Option<Vec<usize>>, InterpError> {
    match axes {
        None | Some([]) => {
            if noop_with_empty_axes {
                Ok(None)
            } else {
                Ok(Some((0..rank).collect()))
            }
        }
        Some(list) => {
            let mut v = Vec::with_capacity(list.len());
            for &a in list {
                let a = norm_axis(op, a, rank)?;
                if v.contains(&a) {
                    bail!(op, "axis {a} appears twice in axes {list:?}");
                }
                v.push(a);
            }
            v.sort_unstable();
            Ok(Some(v))
        }
    }
}

pub(crate) fn reduced_shape(shape: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, &d) in shape.iter().enumerate() {
        if axes.contains(&i) {
            if keepdims {
                out.push(1);
            }
        } else {
            out.push(d);
        }
    }
    out
}

/// ReduceMean; sums in row-major order of the input (deterministic), then divides.
pub(crate) fn reduce_mean(
    op: &Op,
    x: Arg<'_>,
    axes: Option<Vec<i64>>,
    keepdims: bool,
    noop: bool,
) -> Result<Tensor, InterpError> {
    let shape = x.t().shape().to_vec();
    let Some(axes) = reduce_axes(op, axes.as_deref(), shape.len(), noop)? else {
        return Ok(x.into_owned());
    };
    let out = reduced_shape(&shape, &axes, keepdims);
    let kept: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let cnt: usize = axes.iter().map(|&a| shape[a]).product();
    let xs = strides_of(&shape);
    let os = bcast_strides(&kept, &shape);
    let nout: usize = out.iter().product();
    let t = x.t();
    dispatch_float!(op, t.dtype(), T => {
        let d = data_of::<T>(op, t)?;
        let mut acc = vec![T::zero(); nout];
        for_each_run(&shape, &xs, &os, |xo, oo, n, ix, io| {
            for j in 0..n {
                let a = &mut acc[oo + j * io];
                *a += d[xo + j * ix];
            }
        });
        let c = T::of(cnt as f64);
        acc.iter_mut().for_each(|a| *a /= c);
        Ok(T::wrap(arr(&out, acc)))
    })
}

/// LayerNormalization over the axes `axis..rank`: each row is centred and divided by
/// `sqrt(var + ε)` (mean and variance in two passes, in the input's precision), then
/// `· scale + B`, both broadcast to the normalised shape. Returns `[Y, Mean, InvStdDev]`, the
/// statistics shaped like X with the normalised axes kept as size 1.
pub(crate) fn layer_norm(
    op: &Op,
    axis: i64,
    eps: f32,
    ts: &[&Tensor],
) -> Result<Vec<Tensor>, InterpError> {
    let x = ts[0];
    let shape = x.shape();
    if shape.is_empty() {
        bail!(op, "input must have rank ≥ 1");
    }
    let ax = norm_axis(op, axis, shape.len())?;
    let inner = &shape[ax..];
    let row: usize = inner.iter().product();
    let rows: usize = shape[..ax].iter().product();
    for (t, what) in ts[1..].iter().zip(["scale", "B"]) {
        if t.dtype() != x.dtype() {
            bail!(op, "{what} is {} but X is {}", t.dtype(), x.dtype());
        }
        let s = t.shape();
        let ok = s.len() <= inner.len()
            && s.iter()
                .rev()
                .zip(inner.iter().rev())
                .all(|(&a, &b)| a == b || a == 1);
        if !ok {
            bail!(
                op,
                "{what} of shape {s:?} does not broadcast to the normalised shape {inner:?}"
            );
        }
    }
    let mut stat_shape = shape[..ax].to_vec();
    stat_shape.extend(std::iter::repeat_n(1, shape.len() - ax));
    dispatch_float!(op, x.dtype(), T => {
        let d = data_of::<T>(op, x)?;
        let spread = |t: &Tensor| -> Result<Vec<T>, InterpError> {
            let v = data_of::<T>(op, t)?;
            let st = bcast_strides(t.shape(), inner);
            let mut out = Vec::with_capacity(row);
            let zeros = vec![0; inner.len()];
            for_each_run(inner, &st, &zeros, |o, _, n, s, _| out.extend((0..n).map(|i| v[o + i * s])));
            Ok(out)
        };
        let scale = spread(ts[1])?;
        let bias = match ts.get(2) {
            Some(b) => Some(spread(b)?),
            None => None,
        };
        let mut y = Vec::with_capacity(d.len());
        let (mut means, mut invs) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        let n = T::of(row as f64);
        for r in d.chunks(row.max(1)).take(rows) {
            let mean = r.iter().fold(T::zero(), |a, &v| a + v) / n;
            let var = r.iter().fold(T::zero(), |a, &v| a + (v - mean) * (v - mean)) / n;
            let inv = T::one() / (var + T::of32(eps)).sqrt();
            for (i, &v) in r.iter().enumerate() {
                let z = (v - mean) * inv * scale[i];
                y.push(match &bias {
                    Some(b) => z + b[i],
                    None => z,
                });
            }
            means.push(mean);
            invs.push(inv);
        }
        if row == 0 {
            means = vec![T::nan(); rows];
            invs = vec![T::nan(); rows];
        }
        Ok(vec![
            T::wrap(arr(shape, y)),
            T::wrap(arr(&stat_shape, means)),
            T::wrap(arr(&stat_shape, invs)),
        ])
    })
}
