//! The public API on graphs built in code (no conformance data needed).

use pannc_ir::{DType, Dim, Graph, Op, Tensor, TensorType, Window};
use pannc_onnx::{
    export, export_graph, export_with_opset, import, read_tensor, write_tensor, Model, OnnxError,
};

fn small_cnn(opset: i64) -> Graph {
    let mut g = Graph::new("cnn", opset);
    let x = g
        .add_input(
            "x",
            Some(TensorType::new(
                DType::F32,
                vec![
                    Dim::Sym("N".into()),
                    Dim::Known(1),
                    Dim::Known(4),
                    Dim::Known(4),
                ],
            )),
        )
        .unwrap();
    let w = g
        .add_constant("w", Tensor::from_f32(&[2, 1, 3, 3], vec![0.5; 18]).unwrap())
        .unwrap();
    let c = g
        .add_simple(
            "conv",
            Op::Conv {
                window: Window {
                    pads: vec![1, 1, 1, 1],
                    ..Default::default()
                },
                group: 1,
            },
            &[x, w],
        )
        .unwrap();
    let r = g.add_simple("relu", Op::Relu, &[c]).unwrap();
    let f = g.add_simple("flat", Op::Flatten { axis: 1 }, &[r]).unwrap();
    g.set_outputs(vec![f]);
    g
}

#[test]
fn export_graph_infers_untyped_output_types_and_reimports() {
    let g = small_cnn(17);
    let bytes = export_graph(&g).unwrap();
    let m = import(&bytes).unwrap();
    assert_eq!(m.producer_name, "pannc");
    assert_eq!(m.ir_version, pannc_onnx::min_ir_version(17));
    let out = m.graph.value(m.graph.outputs()[0]).ty.clone().unwrap();
    // Flatten gives rank 2; the dims are unknown (shape inference was not run)
    assert_eq!(out.dtype, DType::F32);
    assert_eq!(out.rank(), 2);
    assert!(
        out.shape
            .iter()
            .all(|d| matches!(d, Dim::Sym(s) if s.starts_with('?'))),
        "{out}"
    );
    // same ops, same constants
    let ops: Vec<String> = m
        .graph
        .topo_order()
        .unwrap()
        .iter()
        .map(|&n| m.graph.node(n).op.to_string())
        .collect();
    assert_eq!(
        ops,
        vec![
            "Constant",
            "Conv {pads=[1,1,1,1]}",
            "Relu",
            "Flatten {axis=1}"
        ]
    );
}

#[test]
fn model_metadata_survives_a_round_trip() {
    let mut m = Model::from_graph(small_cnn(13));
    m.producer_name = "unit".into();
    m.producer_version = "9.9".into();
    m.doc_string = "a doc".into();
    m.graph_doc_string = "graph doc".into();
    m.domain = "org.example".into();
    m.model_version = 42;
    m.metadata_props = vec![("k".into(), "v".into())];
    m.opset_imports.push(("com.example".into(), 3));
    let back = import(&export(&m).unwrap()).unwrap();
    assert_eq!(back.producer_name, "unit");
    assert_eq!(back.producer_version, "9.9");
    assert_eq!(back.doc_string, "a doc");
    assert_eq!(back.graph_doc_string, "graph doc");
    assert_eq!(back.domain, "org.example");
    assert_eq!(back.model_version, 42);
    assert_eq!(
        back.metadata_props,
        vec![("k".to_string(), "v".to_string())]
    );
    assert_eq!(
        back.opset_imports,
        vec![(String::new(), 13), ("com.example".to_string(), 3)]
    );
    assert_eq!(back.graph.opset, 13);
}

#[test]
fn ir_version_3_lists_initializers_as_inputs() {
    let mut m = Model::from_graph(small_cnn(8));
    m.ir_version = 3;
    let bytes = export(&m).unwrap();
    let back = import(&bytes).unwrap();
    assert_eq!(back.ir_version, 3);
    // 'w' is listed as an input in the file but imports as a constant, not an input
    assert_eq!(back.graph.inputs().len(), 1);
    assert!(back
        .graph
        .constant(back.graph.find_value("w").unwrap())
        .is_some());
    assert_eq!(
        pannc_ir::print(&back.graph),
        pannc_ir::print(&import(&export(&back).unwrap()).unwrap().graph)
    );
}

