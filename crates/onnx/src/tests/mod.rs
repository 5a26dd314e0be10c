//! Unit tests that need the private protobuf types: the differential decoding check against
//! rust-protobuf, and the attribute-form conversions of older opsets.

mod diff;
mod forms;
mod fuzz;

use std::path::PathBuf;

/// See `tests/common/mod.rs`: `ONNX_TEST_DATA` or an explicit `PANNC_SKIP_ONNX_DATA=1`.
pub(crate) fn data_dir(test: &str) -> Option<PathBuf> {
    match std::env::var_os("ONNX_TEST_DATA") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(p.join("node").is_dir(), "ONNX_TEST_DATA={} has no node/ directory", p.display());
            Some(p)
        }
        None if std::env::var("PANNC_SKIP_ONNX_DATA").as_deref() == Ok("1") => {
            eprintln!("{test}: SKIPPED (PANNC_SKIP_ONNX_DATA=1 and ONNX_TEST_DATA unset)");
            None
        }
        None => panic!(
            "{test}: ONNX_TEST_DATA is not set. Point it at the ONNX conformance data of an onnx==1.22 install, e.g.\n  \
             export ONNX_TEST_DATA=$(python -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), \"backend\", \"test\", \"data\"))')\n\
             or set PANNC_SKIP_ONNX_DATA=1 to skip the tests that need it."
        ),
    }
}
