//! Layout and shape ops: Flatten, Reshape, Transpose, Concat, Pad, Squeeze, Unsqueeze,
//! Shape, Gather, ConstantOfShape.

use super::elementwise::for_each_run;
use super::{
    arr, checked_numel, data_of, dispatch, each_targ, int_list, norm_axis, strides_of, vec_of, Arg,
    Elem, AA,
};
use crate::error::{bail, op_err, InterpError};
use ndarray::{ArrayD, IxDyn};
#[allow(unused_imports)]
use num_traits::{Float as _, One as _, Zero as _};
use pannc_ir::{DType, Op, PadMode, Tensor};

/// Gives an input a new shape with the same number of elements, reusing owned storage.
pub(crate) fn relayout(x: Arg<'_>, shape: &[usize]) -> Tensor {
    fn go<T: Clone>(a: AA<'_, T>, shape: &[usize]) -> ArrayD<T> {
        match a {
            AA::Own(a) if a.is_standard_layout() => a
                .into_shape_with_order(IxDyn(shape))
                .unwrap_or_else(|e| panic!("relayout invariant: {e}")),
            AA::Own(a) => arr(shape, vec_of(a)),
            AA::Ref(a) => arr(shape, super::slice_of(a).into_owned()),
        }
    }
    each_targ!(x.split(), a => go(a, shape))
}

pub(crate) fn flatten_shape(op: &Op, axis: i64, s: &[usize]) -> Result<[usize; 2], InterpError> {
    let r = s.len() as i64;
    if axis < -r || axis > r {
        bail!(op, "axis {axis} is out of range for rank {r}");
    }
    let a = if axis < 0 { axis + r } else { axis } as usize;
    Ok([s[..a].iter().product(), s[a..].iter().product()])
}

pub(crate) fn flatten(op: &Op, axis: i64, x: Arg<'_>) -> Result<Tensor, InterpError> {
    let s = flatten_shape(op, axis, x.t().shape())?;
    Ok(relayout(x, &s))
}

/// Resolves a Reshape target (`0` copies the input dimension unless `allowzero`, one `-1`
/// is inferred) against a static input shape.
pub(crate) fn reshape_shape(
    op: &Op,
    input: &[usize],
    spec: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, InterpError> {
    let numel = checked_numel(op, input)?;
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 => {
                if infer.is_some() {
                    bail!(op, "shape {spec:?} has more than one -1");
                }
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => match input.get(i) {
                Some(&v) => out.push(v),
                None => bail!(
                    op,
                    "shape {spec:?} copies axis {i} (0), but the input {input:?} has rank {}",
                    input.len()
                ),
            },
            d if d < 0 => bail!(op, "shape {spec:?} has invalid dimension {d}"),
            d => out.push(usize::try_from(d).map_err(|_| op_err(op, "dimension too large"))?),
        }
    }
    if allowzero && infer.is_some() && spec.contains(&0) {
        bail!(op, "shape {spec:?} has both 0 and -1 with allowzero=1");
    }
    let known = checked_numel(op, &out)?;
    if let Some(i) = infer {
        if known == 0 || numel % known != 0 {
            bail!(
                op,
                "cannot reshape {input:?} ({numel} elements) to {spec:?}"
            );
        }
        out[i] = numel / known;
    } else if known != numel {
        bail!(
            op,
            "cannot reshape {input:?} ({numel} elements) to {spec:?} ({known} elements)"
        );
    }
    Ok(out)
}

pub(crate) fn reshape(
    op: &Op,
    allowzero: bool,
    x: Arg<'_>,
    spec: &[i64],
) -> Result<Tensor, InterpError> {
    let s = reshape_shape(op, x.t().shape(), spec, allowzero)?;
    Ok(relayout(x, &s))
}

/// Row-major copy of `src` viewed with element strides `st` over `shape`.
pub(crate) fn strided_copy<T: Copy>(src: &[T], shape: &[usize], st: &[usize]) -> Vec<T> {
    let n: usize = shape.iter().product();
    let mut v = Vec::with_capacity(n);
    let zeros = vec![0; shape.len()];
    for_each_run(shape, st, &zeros, |o, _, n, s, _| {
        if s == 1 {
            v.extend_from_slice(&src[o..o + n]);
        } else {
            v.extend((0..n).map(|i| src[o + i * s]));
        }
    });
    v
}

pub(crate) fn transpose_perm(
    op: &Op,
    perm: &[usize],
    rank: usize,
) -> Result<Vec<usize>, InterpError> {
    if perm.is_empty() {
        return Ok((0..rank).rev().collect());
    }
    let mut seen = vec![false; rank];
    if perm.len() != rank
        || perm
            .iter()
            .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
    {
        bail!(op, "perm {perm:?} is not a permutation of 0..{rank}");
    }
    Ok(perm.to_vec())
}

