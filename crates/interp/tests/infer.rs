//! Static shape/dtype inference, with a symbolic batch.

mod common;
use common::*;
use pannc_interp::{infer_types, InterpError};
use pannc_ir::{DType, Dim, Graph, Op, Tensor, TensorType, ValueId, Window};

fn input(g: &mut Graph, name: &str, dt: DType, shape: Vec<Dim>) -> ValueId {
    g.add_input(name, Some(TensorType::new(dt, shape))).unwrap()
}
fn ty(g: &Graph, v: ValueId) -> String {
    g.value(v)
        .ty
        .as_ref()
        .map(|t| t.to_string())
        .unwrap_or_else(|| "?".into())
}
fn c_i64(g: &mut Graph, name: &str, v: Vec<i64>) -> ValueId {
    let n = v.len();
    g.add_constant(name, Tensor::from_i64(&[n], v).unwrap())
        .unwrap()
}
fn zeros(g: &mut Graph, name: &str, shape: &[usize]) -> ValueId {
    g.add_constant(
        name,
        Tensor::from_f32(shape, vec![0.0; shape.iter().product()]).unwrap(),
    )
    .unwrap()
}
fn nchw(n: Dim, c: usize, h: usize, w: usize) -> Vec<Dim> {
    vec![n, known(c), known(h), known(w)]
}

#[test]
fn conv_pool_flatten_gemm_keep_the_batch_symbol() {
    let mut g = Graph::new("t", 17);
    let x = input(&mut g, "x", DType::F32, nchw(sym("N"), 3, 32, 30));
    let w = zeros(&mut g, "w", &[8, 3, 3, 3]);
    let b = zeros(&mut g, "b", &[8]);
    let conv = Op::Conv {
        window: Window {
            pads: vec![1, 1, 1, 1],
            strides: vec![2, 2],
            ..Default::default()
        },
        group: 1,
    };
    let y = g.add_simple("conv", conv, &[x, w, b]).unwrap();
    let pool = Op::MaxPool {
        window: Window {
            kernel_shape: vec![2, 2],
            strides: vec![2, 2],
            ..Default::default()
        },
    };
    let (_, pv) = g
        .add_node("pool", pool, &[y], &["p".into(), "pi".into()])
        .unwrap();
    let f = g
        .add_simple("flat", Op::Flatten { axis: 1 }, &[pv[0]])
        .unwrap();
    let fw = zeros(&mut g, "fw", &[5, 8 * 8 * 7]);
    let gemm = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: true,
    };
    let o = g.add_simple("fc", gemm, &[f, fw]).unwrap();
    let sm = g.add_simple("sm", Op::Softmax { axis: -1 }, &[o]).unwrap();
    g.set_outputs(vec![sm]);
    infer_types(&mut g).unwrap();
    assert_eq!(ty(&g, y), "f32[N,8,16,15]");
    assert_eq!(ty(&g, pv[0]), "f32[N,8,8,7]");
    assert_eq!(ty(&g, pv[1]), "i64[N,8,8,7]");
    assert_eq!(ty(&g, f), "f32[N,448]");
    assert_eq!(ty(&g, o), "f32[N,5]");
    assert_eq!(ty(&g, sm), "f32[N,5]");
}

#[test]
fn flatten_of_symbolic_shape() {
    let mut g = Graph::new("t", 17);
    let x = input(&mut g, "x", DType::F32, nchw(sym("N"), 8, 7, 7));
    let f1 = g.add_simple("f1", Op::Flatten { axis: 1 }, &[x]).unwrap();
    let f0 = g.add_simple("f0", Op::Flatten { axis: 0 }, &[x]).unwrap();
    let f2 = g.add_simple("f2", Op::Flatten { axis: 2 }, &[x]).unwrap();
    let f4 = g.add_simple("f4", Op::Flatten { axis: -4 }, &[x]).unwrap();
    g.set_outputs(vec![f1, f0, f2, f4]);
    infer_types(&mut g).unwrap();
    assert_eq!(ty(&g, f1), "f32[N,392]");
    assert_eq!(ty(&g, f0), "f32[1,unk0]");
    assert_eq!(ty(&g, f2), "f32[unk1,49]");
    assert_eq!(ty(&g, f4), "f32[1,unk2]");
}

