//! The graph: operations as nodes of a petgraph `StableGraph`, values as typed ids.
//!
//! Every value is either a graph input or output `port` of exactly one node. A node lists
//! its inputs as value ids; the petgraph edges (producer → consumer, weighted by the input
//! slot) mirror those lists and are maintained by the methods here, never by callers.

use crate::op::Op;
use crate::tensor::{DType, Tensor};
use petgraph::stable_graph::{NodeIndex, StableGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;

/// Identifies a node (an operation) of a [`Graph`]. Stable across removals of other nodes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

/// Identifies a value (an SSA tensor) of a [`Graph`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
    fn ix(self) -> NodeIndex<u32> {
        NodeIndex::new(self.0 as usize)
    }
}

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// One dimension of a shape: a known size or a named symbolic size (the batch, usually).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Known(usize),
    Sym(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
        }
    }
}

/// The static type of a value: element type and (possibly symbolic) shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<Dim>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: Vec<Dim>) -> Self {
        TensorType { dtype, shape }
    }
    /// A type with all dimensions known.
    pub fn known(dtype: DType, shape: &[usize]) -> Self {
        TensorType {
            dtype,
            shape: shape.iter().map(|&d| Dim::Known(d)).collect(),
        }
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    /// The shape if every dimension is known.
    pub fn known_shape(&self) -> Option<Vec<usize>> {
        self.shape
            .iter()
            .map(|d| match d {
                Dim::Known(n) => Some(*n),
                Dim::Sym(_) => None,
            })
            .collect()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        write!(f, "{}[{}]", self.dtype, dims.join(","))
    }
}

/// An operation with its inputs and outputs.
#[derive(Clone, Debug)]
pub struct Node {
    /// The node's name from the source model (may be empty; the printer does not rely on it).
    pub name: String,
    pub op: Op,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
}

impl Node {
    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }
    pub fn outputs(&self) -> &[ValueId] {
        &self.outputs
    }
}

/// Where a value comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Producer {
    /// The `index`-th graph input.
    Input,
    /// Output `port` of `node`.
    Node { node: NodeId, port: usize },
}

/// A value: a tensor flowing along the edges.
#[derive(Clone, Debug)]
pub struct Value {
    /// The value's name from the source model (ONNX tensor names); unique in a graph.
    pub name: String,
    /// Static type, when known (filled by shape inference).
    pub ty: Option<TensorType>,
    producer: Producer,
}

impl Value {
    pub fn producer(&self) -> Producer {
        self.producer
    }
}

#[derive(Copy, Clone, Debug)]
struct Edge {
    slot: usize,
}

/// Errors from graph edits.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GraphError {
    #[error("value {0} does not exist")]
    NoSuchValue(ValueId),
    #[error("cycle through node '{0}'")]
    Cycle(String),
    #[error("value name '{0}' is defined twice")]
    DuplicateName(String),
}

/// A dataflow graph of [`Op`]s. See the crate docs for its invariants.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub name: String,
    /// Opset version of the default ONNX domain this graph was written against.
    pub opset: i64,
    g: StableGraph<Node, Edge>,
    values: Vec<Option<Value>>,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
    names: HashMap<String, ValueId>,
}

impl Graph {
    pub fn new(name: impl Into<String>, opset: i64) -> Self {
        Graph {
            name: name.into(),
            opset,
            ..Default::default()
        }
    }

    fn new_value(&mut self, name: String, producer: Producer) -> Result<ValueId, GraphError> {
        if !name.is_empty() && self.names.contains_key(&name) {
            return Err(GraphError::DuplicateName(name));
        }
        let id = ValueId(self.values.len() as u32);
        let name = if name.is_empty() {
            format!("_v{}", id.0)
        } else {
            name
        };
        self.names.insert(name.clone(), id);
        self.values.push(Some(Value {
            name,
            ty: None,
            producer,
        }));
        Ok(id)
    }

    /// Adds a graph input.
    pub fn add_input(
        &mut self,
        name: impl Into<String>,
        ty: Option<TensorType>,
    ) -> Result<ValueId, GraphError> {
        let id = self.new_value(name.into(), Producer::Input)?;
        self.values[id.index()].as_mut().unwrap().ty = ty;
        self.inputs.push(id);
        Ok(id)
    }

