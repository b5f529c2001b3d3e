//! Every failure kind, produced for real through the functions' handlers where it can be, and
//! the error response the function would answer with (`errorType`). The kinds a binary shows
//! under a Runtime API (`MalformedEvent` for a body that is not JSON, `Stopped` by SIGTERM) are
//! in `function_host.rs`.

mod common;

use clap::Parser;
use common::*;
use ngbak::failure::FailureKind;
use ngbak::lambda::{backup, error_response, restore, FunctionConfig};
use serde_json::json;
use std::time::Duration;

fn config(store: &str, extra: &[&str]) -> FunctionConfig {
    let mut args = vec!["test", "--store", store];
    args.extend(extra);
    FunctionConfig::try_parse_from(args).unwrap()
}

fn answered_as(error: &anyhow::Error, kind: FailureKind) {
    let response = error_response(error);
    assert_eq!(response.error_type, kind.name(), "{error:#}");
    assert_eq!(response.error_message, format!("{error:#}"), "the message is the error's, whole");
}

#[tokio::test]
async fn each_failure_answers_with_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = store_dir.to_str().unwrap();
    let workdir = sample_workdir();
    let with_workdir = config(store, &["--kv-dir", workdir.to_str().unwrap()]);

    // MalformedEvent: an id that is no id.
    let err = backup::handle(&with_workdir, json!({ "backup_id": "a/../b" })).await.unwrap_err();
    answered_as(&err, FailureKind::MalformedEvent);

    // ConfigurationError: no backend configured.
    let err = backup::handle(&config(store, &[]), json!({ "backup_id": "nothing_configured" })).await.unwrap_err();
    answered_as(&err, FailureKind::ConfigurationError);

    // BackupExists: a direct backup with an id that is taken.
    backup::handle(&with_workdir, json!({ "backup_id": "taken" })).await.unwrap();
    let err = backup::handle(&with_workdir, json!({ "backup_id": "taken" })).await.unwrap_err();
    answered_as(&err, FailureKind::BackupExists);

    // BackupNotFound.
    let restore_into = dir.path().join("restored");
    let restoring = config(store, &["--kv-dir", restore_into.to_str().unwrap()]);
    let err =
        restore::handle(&restoring, json!({ "backup_id": "never_made" }), Duration::from_secs(60)).await.unwrap_err();
    answered_as(&err, FailureKind::BackupNotFound);

    // IntegrityError: one byte of the archive flipped.
    backup::handle(&with_workdir, json!({ "backup_id": "damaged" })).await.unwrap();
    let archive = store_dir.join("damaged.ngbak");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&archive, bytes).unwrap();
    let err =
        restore::handle(&restoring, json!({ "backup_id": "damaged" }), Duration::from_secs(60)).await.unwrap_err();
    answered_as(&err, FailureKind::IntegrityError);
    assert!(!restore_into.exists(), "a failed verification touched the target");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store_dir.join("damaged.restore-report.json")).unwrap()).unwrap();
    assert_eq!(report["kind"], json!("IntegrityError"), "the report object names the kind too: {report}");

    // BackendUnavailable: a graph on a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = config(store, &["--neo4j-uri", &format!("bolt://127.0.0.1:{closed}"), "--connect-timeout", "2"]);
    let err = backup::handle(&down, json!({ "backup_id": "graph_down" })).await.unwrap_err();
    answered_as(&err, FailureKind::BackendUnavailable);

    // LockHeld: another run holds this backup's lock.
    let id: ngbak::id::BackupId = "locked".parse().unwrap();
    let held = ngbak::store::lock::acquire(
        local_store(&store_dir),
        &id.lock_key("backup"),
        "another run",
        ngbak::store::lock::LEASE,
    )
    .await
    .unwrap()
    .expect("the lock is free");
    let err = backup::handle(&with_workdir, json!({ "backup_id": "locked" })).await.unwrap_err();
    answered_as(&err, FailureKind::LockHeld);
    held.release().await.unwrap();
}

/// The kinds that need a failure in the middle of writing, by the types the pipeline reports
/// them with (their real occurrences are in `stops.rs`, `graph_exact.rs` and `redis_roundtrip.rs`).
#[test]
fn written_and_mismatched_restores_and_anything_else_answer_with_their_kind() {
    use ngbak::pipeline::restore::{PartialRestore, WrittenSoFar};
    let id: ngbak::id::BackupId = "snap".parse().unwrap();
    let so_far = WrittenSoFar {
        target: "redis://cache".into(),
        entries_sent: 1,
        entries_total: 2,
        records_sent: 5,
        records_total: 9,
    };
    let partial = PartialRestore {
        backup_id: id.clone(),
        written: [("redis".to_string(), so_far)].into(),
        not_written: Vec::new(),
        safety_backup: None,
        rollback_command: None,
    };
    let err = anyhow::anyhow!("connection reset").context(partial);
    answered_as(&err, FailureKind::PartialRestore);
    // Nothing written: the kind of the cause stands.
    let nothing = PartialRestore {
        backup_id: id,
        written: Default::default(),
        not_written: vec!["redis".into()],
        safety_backup: None,
        rollback_command: None,
    };
    let err = anyhow::Error::new(FailureKind::BackendUnavailable.marked("refused")).context(nothing);
    answered_as(&err, FailureKind::BackendUnavailable);
    answered_as(
        &anyhow::Error::new(FailureKind::ReadBackMismatch.marked("the restored redis differs")),
        FailureKind::ReadBackMismatch,
    );
    answered_as(&anyhow::anyhow!("disk full"), FailureKind::Internal);
}
