//! Differential check: every real model decodes to the same content with prost (ours) and
//! with rust-protobuf (`onnx-protobuf`, an independent IR-10 schema), and our tensor
//! conversion agrees with values read from rust-protobuf's fields.

use crate::pb;
use onnx_protobuf as rp;
use prost::Message as _;
use protobuf::Message as _;
use std::path::PathBuf;

#[derive(Debug, PartialEq)]
struct TensorSum {
    name: String,
    dtype: i32,
    dims: Vec<i64>,
    raw: Vec<u8>,
    floats: Vec<u32>,
    doubles: Vec<u64>,
    int32: Vec<i32>,
    int64: Vec<i64>,
    uint64: Vec<u64>,
    strings: Vec<Vec<u8>>,
    external: Vec<(String, String)>,
}

#[derive(Debug, PartialEq)]
struct AttrSum {
    name: String,
    kind: i32,
    f: u32,
    i: i64,
    s: Vec<u8>,
    floats: Vec<u32>,
    ints: Vec<i64>,
    strings: Vec<Vec<u8>>,
    t: Option<TensorSum>,
    tensors: Vec<TensorSum>,
    n_graphs: usize,
}

#[derive(Debug, PartialEq)]
struct NodeSum {
    op_type: String,
    name: String,
    domain: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    attrs: Vec<AttrSum>,
}

#[derive(Debug, PartialEq)]
struct ModelSum {
    ir_version: i64,
    producer: String,
    opsets: Vec<(String, i64)>,
    graph_name: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    nodes: Vec<NodeSum>,
    inits: Vec<TensorSum>,
}

