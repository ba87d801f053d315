//! Compiles `proto/` into Rust (prost + tonic) and JSON (pbjson) without a system `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/flow/flow.proto",
        "proto/relay/relay.proto",
        "proto/observer/observer.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out.join("descriptors.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(fds)?;

    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .ignore_unknown_fields()
        .build(&[".flow", ".observer", ".relay"])?;

    // pbjson reads every integer through an untagged enum (string or number), which buffers the
    // value and builds an error for each failed variant: most of the JSON decoding time. Our
    // own reader of the same two forms does it in one pass.
    for pkg in ["flow", "observer", "relay"] {
        let path = out.join(format!("{pkg}.serde.rs"));
        let text = std::fs::read_to_string(&path)?;
        let text = text.replace(
            "::pbjson::private::NumberDeserialize",
            "crate::api::json::Number",
        );
        std::fs::write(&path, text)?;
    }

    // The load generator's server: the same route as `observer.Observer/GetFlows`, answering
    // with pre-encoded responses (`crate::loadgen::Encoded`) so that encoding costs nothing.
    tonic_build::manual::Builder::new()
        .build_client(false)
        .build_server(true)
        .out_dir(&out)
        .compile(&[tonic_build::manual::Service::builder()
            .name("Observer")
            .package("observer")
            .method(
                tonic_build::manual::Method::builder()
                    .name("get_flows")
                    .route_name("GetFlows")
                    .input_type("crate::api::observer::GetFlowsRequest")
                    .output_type("crate::loadgen::Encoded")
                    .codec_path("tonic_prost::ProstCodec")
                    .server_streaming()
                    .build(),
            )
            .build()]);
    Ok(())
}