pub(crate) fn transpose(op: &Op, perm: &[usize], x: &Tensor) -> Result<Tensor, InterpError> {
    let s = x.shape();
    let perm = transpose_perm(op, perm, s.len())?;
    let st = strides_of(s);
    let out: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
    let pst: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
    dispatch!(x.dtype(), T => {
        let d = data_of::<T>(op, x)?;
        Ok(T::wrap(arr(&out, strided_copy(&d, &out, &pst))))
    })
}

pub(crate) fn concat_shape(
    op: &Op,
    axis: i64,
    shapes: &[&[usize]],
) -> Result<(usize, Vec<usize>), InterpError> {
    let first = shapes[0];
    if first.is_empty() {
        bail!(op, "cannot concatenate scalars");
    }
    let ax = norm_axis(op, axis, first.len())?;
    let mut out = first.to_vec();
    out[ax] = 0;
    for s in shapes {
        if s.len() != first.len()
            || s.iter()
                .zip(first)
                .enumerate()
                .any(|(i, (a, b))| i != ax && a != b)
        {
            bail!(
                op,
                "input shapes {first:?} and {s:?} differ outside axis {ax}"
            );
        }
        out[ax] += s[ax];
    }
    checked_numel(op, &out)?;
    Ok((ax, out))
}

pub(crate) fn concat(op: &Op, axis: i64, ts: &[&Tensor]) -> Result<Tensor, InterpError> {
    let shapes: Vec<&[usize]> = ts.iter().map(|t| t.shape()).collect();
    let (ax, out) = concat_shape(op, axis, &shapes)?;
    let dt = super::same_dtype(op, ts)?;
    let outer: usize = out[..ax].iter().product();
    let inner: usize = out[ax + 1..].iter().product();
    dispatch!(dt, T => {
        let ds: Vec<_> = ts.iter().map(|t| data_of::<T>(op, t)).collect::<Result<_, _>>()?;
        let mut v: Vec<T> = Vec::with_capacity(out.iter().product());
        for o in 0..outer {
            for (d, s) in ds.iter().zip(&shapes) {
                let blk = s[ax] * inner;
                v.extend_from_slice(&d[o * blk..(o + 1) * blk]);
            }
        }
        Ok(T::wrap(arr(&out, v)))
    })
}

/// Per-axis `(begin, end)` pads of a Pad node, from its `pads` and optional `axes` inputs.
pub(crate) fn pad_amounts(
    op: &Op,
    rank: usize,
    pads: &[i64],
    axes: Option<&[i64]>,
) -> Result<Vec<(i64, i64)>, InterpError> {
    let axes: Vec<usize> = match axes {
        Some(a) => {
            let mut v = Vec::new();
            for &x in a {
                let x = norm_axis(op, x, rank)?;
                if v.contains(&x) {
                    bail!(op, "axis {x} appears twice in axes {a:?}");
                }
                v.push(x);
            }
            v
        }
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        bail!(
            op,
            "pads has {} entries, expected {} (2 × {} axes)",
            pads.len(),
            2 * axes.len(),
            axes.len()
        );
    }
    let mut res = vec![(0i64, 0i64); rank];
    for (j, &a) in axes.iter().enumerate() {
        res[a] = (pads[j], pads[j + axes.len()]);
    }
    Ok(res)
}

/// Output shape of Pad: negative pads crop first, then positive pads extend.
pub(crate) fn pad_shape(
    op: &Op,
    input: &[usize],
    amounts: &[(i64, i64)],
) -> Result<Vec<usize>, InterpError> {
    let mut out = Vec::with_capacity(input.len());
    for (i, (&d, &(b, e))) in input.iter().zip(amounts).enumerate() {
        let v = d as i128 + b as i128 + e as i128;
        let crop = (-(b as i128)).max(0) + (-(e as i128)).max(0);
        if v < 0 || crop > d as i128 {
            bail!(op, "axis {i}: pads ({b}, {e}) crop more than the size {d}");
        }
        out.push(usize::try_from(v).map_err(|_| op_err(op, "padded size overflows"))?);
    }
    checked_numel(op, &out)?;
    Ok(out)
}

