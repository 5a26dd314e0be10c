//! Comparisons (Equal, Less, LessOrEqual, Greater, GreaterOrEqual → bool), logic on bool
//! tensors (And, Or, Xor, Not) and selection (Where), all with numpy broadcasting.

use super::elementwise::{bcast_strides, broadcast_shapes, for_each_run};
use super::{arr, checked_numel, data_of, dispatch, Elem};
use crate::error::{bail, InterpError};
use pannc_ir::{DType, Op, Tensor};

/// `f(a, b)` over the broadcast of two row-major buffers of shapes `sa`, `sb` to `out`.
fn zip_bcast<A: Copy, B: Copy, O>(
    a: &[A],
    sa: &[usize],
    b: &[B],
    sb: &[usize],
    out: &[usize],
    f: impl Fn(A, B) -> O,
) -> Vec<O> {
    let (ta, tb) = (bcast_strides(sa, out), bcast_strides(sb, out));
    let mut v = Vec::with_capacity(out.iter().product());
    for_each_run(out, &ta, &tb, |ao, bo, n, ia, ib| {
        v.extend((0..n).map(|i| f(a[ao + i * ia], b[bo + i * ib])));
    });
    v
}

/// Equal, Less, LessOrEqual, Greater, GreaterOrEqual: numbers (and bools for Equal) of one
/// dtype, compared as IEEE floats (NaN compares false).
pub(crate) fn compare(op: &Op, a: &Tensor, b: &Tensor) -> Result<Tensor, InterpError> {
    if a.dtype() != b.dtype() {
        bail!(op, "mixed input dtypes {} and {}", a.dtype(), b.dtype());
    }
    if a.dtype() == DType::Bool && !matches!(op, Op::Equal) {
        bail!(op, "expects numbers, got bool");
    }
    let out = broadcast_shapes(op, a.shape(), b.shape())?;
    checked_numel(op, &out)?;
    fn cmp<T: Elem>(op: &Op, x: T, y: T) -> bool {
        match op {
            Op::Equal => x == y,
            Op::Less => x < y,
            Op::LessOrEqual => x <= y,
            Op::Greater => x > y,
            _ => x >= y,
        }
    }
    dispatch!(a.dtype(), T => {
        let (x, y) = (data_of::<T>(op, a)?, data_of::<T>(op, b)?);
        let v = zip_bcast(&x, a.shape(), &y, b.shape(), &out, |p: T, q: T| cmp(op, p, q));
        Ok(Tensor::Bool(arr(&out, v)))
    })
}

fn bools<'t>(op: &Op, t: &'t Tensor) -> Result<std::borrow::Cow<'t, [bool]>, InterpError> {
    if t.dtype() != DType::Bool {
        bail!(op, "expects bool tensors, got {}", t.dtype());
    }
    data_of::<bool>(op, t)
}

/// And, Or, Xor on bool tensors.
pub(crate) fn logic(op: &Op, a: &Tensor, b: &Tensor) -> Result<Tensor, InterpError> {
    let (x, y) = (bools(op, a)?, bools(op, b)?);
    let out = broadcast_shapes(op, a.shape(), b.shape())?;
    checked_numel(op, &out)?;
    let f = match op {
        Op::And => |p: bool, q: bool| p & q,
        Op::Or => |p: bool, q: bool| p | q,
        _ => |p: bool, q: bool| p ^ q,
    };
    let v = zip_bcast(&x, a.shape(), &y, b.shape(), &out, f);
    Ok(Tensor::Bool(arr(&out, v)))
}

/// Not on a bool tensor.
pub(crate) fn not(op: &Op, x: &Tensor) -> Result<Tensor, InterpError> {
    let v: Vec<bool> = bools(op, x)?.iter().map(|&b| !b).collect();
    Ok(Tensor::Bool(arr(x.shape(), v)))
}

/// The numpy broadcast of three shapes.
pub(crate) fn broadcast3(
    op: &Op,
    a: &[usize],
    b: &[usize],
    c: &[usize],
) -> Result<Vec<usize>, InterpError> {
    broadcast_shapes(op, &broadcast_shapes(op, a, b)?, c)
}

/// Where(condition, X, Y): X where the condition holds, else Y.
pub(crate) fn where_(op: &Op, c: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor, InterpError> {
    let cond = bools(op, c)?;
    if x.dtype() != y.dtype() {
        bail!(op, "X is {} but Y is {}", x.dtype(), y.dtype());
    }
    let out = broadcast3(op, c.shape(), x.shape(), y.shape())?;
    let n = checked_numel(op, &out)?;
    let (sc, sx, sy) = (
        bcast_strides(c.shape(), &out),
        bcast_strides(x.shape(), &out),
        bcast_strides(y.shape(), &out),
    );
    dispatch!(x.dtype(), T => {
        let (xd, yd) = (data_of::<T>(op, x)?, data_of::<T>(op, y)?);
        let mut v: Vec<T> = Vec::with_capacity(n);
        let mut idx = vec![0usize; out.len()];
        for _ in 0..n {
            let (mut oc, mut ox, mut oy) = (0, 0, 0);
            for (k, &i) in idx.iter().enumerate() {
                oc += i * sc[k];
                ox += i * sx[k];
                oy += i * sy[k];
            }
            v.push(if cond[oc] { xd[ox] } else { yd[oy] });
            for k in (0..out.len()).rev() {
                idx[k] += 1;
                if idx[k] < out[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        Ok(T::wrap(arr(&out, v)))
    })
}
