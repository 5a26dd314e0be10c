//! The fuzz targets: what one input goes through.

use pannc::ir::verify;

/// The import limits of the `onnx` target: 256 MiB of constant data, well under the fuzzer's
/// 1 GiB allocation oracle, so that an allocation above the oracle means something escaped
/// the limits.
pub const ONNX_MAX_MEMORY: u64 = 256 << 20;

/// ONNX bytes → import (with [`ONNX_MAX_MEMORY`]) → `verify` → `infer_types` → clean-up
/// pipeline → `verify` again. Errors are fine; a panic (or a clean-up result that fails
/// `verify`) is a finding.
pub fn onnx(data: &[u8]) {
    let limits = pannc::onnx::Limits::with_max_memory(ONNX_MAX_MEMORY);
    let Ok(model) = pannc::onnx::import_with_limits(data, &limits) else {
        return;
    };
    let mut g = model.graph;
    if !verify(&g).is_empty() {
        return;
    }
    if pannc::interp::infer_types(&mut g).is_err() {
        return;
    }
    if pannc::passes::Pipeline::cleanup().run(&mut g).is_err() {
        return;
    }
    let errs = verify(&g);
    assert!(
        errs.is_empty(),
        "clean-up produced a graph that fails verify: {:?}",
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>()
    );
}

/// `.npy` bytes → `pannc::npy::parse`.
pub fn npy(data: &[u8]) {
    let _ = pannc::npy::parse(data);
}

/// A target: the function and the largest input it is given.
pub type Target = (fn(&[u8]), usize);

pub fn by_name(name: &str) -> Option<Target> {
    match name {
        "onnx" => Some((onnx as fn(&[u8]), 1 << 20)),
        "npy" => Some((npy as fn(&[u8]), 1 << 16)),
        _ => None,
    }
}
