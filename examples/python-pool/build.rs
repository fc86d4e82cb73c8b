//! Generates the gRPC messages and client of `worker.proto` with tonic's
//! codegen, using the `protoc` that `protoc-bin-vendored` ships, so a fresh
//! machine needs no protobuf compiler installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // prost-build reads `PROTOC`; a build script runs on one thread.
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=worker.proto");
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(&["worker.proto"], &["."])?;
    Ok(())
}