    /// Adds a node whose outputs get the given names (empty names are generated).
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: &[ValueId],
        output_names: &[String],
    ) -> Result<(NodeId, Vec<ValueId>), GraphError> {
        for &v in inputs {
            self.try_value(v)?;
        }
        for n in output_names {
            if !n.is_empty() && self.names.contains_key(n) {
                return Err(GraphError::DuplicateName(n.clone()));
            }
        }
        let ix = self.g.add_node(Node {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
            outputs: vec![],
        });
        let id = NodeId(ix.index() as u32);
        let mut outs = Vec::with_capacity(output_names.len());
        for (port, n) in output_names.iter().enumerate() {
            outs.push(self.new_value(n.clone(), Producer::Node { node: id, port })?);
        }
        self.g[ix].outputs = outs.clone();
        for (slot, &v) in inputs.iter().enumerate() {
            if let Producer::Node { node, .. } = self.value(v).producer {
                self.g.add_edge(node.ix(), ix, Edge { slot });
            }
        }
        Ok((id, outs))
    }

    /// Adds a single-output node and returns its output value.
    pub fn add_simple(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: &[ValueId],
    ) -> Result<ValueId, GraphError> {
        let name = name.into();
        let (_, outs) = self.add_node(name, op, inputs, &[String::new()])?;
        Ok(outs[0])
    }

    /// Adds a constant node and returns its value, typed from the tensor.
    pub fn add_constant(
        &mut self,
        name: impl Into<String>,
        t: Tensor,
    ) -> Result<ValueId, GraphError> {
        let name = name.into();
        let ty = TensorType::known(t.dtype(), t.shape());
        let (_, outs) = self.add_node(name.clone(), Op::Constant(t), &[], &[name])?;
        self.values[outs[0].index()].as_mut().unwrap().ty = Some(ty);
        Ok(outs[0])
    }

    pub fn set_outputs(&mut self, outputs: Vec<ValueId>) {
        self.outputs = outputs;
    }

    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }
    pub fn outputs(&self) -> &[ValueId] {
        &self.outputs
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id.ix()]
    }

    /// Mutable access to a node's op (its attributes); inputs change through [`Graph::set_input`].
    pub fn op_mut(&mut self, id: NodeId) -> &mut Op {
        &mut self.g[id.ix()].op
    }

    pub fn contains_node(&self, id: NodeId) -> bool {
        self.g.contains_node(id.ix())
    }

    pub fn value(&self, id: ValueId) -> &Value {
        self.values[id.index()].as_ref().expect("dangling ValueId")
    }

    pub fn try_value(&self, id: ValueId) -> Result<&Value, GraphError> {
        self.values
            .get(id.index())
            .and_then(|v| v.as_ref())
            .ok_or(GraphError::NoSuchValue(id))
    }

    pub fn value_mut(&mut self, id: ValueId) -> &mut Value {
        self.values[id.index()].as_mut().expect("dangling ValueId")
    }

    /// Renames a value, keeping names unique.
    pub fn rename_value(&mut self, id: ValueId, name: String) -> Result<(), GraphError> {
        if self.names.get(&name).is_some_and(|&v| v != id) {
            return Err(GraphError::DuplicateName(name));
        }
        let old = std::mem::replace(&mut self.value_mut(id).name, name.clone());
        self.names.remove(&old);
        self.names.insert(name, id);
        Ok(())
    }

    pub fn find_value(&self, name: &str) -> Option<ValueId> {
        self.names.get(name).copied()
    }

    /// The node producing `v`, if it is not a graph input.
    pub fn producer(&self, v: ValueId) -> Option<NodeId> {
        match self.value(v).producer {
            Producer::Node { node, .. } => Some(node),
            Producer::Input => None,
        }
    }

    /// The constant tensor behind `v`, if `v` is produced by a `Constant` node.
    pub fn constant(&self, v: ValueId) -> Option<&Tensor> {
        match &self.node(self.producer(v)?).op {
            Op::Constant(t) => Some(t),
            _ => None,
        }
    }

    /// All node ids, in insertion order.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.g
            .node_indices()
            .map(|ix| NodeId(ix.index() as u32))
            .collect()
    }

    pub fn node_count(&self) -> usize {
        self.g.node_count()
    }

    /// All live values, in creation order.
    pub fn value_ids(&self) -> impl Iterator<Item = ValueId> + '_ {
        self.values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_some())
            .map(|(i, _)| ValueId(i as u32))
    }

    /// Consumers of `v` as `(node, input slot)`, sorted.
    pub fn users(&self, v: ValueId) -> Vec<(NodeId, usize)> {
        let mut out = Vec::new();
        match self.value(v).producer {
            Producer::Node { node, .. } => {
                for e in self.g.edges_directed(node.ix(), Direction::Outgoing) {
                    let consumer = NodeId(e.target().index() as u32);
                    if self.node(consumer).inputs.get(e.weight().slot) == Some(&v) {
                        out.push((consumer, e.weight().slot));
                    }
                }
            }
            Producer::Input => {
                for ix in self.g.node_indices() {
                    for (slot, &i) in self.g[ix].inputs.iter().enumerate() {
                        if i == v {
                            out.push((NodeId(ix.index() as u32), slot));
                        }
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Whether `v` is read by any node or is a graph output.
    pub fn is_used(&self, v: ValueId) -> bool {
        self.outputs.contains(&v) || !self.users(v).is_empty()
    }

    /// Rewires input `slot` of `node` to read `v`.
    pub fn set_input(&mut self, node: NodeId, slot: usize, v: ValueId) -> Result<(), GraphError> {
        self.try_value(v)?;
        let ix = node.ix();
        // Drop the edge of the old input.
        let old: Vec<_> = self
            .g
            .edges_directed(ix, Direction::Incoming)
            .filter(|e| e.weight().slot == slot)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.g.remove_edge(e);
        }
        self.g[ix].inputs[slot] = v;
        if let Producer::Node { node: p, .. } = self.value(v).producer {
            self.g.add_edge(p.ix(), ix, Edge { slot });
        }
        Ok(())
    }

    /// Replaces the whole input list of `node`.
    pub fn set_inputs(&mut self, node: NodeId, inputs: &[ValueId]) -> Result<(), GraphError> {
        for &v in inputs {
            self.try_value(v)?;
        }
        let ix = node.ix();
        let old: Vec<_> = self
            .g
            .edges_directed(ix, Direction::Incoming)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.g.remove_edge(e);
        }
        self.g[ix].inputs = inputs.to_vec();
        for (slot, &v) in inputs.iter().enumerate() {
            if let Producer::Node { node: p, .. } = self.value(v).producer {
                self.g.add_edge(p.ix(), ix, Edge { slot });
            }
        }
        Ok(())
    }

    /// Makes every reader of `old` (and the graph outputs) read `new` instead.
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) -> Result<(), GraphError> {
        self.try_value(new)?;
        for (node, slot) in self.users(old) {
            self.set_input(node, slot, new)?;
        }
        for o in &mut self.outputs {
            if *o == old {
                *o = new;
            }
        }
        Ok(())
    }

    /// Turns graph input `v` into a constant holding `t` (specialising the graph to that
    /// value, e.g. for shape-like inputs) and returns the constant's value. The input keeps
    /// its name on the constant.
    pub fn bind_input(&mut self, v: ValueId, t: Tensor) -> Result<ValueId, GraphError> {
        self.try_value(v)?;
        let pos = self
            .inputs
            .iter()
            .position(|&i| i == v)
            .ok_or(GraphError::NoSuchValue(v))?;
        let name = self.value(v).name.clone();
        self.rename_value(v, format!("{name}__unbound"))?;
        let c = self.add_constant(name, t)?;
        self.replace_all_uses(v, c)?;
        self.inputs.remove(pos);
        let vname = self.value(v).name.clone();
        self.names.remove(&vname);
        self.values[v.index()] = None;
        Ok(c)
    }

    /// Removes a node and its output values. Callers must first rewire the outputs' users;
    /// any value still read elsewhere makes this return the node back untouched (`false`).
    pub fn remove_node(&mut self, id: NodeId) -> bool {
        let outs = self.node(id).outputs.clone();
        if outs.iter().any(|&v| self.is_used(v)) {
            return false;
        }
        for v in outs {
            let name = self.value(v).name.clone();
            self.names.remove(&name);
            self.values[v.index()] = None;
        }
        self.g.remove_node(id.ix());
        true
    }

    /// Nodes in a deterministic topological order (Kahn's algorithm, ties broken by
    /// insertion order). Fails on a cycle, naming a node on it.
    pub fn topo_order(&self) -> Result<Vec<NodeId>, GraphError> {
        let mut indeg: BTreeMap<u32, usize> = BTreeMap::new();
        for ix in self.g.node_indices() {
            indeg.insert(
                ix.index() as u32,
                self.g.edges_directed(ix, Direction::Incoming).count(),
            );
        }
        let mut ready: BinaryHeap<std::cmp::Reverse<u32>> = indeg
            .iter()
            .filter(|(_, &d)| d == 0)
            .map(|(&n, _)| std::cmp::Reverse(n))
            .collect();
        let mut order = Vec::with_capacity(indeg.len());
        while let Some(std::cmp::Reverse(n)) = ready.pop() {
            order.push(NodeId(n));
            for e in self
                .g
                .edges_directed(NodeIndex::new(n as usize), Direction::Outgoing)
            {
                let t = e.target().index() as u32;
                let d = indeg.get_mut(&t).unwrap();
                *d -= 1;
                if *d == 0 {
                    ready.push(std::cmp::Reverse(t));
                }
            }
        }
        if order.len() != indeg.len() {
            let placed: std::collections::HashSet<u32> = order.iter().map(|n| n.0).collect();
            let stuck = indeg
                .keys()
                .find(|n| !placed.contains(n))
                .copied()
                .unwrap_or(0);
            return Err(GraphError::Cycle(self.node(NodeId(stuck)).name.clone()));
        }
        Ok(order)
    }
}