fn bits32(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
fn bits64(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn ours_tensor(t: &pb::TensorProto) -> TensorSum {
    TensorSum {
        name: t.name().to_string(),
        dtype: t.data_type(),
        dims: t.dims.clone(),
        raw: t.raw_data.clone().unwrap_or_default(),
        floats: bits32(&t.float_data),
        doubles: bits64(&t.double_data),
        int32: t.int32_data.clone(),
        int64: t.int64_data.clone(),
        uint64: t.uint64_data.clone(),
        strings: t.string_data.clone(),
        external: t
            .external_data
            .iter()
            .map(|e| (e.key().to_string(), e.value().to_string()))
            .collect(),
    }
}

fn theirs_tensor(t: &rp::TensorProto) -> TensorSum {
    TensorSum {
        name: t.name.clone(),
        dtype: t.data_type,
        dims: t.dims.clone(),
        raw: t.raw_data.clone(),
        floats: bits32(&t.float_data),
        doubles: bits64(&t.double_data),
        int32: t.int32_data.clone(),
        int64: t.int64_data.clone(),
        uint64: t.uint64_data.clone(),
        strings: t.string_data.clone(),
        external: t
            .external_data
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect(),
    }
}

fn ours(m: &pb::ModelProto) -> ModelSum {
    let g = m.graph.clone().unwrap_or_default();
    ModelSum {
        ir_version: m.ir_version(),
        producer: m.producer_name().to_string(),
        opsets: m
            .opset_import
            .iter()
            .map(|o| (o.domain().to_string(), o.version()))
            .collect(),
        graph_name: g.name().to_string(),
        inputs: g.input.iter().map(|v| v.name().to_string()).collect(),
        outputs: g.output.iter().map(|v| v.name().to_string()).collect(),
        nodes: g
            .node
            .iter()
            .map(|n| NodeSum {
                op_type: n.op_type().to_string(),
                name: n.name().to_string(),
                domain: n.domain().to_string(),
                inputs: n.input.clone(),
                outputs: n.output.clone(),
                attrs: n
                    .attribute
                    .iter()
                    .map(|a| AttrSum {
                        name: a.name().to_string(),
                        kind: a.r#type.unwrap_or(0),
                        f: a.f().to_bits(),
                        i: a.i(),
                        s: a.s().to_vec(),
                        floats: bits32(&a.floats),
                        ints: a.ints.clone(),
                        strings: a.strings.clone(),
                        t: a.t.as_ref().map(ours_tensor),
                        tensors: a.tensors.iter().map(ours_tensor).collect(),
                        n_graphs: a.g.is_some() as usize + a.graphs.len(),
                    })
                    .collect(),
            })
            .collect(),
        inits: g.initializer.iter().map(ours_tensor).collect(),
    }
}

fn theirs(m: &rp::ModelProto) -> ModelSum {
    let g = m.graph.0.as_deref().cloned().unwrap_or_default();
    ModelSum {
        ir_version: m.ir_version,
        producer: m.producer_name.clone(),
        opsets: m
            .opset_import
            .iter()
            .map(|o| (o.domain.clone(), o.version))
            .collect(),
        graph_name: g.name.clone(),
        inputs: g.input.iter().map(|v| v.name.clone()).collect(),
        outputs: g.output.iter().map(|v| v.name.clone()).collect(),
        nodes: g
            .node
            .iter()
            .map(|n| NodeSum {
                op_type: n.op_type.clone(),
                name: n.name.clone(),
                domain: n.domain.clone(),
                inputs: n.input.clone(),
                outputs: n.output.clone(),
                attrs: n
                    .attribute
                    .iter()
                    .map(|a| AttrSum {
                        name: a.name.clone(),
                        kind: a.type_.value(),
                        f: a.f.to_bits(),
                        i: a.i,
                        s: a.s.clone(),
                        floats: bits32(&a.floats),
                        ints: a.ints.clone(),
                        strings: a.strings.clone(),
                        t: a.t.0.as_deref().map(theirs_tensor),
                        tensors: a.tensors.iter().map(theirs_tensor).collect(),
                        n_graphs: a.g.0.is_some() as usize + a.graphs.len(),
                    })
                    .collect(),
            })
            .collect(),
        inits: g.initializer.iter().map(theirs_tensor).collect(),
    }
}

/// Values of an f32/f64/i64 tensor read independently from rust-protobuf's fields, as bits.
fn theirs_values(t: &rp::TensorProto) -> Option<Vec<u64>> {
    let le = |n: usize| t.raw_data.chunks_exact(n);
    Some(match t.data_type {
        1 if !t.raw_data.is_empty() => le(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()).to_bits() as u64)
            .collect(),
        1 => t.float_data.iter().map(|x| x.to_bits() as u64).collect(),
        11 if !t.raw_data.is_empty() => le(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        11 => t.double_data.iter().map(|x| x.to_bits()).collect(),
        7 if !t.raw_data.is_empty() => le(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        7 => t.int64_data.iter().map(|&x| x as u64).collect(),
        9 if !t.raw_data.is_empty() => t.raw_data.iter().map(|&b| (b != 0) as u64).collect(),
        9 => t.int32_data.iter().map(|&x| (x != 0) as u64).collect(),
        _ => return None,
    })
}

fn our_values(t: &pannc_ir::Tensor) -> Vec<u64> {
    match t {
        pannc_ir::Tensor::F32(a) => a.iter().map(|x| x.to_bits() as u64).collect(),
        pannc_ir::Tensor::F64(a) => a.iter().map(|x| x.to_bits()).collect(),
        pannc_ir::Tensor::I64(a) => a.iter().map(|&x| x as u64).collect(),
        pannc_ir::Tensor::Bool(a) => a.iter().map(|&x| x as u64).collect(),
    }
}

fn models(data: &std::path::Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["node", "pytorch-converted"] {
        for e in std::fs::read_dir(data.join(sub)).unwrap().flatten() {
            let p = e.path().join("model.onnx");
            let keep = sub == "node"
                || [
                    "test_Conv2d",
                    "test_BatchNorm2d_eval",
                    "test_ReLU",
                    "test_MaxPool2d",
                ]
                .iter()
                .any(|k| e.file_name().to_string_lossy().starts_with(k));
            if keep && p.is_file() {
                v.push(p);
            }
        }
    }
    for e in std::fs::read_dir(data.join("light")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "onnx") {
            v.push(e.path());
        }
    }
    v.sort();
    v
}

#[test]
fn prost_and_rust_protobuf_agree_on_real_models() {
    let Some(data) = super::data_dir("prost_and_rust_protobuf_agree_on_real_models") else {
        return;
    };
    let paths = models(&data);
    assert!(
        paths.len() > 1000,
        "expected the whole conformance suite, found {} models",
        paths.len()
    );
    let (mut n_nodes, mut n_inits, mut n_values) = (0usize, 0usize, 0usize);
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        let a = pb::ModelProto::decode(bytes.as_slice())
            .unwrap_or_else(|e| panic!("prost: {}: {e}", p.display()));
        let b = rp::ModelProto::parse_from_bytes(&bytes)
            .unwrap_or_else(|e| panic!("rust-protobuf: {}: {e}", p.display()));
        let (sa, sb) = (ours(&a), theirs(&b));
        assert_eq!(sa, sb, "{}", p.display());
        n_nodes += sa.nodes.len();
        n_inits += sa.inits.len();
        // Our tensor conversion against values read from rust-protobuf's fields.
        let ga = a.graph.as_ref().unwrap();
        let gb = b.graph.0.as_deref().unwrap();
        for (ta, tb) in ga.initializer.iter().zip(&gb.initializer) {
            if let Some(expect) = theirs_values(tb) {
                let t = crate::tensor::tensor_from_proto(
                    ta,
                    "",
                    false,
                    &crate::Limits::default(),
                    &crate::external::Source::None,
                )
                .unwrap_or_else(|e| panic!("{}: initializer {}: {e}", p.display(), ta.name()));
                assert_eq!(
                    t.shape().iter().map(|&d| d as i64).collect::<Vec<_>>(),
                    tb.dims
                );
                assert_eq!(
                    our_values(&t),
                    expect,
                    "{}: initializer {}",
                    p.display(),
                    ta.name()
                );
                n_values += expect.len();
            }
        }
    }
    eprintln!(
        "differential decode: {} models, {n_nodes} nodes, {n_inits} initializers, {n_values} values agree",
        paths.len()
    );
}
