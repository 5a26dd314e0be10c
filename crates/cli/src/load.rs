//! Loading models and arrays from disk: the CLI's only file I/O besides writing outputs.

use anyhow::{bail, Context, Result};
use pannc_ir::{DType, Graph, Tensor};
use std::path::Path;

/// Reads an ONNX file, imports it and runs the clean-up pipeline (constant folding of shape
/// chains, Identity/Dropout removal, dead-code elimination, type inference).
pub fn load_model(path: &Path) -> Result<pannc_onnx::Model> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut model = pannc_onnx::import(&bytes).with_context(|| format!("{}", path.display()))?;
    canonicalize(&mut model.graph).with_context(|| format!("{}", path.display()))?;
    Ok(model)
}

pub fn canonicalize(g: &mut Graph) -> Result<()> {
    pannc_interp::infer_types(g)?;
    pannc_passes::Pipeline::cleanup().run(g)?;
    pannc_interp::infer_types(g)?;
    Ok(())
}

/// Reads a .npy file of f32, f64 or i64 (any shape, C order).
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..]).with_context(|| format!("{}: not a valid .npy file", path.display()))?;
    if npy.order() != npyz::Order::C {
        bail!("{}: Fortran-order arrays are not supported; save with np.ascontiguousarray", path.display());
    }
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).context("dimension too large"))
        .collect::<Result<_>>()?;
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).context("shape overflows")?;
    let descr = npy.dtype().descr().trim_matches('\'').to_string();
    let t = match descr.as_str() {
        "<f4" => {
            let v: Vec<f32> = npy.into_vec().with_context(|| format!("{}: truncated data", path.display()))?;
            check_len(path, v.len(), count)?;
            Tensor::from_f32(&shape, v)
        }
        "<f8" => {
            let v: Vec<f64> = npy.into_vec().with_context(|| format!("{}: truncated data", path.display()))?;
            check_len(path, v.len(), count)?;
            Tensor::from_f64(&shape, v)
        }
        "<i8" => {
            let v: Vec<i64> = npy.into_vec().with_context(|| format!("{}: truncated data", path.display()))?;
            check_len(path, v.len(), count)?;
            Tensor::from_i64(&shape, v)
        }
        other => bail!("{}: unsupported dtype '{other}' (expected float32, float64 or int64)", path.display()),
    };
    t.with_context(|| format!("{}: data does not match shape", path.display()))
}

fn check_len(path: &Path, got: usize, want: usize) -> Result<()> {
    if got != want {
        bail!("{}: holds {got} elements, its header promises {want}", path.display());
    }
    Ok(())
}

/// Writes a tensor as .npy (little-endian, C order).
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    use npyz::WriterBuilder;
    match t {
        Tensor::F32(a) => npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut w).begin_nd()?.extend(a.iter().copied())?,
        Tensor::F64(a) => npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut w).begin_nd()?.extend(a.iter().copied())?,
        Tensor::I64(a) => npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut w).begin_nd()?.extend(a.iter().copied())?,
    }
    std::io::Write::flush(&mut w).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Converts an input array to the dtype a graph input declares; floats convert between
/// widths (with a note), anything else is an error.
pub fn conform_dtype(name: &str, t: Tensor, want: DType) -> Result<Tensor> {
    let have = t.dtype();
    if have == want {
        return Ok(t);
    }
    if have.is_float() && want.is_float() {
        eprintln!("note: input '{name}': converting {have} data to {want}");
        return Ok(t.cast(want));
    }
    bail!("input '{name}' expects {want} data, got {have}")
}
