# hubble-noise container image: a static-ish Rust binary on distroless, running as non-root.
#   docker build -t hubble-noise:0.1.0 .
# The manifests in deploy/ mount the config at /etc/hubble-noise/config.toml.

# --- build ------------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not refetch them.
# The workspace's other members (bench/, fuzz/, testkit/) are tooling: cargo reads them to load
# the workspace, but none of them is built.
COPY Cargo.toml Cargo.lock README.md ./
COPY bench ./bench
COPY fuzz ./fuzz
COPY testkit ./testkit
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo fetch --locked \
    && rm -rf src
# build.rs compiles proto/ with protox (no system protoc needed).
COPY build.rs ./
COPY proto ./proto
COPY src ./src
RUN cargo build --release --locked -p hubble-noise --bin hubble-noise \
    && install -D -m 0755 target/release/hubble-noise /out/hubble-noise

# --- run --------------------------------------------------------------------------------------
# distroless/cc: glibc and libgcc, no shell, no package manager; user 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/hubble-noise /usr/local/bin/hubble-noise
COPY config.toml /etc/hubble-noise/config.toml
USER 65532:65532
EXPOSE 9967
ENTRYPOINT ["/usr/local/bin/hubble-noise"]
CMD ["run", "-c", "/etc/hubble-noise/config.toml"]
