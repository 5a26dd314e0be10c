//! Multiplicative depth (CKKS levels) of a compiled PANN, under the cost model of the circuit
//! emitter (`pannc_ckks::lower::slot_per_sample`): a chain of linear layers between two activations is one
//! affine form and costs one level when it is materialised (at a polynomial's input or at an
//! output) — on its terms with non-integer weights; terms added with weight one (a residual
//! branch) cost nothing; a polynomial costs its planned depth (`Poly::depth`, plus one when its input
//! scaling was not folded); additions and data movement are free.

use pannc_ir::{Graph, GraphError, Op};

/// Where an unmaterialised affine form's terms sit: the deepest ciphertext it multiplies by
/// a non-integer weight (`scaled`) and the deepest it adds with an integer weight (`unit`).
/// Materialising it costs one level on the scaled terms only.
#[derive(Copy, Clone, Debug, Default)]
struct Form {
    scaled: Option<usize>,
    unit: Option<usize>,
}

impl Form {
    fn at(level: usize) -> Form {
        Form {
            scaled: None,
            unit: Some(level),
        }
    }
    /// Level of the ciphertext the form materialises to.
    fn materialised(self) -> usize {
        self.scaled.map_or(0, |l| l + 1).max(self.unit.unwrap_or(0))
    }
    /// After a linear map with non-integer weights: every term is scaled.
    fn scale(self) -> Form {
        Form {
            scaled: self.scaled.max(self.unit),
            unit: None,
        }
    }
    fn join(self, o: Form) -> Form {
        Form {
            scaled: self.scaled.max(o.scaled),
            unit: self.unit.max(o.unit),
        }
    }
}

/// Levels the graph consumes from its inputs to its deepest output. Errors only on cycles.
pub fn levels(g: &Graph) -> Result<usize, GraphError> {
    let order = g.topo_order()?;
    let n = g.value_ids().map(|v| v.index() + 1).max().unwrap_or(0);
    let mut at = vec![Form::at(0); n];
    for id in order {
        let node = g.node(id);
        let ins: Vec<Form> = node
            .inputs()
            .iter()
            .filter(|&&v| g.constant(v).is_none())
            .map(|&v| at[v.index()])
            .collect();
        let joined = ins.iter().fold(Form::default(), |a, &b| a.join(b));
        let out = match &node.op {
            Op::Poly(p) => {
                let input = joined.materialised() + usize::from(p.in_scale != 1.0);
                Form::at(input + p.depth())
            }
            Op::Conv { .. }
            | Op::Gemm { .. }
            | Op::MatMul
            | Op::Mul
            | Op::Div
            | Op::AveragePool { .. }
            | Op::GlobalAveragePool
            | Op::ReduceMean { .. }
            | Op::BatchNormalization { .. } => {
                if ins.len() > 1 {
                    // A product of two computed values: materialise both, one ct×ct level.
                    let deepest = ins.iter().map(|f| f.materialised()).max().unwrap_or(0);
                    Form::at(deepest + 1)
                } else {
                    joined.scale()
                }
            }
            _ => joined,
        };
        for &v in node.outputs() {
            at[v.index()] = out;
        }
    }
    Ok(g.outputs()
        .iter()
        .map(|&v| at[v.index()].materialised())
        .max()
        .unwrap_or(0))
}

/// ct×ct multiplications per sample in the slot-per-sample model (one ciphertext per scalar
/// feature, samples in the slots), where every scalar product of two computed values is one:
/// a `Mul` of two computed values costs its output's elements, a `MatMul`/`Gemm` of two
/// computed operands `M·K·N` per matrix (attention's `Q·Kᵀ` and `A·V`), a `Poly` its planned
/// ct×ct count (BSGS per stage, plus the combine's product) times its elements. Dimensions
/// that are symbolic (the batch) count once. Products with constants are free.
pub fn ct_ct_mults(g: &Graph) -> Result<u64, GraphError> {
    let order = g.topo_order()?;
    let computed = pannc_ir::computed_values(g);
    let elems = |v: pannc_ir::ValueId| -> Vec<u64> {
        g.value(v).ty.as_ref().map_or(vec![1], |t| {
            t.shape
                .iter()
                .map(|d| match d {
                    pannc_ir::Dim::Known(n) => *n as u64,
                    pannc_ir::Dim::Sym(_) => 1,
                })
                .collect()
        })
    };
    let mut total = 0u64;
    for id in order {
        let node = g.node(id);
        let n_computed = node
            .inputs()
            .iter()
            .filter(|v| computed.contains(v))
            .count();
        let out = node.outputs().first().copied();
        let out_elems = || out.map_or(1, |v| elems(v).iter().product::<u64>());
        total += match &node.op {
            Op::Poly(p) => {
                let series: u64 = p
                    .stages
                    .iter()
                    .map(|s| {
                        pannc_approx::ChebSeries::new(s.lo, s.hi, s.coeffs.clone())
                            .map_or(0, |c| u64::from(pannc_approx::cost::series_ct_mults(&c)))
                    })
                    .sum();
                let combine = u64::from(!matches!(p.combine, pannc_ir::PolyCombine::Identity));
                (series + combine) * out_elems()
            }
            Op::Mul if n_computed == 2 => out_elems(),
            Op::MatMul | Op::Gemm { .. } if n_computed == 2 => {
                let k = elems(node.inputs()[1]);
                let inner = match node.op {
                    Op::Gemm { trans_b: true, .. } => k.last().copied().unwrap_or(1),
                    _ => k.iter().rev().nth(1).copied().unwrap_or(1),
                };
                out_elems() * inner
            }
            _ => 0,
        };
    }
    Ok(total)
}
