//! # pannc
//!
//! Facade over pannc's crates, for tests, benches and embedding. See ARCHITECTURE.md for the
//! map; the `pannc` binary lives in `crates/cli`.

pub use pannc_approx as approx;
pub use pannc_ckks as ckks;
pub use pannc_driver as driver;
pub use pannc_interp as interp;
pub use pannc_ir as ir;
pub use pannc_lab as lab;
pub use pannc_onnx as onnx;
pub use pannc_passes as passes;

pub mod npy;
