//! Unary activations and math, broadcasting binary arithmetic (Add, Sub, Mul, Div, Pow, Mod).

use super::{arr, checked_numel, Float, TArg, AA};
use crate::error::{bail, op_err, InterpError};
use crate::eval::{each_float, Arg};
use ndarray::ArrayD;
#[allow(unused_imports)]
use num_traits::{Float as _, One as _, Zero as _};
use pannc_ir::{DType, Op, Tensor};

/// Clip's bounds, read once from its optional inputs.
#[derive(Default, Clone, Copy)]
pub(crate) struct Bounds {
    lo_f: Option<f64>,
    hi_f: Option<f64>,
    lo_i: Option<i64>,
    hi_i: Option<i64>,
}

pub(crate) fn clip_bounds(op: &Op, rest: &[&Tensor]) -> Result<Bounds, InterpError> {
    let Op::Clip { has_min, has_max } = op else {
        return Ok(Bounds::default());
    };
    let mut it = rest.iter();
    let mut read = |what: &str| -> Result<(Option<f64>, Option<i64>), InterpError> {
        let t = it
            .next()
            .ok_or_else(|| op_err(op, format!("missing {what} input")))?;
        match t.len() {
            0 => Ok((None, None)),
            1 => Ok((Some(t.to_f64_vec()[0]), Some(t.to_i64_vec()[0]))),
            n => Err(op_err(
                op,
                format!("{what} must be a scalar, got {n} elements"),
            )),
        }
    };
    let mut b = Bounds::default();
    if *has_min {
        (b.lo_f, b.lo_i) = read("min")?;
    }
    if *has_max {
        (b.hi_f, b.hi_i) = read("max")?;
    }
    Ok(b)
}

fn map<T: Copy>(a: AA<'_, T>, f: impl Fn(T) -> T) -> ArrayD<T> {
    match a {
        AA::Own(mut a) => {
            a.mapv_inplace(f);
            a
        }
        AA::Ref(a) => a.mapv(f),
    }
}

/// A polynomial on every element: in f64 (Clenshaw, `Poly::eval_many`) and rounded once.
fn poly_map<T: Float>(p: &pannc_ir::Poly, a: AA<'_, T>) -> ArrayD<T> {
    let shape = a.shape().to_vec();
    let mut v = a.into_vec();
    let mut buf = [0.0f64; 256];
    for c in v.chunks_mut(buf.len()) {
        let b = &mut buf[..c.len()];
        for (d, s) in b.iter_mut().zip(c.iter()) {
            *d = num_traits::ToPrimitive::to_f64(s).unwrap_or(f64::NAN);
        }
        p.eval_many(b);
        for (d, s) in c.iter_mut().zip(b.iter()) {
            *d = T::of(*s);
        }
    }
    arr(&shape, v)
}

fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

fn gelu<T: Float>(x: T, tanh: bool) -> T {
    let half = T::of(0.5);
    if tanh {
        let c = T::of((2.0 / std::f64::consts::PI).sqrt());
        half * x * (T::one() + (c * (x + T::of(0.044715) * x * x * x)).tanh())
    } else {
        half * x * (T::one() + <T as Float>::erf(x * T::of(std::f64::consts::FRAC_1_SQRT_2)))
    }
}

