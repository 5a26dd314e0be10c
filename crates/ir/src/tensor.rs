//! Dense tensors: f32, f64, i64 and bool, row-major, backed by `ndarray`. Booleans exist for
//! masks and comparisons (`Equal`, `Where`); arithmetic is on the numeric types.

use ndarray::{ArrayD, IxDyn};
use std::fmt;

/// Element type of a tensor or value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F64,
    I64,
    Bool,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::Bool => 1,
        }
    }
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::Bool => "bool",
        })
    }
}

/// A dense tensor. Scalars are rank-0 arrays.
#[derive(Clone, Debug, PartialEq)]
pub enum Tensor {
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    I64(ArrayD<i64>),
    Bool(ArrayD<bool>),
}

impl Tensor {
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::F64(_) => DType::F64,
            Tensor::I64(_) => DType::I64,
            Tensor::Bool(_) => DType::Bool,
        }
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::F64(a) => a.shape(),
            Tensor::I64(a) => a.shape(),
            Tensor::Bool(a) => a.shape(),
        }
    }

    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds an f32 tensor; `data.len()` must equal the product of `shape`.
    pub fn from_f32(shape: &[usize], data: Vec<f32>) -> Option<Tensor> {
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .ok()
            .map(Tensor::F32)
    }
    pub fn from_f64(shape: &[usize], data: Vec<f64>) -> Option<Tensor> {
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .ok()
            .map(Tensor::F64)
    }
    pub fn from_i64(shape: &[usize], data: Vec<i64>) -> Option<Tensor> {
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .ok()
            .map(Tensor::I64)
    }
    pub fn from_bool(shape: &[usize], data: Vec<bool>) -> Option<Tensor> {
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .ok()
            .map(Tensor::Bool)
    }
    pub fn scalar_f32(v: f32) -> Tensor {
        Tensor::F32(ArrayD::from_elem(IxDyn(&[]), v))
    }
    pub fn scalar_i64(v: i64) -> Tensor {
        Tensor::I64(ArrayD::from_elem(IxDyn(&[]), v))
    }
    /// A scalar of `dtype` holding `x` (`as`-converted; bool: `x != 0`).
    pub fn scalar_of(dtype: DType, x: f64) -> Tensor {
        let s = IxDyn(&[]);
        match dtype {
            DType::F32 => Tensor::F32(ArrayD::from_elem(s, x as f32)),
            DType::F64 => Tensor::F64(ArrayD::from_elem(s, x)),
            DType::I64 => Tensor::I64(ArrayD::from_elem(s, x as i64)),
            DType::Bool => Tensor::Bool(ArrayD::from_elem(s, x != 0.0)),
        }
    }

    /// All elements as f64 (booleans as 0 and 1), in row-major order.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            Tensor::F32(a) => a.iter().map(|&x| x as f64).collect(),
            Tensor::F64(a) => a.iter().copied().collect(),
            Tensor::I64(a) => a.iter().map(|&x| x as f64).collect(),
            Tensor::Bool(a) => a.iter().map(|&x| x as u8 as f64).collect(),
        }
    }

    /// All elements as i64 (floats truncated toward zero, booleans as 0 and 1), in row-major
    /// order.
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match self {
            Tensor::F32(a) => a.iter().map(|&x| x as i64).collect(),
            Tensor::F64(a) => a.iter().map(|&x| x as i64).collect(),
            Tensor::I64(a) => a.iter().copied().collect(),
            Tensor::Bool(a) => a.iter().map(|&x| x as i64).collect(),
        }
    }

    /// Converts to another element type: `as` casts between numbers, `x != 0` to bool (NaN is
    /// true, as in ONNX), 0/1 from bool.
    pub fn cast(&self, to: DType) -> Tensor {
        match (self, to) {
            (Tensor::Bool(a), DType::Bool) => Tensor::Bool(a.clone()),
            (Tensor::Bool(a), DType::F32) => Tensor::F32(a.mapv(|x| x as u8 as f32)),
            (Tensor::Bool(a), DType::F64) => Tensor::F64(a.mapv(|x| x as u8 as f64)),
            (Tensor::Bool(a), DType::I64) => Tensor::I64(a.mapv(|x| x as i64)),
            (Tensor::F32(a), DType::Bool) => Tensor::Bool(a.mapv(|x| x != 0.0)),
            (Tensor::F64(a), DType::Bool) => Tensor::Bool(a.mapv(|x| x != 0.0)),
            (Tensor::I64(a), DType::Bool) => Tensor::Bool(a.mapv(|x| x != 0)),
            (Tensor::F32(a), DType::F32) => Tensor::F32(a.clone()),
            (Tensor::F32(a), DType::F64) => Tensor::F64(a.mapv(|x| x as f64)),
            (Tensor::F32(a), DType::I64) => Tensor::I64(a.mapv(|x| x as i64)),
            (Tensor::F64(a), DType::F32) => Tensor::F32(a.mapv(|x| x as f32)),
            (Tensor::F64(a), DType::F64) => Tensor::F64(a.clone()),
            (Tensor::F64(a), DType::I64) => Tensor::I64(a.mapv(|x| x as i64)),
            (Tensor::I64(a), DType::F32) => Tensor::F32(a.mapv(|x| x as f32)),
            (Tensor::I64(a), DType::F64) => Tensor::F64(a.mapv(|x| x as f64)),
            (Tensor::I64(a), DType::I64) => Tensor::I64(a.clone()),
        }
    }

    /// Rows `start..end` of a batch-first tensor (axis 0).
    pub fn slice_batch(&self, start: usize, end: usize) -> Tensor {
        use ndarray::Axis;
        let r = (start..end).into();
        match self {
            Tensor::F32(a) => Tensor::F32(a.slice_axis(Axis(0), r).to_owned()),
            Tensor::F64(a) => Tensor::F64(a.slice_axis(Axis(0), r).to_owned()),
            Tensor::I64(a) => Tensor::I64(a.slice_axis(Axis(0), r).to_owned()),
            Tensor::Bool(a) => Tensor::Bool(a.slice_axis(Axis(0), r).to_owned()),
        }
    }

    /// Concatenates batch-first tensors along axis 0. `None` when `parts` is empty or the
    /// parts disagree in dtype or in their non-batch dimensions.
    pub fn concat_batch(parts: &[Tensor]) -> Option<Tensor> {
        use ndarray::{concatenate, Axis};
        fn views<T: Clone>(
            parts: &[Tensor],
            get: impl Fn(&Tensor) -> Option<&ArrayD<T>>,
        ) -> Option<ArrayD<T>> {
            let v: Option<Vec<_>> = parts.iter().map(|t| get(t).map(|a| a.view())).collect();
            concatenate(Axis(0), &v?).ok()
        }
        Some(match parts.first()? {
            Tensor::F32(_) => Tensor::F32(views(parts, |t| match t {
                Tensor::F32(a) => Some(a),
                _ => None,
            })?),
            Tensor::F64(_) => Tensor::F64(views(parts, |t| match t {
                Tensor::F64(a) => Some(a),
                _ => None,
            })?),
            Tensor::I64(_) => Tensor::I64(views(parts, |t| match t {
                Tensor::I64(a) => Some(a),
                _ => None,
            })?),
            Tensor::Bool(_) => Tensor::Bool(views(parts, |t| match t {
                Tensor::Bool(a) => Some(a),
                _ => None,
            })?),
        })
    }

    /// A short, stable digest used by the printer: dtype, shape and summary statistics.
    pub fn summary(&self) -> String {
        let v = self.to_f64_vec();
        let shape = crate::print::fmt_shape_usize(self.shape());
        if v.len() <= 8 {
            let items: Vec<String> = v.iter().map(|x| fmt_num(*x)).collect();
            return format!("{}{} [{}]", self.dtype(), shape, items.join(", "));
        }
        let mut min = f64::INFINITY;
        let mut max = f64::NEG_INFINITY;
        let mut sum = 0.0;
        for &x in &v {
            min = min.min(x);
            max = max.max(x);
            sum += x;
        }
        let mean = sum / v.len() as f64;
        format!(
            "{}{} {{min={}, max={}, mean={}}}",
            self.dtype(),
            shape,
            fmt_num(min),
            fmt_num(max),
            fmt_num(mean)
        )
    }
}

/// Formats a number with 5 significant digits, stable across platforms.
pub fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let s = format!("{:.4e}", x);
    // Normalise "1.2340e0" into "1.234"
    if let Some((m, e)) = s.split_once('e') {
        let e: i32 = e.parse().unwrap_or(0);
        if (-4..6).contains(&e) {
            let digits = (4 - e).max(0) as usize;
            let t = format!("{:.*}", digits, x);
            let t = if t.contains('.') {
                t.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                t
            };
            return t;
        }
        let m = m.trim_end_matches('0').trim_end_matches('.');
        return format!("{}e{}", m, e);
    }
    s
}