#[test]
fn reshape_with_constant_shapes() {
    let mut g = Graph::new("t", 17);
    let x = input(&mut g, "x", DType::F32, nchw(sym("N"), 8, 7, 7));
    let cases = [
        (vec![0, -1], "f32[N,392]"),
        (vec![-1, 392], "f32[N,392]"),
        (vec![-1, 8, 49], "f32[N,8,49]"),
        (vec![0, 8, -1], "f32[N,8,49]"),
        (vec![2, -1], "f32[2,unk0]"),
        (vec![-1], "f32[unk1]"),
        (vec![0, 2, 4, 49], "f32[N,2,4,49]"),
    ];
    let mut outs = Vec::new();
    for (i, (spec, _)) in cases.iter().enumerate() {
        let s = c_i64(&mut g, &format!("s{i}"), spec.clone());
        outs.push(
            g.add_simple(format!("r{i}"), Op::Reshape { allowzero: false }, &[x, s])
                .unwrap(),
        );
    }
    g.set_outputs(outs.clone());
    infer_types(&mut g).unwrap();
    for ((spec, want), v) in cases.iter().zip(outs) {
        assert_eq!(ty(&g, v), *want, "reshape to {spec:?}");
    }
}

#[test]
fn reshape_errors_are_caught_statically() {
    let mut g = Graph::new("t", 17);
    let x = input(&mut g, "x", DType::F32, vec![sym("N"), known(6)]);
    let s = c_i64(&mut g, "s", vec![0, 4]);
    let r = g
        .add_simple("bad_reshape", Op::Reshape { allowzero: false }, &[x, s])
        .unwrap();
    g.set_outputs(vec![r]);
    let err = infer_types(&mut g).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'bad_reshape' (Reshape): cannot reshape [N,6] to [0, 4]"
    );
    let mut g = Graph::new("t", 17);
    let x = input(&mut g, "x", DType::F32, vec![known(2), known(6)]);
    let s = c_i64(&mut g, "s", vec![5, -1]);
    let r = g
        .add_simple("r", Op::Reshape { allowzero: false }, &[x, s])
        .unwrap();
    g.set_outputs(vec![r]);
    let err = infer_types(&mut g).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot reshape [2, 6] (12 elements) to [5, -1]"),
        "{err}"
    );
}

/// The chain exporters emit for `x.view(x.size(0), -1)` and friends.
#[test]
fn shape_gather_concat_reshape_chain() {
    let mut g = Graph::new("t", 17);
    let x = input(&mut g, "x", DType::F32, nchw(sym("batch"), 8, 7, 7));
    let sh = g
        .add_simple(
            "shape",
            Op::Shape {
                start: 0,
                end: None,
            },
            &[x],
        )
        .unwrap();
    let i0 = g.add_constant("i0", Tensor::scalar_i64(0)).unwrap();
    let n = g
        .add_simple("gather", Op::Gather { axis: 0 }, &[sh, i0])
        .unwrap();
    let ax = c_i64(&mut g, "ax", vec![0]);
    let n1 = g.add_simple("unsq", Op::Unsqueeze, &[n, ax]).unwrap();
    let m1 = c_i64(&mut g, "m1", vec![-1]);
    let spec = g
        .add_simple("cat", Op::Concat { axis: 0 }, &[n1, m1])
        .unwrap();
    let r = g
        .add_simple("view", Op::Reshape { allowzero: false }, &[x, spec])
        .unwrap();
    // ConstantOfShape(Shape(x)) keeps the symbol too.
    let cos = g
        .add_simple(
            "cos",
            Op::ConstantOfShape {
                value: Tensor::scalar_f32(1.0),
            },
            &[sh],
        )
        .unwrap();
    // Shape of the static part is fully known and folds: Shape(x)[1:] -> [8,7,7].
    let tail = g
        .add_simple(
            "tail",
            Op::Shape {
                start: 1,
                end: None,
            },
            &[x],
        )
        .unwrap();
    let prod_in = g
        .add_simple("cast", Op::Cast { to: DType::F32 }, &[tail])
        .unwrap();
    g.set_outputs(vec![r, cos, prod_in]);
    infer_types(&mut g).unwrap();
    assert_eq!(ty(&g, sh), "i64[4]");
    assert_eq!(ty(&g, n), "i64[]");
    assert_eq!(ty(&g, spec), "i64[2]");
    assert_eq!(ty(&g, r), "f32[batch,392]");
    assert_eq!(ty(&g, cos), "f32[batch,8,7,7]");
    assert_eq!(ty(&g, prod_in), "f32[3]");
}

