# ngbak as a container task (ECS/Fargate, AWS Batch, Kubernetes): the same CLI, for backups and
# restores that outgrow Lambda's 15 minutes (the functions start it: `ngbak job restore <id>`).
# Build for the task's CPU (template parameter TaskArchitecture, default ARM64):
#   docker build --platform linux/arm64 -t ngbak .    # TaskArchitecture=ARM64 (QEMU or an arm64 builder)
#   docker build --platform linux/amd64 -t ngbak .    # TaskArchitecture=X86_64
#   docker run --rm -e NGBAK_STORE=s3://bucket/ngbak -e REDIS_URL=redis://... ngbak backup
# The rust image is multi-arch, so the build stage compiles natively for --platform.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin ngbak

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin ngbak
COPY --from=build /src/target/release/ngbak /usr/local/bin/ngbak
USER ngbak
ENTRYPOINT ["/usr/local/bin/ngbak"]
CMD ["--help"]
