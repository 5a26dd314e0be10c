//! Single-op evaluation: [`eval_op`] and the kernels behind it.
//!
//! Kernels work on contiguous row-major slices, never through `IxDyn` indexing in inner
//! loops. Inputs handed over by value (the interpreter's last use of a tensor) are reused
//! in place where the op allows it.

mod conv;
mod direct;
mod elementwise;
mod index;
mod linalg;
mod logic;
mod norm;
mod pool;
mod reduce;
mod shape_ops;
pub(crate) mod window;

pub(crate) use conv::{conv, conv_shapes, Epilogue};
pub(crate) use index::{gather_nd_shape, slice_axis, slice_params, split_sizes};
pub(crate) use norm::reduce_axes;
pub(crate) use pool::pool_shapes;
pub(crate) use shape_ops::{
    gather_shape, pad_amounts, pad_shape, reshape_shape, shape_range, transpose_perm,
    unsqueeze_axes, unsqueeze_shape,
};

use crate::error::{bail, op_err, InterpError};
use ndarray::{ArrayD, IxDyn};
use pannc_ir::{DType, Op, Tensor};
use std::borrow::Cow;

/// Largest number of elements any op may allocate for one tensor (2^30: 4 GiB of f32).
/// Larger requests are reported as errors instead of being attempted.
pub const MAX_ELEMENTS: usize = 1 << 30;

/// Evaluates one op on its inputs and returns its outputs (one per ONNX output the op
/// defines: `num_outputs` for Split, Y, Mean and InvStdDev for LayerNormalization; MaxPool
/// returns its values only: see the interpreter for the indices output). Opaque nodes are
/// refused.
/// Inputs must all be present in the op's input order; dtypes must already agree
/// (no implicit promotion). Errors name the op and the problem, never panic.
pub fn eval_op(op: &Op, inputs: &[&Tensor]) -> Result<Vec<Tensor>, InterpError> {
    eval_args(op, inputs.iter().map(|t| Arg::Ref(t)).collect(), 1)
}

/// An op input: borrowed, or owned (so the kernel may reuse its buffer).
pub(crate) enum Arg<'a> {
    Own(Tensor),
    Ref(&'a Tensor),
}

impl<'a> Arg<'a> {
    pub(crate) fn t(&self) -> &Tensor {
        match self {
            Arg::Own(t) => t,
            Arg::Ref(t) => t,
        }
    }
    pub(crate) fn into_owned(self) -> Tensor {
        match self {
            Arg::Own(t) => t,
            Arg::Ref(t) => t.clone(),
        }
    }
    pub(crate) fn split(self) -> TArg<'a> {
        match self {
            Arg::Own(Tensor::F32(a)) => TArg::F32(AA::Own(a)),
            Arg::Own(Tensor::F64(a)) => TArg::F64(AA::Own(a)),
            Arg::Own(Tensor::I64(a)) => TArg::I64(AA::Own(a)),
            Arg::Own(Tensor::Bool(a)) => TArg::Bool(AA::Own(a)),
            Arg::Ref(Tensor::F32(a)) => TArg::F32(AA::Ref(a)),
            Arg::Ref(Tensor::F64(a)) => TArg::F64(AA::Ref(a)),
            Arg::Ref(Tensor::I64(a)) => TArg::I64(AA::Ref(a)),
            Arg::Ref(Tensor::Bool(a)) => TArg::Bool(AA::Ref(a)),
        }
    }
}

/// An array input of a known element type, owned or borrowed.
pub(crate) enum AA<'a, T> {
    Own(ArrayD<T>),
    Ref(&'a ArrayD<T>),
}

