//! A small graph builder for rewrites that replace one node by several (the transformer
//! decompositions): fresh names derived from the replaced node's, errors naming it.

use crate::util::unique_name;
use crate::PassError;
use pannc_ir::{DType, Graph, NodeId, Op, Tensor, ValueId};

pub(crate) struct Builder<'a> {
    pub g: &'a mut Graph,
    pub pass: &'static str,
    /// Name of the node being replaced (prefix of every new name).
    pub name: String,
    pub op: &'static str,
    pub dtype: DType,
}

impl<'a> Builder<'a> {
    pub fn new(g: &'a mut Graph, pass: &'static str, id: NodeId, dtype: DType) -> Self {
        let n = g.node(id);
        let (name, op) = (n.name.clone(), n.op.name());
        Builder {
            g,
            pass,
            name,
            op,
            dtype,
        }
    }

    pub fn err(&self, message: impl ToString) -> PassError {
        PassError::Node {
            pass: self.pass,
            node: self.name.clone(),
            op: self.op,
            message: message.to_string(),
        }
    }

    /// A constant of the builder's dtype from f64 data.
    pub fn konst(
        &mut self,
        tag: &str,
        shape: &[usize],
        data: Vec<f64>,
    ) -> Result<ValueId, PassError> {
        let t = Tensor::from_f64(shape, data)
            .ok_or_else(|| self.err(format!("constant '{tag}': data does not fill {shape:?}")))?
            .cast(self.dtype);
        let name = unique_name(self.g, format!("{}.{tag}", self.name));
        self.g.add_constant(name, t).map_err(|e| self.err(e))
    }

    pub fn node(&mut self, tag: &str, op: Op, inputs: &[ValueId]) -> Result<ValueId, PassError> {
        let name = unique_name(self.g, format!("{}.{tag}", self.name));
        self.g.add_simple(name, op, inputs).map_err(|e| self.err(e))
    }
}

/// The static shape of `v`, if known.
pub(crate) fn known_shape(g: &Graph, v: ValueId) -> Option<Vec<pannc_ir::Dim>> {
    g.value(v).ty.as_ref().map(|t| t.shape.clone())
}

/// The float dtype of `v` (f32 when unknown).
pub(crate) fn float_dtype(g: &Graph, v: ValueId) -> DType {
    match g.value(v).ty.as_ref().map(|t| t.dtype) {
        Some(DType::F64) => DType::F64,
        _ => DType::F32,
    }
}

/// `I − J/n` (centering over the last axis), each column `j` times `scale[j]`, times `c`:
/// `x · C` subtracts the row mean and scales, as one linear layer.
pub(crate) fn centering(n: usize, scale: Option<&[f64]>, c: f64) -> Vec<f64> {
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let v = f64::from(u8::from(i == j)) - 1.0 / n as f64;
            m[i * n + j] = c * v * scale.map_or(1.0, |s| s[j]);
        }
    }
    m
}