#[test]
fn export_rejects_what_it_cannot_write() {
    // an input without a static type
    let mut g = Graph::new("t", 17);
    let x = g.add_input("x", None).unwrap();
    let y = g.add_simple("r", Op::Relu, &[x]).unwrap();
    g.set_outputs(vec![y]);
    let e = export_graph(&g).unwrap_err();
    assert!(
        e.to_string().contains("graph input 'x' has no static type"),
        "{e}"
    );
    // a graph that fails verification
    let mut g = Graph::new("t", 17);
    let x = g
        .add_input("x", Some(TensorType::known(DType::F32, &[2])))
        .unwrap();
    let y = g.add_simple("bad", Op::Add, &[x]).unwrap();
    g.set_outputs(vec![y]);
    let e = export_graph(&g).unwrap_err();
    assert!(e.to_string().contains("Add takes 2 inputs, has 1"), "{e}");
    // opsets outside the supported range
    let m = Model::from_graph(small_cnn(17));
    assert!(matches!(
        export_with_opset(&m, 5),
        Err(OnnxError::UnsupportedOpset { opset: 5, .. })
    ));
    assert!(matches!(
        export_with_opset(&m, 28),
        Err(OnnxError::UnsupportedOpset { opset: 28, .. })
    ));
    // an op whose attribute has no older form: Shape with start before opset 15
    let mut g = small_cnn(17);
    let s = g
        .add_simple(
            "shape",
            Op::Shape {
                start: 1,
                end: None,
            },
            &[g.inputs()[0]],
        )
        .unwrap();
    let mut outs = g.outputs().to_vec();
    outs.push(s);
    g.set_outputs(outs);
    let e = export_with_opset(&Model::from_graph(g), 13).unwrap_err();
    assert_eq!(
        e.to_string(),
        "export of node 'shape' (Shape) at opset 13: Shape with start/end needs opset 15 or later"
    );
}

#[test]
fn tensors_round_trip_and_bad_tensors_are_named() {
    let t = Tensor::from_f64(
        &[2, 3],
        vec![1.0, -2.5, 3.25, f64::MAX, f64::MIN_POSITIVE, 0.0],
    )
    .unwrap();
    let (name, back) = read_tensor(&write_tensor("weights", &t)).unwrap();
    assert_eq!((name.as_str(), back), ("weights", t));
    let i = Tensor::from_i64(&[0], vec![]).unwrap();
    assert_eq!(read_tensor(&write_tensor("", &i)).unwrap().1, i);
    // truncated bytes
    let bytes = write_tensor("w", &Tensor::from_f32(&[4], vec![1.0; 4]).unwrap());
    let e = read_tensor(&bytes[..bytes.len() - 3]).unwrap_err();
    assert_eq!(e.kind(), "decode", "{e}");
    assert!(e.to_string().contains("ONNX tensor"), "{e}");
}

#[test]
fn supported_ops_and_histogram() {
    let ops = pannc_onnx::supported_ops();
    for op in [
        "Conv",
        "Gemm",
        "BatchNormalization",
        "Softmax",
        "LRN",
        "Pad",
        "ConstantOfShape",
        "Sum",
    ] {
        assert!(ops.contains(&op), "{op}");
    }
    assert!(!ops.contains(&"LSTM"));
    let bytes = export_graph(&small_cnn(17)).unwrap();
    let h = pannc_onnx::op_histogram(&bytes).unwrap();
    assert_eq!(
        h,
        vec![
            ("Conv".to_string(), 1),
            ("Flatten".to_string(), 1),
            ("Relu".to_string(), 1)
        ]
    );
    assert!(pannc_onnx::unsupported_nodes(&bytes).unwrap().is_empty());
    assert_eq!(
        pannc_onnx::op_histogram(b"\xff\xff").unwrap_err().kind(),
        "decode"
    );
}
