//! N-D convolution (groups, strides, pads, dilations, auto_pad) via im2col + GEMM.

use super::norm::bn_coeffs;
use super::window::{geometry, Geometry};
use super::{
    arr, checked_numel, data_of, dispatch_float, gemm, same_dtype, strides_of, Arg, Elem, Float,
    Mat,
};
use crate::error::{bail, InterpError};
#[allow(unused_imports)]
use num_traits::{Float as _, One as _, Zero as _};
use pannc_ir::{Op, Tensor, Window};

/// Validated shapes of a Conv: `(geometry, output shape)`.
pub(crate) fn conv_shapes(
    op: &Op,
    w: &Window,
    group: usize,
    x: &[usize],
    wt: &[usize],
    bias: Option<&[usize]>,
) -> Result<(Geometry, Vec<usize>), InterpError> {
    if x.len() < 3 {
        bail!(
            op,
            "input must have rank ≥ 3 (N, C, spatial...), got shape {x:?}"
        );
    }
    if wt.len() != x.len() {
        bail!(
            op,
            "weight rank {} ≠ input rank {} (weight {wt:?}, input {x:?})",
            wt.len(),
            x.len()
        );
    }
    if group == 0 {
        bail!(op, "group must be ≥ 1");
    }
    let (c, m, cg) = (x[1], wt[0], wt[1]);
    if cg.checked_mul(group) != Some(c) {
        bail!(op, "input channels {c} ≠ weight's {cg} × group {group}");
    }
    if m % group != 0 {
        bail!(op, "output channels {m} not divisible by group {group}");
    }
    let kernel = &wt[2..];
    if !w.kernel_shape.is_empty() && w.kernel_shape != kernel {
        bail!(
            op,
            "kernel_shape {:?} ≠ weight's spatial shape {kernel:?}",
            w.kernel_shape
        );
    }
    if let Some(b) = bias {
        if b != [m] {
            bail!(op, "bias shape {b:?} ≠ [{m}]");
        }
    }
    let g = geometry(op, w, &x[2..], kernel, false)?;
    let mut out = vec![x[0], m];
    out.extend(&g.out);
    checked_numel(op, &out)?;
    Ok((g, out))
}

