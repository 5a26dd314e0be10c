//! `TensorProto` ⇄ [`Tensor`], `TypeProto` ⇄ [`TensorType`], with every size checked before
//! anything is allocated.

use crate::error::OnnxError;
use crate::external;
use crate::limits::Limits;
use crate::pb;
use pannc_ir::{DType, Dim, Tensor, TensorType};

pub(crate) const FLOAT: i32 = 1;
pub(crate) const UINT8: i32 = 2;
pub(crate) const INT8: i32 = 3;
pub(crate) const UINT16: i32 = 4;
pub(crate) const INT16: i32 = 5;
pub(crate) const INT32: i32 = 6;
pub(crate) const INT64: i32 = 7;
pub(crate) const BOOL: i32 = 9;
pub(crate) const DOUBLE: i32 = 11;
pub(crate) const UINT32: i32 = 12;
pub(crate) const UINT64: i32 = 13;

/// The ONNX name of an element type code (`FLOAT`, `INT32`, ...).
pub(crate) fn dtype_name(code: i32) -> String {
    match pb::tensor_proto::DataType::try_from(code) {
        Ok(d) => d.as_str_name().to_string(),
        Err(_) => format!("unknown type code {code}"),
    }
}

pub(crate) fn dtype_from_code(code: i32) -> Option<DType> {
    match code {
        FLOAT => Some(DType::F32),
        DOUBLE => Some(DType::F64),
        INT64 => Some(DType::I64),
        BOOL => Some(DType::Bool),
        _ => None,
    }
}

pub(crate) fn code_of(d: DType) -> i32 {
    match d {
        DType::F32 => FLOAT,
        DType::F64 => DOUBLE,
        DType::I64 => INT64,
        DType::Bool => BOOL,
    }
}

/// Integer types that may be widened to i64 where a tensor is only used as index/shape data.
fn narrow_int_size(code: i32) -> Option<usize> {
    match code {
        INT8 | UINT8 => Some(1),
        INT16 | UINT16 => Some(2),
        INT32 | UINT32 => Some(4),
        UINT64 => Some(8),
        _ => None,
    }
}

/// The checked element count of `dims`.
pub(crate) fn element_count(tensor: &str, dims: &[i64]) -> Result<usize, OnnxError> {
    let mut n: usize = 1;
    for (index, &d) in dims.iter().enumerate() {
        if d < 0 {
            return Err(OnnxError::NegativeDim {
                tensor: tensor.to_string(),
                index,
                value: d,
            });
        }
        let d = usize::try_from(d).map_err(|_| OnnxError::ShapeOverflow {
            tensor: tensor.to_string(),
            dims: dims.to_vec(),
        })?;
        n = n.checked_mul(d).ok_or_else(|| OnnxError::ShapeOverflow {
            tensor: tensor.to_string(),
            dims: dims.to_vec(),
        })?;
    }
    Ok(n)
}

/// Bytes per element once a tensor of element type `code` is in memory (narrow integers are
/// widened to i64), or `None` for element types pannc never materialises.
pub(crate) fn materialized_elem_size(code: i32) -> Option<usize> {
    match (dtype_from_code(code), narrow_int_size(code)) {
        (Some(d), _) => Some(d.size()),
        (None, Some(_)) => Some(8),
        _ => None,
    }
}

fn data_size_err(
    t: &pb::TensorProto,
    name: &str,
    expected: usize,
    actual: usize,
    unit: &'static str,
) -> OnnxError {
    OnnxError::DataSize {
        tensor: name.to_string(),
        dims: t.dims.clone(),
        dtype: dtype_name(t.data_type()),
        expected,
        actual,
        unit,
    }
}

