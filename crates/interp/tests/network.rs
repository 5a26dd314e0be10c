//! A small residual CNN (tests/data/gen_ort_network.py) against onnxruntime, end to end:
//! inference with a symbolic batch, f32 and f64 runs, chunked and whole.

mod common;
use common::*;
use pannc_interp::{infer_types, run, splittable_batch, Precision, RunOptions};
use pannc_ir::{DType, Dim, Graph, Op, TensorType};
use std::collections::HashMap;

fn build() -> (Graph, pannc_ir::Tensor, Vec<pannc_ir::Tensor>) {
    let doc = load("ort_network.json");
    let mut g = Graph::new("small_cnn", 20);
    let mut ids = HashMap::new();
    for i in doc["inputs"].as_array().unwrap() {
        let shape: Vec<Dim> = i["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                d.as_u64()
                    .map(|k| Dim::Known(k as usize))
                    .unwrap_or_else(|| Dim::Sym(d.as_str().unwrap().into()))
            })
            .collect();
        let name = i["name"].as_str().unwrap();
        ids.insert(
            name.to_string(),
            g.add_input(name, Some(TensorType::new(DType::F32, shape)))
                .unwrap(),
        );
    }
    for (name, t) in doc["initializers"].as_object().unwrap() {
        ids.insert(
            name.clone(),
            g.add_constant(name.as_str(), tensor(t)).unwrap(),
        );
    }
    for n in doc["nodes"].as_array().unwrap() {
        let names: Vec<&str> = n["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let present: Vec<bool> = names.iter().map(|s| !s.is_empty()).collect();
        let op = make_op(n["op"].as_str().unwrap(), &n["attrs"], &present);
        let ins: Vec<_> = names
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| ids[*s])
            .collect();
        let outs: Vec<String> = n["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let (_, vs) = g
            .add_node(n["name"].as_str().unwrap(), op, &ins, &outs)
            .unwrap();
        for (o, v) in outs.iter().zip(vs) {
            ids.insert(o.clone(), v);
        }
    }
    g.set_outputs(
        doc["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| ids[o.as_str().unwrap()])
            .collect(),
    );
    let x = tensor(&doc["x"]);
    let want = doc["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(tensor)
        .collect();
    (g, x, want)
}

#[test]
fn small_cnn_matches_onnxruntime() {
    let (mut g, x, want) = build();
    assert!(pannc_ir::verify(&g).is_empty());
    assert!(g
        .node_ids()
        .iter()
        .any(|&n| matches!(g.node(n).op, Op::Conv { group: 6, .. })));
    infer_types(&mut g).unwrap();
    let outs: Vec<String> = g
        .outputs()
        .iter()
        .map(|&o| g.value(o).ty.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(outs, ["f32[N,5]", "f32[N,8]"]);
    let flat = g.find_value("flat").unwrap();
    assert_eq!(g.value(flat).ty.as_ref().unwrap().to_string(), "f32[N,8]");
    assert_eq!(splittable_batch(&g).as_deref(), Some("N"));

    let whole = run(
        &g,
        std::slice::from_ref(&x),
        &RunOptions {
            batch_chunk: 0,
            ..Default::default()
        },
    )
    .unwrap();
    for (i, (a, b)) in whole.iter().zip(&want).enumerate() {
        assert_close(&format!("output {i}"), a, b, 2e-6, 1e-5, false);
    }
    let chunked = run(
        &g,
        std::slice::from_ref(&x),
        &RunOptions {
            batch_chunk: 2,
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(chunked, whole);
    let f64_out = run(
        &g,
        std::slice::from_ref(&x),
        &RunOptions {
            precision: Precision::F64,
            batch_chunk: 2,
            threads: 2,
        },
    )
    .unwrap();
    for (i, (a, b)) in f64_out.iter().zip(&want).enumerate() {
        assert_eq!(a.dtype(), DType::F64);
        assert_close(&format!("f64 output {i}"), a, b, 2e-6, 1e-5, true);
    }
}
