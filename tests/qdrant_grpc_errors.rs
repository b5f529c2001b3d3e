//! A Qdrant gRPC endpoint that accepts connections and never answers fails a points-mode backup
//! within the answer timeout, with an error naming the gRPC host:port and the timeout that
//! applied. A gRPC connection cut mid-answer is retried on a new one, and what was archived is
//! exactly what the server holds.
//!
//! REST is the Qdrant test double (tests/support/qdrant_double.rs: no Qdrant server runs here);
//! the silent gRPC endpoint is a loopback listener. This file is its own test process: it sets
//! the process's timeout policy (1 s answers).

mod common;
#[path = "support/qdrant_double.rs"]
mod qdrant_double;

use common::*;
use ngbak::backends::qdrant::{CaptureMode, QdrantExporter, QdrantRestorer, QdrantSettings};
use ngbak::backends::RestoreMode;
use ngbak::pipeline::backup::{run_backup, BackupOptions};
use ngbak::pipeline::restore::{run_restore, RestoreOptions};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn points_settings(rest_url: &str, grpc_url: String, restore_as: Option<&str>) -> QdrantSettings {
    QdrantSettings {
        url: rest_url.to_string(),
        grpc_url: Some(grpc_url),
        api_key: None,
        collections: vec!["entities".into()],
        mode: CaptureMode::Points,
        restore_as: restore_as.map(str::to_string),
        switch_alias: None,
        restore_mode: RestoreMode::Replace,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_connection_cut_mid_scroll_is_retried_and_the_archive_is_exact() {
    short_timeouts();
    let double = qdrant_double::QdrantDouble::start(None, "1.15.0").await;
    double.seed_hybrid("entities", 1000, 8);
    // The first connection is cut after 30 kB of answers: inside the first scroll pages.
    let direct = double.grpc_url.trim_start_matches("http://").to_string();
    let proxy = flaky_proxy(direct, 1..=1, 30_000, Fault::Cut).await;
    let port = proxy.port;
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let exporter = QdrantExporter::new(points_settings(&double.rest_url, format!("http://127.0.0.1:{port}"), None));
    let summary = run_backup(store.clone(), vec![Box::new(exporter)], BackupOptions::default()).await.unwrap();
    assert_eq!(proxy.faulted.load(Ordering::SeqCst), 1, "the first connection was cut");
    assert!(proxy.accepted.load(Ordering::SeqCst) >= 2, "the scroll went on over a new connection");
    assert_eq!(summary.backends["qdrant"].stats["vectors"], 1000);

    // Restored beside the original; the restore's read-back proves the points archived (their
    // digest, taken at backup time) are the ones now in the copy.
    let restorer =
        QdrantRestorer::new(points_settings(&double.rest_url, double.grpc_url.clone(), Some("entities_copy")));
    let report = run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(restorer)], &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(report.backends["qdrant"].verified, Some(true));
    assert_eq!(report.backends["qdrant"].restored["vectors"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_grpc_endpoint_is_named_with_its_timeout() {
    short_timeouts();
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
    let settings = points_settings(&double.rest_url, format!("http://127.0.0.1:{port}"), None);
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
