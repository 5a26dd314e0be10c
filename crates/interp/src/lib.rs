//! # pannc-interp
//!
//! Static shape/dtype inference ([`infer_types`]) and a reference interpreter ([`run`],
//! [`eval_op`]) for the pannc IR, with ONNX (opset ≥ 13) semantics matching onnxruntime.
//!
//! - **Inference** fills every value's [`pannc_ir::TensorType`] from the graph inputs'
//!   types. Symbolic dimensions (the batch `N`) propagate; sizes that depend on unknown data
//!   become fresh symbols `unkK`. Small integer tensors (shape arithmetic) are tracked by
//!   value, symbolically where they hold `N`, so Shape/Gather/Concat/Reshape chains resolve.
//! - **Evaluation** runs nodes in topological order on contiguous row-major buffers:
//!   2-D f32 convolution is a direct register-blocked kernel (AVX2 or AVX-512, chosen by
//!   CPU) on a polyphase copy of the padded input, other convolutions im2col + a packed GEMM
//!   (matrixmultiply); Conv → BatchNormalization → Relu chains run as one step with the
//!   same per-element arithmetic; elementwise ops broadcast in runs along the innermost axis
//!   and reuse the buffer of an input at its last use.
//! - **Batches** may have any size. When every input's first axis is the same symbolic
//!   batch dimension and the graph provably treats samples independently, [`run`] splits
//!   the batch into chunks run in parallel (rayon) and concatenates the results. Every
//!   output element is computed by the same arithmetic in the same order whatever the
//!   chunking or thread count, so results are bitwise reproducible.
//! - **f64 mode** ([`Precision::F64`]) promotes every float constant and input to f64.
//! - **Errors** ([`InterpError`]) name the node, op and problem; malformed graphs (bad
//!   shapes, wrong arity, wrong dtypes, overflowing or huge sizes above [`MAX_ELEMENTS`])
//!   give errors, not panics.

mod error;
mod eval;
mod infer;
mod memo;
mod run;

pub use error::InterpError;
pub use eval::{eval_op, MAX_ELEMENTS};
pub use infer::infer_types;
pub use memo::{run_memo, Memo};
pub use run::{run, run_hooked, splittable_batch, Hook, Precision, RunOptions};