/// Reads `n` little-endian elements of `SIZE` bytes from `raw`, which must hold exactly that.
fn from_raw<T, const SIZE: usize>(
    t: &pb::TensorProto,
    name: &str,
    raw: &[u8],
    n: usize,
    conv: impl Fn([u8; SIZE]) -> T,
) -> Result<Vec<T>, OnnxError> {
    let expected = n * SIZE; // n * 8 <= Limits::max_tensor_bytes was checked
    if raw.len() != expected {
        return Err(data_size_err(t, name, expected, raw.len(), "bytes"));
    }
    Ok(raw
        .chunks_exact(SIZE)
        .map(|c| {
            let mut b = [0u8; SIZE];
            b.copy_from_slice(c);
            conv(b)
        })
        .collect())
}

fn typed<T: Copy>(
    t: &pb::TensorProto,
    name: &str,
    data: &[T],
    n: usize,
) -> Result<Vec<T>, OnnxError> {
    if data.len() != n {
        // Say "bytes" when there is no typed data at all, since raw_data is the usual carrier.
        if data.is_empty() {
            let elem = raw_elem_size(t.data_type()).unwrap_or(1);
            return Err(data_size_err(t, name, n * elem, 0, "bytes"));
        }
        return Err(data_size_err(t, name, n, data.len(), "elements"));
    }
    Ok(data.to_vec())
}

fn raw_elem_size(code: i32) -> Option<usize> {
    match code {
        FLOAT => Some(4),
        DOUBLE | INT64 => Some(8),
        BOOL => Some(1),
        c => narrow_int_size(c),
    }
}

fn has_raw(t: &pb::TensorProto) -> Option<&[u8]> {
    match &t.raw_data {
        Some(r) if !r.is_empty() => Some(r),
        _ => None,
    }
}

