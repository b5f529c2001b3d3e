//! A Qdrant gRPC endpoint that accepts connections and never answers fails a points-mode backup
//! within the answer timeout, with an error naming the gRPC host:port and the timeout that
//! applied (qdrant-client's own error says only "Timeout expired").
//!
//! REST is the Qdrant test double (tests/support/qdrant_double.rs: no Qdrant server runs here);
//! the silent gRPC endpoint is a loopback listener. This file is its own test process: it sets
//! the process's timeout policy (1 s answers).

mod common;
#[path = "support/qdrant_double.rs"]
mod qdrant_double;

use common::*;
use ngbak::pipeline::backup::{run_backup, BackupOptions};
use ngbak::sources::qdrant::{CaptureMode, QdrantExporter, QdrantSettings};
use ngbak::sources::RestoreMode;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_grpc_endpoint_is_named_with_its_timeout() {
    ngbak::net::timeouts::configure(ngbak::net::Policy {
        connect: Duration::from_secs(1),
        request: Duration::from_secs(1),
        max_attempts: 3,
        ca: None,
    });
    let double = qdrant_double::QdrantDouble::start(None, "1.15.0").await;
    double.seed_hybrid("entities", 5, 8);
    // Accepts every connection and holds it, silent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let settings = QdrantSettings {
        url: double.rest_url.clone(),
        grpc_url: Some(format!("http://127.0.0.1:{port}")),
        api_key: None,
        collections: vec!["entities".into()],
        mode: CaptureMode::Points,
        restore_as: None,
        switch_alias: None,
        restore_mode: RestoreMode::Replace,
    };
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let exporter = QdrantExporter::new(settings);
    let err =
        run_backup(local_store(dir.path()), vec![Box::new(exporter)], BackupOptions::default()).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(started.elapsed() < Duration::from_secs(10), "failed in time: {:?}", started.elapsed());
    assert!(
        text.contains(&format!("Qdrant gRPC at 127.0.0.1:{port} (answer timeout 1 s, NGBAK_REQUEST_TIMEOUT)")),
        "names the gRPC host:port and the timeout: {text}"
    );
}