impl<T: Clone> AA<'_, T> {
    pub(crate) fn arr(&self) -> &ArrayD<T> {
        match self {
            AA::Own(a) => a,
            AA::Ref(a) => a,
        }
    }
    pub(crate) fn shape(&self) -> &[usize] {
        self.arr().shape()
    }
    /// Contiguous row-major data.
    pub(crate) fn data(&self) -> Cow<'_, [T]> {
        slice_of(self.arr())
    }
    /// Owned contiguous row-major data (reusing the buffer when owned and contiguous).
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            AA::Own(a) => vec_of(a),
            AA::Ref(a) => slice_of(a).into_owned(),
        }
    }
    /// Whether this is an owned, contiguous array whose buffer can be reused.
    pub(crate) fn reusable(&self) -> bool {
        matches!(self, AA::Own(a) if a.is_standard_layout())
    }
}

/// A typed input.
pub(crate) enum TArg<'a> {
    F32(AA<'a, f32>),
    F64(AA<'a, f64>),
    I64(AA<'a, i64>),
    Bool(AA<'a, bool>),
}

/// Row-major contiguous view of an array (copying only when the layout is not standard).
pub(crate) fn slice_of<T: Clone>(a: &ArrayD<T>) -> Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().cloned().collect()),
    }
}

/// Row-major contiguous data of an owned array, reusing its buffer when possible.
pub(crate) fn vec_of<T: Clone>(a: ArrayD<T>) -> Vec<T> {
    if a.is_standard_layout() {
        let len = a.len();
        let (v, off) = a.into_raw_vec_and_offset();
        if off.unwrap_or(0) == 0 && v.len() == len {
            return v;
        }
        return v[off.unwrap_or(0)..off.unwrap_or(0) + len].to_vec();
    }
    a.iter().cloned().collect()
}

/// Builds an array; `data.len()` must equal the product of `shape` (a kernel invariant).
pub(crate) fn arr<T>(shape: &[usize], data: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("kernel produced data of the wrong length")
}

/// The number of elements of `shape`, or an error on overflow or above [`MAX_ELEMENTS`].
pub(crate) fn checked_numel(op: &Op, shape: &[usize]) -> Result<usize, InterpError> {
    let mut n: usize = 1;
    // The product of the non-zero dimensions too: an empty tensor of shape [0, 2^62, 4] has
    // no elements, but its strides overflow (ndarray refuses it).
    let mut nonzero: usize = 1;
    for &d in shape {
        n = n
            .checked_mul(d)
            .ok_or_else(|| op_err(op, format!("shape {shape:?} overflows")))?;
        nonzero = nonzero
            .checked_mul(d.max(1))
            .filter(|&p| p <= isize::MAX as usize)
            .ok_or_else(|| op_err(op, format!("shape {shape:?} overflows")))?;
    }
    if n > MAX_ELEMENTS {
        bail!(
            op,
            "output shape {shape:?} has {n} elements, above the limit of {MAX_ELEMENTS}"
        );
    }
    Ok(n)
}

/// Row-major strides of `shape`.
pub(crate) fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Normalizes a possibly negative axis into `[0, rank)`.
pub(crate) fn norm_axis(op: &Op, axis: i64, rank: usize) -> Result<usize, InterpError> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        bail!(op, "axis {axis} is out of range for rank {rank}");
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// Element types a tensor can hold.
pub(crate) trait Elem:
    Copy + Default + PartialOrd + Send + Sync + std::fmt::Debug + 'static
{
    fn get(t: &Tensor) -> Option<&ArrayD<Self>>;
    fn wrap(a: ArrayD<Self>) -> Tensor;
}

macro_rules! impl_elem {
    ($t:ty, $v:ident) => {
        impl Elem for $t {
            fn get(t: &Tensor) -> Option<&ArrayD<Self>> {
                match t {
                    Tensor::$v(a) => Some(a),
                    _ => None,
                }
            }
            fn wrap(a: ArrayD<Self>) -> Tensor {
                Tensor::$v(a)
            }
        }
    };
}
impl_elem!(f32, F32);
impl_elem!(f64, F64);
impl_elem!(i64, I64);
impl_elem!(bool, Bool);

