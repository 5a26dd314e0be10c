//! Resource limits of import: what pannc agrees to materialise from a model, checked before
//! anything is allocated.

use crate::error::OnnxError;
use crate::pb;
use crate::tensor::{dtype_name, element_count, materialized_elem_size};

/// Default limit on one tensor: 2 GiB of element data.
pub const MAX_TENSOR_BYTES: u64 = 2 << 30;
/// Default limit on all constant data of a model together: 4 GiB.
pub const MAX_TOTAL_BYTES: u64 = 4 << 30;
/// Default limit on the rank of any tensor or declared value (numpy 2's `NPY_MAXDIMS`).
pub const MAX_RANK: usize = 64;

/// What [`crate::import_with_limits`] may materialise. Every check happens before the
/// allocation it guards, and each failure names the tensor, its shape, the bytes it needs and
/// the limit.
///
/// - `max_tensor_bytes` bounds every single tensor (initializer, `Constant` value,
///   `ConstantOfShape` output with a constant shape) and the known part of every declared value
///   shape (graph inputs, outputs, `value_info`): a value larger than this could never be
///   computed within the limit.
/// - `max_total_bytes` bounds the running total of all constant data (initializers, `Constant`
///   values, `ConstantOfShape` outputs with constant shapes), counted at the in-memory size
///   (integers widened to i64 count 8 bytes per element). The total is checked over every
///   declared tensor before the first one is converted.
/// - `max_rank` bounds the number of dimensions of every tensor and declared value.
///
/// The model file itself is not counted; a caller reading files should also refuse files much
/// larger than `max_total_bytes` (the `pannc` CLI does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_tensor_bytes: u64,
    pub max_total_bytes: u64,
    pub max_rank: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tensor_bytes: MAX_TENSOR_BYTES,
            max_total_bytes: MAX_TOTAL_BYTES,
            max_rank: MAX_RANK,
        }
    }
}

impl Limits {
    /// Limits for a memory budget of `bytes`: the total is `bytes`, a single tensor the smaller
    /// of `bytes` and [`MAX_TENSOR_BYTES`]; the rank limit is the default.
    pub fn with_max_memory(bytes: u64) -> Limits {
        Limits {
            max_tensor_bytes: bytes.min(MAX_TENSOR_BYTES),
            max_total_bytes: bytes,
            max_rank: MAX_RANK,
        }
    }

    /// The largest model file (the protobuf, not its external data) read under these limits:
    /// twice the constant-data limit plus 16 MiB for the graph (typed integer data may take
    /// more bytes on disk than in memory), and never over 2 GiB, protobuf's limit on a message
    /// (larger models keep their weights in external data).
    pub fn max_model_file_bytes(&self) -> u64 {
        self.max_total_bytes
            .saturating_mul(2)
            .saturating_add(16 << 20)
            .min(2 << 30)
    }

    /// Fails when `rank` dimensions are more than the limit.
    pub(crate) fn check_rank(&self, what: &str, rank: usize) -> Result<(), OnnxError> {
        if rank > self.max_rank {
            return Err(OnnxError::RankTooLarge {
                what: what.to_string(),
                rank,
                limit: self.max_rank,
            });
        }
        Ok(())
    }

    /// Fails when one tensor of `bytes` is over the per-tensor limit.
    pub(crate) fn check_tensor(
        &self,
        tensor: &str,
        dims: &[i64],
        dtype: String,
        bytes: u128,
    ) -> Result<(), OnnxError> {
        if bytes > self.max_tensor_bytes as u128 {
            return Err(OnnxError::TooLarge {
                tensor: tensor.to_string(),
                dims: dims.to_vec(),
                dtype,
                bytes,
                limit: self.max_tensor_bytes,
            });
        }
        Ok(())
    }
}

/// A byte count for people: `4398046511104` → `4 TiB`, `1572864` → `1.5 MiB`,
/// `1092544` → `1.04 MiB`.
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    // Two decimals below 10 (so that 1.04 MiB does not read as the 1 MiB it exceeds), one
    // above; trailing zeros dropped.
    let s = if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    };
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s} {unit}")
}

/// The running total of a model's constant data, checked against [`Limits::max_total_bytes`].
#[derive(Debug)]
pub(crate) struct Budget {
    pub limits: Limits,
    pub total: u128,
}

impl Budget {
    pub fn new(limits: Limits) -> Budget {
        Budget { limits, total: 0 }
    }

    /// Adds one tensor of `bytes` (already checked against the per-tensor limit).
    pub fn add(
        &mut self,
        tensor: &str,
        dims: &[i64],
        dtype: String,
        bytes: u128,
    ) -> Result<(), OnnxError> {
        self.total += bytes;
        if self.total > self.limits.max_total_bytes as u128 {
            return Err(OnnxError::TotalTooLarge {
                tensor: tensor.to_string(),
                dims: dims.to_vec(),
                dtype,
                bytes,
                total: self.total,
                limit: self.limits.max_total_bytes,
            });
        }
        Ok(())
    }

    /// Checks one declared `TensorProto` (rank, element count, per-tensor limit) and adds its
    /// in-memory size, whether its data is inline or external. Tensors of element types pannc
    /// does not read are skipped: their own error comes when they are converted.
    pub fn add_proto(&mut self, t: &pb::TensorProto, name: &str) -> Result<(), OnnxError> {
        let Some(elem) = materialized_elem_size(t.data_type()) else {
            return Ok(());
        };
        self.limits
            .check_rank(&format!("tensor '{name}'"), t.dims.len())?;
        let n = element_count(name, &t.dims)?;
        let bytes = n as u128 * elem as u128;
        let dtype = dtype_name(t.data_type());
        self.limits
            .check_tensor(name, &t.dims, dtype.clone(), bytes)?;
        self.add(name, &t.dims, dtype, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1 KiB");
        assert_eq!(human_bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(human_bytes(1_092_544), "1.04 MiB");
        assert_eq!(human_bytes(100 * 1024 + 512), "100.5 KiB");
        assert_eq!(human_bytes(4 << 30), "4 GiB");
        assert_eq!(human_bytes(1 << 42), "4 TiB");
        assert_eq!(human_bytes(u128::from(u64::MAX)), "16 EiB");
    }

    #[test]
    fn with_max_memory_caps_the_tensor_limit() {
        let l = Limits::with_max_memory(1 << 20);
        assert_eq!((l.max_tensor_bytes, l.max_total_bytes), (1 << 20, 1 << 20));
        let l = Limits::with_max_memory(16 << 30);
        assert_eq!(l.max_tensor_bytes, MAX_TENSOR_BYTES);
        assert_eq!(l.max_total_bytes, 16 << 30);
    }

    #[test]
    fn budget_names_the_tensor_that_crosses_the_total() {
        let mut b = Budget::new(Limits {
            max_tensor_bytes: 100,
            max_total_bytes: 150,
            max_rank: 4,
        });
        b.add("a", &[20], "FLOAT".into(), 80).unwrap();
        let e = b.add("b", &[20], "FLOAT".into(), 80).unwrap_err();
        assert_eq!(e.kind(), "total-too-large");
        let msg = e.to_string();
        assert!(
            msg.contains("'b'") && msg.contains("160 bytes") && msg.contains("150"),
            "{msg}"
        );
    }
}