/// Elementwise activations (and Identity/Dropout/Clip).
pub(crate) fn unary(op: &Op, x: Arg<'_>, b: Bounds) -> Result<Tensor, InterpError> {
    if matches!(op, Op::Identity | Op::Dropout) {
        return Ok(x.into_owned());
    }
    let x = x.split();
    // Ops defined on integers too.
    if let TArg::I64(a) = x {
        return Ok(Tensor::I64(match op {
            Op::Relu => map(a, |v| v.max(0)),
            Op::Neg => map(a, i64::wrapping_neg),
            Op::Abs => map(a, i64::wrapping_abs),
            Op::Clip { .. } => {
                let (lo, hi) = (b.lo_i.unwrap_or(i64::MIN), b.hi_i.unwrap_or(i64::MAX));
                map(a, |v| v.max(lo).min(hi))
            }
            _ => bail!(op, "expects a float tensor, got i64"),
        }));
    }
    Ok(match op {
        Op::Relu => {
            each_float!(op, x, a, T => map(a, |v: T| if v < T::zero() { T::zero() } else { v }))
        }
        Op::LeakyRelu { alpha } => {
            each_float!(op, x, a, T => { let al = T::of32(*alpha); map(a, |v: T| if v < T::zero() { al * v } else { v }) })
        }
        Op::Sigmoid => each_float!(op, x, a, T => map(a, sigmoid::<T>)),
        Op::Tanh => each_float!(op, x, a, T => map(a, |v: T| v.tanh())),
        Op::Erf => each_float!(op, x, a, T => map(a, |v: T| <T as Float>::erf(v))),
        Op::Gelu { tanh } => each_float!(op, x, a, T => map(a, |v: T| gelu(v, *tanh))),
        Op::Silu => each_float!(op, x, a, T => map(a, |v: T| v * sigmoid::<T>(v))),
        // Polynomials are evaluated in f64 (Clenshaw) and rounded once.
        Op::Poly(p) => each_float!(op, x, a, T => poly_map(p, a)),
        Op::Clip { .. } => each_float!(op, x, a, T => {
            let lo = b.lo_f.map(T::of);
            let hi = b.hi_f.map(T::of);
            map(a, |v: T| {
                let v = match lo { Some(l) if v < l => l, _ => v };
                match hi { Some(h) if v > h => h, _ => v }
            })
        }),
        Op::Neg => each_float!(op, x, a, T => map(a, |v: T| -v)),
        Op::Abs => each_float!(op, x, a, T => map(a, |v: T| v.abs())),
        Op::Sqrt => each_float!(op, x, a, T => map(a, |v: T| v.sqrt())),
        Op::Reciprocal => each_float!(op, x, a, T => map(a, |v: T| T::one() / v)),
        Op::Exp => each_float!(op, x, a, T => map(a, |v: T| v.exp())),
        Op::Log => each_float!(op, x, a, T => map(a, |v: T| v.ln())),
        Op::Floor => each_float!(op, x, a, T => map(a, |v: T| v.floor())),
        Op::Ceil => each_float!(op, x, a, T => map(a, |v: T| v.ceil())),
        Op::HardSigmoid { alpha, beta } => each_float!(op, x, a, T => {
            let (al, be) = (T::of32(*alpha), T::of32(*beta));
            map(a, |v: T| hard_sigmoid(al * v + be))
        }),
        // As onnxruntime computes it: x · HardSigmoid(x) with alpha = 1/6 (rounded to T).
        Op::HardSwish => each_float!(op, x, a, T => {
            let (al, be) = (T::of(1.0 / 6.0), T::of(0.5));
            map(a, |v: T| v * hard_sigmoid(al * v + be))
        }),
        _ => bail!(op, "is not a unary elementwise op"),
    })
}

/// `max(0, min(1, y))`; NaN stays NaN.
fn hard_sigmoid<T: Float>(y: T) -> T {
    if y < T::zero() {
        T::zero()
    } else if y > T::one() {
        T::one()
    } else {
        y
    }
}

/// Multidirectional (numpy) broadcast of two shapes.
pub(crate) fn broadcast_shapes(
    op: &Op,
    a: &[usize],
    b: &[usize],
) -> Result<Vec<usize>, InterpError> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            bail!(
                op,
                "shapes {a:?} and {b:?} are not broadcastable (axis {i}: {da} vs {db})"
            );
        };
    }
    Ok(out)
}

/// Element strides of an input of shape `s` broadcast to `out` (0 along broadcast axes).
pub(crate) fn bcast_strides(s: &[usize], out: &[usize]) -> Vec<usize> {
    let r = out.len();
    let st = super::strides_of(s);
    (0..r)
        .map(|i| {
            if i + s.len() < r {
                0
            } else {
                let j = i + s.len() - r;
                if s[j] == 1 && out[i] != 1 {
                    0
                } else {
                    st[j]
                }
            }
        })
        .collect()
}