/// What the interpreter fuses after a convolution, applied to each output element in the
/// same pass: a batch normalization (its op, ε and constant `[scale, B, mean, var]`, already
/// checked to be `[M]`-shaped and of the convolution's dtype), then ReLU. Each element goes
/// through the same operations in the same order as the separate ops would apply (the
/// normalization's coefficients come from the same [`bn_coeffs`]), so results are bitwise
/// those of the unfused graph.
#[derive(Default)]
pub(crate) struct Epilogue<'a> {
    pub bn: Option<(f32, [&'a Tensor; 4])>,
    pub relu: bool,
}

/// Per-channel affine map and ReLU flag of an [`Epilogue`], in the element type.
pub(crate) struct Post<T> {
    pub affine: Option<(Vec<T>, Vec<T>)>,
    pub relu: bool,
}

impl<T: Float> Post<T> {
    #[inline]
    pub(crate) fn apply(&self, ch: usize, v: T) -> T {
        let v = match &self.affine {
            Some((s, b)) => v * s[ch] + b[ch],
            None => v,
        };
        if self.relu && v < T::zero() {
            T::zero()
        } else {
            v
        }
    }
    fn is_identity(&self) -> bool {
        self.affine.is_none() && !self.relu
    }
}

pub(crate) fn conv(
    op: &Op,
    w: &Window,
    group: usize,
    args: &[Arg<'_>],
    epi: &Epilogue<'_>,
) -> Result<Tensor, InterpError> {
    let ts: Vec<&Tensor> = args.iter().map(|a| a.t()).collect();
    let dt = same_dtype(op, &ts)?;
    let bias_shape = ts.get(2).map(|b| b.shape());
    let (g, out) = conv_shapes(op, w, group, ts[0].shape(), ts[1].shape(), bias_shape)?;
    let wshape = ts[1].shape();
    let kc: usize = wshape[1..].iter().product();
    let p: usize = g.out.iter().product();
    checked_numel(op, &[kc, p])?;
    dispatch_float!(op, dt, T => {
        let x = data_of::<T>(op, ts[0])?;
        let wd = data_of::<T>(op, ts[1])?;
        let b = match ts.get(2) { Some(b) => Some(data_of::<T>(op, b)?), None => None };
        let affine = match epi.bn {
            Some((eps, ps)) => {
                let p: Vec<_> = ps.iter().map(|t| data_of::<T>(op, t)).collect::<Result<_, _>>()?;
                if p.iter().any(|v| v.len() != out[1]) {
                    bail!(op, "fused batch normalization parameters do not have {} channels", out[1]);
                }
                Some(bn_coeffs::<T>(eps, [&p[0], &p[1], &p[2], &p[3]], out[1]))
            }
            None => None,
        };
        let post = Post { affine, relu: epi.relu };
        let y = conv_impl::<T>(&x, ts[0].shape(), &wd, wshape, b.as_deref(), &g, group, &post);
        Ok(T::wrap(arr(&out, y)))
    })
}

#[allow(clippy::too_many_arguments)]
fn conv_impl<T: Float>(
    x: &[T],
    xs: &[usize],
    w: &[T],
    ws: &[usize],
    bias: Option<&[T]>,
    g: &Geometry,
    group: usize,
    post: &Post<T>,
) -> Vec<T> {
    let (mut y, applied) = conv_raw(x, xs, w, ws, bias, g, group, post);
    if !applied && !post.is_identity() && !y.is_empty() {
        let (m, p) = (ws[0], y.len() / (xs[0] * ws[0]).max(1));
        for (i, row) in y.chunks_mut(p.max(1)).enumerate() {
            row.iter_mut().for_each(|v| *v = post.apply(i % m, *v));
        }
    }
    y
}

/// The convolution, and whether `post` was applied already (the direct kernel does it).
#[allow(clippy::too_many_arguments)]
fn conv_raw<T: Float>(
    x: &[T],
    xs: &[usize],
    w: &[T],
    ws: &[usize],
    bias: Option<&[T]>,
    g: &Geometry,
    group: usize,
    post: &Post<T>,
) -> (Vec<T>, bool) {
    let (n, c, sp) = (xs[0], xs[1], &xs[2..]);
    let (m, cg) = (ws[0], ws[1]);
    let mg = m / group;
    let kc: usize = ws[1..].iter().product();
    let p: usize = g.out.iter().product();
    let plane: usize = sp.iter().product();
    if n * m * p == 0 || kc == 0 {
        let mut y = vec![T::zero(); n * m * p];
        if let (Some(b), false) = (bias, y.is_empty()) {
            y.chunks_mut(p)
                .enumerate()
                .for_each(|(i, r)| r.iter_mut().for_each(|v| *v = b[i % m]));
        }
        return (y, false);
    }
    let pointwise = g.kernel.iter().all(|&k| k == 1)
        && g.strides.iter().all(|&s| s == 1)
        && g.pad_begin.iter().chain(&g.pad_end).all(|&q| q == 0);
    // The wide-grid path allocates the padded input; absurd pads go the generic way.
    let wide_ok = {
        let hp = sp[0]
            .saturating_add(g.pad_begin[0])
            .saturating_add(g.pad_end[0]);
        let wp = sp.get(1).map_or(0, |&w| {
            w.saturating_add(g.pad_begin[1])
                .saturating_add(g.pad_end[1])
        });
        let plane = hp.saturating_mul(wp);
        cg.saturating_mul(plane) <= super::MAX_ELEMENTS
            && kc.saturating_mul(plane) <= super::MAX_ELEMENTS
    };
    let kern = super::direct::kernel(mg).filter(|_| !pointwise && sp.len() == 2);
    if let Some(kern) = kern {
        let fits = super::direct::buffer_len(xs, ws, g).is_some_and(|l| l <= super::MAX_ELEMENTS);
        let b32 = bias.map(T::f32s);
        let affine = post
            .affine
            .as_ref()
            .map(|(s, t)| T::f32s(s).zip(T::f32s(t)));
        if let (true, Some(x), Some(w), Some(b), Some(affine)) = (
            fits,
            T::f32s(x),
            T::f32s(w),
            b32.map_or(Some(None), |b| b.map(Some)),
            affine.map_or(Some(None), |a| a.map(Some)),
        ) {
            let y32 = super::direct::conv2d(x, xs, w, ws, b, g, group, affine, post.relu, kern);
            return (T::from_f32s(y32).expect("T is f32"), true);
        }
    }
    let mut y = vec![T::zero(); n * m * p];
    if !pointwise && sp.len() == 2 && g.strides == [1, 1] && wide_ok {
        conv2d_s1(x, xs, w, ws, bias, g, group, &mut y);
        return (y, false);
    }
    let mut col = if pointwise {
        Vec::new()
    } else {
        vec![T::zero(); kc * p]
    };
    for img in 0..n {
        for gi in 0..group {
            let x0 = (img * c + gi * cg) * plane;
            let xg = &x[x0..x0 + cg * plane];
            let colr: &[T] = if pointwise {
                xg
            } else {
                im2col(xg, cg, sp, g, &mut col);
                &col
            };
            let y0 = (img * m + gi * mg) * p;
            let yg = &mut y[y0..y0 + mg * p];
            let wg = &w[gi * mg * kc..(gi + 1) * mg * kc];
            matmul_w(mg, kc, p, wg, colr, yg);
            if let Some(b) = bias {
                for mo in 0..mg {
                    let bv = b[gi * mg + mo];
                    yg[mo * p..(mo + 1) * p].iter_mut().for_each(|v| *v += bv);
                }
            }
        }
    }
    (y, false)
}

/// `y[mg×p] = w[mg×kc] · col[kc×p]`.
fn matmul_w<T: Float>(mg: usize, kc: usize, p: usize, w: &[T], col: &[T], y: &mut [T]) {
    if mg <= 2 {
        // Tiny GEMMs (depthwise): row-by-row axpy beats packing.
        y.iter_mut().for_each(|v| *v = T::zero());
        for mo in 0..mg {
            let yr = &mut y[mo * p..(mo + 1) * p];
            for k in 0..kc {
                let wv = w[mo * kc + k];
                for (o, &v) in yr.iter_mut().zip(&col[k * p..(k + 1) * p]) {
                    *o += wv * v;
                }
            }
        }
    } else {
        gemm(
            mg,
            kc,
            p,
            T::one(),
            Mat {
                data: w,
                rs: kc,
                cs: 1,
            },
            Mat {
                data: col,
                rs: p,
                cs: 1,
            },
            T::zero(),
            y,
        );
    }
}

/// 2-D convolution with unit strides. The input is zero-padded once per image; on a
/// "wide" output grid of the padded width, every im2col row is then one contiguous slice
/// of the padded input (one long copy instead of one short copy per output row). The
/// columns past the true output width are computed and dropped.
#[allow(clippy::too_many_arguments)]
fn conv2d_s1<T: Float>(
    x: &[T],
    xs: &[usize],
    w: &[T],
    ws: &[usize],
    bias: Option<&[T]>,
    g: &Geometry,
    group: usize,
    y: &mut [T],
) {
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (m, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
    let mg = m / group;
    let kc = cg * kh * kw;
    let (dh, dw) = (g.dilations[0], g.dilations[1]);
    let (pt, pl) = (g.pad_begin[0], g.pad_begin[1]);
    let hp = h + pt + g.pad_end[0];
    let wp = wd + pl + g.pad_end[1];
    let (oh, ow) = (g.out[0], g.out[1]);
    let p = oh * ow;
    let pw = oh * wp;
    let cplane = hp * wp;
    // Slack: the last rows' windows run past the padded plane in the dropped columns.
    let mut xpad = vec![T::zero(); cg * cplane + (kw - 1) * dw];
    let mut col = vec![T::zero(); kc * pw];
    let mut yw = vec![T::zero(); mg * pw];
    for img in 0..n {
        for gi in 0..group {
            let x0 = (img * c + gi * cg) * h * wd;
            for ci in 0..cg {
                for iy in 0..h {
                    let s = x0 + (ci * h + iy) * wd;
                    let d = ci * cplane + (iy + pt) * wp + pl;
                    xpad[d..d + wd].copy_from_slice(&x[s..s + wd]);
                }
            }
            let mut row = 0;
            for ci in 0..cg {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let s = ci * cplane + ky * dh * wp + kx * dw;
                        col[row * pw..(row + 1) * pw].copy_from_slice(&xpad[s..s + pw]);
                        row += 1;
                    }
                }
            }
            let wg = &w[gi * mg * kc..(gi + 1) * mg * kc];
            matmul_w(mg, kc, pw, wg, &col, &mut yw);
            for mo in 0..mg {
                let bv = bias.map_or(T::zero(), |b| b[gi * mg + mo]);
                let yo = (img * m + gi * mg + mo) * p;
                for oy in 0..oh {
                    let src = &yw[mo * pw + oy * wp..mo * pw + oy * wp + ow];
                    let dst = &mut y[yo + oy * ow..yo + (oy + 1) * ow];
                    if bias.is_some() {
                        dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v + bv);
                    } else {
                        dst.copy_from_slice(src);
                    }
                }
            }
        }
    }
}

