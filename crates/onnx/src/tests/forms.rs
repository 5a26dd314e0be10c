//! Older opsets' attribute forms, inference-only checks, dtype widening and error reporting,
//! on small hand-built models.

use crate::ops::{a_float, a_floats, a_int, a_ints, a_str, a_tensor, make_node};
use crate::pb;
use crate::tensor::{tensor_to_proto, type_to_proto, DOUBLE, FLOAT, INT32, INT64};
use crate::{export, export_with_opset, import, OnnxError};
use pannc_ir::{print, DType, Dim, Op, Tensor, TensorType};
use prost::Message;

fn vi(name: &str, elem: i32, dims: &[i64]) -> pb::ValueInfoProto {
    let dtype = crate::tensor::dtype_from_code(elem).expect("test types are supported");
    let shape = dims
        .iter()
        .map(|&d| {
            if d < 0 {
                Dim::Sym("N".into())
            } else {
                Dim::Known(d as usize)
            }
        })
        .collect();
    pb::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(type_to_proto(&TensorType::new(dtype, shape))),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    ins: &[&str],
    outs: &[&str],
    attrs: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    make_node(
        op,
        name,
        ins.iter().map(|s| s.to_string()).collect(),
        outs.iter().map(|s| s.to_string()).collect(),
        attrs,
    )
}

