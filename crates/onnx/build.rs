//! Generates the Rust types for the vendored `proto/onnx.proto` with prost, using the protoc
//! binary shipped by `protoc-bin-vendored` (no system protoc needed).

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    println!("cargo:rerun-if-changed=build.rs");
    let protoc = protoc_bin_vendored::protoc_bin_path()
        .expect("protoc-bin-vendored has no protoc for this platform");
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config
        .compile_protos(&["proto/onnx.proto"], &["proto/"])
        .expect("compiling proto/onnx.proto");
}
