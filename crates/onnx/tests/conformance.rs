//! Imports every conformance node model whose ops are all supported, and counts.

mod common;

#[test]
fn conformance_node_models_import() {
    let Some(data) = common::data_dir("conformance_node_models_import") else {
        return;
    };
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (name, path) in common::node_models(&data) {
        let bytes = std::fs::read(&path).unwrap();
        if !common::all_ops_supported(&bytes) {
            continue;
        }
        match pannc_onnx::import(&bytes) {
            Ok(_) => ok.push(name),
            Err(e) => failed.push((name, e)),
        }
    }
    eprintln!(
        "supported-op conformance models: {} imported, {} failed",
        ok.len(),
        failed.len()
    );
    for (n, e) in &failed {
        eprintln!("  FAIL {n}: [{}] {e}", e.kind());
    }
}
