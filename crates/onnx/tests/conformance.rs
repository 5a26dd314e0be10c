//! Imports every ONNX conformance node model whose ops are all supported, counts them, and
//! checks that the ones that fail do so for the documented reasons (element types other than
//! f32/f64/i64/bool, non-tensor types, training-only outputs). Also reads their test tensors.

mod common;

use pannc_onnx::OnnxError;

/// Models with supported ops and dtypes that must still fail: training-mode BatchNormalization
/// and Dropout (a non-constant training_mode, a used mask), MaxPool's Indices output.
const EXPECTED_BAD_NODE: &[&str] = &[
    "test_batchnorm_epsilon_training_mode",
    "test_batchnorm_example_training_mode",
    "test_dropout_default_mask",
    "test_dropout_default_mask_ratio",
    "test_maxpool_with_argmax_2d_precomputed_pads",
    "test_maxpool_with_argmax_2d_precomputed_strides",
    "test_training_dropout",
    "test_training_dropout_default",
    "test_training_dropout_default_mask",
    "test_training_dropout_mask",
    "test_training_dropout_zero_ratio",
    "test_training_dropout_zero_ratio_mask",
];

/// Models written at an opset older than pannc reads (Not at opset 1).
const EXPECTED_OLD_OPSET: &[&str] = &["test_not_2d", "test_not_3d", "test_not_4d"];

#[test]
fn conformance_node_models_import() {
    let Some(data) = common::data_dir("conformance_node_models_import") else {
        return;
    };
    let mut ok = Vec::new();
    let mut dtype = Vec::new();
    let mut other = Vec::new();
    let mut tensors = 0;
    for (name, path) in common::node_models(&data) {
        let bytes = std::fs::read(&path).unwrap();
        if !common::all_ops_supported(&bytes) {
            continue;
        }
        match pannc_onnx::import(&bytes) {
            Ok(m) => {
                // the test tensors of an importable model read too, with the declared shapes
                let dir = path.parent().unwrap().join("test_data_set_0");
                for (i, &v) in m.graph.inputs().iter().enumerate() {
                    let f = dir.join(format!("input_{i}.pb"));
                    if !f.is_file() {
                        continue;
                    }
                    let (_, t) = pannc_onnx::read_tensor(&std::fs::read(&f).unwrap())
                        .unwrap_or_else(|e| panic!("{name}: {}: {e}", f.display()));
                    if let Some(ty) = &m.graph.value(v).ty {
                        assert_eq!(t.dtype(), ty.dtype, "{name} input {i}");
                        if let Some(s) = ty.known_shape() {
                            assert_eq!(t.shape(), &s[..], "{name} input {i}");
                        }
                    }
                    // write → read → write is the identity (bitwise, so NaNs compare)
                    let again = pannc_onnx::write_tensor("t", &t);
                    let (n2, t2) = pannc_onnx::read_tensor(&again).unwrap();
                    assert_eq!((n2.as_str(), t2.shape()), ("t", t.shape()));
                    assert_eq!(
                        pannc_onnx::write_tensor("t", &t2),
                        again,
                        "{name} input {i}"
                    );
                    tensors += 1;
                }
                ok.push(name)
            }
            Err(e @ (OnnxError::UnsupportedDType { .. } | OnnxError::BadType { .. })) => {
                dtype.push((name, e))
            }
            Err(e) => other.push((name, e)),
        }
    }
    eprintln!(
        "supported-op conformance models: {} imported, {} rejected for their element/value types, {} rejected otherwise; {tensors} test inputs read",
        ok.len(),
        dtype.len(),
        other.len()
    );
    for (n, e) in &other {
        eprintln!("  {n}: {e}");
    }
    let (old, other): (Vec<_>, Vec<_>) = other
        .into_iter()
        .partition(|(_, e)| e.kind() == "unsupported-opset");
    let old_names: Vec<&str> = old.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(old_names, EXPECTED_OLD_OPSET, "unexpected opset failures");
    let other_names: Vec<&str> = other.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(other_names, EXPECTED_BAD_NODE, "unexpected import failures");
    assert!(other.iter().all(|(_, e)| e.kind() == "bad-node"));
    // every model of these families imports: they use only f32
    for family in [
        "test_conv_",
        "test_averagepool_",
        "test_maxpool_3d_",
        "test_batchnorm_",
        "test_flatten_",
        "test_gemm_",
        "test_matmul_",
        "test_softmax_",
        "test_reshape_",
    ] {
        assert!(
            !dtype.iter().any(|(n, _)| n.starts_with(family)),
            "{family}: {dtype:?}"
        );
    }
    assert!(ok.len() >= 192, "only {} imported", ok.len());
}