/// Typed contiguous data of a tensor that must have element type `T`.
pub(crate) fn data_of<'t, T: Elem>(op: &Op, t: &'t Tensor) -> Result<Cow<'t, [T]>, InterpError> {
    match T::get(t) {
        Some(a) => Ok(slice_of(a)),
        None => Err(op_err(op, format!("unexpected input dtype {}", t.dtype()))),
    }
}

/// Runs a generic body with `T` bound to the element type named by a [`DType`] (any of
/// them: for ops that move data without computing on it).
macro_rules! dispatch {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            pannc_ir::DType::F32 => {
                type $T = f32;
                $body
            }
            pannc_ir::DType::F64 => {
                type $T = f64;
                $body
            }
            pannc_ir::DType::I64 => {
                type $T = i64;
                $body
            }
            pannc_ir::DType::Bool => {
                type $T = bool;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// Like [`dispatch`] for the numeric types; bool is an error.
macro_rules! dispatch_num {
    ($op:expr, $dt:expr, $T:ident => $body:expr) => {
        match $dt {
            pannc_ir::DType::F32 => {
                type $T = f32;
                $body
            }
            pannc_ir::DType::F64 => {
                type $T = f64;
                $body
            }
            pannc_ir::DType::I64 => {
                type $T = i64;
                $body
            }
            pannc_ir::DType::Bool => {
                return Err($crate::error::op_err($op, "expects numbers, got bool"))
            }
        }
    };
}
pub(crate) use dispatch_num;

/// Like [`dispatch`] for float types only; i64 is an error.
macro_rules! dispatch_float {
    ($op:expr, $dt:expr, $T:ident => $body:expr) => {
        match $dt {
            pannc_ir::DType::F32 => {
                type $T = f32;
                $body
            }
            pannc_ir::DType::F64 => {
                type $T = f64;
                $body
            }
            d @ (pannc_ir::DType::I64 | pannc_ir::DType::Bool) => {
                return Err($crate::error::op_err(
                    $op,
                    format!("expects float tensors, got {d}"),
                ))
            }
        }
    };
}
pub(crate) use dispatch_float;

/// Floating-point element types the kernels are generic over.
pub(crate) trait Float:
    num_traits::Float
    + num_traits::NumAssign
    + Elem
    + Send
    + Sync
    + std::fmt::Debug
    + std::iter::Sum
    + 'static
{
    fn of(x: f64) -> Self;
    fn of32(x: f32) -> Self;
    fn erf(self) -> Self;
    /// The data as f32, when `Self` is f32 (for kernels that exist only for f32).
    fn f32s(v: &[Self]) -> Option<&[f32]>;
    fn from_f32s(v: Vec<f32>) -> Option<Vec<Self>>;
    /// `C ← alpha·A·B + beta·C` with arbitrary strides (matrixmultiply).
    ///
    /// # Safety
    /// The pointers and strides must describe valid `m×k`, `k×n` and `m×n` matrices.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl Float for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn of32(x: f32) -> Self {
        x
    }
    fn erf(self) -> Self {
        libm::erff(self)
    }
    fn f32s(v: &[f32]) -> Option<&[f32]> {
        Some(v)
    }
    fn from_f32s(v: Vec<f32>) -> Option<Vec<f32>> {
        Some(v)
    }
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}

impl Float for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn of32(x: f32) -> Self {
        x as f64
    }
    fn erf(self) -> Self {
        libm::erf(self)
    }
    fn f32s(_: &[f64]) -> Option<&[f32]> {
        None
    }
    fn from_f32s(_: Vec<f32>) -> Option<Vec<f64>> {
        None
    }
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}

/// A strided matrix operand: `data[off + i*rs + j*cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

