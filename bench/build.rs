//! The load generator's gRPC server: the route of `observer.Observer/GetFlows`, answering with
//! pre-encoded responses (`crate::loadgen::Encoded`) so that encoding costs the generator
//! nothing.

fn main() {
    let out = std::env::var_os("OUT_DIR").map(std::path::PathBuf::from);
    let Some(out) = out else {
        panic!("cargo sets OUT_DIR for build scripts");
    };
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
                    .input_type("::hubble_noise::api::observer::GetFlowsRequest")
                    .output_type("crate::loadgen::Encoded")
                    .codec_path("tonic_prost::ProstCodec")
                    .server_streaming()
                    .build(),
            )
            .build()]);
}