/// Walks the output of a two-input broadcast in row-major order, in maximal runs along the
/// innermost (collapsed) axis: `seg(a_offset, b_offset, len, a_stride, b_stride)`.
pub(crate) fn for_each_run(
    out: &[usize],
    sa: &[usize],
    sb: &[usize],
    mut seg: impl FnMut(usize, usize, usize, usize, usize),
) {
    // Collapse axes: drop size-1 axes, merge contiguous neighbours.
    let mut dims: Vec<(usize, usize, usize)> = Vec::new();
    for i in 0..out.len() {
        if out[i] == 1 {
            continue;
        }
        if out[i] == 0 {
            return;
        }
        if let Some(last) = dims.last_mut() {
            if last.1 == out[i] * sa[i] && last.2 == out[i] * sb[i] {
                *last = (last.0 * out[i], sa[i], sb[i]);
                continue;
            }
        }
        dims.push((out[i], sa[i], sb[i]));
    }
    let Some(&(n, ia, ib)) = dims.last() else {
        seg(0, 0, 1, 0, 0);
        return;
    };
    let outer = &dims[..dims.len() - 1];
    let mut idx = vec![0usize; outer.len()];
    let (mut ao, mut bo) = (0usize, 0usize);
    loop {
        seg(ao, bo, n, ia, ib);
        // Odometer over the outer axes.
        let mut k = outer.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            idx[k] += 1;
            ao += outer[k].1;
            bo += outer[k].2;
            if idx[k] < outer[k].0 {
                break;
            }
            ao -= outer[k].1 * outer[k].0;
            bo -= outer[k].2 * outer[k].0;
            idx[k] = 0;
        }
    }
}

/// Broadcasting `f(a, b)`, writing into an input's buffer when it is owned and has the
/// output's shape.
fn bin<T: Copy + Default>(
    a: AA<'_, T>,
    b: AA<'_, T>,
    out: &[usize],
    n: usize,
    f: impl Fn(T, T) -> T,
) -> ArrayD<T> {
    let sa = bcast_strides(a.shape(), out);
    let sb = bcast_strides(b.shape(), out);
    if a.shape() == out && a.reusable() {
        let bd = b.data();
        let mut v = a.into_vec();
        let mut o = 0;
        for_each_run(out, &sa, &sb, |_, bo, n, _, ib| {
            let dst = &mut v[o..o + n];
            match ib {
                0 => {
                    let y = bd[bo];
                    dst.iter_mut().for_each(|x| *x = f(*x, y))
                }
                1 => dst
                    .iter_mut()
                    .zip(&bd[bo..bo + n])
                    .for_each(|(x, &y)| *x = f(*x, y)),
                _ => dst
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, x)| *x = f(*x, bd[bo + i * ib])),
            }
            o += n;
        });
        return arr(out, v);
    }
    if b.shape() == out && b.reusable() {
        let ad = a.data();
        let mut v = b.into_vec();
        let mut o = 0;
        for_each_run(out, &sa, &sb, |ao, _, n, ia, _| {
            let dst = &mut v[o..o + n];
            match ia {
                0 => {
                    let x = ad[ao];
                    dst.iter_mut().for_each(|y| *y = f(x, *y))
                }
                1 => dst
                    .iter_mut()
                    .zip(&ad[ao..ao + n])
                    .for_each(|(y, &x)| *y = f(x, *y)),
                _ => dst
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, y)| *y = f(ad[ao + i * ia], *y)),
            }
            o += n;
        });
        return arr(out, v);
    }
    let (ad, bd) = (a.data(), b.data());
    let mut v: Vec<T> = Vec::with_capacity(n);
    for_each_run(out, &sa, &sb, |ao, bo, n, ia, ib| match (ia, ib) {
        (1, 1) => v.extend(
            ad[ao..ao + n]
                .iter()
                .zip(&bd[bo..bo + n])
                .map(|(&x, &y)| f(x, y)),
        ),
        (1, 0) => {
            let y = bd[bo];
            v.extend(ad[ao..ao + n].iter().map(|&x| f(x, y)))
        }
        (0, 1) => {
            let x = ad[ao];
            v.extend(bd[bo..bo + n].iter().map(|&y| f(x, y)))
        }
        _ => v.extend((0..n).map(|i| f(ad[ao + i * ia], bd[bo + i * ib]))),
    });
    arr(out, v)
}