#[allow(clippy::too_many_arguments)]
/// `c[m×n] (row-major, contiguous) ← alpha·a·b + beta·c`. Bounds are checked here, so
/// the call into matrixmultiply is sound. Each output element is computed by the same
/// arithmetic wherever it lies in the matrix, so results do not depend on `m`.
pub(crate) fn gemm<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: Mat<T>,
    b: Mat<T>,
    beta: T,
    c: &mut [T],
) {
    assert!(c.len() >= m * n, "gemm: C too small");
    if m == 0 || n == 0 {
        return;
    }
    if k > 0 {
        assert!(
            (m - 1) * a.rs + (k - 1) * a.cs < a.data.len(),
            "gemm: A too small"
        );
        assert!(
            (k - 1) * b.rs + (n - 1) * b.cs < b.data.len(),
            "gemm: B too small"
        );
    }
    // SAFETY: the asserts above bound every index matrixmultiply reads or writes.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}

/// Applies the same expression to whichever array type a [`TArg`] holds.
macro_rules! each_targ {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::eval::TArg::F32($a) => pannc_ir::Tensor::F32($body),
            $crate::eval::TArg::F64($a) => pannc_ir::Tensor::F64($body),
            $crate::eval::TArg::I64($a) => pannc_ir::Tensor::I64($body),
            $crate::eval::TArg::Bool($a) => pannc_ir::Tensor::Bool($body),
        }
    };
}
pub(crate) use each_targ;

/// Applies a float-generic expression (with `T` the element type) to a float [`TArg`];
/// i64 is an error.
macro_rules! each_float {
    ($op:expr, $t:expr, $a:ident, $T:ident => $body:expr) => {
        match $t {
            $crate::eval::TArg::F32($a) => {
                #[allow(dead_code)]
                type $T = f32;
                pannc_ir::Tensor::F32($body)
            }
            $crate::eval::TArg::F64($a) => {
                #[allow(dead_code)]
                type $T = f64;
                pannc_ir::Tensor::F64($body)
            }
            $crate::eval::TArg::I64(_) => {
                return Err($crate::error::op_err(
                    $op,
                    "expects a float tensor, got i64",
                ))
            }
            $crate::eval::TArg::Bool(_) => {
                return Err($crate::error::op_err(
                    $op,
                    "expects a float tensor, got bool",
                ))
            }
        }
    };
}
pub(crate) use each_float;

fn check_arity(op: &Op, n: usize) -> Result<(), InterpError> {
    let (lo, hi) = op.input_arity();
    if n < lo || n > hi {
        let want = if lo == hi {
            lo.to_string()
        } else if hi == usize::MAX {
            format!("at least {lo}")
        } else {
            format!("{lo} to {hi}")
        };
        bail!(op, "takes {want} inputs, got {n}");
    }
    Ok(())
}

/// Checks that all float inputs among `ts` share one dtype.
pub(crate) fn same_dtype(op: &Op, ts: &[&Tensor]) -> Result<DType, InterpError> {
    let d = ts[0].dtype();
    for t in &ts[1..] {
        if t.dtype() != d {
            bail!(op, "mixed input dtypes {d} and {}", t.dtype());
        }
    }
    Ok(d)
}