fn model_with(
    opsets: &[(&str, i64)],
    nodes: Vec<pb::NodeProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    inits: Vec<pb::TensorProto>,
) -> Vec<u8> {
    pb::ModelProto {
        ir_version: Some(8),
        opset_import: opsets
            .iter()
            .map(|(d, v)| pb::OperatorSetIdProto {
                domain: Some(d.to_string()),
                version: Some(*v),
            })
            .collect(),
        producer_name: Some("forms-test".into()),
        graph: Some(pb::GraphProto {
            node: nodes,
            name: Some("g".into()),
            initializer: inits,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn model(
    opset: i64,
    nodes: Vec<pb::NodeProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    inits: Vec<pb::TensorProto>,
) -> Vec<u8> {
    model_with(&[("", opset)], nodes, inputs, outputs, inits)
}

fn f32s(name: &str, dims: &[usize], v: Vec<f32>) -> pb::TensorProto {
    tensor_to_proto(name, &Tensor::from_f32(dims, v).unwrap())
}

/// import → export (same opset) → import gives the same IR text.
fn roundtrip(bytes: &[u8]) -> String {
    let m = import(bytes).unwrap();
    let text = print(&m.graph);
    let again = import(&export(&m).unwrap()).unwrap();
    assert_eq!(print(&again.graph), text);
    text
}

fn the_op<'g>(g: &'g pannc_ir::Graph, name: &str) -> &'g pannc_ir::Node {
    let id = g
        .node_ids()
        .into_iter()
        .find(|&n| g.node(n).name == name && !matches!(g.node(n).op, Op::Constant(_)));
    g.node(id.unwrap_or_else(|| panic!("no node {name}")))
}

fn const_in(g: &pannc_ir::Graph, n: &pannc_ir::Node, slot: usize) -> Tensor {
    g.constant(n.inputs()[slot])
        .expect("constant input")
        .clone()
}

/// Decodes exported bytes and returns the written node of op type `op`.
fn written(bytes: &[u8], op: &str) -> (pb::NodeProto, pb::GraphProto) {
    let m = pb::ModelProto::decode(bytes).unwrap();
    let g = m.graph.unwrap();
    let n = g
        .node
        .iter()
        .find(|n| n.op_type() == op)
        .unwrap_or_else(|| panic!("no {op} written"))
        .clone();
    (n, g)
}

#[test]
fn squeeze_unsqueeze_axes_attribute_becomes_input_and_back() {
    let bytes = model(
        11,
        vec![
            node(
                "Unsqueeze",
                "u",
                &["x"],
                &["y"],
                vec![a_ints("axes", [0, 3])],
            ),
            node("Squeeze", "s", &["y"], &["z"], vec![a_ints("axes", [3])]),
        ],
        vec![vi("x", FLOAT, &[2, 3])],
        vec![vi("z", FLOAT, &[1, 2, 3])],
        vec![],
    );
    let m = import(&bytes).unwrap();
    let u = the_op(&m.graph, "u");
    assert_eq!(u.op, Op::Unsqueeze);
    assert_eq!(
        const_in(&m.graph, u, 1),
        Tensor::from_i64(&[2], vec![0, 3]).unwrap()
    );
    let s = the_op(&m.graph, "s");
    assert_eq!(const_in(&m.graph, s, 1).to_i64_vec(), vec![3]);
    roundtrip(&bytes);
    // At opset 11 the axes go back into attributes and no initializer is written for them.
    let out = export(&m).unwrap();
    let (n, g) = written(&out, "Unsqueeze");
    assert_eq!(n.input, vec!["x".to_string()]);
    assert_eq!(
        n.attribute
            .iter()
            .find(|a| a.name() == "axes")
            .unwrap()
            .ints,
        vec![0, 3]
    );
    assert!(g.initializer.is_empty(), "{:?}", g.initializer);
    // At opset 13 they are inputs, written as initializers.
    let out13 = export_with_opset(&m, 13).unwrap();
    let (n, g) = written(&out13, "Squeeze");
    assert_eq!(n.input.len(), 2);
    assert!(n.attribute.is_empty());
    assert_eq!(g.initializer.len(), 2);
    let m13 = import(&out13).unwrap();
    assert_eq!(m13.graph.opset, 13);
    assert_eq!(
        const_in(&m13.graph, the_op(&m13.graph, "s"), 1).to_i64_vec(),
        vec![3]
    );
}

#[test]
fn clip_attributes_become_typed_inputs() {
    for (opset, elem, dtype) in [(6, FLOAT, DType::F32), (10, DOUBLE, DType::F64)] {
        let bytes = model(
            opset,
            vec![node(
                "Clip",
                "c",
                &["x"],
                &["y"],
                vec![a_float("min", -1.5), a_float("max", 2.0)],
            )],
            vec![vi("x", elem, &[4])],
            vec![vi("y", elem, &[4])],
            vec![],
        );
        let m = import(&bytes).unwrap();
        let c = the_op(&m.graph, "c");
        assert_eq!(
            c.op,
            Op::Clip {
                has_min: true,
                has_max: true
            }
        );
        let lo = const_in(&m.graph, c, 1);
        assert_eq!(
            (lo.dtype(), lo.shape().len(), lo.to_f64_vec()),
            (dtype, 0, vec![-1.5])
        );
        assert_eq!(const_in(&m.graph, c, 2).to_f64_vec(), vec![2.0]);
        roundtrip(&bytes);
        let (n, _) = written(&export_with_opset(&m, 13).unwrap(), "Clip");
        assert_eq!(n.input.len(), 3);
    }
    // Only a max bound: the min slot stays empty when written as inputs.
    let bytes = model(
        10,
        vec![node("Clip", "c", &["x"], &["y"], vec![a_float("max", 6.0)])],
        vec![vi("x", FLOAT, &[4])],
        vec![vi("y", FLOAT, &[4])],
        vec![],
    );
    let m = import(&bytes).unwrap();
    assert_eq!(
        the_op(&m.graph, "c").op,
        Op::Clip {
            has_min: false,
            has_max: true
        }
    );
    let (n, _) = written(&export_with_opset(&m, 13).unwrap(), "Clip");
    assert_eq!(n.input[1], "");
    assert_eq!(n.input.len(), 3);
    let (n, _) = written(&export(&m).unwrap(), "Clip");
    assert_eq!(
        n.attribute.iter().map(|a| a.name()).collect::<Vec<_>>(),
        vec!["max"]
    );
}

#[test]
fn pad_attribute_form() {
    let bytes = model(
        2,
        vec![node(
            "Pad",
            "p",
            &["x"],
            &["y"],
            vec![
                a_ints("pads", [0, 1, 0, 2]),
                a_float("value", 0.5),
                a_str("mode", "constant"),
            ],
        )],
        vec![vi("x", FLOAT, &[2, 2])],
        vec![vi("y", FLOAT, &[2, 5])],
        vec![],
    );
    // opset 2 is below MIN_OPSET
    assert!(matches!(
        import(&bytes),
        Err(OnnxError::UnsupportedOpset { opset: 2, .. })
    ));
    let bytes = model(
        9,
        vec![node(
            "Pad",
            "p",
            &["x"],
            &["y"],
            vec![
                a_ints("pads", [0, 1, 0, 2]),
                a_float("value", 0.5),
                a_str("mode", "edge"),
            ],
        )],
        vec![vi("x", FLOAT, &[2, 2])],
        vec![vi("y", FLOAT, &[2, 5])],
        vec![],
    );
    let m = import(&bytes).unwrap();
    let p = the_op(&m.graph, "p");
    assert_eq!(
        p.op,
        Op::Pad {
            mode: pannc_ir::PadMode::Edge
        }
    );
    assert_eq!(const_in(&m.graph, p, 1).to_i64_vec(), vec![0, 1, 0, 2]);
    assert_eq!(const_in(&m.graph, p, 2).to_f64_vec(), vec![0.5]);
    roundtrip(&bytes);
    let (n, g) = written(&export_with_opset(&m, 18).unwrap(), "Pad");
    assert_eq!(n.input.len(), 3);
    assert_eq!(g.initializer.len(), 2);
}

#[test]
fn pad_without_constant_value_but_with_axes_gets_a_typed_zero() {
    let bytes = model(
        18,
        vec![node("Pad", "p", &["x", "pads", "", "axes"], &["y"], vec![])],
        vec![vi("x", DOUBLE, &[2, 2])],
        vec![vi("y", DOUBLE, &[2, 5])],
        vec![
            tensor_to_proto("pads", &Tensor::from_i64(&[2], vec![1, 2]).unwrap()),
            tensor_to_proto("axes", &Tensor::from_i64(&[1], vec![1]).unwrap()),
        ],
    );
    let m = import(&bytes).unwrap();
    let p = the_op(&m.graph, "p");
    assert_eq!(p.inputs().len(), 4);
    let v = const_in(&m.graph, p, 2);
    assert_eq!((v.dtype(), v.to_f64_vec()), (DType::F64, vec![0.0]));
    let e = export_with_opset(&m, 17).unwrap_err();
    assert!(e.to_string().contains("axes input needs opset 18"), "{e}");
}

#[test]
fn reduce_mean_axes_attribute() {
    let bytes = model(
        13,
        vec![node(
            "ReduceMean",
            "r",
            &["x"],
            &["y"],
            vec![a_ints("axes", [2, 3]), a_int("keepdims", 0)],
        )],
        vec![vi("x", FLOAT, &[1, 3, 4, 4])],
        vec![vi("y", FLOAT, &[1, 3])],
        vec![],
    );
    let m = import(&bytes).unwrap();
    let r = the_op(&m.graph, "r");
    assert_eq!(
        r.op,
        Op::ReduceMean {
            keepdims: false,
            noop_with_empty_axes: false
        }
    );
    assert_eq!(const_in(&m.graph, r, 1).to_i64_vec(), vec![2, 3]);
    roundtrip(&bytes);
    let (n, _) = written(&export_with_opset(&m, 18).unwrap(), "ReduceMean");
    assert_eq!(n.input.len(), 2);
}

#[test]
fn old_softmax_last_axis_is_kept_other_axes_are_decomposed() {
    // axis 2 of a rank-3 input is the last: same as opset 13
    let last = model(
        11,
        vec![node(
            "Softmax",
            "sm",
            &["x"],
            &["y"],
            vec![a_int("axis", 2)],
        )],
        vec![vi("x", FLOAT, &[2, 3, 4])],
        vec![vi("y", FLOAT, &[2, 3, 4])],
        vec![],
    );
    let m = import(&last).unwrap();
    assert_eq!(m.graph.node_count(), 1);
    assert_eq!(the_op(&m.graph, "sm").op, Op::Softmax { axis: 2 });
    roundtrip(&last);
    // axis 1 (the old default) of a rank-3 input flattens the last two axes together
    let mid = model(
        11,
        vec![node("Softmax", "sm", &["x"], &["y"], vec![])],
        vec![vi("x", FLOAT, &[2, 3, 4])],
        vec![vi("y", FLOAT, &[2, 3, 4])],
        vec![],
    );
    let m = import(&mid).unwrap();
    let ops: Vec<String> = m
        .graph
        .topo_order()
        .unwrap()
        .iter()
        .map(|&n| m.graph.node(n).op.to_string())
        .collect();
    assert_eq!(
        ops,
        vec!["Shape", "Flatten {axis=1}", "Softmax {axis=1}", "Reshape"]
    );
    roundtrip(&mid);
    // the same model written at opset 13 keeps the decomposition (it is exact)
    let m13 = import(&export_with_opset(&m, 13).unwrap()).unwrap();
    assert_eq!(m13.graph.node_count(), 4);
    // a non-last axis cannot be written before opset 13
    let mut g = pannc_ir::Graph::new("t", 13);
    let x = g
        .add_input("x", Some(TensorType::known(DType::F32, &[2, 3])))
        .unwrap();
    let y = g.add_simple("sm", Op::Softmax { axis: 0 }, &[x]).unwrap();
    g.value_mut(y).ty = Some(TensorType::known(DType::F32, &[2, 3]));
    g.set_outputs(vec![y]);
    let mut model = crate::Model::from_graph(g);
    assert!(crate::export(&model).is_ok());
    let e = export_with_opset(&model, 11).unwrap_err();
    assert!(e.to_string().contains("not the last axis"), "{e}");
    model
        .graph
        .op_mut(model.graph.producer(y).unwrap())
        .clone_from(&Op::Softmax { axis: 1 });
    assert!(export_with_opset(&model, 11).is_ok());
}

#[test]
fn dropout_is_inference_only() {
    let mk = |opset: i64,
              n: pb::NodeProto,
              inits: Vec<pb::TensorProto>,
              outs: Vec<pb::ValueInfoProto>| {
        model(opset, vec![n], vec![vi("x", FLOAT, &[4])], outs, inits)
    };
    let y = || vec![vi("y", FLOAT, &[4])];
    // opset 12: training_mode constant false is fine, true is an error, non-constant too
    let tm = |v: i64| tensor_to_proto("tm", &Tensor::scalar_i64(v));
    let ok = mk(
        12,
        node("Dropout", "d", &["x", "", "tm"], &["y"], vec![]),
        vec![tm(0)],
        y(),
    );
    let m = import(&ok).unwrap();
    assert_eq!(the_op(&m.graph, "d").op, Op::Dropout);
    assert_eq!(the_op(&m.graph, "d").inputs().len(), 1);
    let bad = mk(
        12,
        node("Dropout", "d", &["x", "", "tm"], &["y"], vec![]),
        vec![tm(1)],
        y(),
    );
    let e = import(&bad).unwrap_err();
    assert!(
        matches!(&e, OnnxError::BadNode { node, .. } if node == "d"),
        "{e}"
    );
    assert!(e.to_string().contains("training_mode is true"), "{e}");
    // opset 6 needs is_test=1
    let e = import(&mk(
        6,
        node("Dropout", "d", &["x"], &["y"], vec![]),
        vec![],
        y(),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("is_test=0"), "{e}");
    assert!(import(&mk(
        6,
        node("Dropout", "d", &["x"], &["y"], vec![a_int("is_test", 1)]),
        vec![],
        y()
    ))
    .is_ok());
    // an unused mask output is dropped; a used one is an error
    assert!(import(&mk(
        10,
        node(
            "Dropout",
            "d",
            &["x"],
            &["y", "mask"],
            vec![a_float("ratio", 0.3)]
        ),
        vec![],
        y()
    ))
    .is_ok());
    let mut outs = y();
    outs.push(vi("mask", FLOAT, &[4]));
    let e = import(&mk(
        10,
        node("Dropout", "d", &["x"], &["y", "mask"], vec![]),
        vec![],
        outs,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("mask output 'mask'"), "{e}");
}

#[test]
fn batchnorm_training_outputs_are_errors() {
    let inits: Vec<pb::TensorProto> = ["s", "b", "m", "v"]
        .iter()
        .map(|n| f32s(n, &[3], vec![1.0, 2.0, 3.0]))
        .collect();
    let mk = |opset: i64, outs: &[&str], attrs: Vec<pb::AttributeProto>| {
        model(
            opset,
            vec![node(
                "BatchNormalization",
                "bn",
                &["x", "s", "b", "m", "v"],
                outs,
                attrs,
            )],
            vec![vi("x", FLOAT, &[1, 3, 2, 2])],
            vec![vi("y", FLOAT, &[1, 3, 2, 2])],
            inits.clone(),
        )
    };
    let m = import(&mk(9, &["y"], vec![a_float("epsilon", 1e-3)])).unwrap();
    assert_eq!(
        the_op(&m.graph, "bn").op,
        Op::BatchNormalization { epsilon: 1e-3 }
    );
    let e = import(&mk(9, &["y", "rm", "rv"], vec![])).unwrap_err();
    assert!(
        e.to_string()
            .contains("output 1 ('rm') is not supported: training-mode outputs"),
        "{e}"
    );
    let e = import(&mk(15, &["y"], vec![a_int("training_mode", 1)])).unwrap_err();
    assert!(e.to_string().contains("training_mode=1"), "{e}");
    let e = import(&mk(7, &["y"], vec![a_int("spatial", 0)])).unwrap_err();
    assert!(e.to_string().contains("spatial=0"), "{e}");
    assert!(import(&mk(6, &["y"], vec![a_int("is_test", 1)])).is_ok());
    // attributes of other opsets are rejected by name
    let e = import(&mk(15, &["y"], vec![a_int("spatial", 1)])).unwrap_err();
    assert!(
        e.to_string()
            .contains("attribute 'spatial' is not defined for BatchNormalization at opset 15"),
        "{e}"
    );
}

#[test]
fn constant_node_forms() {
    let cases: Vec<(pb::AttributeProto, Tensor)> = vec![
        (a_float("value_float", 2.5), Tensor::scalar_f32(2.5)),
        (
            a_floats("value_floats", &[1.0, 2.0]),
            Tensor::from_f32(&[2], vec![1.0, 2.0]).unwrap(),
        ),
        (a_int("value_int", 7), Tensor::scalar_i64(7)),
        (
            a_ints("value_ints", [1, -1]),
            Tensor::from_i64(&[2], vec![1, -1]).unwrap(),
        ),
        (
            a_tensor("value", &Tensor::from_f32(&[1, 2], vec![3.0, 4.0]).unwrap()),
            Tensor::from_f32(&[1, 2], vec![3.0, 4.0]).unwrap(),
        ),
    ];
    for (attr, want) in cases {
        let bytes = model(
            13,
            vec![
                node("Constant", "k", &[], &["c"], vec![attr]),
                node("Identity", "i", &["c"], &["y"], vec![]),
            ],
            vec![],
            vec![pb::ValueInfoProto {
                name: Some("y".into()),
                ..Default::default()
            }],
            vec![],
        );
        let m = import(&bytes).unwrap();
        let c = m.graph.find_value("c").unwrap();
        assert_eq!(m.graph.constant(c), Some(&want));
        assert_eq!(m.graph.node(m.graph.producer(c).unwrap()).name, "k");
        // exported as a Constant node (its node name differs from the value name), output typed by inference
        let out = export(&m).unwrap();
        let (n, g) = written(&out, "Constant");
        assert_eq!(n.name(), "k");
        assert!(g.initializer.is_empty());
        // the untyped graph output gets an inferred type (dtype and rank, unknown dims)
        let back = import(&out).unwrap();
        assert_eq!(
            back.graph.constant(back.graph.find_value("c").unwrap()),
            Some(&want)
        );
        let ty = back
            .graph
            .value(back.graph.outputs()[0])
            .ty
            .clone()
            .unwrap();
        assert_eq!((ty.dtype, ty.rank()), (want.dtype(), want.shape().len()));
    }
    let two = model(
        13,
        vec![node(
            "Constant",
            "k",
            &[],
            &["c"],
            vec![a_int("value_int", 1), a_float("value_float", 1.0)],
        )],
        vec![],
        vec![vi("c", INT64, &[])],
        vec![],
    );
    assert!(import(&two)
        .unwrap_err()
        .to_string()
        .contains("exactly one value attribute"));
}

#[test]
fn sum_becomes_adds() {
    let bytes = model(
        8,
        vec![node("Sum", "s", &["a", "b", "c"], &["y"], vec![])],
        ["a", "b", "c"].iter().map(|n| vi(n, FLOAT, &[2])).collect(),
        vec![vi("y", FLOAT, &[2])],
        vec![],
    );
    let m = import(&bytes).unwrap();
    let ops: Vec<&Op> = m
        .graph
        .node_ids()
        .into_iter()
        .map(|n| &m.graph.node(n).op)
        .collect();
    assert_eq!(ops, vec![&Op::Add, &Op::Add]);
    roundtrip(&bytes);
}

#[test]
fn narrow_integers_widen_only_as_index_data() {
    let idx = pb::TensorProto {
        name: Some("idx".into()),
        dims: vec![2],
        data_type: Some(INT32),
        int32_data: vec![1, 0],
        ..Default::default()
    };
    let gather = model(
        13,
        vec![node("Gather", "g", &["x", "idx"], &["y"], vec![])],
        vec![vi("x", FLOAT, &[2, 3])],
        vec![vi("y", FLOAT, &[2, 3])],
        vec![idx.clone()],
    );
    let m = import(&gather).unwrap();
    let t = m
        .graph
        .constant(m.graph.find_value("idx").unwrap())
        .unwrap();
    assert_eq!((t.dtype(), t.to_i64_vec()), (DType::I64, vec![1, 0]));
    // used as data: an error naming the dtype and the tensor
    let add = model(
        13,
        vec![node("Add", "a", &["x", "idx"], &["y"], vec![])],
        vec![vi("x", INT64, &[2])],
        vec![vi("y", INT64, &[2])],
        vec![idx],
    );
    let e = import(&add).unwrap_err();
    assert!(
        matches!(&e, OnnxError::UnsupportedDType { what, dtype, .. } if what == "tensor 'idx'" && dtype == "INT32"),
        "{e}"
    );
}

#[test]
fn unsupported_ops_are_reported_all_at_once() {
    let bytes = model_with(
        &[("", 17), ("com.example", 1)],
        vec![
            node("Relu", "ok", &["x"], &["a"], vec![]),
            node(
                "Einsum",
                "ein",
                &["a", "a"],
                &["b"],
                vec![a_str("equation", "i,i->")],
            ),
            node("LSTM", "lstm", &["b"], &["c"], vec![]),
            pb::NodeProto {
                domain: Some("com.example".into()),
                ..node("Relu", "custom", &["c"], &["d"], vec![])
            },
            node("Gelu", "gelu", &["d"], &["y"], vec![]),
        ],
        vec![vi("x", FLOAT, &[2])],
        vec![vi("y", FLOAT, &[2])],
        vec![],
    );
    let Err(OnnxError::Unsupported(list)) = import(&bytes) else {
        panic!("expected Unsupported")
    };
    let got: Vec<(&str, &str, &str, Option<i64>)> = list
        .iter()
        .map(|u| {
            (
                u.op_type.as_str(),
                u.node.as_str(),
                u.domain.as_str(),
                u.opset,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("Einsum", "ein", "", Some(17)),
            ("LSTM", "lstm", "", Some(17)),
            ("Relu", "custom", "com.example", Some(1)),
            ("Gelu", "gelu", "", Some(17)),
        ]
    );
    assert!(
        list[3].reason.contains("not defined before opset 20"),
        "{}",
        list[3].reason
    );
    assert_eq!(crate::unsupported_nodes(&bytes).unwrap(), list);
    let hist = crate::op_histogram(&bytes).unwrap();
    assert_eq!(hist.len(), 5);
    assert!(hist.contains(&("com.example::Relu".to_string(), 1)));
}

#[test]
fn unsorted_nodes_are_sorted_and_bad_attributes_named() {
    let bytes = model(
        13,
        vec![
            node("Relu", "second", &["a"], &["y"], vec![]),
            node("Neg2", "x", &[], &[], vec![]),
        ],
        vec![vi("x", FLOAT, &[2])],
        vec![vi("y", FLOAT, &[2])],
        vec![],
    );
    assert!(matches!(import(&bytes), Err(OnnxError::Unsupported(_))));
    let bytes = model(
        13,
        vec![
            node("Relu", "second", &["a"], &["y"], vec![]),
            node("Sigmoid", "first", &["x"], &["a"], vec![]),
        ],
        vec![vi("x", FLOAT, &[2])],
        vec![vi("y", FLOAT, &[2])],
        vec![],
    );
    let m = import(&bytes).unwrap();
    let names: Vec<&str> = m
        .graph
        .topo_order()
        .unwrap()
        .iter()
        .map(|&n| m.graph.node(n).name.as_str())
        .collect();
    assert_eq!(names, vec!["first", "second"]);
    // exported in topological order
    let out = export(&m).unwrap();
    let g = pb::ModelProto::decode(out.as_slice())
        .unwrap()
        .graph
        .unwrap();
    assert_eq!(
        g.node.iter().map(|n| n.name()).collect::<Vec<_>>(),
        vec!["first", "second"]
    );

    let conv = model(
        13,
        vec![node(
            "Conv",
            "c",
            &["x", "w"],
            &["y"],
            vec![a_ints("strides", [0, 1])],
        )],
        vec![vi("x", FLOAT, &[1, 1, 4, 4])],
        vec![vi("y", FLOAT, &[1, 1, 4, 4])],
        vec![f32s("w", &[1, 1, 1, 1], vec![1.0])],
    );
    let e = import(&conv).unwrap_err();
    assert_eq!(
        e.to_string(),
        "node 'c' (Conv, opset 13): attribute 'strides' has value 0; each must be >= 1"
    );
    let conv = model(
        13,
        vec![node(
            "Conv",
            "c",
            &["x", "w"],
            &["y"],
            vec![a_float("strides", 1.0)],
        )],
        vec![vi("x", FLOAT, &[1, 1, 4, 4])],
        vec![vi("y", FLOAT, &[1, 1, 4, 4])],
        vec![f32s("w", &[1, 1, 1, 1], vec![1.0])],
    );
    assert!(import(&conv)
        .unwrap_err()
        .to_string()
        .contains("attribute 'strides' must be INTS, not FLOAT"));
}

#[test]
fn gelu_is_written_as_a_formula_before_opset_20() {
    for approx in ["none", "tanh"] {
        let bytes = model(
            20,
            vec![node(
                "Gelu",
                "g",
                &["x"],
                &["y"],
                vec![a_str("approximate", approx)],
            )],
            vec![vi("x", FLOAT, &[-1, 3])],
            vec![vi("y", FLOAT, &[-1, 3])],
            vec![],
        );
        let m = import(&bytes).unwrap();
        assert_eq!(
            the_op(&m.graph, "g").op,
            Op::Gelu {
                tanh: approx == "tanh"
            }
        );
        roundtrip(&bytes);
        let old = export_with_opset(&m, 17).unwrap();
        let g = pb::ModelProto::decode(old.as_slice())
            .unwrap()
            .graph
            .unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type()).collect();
        assert!(!ops.contains(&"Gelu"));
        assert!(
            ops.contains(&if approx == "tanh" { "Tanh" } else { "Erf" }),
            "{ops:?}"
        );
        assert_eq!(g.node.last().unwrap().output, vec!["y".to_string()]);
        let back = import(&old).unwrap();
        assert!(back.graph.node_count() > 5);
    }
}

#[test]
fn symbolic_and_unnamed_dims() {
    let mut x = vi("x", FLOAT, &[-1, 3]);
    // an unnamed unknown dim
    if let Some(pb::type_proto::Value::TensorType(t)) =
        x.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.shape.as_mut().unwrap().dim[1].value = None;
    }
    let bytes = model(
        13,
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![x],
        vec![vi("y", FLOAT, &[-1, 3])],
        vec![],
    );
    let m = import(&bytes).unwrap();
    let ty = m.graph.value(m.graph.inputs()[0]).ty.clone().unwrap();
    assert_eq!(ty.shape, vec![Dim::Sym("N".into()), Dim::Sym("?0".into())]);
    let out = export(&m).unwrap();
    let g = pb::ModelProto::decode(out.as_slice())
        .unwrap()
        .graph
        .unwrap();
    let Some(pb::type_proto::Value::TensorType(t)) =
        g.input[0].r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        panic!()
    };
    use pb::tensor_shape_proto::dimension::Value as D;
    let dims = &t.shape.as_ref().unwrap().dim;
    assert_eq!(dims[0].value, Some(D::DimParam("N".into())));
    assert_eq!(dims[1].value, None);
    roundtrip(&bytes);
}

#[test]
fn lrn_defaults_attributes_and_errors() {
    let mk = |opset: i64, ins: &[&str], attrs: Vec<pb::AttributeProto>| {
        model(
            opset,
            vec![node("LRN", "norm", ins, &["y"], attrs)],
            vec![vi("x", FLOAT, &[-1, 6, 4, 4])],
            vec![vi("y", FLOAT, &[-1, 6, 4, 4])],
            vec![],
        )
    };
    // Defaults alpha = 1e-4, beta = 0.75, bias = 1 at every opset pannc reads (LRN is
    // unchanged since opset 1; pannc reads opsets from 6).
    for opset in [6, 9, 13, 21] {
        let bytes = mk(opset, &["x"], vec![a_int("size", 5)]);
        let m = import(&bytes).unwrap();
        assert_eq!(
            the_op(&m.graph, "norm").op,
            Op::Lrn {
                alpha: 1e-4,
                beta: 0.75,
                bias: 1.0,
                size: 5
            },
            "opset {opset}"
        );
        let text = roundtrip(&bytes);
        assert!(
            text.contains("LRN {alpha=0.0001, beta=0.75, bias=1, size=5}"),
            "{text}"
        );
    }
    // Given attributes are kept, and written back as ONNX attributes.
    let bytes = mk(
        9,
        &["x"],
        vec![
            a_float("beta", 0.5),
            a_int("size", 4),
            a_float("bias", 2.0),
            a_float("alpha", 5e-4),
        ],
    );
    let m = import(&bytes).unwrap();
    let want = Op::Lrn {
        alpha: 5e-4,
        beta: 0.5,
        bias: 2.0,
        size: 4,
    };
    assert_eq!(the_op(&m.graph, "norm").op, want);
    for opset in [9, 13, 17] {
        let (n, _) = written(&export_with_opset(&m, opset).unwrap(), "LRN");
        let attr = |k: &str| n.attribute.iter().find(|a| a.name() == k).cloned().unwrap();
        assert_eq!(attr("alpha").f(), 5e-4);
        assert_eq!(attr("beta").f(), 0.5);
        assert_eq!(attr("bias").f(), 2.0);
        assert_eq!(attr("size").i(), 4);
        assert_eq!(n.input, vec!["x".to_string()]);
    }
    // Errors name the node, op and opset.
    let e = import(&mk(13, &["x"], vec![])).unwrap_err().to_string();
    assert_eq!(
        e,
        "node 'norm' (LRN, opset 13): attribute 'size' is required"
    );
    for bad in [0, -3] {
        let e = import(&mk(13, &["x"], vec![a_int("size", bad)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'size' must be at least 1"), "{e}");
    }
    let e = import(&mk(13, &["x"], vec![a_int("size", 3), a_int("alpha", 1)]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("attribute 'alpha' must be FLOAT, not INT"),
        "{e}"
    );
    let e = import(&mk(
        13,
        &["x"],
        vec![a_int("size", 3), a_float("beta", f32::INFINITY)],
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("attribute 'beta' must be finite"), "{e}");
    let e = import(&mk(13, &["x"], vec![a_int("size", 3), a_int("axis", 1)]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("attribute 'axis' is not defined for LRN at opset 13"),
        "{e}"
    );
    let e = import(&mk(13, &["x", "x"], vec![a_int("size", 3)]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("takes 1 inputs, has 2"), "{e}");
}

#[test]
fn slice_attribute_form_becomes_inputs_and_back() {
    // opset 9: starts/ends/axes attributes
    let bytes = model(
        9,
        vec![node(
            "Slice",
            "s",
            &["x"],
            &["y"],
            vec![
                a_ints("starts", [1, 0]),
                a_ints("ends", [3, i64::MAX]),
                a_ints("axes", [1, 0]),
            ],
        )],
        vec![vi("x", FLOAT, &[-1, 4])],
        vec![vi("y", FLOAT, &[-1, 2])],
        vec![],
    );
    let m = import(&bytes).unwrap();
    let n = the_op(&m.graph, "s");
    assert_eq!(n.op, Op::Slice);
    assert_eq!(const_in(&m.graph, n, 1).to_i64_vec(), [1, 0]);
    assert_eq!(const_in(&m.graph, n, 3).to_i64_vec(), [1, 0]);
    roundtrip(&bytes);
    // written back as attributes before opset 10, as inputs from 10
    let (w, _) = written(&export_with_opset(&m, 9).unwrap(), "Slice");
    assert_eq!((w.input.len(), w.attribute.len()), (1, 3));
    let (w, _) = written(&export_with_opset(&m, 13).unwrap(), "Slice");
    assert_eq!((w.input.len(), w.attribute.len()), (4, 0));
    // opset 13: steps without axes get the default axes
    let bytes = model(
        13,
        vec![node(
            "Slice",
            "s",
            &["x", "st", "en", "", "sp"],
            &["y"],
            vec![],
        )],
        vec![vi("x", FLOAT, &[5])],
        vec![vi("y", FLOAT, &[-1])],
        vec![
            tensor_to_proto("st", &Tensor::from_i64(&[1], vec![-1]).unwrap()),
            tensor_to_proto("en", &Tensor::from_i64(&[1], vec![i64::MIN]).unwrap()),
            tensor_to_proto("sp", &Tensor::from_i64(&[1], vec![-2]).unwrap()),
        ],
    );
    let m = import(&bytes).unwrap();
    let n = the_op(&m.graph, "s");
    assert_eq!(n.inputs().len(), 5);
    assert_eq!(const_in(&m.graph, n, 3).to_i64_vec(), [0]);
}

#[test]
fn split_forms_across_opsets() {
    let outs = ["a", "b", "c"];
    let outs_vi = || {
        outs.iter()
            .map(|o| vi(o, FLOAT, &[-1, -1]))
            .collect::<Vec<_>>()
    };
    // opset 11: sizes as an attribute become an input; three outputs
    let bytes = model(
        11,
        vec![node(
            "Split",
            "sp",
            &["x"],
            &outs,
            vec![a_int("axis", 1), a_ints("split", [1, 2, 4])],
        )],
        vec![vi("x", FLOAT, &[-1, 7])],
        outs_vi(),
        vec![],
    );
    let m = import(&bytes).unwrap();
    let n = the_op(&m.graph, "sp");
    assert_eq!(
        n.op,
        Op::Split {
            axis: 1,
            num_outputs: 3
        }
    );
    assert_eq!(n.outputs().len(), 3);
    assert_eq!(const_in(&m.graph, n, 1).to_i64_vec(), [1, 2, 4]);
    roundtrip(&bytes);
    // opset 18: num_outputs; 7 does not divide by 3, so at opset 13 the sizes are written out
    let bytes = model(
        18,
        vec![node(
            "Split",
            "sp",
            &["x"],
            &outs,
            vec![a_int("axis", 1), a_int("num_outputs", 3)],
        )],
        vec![vi("x", FLOAT, &[-1, 7])],
        outs_vi(),
        vec![],
    );
    let m = import(&bytes).unwrap();
    let (w, g) = written(&export_with_opset(&m, 13).unwrap(), "Split");
    assert_eq!(w.input.len(), 2, "{w:?}");
    let sizes = g
        .initializer
        .iter()
        .find(|t| t.name() == w.input[1])
        .unwrap();
    assert_eq!(sizes.raw_data.as_ref().map(|r| r.len()), Some(24));
    let (w, _) = written(&export_with_opset(&m, 18).unwrap(), "Split");
    assert!(w
        .attribute
        .iter()
        .any(|a| a.name() == "num_outputs" && a.i() == 3));
    // both a split input and num_outputs is an error
    let bad = model(
        18,
        vec![node(
            "Split",
            "sp",
            &["x", "s"],
            &outs,
            vec![a_int("num_outputs", 3)],
        )],
        vec![vi("x", FLOAT, &[7])],
        outs_vi(),
        vec![tensor_to_proto(
            "s",
            &Tensor::from_i64(&[3], vec![1, 2, 4]).unwrap(),
        )],
    );
    assert!(import(&bad)
        .unwrap_err()
        .to_string()
        .contains("both a split input and num_outputs"));
}

#[test]
fn reductions_take_axes_as_attributes_until_their_opset() {
    for (op, input_since) in [("ReduceSum", 13), ("ReduceMax", 18), ("ReduceMin", 18)] {
        let old = model(
            input_since - 1,
            vec![node(
                op,
                "r",
                &["x"],
                &["y"],
                vec![a_ints("axes", [1]), a_int("keepdims", 0)],
            )],
            vec![vi("x", FLOAT, &[-1, 3])],
            vec![vi("y", FLOAT, &[-1])],
            vec![],
        );
        let m = import(&old).unwrap();
        let n = the_op(&m.graph, "r");
        assert_eq!(n.op.name(), op);
        assert_eq!(const_in(&m.graph, n, 1).to_i64_vec(), [1]);
        roundtrip(&old);
        let (w, _) = written(&export_with_opset(&m, input_since).unwrap(), op);
        assert_eq!(w.input.len(), 2, "{op}");
        let (w, _) = written(&export_with_opset(&m, input_since - 1).unwrap(), op);
        assert!(w.attribute.iter().any(|a| a.name() == "axes"), "{op}");
    }
}

#[test]
fn layer_normalization_statistics_outputs() {
    let bytes = model(
        17,
        vec![node(
            "LayerNormalization",
            "ln",
            &["x", "s", "b"],
            &["y", "mean", "inv"],
            vec![a_int("axis", -1), a_float("epsilon", 1e-3)],
        )],
        vec![vi("x", FLOAT, &[-1, 4])],
        vec![
            vi("y", FLOAT, &[-1, 4]),
            vi("mean", FLOAT, &[-1, 1]),
            vi("inv", FLOAT, &[-1, 1]),
        ],
        vec![f32s("s", &[4], vec![1.0; 4]), f32s("b", &[4], vec![0.0; 4])],
    );
    let m = import(&bytes).unwrap();
    let n = the_op(&m.graph, "ln");
    assert_eq!(n.outputs().len(), 3);
    roundtrip(&bytes);
    assert!(export_with_opset(&m, 16)
        .unwrap_err()
        .to_string()
        .contains("needs opset 17"));
    // Outputs must be named in order.
    let gap = model(
        17,
        vec![node(
            "LayerNormalization",
            "ln",
            &["x", "s"],
            &["y", "", "inv"],
            vec![],
        )],
        vec![vi("x", FLOAT, &[-1, 4])],
        vec![vi("y", FLOAT, &[-1, 4]), vi("inv", FLOAT, &[-1, 1])],
        vec![f32s("s", &[4], vec![1.0; 4])],
    );
    assert!(import(&gap)
        .unwrap_err()
        .to_string()
        .contains("named in order"));
}
