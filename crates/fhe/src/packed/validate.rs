//! The Validity rules of `docs/packed-format.md`, each failure one line:
//! `<where>: <what> [rule N: <name>]`.

use std::collections::BTreeSet;

use super::cost::Bsgs;
use super::layout::{ciphertexts, positions};
use super::{invalid, op_where, OpKind, PackedError, Program, Result, Weights};

const R1: &str = "rule 1: header";
const R2: &str = "rule 2: shapes";
const R3: &str = "rule 3: levels";
const R4: &str = "rule 4: linear";
const R4R: &str = "rule 4: rotations";
const R6: &str = "rule 6: outputs";

/// Checks every rule of the spec's Validity section (rule 5, the embedded circuits, is checked
/// when they are parsed: [`Program::from_json`]), plus the declared `stats`.
pub fn validate(p: &Program, w: &Weights) -> Result<()> {
    let s = p.slots;
    if s < 2 || !s.is_power_of_two() {
        return Err(invalid(
            "program",
            R1,
            format!("slots {s} is not a power of two ≥ 2"),
        ));
    }
    let n_in = p.inputs.len();
    if n_in == 0 {
        return Err(invalid("program", R1, "no inputs"));
    }
    if p.values.len() != n_in + p.ops.len() {
        return Err(invalid(
            "program",
            R1,
            format!(
                "{} values for {n_in} inputs and {} ops (each defines one)",
                p.values.len(),
                p.ops.len()
            ),
        ));
    }
    for (i, v) in p.values.iter().enumerate() {
        let where_ = format!("value {i}");
        if v.id as usize != i {
            return Err(invalid(
                &where_,
                R1,
                format!("has id {}; ids must be dense", v.id),
            ));
        }
        if v.shape.contains(&0) {
            return Err(invalid(
                &where_,
                R2,
                format!("shape {:?} has a zero dimension", v.shape),
            ));
        }
        if let Some(l) = &v.layout {
            l.check(&v.shape).map_err(|m| invalid(&where_, R2, m))?;
        }
        let want = ciphertexts(&v.shape, v.layout.as_ref(), s)
            .ok_or_else(|| invalid(&where_, R2, "size overflows"))?;
        if v.ciphertexts != want {
            return Err(invalid(
                &where_,
                R2,
                format!("ciphertexts {} but its extent needs {want}", v.ciphertexts),
            ));
        }
        if let Some([lo, hi]) = v.range {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(invalid(
                    &where_,
                    R1,
                    format!("range [{lo}, {hi}] is not [lo, hi]"),
                ));
            }
        }
    }
    for (i, io) in p.inputs.iter().enumerate() {
        let where_ = format!("input #{i} ({})", io.name);
        if io.value as usize != i {
            return Err(invalid(&where_, R1, format!("must be value {i}")));
        }
        let v = &p.values[i];
        if io.shape != v.shape {
            return Err(invalid(
                &where_,
                R2,
                format!(
                    "shape {:?} differs from value {i}'s {:?}",
                    io.shape, v.shape
                ),
            ));
        }
        if v.layout.is_some() {
            return Err(invalid(&where_, R2, "inputs are compact (no layout)"));
        }
        if v.level != 0 {
            return Err(invalid(
                &where_,
                R3,
                format!(
                    "inputs are encrypted at level 0, value {i} says {}",
                    v.level
                ),
            ));
        }
    }
    if p.rotations.iter().any(|&k| k == 0 || k >= s) {
        return Err(invalid(
            "program",
            R4R,
            format!("`rotations` must be in 1..{}", s - 1),
        ));
    }
    if p.rotations.windows(2).any(|x| x[0] >= x[1]) {
        return Err(invalid(
            "program",
            R4R,
            "`rotations` must be sorted without duplicates",
        ));
    }
    let rotset: BTreeSet<usize> = p.rotations.iter().copied().collect();
    let mut level: Vec<u32> = p.values[..n_in].iter().map(|v| v.level).collect();
    for (j, op) in p.ops.iter().enumerate() {
        let where_ = op_where(j, op);
        let out = n_in + j;
        if op.out as usize != out {
            return Err(invalid(
                &where_,
                R1,
                format!("op #{j} must define value {out}"),
            ));
        }
        for a in op.kind.args() {
            if a as usize >= out {
                return Err(invalid(
                    &where_,
                    R1,
                    format!("operand {a} is not defined before this op"),
                ));
            }
        }
        let vo = &p.values[out];
        let same_as = |a: u32| -> Result<()> {
            let va = &p.values[a as usize];
            if va.shape != vo.shape || va.layout != vo.layout {
                return Err(invalid(
                    &where_,
                    R2,
                    format!(
                        "result shape/layout {:?}/{:?} differs from value {a}'s {:?}/{:?}",
                        vo.shape, vo.layout, va.shape, va.layout
                    ),
                ));
            }
            Ok(())
        };
        match &op.kind {
            OpKind::Linear {
                input,
                weights,
                n1,
                diagonals,
                out_shape,
            } => {
                if *out_shape != vo.shape {
                    return Err(invalid(
                        &where_,
                        R2,
                        format!(
                            "out_shape {out_shape:?} differs from value {out}'s shape {:?}",
                            vo.shape
                        ),
                    ));
                }
                if *n1 == 0 || *n1 > s {
                    return Err(invalid(&where_, R4, format!("n1 = {n1} is not in 1..{s}")));
                }
                let lw = w.get(weights).ok_or_else(|| {
                    invalid(
                        &where_,
                        R4,
                        format!("weights.npz has no arrays `{weights}_*`"),
                    )
                })?;
                let vi = &p.values[*input as usize];
                let (m_in, m_out) = (vi.ciphertexts, vo.ciphertexts);
                if lw.index.len() != *diagonals {
                    return Err(invalid(
                        &where_,
                        R4,
                        format!(
                            "diagonals = {diagonals} but `{weights}_index` has {} rows",
                            lw.index.len()
                        ),
                    ));
                }
                if lw.diag.len() != lw.index.len() * s || lw.bias.len() != m_out * s {
                    return Err(invalid(
                        &where_,
                        R4,
                        format!(
                            "`{weights}_diag`/`{weights}_bias` must be [{}, {s}]/[{m_out}, {s}]",
                            lw.index.len()
                        ),
                    ));
                }
                for (r, &[o, i, k]) in lw.index.iter().enumerate() {
                    if o >= m_out || i >= m_in || k >= s {
                        return Err(invalid(&where_, R4, format!("`{weights}_index` row {r} = ({o}, {i}, {k}) needs o < {m_out}, i < {m_in}, k < {s}")));
                    }
                    if r > 0 && lw.index[r - 1] >= [o, i, k] {
                        return Err(invalid(&where_, R4, format!("`{weights}_index` rows must be sorted by (o, i, k), each once (row {r})")));
                    }
                }
                if let Some(x) = lw.diag.iter().chain(&lw.bias).find(|x| !x.is_finite()) {
                    return Err(invalid(
                        &where_,
                        R4,
                        format!("`{weights}` has a non-finite weight ({x})"),
                    ));
                }
                // Diagonals read only used input slots and write only used output slots; the
                // bias is zero in unused output slots.
                let used_in = mask(&vi.shape, vi.layout.as_ref(), m_in, s);
                let used_out = mask(&vo.shape, vo.layout.as_ref(), m_out, s);
                for (r, &[o, i, k]) in lw.index.iter().enumerate() {
                    let d = lw.diag_row(r, s);
                    for (t, &x) in d.iter().enumerate() {
                        if x != 0.0 && (!used_out[o * s + t] || !used_in[i * s + (t + k) % s]) {
                            return Err(invalid(&where_, R4, format!("`{weights}_diag` row {r} = ({o}, {i}, {k}) is non-zero at slot {t}, which reads or writes an unused slot")));
                        }
                    }
                }
                if let Some(t) = lw
                    .bias
                    .iter()
                    .enumerate()
                    .position(|(t, &b)| b != 0.0 && !used_out[t])
                {
                    return Err(invalid(
                        &where_,
                        R4,
                        format!("`{weights}_bias` is non-zero at unused position {t}"),
                    ));
                }
                let plan = Bsgs::new(&lw.index, *n1, s);
                if let Some(k) = plan.amounts().into_iter().find(|k| !rotset.contains(k)) {
                    return Err(invalid(
                        &where_,
                        R4R,
                        format!("needs rotation by {k} (n1 = {n1}), which is not in `rotations`"),
                    ));
                }
            }
            OpKind::Poly { input, .. } => same_as(*input)?,
            OpKind::Add { a, b } => {
                let (va, vb) = (&p.values[*a as usize], &p.values[*b as usize]);
                if va.shape != vb.shape || va.layout != vb.layout {
                    return Err(invalid(
                        &where_,
                        R2,
                        format!(
                            "operands have shapes/layouts {:?}/{:?} and {:?}/{:?}",
                            va.shape, va.layout, vb.shape, vb.layout
                        ),
                    ));
                }
                same_as(*a)?;
            }
            OpKind::MulConst { a, c } => {
                if !c.is_finite() {
                    return Err(invalid(&where_, R1, format!("constant {c} is not finite")));
                }
                same_as(*a)?;
            }
            OpKind::Rotate { a, k } => {
                if p.values[*a as usize].ciphertexts != 1 {
                    return Err(invalid(&where_, R2, format!("rotates value {a} of {} ciphertexts (only one-ciphertext values rotate)", p.values[*a as usize].ciphertexts)));
                }
                if !rotset.contains(k) {
                    return Err(invalid(
                        &where_,
                        R4R,
                        format!("rotation by {k} has no key in `rotations`"),
                    ));
                }
                same_as(*a)?;
            }
            OpKind::Bootstrap { input } => {
                if level[*input as usize] < 1 {
                    return Err(invalid(&where_, R3, format!("bootstrap input (value {input}) is at level 0; it must have used its levels")));
                }
                same_as(*input)?;
            }
        }
        let l = op.kind.result_level(|v| level[v as usize]);
        if op.level != l || vo.level != l {
            return Err(invalid(
                &where_,
                R3,
                format!(
                    "declares level {} (value {}), the level rule gives {l}",
                    op.level, vo.level
                ),
            ));
        }
        level.push(l);
    }
    let depth = level.iter().copied().max().unwrap_or(0);
    if p.depth != depth {
        return Err(invalid(
            "program",
            R3,
            format!(
                "depth {} but the max level of any value is {depth}",
                p.depth
            ),
        ));
    }
    if depth > p.ckks.levels {
        return Err(invalid(
            "program",
            R3,
            format!("depth {depth} exceeds ckks.levels {}", p.ckks.levels),
        ));
    }
    if p.outputs.is_empty() {
        return Err(invalid("program", R6, "no outputs"));
    }
    for (i, o) in p.outputs.iter().enumerate() {
        let where_ = format!("output #{i} ({})", o.name);
        let v = p.values.get(o.value as usize).ok_or_else(|| {
            invalid(
                &where_,
                R6,
                format!("names value {}, which is not defined", o.value),
            )
        })?;
        if o.shape != v.shape {
            return Err(invalid(
                &where_,
                R2,
                format!(
                    "shape {:?} differs from value {}'s {:?}",
                    o.shape, o.value, v.shape
                ),
            ));
        }
        if v.layout.is_some() {
            return Err(invalid(&where_, R2, "outputs are compact (no layout)"));
        }
    }
    let mut again = p.clone();
    again.refresh_derived(w)?;
    if again.rotations != p.rotations {
        let missing: Vec<_> = again
            .rotations
            .iter()
            .filter(|k| !rotset.contains(k))
            .collect();
        if missing.is_empty() {
            return Err(invalid(
                "program",
                R4R,
                "`rotations` lists amounts no op uses",
            ));
        }
    }
    if again.stats != p.stats {
        return Err(PackedError::Invalid(format!(
            "program: declared stats {:?} differ from the ops' {:?} [stats]",
            p.stats, again.stats
        )));
    }
    Ok(())
}

fn mask(shape: &[usize], layout: Option<&super::Layout>, cts: usize, s: usize) -> Vec<bool> {
    let mut m = vec![false; cts * s];
    for p in positions(shape, layout) {
        m[p] = true;
    }
    m
}
