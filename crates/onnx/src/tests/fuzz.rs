//! Structure-aware fuzzing: random edits of the decoded protobuf (op types, names, attributes,
//! dims, dtypes, opsets) of a small real model. Import must never panic; whatever imports must
//! export or fail cleanly, and whatever exports must import again to the same IR.

use crate::ops::{a_float, a_int, a_ints, a_str, make_node};
use crate::pb;
use crate::tensor::{tensor_to_proto, type_to_proto};
use pannc_ir::{DType, Dim, Tensor, TensorType};
use prost::Message;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn small_int(&mut self) -> i64 {
        *self.pick(&[-3, -2, -1, 0, 1, 2, 3, 4, 7, 1 << 31, i64::MAX, i64::MIN])
    }
}

fn base_model(opset: i64) -> pb::ModelProto {
    let vi = |n: &str, dims: Vec<Dim>| pb::ValueInfoProto {
        name: Some(n.into()),
        r#type: Some(type_to_proto(&TensorType::new(DType::F32, dims))),
        ..Default::default()
    };
    let t = |n: &str, shape: &[usize]| {
        let len = shape.iter().product();
        tensor_to_proto(
            n,
            &Tensor::from_f32(shape, (0..len).map(|i| i as f32 * 0.1).collect()).unwrap(),
        )
    };
    let node = |op: &str, name: &str, ins: &[&str], outs: &[&str], attrs| {
        make_node(
            op,
            name,
            ins.iter().map(|s| s.to_string()).collect(),
            outs.iter().map(|s| s.to_string()).collect(),
            attrs,
        )
    };
    let nodes = vec![
        node(
            "Conv",
            "conv",
            &["x", "w", "b"],
            &["c"],
            vec![a_ints("pads", [1, 1, 1, 1]), a_ints("strides", [1, 1])],
        ),
        node("Relu", "relu", &["c"], &["r"], vec![]),
        node(
            "MaxPool",
            "pool",
            &["r"],
            &["p"],
            vec![a_ints("kernel_shape", [2, 2]), a_ints("strides", [2, 2])],
        ),
        node("Flatten", "flat", &["p"], &["f"], vec![a_int("axis", 1)]),
        node(
            "Gemm",
            "fc",
            &["f", "fw", "fb"],
            &["g"],
            vec![a_int("transB", 1), a_float("alpha", 1.0)],
        ),
        node(
            "Unsqueeze",
            "unsq",
            &["g"],
            &["u"],
            vec![a_ints("axes", [0])],
        ),
        node("Squeeze", "sq", &["u"], &["s"], vec![a_ints("axes", [0])]),
        node(
            "Pad",
            "pad",
            &["s"],
            &["pd"],
            vec![
                a_ints("pads", [0, 0, 0, 0]),
                a_str("mode", "constant"),
                a_float("value", 0.0),
            ],
        ),
        node("Softmax", "sm", &["pd"], &["y"], vec![a_int("axis", 1)]),
    ];
    pb::ModelProto {
        ir_version: Some(4),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(pb::GraphProto {
            node: nodes,
            name: Some("fuzz".into()),
            initializer: vec![
                t("w", &[4, 2, 3, 3]),
                t("b", &[4]),
                t("fw", &[3, 16]),
                t("fb", &[3]),
            ],
            input: vec![vi(
                "x",
                vec![
                    Dim::Sym("N".into()),
                    Dim::Known(2),
                    Dim::Known(4),
                    Dim::Known(4),
                ],
            )],
            output: vec![vi("y", vec![Dim::Sym("N".into()), Dim::Known(3)])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

const STRINGS: &[&str] = &[
    "NOTSET",
    "SAME_UPPER",
    "VALID",
    "edge",
    "wrap",
    "none",
    "bogus",
];

const ATTR_NAMES: &[&str] = &[
    "axis",
    "axes",
    "pads",
    "perm",
    "kernel_shape",
    "strides",
    "dilations",
    "group",
    "to",
    "value",
    "mode",
    "alpha",
    "beta",
    "transA",
    "epsilon",
    "keepdims",
    "auto_pad",
    "ceil_mode",
    "min",
    "max",
    "start",
    "end",
    "allowzero",
];

fn mutate(rng: &mut Rng, m: &mut pb::ModelProto) {
    let ops = crate::supported_ops();
    let g = m.graph.as_mut().unwrap();
    let mut names: Vec<String> = g.node.iter().flat_map(|n| n.output.clone()).collect();
    names.extend(g.initializer.iter().map(|t| t.name().to_string()));
    names.extend(["x".to_string(), String::new(), "nowhere".to_string()]);
    for _ in 0..1 + rng.below(3) {
        let ni = rng.below(g.node.len());
        match rng.below(12) {
            0 => g.node[ni].op_type = Some(rng.pick(&ops).to_string()),
            1 => {
                let n = &mut g.node[ni];
                if !n.input.is_empty() {
                    let k = rng.below(n.input.len());
                    n.input[k] = rng.pick(&names).clone();
                } else {
                    n.input.push(rng.pick(&names).clone());
                }
            }
            2 => g.node[ni].input.push(rng.pick(&names).clone()),
            3 => {
                let o = rng.pick(&names).clone();
                g.node[ni].output.push(o);
            }
            4 => {
                let name = *rng.pick(ATTR_NAMES);
                let v = rng.small_int();
                let a = match rng.below(4) {
                    0 => a_int(name, v),
                    1 => a_ints(
                        name,
                        (0..rng.below(9))
                            .map(|_| rng.small_int())
                            .collect::<Vec<_>>(),
                    ),
                    2 => a_float(name, *rng.pick(&[0.0, -1.0, f32::NAN, f32::INFINITY, 1e30])),
                    _ => a_str(name, rng.pick::<&str>(STRINGS)),
                };
                g.node[ni].attribute.push(a);
            }
            5 => {
                let n = &mut g.node[ni];
                if !n.attribute.is_empty() {
                    let k = rng.below(n.attribute.len());
                    let a = &mut n.attribute[k];
                    a.r#type = Some(rng.below(16) as i32);
                    for x in a.ints.iter_mut() {
                        *x = rng.small_int();
                    }
                    a.i = Some(rng.small_int());
                }
            }
            6 => {
                let k = rng.below(g.initializer.len());
                let t = &mut g.initializer[k];
                let d = rng.below(t.dims.len() + 1);
                if d < t.dims.len() {
                    t.dims[d] = rng.small_int();
                } else {
                    t.dims.push(rng.small_int());
                }
            }
            7 => {
                let k = rng.below(g.initializer.len());
                g.initializer[k].data_type = Some(rng.below(28) as i32);
            }
            8 => {
                let k = rng.below(g.initializer.len());
                if let Some(r) = g.initializer[k].raw_data.as_mut() {
                    let n = rng.below(r.len() + 1);
                    r.truncate(n);
                }
            }
            9 => m.opset_import[0].version = Some(1 + rng.below(30) as i64),
            10 => {
                let j = rng.below(g.node.len());
                g.node.swap(ni, j);
            }
            _ => {
                if let Some(pb::type_proto::Value::TensorType(t)) =
                    g.input[0].r#type.as_mut().and_then(|t| t.value.as_mut())
                {
                    t.elem_type = Some(rng.below(28) as i32);
                    if let Some(s) = t.shape.as_mut() {
                        if !s.dim.is_empty() {
                            let k = rng.below(s.dim.len());
                            s.dim[k].value = Some(
                                pb::tensor_shape_proto::dimension::Value::DimValue(rng.small_int()),
                            );
                        }
                    }
                }
            }
        }
        if rng.below(20) == 0 {
            break;
        }
    }
}

#[test]
fn structured_mutations_never_panic_and_exports_reimport() {
    let mut bases: Vec<pb::ModelProto> = [7, 10].iter().map(|&o| base_model(o)).collect();
    let m10 = crate::import(&bases[1].encode_to_vec()).unwrap();
    for o in [13, 18] {
        let bytes = crate::export_with_opset(&m10, o).unwrap();
        bases.push(pb::ModelProto::decode(bytes.as_slice()).unwrap());
    }
    for b in &bases {
        let m = crate::import(&b.encode_to_vec()).unwrap_or_else(|e| panic!("base model: {e}"));
        assert!(crate::export(&m).is_ok());
    }
    let mut rng = Rng(0xfeed_beef_0bad_cafe);
    let (mut imported, mut exported) = (0, 0);
    let mut kinds = std::collections::BTreeMap::<&'static str, usize>::new();
    for i in 0..5000 {
        let mut m = bases[i % bases.len()].clone();
        mutate(&mut rng, &mut m);
        let bytes = m.encode_to_vec();
        match crate::import(&bytes) {
            Err(e) => *kinds.entry(e.kind()).or_default() += 1,
            Ok(model) => {
                imported += 1;
                if let Ok(out) = crate::export(&model) {
                    exported += 1;
                    let back = crate::import(&out).unwrap_or_else(|e| {
                        panic!("iteration {i}: exported model fails to import: {e}")
                    });
                    assert_eq!(
                        pannc_ir::print(&back.graph),
                        pannc_ir::print(&model.graph),
                        "iteration {i}"
                    );
                }
            }
        }
    }
    eprintln!(
        "5000 structured mutations: {imported} imported, {exported} exported; errors {kinds:?}"
    );
    assert!(imported > 100 && kinds.len() > 8, "{imported} {kinds:?}");
}
