//! Indexing and replication: Slice, Split, Expand, Tile, GatherND, Range.
//!
//! Slice, Split, Expand and Tile are all "take, along each axis, these input indices"
//! ([`take_axes`]), so they share one copy loop.

use super::elementwise::broadcast_shapes;
use super::{arr, checked_numel, data_of, dispatch, dispatch_num, norm_axis, strides_of, Elem};
use crate::error::{bail, op_err, InterpError};
use pannc_ir::{Op, Tensor};

/// Row-major copy of the elements `d[maps[0][i0], maps[1][i1], ...]` of a tensor of `shape`;
/// the output has shape `[maps[0].len(), maps[1].len(), ...]`.
pub(crate) fn take_axes<T: Copy>(d: &[T], shape: &[usize], maps: &[Vec<usize>]) -> Vec<T> {
    let out: Vec<usize> = maps.iter().map(Vec::len).collect();
    let n: usize = out.iter().product();
    let mut v = Vec::with_capacity(n);
    if n == 0 {
        return v;
    }
    if out.is_empty() {
        v.push(d[0]);
        return v;
    }
    let st = strides_of(shape);
    let r = out.len();
    let last = &maps[r - 1];
    let mut idx = vec![0usize; r - 1];
    loop {
        let base: usize = idx
            .iter()
            .enumerate()
            .map(|(k, &i)| maps[k][i] * st[k])
            .sum();
        v.extend(last.iter().map(|&j| d[base + j]));
        let mut k = r - 1;
        loop {
            if k == 0 {
                return v;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < out[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

fn take(op: &Op, x: &Tensor, maps: &[Vec<usize>]) -> Result<Tensor, InterpError> {
    let out: Vec<usize> = maps.iter().map(Vec::len).collect();
    checked_numel(op, &out)?;
    dispatch!(x.dtype(), T => {
        let d = data_of::<T>(op, x)?;
        Ok(T::wrap(arr(&out, take_axes(&d, x.shape(), maps))))
    })
}

/// One axis of a Slice: the first index and the count, for an axis of size `dim`, as ONNX
/// (opset ≥ 10) defines it: negative starts/ends count from the end, then both are clamped
/// (to `[0, dim]` for positive steps, `[-1, dim-1]` for negative ones).
pub(crate) fn slice_axis(dim: usize, start: i64, end: i64, step: i64) -> (i64, usize) {
    if dim == 0 || step == 0 {
        return (0, 0);
    }
    let d = dim as i128;
    let fix = |v: i64| -> i128 {
        let v = v as i128;
        if v < 0 {
            v + d
        } else {
            v
        }
    };
    let (s, e, st) = (fix(start), fix(end), step as i128);
    let (s, e) = if st > 0 {
        (s.clamp(0, d), e.clamp(0, d))
    } else {
        (s.clamp(0, (d - 1).max(0)), e.clamp(-1, d - 1))
    };
    let len = if st > 0 {
        if e > s {
            (e - s + st - 1) / st
        } else {
            0
        }
    } else if s > e {
        (s - e + (-st) - 1) / (-st)
    } else {
        0
    };
    (s as i64, len as usize)
}

/// `(start, end, step)` of one sliced axis.
pub(crate) type SliceParam = (i64, i64, i64);

/// Per axis of a rank-`rank` input: `(start, end, step)` of the Slice, or `None` where the
/// axis is not sliced. Validates lengths, axes and steps.
pub(crate) fn slice_params(
    op: &Op,
    rank: usize,
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> Result<Vec<Option<SliceParam>>, InterpError> {
    let n = starts.len();
    if ends.len() != n {
        bail!(op, "starts has {n} entries but ends has {}", ends.len());
    }
    let axes: Vec<i64> = match axes {
        Some(a) if a.len() != n => bail!(op, "starts has {n} entries but axes has {}", a.len()),
        Some(a) => a.to_vec(),
        None => (0..n as i64).collect(),
    };
    if let Some(s) = steps {
        if s.len() != n {
            bail!(op, "starts has {n} entries but steps has {}", s.len());
        }
    }
    let mut res = vec![None; rank];
    for i in 0..n {
        let ax = norm_axis(op, axes[i], rank)?;
        if res[ax].is_some() {
            bail!(op, "axis {ax} appears twice in axes {axes:?}");
        }
        let step = steps.map_or(1, |s| s[i]);
        if step == 0 {
            bail!(op, "steps must not be 0");
        }
        res[ax] = Some((starts[i], ends[i], step));
    }
    Ok(res)
}

/// The index maps of a Slice over `shape`.
fn slice_maps(params: &[Option<SliceParam>], shape: &[usize]) -> Vec<Vec<usize>> {
    shape
        .iter()
        .zip(params)
        .map(|(&d, p)| match p {
            None => (0..d).collect(),
            Some((s, e, st)) => {
                let (first, len) = slice_axis(d, *s, *e, *st);
                (0..len as i64).map(|k| (first + k * st) as usize).collect()
            }
        })
        .collect()
}

pub(crate) fn slice(op: &Op, ts: &[&Tensor]) -> Result<Tensor, InterpError> {
    let x = ts[0];
    let list = |i: usize, what: &str| -> Result<Option<Vec<i64>>, InterpError> {
        ts.get(i).map(|t| super::int_list(op, t, what)).transpose()
    };
    let (starts, ends) = (list(1, "starts")?, list(2, "ends")?);
    let (axes, steps) = (list(3, "axes")?, list(4, "steps")?);
    let params = slice_params(
        op,
        x.shape().len(),
        starts.as_deref().unwrap_or_default(),
        ends.as_deref().unwrap_or_default(),
        axes.as_deref(),
        steps.as_deref(),
    )?;
    take(op, x, &slice_maps(&params, x.shape()))
}

/// The sizes of Split's parts along an axis of size `dim`: `split` if given (it must sum to
/// `dim`), else `n` parts of `ceil(dim / n)`, the last one what remains.
pub(crate) fn split_sizes(
    op: &Op,
    dim: usize,
    split: Option<&[i64]>,
    n: usize,
) -> Result<Vec<usize>, InterpError> {
    if n == 0 {
        bail!(op, "needs at least one output");
    }
    match split {
        Some(s) => {
            if s.len() != n {
                bail!(op, "split has {} entries for {n} outputs", s.len());
            }
            let mut sizes = Vec::with_capacity(n);
            let mut total: u128 = 0;
            for &v in s {
                let v = usize::try_from(v)
                    .map_err(|_| op_err(op, format!("split {s:?} has a negative size")))?;
                total += v as u128;
                sizes.push(v);
            }
            if total != dim as u128 {
                bail!(
                    op,
                    "split {s:?} sums to {total}, but the axis has size {dim}"
                );
            }
            Ok(sizes)
        }
        None => {
            let chunk = dim.div_ceil(n);
            Ok((0..n)
                .map(|i| chunk.min(dim.saturating_sub(i * chunk)))
                .collect())
        }
    }
}

pub(crate) fn split(
    op: &Op,
    axis: i64,
    n: usize,
    ts: &[&Tensor],
) -> Result<Vec<Tensor>, InterpError> {
    let x = ts[0];
    let shape = x.shape();
    if shape.is_empty() {
        bail!(op, "cannot split a scalar");
    }
    let ax = norm_axis(op, axis, shape.len())?;
    let split = ts
        .get(1)
        .map(|t| super::int_list(op, t, "split"))
        .transpose()?;
    let sizes = split_sizes(op, shape[ax], split.as_deref(), n)?;
    let mut start = 0;
    let mut outs = Vec::with_capacity(n);
    for s in sizes {
        let maps: Vec<Vec<usize>> = shape
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                if i == ax {
                    (start..start + s).collect()
                } else {
                    (0..d).collect()
                }
            })
            .collect();
        outs.push(take(op, x, &maps)?);
        start += s;
    }
    Ok(outs)
}

/// The output shape of Expand: the numpy broadcast of the input's shape and `shape`.
pub(crate) fn expand_shape(
    op: &Op,
    input: &[usize],
    shape: &[i64],
) -> Result<Vec<usize>, InterpError> {
    let s: Vec<usize> = shape
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| op_err(op, format!("shape {shape:?} has a negative dimension")))
        })
        .collect::<Result<_, _>>()?;
    let out = broadcast_shapes(op, input, &s)?;
    checked_numel(op, &out)?;
    Ok(out)
}

pub(crate) fn expand(op: &Op, x: &Tensor, shape: &Tensor) -> Result<Tensor, InterpError> {
    let spec = super::int_list(op, shape, "shape")?;
    let out = expand_shape(op, x.shape(), &spec)?;
    let xs = x.shape();
    let off = out.len() - xs.len();
    let maps: Vec<Vec<usize>> = (0..xs.len())
        .map(|i| {
            let o = out[i + off];
            if xs[i] == 1 {
                vec![0; o]
            } else {
                (0..o).collect()
            }
        })
        .collect();
    let t = take(op, x, &maps)?;
    // Leading broadcast axes: repeat the whole block.
    let lead: usize = out[..off].iter().product();
    if off == 0 {
        return Ok(t);
    }
    dispatch!(t.dtype(), T => {
        let d = data_of::<T>(op, &t)?;
        let mut v = Vec::with_capacity(d.len() * lead);
        for _ in 0..lead {
            v.extend_from_slice(&d);
        }
        Ok(T::wrap(arr(&out, v)))
    })
}

/// Output shape of Tile.
pub(crate) fn tile_shape(
    op: &Op,
    input: &[usize],
    repeats: &[i64],
) -> Result<Vec<usize>, InterpError> {
    if repeats.len() != input.len() {
        bail!(
            op,
            "repeats has {} entries for a rank-{} input",
            repeats.len(),
            input.len()
        );
    }
    let mut out = Vec::with_capacity(input.len());
    for (&d, &r) in input.iter().zip(repeats) {
        let r = usize::try_from(r)
            .map_err(|_| op_err(op, format!("repeats {repeats:?} has a negative entry")))?;
        out.push(
            d.checked_mul(r)
                .ok_or_else(|| op_err(op, "tiled size overflows"))?,
        );
    }
    checked_numel(op, &out)?;
    Ok(out)
}

pub(crate) fn tile(op: &Op, x: &Tensor, repeats: &Tensor) -> Result<Tensor, InterpError> {
    let reps = super::int_list(op, repeats, "repeats")?;
    let out = tile_shape(op, x.shape(), &reps)?;
    let maps: Vec<Vec<usize>> = x
        .shape()
        .iter()
        .zip(&out)
        .map(|(&d, &o)| (0..o).map(|i| i % d.max(1)).collect())
        .collect();
    take(op, x, &maps)
}

/// Output shape of GatherND (`batch_dims` leading axes shared by data and indices).
/// `differ` tells whether two batch dimensions certainly differ.
pub(crate) fn gather_nd_shape<D: Clone + std::fmt::Display>(
    op: &Op,
    data: &[D],
    idx: &[D],
    last: Option<usize>,
    batch_dims: usize,
    differ: impl Fn(&D, &D) -> bool,
) -> Result<Vec<D>, InterpError> {
    let (r, q) = (data.len(), idx.len());
    if r == 0 || q == 0 {
        bail!(op, "data and indices must have rank ≥ 1");
    }
    if batch_dims >= q.min(r) {
        bail!(
            op,
            "batch_dims {batch_dims} must be less than both ranks ({r} and {q})"
        );
    }
    for i in 0..batch_dims {
        if differ(&data[i], &idx[i]) {
            bail!(
                op,
                "batch axis {i} differs: {} in data, {} in indices",
                data[i],
                idx[i]
            );
        }
    }
    let Some(k) = last else {
        bail!(op, "the last dimension of indices must be static");
    };
    if k == 0 || k > r - batch_dims {
        bail!(
            op,
            "indices address {k} axes; data has {} beyond the batch axes",
            r - batch_dims
        );
    }
    let mut out = idx[..q - 1].to_vec();
    out.extend_from_slice(&data[batch_dims + k..]);
    Ok(out)
}

pub(crate) fn gather_nd(
    op: &Op,
    batch_dims: usize,
    data: &Tensor,
    indices: &Tensor,
) -> Result<Tensor, InterpError> {
    let Tensor::I64(ia) = indices else {
        bail!(op, "indices must be i64, got {}", indices.dtype());
    };
    let (ds, is) = (data.shape(), indices.shape());
    let out = gather_nd_shape(op, ds, is, is.last().copied(), batch_dims, |a, b| a != b)?;
    checked_numel(op, &out)?;
    let b = batch_dims;
    let k = is[is.len() - 1];
    let nbatch: usize = ds[..b].iter().product();
    let per_batch: usize = ds[b..].iter().product();
    let tuples: usize = is[b..is.len() - 1].iter().product();
    let slice: usize = ds[b + k..].iter().product();
    let st = strides_of(&ds[b..]);
    let idx: Vec<i64> = ia.iter().copied().collect();
    // Offsets of every addressed slice, validated before anything is copied.
    let mut offs = Vec::with_capacity(nbatch * tuples);
    for bi in 0..nbatch {
        for j in 0..tuples {
            let t = &idx[(bi * tuples + j) * k..(bi * tuples + j + 1) * k];
            let mut off = bi * per_batch;
            for (a, &v) in t.iter().enumerate() {
                let n = ds[b + a] as i64;
                let w = if v < 0 { v + n } else { v };
                if w < 0 || w >= n {
                    bail!(
                        op,
                        "index {v} is out of range for axis {} of size {n}",
                        b + a
                    );
                }
                off += w as usize * st[a];
            }
            offs.push(off);
        }
    }
    dispatch!(data.dtype(), T => {
        let d = data_of::<T>(op, data)?;
        let mut v: Vec<T> = Vec::with_capacity(offs.len() * slice);
        for &o in &offs {
            v.extend_from_slice(&d[o..o + slice]);
        }
        Ok(T::wrap(arr(&out, v)))
    })
}

/// The number of elements of `Range(start, limit, delta)`: `max(ceil((limit − start)/delta), 0)`.
pub(crate) fn range_len(op: &Op, start: f64, limit: f64, delta: f64) -> Result<usize, InterpError> {
    if delta == 0.0 || !(start.is_finite() && limit.is_finite() && delta.is_finite()) {
        bail!(
            op,
            "start {start}, limit {limit} and delta {delta} must be finite, delta non-zero"
        );
    }
    let n = ((limit - start) / delta).ceil().max(0.0);
    if n > super::MAX_ELEMENTS as f64 {
        bail!(
            op,
            "{n} elements, above the limit of {}",
            super::MAX_ELEMENTS
        );
    }
    Ok(n as usize)
}

/// Range, as onnxruntime computes it: `start`, then repeated additions of `delta`.
pub(crate) fn range(op: &Op, ts: &[&Tensor]) -> Result<Tensor, InterpError> {
    let dt = super::same_dtype(op, ts)?;
    for (t, what) in ts.iter().zip(["start", "limit", "delta"]) {
        if t.len() != 1 {
            bail!(op, "{what} must be a scalar, has shape {:?}", t.shape());
        }
    }
    dispatch_num!(op, dt, T => {
        let v: Vec<T> = ts.iter().map(|t| data_of::<T>(op, t).map(|d| d[0])).collect::<Result<_, _>>()?;
        let f: Vec<f64> = ts.iter().map(|t| t.to_f64_vec()[0]).collect();
        let n = range_len(op, f[0], f[1], f[2])?;
        let mut out = Vec::with_capacity(n);
        let mut x = v[0];
        for _ in 0..n {
            out.push(x);
            x = add(x, v[2]);
        }
        Ok(T::wrap(arr(&[n], out)))
    })
}

/// Addition for Range's element types (wrapping for integers).
trait RangeAdd: Copy {
    fn add_(self, o: Self) -> Self;
}
impl RangeAdd for f32 {
    fn add_(self, o: Self) -> Self {
        self + o
    }
}
impl RangeAdd for f64 {
    fn add_(self, o: Self) -> Self {
        self + o
    }
}
impl RangeAdd for i64 {
    fn add_(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
}
fn add<T: RangeAdd>(a: T, b: T) -> T {
    a.add_(b)
}