/// Converts a `TensorProto` to a [`Tensor`], reading external data from `ext`. `what` names
/// the tensor in errors when the proto has no name. With `widen_ints`, narrow integer types are converted to i64 (used for
/// tensors that only serve as shape or index data); otherwise they are an error. The rank and
/// the in-memory size are checked against `limits` before anything is allocated (the total
/// over the model is the caller's: see [`crate::limits::Budget`]).
pub(crate) fn tensor_from_proto(
    t: &pb::TensorProto,
    fallback_name: &str,
    widen_ints: bool,
    limits: &Limits,
    ext: &external::Source,
) -> Result<Tensor, OnnxError> {
    let name = match t.name.as_deref() {
        Some(n) if !n.is_empty() => n,
        _ => fallback_name,
    };
    if t.segment.is_some() {
        return Err(OnnxError::BadModel(format!(
            "tensor '{name}' is stored in segments, which pannc does not read"
        )));
    }
    let code = t.data_type();
    limits.check_rank(&format!("tensor '{name}'"), t.dims.len())?;
    let n = element_count(name, &t.dims)?;
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let elem = match (dtype_from_code(code), narrow_int_size(code)) {
        (Some(d), _) => d.size(),
        (None, Some(_)) if widen_ints => 8,
        _ => {
            return Err(OnnxError::UnsupportedDType {
                what: format!("tensor '{name}'"),
                dtype: dtype_name(code),
                extra: if widen_ints {
                    ", and narrow integers used as index data"
                } else {
                    ""
                },
            })
        }
    };
    limits.check_tensor(name, &t.dims, dtype_name(code), n as u128 * elem as u128)?;
    let ext_bytes;
    let raw = if external::is_external(t) {
        let size = raw_elem_size(code).ok_or_else(|| OnnxError::External {
            tensor: name.to_string(),
            msg: format!(
                "element type {} cannot be stored externally",
                dtype_name(code)
            ),
        })?;
        // n · size ≤ n · (in-memory size) ≤ the per-tensor limit, checked above.
        ext_bytes = external::read(ext, t, name, n * size)?;
        Some(ext_bytes.as_slice())
    } else {
        has_raw(t)
    };
    let bad_shape =
        |_| OnnxError::BadModel(format!("tensor '{name}': data does not fit its shape"));
    let tensor = match code {
        FLOAT => {
            let v = match raw {
                Some(r) => from_raw::<f32, 4>(t, name, r, n, f32::from_le_bytes)?,
                None => typed(t, name, &t.float_data, n)?,
            };
            Tensor::F32(ndarray::ArrayD::from_shape_vec(shape, v).map_err(bad_shape)?)
        }
        DOUBLE => {
            let v = match raw {
                Some(r) => from_raw::<f64, 8>(t, name, r, n, f64::from_le_bytes)?,
                None => typed(t, name, &t.double_data, n)?,
            };
            Tensor::F64(ndarray::ArrayD::from_shape_vec(shape, v).map_err(bad_shape)?)
        }
        INT64 => {
            let v = match raw {
                Some(r) => from_raw::<i64, 8>(t, name, r, n, i64::from_le_bytes)?,
                None => typed(t, name, &t.int64_data, n)?,
            };
            Tensor::I64(ndarray::ArrayD::from_shape_vec(shape, v).map_err(bad_shape)?)
        }
        BOOL => {
            let v = match raw {
                Some(r) => from_raw::<bool, 1>(t, name, r, n, |b| b[0] != 0)?,
                None => typed(t, name, &t.int32_data, n)?
                    .into_iter()
                    .map(|x| x != 0)
                    .collect(),
            };
            Tensor::Bool(ndarray::ArrayD::from_shape_vec(shape, v).map_err(bad_shape)?)
        }
        _ => {
            let v: Vec<i64> = match (code, raw) {
                (INT8, Some(r)) => {
                    from_raw::<i64, 1>(t, name, r, n, |b| i8::from_le_bytes(b) as i64)?
                }
                (UINT8, Some(r)) => {
                    from_raw::<i64, 1>(t, name, r, n, |b| u8::from_le_bytes(b) as i64)?
                }
                (INT16, Some(r)) => {
                    from_raw::<i64, 2>(t, name, r, n, |b| i16::from_le_bytes(b) as i64)?
                }
                (UINT16, Some(r)) => {
                    from_raw::<i64, 2>(t, name, r, n, |b| u16::from_le_bytes(b) as i64)?
                }
                (INT32, Some(r)) => {
                    from_raw::<i64, 4>(t, name, r, n, |b| i32::from_le_bytes(b) as i64)?
                }
                (UINT32, Some(r)) => {
                    from_raw::<i64, 4>(t, name, r, n, |b| u32::from_le_bytes(b) as i64)?
                }
                (UINT64, Some(r)) => {
                    let v = from_raw::<u64, 8>(t, name, r, n, u64::from_le_bytes)?;
                    to_i64(name, v)?
                }
                (UINT32 | UINT64, None) => to_i64(name, typed(t, name, &t.uint64_data, n)?)?,
                (_, None) => typed(t, name, &t.int32_data, n)?
                    .into_iter()
                    .map(i64::from)
                    .collect(),
                _ => unreachable!("narrow integer codes are listed above"),
            };
            Tensor::I64(ndarray::ArrayD::from_shape_vec(shape, v).map_err(bad_shape)?)
        }
    };
    Ok(tensor)
}

fn to_i64(name: &str, v: Vec<u64>) -> Result<Vec<i64>, OnnxError> {
    v.into_iter()
        .map(|x| {
            i64::try_from(x).map_err(|_| {
                OnnxError::BadModel(format!("tensor '{name}': value {x} does not fit in i64"))
            })
        })
        .collect()
}

