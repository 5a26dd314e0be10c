//! Every op against onnxruntime's outputs (tests/data/ort_reference.json, made by
//! tests/data/gen_ort_reference.py), through `eval_op`, through `run`, and in f64 mode.

mod common;
use common::*;
use pannc_interp::{eval_op, infer_types, run, Precision, RunOptions};
use pannc_ir::Tensor;

#[test]
fn ops_match_onnxruntime() {
    let data = load("ort_reference.json");
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() > 100);
    let mut failures = Vec::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let mut inputs: Vec<Option<Tensor>> = c["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (!v.is_null()).then(|| tensor(v)))
            .collect();
        let present: Vec<bool> = inputs.iter().map(|t| t.is_some()).collect();
        let op = make_op(c["op"].as_str().unwrap(), &c["attrs"], &present);
        if matches!(op, pannc_ir::Op::Pad { .. }) && inputs.len() == 4 && inputs[2].is_none() {
            // The IR has no absent middle inputs: Pad's default constant_value is zero.
            inputs[2] = Some(Tensor::scalar_f32(0.0));
        }
        let want: Vec<Tensor> = c["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(tensor)
            .collect();
        let result = std::panic::catch_unwind(|| {
            // eval_op (first output only).
            let refs: Vec<&Tensor> = inputs.iter().flatten().collect();
            let got = eval_op(&op, &refs).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_close(name, &got[0], &want[0], 1e-5, 1e-5, false);
            // run, with every output, f32.
            let (g, feeds) = single_node_graph(op.clone(), &inputs, want.len(), usize::MAX);
            let got =
                run(&g, &feeds, &RunOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_close(
                    &format!("{name} (run, output {i})"),
                    a,
                    b,
                    1e-5,
                    1e-5,
                    false,
                );
            }
            // f64 mode: outputs are f64 and close to the f32 reference.
            let opts = RunOptions {
                precision: Precision::F64,
                ..Default::default()
            };
            let got = run(&g, &feeds, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                if b.dtype().is_float() {
                    assert_eq!(
                        a.dtype(),
                        pannc_ir::DType::F64,
                        "{name}: f64 mode output dtype"
                    );
                }
                assert_close(&format!("{name} (f64, output {i})"), a, b, 1e-5, 1e-4, true);
            }
            // Static inference agrees with the computed types (attribute-like inputs as
            // constants, as the importer makes them).
            let (mut g, _) = single_node_graph(op.clone(), &inputs, want.len(), 1);
            infer_types(&mut g).unwrap_or_else(|e| panic!("{name}: infer: {e}"));
            for (i, (&v, b)) in g.outputs().iter().zip(&want).enumerate() {
                let ty = g.value(v).ty.clone().unwrap();
                assert_eq!(
                    ty.known_shape().as_deref(),
                    Some(b.shape()),
                    "{name}: inferred shape of output {i}"
                );
                assert_eq!(ty.dtype, b.dtype(), "{name}: inferred dtype of output {i}");
            }
        });
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            failures.push(format!("{name}: {}", msg.unwrap_or_default()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
