//! Direct 2-D convolution for f32, on x86-64 with AVX2 + FMA or AVX-512.
//!
//! On the padded input and a "wide" output grid of the padded width (see `conv2d_s1` in
//! `conv.rs`), the im2col row of kernel tap `(c, ky, kx)` is the contiguous slice of the
//! padded input that starts at `c·H'W' + ky·dh·W' + kx·dw` (with strides, of one polyphase
//! component of it: see [`conv2d`]). Instead of copying those rows
//! into a column matrix and handing it to a GEMM (which packs it again), the kernel below
//! loads them in place: for a block of `mr` output channels and `nc` output columns it keeps
//! the accumulators in registers and, for every tap, loads `nc` inputs and broadcasts `mr`
//! weights ([`Kernel`]: 4 × 16 with AVX2, 8 × 32 with AVX-512). Narrow layers (8 output
//! channels, where a 16 × 16 GEMM tile is half empty) gain the most.
//!
//! Every output element is `Σ_k w[k]·x[k]` accumulated by fused multiply-adds in tap order
//! from zero, then the bias added (and a fused normalization and ReLU applied), wherever it
//! lies in the batch or the block: results do not depend on chunking or threads.

use super::window::Geometry;

/// A register-blocked kernel: `mr` output channels × `nc` output columns per block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// AVX2 + FMA: 4 × 16 (8 ymm accumulators; a 4 × 24 block would spill).
    Avx2,
    /// AVX-512F: 8 × 32 (16 zmm accumulators).
    Avx512,
    /// Any CPU: 4 × 16 in scalar code, each product fused by `f32::mul_add` (correctly rounded
    /// wherever it runs), so it gives the SIMD kernels' bits where they are not available and
    /// whether a layer runs the direct kernel never depends on the CPU.
    Portable,
}

impl Kernel {
    fn mr(self) -> usize {
        match self {
            Kernel::Avx2 | Kernel::Portable => 4,
            Kernel::Avx512 => 8,
        }
    }
    fn nc(self) -> usize {
        match self {
            Kernel::Avx2 | Kernel::Portable => 16,
            Kernel::Avx512 => 32,
        }
    }
}

/// The kernel this machine runs for a convolution with `mg` output channels per group, if
/// one pays (at least a full block of 4 channels). Whether it is `Some` depends only on the
/// layer; which kernel, on the CPU: all compute the same bits (fused multiply-adds in tap
/// order from zero, then the epilogue), so results depend on neither the CPU's features nor
/// chunking nor threads.
pub(crate) fn kernel(mg: usize) -> Option<Kernel> {
    if mg < Kernel::Portable.mr() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static ISA: OnceLock<(bool, bool)> = OnceLock::new();
        let (avx2, avx512) = *ISA.get_or_init(|| {
            (
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
                std::is_x86_feature_detected!("avx512f"),
            )
        });
        if avx512 && mg >= Kernel::Avx512.mr() {
            return Some(Kernel::Avx512);
        }
        if avx2 && mg >= Kernel::Avx2.mr() {
            return Some(Kernel::Avx2);
        }
    }
    Some(Kernel::Portable)
}

/// Elements of the polyphase buffer [`conv2d`] allocates (to check against the limits).
pub(crate) fn buffer_len(xs: &[usize], ws: &[usize], g: &Geometry) -> Option<usize> {
    let (hp, wp) = padded(xs, g)?;
    let (sh, sw) = (g.strides[0], g.strides[1]);
    let (hq, wq) = (hp.div_ceil(sh), wp.div_ceil(sw));
    let cg = ws.get(1)?;
    let phases = sh.checked_mul(sw)?;
    phases
        .checked_mul(*cg)?
        .checked_mul(hq.checked_mul(wq)?)?
        .checked_add(g.out[0].checked_mul(wq)?.checked_add(64)?)?
        .checked_add(hq.checked_mul(wq)?)
}

