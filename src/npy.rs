//! Reading and writing `.npy` arrays (f32, f64, i64; C order, little-endian).

use pannc_ir::Tensor;
use std::path::Path;

/// What can go wrong reading or writing an array file.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a valid .npy file ({msg})")]
    Format { path: String, msg: String },
    #[error("{path}: unsupported dtype '{dtype}' (expected float32, float64 or int64)")]
    DType { path: String, dtype: String },
    #[error("{path}: {msg}")]
    Shape { path: String, msg: String },
}

/// Reads a .npy file of f32, f64 or i64 (any shape, C order).
pub fn read(path: &Path) -> Result<Tensor, NpyError> {
    let p = || path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io { path: p(), source })?;
    parse(&bytes).map_err(|e| match e {
        NpyError::Format { msg, .. } => NpyError::Format { path: p(), msg },
        NpyError::DType { dtype, .. } => NpyError::DType { path: p(), dtype },
        NpyError::Shape { msg, .. } => NpyError::Shape { path: p(), msg },
        other => other,
    })
}

/// Parses the bytes of a .npy file (errors carry an empty path).
pub fn parse(bytes: &[u8]) -> Result<Tensor, NpyError> {
    let fmt = |msg: String| NpyError::Format {
        path: String::new(),
        msg,
    };
    // Check the declared header length against the file before npyz allocates it.
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(fmt("missing the \\x93NUMPY magic".into()));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(fmt(format!("unsupported format version {v}"))),
    };
    if header_len > bytes.len() - start {
        return Err(fmt(format!(
            "header claims {header_len} bytes, the file has {}",
            bytes.len() - start
        )));
    }
    let npy = npyz::NpyFile::new(bytes).map_err(|e| fmt(e.to_string()))?;
    if npy.order() != npyz::Order::C {
        return Err(fmt(
            "Fortran-order arrays are not supported; save with np.ascontiguousarray".into(),
        ));
    }
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| fmt("dimension too large".into())))
        .collect::<Result<_, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| fmt("shape overflows".into()))?;
    // Refuse before allocating: the data must be present in the file.
    let descr = npy.dtype().descr().trim_matches('\'').to_string();
    let size = match descr.as_str() {
        "<f4" => 4,
        "<f8" | "<i8" => 8,
        _ => {
            return Err(NpyError::DType {
                path: String::new(),
                dtype: descr,
            })
        }
    };
    if count.checked_mul(size).is_none_or(|n| n > bytes.len()) {
        return Err(NpyError::Shape {
            path: String::new(),
            msg: format!("header promises {count} elements, the file is too short"),
        });
    }
    let short = |e: std::io::Error| fmt(format!("truncated data ({e})"));
    let t = match size {
        4 => Tensor::from_f32(&shape, npy.into_vec().map_err(short)?),
        _ if descr == "<f8" => Tensor::from_f64(&shape, npy.into_vec().map_err(short)?),
        _ => Tensor::from_i64(&shape, npy.into_vec().map_err(short)?),
    };
    t.ok_or_else(|| NpyError::Shape {
        path: String::new(),
        msg: format!("data does not fill shape {shape:?}"),
    })
}

/// Writes a tensor as .npy (little-endian, C order).
pub fn write(path: &Path, t: &Tensor) -> Result<(), NpyError> {
    let io = |source: std::io::Error| NpyError::Io {
        path: path.display().to_string(),
        source,
    };
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    match t {
        Tensor::F32(a) => write_elems(&mut w, &shape, a.iter().copied()),
        Tensor::F64(a) => write_elems(&mut w, &shape, a.iter().copied()),
        Tensor::I64(a) => write_elems(&mut w, &shape, a.iter().copied()),
    }
    .map_err(io)?;
    std::io::Write::flush(&mut w).map_err(io)
}

fn write_elems<T: npyz::AutoSerialize>(
    w: &mut impl std::io::Write,
    shape: &[u64],
    elems: impl Iterator<Item = T>,
) -> std::io::Result<()> {
    use npyz::WriterBuilder;
    npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(w)
        .begin_nd()?
        .extend(elems)
}
