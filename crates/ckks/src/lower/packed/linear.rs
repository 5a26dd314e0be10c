//! The matrices of the IR's linear nodes, built from their weights tap by tap (never as dense
//! matrices, except Gemm/MatMul, which are dense by nature): rows are output elements,
//! columns input elements, both row-major without the batch dimension.

use pannc_ir::{AutoPad, Tensor, Window};

use super::maps::Csr;

/// Row-major strides of a shape.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Resolved window of one spatial axis.
struct Axis {
    stride: usize,
    dilation: usize,
    kernel: usize,
    pad_begin: usize,
    pad_end: usize,
    input: usize,
    output: usize,
}

fn list_or(v: &[usize], n: usize, default: usize, what: &str) -> Result<Vec<usize>, String> {
    if v.is_empty() {
        return Ok(vec![default; n]);
    }
    if v.len() != n {
        return Err(format!(
            "{what} has {} entries for {n} spatial axes",
            v.len()
        ));
    }
    Ok(v.to_vec())
}

/// The window geometry of Conv/AveragePool over `input` spatial sizes with `kernel`, the
/// output sizes taken from the (inferred) output type.
fn axes(
    w: &Window,
    input: &[usize],
    kernel: &[usize],
    output: &[usize],
) -> Result<Vec<Axis>, String> {
    let n = input.len();
    if kernel.len() != n || output.len() != n {
        return Err(format!(
            "window over {n} spatial axes with kernel {kernel:?} and output {output:?}"
        ));
    }
    let strides = list_or(&w.strides, n, 1, "strides")?;
    let dil = list_or(&w.dilations, n, 1, "dilations")?;
    let pads = list_or(&w.pads, 2 * n, 0, "pads")?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (x, s, k) = (input[i], strides[i].max(1), kernel[i]);
        let dk = dil[i] * (k.max(1) - 1) + 1;
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
        out.push(Axis {
            stride: s,
            dilation: dil[i],
            kernel: k,
            pad_begin: pb,
            pad_end: pe,
            input: x,
            output: output[i],
        });
    }
    Ok(out)
}

/// Per axis and output position: the in-image input positions of each kernel tap (None when
/// the tap falls in the padding), and the count of taps inside the padded input.
fn taps(a: &Axis) -> Vec<(Vec<Option<usize>>, usize)> {
    (0..a.output)
        .map(|o| {
            let start = (o * a.stride) as i64 - a.pad_begin as i64;
            let mut v = Vec::with_capacity(a.kernel);
            let mut padded = 0;
            for k in 0..a.kernel {
                let p = start + (k * a.dilation) as i64;
                if p >= -(a.pad_begin as i64) && p < (a.input + a.pad_end) as i64 {
                    padded += 1;
                }
                v.push((p >= 0 && p < a.input as i64).then_some(p as usize));
            }
            (v, padded)
        })
        .collect()
}

/// Odometer over a multi-index.
fn next_index(idx: &mut [usize], dims: &[usize]) -> bool {
    for i in (0..idx.len()).rev() {
        idx[i] += 1;
        if idx[i] < dims[i] {
            return true;
        }
        idx[i] = 0;
    }
    false
}

