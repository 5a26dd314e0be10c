//! `import_with_limits`: every limit is checked before allocation, on generated models.

use pannc_ir::{DType, Dim, Graph, Op, Tensor, TensorType};
use pannc_onnx::{export_graph, import, import_with_limits, Limits, OnnxError};

fn f32_input(g: &mut Graph, dims: Vec<Dim>) -> pannc_ir::ValueId {
    g.add_input("x", Some(TensorType::new(DType::F32, dims)))
        .unwrap()
}

/// x[N, n] + w0 + w1 + ... with one n-float weight per entry of `weights`.
fn weights_model(n: usize, weights: usize) -> Vec<u8> {
    let mut g = Graph::new("weights", 17);
    let mut v = f32_input(&mut g, vec![Dim::Sym("N".into()), Dim::Known(n)]);
    for k in 0..weights {
        let w = g
            .add_constant(
                format!("w{k}"),
                Tensor::from_f32(&[n], vec![k as f32; n]).unwrap(),
            )
            .unwrap();
        v = g.add_simple(format!("add{k}"), Op::Add, &[v, w]).unwrap();
    }
    g.set_outputs(vec![v]);
    export_graph(&g).unwrap()
}

fn limits(tensor: u64, total: u64) -> Limits {
    Limits {
        max_tensor_bytes: tensor,
        max_total_bytes: total,
        ..Limits::default()
    }
}

#[test]
fn defaults() {
    let l = Limits::default();
    assert_eq!(l.max_tensor_bytes, 2 << 30);
    assert_eq!(l.max_total_bytes, 4 << 30);
    assert_eq!(l.max_rank, 64);
    assert_eq!(pannc_onnx::MAX_TENSOR_BYTES, l.max_tensor_bytes);
}

#[test]
fn total_counts_every_weight() {
    // three weights of 1000 floats: 12 000 bytes in all
    let bytes = weights_model(1000, 3);
    assert!(import_with_limits(&bytes, &limits(4000, 12_000)).is_ok());
    let e = import_with_limits(&bytes, &limits(4000, 11_999)).unwrap_err();
    assert_eq!(e.kind(), "total-too-large", "{e}");
    let OnnxError::TotalTooLarge {
        tensor,
        bytes,
        total,
        limit,
        ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(
        (tensor.as_str(), bytes, total, limit),
        ("w2", 4000, 12_000, 11_999)
    );
}

#[test]
fn tensor_limit_is_checked_first() {
    let bytes = weights_model(1000, 3);
    let e = import_with_limits(&bytes, &limits(3999, 1 << 30)).unwrap_err();
    assert_eq!(e.kind(), "too-large", "{e}");
    assert!(e.to_string().contains("tensor 'w0'"), "{e}");
    // the default import is the default limits
    assert!(import(&bytes).is_ok());
}

#[test]
fn constant_of_shape_with_a_constant_shape_counts() {
    // ConstantOfShape([1000]) of f32: 4000 bytes materialised by constant folding
    let mut g = Graph::new("cos", 17);
    let x = f32_input(&mut g, vec![Dim::Sym("N".into()), Dim::Known(1)]);
    let s = g
        .add_constant("shape", Tensor::from_i64(&[1], vec![1000]).unwrap())
        .unwrap();
    let c = g
        .add_simple(
            "cos",
            Op::ConstantOfShape {
                value: Tensor::from_f32(&[1], vec![1.0]).unwrap(),
            },
            &[s],
        )
        .unwrap();
    let y = g.add_simple("add", Op::Add, &[x, c]).unwrap();
    g.set_outputs(vec![y]);
    let bytes = export_graph(&g).unwrap();
    // the 8-byte shape constant plus the 4000-byte output
    assert!(import_with_limits(&bytes, &limits(4000, 4008)).is_ok());
    let e = import_with_limits(&bytes, &limits(4000, 4007)).unwrap_err();
    assert_eq!(e.kind(), "total-too-large", "{e}");
    let e = import_with_limits(&bytes, &limits(3999, 1 << 20)).unwrap_err();
    assert_eq!(e.kind(), "too-large", "{e}");
}

#[test]
fn declared_shapes_count_known_dimensions_only() {
    let model = |dims: Vec<Dim>| {
        let mut g = Graph::new("decl", 17);
        let x = f32_input(&mut g, dims);
        let y = g.add_simple("relu", Op::Relu, &[x]).unwrap();
        g.set_outputs(vec![y]);
        export_graph(&g).unwrap()
    };
    // [N, 1000] f32: 4000 bytes per sample, N does not count
    let bytes = model(vec![Dim::Sym("N".into()), Dim::Known(1000)]);
    assert!(import_with_limits(&bytes, &limits(4000, 1)).is_ok());
    let e = import_with_limits(&bytes, &limits(3999, 1)).unwrap_err();
    assert_eq!(e.kind(), "value-too-large", "{e}");
    assert!(
        e.to_string()
            .contains("value 'x': declared shape [N, 1000]"),
        "{e}"
    );
}

#[test]
fn rank_limit() {
    let mut g = Graph::new("rank", 17);
    let x = f32_input(&mut g, vec![Dim::Known(1); 10]);
    let y = g.add_simple("relu", Op::Relu, &[x]).unwrap();
    g.set_outputs(vec![y]);
    let bytes = export_graph(&g).unwrap();
    let l = |max_rank| Limits {
        max_rank,
        ..Limits::default()
    };
    assert!(import_with_limits(&bytes, &l(10)).is_ok());
    let e = import_with_limits(&bytes, &l(9)).unwrap_err();
    assert_eq!(
        e,
        OnnxError::RankTooLarge {
            what: "value 'x'".into(),
            rank: 10,
            limit: 9
        }
    );
}

#[test]
fn with_max_memory() {
    let bytes = weights_model(1000, 3);
    assert!(import_with_limits(&bytes, &Limits::with_max_memory(12_000)).is_ok());
    let e = import_with_limits(&bytes, &Limits::with_max_memory(3_000)).unwrap_err();
    assert_eq!(e.kind(), "too-large", "{e}");
}