fn float_bin<T: Float>(op: &Op, a: AA<'_, T>, b: AA<'_, T>, out: &[usize], n: usize) -> ArrayD<T> {
    match op {
        Op::Add => bin(a, b, out, n, |x, y| x + y),
        Op::Sub => bin(a, b, out, n, |x, y| x - y),
        Op::Mul => bin(a, b, out, n, |x, y| x * y),
        _ => bin(a, b, out, n, |x, y| x / y),
    }
}

/// Add/Sub/Mul/Div with multidirectional broadcasting, f32/f64/i64 (i64 wraps on overflow
/// and truncates division toward zero; division by zero is an error).
pub(crate) fn binary(op: &Op, a: Arg<'_>, b: Arg<'_>) -> Result<Tensor, InterpError> {
    if a.t().dtype() != b.t().dtype() {
        bail!(
            op,
            "mixed input dtypes {} and {}",
            a.t().dtype(),
            b.t().dtype()
        );
    }
    let out = broadcast_shapes(op, a.t().shape(), b.t().shape())?;
    let n = checked_numel(op, &out)?;
    Ok(match (a.split(), b.split()) {
        (TArg::F32(a), TArg::F32(b)) => Tensor::F32(float_bin(op, a, b, &out, n)),
        (TArg::F64(a), TArg::F64(b)) => Tensor::F64(float_bin(op, a, b, &out, n)),
        (TArg::I64(a), TArg::I64(b)) => Tensor::I64(match op {
            Op::Add => bin(a, b, &out, n, i64::wrapping_add),
            Op::Sub => bin(a, b, &out, n, i64::wrapping_sub),
            Op::Mul => bin(a, b, &out, n, i64::wrapping_mul),
            _ => {
                if b.arr().iter().any(|&y| y == 0) {
                    bail!(op, "integer division by zero");
                }
                bin(a, b, &out, n, i64::wrapping_div)
            }
        }),
        (TArg::Bool(_), _) => bail!(op, "expects numbers, got bool"),
        _ => bail!(op, "internal: operand dtypes differ"),
    })
}

/// `X^Y` with broadcasting. The result has X's dtype; Y may be of another numeric type
/// (converted to X's for float X; integer X is raised in f64 and truncated, as onnxruntime
/// does). A scalar exponent of 2, 3 or 0.5 is computed as `x·x`, `x·x·x` or `sqrt(x)`, as
/// onnxruntime does.
pub(crate) fn pow(op: &Op, x: Arg<'_>, y: Arg<'_>) -> Result<Tensor, InterpError> {
    let out = broadcast_shapes(op, x.t().shape(), y.t().shape())?;
    let n = checked_numel(op, &out)?;
    let (xd, yd) = (x.t().dtype(), y.t().dtype());
    if yd == DType::Bool || xd == DType::Bool {
        bail!(op, "expects numbers, got bool");
    }
    // A scalar exponent that leaves X's shape as it is.
    let special =
        (y.t().len() == 1 && x.t().shape() == out.as_slice()).then(|| y.t().to_f64_vec()[0]);
    fn float_pow<T: Float>(
        x: AA<'_, T>,
        y: AA<'_, T>,
        out: &[usize],
        n: usize,
        special: Option<f64>,
    ) -> ArrayD<T> {
        match special {
            Some(2.0) => map(x, |v| v * v),
            Some(3.0) => map(x, |v| v * v * v),
            Some(0.5) => map(x, |v| v.sqrt()),
            _ => bin(x, y, out, n, |a, b| a.powf(b)),
        }
    }
    Ok(match xd {
        DType::F32 | DType::F64 => {
            let y = if yd == xd {
                y
            } else {
                Arg::Own(y.t().cast(xd))
            };
            match (x.split(), y.split()) {
                (TArg::F32(a), TArg::F32(b)) => Tensor::F32(float_pow(a, b, &out, n, special)),
                (TArg::F64(a), TArg::F64(b)) => Tensor::F64(float_pow(a, b, &out, n, special)),
                _ => bail!(op, "internal: operand dtypes differ"),
            }
        }
        _ => {
            let (Tensor::F64(a), Tensor::F64(b)) = (x.t().cast(DType::F64), y.t().cast(DType::F64))
            else {
                bail!(op, "internal: cast to f64 failed");
            };
            let r = bin(AA::Own(a), AA::Own(b), &out, n, |a, b| a.powf(b));
            Tensor::I64(r.mapv(|v| v as i64))
        }
    })
}