/// Conv: `x` is `[C, spatial...]`, `w` `[M, C/group, kernel...]`, `out` `[M, spatial'...]`.
/// Returns the matrix and the bias per output element.
pub fn conv(
    x: &[usize],
    w: &Tensor,
    b: Option<&Tensor>,
    window: &Window,
    group: usize,
    out: &[usize],
) -> Result<(Csr, Vec<f64>), String> {
    let ws = w.shape();
    if x.len() < 2 || ws.len() != x.len() + 1 || out.len() != x.len() {
        return Err(format!(
            "input {x:?}, weight {ws:?} and output {out:?} ranks do not match"
        ));
    }
    let (c, m, cg) = (x[0], ws[0], ws[1]);
    if group == 0 || cg * group != c || m % group != 0 || out[0] != m {
        return Err(format!(
            "channels: input {c}, weight {ws:?}, group {group}, output {}",
            out[0]
        ));
    }
    let kernel = &ws[2..];
    let ax = axes(window, &x[1..], kernel, &out[1..])?;
    let t: Vec<_> = ax.iter().map(taps).collect();
    let wv = w.to_f64_vec();
    let bias: Vec<f64> = match b {
        Some(b) => b.to_f64_vec(),
        None => vec![0.0; m],
    };
    if bias.len() != m {
        return Err(format!(
            "bias has {} entries for {m} output channels",
            bias.len()
        ));
    }
    let xs = strides(x);
    let ksz: usize = kernel.iter().product();
    let sp_out: usize = out[1..].iter().product();
    let m_per_g = m / group;
    let n_out = m * sp_out;
    let n_in: usize = x.iter().product();
    let mut bias_out = Vec::with_capacity(n_out);
    let csr = Csr::build(n_out, n_in, |r, push| {
        let mo = r / sp_out;
        bias_out.push(bias[mo]);
        let g = mo / m_per_g;
        // Output spatial multi-index.
        let mut o_idx = vec![0usize; ax.len()];
        let mut rem = r % sp_out;
        for i in (0..ax.len()).rev() {
            o_idx[i] = rem % ax[i].output;
            rem /= ax[i].output;
        }
        for cc in 0..cg {
            let ci = g * cg + cc;
            let mut k_idx = vec![0usize; ax.len()];
            for kk in 0..ksz {
                let mut off = ci * xs[0];
                let mut inside = true;
                for i in 0..ax.len() {
                    match t[i][o_idx[i]].0[k_idx[i]] {
                        Some(p) => off += p * xs[i + 1],
                        None => {
                            inside = false;
                            break;
                        }
                    }
                }
                if inside {
                    push(off, wv[(mo * cg + cc) * ksz + kk]);
                }
                next_index(&mut k_idx, kernel);
            }
        }
    });
    Ok((csr, bias_out))
}

/// AveragePool over `x` `[C, spatial...]` to `out` `[C, spatial'...]`.
pub fn average_pool(
    x: &[usize],
    window: &Window,
    include_pad: bool,
    out: &[usize],
) -> Result<Csr, String> {
    if x.len() < 2 || out.len() != x.len() || out[0] != x[0] {
        return Err(format!("input {x:?} and output {out:?} do not match"));
    }
    let ax = axes(window, &x[1..], &window.kernel_shape, &out[1..])?;
    let t: Vec<_> = ax.iter().map(taps).collect();
    let xs = strides(x);
    let sp_out: usize = out[1..].iter().product();
    let n_in: usize = x.iter().product();
    let ksz: usize = window.kernel_shape.iter().product();
    Ok(Csr::build(x[0] * sp_out, n_in, |r, push| {
        let c = r / sp_out;
        let mut o_idx = vec![0usize; ax.len()];
        let mut rem = r % sp_out;
        for i in (0..ax.len()).rev() {
            o_idx[i] = rem % ax[i].output;
            rem /= ax[i].output;
        }
        let mut entries = Vec::new();
        let mut padded = 1usize;
        for i in 0..ax.len() {
            padded *= t[i][o_idx[i]].1;
        }
        let mut k_idx = vec![0usize; ax.len()];
        for _ in 0..ksz {
            let mut off = c * xs[0];
            let mut inside = true;
            for i in 0..ax.len() {
                match t[i][o_idx[i]].0[k_idx[i]] {
                    Some(p) => off += p * xs[i + 1],
                    None => {
                        inside = false;
                        break;
                    }
                }
            }
            if inside {
                entries.push(off);
            }
            next_index(&mut k_idx, &window.kernel_shape);
        }
        let cnt = if include_pad { padded } else { entries.len() };
        for off in entries {
            push(off, 1.0 / cnt as f64);
        }
    }))
}

