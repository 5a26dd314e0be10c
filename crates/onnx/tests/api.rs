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

/// `export_to_path` over the inline limit writes `<file>.data` (only tensors of at least
/// `min_external_tensor_bytes`, at page-aligned offsets) and `import_path` reads it back
/// exactly; a model moved to another directory with its data file still loads, and one whose
/// data file is missing names the tensor and the file.
#[test]
fn external_data_round_trip_through_files() {
    use pannc_onnx::{export_to_path, import_path, import_with_dir, ExportOptions, Limits};
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("api-external");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("moved")).unwrap();
    let mut g = small_cnn(17);
    // a second, small constant that stays inline under a 64-byte threshold
    let x = g.inputs()[0];
    let s = g.add_constant("s", Tensor::scalar_f32(2.0)).unwrap();
    let y = g.add_simple("scale", Op::Mul, &[x, s]).unwrap();
    let mut outs = g.outputs().to_vec();
    outs.push(y);
    g.set_outputs(outs);
    let m = Model::from_graph(g);
    let opts = ExportOptions {
        max_inline_bytes: 0,
        min_external_tensor_bytes: 64,
        ..Default::default()
    };
    let path = dir.join("cnn.onnx");
    let data = export_to_path(&m, &path, &opts).unwrap().unwrap();
    assert_eq!(data.file_name().unwrap(), "cnn.onnx.data");
    // w (18 floats = 72 bytes) went out, at offset 0; s (4 bytes) stayed inline.
    assert_eq!(std::fs::metadata(&data).unwrap().len(), 72);
    let limits = Limits::default();
    let back = import_path(&path, &limits).unwrap();
    let w = |m: &Model| {
        m.graph
            .constant(m.graph.find_value("w").unwrap())
            .cloned()
            .unwrap()
    };
    assert_eq!(w(&back), w(&m));
    assert_eq!(
        back.graph.constant(back.graph.find_value("s").unwrap()),
        Some(&Tensor::scalar_f32(2.0))
    );
    // from bytes: refused, saying why
    let bytes = std::fs::read(&path).unwrap();
    let e = import(&bytes).unwrap_err();
    assert_eq!(e.kind(), "external-data");
    assert!(e.to_string().contains("tensor 'w'"), "{e}");
    // with the directory given explicitly (the bytes read from elsewhere)
    assert_eq!(w(&import_with_dir(&bytes, &dir, &limits).unwrap()), w(&m));
    // moved with its data: fine; moved without: the missing file is named
    std::fs::copy(&path, dir.join("moved/cnn.onnx")).unwrap();
    let e = import_path(&dir.join("moved/cnn.onnx"), &limits).unwrap_err();
    assert!(
        e.to_string()
            .contains("tensor 'w': external data: location 'cnn.onnx.data' does not exist"),
        "{e}"
    );
    std::fs::copy(&data, dir.join("moved/cnn.onnx.data")).unwrap();
    assert_eq!(
        w(&import_path(&dir.join("moved/cnn.onnx"), &limits).unwrap()),
        w(&m)
    );
    // the limits apply to external tensors before they are read
    let tiny = Limits::with_max_memory(64);
    let e = import_path(&path, &tiny).unwrap_err();
    assert_eq!(e.kind(), "too-large", "{e}");
}
