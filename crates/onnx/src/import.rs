//! ONNX bytes → [`Model`]: decode, validate the graph's structure, convert tensors and types,
//! then parse each node (in a topological order) through the op registry.

use crate::error::{OnnxError, Unsupported};
use crate::external;
use crate::limits::{Budget, Limits};
use crate::ops::{self, ImportState, NameGen, ParseCtx};
use crate::pb;
use crate::tensor::{tensor_from_proto, type_from_proto};
use crate::Model;
use pannc_ir::{Graph, TensorType};
use prost::Message;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

/// Oldest default-domain opset pannc reads.
pub const MIN_OPSET: i64 = 6;
/// Newest default-domain opset pannc reads (the newest the vendored onnx.proto's release
/// defines; none of the supported ops changed meaning after opset 22 for f32/f64/i64).
pub const MAX_OPSET: i64 = 27;

pub(crate) fn decode_model(bytes: &[u8]) -> Result<pb::ModelProto, OnnxError> {
    pb::ModelProto::decode(bytes).map_err(|e| OnnxError::Decode {
        what: "ONNX model",
        msg: short(e.to_string()),
    })
}

/// Keeps decode messages readable: prost lists the whole field path, which for a recursion
/// bomb is thousands of characters.
pub(crate) fn short(msg: String) -> String {
    const MAX: usize = 240;
    if msg.len() <= MAX {
        return msg;
    }
    let head: String = msg.chars().take(100).collect();
    let tail: Vec<char> = msg.chars().rev().take(120).collect();
    let tail: String = tail.into_iter().rev().collect();
    format!("{head} ... {tail}")
}

fn is_default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

/// Opset versions by domain (the default domain under `""`).
pub(crate) fn opset_map(m: &pb::ModelProto) -> Result<HashMap<String, i64>, OnnxError> {
    let mut map = HashMap::new();
    for o in &m.opset_import {
        let d = if is_default_domain(o.domain()) {
            String::new()
        } else {
            o.domain().to_string()
        };
        if let Some(prev) = map.insert(d.clone(), o.version()) {
            if prev != o.version() {
                return Err(OnnxError::BadModel(format!(
                    "domain '{d}' is imported twice, at opsets {prev} and {}",
                    o.version()
                )));
            }
        }
    }
    Ok(map)
}

/// Every node pannc cannot import: non-default domains, unknown ops, ops newer than the opset.
pub(crate) fn unsupported_nodes(
    graph: &pb::GraphProto,
    opsets: &HashMap<String, i64>,
) -> Vec<Unsupported> {
    let opset = opsets.get("").copied().unwrap_or(0);
    let kept = ops::opaque::preserved_tail(graph);
    let mut out = Vec::new();
    for (n, kept) in graph.node.iter().zip(kept) {
        let domain = if is_default_domain(n.domain()) {
            ""
        } else {
            n.domain()
        };
        let reason = if kept {
            None
        } else if !domain.is_empty() {
            Some(format!(
                "domain {domain}{} is not supported; pannc keeps only {} nodes, uninterpreted",
                opsets
                    .get(domain)
                    .map_or(String::new(), |v| format!(" (opset {v})")),
                ops::opaque::PRESERVED_DOMAINS.join(", ")
            ))
        } else {
            match ops::lookup(n.op_type()) {
                None => Some("not implemented by pannc".to_string()),
                Some(d) if d.since > opset => Some(format!(
                    "not defined before opset {}; the model imports opset {opset}",
                    d.since
                )),
                Some(_) => None,
            }
        };
        if let Some(reason) = reason {
            out.push(Unsupported {
                op_type: n.op_type().to_string(),
                node: n.name().to_string(),
                domain: domain.to_string(),
                opset: opsets.get(domain).copied(),
                reason,
            });
        }
    }
    out
}

/// Input slots that carry shape or index data (where narrow integer constants may widen).
fn is_index_slot(op: &str, slot: usize) -> bool {
    matches!(
        (op, slot),
        ("Reshape", 1)
            | ("Gather", 1)
            | ("Squeeze", 1)
            | ("Unsqueeze", 1)
            | ("ReduceMean", 1)
            | ("Pad", 1)
            | ("Pad", 3)
            | ("ConstantOfShape", 0)
            | ("Slice", 1..=4)
            | ("Split", 1)
            | ("Expand", 1)
            | ("Tile", 1)
            | ("GatherND", 1)
            | ("ReduceSum", 1)
            | ("ReduceMax", 1)
            | ("ReduceMin", 1)
    )
}