/// Unfolds `cg` channels of one image into `col[(c, k...) , out positions]`.
fn im2col<T: Float>(x: &[T], cg: usize, sp: &[usize], g: &Geometry, col: &mut [T]) {
    let nd = sp.len();
    let last = nd - 1;
    let plane: usize = sp.iter().product();
    let in_st = strides_of(sp);
    let p: usize = g.out.iter().product();
    let kprod: usize = g.kernel.iter().product();
    let (ol, sl, dl, pl, xl) = (
        g.out[last],
        g.strides[last],
        g.dilations[last],
        g.pad_begin[last],
        sp[last],
    );
    let mut row = 0;
    let mut kk = vec![0usize; nd];
    let mut oo = vec![0usize; last];
    for c in 0..cg {
        let xc = &x[c * plane..(c + 1) * plane];
        kk.iter_mut().for_each(|v| *v = 0);
        for _ in 0..kprod {
            let dst = &mut col[row * p..(row + 1) * p];
            let off = kk[last] * dl;
            // Output positions along the last axis whose input index is inside the image.
            let lo = if off >= pl {
                0
            } else {
                (pl - off).div_ceil(sl)
            }
            .min(ol);
            let hi = if xl + pl > off {
                (xl + pl - off).div_ceil(sl).min(ol)
            } else {
                0
            }
            .max(lo);
            oo.iter_mut().for_each(|v| *v = 0);
            let mut seg = 0;
            loop {
                let mut base = Some(0usize);
                for i in 0..last {
                    let ii = oo[i] * g.strides[i] + kk[i] * g.dilations[i];
                    if ii < g.pad_begin[i] || ii - g.pad_begin[i] >= sp[i] {
                        base = None;
                        break;
                    }
                    base = base.map(|b| b + (ii - g.pad_begin[i]) * in_st[i]);
                }
                let d = &mut dst[seg..seg + ol];
                match base {
                    None => d.fill(T::zero()),
                    Some(b) => {
                        d[..lo].fill(T::zero());
                        d[hi..].fill(T::zero());
                        if hi > lo {
                            let start = b + lo * sl + off - pl;
                            if sl == 1 {
                                d[lo..hi].copy_from_slice(&xc[start..start + (hi - lo)]);
                            } else {
                                for (j, v) in d[lo..hi].iter_mut().enumerate() {
                                    *v = xc[start + j * sl];
                                }
                            }
                        }
                    }
                }
                seg += ol;
                // Next outer output position.
                let mut k = last;
                loop {
                    if k == 0 {
                        break;
                    }
                    k -= 1;
                    oo[k] += 1;
                    if oo[k] < g.out[k] {
                        k = usize::MAX;
                        break;
                    }
                    oo[k] = 0;
                }
                if k != usize::MAX {
                    break;
                }
            }
            row += 1;
            // Next kernel offset.
            for i in (0..nd).rev() {
                kk[i] += 1;
                if kk[i] < g.kernel[i] {
                    break;
                }
                kk[i] = 0;
            }
        }
    }
}
