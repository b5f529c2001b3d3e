//! The rollback point: a restore that fails halfway says so, names what it wrote, and the safety
//! backup it took first brings every key back exactly as it was before the restore.

mod common;

use common::*;
use ngbak::backends::redis::{RedisExporter, RedisRestorer};
use ngbak::backends::RestoreMode;
use ngbak::pipeline::backup::{run_backup, BackupOptions};
use ngbak::pipeline::restore::{run_restore, RestoreOptions, SafetyBackup};

#[tokio::test]
async fn a_restore_cut_halfway_is_reported_partial_and_its_safety_backup_rolls_it_back() {
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    // The backup: 3,000 documents.
    for chunk in (0..3000).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("SET")
                .arg(format!("{prefix}:doc-{i}"))
                .arg(format!("{{\"content\": \"backed up {i}\"}}"))
                .ignore();
        }
        let _: () = pipe.query_async(&mut con).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let exporter = RedisExporter::new(&redis_url(), std::slice::from_ref(&pattern));
    let backup = run_backup(store.clone(), vec![Box::new(exporter)], BackupOptions::default()).await.unwrap();

    // Life goes on: values change, keys come and go, some expire later.
    let mut pipe = redis::pipe();
    for i in (0..3000).step_by(3) {
        pipe.cmd("SET").arg(format!("{prefix}:doc-{i}")).arg(format!("changed {i}")).arg("PX").arg(3_600_000).ignore();
    }
    for i in (1..3000).step_by(7) {
        pipe.cmd("DEL").arg(format!("{prefix}:doc-{i}")).ignore();
    }
    for i in 0..200 {
        pipe.cmd("HSET").arg(format!("{prefix}:new-{i}")).arg("field").arg(i).ignore();
    }
    let _: () = pipe.query_async(&mut con).await.unwrap();
    let before_restore = redis_snapshot(&mut con, &pattern).await;

    // The restore's own writes go through a proxy that cuts them off: connections 1 (checks),
    // 2–9 (the safety backup: the mark of Redis's state before it, large keys, SCAN and four
    // read lanes, the mark after it) and 10 (the clearing of a replace) pass; from connection 11
    // on (the four write connections) each is cut after 1 KB of replies. (Reads are retried on a
    // new connection, so the cut must hit the writes, which are not.)
    let target = redis_url().trim_start_matches("redis://").to_string();
    let proxy = flaky_proxy(target, 11..=usize::MAX, 1_000, Fault::Cut).await;
    let port = proxy.port;
    let restorer =
        RedisRestorer::new(&format!("redis://127.0.0.1:{port}"), std::slice::from_ref(&pattern), RestoreMode::Replace);
    let options = RestoreOptions { safety_backup: Some(SafetyBackup { store: store.clone() }), ..Default::default() };
    let err = run_restore(store.as_ref(), &backup.backup_id, vec![Box::new(restorer)], &options).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("PARTIAL RESTORE") && text.contains("writing to redis"), "{text}");
    assert!(!text.contains(", 0 of 3000 records sent"), "the cut came after some writes: {text}");
    assert!(proxy.faulted.load(std::sync::atomic::Ordering::SeqCst) >= 1, "a write connection was cut");
    let safety = ngbak::pipeline::catalog::list_backups(store.as_ref(), &Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.backup_id.is_safety())
        .expect("a safety backup was taken")
        .backup_id;
    assert!(text.contains(&format!("ngbak restore {safety}")), "the error must give the rollback command: {text}");
    let partial = redis_snapshot(&mut con, &pattern).await;
    assert_ne!(partial, before_restore, "the cut restore wrote nothing: the test proves nothing");

    // The rollback: the safety backup, in replace mode, gives back exactly what was there.
    let restorer = RedisRestorer::new(&redis_url(), std::slice::from_ref(&pattern), RestoreMode::Replace);
    let report =
        run_restore(store.as_ref(), &safety, vec![Box::new(restorer)], &RestoreOptions::default()).await.unwrap();
    assert_eq!(report.backends["redis"].verified, Some(true));
    assert_same_keys(&before_restore, &redis_snapshot(&mut con, &pattern).await, 60_000);
    delete_pattern(&mut con, &pattern).await;
}

/// The archive's second read (the write pass) breaks off: the error names the store read as the
/// cause, not the backend that was being written when the bytes stopped coming.
#[tokio::test]
async fn a_store_read_that_breaks_during_the_writes_is_named_as_the_cause() {
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    for chunk in (0..4000).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for i in chunk {
            let value: String = (0..32).map(|_| uuid::Uuid::new_v4().simple().to_string()).collect();
            pipe.cmd("SET").arg(format!("{prefix}:doc-{i}")).arg(value).ignore();
        }
        let _: () = pipe.query_async(&mut con).await.unwrap();
    }
    let bucket = new_bucket().await;
    let direct = s3_store(&bucket, "cut").await;
    let exporter = RedisExporter::new(&redis_url(), std::slice::from_ref(&pattern));
    let small_parts = BackupOptions { part_bytes: 1 << 20, ..Default::default() };
    let backup = run_backup(direct.clone(), vec![Box::new(exporter)], small_parts).await.unwrap();

    // Through a proxy that lets the first read of the archive pass whole, and half of the second.
    let endpoint = s3_endpoint().trim_start_matches("http://").to_string();
    let port = cutting_proxy(endpoint, backup.size + backup.size / 2).await;
    let options = ngbak::store::S3Options { endpoint: Some(format!("http://127.0.0.1:{port}")), ..Default::default() };
    let cut = ngbak::store::open(&format!("s3://{bucket}/cut"), &options).await.unwrap();
    let restorer = RedisRestorer::new(&redis_url(), std::slice::from_ref(&pattern), RestoreMode::Merge);
    let err = run_restore(cut.as_ref(), &backup.backup_id, vec![Box::new(restorer)], &RestoreOptions::default())
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    let cause = text.find("reading archive").unwrap_or_else(|| panic!("the store read is not named: {text}"));
    assert!(!text[..cause].contains("into redis"), "redis is blamed before the store: {text}");
    assert!(text.starts_with("PARTIAL RESTORE"), "the parts before the cut were written, and that is said: {text}");
    delete_pattern(&mut con, &pattern).await;
}