fn node_desc(n: &pb::NodeProto) -> String {
    format!("output of node '{}' ({})", n.name(), n.op_type())
}

/// Orders nodes so that producers come first, keeping the file order where it allows.
fn topo_sort(nodes: &[pb::NodeProto]) -> Result<Vec<usize>, OnnxError> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            producer.insert(o.as_str(), i);
        }
    }
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(nodes.len());
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        let mut d: Vec<usize> = n
            .input
            .iter()
            .filter_map(|x| producer.get(x.as_str()).copied())
            .collect();
        d.sort_unstable();
        d.dedup();
        for &p in &d {
            succ[p].push(i);
        }
        deps.push(d);
    }
    let mut indeg: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..nodes.len())
        .filter(|&i| indeg[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &s in &succ[i] {
            indeg[s] -= 1;
            if indeg[s] == 0 {
                ready.push(Reverse(s));
            }
        }
    }
    if order.len() == nodes.len() {
        return Ok(order);
    }
    // Walk back through unplaced producers until a node repeats: it lies on a cycle.
    let mut placed = vec![false; nodes.len()];
    for &i in &order {
        placed[i] = true;
    }
    let mut cur = (0..nodes.len()).find(|&i| !placed[i]).unwrap_or(0);
    let mut seen = vec![false; nodes.len()];
    while !seen[cur] {
        seen[cur] = true;
        match deps[cur].iter().find(|&&p| !placed[p]) {
            Some(&p) => cur = p,
            None => break,
        }
    }
    let n = &nodes[cur];
    Err(OnnxError::Cycle {
        node: n.name().to_string(),
        op: n.op_type().to_string(),
    })
}