#[test]
fn static_shape_chains_are_computed() {
    // With a static input, the whole chain is computable: the reshape gets known dims.
    let mut g = Graph::new("t", 17);
    let x = input(&mut g, "x", DType::F32, nchw(known(3), 2, 2, 5));
    let sh = g
        .add_simple(
            "shape",
            Op::Shape {
                start: 0,
                end: Some(2),
            },
            &[x],
        )
        .unwrap();
    let f = g
        .add_simple("cast", Op::Cast { to: DType::F32 }, &[sh])
        .unwrap();
    let back = g
        .add_simple("back", Op::Cast { to: DType::I64 }, &[f])
        .unwrap();
    let ten = c_i64(&mut g, "ten", vec![1, 10]);
    let spec = g.add_simple("mul", Op::Mul, &[back, ten]).unwrap(); // [3, 20]
    let r = g
        .add_simple("r", Op::Reshape { allowzero: false }, &[x, spec])
        .unwrap();
    let full = g
        .add_simple(
            "cos",
            Op::ConstantOfShape {
                value: Tensor::scalar_i64(7),
            },
            &[spec],
        )
        .unwrap();
    g.set_outputs(vec![r, full]);
    infer_types(&mut g).unwrap();
    assert_eq!(ty(&g, r), "f32[3,20]");
    assert_eq!(ty(&g, full), "i64[3,20]");
}

#[test]
fn broadcasting_and_matmul_with_symbols() {
    let mut g = Graph::new("t", 17);
    let x = input(&mut g, "x", DType::F32, vec![sym("N"), known(5), known(4)]);
    let w = zeros(&mut g, "w", &[4, 3]);
    let mm = g.add_simple("mm", Op::MatMul, &[x, w]).unwrap();
    let b = zeros(&mut g, "b", &[1, 3]);
    let add = g.add_simple("add", Op::Add, &[mm, b]).unwrap();
    let y = input(&mut g, "y", DType::F32, vec![sym("N"), known(1), known(1)]);
    let mul = g.add_simple("mul", Op::Mul, &[add, y]).unwrap();
    let v = zeros(&mut g, "v", &[3]);
    let mv = g.add_simple("mv", Op::MatMul, &[mul, v]).unwrap();
    let ax = c_i64(&mut g, "ax", vec![-1]);
    let rm = g
        .add_simple(
            "rm",
            Op::ReduceMean {
                keepdims: false,
                noop_with_empty_axes: false,
            },
            &[mv, ax],
        )
        .unwrap();
    let t = g
        .add_simple("t", Op::Transpose { perm: vec![] }, &[mul])
        .unwrap();
    g.set_outputs(vec![rm, t]);
    infer_types(&mut g).unwrap();
    assert_eq!(ty(&g, mm), "f32[N,5,3]");
    assert_eq!(ty(&g, add), "f32[N,5,3]");
    assert_eq!(ty(&g, mul), "f32[N,5,3]");
    assert_eq!(ty(&g, mv), "f32[N,5]");
    assert_eq!(ty(&g, rm), "f32[N]");
    assert_eq!(ty(&g, t), "f32[3,5,N]");
}

#[test]
fn pad_concat_squeeze_unsqueeze_gather_with_symbols() {
    let mut g = Graph::new("t", 17);
    let x = input(&mut g, "x", DType::F32, vec![sym("N"), known(1), known(4)]);
    let pads = c_i64(&mut g, "pads", vec![0, 0, 1, 0, 0, 2]);
    let p = g
        .add_simple(
            "pad",
            Op::Pad {
                mode: pannc_ir::PadMode::Reflect,
            },
            &[x, pads],
        )
        .unwrap();
    let c = g
        .add_simple("cat", Op::Concat { axis: 2 }, &[x, p])
        .unwrap();
    let cb = g
        .add_simple("catb", Op::Concat { axis: 0 }, &[x, x])
        .unwrap();
    let ax = c_i64(&mut g, "ax", vec![1]);
    let sq = g.add_simple("sq", Op::Squeeze, &[c, ax]).unwrap();
    let ax2 = c_i64(&mut g, "ax2", vec![-1, 0]);
    let us = g.add_simple("us", Op::Unsqueeze, &[sq, ax2]).unwrap();
    let idx = g
        .add_constant("idx", Tensor::from_i64(&[2, 2], vec![0, 1, -1, 2]).unwrap())
        .unwrap();
    let ga = g
        .add_simple("ga", Op::Gather { axis: 2 }, &[us, idx])
        .unwrap();
    g.set_outputs(vec![cb, ga]);
    infer_types(&mut g).unwrap();
    assert_eq!(ty(&g, p), "f32[N,1,7]");
    assert_eq!(ty(&g, c), "f32[N,1,11]");
    assert_eq!(ty(&g, cb), "f32[unk0,1,4]");
    assert_eq!(ty(&g, sq), "f32[N,11]");
    assert_eq!(ty(&g, us), "f32[1,N,11,1]");
    assert_eq!(ty(&g, ga), "f32[1,N,2,2,1]");
}

