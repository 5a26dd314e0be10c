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

/// Reads a .npy file of f32, f64 or i64.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    Ok(pannc::npy::read(path)?)
}

/// Writes a tensor as .npy.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    Ok(pannc::npy::write(path, t)?)
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
