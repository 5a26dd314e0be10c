//! Reductions beyond ReduceMean: ReduceSum, ReduceMax, ReduceMin, ArgMax, ArgMin.

use super::elementwise::{bcast_strides, for_each_run};
use super::norm::{reduce_axes, reduced_shape};
use super::{arr, data_of, dispatch_num, norm_axis, Arg, Elem};
use crate::error::{bail, InterpError};
use pannc_ir::{DType, Op, Tensor};

/// What a reduction keeps per output element.
trait Reducer: Copy + PartialOrd {
    /// The value of an empty reduction (ONNX opset 18: 0 for sums, the lowest value for max,
    /// the highest for min).
    fn lowest() -> Self;
    fn highest() -> Self;
    fn zero() -> Self;
    fn plus(self, o: Self) -> Self;
    fn nan(self) -> bool;
}
macro_rules! reducer_float {
    ($t:ty) => {
        impl Reducer for $t {
            fn lowest() -> Self {
                <$t>::NEG_INFINITY
            }
            fn highest() -> Self {
                <$t>::INFINITY
            }
            fn zero() -> Self {
                0.0
            }
            fn plus(self, o: Self) -> Self {
                self + o
            }
            fn nan(self) -> bool {
                self.is_nan()
            }
        }
    };
}
reducer_float!(f32);
reducer_float!(f64);
impl Reducer for i64 {
    fn lowest() -> Self {
        i64::MIN
    }
    fn highest() -> Self {
        i64::MAX
    }
    fn zero() -> Self {
        0
    }
    fn plus(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    fn nan(self) -> bool {
        false
    }
}

/// ReduceSum, ReduceMax, ReduceMin over `axes` (`None`: all, or none with
/// `noop_with_empty_axes`). Sums run in the input's row-major order (deterministic); max and
/// min propagate NaN, as onnxruntime does. Bool inputs are reduced as Or (max) and And (min).
pub(crate) fn reduce(
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
    let xs = super::strides_of(&shape);
    let os = bcast_strides(&kept, &shape);
    let nout: usize = out.iter().product();
    let t = x.t();
    if t.dtype() == DType::Bool {
        if matches!(op, Op::ReduceSum { .. }) {
            bail!(op, "expects numbers, got bool");
        }
        let any = matches!(op, Op::ReduceMax { .. });
        let d = data_of::<bool>(op, t)?;
        let mut acc = vec![!any; nout];
        for_each_run(&shape, &xs, &os, |xo, oo, n, ix, io| {
            for j in 0..n {
                let a = &mut acc[oo + j * io];
                *a = if any {
                    *a | d[xo + j * ix]
                } else {
                    *a & d[xo + j * ix]
                };
            }
        });
        return Ok(Tensor::Bool(arr(&out, acc)));
    }
    dispatch_num!(op, t.dtype(), T => {
        let d = data_of::<T>(op, t)?;
        let (init, f): (T, fn(T, T) -> T) = match op {
            Op::ReduceSum { .. } => (T::zero(), |a: T, b: T| a.plus(b)),
            Op::ReduceMax { .. } => (T::lowest(), |a: T, b: T| if b > a || b.nan() { b } else { a }),
            _ => (T::highest(), |a: T, b: T| if b < a || b.nan() { b } else { a }),
        };
        let sum = matches!(op, Op::ReduceSum { .. });
        let mut acc = vec![init; nout];
        for_each_run(&shape, &xs, &os, |xo, oo, n, ix, io| {
            for j in 0..n {
                let a = &mut acc[oo + j * io];
                // A NaN already kept stays (it compares false both ways).
                if sum || !a.nan() {
                    *a = f(*a, d[xo + j * ix]);
                }
            }
        });
        Ok(T::wrap(arr(&out, acc)))
    })
}

/// ArgMax/ArgMin along `axis`: the first (or with `last`, the last) index of the extreme
/// value, as i64. An axis of size 0 is an error.
pub(crate) fn arg_extreme(
    op: &Op,
    axis: i64,
    keepdims: bool,
    last: bool,
    x: &Tensor,
) -> Result<Tensor, InterpError> {
    let shape = x.shape();
    if shape.is_empty() {
        bail!(op, "input must have rank ≥ 1");
    }
    let ax = norm_axis(op, axis, shape.len())?;
    let n = shape[ax];
    if n == 0 {
        bail!(op, "cannot take the {} of an empty axis {ax}", op.name());
    }
    let outer: usize = shape[..ax].iter().product();
    let inner: usize = shape[ax + 1..].iter().product();
    let out = reduced_shape(shape, &[ax], keepdims);
    let max = matches!(op, Op::ArgMax { .. });
    dispatch_num!(op, x.dtype(), T => {
        let d = data_of::<T>(op, x)?;
        let mut v = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| d[(o * n + k) * inner + i];
                let mut best = 0usize;
                for k in 1..n {
                    let (c, b) = (at(k), at(best));
                    let better = if max { c > b } else { c < b };
                    if better || (last && c == b) {
                        best = k;
                    }
                }
                v.push(best as i64);
            }
        }
        Ok(Tensor::I64(arr(&out, v)))
    })
}