/// Serialises a tensor as a `TensorProto` with little-endian `raw_data`.
pub(crate) fn tensor_to_proto(name: &str, t: &Tensor) -> pb::TensorProto {
    let raw: Vec<u8> = match t {
        Tensor::F32(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Tensor::F64(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Tensor::I64(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Tensor::Bool(a) => a.iter().map(|&x| x as u8).collect(),
    };
    pb::TensorProto {
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(code_of(t.dtype())),
        name: if name.is_empty() {
            None
        } else {
            Some(name.to_string())
        },
        raw_data: Some(raw),
        ..Default::default()
    }
}

/// Reads a value's `TypeProto`. Returns `None` when the type or its shape is absent (the IR
/// cannot express "dtype known, rank unknown"). Unnamed unknown dimensions become
/// `Dim::Sym("?k")` with `k` from `unnamed`, a per-graph counter. A rank over the limit, or
/// known dimensions whose product alone needs more than the per-tensor limit (or overflows),
/// is an error: such a value could never be computed.
pub(crate) fn type_from_proto(
    tp: Option<&pb::TypeProto>,
    value: &str,
    unnamed: &mut usize,
    limits: &Limits,
) -> Result<Option<TensorType>, OnnxError> {
    use pb::type_proto::Value;
    let Some(tp) = tp else { return Ok(None) };
    let t = match &tp.value {
        None => return Ok(None),
        Some(Value::TensorType(t)) => t,
        Some(other) => {
            let kind = match other {
                Value::SequenceType(_) => "a sequence",
                Value::MapType(_) => "a map",
                Value::OptionalType(_) => "an optional",
                Value::SparseTensorType(_) => "a sparse tensor",
                Value::TensorType(_) => unreachable!(),
            };
            return Err(OnnxError::BadType {
                value: value.to_string(),
                msg: format!("is {kind}; pannc only handles dense tensors"),
            });
        }
    };
    let code = t.elem_type();
    if code == 0 {
        return Ok(None);
    }
    let dtype = dtype_from_code(code).ok_or_else(|| OnnxError::UnsupportedDType {
        what: format!("value '{value}'"),
        dtype: dtype_name(code),
        extra: "",
    })?;
    let Some(shape) = &t.shape else {
        return Ok(None);
    };
    limits.check_rank(&format!("value '{value}'"), shape.dim.len())?;
    let mut dims = Vec::with_capacity(shape.dim.len());
    for d in &shape.dim {
        use pb::tensor_shape_proto::dimension::Value as D;
        dims.push(match &d.value {
            Some(D::DimValue(v)) => {
                let n = usize::try_from(*v).map_err(|_| OnnxError::BadType {
                    value: value.to_string(),
                    msg: format!("has negative dimension {v}"),
                })?;
                Dim::Known(n)
            }
            Some(D::DimParam(s)) if !s.is_empty() => Dim::Sym(s.clone()),
            _ => {
                let k = *unnamed;
                *unnamed += 1;
                Dim::Sym(format!("?{k}"))
            }
        });
    }
    let known = dims
        .iter()
        .try_fold(dtype.size() as u128, |acc, d| match d {
            Dim::Known(n) => acc.checked_mul(*n as u128),
            Dim::Sym(_) => Some(acc),
        });
    if known.is_none_or(|b| b > limits.max_tensor_bytes as u128) {
        return Err(OnnxError::ValueTooLarge {
            value: value.to_string(),
            shape: dims
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            dtype: dtype_name(code),
            bytes: known,
            limit: limits.max_tensor_bytes,
        });
    }
    Ok(Some(TensorType::new(dtype, dims)))
}

/// Writes a [`TensorType`] as a `TypeProto`; `Dim::Sym` names starting with `?` are written as
/// unnamed unknown dimensions (the form they were read from).
pub(crate) fn type_to_proto(ty: &TensorType) -> pb::TypeProto {
    use pb::tensor_shape_proto::{dimension::Value as D, Dimension};
    let dim = ty
        .shape
        .iter()
        .map(|d| Dimension {
            denotation: None,
            value: match d {
                Dim::Known(n) => Some(D::DimValue(*n as i64)),
                Dim::Sym(s) if s.starts_with('?') => None,
                Dim::Sym(s) => Some(D::DimParam(s.clone())),
            },
        })
        .collect();
    pb::TypeProto {
        denotation: None,
        value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
            elem_type: Some(code_of(ty.dtype)),
            shape: Some(pb::TensorShapeProto { dim }),
        })),
    }
}