pub(crate) fn pad(op: &Op, mode: PadMode, ts: &[&Tensor]) -> Result<Tensor, InterpError> {
    let x = ts[0];
    let pads = int_list(op, ts[1], "pads")?;
    let axes = match ts.get(3) {
        Some(a) => Some(int_list(op, a, "axes")?),
        None => None,
    };
    let amounts = pad_amounts(op, x.ndim_(), &pads, axes.as_deref())?;
    let out = pad_shape(op, x.shape(), &amounts)?;
    let cval = match ts.get(2) {
        Some(c) if c.len() > 1 => bail!(
            op,
            "constant_value must be a scalar, got {} elements",
            c.len()
        ),
        Some(c) if c.len() == 1 => Some(*c),
        _ => None,
    };
    // Per axis: for each output index, the input index (None: the constant).
    let mut maps: Vec<Vec<Option<usize>>> = Vec::with_capacity(out.len());
    for (i, (&d, &(b, e))) in x.shape().iter().zip(&amounts).enumerate() {
        let lo = (-b).max(0) as usize;
        let hi = d - (-e).max(0) as usize;
        let de = hi - lo;
        let pb = b.max(0) as usize;
        let mut m = Vec::with_capacity(out[i]);
        for o in 0..out[i] {
            let q = o as i64 - pb as i64;
            let src = if q >= 0 && (q as usize) < de {
                Some(q as usize)
            } else if mode == PadMode::Constant {
                None
            } else if de == 0 {
                bail!(op, "axis {i}: cannot {mode:?}-pad an empty axis");
            } else {
                let n = de as i64;
                Some(match mode {
                    PadMode::Edge => q.clamp(0, n - 1) as usize,
                    PadMode::Wrap => q.rem_euclid(n) as usize,
                    _ => {
                        if n == 1 {
                            0
                        } else {
                            let r = q.rem_euclid(2 * (n - 1));
                            (if r < n { r } else { 2 * (n - 1) - r }) as usize
                        }
                    }
                })
            };
            m.push(src.map(|s| s + lo));
        }
        maps.push(m);
    }
    dispatch!(x.dtype(), T => {
        let d = data_of::<T>(op, x)?;
        let c: T = match cval {
            Some(c) => match T::get(c) {
                Some(a) => a.iter().copied().next().unwrap_or_default(),
                None => bail!(op, "constant_value dtype {} ≠ data dtype {}", c.dtype(), x.dtype()),
            },
            None => T::default(),
        };
        Ok(T::wrap(arr(&out, pad_fill(&d, x.shape(), &out, &maps, c))))
    })
}

