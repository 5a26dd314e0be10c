//! Gemm and MatMul.

use super::elementwise::bcast_strides;
use super::{
    arr, checked_numel, data_of, dispatch_num, gemm, same_dtype, strides_of, Arg, Elem, Float, Mat,
};
use crate::error::{bail, InterpError};
#[allow(unused_imports)]
use num_traits::{Float as _, One as _, Zero as _};
use pannc_ir::{DType, Op, Tensor};

/// Output shape of Gemm, validating operand shapes.
pub(crate) fn gemm_shape(
    op: &Op,
    ta: bool,
    tb: bool,
    a: &[usize],
    b: &[usize],
    c: Option<&[usize]>,
) -> Result<[usize; 3], InterpError> {
    if a.len() != 2 || b.len() != 2 {
        bail!(op, "A and B must be 2-D, got {a:?} and {b:?}");
    }
    let (m, k) = if ta { (a[1], a[0]) } else { (a[0], a[1]) };
    let (k2, n) = if tb { (b[1], b[0]) } else { (b[0], b[1]) };
    if k != k2 {
        bail!(op, "inner dimensions differ: A' is {m}×{k}, B' is {k2}×{n}");
    }
    if let Some(c) = c {
        let ok = c.len() <= 2
            && c.iter()
                .rev()
                .zip([n, m])
                .all(|(&d, want)| d == want || d == 1);
        if !ok {
            bail!(op, "C of shape {c:?} does not broadcast to [{m}, {n}]");
        }
    }
    checked_numel(op, &[m, n])?;
    Ok([m, k, n])
}

pub(crate) fn gemm_op(
    op: &Op,
    alpha: f32,
    beta: f32,
    ta: bool,
    tb: bool,
    args: &[Arg<'_>],
) -> Result<Tensor, InterpError> {
    let ts: Vec<&Tensor> = args.iter().map(|a| a.t()).collect();
    let dt = same_dtype(op, &ts)?;
    let (ash, bsh) = (ts[0].shape(), ts[1].shape());
    let [m, k, n] = gemm_shape(op, ta, tb, ash, bsh, ts.get(2).map(|c| c.shape()))?;
    let (am, bm) = ((ta, ash[1]), (tb, bsh[1]));
    let y = match dt {
        DType::F32 => Tensor::F32(arr(
            &[m, n],
            gemm_float::<f32>(op, m, k, n, alpha, beta, &ts, am, bm)?,
        )),
        DType::F64 => Tensor::F64(arr(
            &[m, n],
            gemm_float::<f64>(op, m, k, n, alpha, beta, &ts, am, bm)?,
        )),
        DType::I64 => {
            let (a, b) = (data_of::<i64>(op, ts[0])?, data_of::<i64>(op, ts[1])?);
            let (al, be) = (alpha as i64, beta as i64);
            let (a, b) = (mat(&a, am), mat(&b, bm));
            let mut y = vec![0i64; m * n];
            naive(m, k, n, a, b, &mut y);
            y.iter_mut().for_each(|v| *v = v.wrapping_mul(al));
            if let Some(c) = ts.get(2) {
                add_c(&mut y, &data_of::<i64>(op, c)?, c.shape(), m, n, |y, c| {
                    y.wrapping_add(be.wrapping_mul(c))
                });
            }
            Tensor::I64(arr(&[m, n], y))
        }
        DType::Bool => bail!(op, "expects numbers, got bool"),
    };
    Ok(y)
}

#[allow(clippy::too_many_arguments)]
fn gemm_float<T: Float>(
    op: &Op,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    beta: f32,
    ts: &[&Tensor],
    am: (bool, usize),
    bm: (bool, usize),
) -> Result<Vec<T>, InterpError> {
    let (a, b) = (data_of::<T>(op, ts[0])?, data_of::<T>(op, ts[1])?);
    let mut y = vec![T::zero(); m * n];
    gemm(
        m,
        k,
        n,
        T::of32(alpha),
        mat(&a, am),
        mat(&b, bm),
        T::zero(),
        &mut y,
    );
    if let Some(c) = ts.get(2) {
        let be = T::of32(beta);
        add_c(&mut y, &data_of::<T>(op, c)?, c.shape(), m, n, |y, c| {
            y + be * c
        });
    }
    Ok(y)
}

/// A row-major 2-D operand of `cols` columns, read transposed when `t.0`.
fn mat<T>(data: &[T], (t, cols): (bool, usize)) -> Mat<'_, T> {
    if t {
        Mat {
            data,
            rs: 1,
            cs: cols,
        }
    } else {
        Mat {
            data,
            rs: cols,
            cs: 1,
        }
    }
}

/// `y[i, j] = f(y[i, j], c[i, j])` with `c` broadcast to `m×n`.
fn add_c<T: Copy>(y: &mut [T], c: &[T], cs: &[usize], m: usize, n: usize, f: impl Fn(T, T) -> T) {
    let st = bcast_strides(cs, &[m, n]);
    for i in 0..m {
        for j in 0..n {
            let v = &mut y[i * n + j];
            *v = f(*v, c[i * st[0] + j * st[1]]);
        }
    }
}