#[test]
fn errors_name_node_op_and_mismatch() {
    let mut g = Graph::new("t", 17);
    let x = input(&mut g, "x", DType::F32, nchw(sym("N"), 3, 8, 8));
    let w = zeros(&mut g, "w", &[4, 1, 3, 3]);
    let y = g
        .add_simple(
            "conv1",
            Op::Conv {
                window: Window::default(),
                group: 1,
            },
            &[x, w],
        )
        .unwrap();
    g.set_outputs(vec![y]);
    let err = infer_types(&mut g).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'conv1' (Conv): input channels 3 ≠ weight's 1 × group 1"
    );
    assert!(matches!(err, InterpError::Node { ref node, op: "Conv", .. } if node == "conv1"));

    let mut g = Graph::new("t", 17);
    let a = input(&mut g, "a", DType::F32, vec![sym("N"), known(3)]);
    let b = zeros(&mut g, "b", &[4]);
    let y = g.add_simple("add", Op::Add, &[a, b]).unwrap();
    g.set_outputs(vec![y]);
    let err = infer_types(&mut g).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'add' (Add): shapes [N,3] and [4] are not broadcastable (axis 1: 3 vs 4)"
    );

    let mut g = Graph::new("t", 17);
    let a = input(&mut g, "a", DType::I64, vec![known(3)]);
    let y = g.add_simple("sig", Op::Sigmoid, &[a]).unwrap();
    g.set_outputs(vec![y]);
    assert_eq!(
        infer_types(&mut g).unwrap_err().to_string(),
        "node 'sig' (Sigmoid): expects a float tensor, got i64"
    );

    let mut g = Graph::new("t", 17);
    let a = input(&mut g, "a", DType::F32, vec![known(2), known(3)]);
    let w = zeros(&mut g, "w", &[4, 5]);
    let y = g.add_simple("mm", Op::MatMul, &[a, w]).unwrap();
    g.set_outputs(vec![y]);
    assert_eq!(
        infer_types(&mut g).unwrap_err().to_string(),
        "node 'mm' (MatMul): inner dimensions differ: [2,3] × [4,5]"
    );

    let mut g = Graph::new("t", 17);
    let a = g.add_input("a", None).unwrap();
    let y = g.add_simple("r", Op::Relu, &[a]).unwrap();
    g.set_outputs(vec![y]);
    assert_eq!(
        infer_types(&mut g).unwrap_err().to_string(),
        "graph input 0 ('a'): has no declared type"
    );

    let mut g = Graph::new("t", 17);
    let a = input(&mut g, "a", DType::F32, vec![known(2)]);
    let y = g.add_simple("bad", Op::Add, &[a]).unwrap();
    g.set_outputs(vec![y]);
    assert_eq!(
        infer_types(&mut g).unwrap_err().to_string(),
        "node 'bad' (Add): takes 2..=2 inputs, has 1"
    );
}

#[test]
fn depthwise_and_grouped_conv_shapes() {
    let mut g = Graph::new("t", 17);
    let x = input(&mut g, "x", DType::F64, nchw(sym("N"), 6, 9, 9));
    let w = g
        .add_constant(
            "w",
            Tensor::from_f64(&[12, 1, 3, 3], vec![0.0; 108]).unwrap(),
        )
        .unwrap();
    let win = Window {
        auto_pad: pannc_ir::AutoPad::SameUpper,
        strides: vec![2, 2],
        ..Default::default()
    };
    let y = g
        .add_simple(
            "dw",
            Op::Conv {
                window: win,
                group: 6,
            },
            &[x, w],
        )
        .unwrap();
    g.set_outputs(vec![y]);
    infer_types(&mut g).unwrap();
    assert_eq!(ty(&g, y), "f64[N,12,5,5]");
}

