//! The fuzz targets: what one input goes through.

use pannc::ir::verify;

/// The import limits of the `onnx` target: 4 MiB per tensor (also per declared value) and
/// 64 MiB in all, far under the fuzzer's 1 GiB allocation oracle, so that an allocation above
/// the oracle means something escaped the limits; the small per-tensor limit also keeps
/// declared inputs small, so that the passes' and the interpreter's work per execution stays
/// small.
pub fn onnx_limits() -> pannc::onnx::Limits {
    pannc::onnx::Limits {
        max_tensor_bytes: 4 << 20,
        max_total_bytes: 64 << 20,
        ..Default::default()
    }
}

/// ONNX bytes → import (with [`onnx_limits`]) → `verify` → `infer_types` → clean-up
/// pipeline → `verify` again → one interpreter run on small inputs ([`run_small`]). Errors are
/// fine; a panic (or a clean-up result that fails `verify`) is a finding.
pub fn onnx(data: &[u8]) {
    let Ok(model) = pannc::onnx::import_with_limits(data, &onnx_limits()) else {
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
    run_small(&g);
}

/// Runs the interpreter once when every graph input has a known dtype and shape of at most
/// 4096 elements (symbolic dimensions taken as 1) and, with those shapes, type inference gives
/// every value a known shape of at most 2^16 elements (which bounds the work of a run), on
/// inputs of ones: shapes and sizes the interpreter computes from hostile attributes and
/// constants meet real data (overflow checks are on in this build).
fn run_small(g: &pannc::ir::Graph) {
    use pannc::ir::{DType, Dim, Tensor, TensorType};
    let mut g = g.clone();
    let mut feeds = Vec::new();
    for v in g.inputs().to_vec() {
        let Some(ty) = g.value(v).ty.clone() else {
            return;
        };
        let shape: Vec<usize> = ty
            .shape
            .iter()
            .map(|d| match d {
                Dim::Known(n) => *n,
                Dim::Sym(_) => 1,
            })
            .collect();
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= 4096);
        let Some(n) = n else { return };
        let t = match ty.dtype {
            DType::F32 => Tensor::from_f32(&shape, vec![1.0; n]),
            DType::F64 => Tensor::from_f64(&shape, vec![1.0; n]),
            DType::I64 => Tensor::from_i64(&shape, vec![1; n]),
            DType::Bool => Tensor::from_bool(&shape, vec![true; n]),
        };
        let Some(t) = t else { return };
        g.value_mut(v).ty = Some(TensorType::known(ty.dtype, &shape));
        feeds.push(t);
    }
    if pannc::interp::infer_types(&mut g).is_err() {
        return;
    }
    for id in g.node_ids() {
        for &v in g.node(id).outputs() {
            let small = g.value(v).ty.as_ref().is_some_and(|t| {
                t.shape
                    .iter()
                    .try_fold(1usize, |a, d| match d {
                        Dim::Known(n) => a.checked_mul(*n),
                        Dim::Sym(_) => None,
                    })
                    .is_some_and(|n| n <= 1 << 16)
            });
            if !small {
                return;
            }
        }
    }
    // One chunk on this thread: no thread pool per execution.
    let opts = pannc::interp::RunOptions {
        batch_chunk: 0,
        ..Default::default()
    };
    let _ = pannc::interp::run(&g, &feeds, &opts);
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