/// Naive i64 matrix product (wrapping).
fn naive(m: usize, k: usize, n: usize, a: Mat<'_, i64>, b: Mat<'_, i64>, y: &mut [i64]) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0i64;
            for l in 0..k {
                s = s.wrapping_add(
                    a.data[i * a.rs + l * a.cs].wrapping_mul(b.data[l * b.rs + j * b.cs]),
                );
            }
            y[i * n + j] = s;
        }
    }
}

struct Plan {
    batch: Vec<usize>,
    a_bst: Vec<usize>,
    b_bst: Vec<usize>,
    m: usize,
    k: usize,
    n: usize,
    out: Vec<usize>,
}

fn matmul_plan(op: &Op, a: &[usize], b: &[usize]) -> Result<Plan, InterpError> {
    if a.is_empty() || b.is_empty() {
        bail!(op, "operands must have rank ≥ 1, got {a:?} and {b:?}");
    }
    let a2: Vec<usize> = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2: Vec<usize> = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    let (ra, rb) = (a2.len(), b2.len());
    let (m, k) = (a2[ra - 2], a2[ra - 1]);
    let (k2, n) = (b2[rb - 2], b2[rb - 1]);
    if k != k2 {
        bail!(op, "inner dimensions differ: {a:?} × {b:?}");
    }
    let (ab, bb) = (&a2[..ra - 2], &b2[..rb - 2]);
    let batch = super::elementwise::broadcast_shapes(op, ab, bb)?;
    // Batch strides in units of whole matrices.
    let a_bst = bcast_strides(ab, &batch);
    let b_bst = bcast_strides(bb, &batch);
    let mut out = batch.clone();
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    checked_numel(op, &out)?;
    Ok(Plan {
        batch,
        a_bst,
        b_bst,
        m,
        k,
        n,
        out,
    })
}

pub(crate) fn matmul(op: &Op, a: &Tensor, b: &Tensor) -> Result<Tensor, InterpError> {
    let dt = same_dtype(op, &[a, b])?;
    let p = matmul_plan(op, a.shape(), b.shape())?;
    dispatch_num!(op, dt, T => {
        let (ad, bd) = (data_of::<T>(op, a)?, data_of::<T>(op, b)?);
        let y = matmul_impl::<T>(&p, &ad, &bd, b.shape().len() <= 2);
        Ok(T::wrap(arr(&p.out, y)))
    })
}

trait MatElem: Elem {
    fn mm(m: usize, k: usize, n: usize, a: Mat<'_, Self>, b: Mat<'_, Self>, y: &mut [Self]);
}
impl MatElem for f32 {
    fn mm(m: usize, k: usize, n: usize, a: Mat<'_, f32>, b: Mat<'_, f32>, y: &mut [f32]) {
        gemm(m, k, n, 1.0, a, b, 0.0, y)
    }
}
impl MatElem for f64 {
    fn mm(m: usize, k: usize, n: usize, a: Mat<'_, f64>, b: Mat<'_, f64>, y: &mut [f64]) {
        gemm(m, k, n, 1.0, a, b, 0.0, y)
    }
}
impl MatElem for i64 {
    fn mm(m: usize, k: usize, n: usize, a: Mat<'_, i64>, b: Mat<'_, i64>, y: &mut [i64]) {
        naive(m, k, n, a, b, y)
    }
}

fn matmul_impl<T: MatElem>(p: &Plan, a: &[T], b: &[T], b_is_matrix: bool) -> Vec<T> {
    let (m, k, n) = (p.m, p.k, p.n);
    let nb: usize = p.batch.iter().product();
    let mut y = vec![T::default(); nb * m * n];
    if y.is_empty() {
        return y;
    }
    if b_is_matrix {
        // Fold A's batch axes into its rows: one product of (batch·m)×k by k×n.
        let rows = a.len() / k.max(1);
        let rows = if k == 0 { nb * m } else { rows };
        T::mm(
            rows,
            k,
            n,
            Mat {
                data: a,
                rs: k,
                cs: 1,
            },
            Mat {
                data: b,
                rs: n,
                cs: 1,
            },
            &mut y[..rows * n],
        );
        return y;
    }
    let bst = strides_of(&p.batch);
    for bi in 0..nb {
        let (mut ao, mut bo) = (0, 0);
        for (ax, &s) in bst.iter().enumerate() {
            let idx = (bi / s) % p.batch[ax];
            ao += idx * p.a_bst[ax];
            bo += idx * p.b_bst[ax];
        }
        let ad = &a[ao * m * k..(ao + 1) * m * k];
        let bd = &b[bo * k * n..(bo + 1) * k * n];
        T::mm(
            m,
            k,
            n,
            Mat {
                data: ad,
                rs: k,
                cs: 1,
            },
            Mat {
                data: bd,
                rs: n,
                cs: 1,
            },
            &mut y[bi * m * n..(bi + 1) * m * n],
        );
    }
    y
}