/// The ops of transformer and mobile exports keep the batch symbol where they should:
/// a full-range Slice, Split along another axis, Expand to `Shape(x)`, LayerNormalization's
/// statistics, ArgMax; comparisons give bool and Where takes it.
#[test]
fn new_ops_keep_the_batch_symbol_and_type_bools() {
    let mut g = Graph::new("t", 20);
    let x = input(&mut g, "x", DType::F32, vec![sym("N"), known(6), known(8)]);
    // x[:, 1:5:2, :] with end = i64::MAX on the batch axis: N stays
    let (s, e, a, st) = (
        c_i64(&mut g, "s", vec![0, 1]),
        c_i64(&mut g, "e", vec![i64::MAX, 5]),
        c_i64(&mut g, "a", vec![0, 1]),
        c_i64(&mut g, "st", vec![1, 2]),
    );
    let sl = g.add_simple("slice", Op::Slice, &[x, s, e, a, st]).unwrap();
    let (_, parts) = g
        .add_node(
            "split",
            Op::Split {
                axis: -1,
                num_outputs: 3,
            },
            &[x],
            &["p0".into(), "p1".into(), "p2".into()],
        )
        .unwrap();
    let shp = g
        .add_simple(
            "shape",
            Op::Shape {
                start: 0,
                end: None,
            },
            &[x],
        )
        .unwrap();
    let one = zeros(&mut g, "one", &[1, 1, 1]);
    let ex = g.add_simple("expand", Op::Expand, &[one, shp]).unwrap();
    let scale = zeros(&mut g, "scale", &[8]);
    let (_, ln) = g
        .add_node(
            "ln",
            Op::LayerNormalization {
                axis: -1,
                epsilon: 1e-5,
            },
            &[x, scale],
            &["y".into(), "mean".into(), "inv".into()],
        )
        .unwrap();
    let am = g
        .add_simple(
            "argmax",
            Op::ArgMax {
                axis: 2,
                keepdims: false,
                select_last_index: false,
            },
            &[x],
        )
        .unwrap();
    let eq = g.add_simple("eq", Op::Equal, &[x, ex]).unwrap();
    let wh = g.add_simple("where", Op::Where, &[eq, x, ex]).unwrap();
    g.set_outputs(vec![sl, parts[2], ex, ln[1], am, wh]);
    infer_types(&mut g).unwrap();
    assert_eq!(ty(&g, sl), "f32[N,2,8]");
    assert_eq!(ty(&g, parts[2]), "f32[N,6,2]", "8 in 3 parts: 3, 3, 2");
    assert_eq!(ty(&g, ex), "f32[N,6,8]");
    assert_eq!(ty(&g, ln[0]), "f32[N,6,8]");
    assert_eq!(ty(&g, ln[1]), "f32[N,6,1]");
    assert_eq!(ty(&g, am), "i64[N,6]");
    assert_eq!(ty(&g, eq), "bool[N,6,8]");
    assert_eq!(ty(&g, wh), "f32[N,6,8]");
    // Where's condition must be bool, and its branches of one type.
    let mut g2 = Graph::new("t", 20);
    let x = input(&mut g2, "x", DType::F32, vec![sym("N"), known(2)]);
    let w = g2.add_simple("where", Op::Where, &[x, x, x]).unwrap();
    g2.set_outputs(vec![w]);
    let e = infer_types(&mut g2).unwrap_err();
    assert!(
        e.to_string().contains("expects a bool tensor, got f32"),
        "{e}"
    );
}

/// An opaque node's outputs keep their declared types; values computed from an untyped one
/// stay untyped instead of failing inference, while an untyped value that does not come from
/// an opaque node is still an error.
#[test]
fn opaque_outputs_keep_declared_types_and_untyped_ones_propagate() {
    use pannc_ir::Opaque;
    let opaque = |t: &str| {
        Op::Opaque(Box::new(Opaque {
            domain: "ai.onnx.ml".into(),
            op_type: t.into(),
            encoded: vec![],
            foreign_types: vec![None],
        }))
    };
    let mut g = Graph::new("t", 20);
    let x = input(&mut g, "x", DType::F32, vec![sym("N"), known(3)]);
    let typed = g.add_simple("norm", opaque("Normalizer"), &[x]).unwrap();
    g.value_mut(typed).ty = Some(TensorType::new(DType::F32, vec![sym("N"), known(3)]));
    let untyped = g.add_simple("zip", opaque("ZipMap"), &[x]).unwrap();
    let after_typed = g.add_simple("relu", Op::Relu, &[typed]).unwrap();
    let after_untyped = g.add_simple("id", Op::Identity, &[untyped]).unwrap();
    g.set_outputs(vec![after_typed, after_untyped]);
    infer_types(&mut g).unwrap();
    assert_eq!(ty(&g, typed), "f32[N,3]");
    assert_eq!(ty(&g, after_typed), "f32[N,3]");
    assert_eq!(ty(&g, untyped), "?");
    assert_eq!(ty(&g, after_untyped), "?");
    let e = pannc_interp::run(
        &g,
        &[Tensor::from_f32(&[1, 3], vec![0.0; 3]).unwrap()],
        &Default::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("node 'norm' (Opaque): ai.onnx.ml.Normalizer is kept"),
        "{e}"
    );
}
