//! Window geometry of Conv and the pooling ops: output sizes and effective pads.

use crate::error::{bail, InterpError};
use pannc_ir::{AutoPad, Op, Window};

/// Resolved geometry for each spatial axis.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Geometry {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pad_begin: Vec<usize>,
    pub pad_end: Vec<usize>,
    pub out: Vec<usize>,
}

fn list_or(
    op: &Op,
    what: &str,
    v: &[usize],
    n: usize,
    default: usize,
) -> Result<Vec<usize>, InterpError> {
    if v.is_empty() {
        return Ok(vec![default; n]);
    }
    if v.len() != n {
        bail!(
            op,
            "{what} has {} entries, expected {n} (one per spatial axis)",
            v.len()
        );
    }
    if default == 1 && v.contains(&0) {
        bail!(op, "{what} {v:?} contains 0");
    }
    Ok(v.to_vec())
}

/// Resolves a window over `input` spatial sizes. `kernel` is the kernel shape (from the
/// weight for Conv; then `w.kernel_shape`, if given, must agree). `pool` selects pooling
/// semantics (ceil_mode allowed).
pub(crate) fn geometry(
    op: &Op,
    w: &Window,
    input: &[usize],
    kernel: &[usize],
    pool: bool,
) -> Result<Geometry, InterpError> {
    let n = input.len();
    if n == 0 {
        bail!(op, "needs at least one spatial axis");
    }
    if kernel.len() != n {
        bail!(
            op,
            "kernel has {} spatial axes, input has {n}",
            kernel.len()
        );
    }
    if kernel.contains(&0) {
        bail!(op, "kernel shape {kernel:?} contains 0");
    }
    let strides = list_or(op, "strides", &w.strides, n, 1)?;
    let dilations = list_or(op, "dilations", &w.dilations, n, 1)?;
    let pads = list_or(op, "pads", &w.pads, 2 * n, 0)?;
    if w.ceil_mode && !pool {
        bail!(op, "ceil_mode is only defined for pooling");
    }
    let mut g = Geometry {
        kernel: kernel.to_vec(),
        strides,
        dilations,
        pad_begin: vec![0; n],
        pad_end: vec![0; n],
        out: vec![0; n],
    };
    for i in 0..n {
        let (x, s, k) = (input[i], g.strides[i], kernel[i]);
        let dk = g.dilations[i]
            .checked_mul(k - 1)
            .and_then(|v| v.checked_add(1))
            .ok_or_else(|| crate::error::op_err(op, "dilated kernel size overflows"))?;
        let (pb, pe) = match w.auto_pad {
            AutoPad::NotSet => (pads[i], pads[i + n]),
            AutoPad::Valid => (0, 0),
            AutoPad::SameUpper | AutoPad::SameLower => {
                let target = x.div_ceil(s);
                let need = ((target.max(1) - 1) * s + dk).saturating_sub(x);
                let small = need / 2;
                if w.auto_pad == AutoPad::SameUpper {
                    (small, need - small)
                } else {
                    (need - small, small)
                }
            }
        };
        let total = x
            .checked_add(pb)
            .and_then(|v| v.checked_add(pe))
            .ok_or_else(|| crate::error::op_err(op, "padded size overflows"))?;
        if total < dk {
            bail!(
                op,
                "spatial axis {i}: padded input size {total} is smaller than the (dilated) kernel {dk}"
            );
        }
        let span = total - dk;
        let mut out = span / s + 1;
        if w.ceil_mode && w.auto_pad == AutoPad::NotSet {
            out = span.div_ceil(s) + 1;
            // The last window must start inside the input or the left padding.
            if (out - 1) * s >= x + pb {
                out -= 1;
            }
        }
        g.pad_begin[i] = pb;
        g.pad_end[i] = pe;
        g.out[i] = out;
    }
    Ok(g)
}
