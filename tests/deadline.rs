//! The restore function running out of time: it stops itself before Lambda's deadline, so its
//! report, its tag and its lock are still handled — a restore held up by a stalled Redis ends as
//! `failed`, with the partial account and the rollback, not as a tag stuck at `running`.
//! (One test in this binary: a job's deadline is per process.)

mod common;

use clap::Parser;
use common::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_restore_function_stops_before_its_deadline_and_still_reports_tags_and_unlocks() {
    let bucket = new_bucket().await;
    let prefix = format!("ngdl_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_documents(&mut con, &prefix, 3000, 2000).await;
    let store = s3_store(&bucket, "ngbak").await;
    let exporter = ngbak::backends::redis::RedisExporter::new(&redis_url(), std::slice::from_ref(&pattern));
    let backup =
        ngbak::pipeline::backup::run_backup(store.clone(), vec![Box::new(exporter)], Default::default()).await.unwrap();

    let (port, _stalled) = stalling_writes_proxy(redis_url().trim_start_matches("redis://").to_string(), 1 << 20).await;
    let url = format!("redis://127.0.0.1:{port}");
    let store_url = format!("s3://{bucket}/ngbak");
    let config = ngbak::lambda::FunctionConfig::try_parse_from([
        "test",
        "--store",
        &store_url,
        "--redis-url",
        &url,
        "--redis-pattern",
        &pattern,
        "--kv-mode",
        "replace",
    ])
    .unwrap();
    let started = Instant::now();
    let time_left = Duration::from_secs(10);
    let invoke = serde_json::json!({ "backup_id": backup.backup_id });
    let err = ngbak::lambda::restore::handle(&config, invoke, time_left).await.unwrap_err();
    assert!(started.elapsed() < time_left, "the function ran past its deadline ({:?})", started.elapsed());
    assert!(format!("{err:#}").contains("time limit"), "{err:#}");

    let report_key = format!("{}.restore-report.json", backup.backup_id);
    let report: serde_json::Value =
        serde_json::from_slice(&ngbak::store::get_bytes(store.as_ref(), &report_key).await.unwrap()).unwrap();
    assert_eq!(report["status"], "failed", "{report}");
    assert!(report["stopped"].as_str().unwrap().contains("time limit"), "{report}");
    assert!(report["partial"]["written"]["redis"].is_object(), "the partial account is missing: {report}");
    assert!(report["partial"]["rollback_command"].is_string(), "{report}");
    assert_eq!(store.get_tags(&backup.backup_id.archive_key()).await.unwrap()["ngbak-restore"], "failed");
    assert!(store.head(ngbak::store::lock::RESTORE_LOCK).await.unwrap().is_none(), "the lock was kept");
    delete_pattern(&mut con, &pattern).await;
}
