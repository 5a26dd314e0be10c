//! MaxPool and AveragePool (N-D, pads, strides, dilations, ceil_mode, auto_pad).

use super::window::{geometry, Geometry};
use super::{arr, checked_numel, data_of, dispatch_float, strides_of, Elem, Float};
use crate::error::{bail, InterpError};
#[allow(unused_imports)]
use num_traits::{Float as _, One as _, Zero as _};
use pannc_ir::{Op, Tensor, Window};

/// Validated pooling geometry and output shape.
pub(crate) fn pool_shapes(
    op: &Op,
    w: &Window,
    x: &[usize],
) -> Result<(Geometry, Vec<usize>), InterpError> {
    if x.len() < 3 {
        bail!(op, "input must have rank ≥ 3 (N, C, spatial...), got {x:?}");
    }
    if w.kernel_shape.is_empty() {
        bail!(op, "kernel_shape is required");
    }
    let g = geometry(op, w, &x[2..], &w.kernel_shape, true)?;
    let mut out = x[..2].to_vec();
    out.extend(&g.out);
    checked_numel(op, &out)?;
    Ok((g, out))
}

/// Per spatial axis and output index: the in-image input offsets of the window
/// (scaled by the axis stride) and the number of window positions inside the padded input.
struct Taps {
    offs: Vec<Vec<Vec<usize>>>,
    padded: Vec<Vec<usize>>,
}

fn taps(g: &Geometry, sp: &[usize]) -> Taps {
    let st = strides_of(sp);
    let mut offs = Vec::new();
    let mut padded = Vec::new();
    for i in 0..sp.len() {
        let (pb, d) = (g.pad_begin[i] as i64, sp[i] as i64);
        let hi = d + g.pad_end[i] as i64;
        let mut o_offs = Vec::with_capacity(g.out[i]);
        let mut o_pad = Vec::with_capacity(g.out[i]);
        for o in 0..g.out[i] {
            let start = (o * g.strides[i]) as i64 - pb;
            let mut v = Vec::new();
            let mut np = 0;
            for k in 0..g.kernel[i] {
                let p = start + (k * g.dilations[i]) as i64;
                if p >= -pb && p < hi {
                    np += 1;
                }
                if p >= 0 && p < d {
                    v.push(p as usize * st[i]);
                }
            }
            o_offs.push(v);
            o_pad.push(np);
        }
        offs.push(o_offs);
        padded.push(o_pad);
    }
    Taps { offs, padded }
}

/// All windows, flattened: `offsets[ranges[o].0..ranges[o].1]` are output `o`'s in-image
/// input offsets and `ranges[o].2` its count of positions inside the padded input.
struct Windows {
    offsets: Vec<usize>,
    ranges: Vec<(usize, usize, usize)>,
}

fn windows(op: &Op, g: &Geometry, sp: &[usize]) -> Result<Windows, InterpError> {
    // Bound the work before building the taps: kernels may be absurdly large.
    let total: usize = g.out.iter().product();
    let mut dims = vec![total];
    dims.extend(&g.kernel);
    checked_numel(op, &dims)?;
    let t = taps(g, sp);
    let mut w = Windows {
        offsets: Vec::new(),
        ranges: Vec::with_capacity(total),
    };
    for_each_window(g, &t, |_, offs, np| {
        let s = w.offsets.len();
        w.offsets.extend_from_slice(offs);
        w.ranges.push((s, w.offsets.len(), np));
    });
    Ok(w)
}

/// Calls `f(output_index, window_offsets, padded_count)` for each output position.
fn for_each_window(g: &Geometry, t: &Taps, mut f: impl FnMut(usize, &[usize], usize)) {
    let nd = g.out.len();
    let total: usize = g.out.iter().product();
    let mut idx = vec![0usize; nd];
    let (mut cur, mut next) = (Vec::new(), Vec::new());
    for o in 0..total {
        cur.clear();
        cur.push(0usize);
        let mut np = 1;
        for (i, &ix) in idx.iter().enumerate() {
            next.clear();
            for &a in &cur {
                for &b in &t.offs[i][ix] {
                    next.push(a + b);
                }
            }
            std::mem::swap(&mut cur, &mut next);
            np *= t.padded[i][ix];
        }
        f(o, &cur, np);
        for i in (0..nd).rev() {
            idx[i] += 1;
            if idx[i] < g.out[i] {
                break;
            }
            idx[i] = 0;
        }
    }
}

/// MaxPool; with `indices`, also the argmax as flat indices into the input (row-major).
pub(crate) fn max_pool(
    op: &Op,
    w: &Window,
    x: &Tensor,
    indices: bool,
) -> Result<Vec<Tensor>, InterpError> {
    let (g, out) = pool_shapes(op, w, x.shape())?;
    let sp = &x.shape()[2..];
    let plane: usize = sp.iter().product();
    let planes = out[0] * out[1];
    let p: usize = g.out.iter().product();
    let win = windows(op, &g, sp)?;
    dispatch_float!(op, x.dtype(), T => {
        let d = data_of::<T>(op, x)?;
        let mut y = vec![T::zero(); planes * p];
        let mut ix = if indices { vec![0i64; planes * p] } else { Vec::new() };
        for pl in 0..planes {
            let xp = &d[pl * plane..(pl + 1) * plane];
            for (o, &(s, e, _)) in win.ranges.iter().enumerate() {
                let offs = &win.offsets[s..e];
                let mut best = <T as num_traits::Float>::min_value();
                let mut arg = 0usize;
                for &q in offs {
                    if xp[q] > best {
                        best = xp[q];
                        arg = q;
                    }
                }
                y[pl * p + o] = best;
                if indices {
                    ix[pl * p + o] = (pl * plane + arg) as i64;
                }
            }
        }
        let mut res = vec![T::wrap(arr(&out, y))];
        if indices {
            res.push(Tensor::I64(arr(&out, ix)));
        }
        Ok(res)
    })
}

/// AveragePool; the divisor counts window positions inside the input, or inside the
/// padded input with `count_include_pad`.
pub(crate) fn average_pool(
    op: &Op,
    w: &Window,
    include_pad: bool,
    x: &Tensor,
) -> Result<Tensor, InterpError> {
    let (g, out) = pool_shapes(op, w, x.shape())?;
    let sp = &x.shape()[2..];
    let plane: usize = sp.iter().product();
    let planes = out[0] * out[1];
    let p: usize = g.out.iter().product();
    let win = windows(op, &g, sp)?;
    dispatch_float!(op, x.dtype(), T => {
        let d = data_of::<T>(op, x)?;
        let mut y = vec![T::zero(); planes * p];
        for pl in 0..planes {
            let xp = &d[pl * plane..(pl + 1) * plane];
            for (o, &(s, e, np)) in win.ranges.iter().enumerate() {
                let offs = &win.offsets[s..e];
                let sum = offs.iter().fold(T::zero(), |a, &q| a + xp[q]);
                let cnt = if include_pad { np } else { offs.len() };
                y[pl * p + o] = sum / T::of(cnt as f64);
            }
        }
        Ok(T::wrap(arr(&out, y)))
    })
}