fn pad_fill<T: Copy>(
    d: &[T],
    ins: &[usize],
    out: &[usize],
    maps: &[Vec<Option<usize>>],
    c: T,
) -> Vec<T> {
    let n: usize = out.iter().product();
    let mut v = vec![c; n];
    if n == 0 {
        return v;
    }
    if out.is_empty() {
        v[0] = d[0];
        return v;
    }
    let st = strides_of(ins);
    let r = out.len();
    let last = out[r - 1];
    let mut idx = vec![0usize; r - 1];
    let mut o = 0;
    loop {
        let mut base = Some(0);
        for i in 0..r - 1 {
            base = match (base, maps[i][idx[i]]) {
                (Some(b), Some(s)) => Some(b + s * st[i]),
                _ => None,
            };
        }
        if let Some(b) = base {
            for (j, m) in maps[r - 1].iter().enumerate() {
                if let Some(s) = m {
                    v[o + j] = d[b + s];
                }
            }
        }
        o += last;
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

trait Ndim {
    fn ndim_(&self) -> usize;
}
impl Ndim for Tensor {
    fn ndim_(&self) -> usize {
        self.shape().len()
    }
}

pub(crate) fn squeeze_shape(
    op: &Op,
    s: &[usize],
    axes: Option<&[i64]>,
) -> Result<Vec<usize>, InterpError> {
    match axes {
        None | Some([]) => Ok(s.iter().copied().filter(|&d| d != 1).collect()),
        Some(list) => {
            let mut drop = vec![false; s.len()];
            for &a in list {
                let a = norm_axis(op, a, s.len())?;
                if s[a] != 1 {
                    bail!(op, "cannot squeeze axis {a} of size {} (shape {s:?})", s[a]);
                }
                drop[a] = true;
            }
            Ok(s.iter()
                .zip(&drop)
                .filter(|(_, &d)| !d)
                .map(|(&v, _)| v)
                .collect())
        }
    }
}

pub(crate) fn squeeze(op: &Op, x: Arg<'_>, axes: Option<Vec<i64>>) -> Result<Tensor, InterpError> {
    let s = squeeze_shape(op, x.t().shape(), axes.as_deref())?;
    Ok(relayout(x, &s))
}

/// Positions of the inserted axes in the output (sorted), validated.
pub(crate) fn unsqueeze_axes(
    op: &Op,
    rank: usize,
    axes: &[i64],
) -> Result<Vec<usize>, InterpError> {
    let r = rank + axes.len();
    let mut v = Vec::with_capacity(axes.len());
    for &a in axes {
        let a = norm_axis(op, a, r)?;
        if v.contains(&a) {
            bail!(op, "axis {a} appears twice in axes {axes:?}");
        }
        v.push(a);
    }
    v.sort_unstable();
    Ok(v)
}

pub(crate) fn unsqueeze_shape<D: Clone>(s: &[D], ins: &[usize], one: D) -> Vec<D> {
    let mut it = s.iter();
    (0..s.len() + ins.len())
        .map(|i| {
            if ins.contains(&i) {
                one.clone()
            } else {
                it.next().expect("rank").clone()
            }
        })
        .collect()
}

pub(crate) fn unsqueeze(op: &Op, x: Arg<'_>, axes: &[i64]) -> Result<Tensor, InterpError> {
    let ins = unsqueeze_axes(op, x.t().shape().len(), axes)?;
    let s = unsqueeze_shape(x.t().shape(), &ins, 1);
    Ok(relayout(x, &s))
}

/// `[start, end)` of Shape, clamped as in opset 15.
pub(crate) fn shape_range(rank: usize, start: i64, end: Option<i64>) -> (usize, usize) {
    let r = rank as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let s = clamp(start);
    let e = end.map_or(rank, clamp);
    (s, e.max(s))
}

pub(crate) fn shape(x: &Tensor, start: i64, end: Option<i64>) -> Tensor {
    let (s, e) = shape_range(x.shape().len(), start, end);
    let v: Vec<i64> = x.shape()[s..e].iter().map(|&d| d as i64).collect();
    Tensor::I64(arr(&[v.len()], v))
}

pub(crate) fn gather_shape<D: Clone>(
    op: &Op,
    data: &[D],
    idx: &[D],
    axis: i64,
) -> Result<(usize, Vec<D>), InterpError> {
    if data.is_empty() {
        bail!(op, "data must have rank ≥ 1");
    }
    let ax = norm_axis(op, axis, data.len())?;
    let mut out = data[..ax].to_vec();
    out.extend_from_slice(idx);
    out.extend_from_slice(&data[ax + 1..]);
    Ok((ax, out))
}

pub(crate) fn gather(
    op: &Op,
    axis: i64,
    data: &Tensor,
    indices: &Tensor,
) -> Result<Tensor, InterpError> {
    let Tensor::I64(ia) = indices else {
        bail!(op, "indices must be i64, got {}", indices.dtype());
    };
    let (ax, out) = gather_shape(op, data.shape(), indices.shape(), axis)?;
    checked_numel(op, &out)?;
    let ds = data.shape();
    let n = ds[ax];
    let idx: Vec<usize> = ia
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + n as i64 } else { i };
            if j < 0 || j >= n as i64 {
                Err(op_err(
                    op,
                    format!("index {i} is out of range for axis {ax} of size {n}"),
                ))
            } else {
                Ok(j as usize)
            }
        })
        .collect::<Result<_, _>>()?;
    let outer: usize = ds[..ax].iter().product();
    let inner: usize = ds[ax + 1..].iter().product();
    dispatch!(data.dtype(), T => {
        let d = data_of::<T>(op, data)?;
        let mut v: Vec<T> = Vec::with_capacity(out.iter().product());
        for o in 0..outer {
            for &j in &idx {
                let s = (o * n + j) * inner;
                v.extend_from_slice(&d[s..s + inner]);
            }
        }
        Ok(T::wrap(arr(&out, v)))
    })
}

/// Reads ConstantOfShape's shape input.
pub(crate) fn cos_shape(op: &Op, t: &Tensor) -> Result<Vec<usize>, InterpError> {
    let v = int_list(op, t, "shape")?;
    let s: Vec<usize> = v
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| op_err(op, format!("negative dimension {d} in shape {v:?}")))
        })
        .collect::<Result<_, _>>()?;
    checked_numel(op, &s)?;
    Ok(s)
}

pub(crate) fn constant_of_shape(
    op: &Op,
    value: &Tensor,
    shape_t: &Tensor,
) -> Result<Tensor, InterpError> {
    let s = cos_shape(op, shape_t)?;
    if value.len() != 1 {
        bail!(op, "value must hold one element, holds {}", value.len());
    }
    let n = s.iter().product();
    Ok(match value.dtype() {
        DType::F32 => Tensor::F32(arr(&s, vec![value.to_f64_vec()[0] as f32; n])),
        DType::F64 => Tensor::F64(arr(&s, vec![value.to_f64_vec()[0]; n])),
        DType::I64 => Tensor::I64(arr(&s, vec![value.to_i64_vec()[0]; n])),
        DType::Bool => Tensor::Bool(arr(&s, vec![value.to_i64_vec()[0] != 0; n])),
    })
}
