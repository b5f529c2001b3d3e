# ngbak as a container task (ECS/Fargate, AWS Batch, Kubernetes): the same CLI, for backups and
# restores that outgrow Lambda's 15 minutes.
#   docker build -t ngbak .
#   docker run --rm -e NGBAK_STORE=s3://bucket/ngbak -e REDIS_URL=redis://... ngbak backup
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
