//! Lowerings from a compiled PANN (the IR's PANN form) to `pannc-fhe` programs, one module per
//! packing.

pub mod packed;
pub mod slot_per_sample;