fn padded(xs: &[usize], g: &Geometry) -> Option<(usize, usize)> {
    let hp = xs[2]
        .checked_add(g.pad_begin[0])?
        .checked_add(g.pad_end[0])?;
    let wp = xs[3]
        .checked_add(g.pad_begin[1])?
        .checked_add(g.pad_end[1])?;
    Some((hp, wp))
}

/// A 2-D convolution (any strides, dilations, pads, groups) for f32 by the direct kernel.
/// `kern` must come from [`kernel`]; [`buffer_len`] must be within the limits.
///
/// The zero-padded input is rearranged once per image into its `sh·sw` polyphase
/// components (`x'[rp, cp][c][r][q] = xpad[c][r·sh + rp][q·sw + cp]`), so that for every tap
/// `(c, ky, kx)` the inputs of a "wide" output grid `j = oy·W' + ox` (`W'` the phase width)
/// are one contiguous slice: it starts at phase `((ky·dh) mod sh, (kx·dw) mod sw)`, row
/// `⌊ky·dh/sh⌋`, column `⌊kx·dw/sw⌋`. With unit strides that is the padded input itself.
/// Columns `ox ≥ ow` of the wide grid are computed and dropped.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv2d(
    x: &[f32],
    xs: &[usize],
    w: &[f32],
    ws: &[usize],
    bias: Option<&[f32]>,
    g: &Geometry,
    group: usize,
    affine: Option<(&[f32], &[f32])>,
    relu: bool,
    kern: Kernel,
) -> Vec<f32> {
    let (mr, nc) = (kern.mr(), kern.nc());
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (m, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
    let mg = m / group;
    let kc = cg * kh * kw;
    let (dh, dw) = (g.dilations[0], g.dilations[1]);
    let (sh, sw) = (g.strides[0], g.strides[1]);
    let (pt, pl) = (g.pad_begin[0], g.pad_begin[1]);
    let (hp, wp) = padded(xs, g).expect("checked by buffer_len");
    let (hq, wq) = (hp.div_ceil(sh), wp.div_ceil(sw));
    let plane = hq * wq;
    let (oh, ow) = (g.out[0], g.out[1]);
    // Wide grid rounded up to whole column blocks.
    let pw = (oh * wq).div_ceil(nc) * nc;
    let mut offs = Vec::with_capacity(kc);
    for ci in 0..cg {
        for ky in 0..kh {
            for kx in 0..kw {
                let (ry, rx) = (ky * dh, kx * dw);
                let phase = (ry % sh) * sw + rx % sw;
                offs.push((phase * cg + ci) * plane + (ry / sh) * wq + rx / sw);
            }
        }
    }
    let reach = offs.iter().max().map_or(0, |&o| o + pw);
    let mut xq = vec![0f32; reach.max(sh * sw * cg * plane)];
    // Weights per group and block of mr channels, tap-major: `[block][tap][row]`, rows past
    // the group's channels zero.
    let blocks = mg.div_ceil(mr);
    let mut wpk = vec![0f32; group * blocks * kc * mr];
    for gi in 0..group {
        for mo in 0..mg {
            let (b, r) = (mo / mr, mo % mr);
            let src = &w[(gi * mg + mo) * kc..(gi * mg + mo + 1) * kc];
            let base = (gi * blocks + b) * kc * mr;
            for (k, &v) in src.iter().enumerate() {
                wpk[base + k * mr + r] = v;
            }
        }
    }
    // The wide grid of one image's blocks (the AVX-512 kernel stores compactly instead).
    let mut yw = vec![
        0f32;
        if kern != Kernel::Avx512 {
            blocks * mr * pw
        } else {
            0
        }
    ];
    // Where input row iy and, per column phase, the first input column of the phase go.
    let rows: Vec<(usize, usize)> = (0..h).map(|iy| ((iy + pt) / sh, (iy + pt) % sh)).collect();
    let phases: Vec<(usize, usize)> = (0..sw)
        .map(|cp| {
            let first = (cp + sw - pl % sw) % sw;
            (first, (first + pl) / sw)
        })
        .collect();
    // Written in order (image, channel, row), so never zero-filled first.
    let p = oh * ow;
    let mut y: Vec<f32> = Vec::with_capacity(n * m * p);
    let mut written = 0;
    let lanes = Lanes::new(oh, ow, wq, pw);
    for img in 0..n {
        for gi in 0..group {
            let x0 = (img * c + gi * cg) * h * wd;
            for ci in 0..cg {
                for (iy, &(r, rp)) in rows.iter().enumerate() {
                    let src = &x[x0 + (ci * h + iy) * wd..x0 + (ci * h + iy + 1) * wd];
                    if sw == 1 {
                        let d = (rp * cg + ci) * plane + r * wq + pl;
                        copy_row(kern, &mut xq[d..d + wd], src);
                        continue;
                    }
                    // Column phase cp holds inputs ix ≡ cp − pl (mod sw).
                    for (cp, &(first, q0)) in phases.iter().enumerate() {
                        if first >= wd {
                            continue;
                        }
                        let d = ((rp * sw + cp) * cg + ci) * plane + r * wq + q0;
                        let cnt = (wd - first).div_ceil(sw);
                        let src = &src[first..first + (cnt - 1) * sw + 1];
                        for (q, o) in xq[d..d + cnt].iter_mut().enumerate() {
                            *o = src[q * sw];
                        }
                    }
                }
            }
            for b in 0..blocks {
                let wk = &wpk[(gi * blocks + b) * kc * mr..(gi * blocks + b + 1) * kc * mr];
                let rows = mr.min(mg - b * mr);
                let mut epi = Epi {
                    bias: bias.is_some(),
                    affine: affine.is_some(),
                    relu,
                    ..Epi::default()
                };
                for r in 0..rows {
                    let ch = gi * mg + b * mr + r;
                    epi.add[r] = bias.map_or(0.0, |v| v[ch]);
                    (epi.scale[r], epi.shift[r]) =
                        affine.map_or((1.0, 0.0), |(s, t)| (s[ch], t[ch]));
                }
                let out = match kern {
                    Kernel::Avx2 | Kernel::Portable => {
                        Out::Wide(&mut yw[b * mr * pw..(b + 1) * mr * pw])
                    }
                    Kernel::Avx512 => {
                        let ch0 = img * m + gi * mg + b * mr;
                        Out::Compact {
                            planes: &mut y.spare_capacity_mut()
                                [(ch0 - written) * p..(ch0 - written + rows) * p],
                            rows,
                            lanes: &lanes,
                        }
                    }
                };
                block(kern, &xq, &offs, wk, pw, &epi, out);
            }
            match kern {
                Kernel::Avx2 | Kernel::Portable => {
                    for mo in 0..mg {
                        for oy in 0..oh {
                            y.extend_from_slice(&yw[mo * pw + oy * wq..mo * pw + oy * wq + ow]);
                        }
                    }
                }
                Kernel::Avx512 => {
                    // SAFETY: the blocks above wrote every element of these mg planes (each
                    // output position is one valid lane of `lanes`), and they lie within the
                    // capacity reserved for the n·m planes.
                    unsafe { y.set_len(y.len() + mg * p) };
                }
            }
            written += mg;
        }
    }
    y
}

/// Where a block's results go.
enum Out<'a> {
    /// Rows of the wide grid, `cols` apart.
    Wide(&'a mut [f32]),
    /// Straight into the output planes (`rows` of them, `p` apart), junk columns dropped.
    Compact {
        planes: &'a mut [std::mem::MaybeUninit<f32>],
        rows: usize,
        lanes: &'a Lanes,
    },
}

/// For each 16-column vector of the wide grid: which lanes are real output positions
/// (`j < oh·W'` and `j mod W' < ow`) and where in the output plane the first of them goes.
/// The real lanes of a vector land on consecutive positions (a row's last column is followed
/// by the next row's first), so one compressing store writes them.
struct Lanes {
    mask: Vec<u16>,
    at: Vec<usize>,
    plane: usize,
}

impl Lanes {
    fn new(oh: usize, ow: usize, wq: usize, pw: usize) -> Lanes {
        let (mut mask, mut at) = (Vec::new(), Vec::new());
        for v in 0..pw.div_ceil(16) {
            let mut mk = 0u16;
            let mut first = None;
            for l in 0..16 {
                let j = v * 16 + l;
                if j < oh * wq && j % wq < ow {
                    mk |= 1 << l;
                    first.get_or_insert((j / wq) * ow + j % wq);
                }
            }
            mask.push(mk);
            at.push(first.unwrap_or(0));
        }
        Lanes {
            mask,
            at,
            plane: oh * ow,
        }
    }
}

/// `dst.copy_from_slice(src)` for the short rows of a feature map (a library `memcpy` call
/// per row costs more than the copy).
fn copy_row(kern: Kernel, dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "x86_64")]
    if kern == Kernel::Avx512 {
        // SAFETY: AVX-512F was detected (`kern`); both slices hold `src.len()` elements.
        unsafe { copy_avx512(dst, src) };
        return;
    }
    let _ = kern;
    dst.copy_from_slice(src);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn copy_avx512(dst: &mut [f32], src: &[f32]) {
    use std::arch::x86_64::*;
    let n = src.len();
    let mut i = 0;
    while i < n {
        let k: __mmask16 = if n - i >= 16 {
            0xffff
        } else {
            (1u16 << (n - i)) - 1
        };
        let v = _mm512_maskz_loadu_ps(k, src.as_ptr().add(i));
        _mm512_mask_storeu_ps(dst.as_mut_ptr().add(i), k, v);
        i += 16;
    }
}

