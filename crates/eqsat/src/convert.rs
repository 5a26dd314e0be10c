//! Circuit ⇄ e-graph conversion.

use std::collections::HashMap;

use egg::{EGraph, Extractor, Id, RecExpr, Symbol};
use pannc_fhe::{Circuit, CircuitBuilder, Op, Output, Term};

use crate::cost::LevelCost;
use crate::lang::{Fhe, LevelAnalysis, Scalar};
use crate::EqsatError;

/// The circuit as a shared term (a `RecExpr` is a DAG) plus the root of each output.
pub fn circuit_to_recexpr(c: &Circuit) -> Result<(RecExpr<Fhe>, Vec<Id>), EqsatError> {
    let mut e = RecExpr::default();
    let mut ids: Vec<Id> = Vec::with_capacity(c.num_values());
    let mut names = std::collections::HashSet::new();
    for inp in &c.inputs {
        if !names.insert(inp.name.as_str()) {
            return Err(EqsatError::Unsupported(format!(
                "duplicate input name '{}'",
                inp.name
            )));
        }
        ids.push(e.add(Fhe::Var(Symbol::from(inp.name.as_str()))));
    }
    for op in &c.ops {
        let g = |v: pannc_fhe::ValueId| ids[v.0 as usize];
        let node = match op.op {
            Op::Add { a, b } => Fhe::Add([g(a), g(b)]),
            Op::Sub { a, b } => Fhe::Sub([g(a), g(b)]),
            Op::Neg { a } => Fhe::Neg(g(a)),
            Op::Mul { a, b } => Fhe::Mul([g(a), g(b)]),
            Op::MulConst { a, c: k } => {
                let n = e.add(Fhe::Num(Scalar::new(c.constants[k.0 as usize])));
                Fhe::Mul([n, g(a)])
            }
            Op::MulInt { a, k } => {
                let n = e.add(Fhe::Num(Scalar::new(k as f64)));
                Fhe::Mul([n, g(a)])
            }
            Op::AddConst { a, c: k } => {
                let n = e.add(Fhe::Num(Scalar::new(c.constants[k.0 as usize])));
                Fhe::Add([g(a), n])
            }
        };
        ids.push(e.add(node));
    }
    let roots = c.outputs.iter().map(|o| ids[o.value.0 as usize]).collect();
    Ok((e, roots))
}

/// Extract the cheapest circuit for `roots` (one output per root, named and
/// with inputs as in `original`). Sharing follows e-classes: each class is
/// emitted once. `shared` are classes whose reuse counts as free (see
/// [`LevelCost`]).
pub fn extract_circuit(
    egraph: &EGraph<Fhe, LevelAnalysis>,
    roots: &[Id],
    original: &Circuit,
    shared: &[Id],
) -> Result<Circuit, EqsatError> {
    let shared = shared.iter().map(|i| egraph.find(*i)).collect();
    let ex = Extractor::new(egraph, LevelCost { egraph, shared });
    let mut open: std::collections::HashSet<Id> = std::collections::HashSet::new();
    let mut b = CircuitBuilder::new(original.name.clone());
    let mut inputs: HashMap<Symbol, pannc_fhe::ValueId> = HashMap::new();
    for inp in &original.inputs {
        let v = b.input(inp.name.clone())?;
        if let Some(m) = b.input_mut(v) {
            *m = pannc_fhe::Input {
                value: v,
                ..inp.clone()
            };
        }
        inputs.insert(Symbol::from(inp.name.as_str()), v);
    }
    let mut memo: HashMap<Id, Term> = HashMap::new();
    let mut outputs = vec![];
    for (root, out) in roots.iter().zip(&original.outputs) {
        // Iterative post-order over the chosen nodes.
        let mut stack: Vec<(Id, bool)> = vec![(egraph.find(*root), false)];
        while let Some((id, expanded)) = stack.pop() {
            if memo.contains_key(&id) {
                continue;
            }
            let node = ex.find_best_node(id).clone();
            let kids: Vec<Id> = egg::Language::children(&node)
                .iter()
                .map(|k| egraph.find(*k))
                .collect();
            if !expanded {
                if !open.insert(id) {
                    return Err(EqsatError::Extraction(format!(
                        "cyclic choice through class {id}"
                    )));
                }
                stack.push((id, true));
                for k in kids.iter().rev() {
                    if !memo.contains_key(k) {
                        stack.push((*k, false));
                    }
                }
                continue;
            }
            open.remove(&id);
            let t = |k: usize| memo[&kids[k]];
            let term = match node {
                Fhe::Num(s) => Term::Const(s.get()),
                Fhe::Var(s) => Term::Ct(
                    *inputs
                        .get(&s)
                        .ok_or_else(|| EqsatError::Extraction(format!("unknown input '{s}'")))?,
                ),
                Fhe::Add(_) => {
                    let (x, y) = (t(0), t(1));
                    b.add_terms(x, y)
                }
                Fhe::Sub(_) => {
                    let (x, y) = (t(0), t(1));
                    b.sub_terms(x, y)
                }
                Fhe::Mul(_) => {
                    let (x, y) = (t(0), t(1));
                    b.mul_terms(x, y)
                }
                Fhe::Neg(_) => match t(0) {
                    Term::Const(c) => Term::Const(-c),
                    Term::Ct(v) => Term::Ct(b.neg(v)),
                },
                Fhe::Cheb(_) | Fhe::Pow(_) => {
                    return Err(EqsatError::Extraction(format!(
                        "class {id} has only non-executable nodes ({node})"
                    )))
                }
            };
            memo.insert(id, term);
        }
        let t = memo[&egraph.find(*root)];
        let any = *inputs
            .values()
            .min()
            .ok_or_else(|| EqsatError::Extraction("circuit without inputs".into()))?;
        let v = b.materialise(t, any);
        outputs.push(Output {
            name: out.name.clone(),
            value: v,
        });
    }
    Ok(b.finish(outputs, None)?)
}