/// GlobalAveragePool over `x` `[C, spatial...]`.
pub fn global_average_pool(x: &[usize]) -> Csr {
    let c = x[0];
    let p: usize = x[1..].iter().product();
    Csr::build(c, c * p, |r, push| {
        for q in 0..p {
            push(r * p + q, 1.0 / p as f64);
        }
    })
}

/// Dense `y[j] = Σ_k a(k, j)·x[k]` for `k < rows_in`, `j < cols_out`.
pub fn dense(k_in: usize, m_out: usize, a: impl Fn(usize, usize) -> f64) -> Csr {
    Csr::build(m_out, k_in, |j, push| {
        for k in 0..k_in {
            push(k, a(k, j));
        }
    })
}

/// The values of constant `c` broadcast (numpy rules) to `[1, shape...]`, one per element of
/// `shape`; its leading (batch) dimension must be 1 if present.
pub fn broadcast(c: &Tensor, shape: &[usize]) -> Result<Vec<f64>, String> {
    let cs = c.shape();
    let full = shape.len() + 1;
    let bad = || {
        format!(
            "constant of shape {cs:?} does not broadcast per sample to [N,{}]",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    if cs.len() > full {
        return Err(bad());
    }
    let mut target = vec![1usize];
    target.extend_from_slice(shape);
    let off = full - cs.len();
    for (i, &d) in cs.iter().enumerate() {
        if d != 1 && d != target[off + i] {
            return Err(bad());
        }
    }
    let vals = c.to_f64_vec();
    let mut st = vec![0usize; cs.len()];
    let mut s = 1;
    for i in (0..cs.len()).rev() {
        st[i] = if cs[i] == 1 { 0 } else { s };
        s *= cs[i];
    }
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        let mut o = 0;
        for (i, &sti) in st.iter().enumerate() {
            let axis = off + i;
            if axis >= 1 {
                o += idx[axis - 1] * sti;
            }
        }
        out.push(vals[o]);
        next_index(&mut idx, shape);
    }
    Ok(out)
}

/// Transpose (of the non-batch axes; `perm` over the full rank with the batch fixed at 0).
pub fn transpose(x: &[usize], perm: &[usize]) -> Result<(Csr, Vec<usize>), String> {
    let rank = x.len() + 1;
    let perm: Vec<usize> = if perm.is_empty() {
        (0..rank).rev().collect()
    } else {
        perm.to_vec()
    };
    if perm.len() != rank || perm[0] != 0 {
        return Err(format!("permutation {perm:?} moves the batch axis"));
    }
    let p: Vec<usize> = perm[1..].iter().map(|a| a - 1).collect();
    let out: Vec<usize> = p.iter().map(|&a| x[a]).collect();
    let xs = strides(x);
    let n: usize = x.iter().product();
    let mut idx = vec![0usize; out.len()];
    let csr = Csr::build(n, n, |_, push| {
        let off: usize = idx.iter().zip(&p).map(|(&i, &a)| i * xs[a]).sum();
        push(off, 1.0);
        next_index(&mut idx, &out);
    });
    Ok((csr, out))
}

/// The selection placing input `which` of a Concat along non-batch `axis` into the output.
pub fn concat_part(shapes: &[Vec<usize>], axis: usize, which: usize) -> (Csr, Vec<usize>) {
    let mut out = shapes[0].clone();
    out[axis] = shapes.iter().map(|s| s[axis]).sum();
    let before: usize = shapes[..which].iter().map(|s| s[axis]).sum();
    let xs = &shapes[which];
    let xst = strides(xs);
    let n: usize = out.iter().product();
    let n_in: usize = xs.iter().product();
    let mut idx = vec![0usize; out.len()];
    let csr = Csr::build(n, n_in, |_, push| {
        let a = idx[axis];
        if a >= before && a < before + xs[axis] {
            let off: usize = idx
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if i == axis {
                        (v - before) * xst[i]
                    } else {
                        v * xst[i]
                    }
                })
                .sum();
            push(off, 1.0);
        }
        next_index(&mut idx, &out);
    });
    (csr, out)
}