/// Evaluates `op`, producing `n_out` outputs where the op can make more than one
/// (MaxPool's indices).
pub(crate) fn eval_args(
    op: &Op,
    mut args: Vec<Arg<'_>>,
    n_out: usize,
) -> Result<Vec<Tensor>, InterpError> {
    check_arity(op, args.len())?;
    let one = |t: Tensor| Ok(vec![t]);
    match op {
        Op::Constant(t) => one(t.clone()),
        Op::Conv { window, group } => one(conv::conv(
            op,
            window,
            *group,
            &args,
            &conv::Epilogue::default(),
        )?),
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => one(linalg::gemm_op(
            op, *alpha, *beta, *trans_a, *trans_b, &args,
        )?),
        Op::MatMul => one(linalg::matmul(op, args[0].t(), args[1].t())?),
        Op::Add | Op::Sub | Op::Mul | Op::Div => {
            let b = args.pop().expect("arity");
            let a = args.pop().expect("arity");
            one(elementwise::binary(op, a, b)?)
        }
        Op::Relu
        | Op::LeakyRelu { .. }
        | Op::Sigmoid
        | Op::Tanh
        | Op::Erf
        | Op::Gelu { .. }
        | Op::Silu
        | Op::Poly(_)
        | Op::Identity
        | Op::Dropout
        | Op::Clip { .. }
        | Op::HardSigmoid { .. }
        | Op::HardSwish
        | Op::Neg
        | Op::Abs
        | Op::Sqrt
        | Op::Reciprocal
        | Op::Exp
        | Op::Log
        | Op::Floor
        | Op::Ceil => {
            let rest: Vec<&Tensor> = args[1..].iter().map(|a| a.t()).collect();
            let bounds = elementwise::clip_bounds(op, &rest)?;
            let x = args.swap_remove(0);
            one(elementwise::unary(op, x, bounds)?)
        }
        Op::BatchNormalization { epsilon } => {
            let rest: Vec<&Tensor> = args[1..].iter().map(|a| a.t()).collect();
            let rest: Vec<Tensor> = rest.into_iter().cloned().collect();
            let x = args.swap_remove(0);
            one(norm::batchnorm(op, *epsilon, x, &rest)?)
        }
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            one(norm::softmax(op, *axis, args.swap_remove(0))?)
        }
        Op::Max | Op::Min => one(elementwise::max_min(op, args)?),
        Op::Size => one(Tensor::scalar_i64(
            i64::try_from(args[0].t().len()).map_err(|_| op_err(op, "size overflows i64"))?,
        )),
        Op::Lrn {
            alpha,
            beta,
            bias,
            size,
        } => one(norm::lrn(
            op,
            *alpha,
            *beta,
            *bias,
            *size,
            args.swap_remove(0),
        )?),
        Op::GlobalAveragePool => one(norm::global_average_pool(op, args[0].t())?),
        Op::ReduceMean {
            keepdims,
            noop_with_empty_axes,
        } => {
            let axes = if args.len() > 1 {
                Some(int_list(op, args[1].t(), "axes")?)
            } else {
                None
            };
            one(norm::reduce_mean(
                op,
                args.swap_remove(0),
                axes,
                *keepdims,
                *noop_with_empty_axes,
            )?)
        }
        Op::MaxPool { window } => pool::max_pool(op, window, args[0].t(), n_out >= 2),
        Op::AveragePool {
            window,
            count_include_pad,
        } => one(pool::average_pool(
            op,
            window,
            *count_include_pad,
            args[0].t(),
        )?),
        Op::Flatten { axis } => one(shape_ops::flatten(op, *axis, args.swap_remove(0))?),
        Op::Reshape { allowzero } => {
            let shape = int_list(op, args[1].t(), "shape")?;
            one(shape_ops::reshape(
                op,
                *allowzero,
                args.swap_remove(0),
                &shape,
            )?)
        }
        Op::Transpose { perm } => one(shape_ops::transpose(op, perm, args[0].t())?),
        Op::Concat { axis } => {
            let ts: Vec<&Tensor> = args.iter().map(|a| a.t()).collect();
            one(shape_ops::concat(op, *axis, &ts)?)
        }
        Op::Pad { mode } => {
            let ts: Vec<&Tensor> = args.iter().map(|a| a.t()).collect();
            one(shape_ops::pad(op, *mode, &ts)?)
        }
        Op::Squeeze => {
            let axes = if args.len() > 1 {
                Some(int_list(op, args[1].t(), "axes")?)
            } else {
                None
            };
            one(shape_ops::squeeze(op, args.swap_remove(0), axes)?)
        }
        Op::Unsqueeze => {
            let axes = int_list(op, args[1].t(), "axes")?;
            one(shape_ops::unsqueeze(op, args.swap_remove(0), &axes)?)
        }
        Op::Shape { start, end } => one(shape_ops::shape(args[0].t(), *start, *end)),
        Op::Gather { axis } => one(shape_ops::gather(op, *axis, args[0].t(), args[1].t())?),
        Op::Cast { to } => {
            let x = args.swap_remove(0);
            one(if x.t().dtype() == *to {
                x.into_owned()
            } else {
                x.t().cast(*to)
            })
        }
        Op::ConstantOfShape { value } => one(shape_ops::constant_of_shape(op, value, args[0].t())?),
        Op::Pow => {
            let y = args.pop().expect("arity");
            one(elementwise::pow(op, args.pop().expect("arity"), y)?)
        }
        Op::Mod { fmod } => {
            let b = args.pop().expect("arity");
            one(elementwise::modulo(
                op,
                *fmod,
                args.pop().expect("arity"),
                b,
            )?)
        }
        Op::Equal | Op::Less | Op::LessOrEqual | Op::Greater | Op::GreaterOrEqual => {
            one(logic::compare(op, args[0].t(), args[1].t())?)
        }
        Op::And | Op::Or | Op::Xor => one(logic::logic(op, args[0].t(), args[1].t())?),
        Op::Not => one(logic::not(op, args[0].t())?),
        Op::Where => one(logic::where_(op, args[0].t(), args[1].t(), args[2].t())?),
        Op::Expand => one(index::expand(op, args[0].t(), args[1].t())?),
        Op::Tile => one(index::tile(op, args[0].t(), args[1].t())?),
        Op::Slice => {
            let ts: Vec<&Tensor> = args.iter().map(|a| a.t()).collect();
            one(index::slice(op, &ts)?)
        }
        Op::Split { axis, num_outputs } => {
            let ts: Vec<&Tensor> = args.iter().map(|a| a.t()).collect();
            index::split(op, *axis, *num_outputs, &ts)
        }
        Op::GatherND { batch_dims } => {
            one(index::gather_nd(op, *batch_dims, args[0].t(), args[1].t())?)
        }
        Op::Range => {
            let ts: Vec<&Tensor> = args.iter().map(|a| a.t()).collect();
            one(index::range(op, &ts)?)
        }
        Op::ArgMax {
            axis,
            keepdims,
            select_last_index,
        }
        | Op::ArgMin {
            axis,
            keepdims,
            select_last_index,
        } => one(reduce::arg_extreme(
            op,
            *axis,
            *keepdims,
            *select_last_index,
            args[0].t(),
        )?),
        Op::ReduceSum {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceMax {
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceMin {
            keepdims,
            noop_with_empty_axes,
        } => {
            let axes = if args.len() > 1 {
                Some(int_list(op, args[1].t(), "axes")?)
            } else {
                None
            };
            one(reduce::reduce(
                op,
                args.swap_remove(0),
                axes,
                *keepdims,
                *noop_with_empty_axes,
            )?)
        }
        Op::LayerNormalization { axis, epsilon } => {
            let ts: Vec<&Tensor> = args.iter().map(|a| a.t()).collect();
            norm::layer_norm(op, *axis, *epsilon, &ts)
        }
        Op::Opaque(o) => bail!(
            op,
            "{} is kept from the model without interpretation; pannc cannot run it",
            o.qualified_name()
        ),
        // Ops added to the IR after this interpreter was written.
        #[allow(unreachable_patterns)]
        _ => bail!(op, "is not supported by the interpreter"),
    }
}

/// Reads a 0-D or 1-D i64 tensor (shapes, axes, pads) as a list.
pub(crate) fn int_list(op: &Op, t: &Tensor, what: &str) -> Result<Vec<i64>, InterpError> {
    match t {
        Tensor::I64(a) if a.ndim() <= 1 => Ok(a.iter().copied().collect()),
        Tensor::I64(a) => bail!(op, "{what} must be a 1-D tensor, got shape {:?}", a.shape()),
        other => bail!(op, "{what} must be i64, got {}", other.dtype()),
    }
}
