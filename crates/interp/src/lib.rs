//! pannc-interp: static shape/dtype inference and a reference interpreter for the IR.

mod error;
mod eval;

pub use error::InterpError;
pub use eval::{eval_op, MAX_ELEMENTS};