/// What a block applies to each accumulated row `r` before storing it: `+ add[r]` (the
/// convolution's bias), then `· scale[r] + shift[r]` (a fused batch normalization), then
/// ReLU (`v < 0 ? 0 : v`): the operations of the separate Conv, BatchNormalization and Relu
/// kernels, in their order and rounding (see `conv::Epilogue`).
#[derive(Default)]
struct Epi {
    bias: bool,
    affine: bool,
    relu: bool,
    add: [f32; 8],
    scale: [f32; 8],
    shift: [f32; 8],
}

/// `out[r][j] = epi(Σ_k wk[k·mr + r] · xpad[offs[k] + j])` for `r < mr`, `j < cols`.
fn block(
    kern: Kernel,
    xpad: &[f32],
    offs: &[usize],
    wk: &[f32],
    cols: usize,
    epi: &Epi,
    out: Out<'_>,
) {
    let (mr, nc) = (kern.mr(), kern.nc());
    assert!(
        cols.is_multiple_of(nc) && mr <= epi.add.len(),
        "columns in whole blocks"
    );
    assert!(wk.len() == offs.len() * mr);
    assert!(
        offs.iter().all(|&o| o + cols <= xpad.len()),
        "taps in bounds"
    );
    let out = match (kern, out) {
        (Kernel::Portable, Out::Wide(o)) => {
            assert!(o.len() >= mr * cols);
            return block_portable(xpad, offs, wk, cols, epi, o);
        }
        (_, out) => out,
    };
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `kern` came from `kernel()`, which checked the CPU features it needs; the
    // asserts bound every load (`offs[k] + j0 + nc ≤ offs[k] + cols ≤ xpad.len()`,
    // `k·mr + r < wk.len()`) and store (wide: `r·cols + j0 + nc ≤ mr·cols ≤ out.len()`;
    // compact: row `r < rows` of `p`, at most the lane count of a vector from its first
    // position, which stays within the plane).
    unsafe {
        match (kern, out) {
            (Kernel::Avx2, Out::Wide(o)) => {
                assert!(o.len() >= mr * cols);
                block_avx2(xpad, offs, wk, cols, epi, o)
            }
            (
                Kernel::Avx512,
                Out::Compact {
                    planes,
                    rows,
                    lanes,
                },
            ) => {
                assert!(rows <= mr && planes.len() >= rows * lanes.plane);
                assert!(lanes.mask.len() * 16 >= cols);
                assert!(lanes
                    .mask
                    .iter()
                    .zip(&lanes.at)
                    .all(|(k, &a)| a + k.count_ones() as usize <= lanes.plane));
                block_avx512(xpad, offs, wk, cols, epi, planes, rows, lanes)
            }
            _ => unreachable!("each kernel has its own output form"),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = out;
        unreachable!("only the portable kernel exists on this architecture")
    }
}

/// The portable kernel: what `block_avx2` computes, lane by lane.
fn block_portable(
    xpad: &[f32],
    offs: &[usize],
    wk: &[f32],
    cols: usize,
    epi: &Epi,
    out: &mut [f32],
) {
    const MR: usize = 4;
    const NC: usize = 16;
    let mut j0 = 0;
    while j0 < cols {
        let mut acc = [[0f32; NC]; MR];
        for (k, &o) in offs.iter().enumerate() {
            let xs = &xpad[o + j0..o + j0 + NC];
            let ws = &wk[k * MR..(k + 1) * MR];
            for (a, &w) in acc.iter_mut().zip(ws) {
                for (a, &x) in a.iter_mut().zip(xs) {
                    *a = w.mul_add(x, *a);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            let d = &mut out[r * cols + j0..r * cols + j0 + NC];
            for (d, &v) in d.iter_mut().zip(a) {
                let mut v = v;
                if epi.bias {
                    v += epi.add[r];
                }
                if epi.affine {
                    v = v * epi.scale[r] + epi.shift[r];
                }
                if epi.relu && v < 0.0 {
                    v = 0.0;
                }
                *d = v;
            }
        }
        j0 += NC;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_avx2(
    xpad: &[f32],
    offs: &[usize],
    wk: &[f32],
    cols: usize,
    epi: &Epi,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    // 8 accumulators, 2 input vectors and the broadcast weights fit the 16 ymm registers
    // (a 4×3 block would spill one accumulator every tap).
    let xp = xpad.as_ptr();
    let wp = wk.as_ptr();
    let op = out.as_mut_ptr();
    let mut j0 = 0;
    while j0 < cols {
        let mut a00 = _mm256_setzero_ps();
        let mut a01 = _mm256_setzero_ps();
        let mut a10 = _mm256_setzero_ps();
        let mut a11 = _mm256_setzero_ps();
        let mut a20 = _mm256_setzero_ps();
        let mut a21 = _mm256_setzero_ps();
        let mut a30 = _mm256_setzero_ps();
        let mut a31 = _mm256_setzero_ps();
        for (k, &o) in offs.iter().enumerate() {
            let s = xp.add(o + j0);
            let b0 = _mm256_loadu_ps(s);
            let b1 = _mm256_loadu_ps(s.add(8));
            let wr = wp.add(k * 4);
            let w0 = _mm256_broadcast_ss(&*wr);
            a00 = _mm256_fmadd_ps(w0, b0, a00);
            a01 = _mm256_fmadd_ps(w0, b1, a01);
            let w1 = _mm256_broadcast_ss(&*wr.add(1));
            a10 = _mm256_fmadd_ps(w1, b0, a10);
            a11 = _mm256_fmadd_ps(w1, b1, a11);
            let w2 = _mm256_broadcast_ss(&*wr.add(2));
            a20 = _mm256_fmadd_ps(w2, b0, a20);
            a21 = _mm256_fmadd_ps(w2, b1, a21);
            let w3 = _mm256_broadcast_ss(&*wr.add(3));
            a30 = _mm256_fmadd_ps(w3, b0, a30);
            a31 = _mm256_fmadd_ps(w3, b1, a31);
        }
        for (r, acc) in [[a00, a01], [a10, a11], [a20, a21], [a30, a31]]
            .iter()
            .enumerate()
        {
            let d = op.add(r * cols + j0);
            for (i, &a) in acc.iter().enumerate() {
                let mut v = a;
                if epi.bias {
                    v = _mm256_add_ps(v, _mm256_set1_ps(epi.add[r]));
                }
                if epi.affine {
                    v = _mm256_mul_ps(v, _mm256_set1_ps(epi.scale[r]));
                    v = _mm256_add_ps(v, _mm256_set1_ps(epi.shift[r]));
                }
                if epi.relu {
                    let zero = _mm256_setzero_ps();
                    v = _mm256_blendv_ps(v, zero, _mm256_cmp_ps::<_CMP_LT_OQ>(v, zero));
                }
                _mm256_storeu_ps(d.add(8 * i), v);
            }
        }
        j0 += 16;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn block_avx512(
    xpad: &[f32],
    offs: &[usize],
    wk: &[f32],
    cols: usize,
    epi: &Epi,
    planes: &mut [std::mem::MaybeUninit<f32>],
    rows: usize,
    lanes: &Lanes,
) {
    use std::arch::x86_64::*;
    let xp = xpad.as_ptr();
    let wp = wk.as_ptr();
    let op = planes.as_mut_ptr() as *mut f32;
    let mut j0 = 0;
    while j0 < cols {
        let mut acc = [[_mm512_setzero_ps(); 2]; 8];
        for (k, &o) in offs.iter().enumerate() {
            let s = xp.add(o + j0);
            let b0 = _mm512_loadu_ps(s);
            let b1 = _mm512_loadu_ps(s.add(16));
            let wr = wp.add(k * 8);
            for (r, a) in acc.iter_mut().enumerate() {
                let w = _mm512_set1_ps(*wr.add(r));
                a[0] = _mm512_fmadd_ps(w, b0, a[0]);
                a[1] = _mm512_fmadd_ps(w, b1, a[1]);
            }
        }
        for (r, a) in acc.iter().enumerate().take(rows) {
            let d = op.add(r * lanes.plane);
            for (i, &v) in a.iter().enumerate() {
                let mut v = v;
                if epi.bias {
                    v = _mm512_add_ps(v, _mm512_set1_ps(epi.add[r]));
                }
                if epi.affine {
                    v = _mm512_mul_ps(v, _mm512_set1_ps(epi.scale[r]));
                    v = _mm512_add_ps(v, _mm512_set1_ps(epi.shift[r]));
                }
                if epi.relu {
                    let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, _mm512_setzero_ps());
                    v = _mm512_mask_blend_ps(neg, v, _mm512_setzero_ps());
                }
                let vi = j0 / 16 + i;
                let k = lanes.mask[vi];
                if k != 0 {
                    _mm512_mask_compressstoreu_ps(d.add(lanes.at[vi]) as *mut _, k, v);
                }
            }
        }
        j0 += 32;
    }
}

#[cfg(test)]
mod tests {
    use super::super::window::geometry;
    use pannc_ir::{AutoPad, Op, Window};

    /// Convolution by its definition, in f64.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        x: &[f32],
        xs: [usize; 4],
        w: &[f32],
        ws: [usize; 4],
        b: &[f32],
        s: [usize; 2],
        d: [usize; 2],
        p: [usize; 4],
        group: usize,
        out: [usize; 2],
    ) -> Vec<f64> {
        let [n, c, h, wd] = xs;
        let [m, cg, kh, kw] = ws;
        let mg = m / group;
        let mut y = Vec::new();
        for img in 0..n {
            for mo in 0..m {
                let gi = mo / mg;
                for oy in 0..out[0] {
                    for ox in 0..out[1] {
                        let mut acc = b[mo] as f64;
                        for ci in 0..cg {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * s[0] + ky * d[0]) as isize - p[0] as isize;
                                    let ix = (ox * s[1] + kx * d[1]) as isize - p[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                        continue;
                                    }
                                    let xv = x[((img * c + gi * cg + ci) * h + iy as usize) * wd
                                        + ix as usize];
                                    let wv = w[((mo * cg + ci) * kh + ky) * kw + kx];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y.push(acc);
                    }
                }
            }
        }
        y
    }

    /// Every kernel this CPU can run (the portable one always).
    fn available() -> Vec<super::Kernel> {
        let mut ks = vec![super::Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                ks.push(super::Kernel::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f") {
                ks.push(super::Kernel::Avx512);
            }
        }
        ks
    }

    #[test]
    fn kernel_choice_depends_on_the_layer_only() {
        assert_eq!(super::kernel(3), None);
        assert!(super::kernel(4).is_some());
        assert!(super::kernel(64).is_some());
    }

    #[test]
    fn matches_the_definition() {
        let kern = super::Kernel::Portable;
        let mut seed = 7u64;
        let mut rnd = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        // (input, weight, strides, dilations, pads [t, l, b, r], group)
        let cases = [
            ([2, 3, 9, 11], [8, 3, 3, 3], [1, 1], [1, 1], [1, 1, 1, 1], 1),
            (
                [1, 8, 28, 28],
                [8, 8, 3, 3],
                [1, 1],
                [1, 1],
                [1, 1, 1, 1],
                1,
            ),
            (
                [2, 8, 14, 14],
                [16, 8, 3, 3],
                [2, 2],
                [1, 1],
                [1, 1, 1, 1],
                1,
            ),
            (
                [2, 8, 13, 15],
                [16, 8, 1, 1],
                [2, 2],
                [1, 1],
                [0, 0, 0, 0],
                1,
            ),
            (
                [1, 4, 12, 10],
                [6, 4, 3, 2],
                [3, 2],
                [2, 1],
                [2, 0, 1, 3],
                1,
            ),
            (
                [1, 6, 10, 10],
                [12, 2, 3, 3],
                [1, 2],
                [1, 2],
                [1, 2, 0, 1],
                3,
            ),
            ([3, 5, 7, 6], [5, 5, 5, 5], [1, 1], [1, 1], [2, 2, 2, 2], 1),
        ];
        for (xs, ws, s, d, p, group) in cases {
            let x: Vec<f32> = (0..xs.iter().product()).map(|_| rnd()).collect();
            let w: Vec<f32> = (0..ws.iter().product()).map(|_| rnd()).collect();
            let b: Vec<f32> = (0..ws[0]).map(|_| rnd()).collect();
            let win = Window {
                kernel_shape: vec![ws[2], ws[3]],
                strides: s.to_vec(),
                dilations: d.to_vec(),
                pads: vec![p[0], p[1], p[2], p[3]],
                auto_pad: AutoPad::NotSet,
                ceil_mode: false,
            };
            let op = Op::Conv {
                window: win.clone(),
                group,
            };
            let g = geometry(&op, &win, &xs[2..], &ws[2..], false).unwrap();
            let want = naive(&x, xs, &w, ws, &b, s, d, p, group, [g.out[0], g.out[1]]);
            let got = super::conv2d(&x, &xs, &w, &ws, Some(&b), &g, group, None, false, kern);
            // Every kernel does the same arithmetic per element: the same bits whatever the
            // CPU (the portable kernel is the reference).
            for k in available() {
                let other = super::conv2d(&x, &xs, &w, &ws, Some(&b), &g, group, None, false, k);
                assert!(
                    got.iter()
                        .zip(&other)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{k:?} differs from the portable kernel on {xs:?} {ws:?}"
                );
            }
            // The fused epilogue is the separate ops' arithmetic, bit for bit.
            let sc: Vec<f32> = (0..ws[0]).map(|_| rnd() * 3.0).collect();
            let shift: Vec<f32> = (0..ws[0]).map(|_| rnd()).collect();
            let plane = got.len() / (xs[0] * ws[0]);
            let separate: Vec<f32> = got
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let ch = (i / plane) % ws[0];
                    let v = v * sc[ch] + shift[ch];
                    if v < 0.0 {
                        0.0
                    } else {
                        v
                    }
                })
                .collect();
            for k in available() {
                let fused = super::conv2d(
                    &x,
                    &xs,
                    &w,
                    &ws,
                    Some(&b),
                    &g,
                    group,
                    Some((&sc, &shift)),
                    true,
                    k,
                );
                assert_eq!(fused, separate, "{k:?}");
            }
            assert_eq!(got.len(), want.len(), "{xs:?} {ws:?}");
            for (i, (a, e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (*a as f64 - e).abs() < 1e-5 * (1.0 + e.abs()),
                    "{xs:?} {ws:?} s{s:?} d{d:?} p{p:?} g{group}: [{i}] {a} vs {e}"
                );
            }
        }
    }
}
