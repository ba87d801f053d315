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

    // Client only: the shipped crate never serves gRPC. The tests' fake relay and the load
    // generator generate their own server stubs (testkit/build.rs, bench/build.rs).
    tonic_prost_build::configure()
        .build_server(false)
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
        let text = open_enums(&text);
        // A pbjson that writes enum fields differently would leave closed enums behind.
        if let Some(line) = text.lines().find(|l| l.contains("()? as i32")) {
            return Err(format!(
                "enum field not rewritten in {pkg}.serde.rs: {}",
                line.trim()
            )
            .into());
        }
        std::fs::write(&path, text)?;
    }

    Ok(())
}

/// Rewrites the generated enum fields to read through `crate::enums::JsonEnum`, which takes any
/// number and any name (PRODUCT.md §2): pbjson's own reader refuses a value the schema lacks,
/// which would make a whole line unreadable, and lists every valid name in its error.
fn open_enums(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4096);
    for line in text.split_inclusive('\n') {
        out.push_str(&open_enum_line(line));
    }
    out
}

fn open_enum_line(line: &str) -> String {
    const START: &str = "map_.next_value::<";
    let Some(at) = line.find(START) else {
        return line.to_owned();
    };
    let rest = &line[at + START.len()..];
    if let Some(inner) = rest.strip_prefix("Vec<") {
        if let Some(name) = ident(inner) {
            let tail = ">>()?.into_iter().map(|x| x as i32).collect()";
            if inner[name.len()..].starts_with(tail) {
                let after = &inner[name.len() + tail.len()..];
                return format!(
                    "{}{START}Vec<crate::enums::JsonEnum<{name}>>>()?.into_iter().map(|x| x.0).collect(){after}",
                    &line[..at]
                );
            }
        }
    } else if let Some(name) = ident(rest) {
        let tail = ">()? as i32";
        if rest[name.len()..].starts_with(tail) {
            let after = &rest[name.len() + tail.len()..];
            return format!(
                "{}{START}crate::enums::JsonEnum<{name}>>()?.0{after}",
                &line[..at]
            );
        }
    }
    line.to_owned()
}

/// The identifier (a type name: upper-case first) at the start of `s`.
fn ident(s: &str) -> Option<&str> {
    let n = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (n > 0 && s.starts_with(|c: char| c.is_ascii_uppercase())).then(|| &s[..n])
}