/// Imports a decoded model.
pub(crate) fn import_model(
    m: &pb::ModelProto,
    limits: &Limits,
    ext: external::Source,
) -> Result<Model, OnnxError> {
    let graph = m.graph.as_ref().ok_or(OnnxError::MissingGraph)?;
    let opsets = opset_map(m)?;
    let opset = *opsets.get("").ok_or(OnnxError::MissingOpset)?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
        return Err(OnnxError::UnsupportedOpset {
            opset,
            min: MIN_OPSET,
            max: MAX_OPSET,
        });
    }
    let unsupported = unsupported_nodes(graph, &opsets);
    if !unsupported.is_empty() {
        return Err(OnnxError::Unsupported(unsupported));
    }
    if let Some(s) = graph.sparse_initializer.first() {
        let name = s.values.as_ref().map(|v| v.name()).unwrap_or_default();
        return Err(OnnxError::BadModel(format!(
            "sparse initializer '{name}' is not supported"
        )));
    }

    // --- definitions: every name defined exactly once ------------------------------------------
    let mut defs: HashMap<&str, String> = HashMap::new();
    let init_names: HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    for t in &graph.initializer {
        if t.name().is_empty() {
            return Err(OnnxError::BadModel("an initializer has no name".into()));
        }
        if let Some(first) = defs.insert(t.name(), format!("initializer '{}'", t.name())) {
            return Err(OnnxError::DuplicateName {
                name: t.name().to_string(),
                first,
                second: format!("initializer '{}'", t.name()),
            });
        }
    }
    let mut inputs: Vec<&pb::ValueInfoProto> = Vec::new();
    for vi in &graph.input {
        if vi.name().is_empty() {
            return Err(OnnxError::BadModel("a graph input has no name".into()));
        }
        if init_names.contains(vi.name()) {
            continue; // an old-style export listing its weights as inputs: they are constants
        }
        if let Some(first) = defs.insert(vi.name(), "graph input".into()) {
            return Err(OnnxError::DuplicateName {
                name: vi.name().to_string(),
                first,
                second: "graph input".into(),
            });
        }
        inputs.push(vi);
    }
    for n in &graph.node {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if let Some(first) = defs.insert(o.as_str(), node_desc(n)) {
                return Err(OnnxError::DuplicateName {
                    name: o.clone(),
                    first,
                    second: node_desc(n),
                });
            }
        }
    }
    for n in &graph.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            if !defs.contains_key(i.as_str()) {
                return Err(OnnxError::UndefinedInput {
                    node: n.name().to_string(),
                    op: n.op_type().to_string(),
                    input: i.clone(),
                });
            }
        }
    }
    if graph.output.is_empty() {
        return Err(OnnxError::BadModel(
            "the graph declares no outputs, so it computes nothing".into(),
        ));
    }
    for o in &graph.output {
        if !defs.contains_key(o.name()) {
            return Err(OnnxError::UndefinedOutput(o.name().to_string()));
        }
    }
    let order = topo_sort(&graph.node)?;
    // The nodes kept opaque (ai.onnx.ml and what is computed from them).
    let kept = ops::opaque::preserved_tail(graph);

    // --- uses ----------------------------------------------------------------------------------
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name()).collect();
    let mut used: HashSet<String> = outputs.iter().map(|s| s.to_string()).collect();
    let mut index_use: HashMap<&str, bool> = HashMap::new();
    for n in &graph.node {
        for (slot, i) in n.input.iter().enumerate().filter(|(_, i)| !i.is_empty()) {
            used.insert(i.clone());
            let e = index_use.entry(i.as_str()).or_insert(true);
            *e &= is_index_slot(n.op_type(), slot);
        }
    }
    let index_only: HashSet<String> = index_use
        .iter()
        .filter(|(n, &all)| all && !outputs.contains(*n))
        .map(|(n, _)| n.to_string())
        .collect();

    // --- constant data: the total of every declared tensor, before the first is converted ---
    let mut budget = Budget::new(*limits);
    for t in &graph.initializer {
        budget.add_proto(t, t.name())?;
    }
    for n in graph
        .node
        .iter()
        .filter(|n| n.op_type() == "Constant" && is_default_domain(n.domain()))
    {
        let out = n.output.first().map(String::as_str).unwrap_or_default();
        for a in n.attribute.iter().filter(|a| a.name() == "value") {
            if let Some(t) = &a.t {
                let name = match t.name() {
                    "" => out,
                    n => n,
                };
                budget.add_proto(t, name)?;
            }
        }
    }

    // --- initializer tensors (checked before any type, so a bad tensor is named as such) -----
    // An initializer of an element type pannc does not read (string class labels) is kept
    // opaque when only preserved nodes read it.
    let mut preserved_use: HashMap<&str, bool> = HashMap::new();
    for (n, &k) in graph.node.iter().zip(&kept) {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            *preserved_use.entry(i.as_str()).or_insert(true) &= k;
        }
    }
    let mut tensors = Vec::with_capacity(graph.initializer.len());
    for t in &graph.initializer {
        match tensor_from_proto(t, t.name(), index_only.contains(t.name()), limits, &ext) {
            Ok(x) => tensors.push(Some(x)),
            Err(OnnxError::UnsupportedDType { .. })
                if preserved_use.get(t.name()) == Some(&true) && !outputs.contains(t.name()) =>
            {
                tensors.push(None)
            }
            Err(e) => return Err(e),
        }
    }

    // --- static types ----------------------------------------------------------------------------
    // Outputs of preserved (opaque) nodes may have types the IR cannot express: kept encoded.
    let opaque_outs: HashSet<&str> = graph
        .node
        .iter()
        .zip(&kept)
        .filter(|(_, &k)| k)
        .flat_map(|(n, _)| n.output.iter().map(String::as_str))
        .collect();
    let mut foreign: HashMap<String, Vec<u8>> = HashMap::new();
    let mut unnamed = 0usize;
    let mut types: HashMap<String, TensorType> = HashMap::new();
    // value_info in the order values are defined, so that unnamed dimensions are numbered
    // the same however the file orders its value_info.
    let infos: HashMap<&str, &pb::ValueInfoProto> =
        graph.value_info.iter().map(|v| (v.name(), v)).collect();
    let by_definition = order
        .iter()
        .flat_map(|&i| graph.node[i].output.iter())
        .filter_map(|o| infos.get(o.as_str()).copied());
    for vi in inputs
        .iter()
        .copied()
        .chain(graph.output.iter())
        .chain(by_definition)
    {
        if !defs.contains_key(vi.name())
            || init_names.contains(vi.name())
            || types.contains_key(vi.name())
        {
            continue;
        }
        if opaque_outs.contains(vi.name()) {
            match type_from_proto(vi.r#type.as_ref(), vi.name(), &mut unnamed, limits) {
                Ok(Some(t)) => {
                    types.insert(vi.name().to_string(), t);
                }
                Ok(None) => {}
                Err(_) => {
                    if let Some(tp) = &vi.r#type {
                        foreign.insert(vi.name().to_string(), tp.encode_to_vec());
                    }
                }
            }
            continue;
        }
        if let Some(t) = type_from_proto(vi.r#type.as_ref(), vi.name(), &mut unnamed, limits)? {
            types.insert(vi.name().to_string(), t);
        }
    }

    // --- build -----------------------------------------------------------------------------------
    let mut names = NameGen::default();
    for n in defs.keys() {
        names.reserve(n);
    }
    for vi in &graph.value_info {
        names.reserve(vi.name());
    }
    let mut st = ImportState {
        g: Graph::new(graph.name(), opset),
        names,
        types,
        used,
        index_only,
        budget,
        foreign,
        ext,
    };
    for vi in inputs {
        let ty = st.types.get(vi.name()).cloned();
        st.g.add_input(vi.name(), ty)
            .map_err(|e| OnnxError::BadModel(e.to_string()))?;
    }
    for (t, tensor) in graph.initializer.iter().zip(tensors) {
        match tensor {
            Some(tensor) => {
                st.g.add_constant(t.name(), tensor)
                    .map_err(|e| OnnxError::BadModel(e.to_string()))?;
            }
            None => ops::opaque::import_initializer(&mut st, t)?,
        }
    }
    for &i in &order {
        let n = &graph.node[i];
        let mut ins: Vec<&str> = n.input.iter().map(String::as_str).collect();
        while ins.last().is_some_and(|s| s.is_empty()) {
            ins.pop();
        }
        let mut resolved = Vec::with_capacity(ins.len());
        for name in ins {
            if name.is_empty() {
                resolved.push(None);
                continue;
            }
            let v =
                st.g.find_value(name)
                    .ok_or_else(|| OnnxError::UndefinedInput {
                        node: n.name().to_string(),
                        op: n.op_type().to_string(),
                        input: name.to_string(),
                    })?;
            resolved.push(Some(v));
        }
        if kept[i] {
            let ins: Vec<_> = resolved.into_iter().flatten().collect();
            ops::opaque::import_node(&mut st, n, &ins)?;
            continue;
        }
        let def = ops::lookup(n.op_type())
            .ok_or_else(|| OnnxError::Unsupported(unsupported_nodes(graph, &opsets)))?;
        let mut ctx = ParseCtx::new(&mut st, n, opset, resolved);
        (def.parse)(&mut ctx)?;
    }
    let mut outs = Vec::with_capacity(graph.output.len());
    for o in &graph.output {
        let v =
            st.g.find_value(o.name())
                .ok_or_else(|| OnnxError::UndefinedOutput(o.name().to_string()))?;
        if st.g.value(v).ty.is_none() {
            st.g.value_mut(v).ty = st.types.get(o.name()).cloned();
        }
        outs.push(v);
    }
    st.g.set_outputs(outs);
    let errs = pannc_ir::verify(&st.g);
    if !errs.is_empty() {
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        return Err(OnnxError::BadModel(format!(
            "imported graph fails verification: {}",
            msgs.join("; ")
        )));
    }

    let mut opset_imports: Vec<(String, i64)> = m
        .opset_import
        .iter()
        .map(|o| {
            (
                if is_default_domain(o.domain()) {
                    String::new()
                } else {
                    o.domain().to_string()
                },
                o.version(),
            )
        })
        .collect();
    opset_imports.dedup();
    Ok(Model {
        graph: st.g,
        ir_version: m.ir_version(),
        opset_imports,
        producer_name: m.producer_name().to_string(),
        producer_version: m.producer_version().to_string(),
        domain: m.domain().to_string(),
        model_version: m.model_version(),
        doc_string: m.doc_string().to_string(),
        graph_doc_string: graph.doc_string().to_string(),
        metadata_props: m
            .metadata_props
            .iter()
            .map(|p| (p.key().to_string(), p.value().to_string()))
            .collect(),
    })
}