/// Max and Min of one or more inputs with numpy broadcasting, folded left to right; NaN
/// propagates (as numpy's `maximum`).
pub(crate) fn max_min(op: &Op, args: Vec<Arg<'_>>) -> Result<Tensor, InterpError> {
    let mut it = args.into_iter();
    let mut acc = it
        .next()
        .ok_or_else(|| op_err(op, "needs at least one input"))?
        .into_owned();
    let max = matches!(op, Op::Max);
    for b in it {
        let a = Arg::Own(acc);
        if a.t().dtype() != b.t().dtype() {
            bail!(
                op,
                "mixed input dtypes {} and {}",
                a.t().dtype(),
                b.t().dtype()
            );
        }
        let out = broadcast_shapes(op, a.t().shape(), b.t().shape())?;
        let n = checked_numel(op, &out)?;
        fn pick<T: Float>(max: bool) -> impl Fn(T, T) -> T {
            move |x: T, y: T| {
                if x.is_nan() || y.is_nan() {
                    T::nan()
                } else if (y > x) == max {
                    y
                } else {
                    x
                }
            }
        }
        acc = match (a.split(), b.split()) {
            (TArg::F32(x), TArg::F32(y)) => Tensor::F32(bin(x, y, &out, n, pick::<f32>(max))),
            (TArg::F64(x), TArg::F64(y)) => Tensor::F64(bin(x, y, &out, n, pick::<f64>(max))),
            (TArg::I64(x), TArg::I64(y)) => Tensor::I64(if max {
                bin(x, y, &out, n, i64::max)
            } else {
                bin(x, y, &out, n, i64::min)
            }),
            _ => bail!(op, "expects numbers, got bool"),
        };
    }
    if acc.dtype() == DType::Bool {
        bail!(op, "expects numbers, got bool");
    }
    Ok(acc)
}

/// ONNX `Mod`: with `fmod` the remainder has the dividend's sign (C `fmod`; floats need it),
/// otherwise the divisor's (integers). Integer division by zero is an error.
pub(crate) fn modulo(op: &Op, fmod: bool, a: Arg<'_>, b: Arg<'_>) -> Result<Tensor, InterpError> {
    if a.t().dtype() != b.t().dtype() {
        bail!(
            op,
            "mixed input dtypes {} and {}",
            a.t().dtype(),
            b.t().dtype()
        );
    }
    let out = broadcast_shapes(op, a.t().shape(), b.t().shape())?;
    let n = checked_numel(op, &out)?;
    Ok(match (a.split(), b.split()) {
        (TArg::F32(a), TArg::F32(b)) if fmod => Tensor::F32(bin(a, b, &out, n, |x, y| x % y)),
        (TArg::F64(a), TArg::F64(b)) if fmod => Tensor::F64(bin(a, b, &out, n, |x, y| x % y)),
        (TArg::F32(_), _) | (TArg::F64(_), _) => {
            bail!(
                op,
                "fmod=0 is only defined for integers; floats need fmod=1"
            )
        }
        (TArg::I64(a), TArg::I64(b)) => {
            if b.arr().iter().any(|&y| y == 0) {
                bail!(op, "integer division by zero");
            }
            Tensor::I64(if fmod {
                bin(a, b, &out, n, i64::wrapping_rem)
            } else {
                bin(a, b, &out, n, |x, y| {
                    let r = x.wrapping_rem(y);
                    if r != 0 && ((r < 0) != (y < 0)) {
                        r.wrapping_add(y)
                    } else {
                        r
                    }
                })
            })
        }
        _ => bail!(op, "expects numbers, got bool"),
    })
}
