//! Clean stops, with the real binary and real servers: SIGTERM during a backup leaves no object
//! and no pending upload; SIGTERM during a restore that a stalled Redis holds up ends the run
//! with a partial report, and the safety backup rolls every key back. Also `ngbak cleanup` of
//! what a killed run left behind (LocalStack's multipart uploads).

mod common;

use common::*;
use std::time::Duration;

/// Starts `ngbak` with its output captured.
fn spawn_ngbak(args: &[&str]) -> std::process::Child {
    let mut command = ngbak_command(args, &[]);
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
}

#[tokio::test]
async fn sigterm_during_a_backup_leaves_no_object_no_pending_upload_and_no_lock() {
    let bucket = new_bucket().await;
    let store = format!("s3://{bucket}/stops");
    // The export's replies come through a proxy that stalls once the backup has asked for a lot.
    let (pattern, url, stalled) = stalling_redis(2000, 40_000).await;
    let args = ["--store", &store, "backup", "--redis-pattern", &pattern, "--redis-url", &url, "--id", "killed"];
    let child = spawn_ngbak(&args);
    tokio::time::timeout(Duration::from_secs(60), stalled.notified()).await.expect("the backup never reached Redis");
    until_upload_pending(&bucket).await;
    terminate(&child);
    let out = wait_at_most(child, Duration::from_secs(20)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "exit code 128 + SIGTERM: {stderr}");
    assert!(stderr.contains("SIGTERM") && stderr.contains("no archive was stored"), "{stderr}");
    assert!(pending_uploads(&bucket).await.is_empty(), "the multipart upload was left pending");
    assert!(bucket_keys(&bucket).await.is_empty(), "objects left: {:?}", bucket_keys(&bucket).await);
    delete_pattern(&mut redis().await, &pattern).await;
}

#[tokio::test]
async fn sigterm_during_a_stalled_restore_reports_partial_and_the_safety_backup_rolls_back() {
    let bucket = new_bucket().await;
    let store = format!("s3://{bucket}/stops");
    let prefix = format!("ngstop_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_documents(&mut con, &prefix, 3000, 2000).await;
    let direct = redis_url();
    let backup = json_of(&ngbak(
        &["--store", &store, "backup", "--redis-pattern", &pattern, "--redis-url", &direct, "--json"],
        &[],
    ));
    let id = backup["backup_id"].as_str().unwrap().to_string();

    // Life goes on after the backup: changed values, deleted and new keys.
    let mut pipe = redis::pipe();
    for i in (0..3000).step_by(4) {
        pipe.cmd("SET").arg(format!("{prefix}:doc-{i}")).arg(format!("changed {i}")).ignore();
    }
    for i in (1..3000).step_by(9) {
        pipe.cmd("DEL").arg(format!("{prefix}:doc-{i}")).ignore();
    }
    for i in 0..100 {
        pipe.cmd("SADD").arg(format!("{prefix}:new-{i}")).arg("member").ignore();
    }
    let _: () = pipe.query_async(&mut con).await.unwrap();
    let before_restore = redis_snapshot(&mut con, &pattern).await;

    // The restore's bulk writes stall after 1 MB on each connection; its checks and its safety
    // backup (small commands) pass.
    let (port, stalled) = stalling_writes_proxy(direct.trim_start_matches("redis://").to_string(), 1 << 20).await;
    let url = format!("redis://127.0.0.1:{port}");
    let args =
        ["--store", &store, "restore", &id, "--redis-pattern", &pattern, "--redis-url", &url, "--kv-mode", "replace"];
    let child = spawn_ngbak(&args);
    tokio::time::timeout(Duration::from_secs(60), stalled.notified()).await.expect("the restore never wrote");
    terminate(&child);
    let out = wait_at_most(child, Duration::from_secs(20)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("PARTIAL RESTORE") && stderr.contains("SIGTERM"), "{stderr}");
    let partial_state = redis_snapshot(&mut con, &pattern).await;
    assert_ne!(partial_state, before_restore, "the stopped restore wrote nothing: the test proves nothing");

    // The report object says what was written, and how to roll back.
    let s3 = s3_store(&bucket, "stops").await;
    let report_key = format!("{id}.restore-report.json");
    let report: serde_json::Value =
        serde_json::from_slice(&ngbak::store::get_bytes(s3.as_ref(), &report_key).await.unwrap()).unwrap();
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(report["stopped"], "SIGTERM received", "{report}");
    let written = &report["partial"]["written"]["redis"];
    assert_eq!(written["records_total"], 3000, "{report}");
    assert!(written["records_sent"].as_u64().unwrap() <= 3000, "{report}");
    assert!(partial_state.len() < 3000, "the restore was not stopped midway ({} keys)", partial_state.len());
    let safety = report["partial"]["safety_backup"].as_str().expect("a safety backup was taken").to_string();
    assert!(stderr.contains(&format!("ngbak restore {safety}")), "the rollback command is given: {stderr}");
    assert!(s3.head(ngbak::store::lock::RESTORE_LOCK).await.unwrap().is_none(), "the restore lock was kept");
    assert!(pending_uploads(&bucket).await.is_empty());

    // The rollback, as the report says to run it: every key as it was before the restore.
    let rollback = report["partial"]["rollback_command"].as_str().unwrap();
    let words: Vec<&str> = rollback.split_whitespace().skip(1).collect();
    let args =
        [&["--store", store.as_str()][..], &words, &["--redis-pattern", &pattern, "--redis-url", &direct]].concat();
    let out = ngbak(&args, &[]);
    assert!(out.status.success(), "rollback failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_same_keys(&before_restore, &redis_snapshot(&mut con, &pattern).await, 60_000);
    delete_pattern(&mut con, &pattern).await;
}

#[tokio::test]
async fn cleanup_aborts_what_a_killed_run_left_and_keeps_what_a_live_one_holds() {
    let bucket = new_bucket().await;
    let store = s3_store(&bucket, "left").await;
    // A killed backup: its upload started, a part written, never completed nor aborted.
    let mut upload = store.start_upload("snapshot_2026-01-01T00-00-00Z.ngbak").await.unwrap();
    upload.write(bytes::Bytes::from(vec![7u8; 6 << 20])).await.unwrap();
    std::mem::forget(upload);
    // A live backup: its upload and its lock.
    let live: ngbak::id::BackupId = "snapshot_2026-01-02T00-00-00Z".parse().unwrap();
    let mut running = store.start_upload(&live.archive_key()).await.unwrap();
    running.write(bytes::Bytes::from_static(b"in progress")).await.unwrap();
    let lock =
        ngbak::store::lock::acquire(store.clone(), &live.lock_key("backup"), "a live backup", Duration::from_secs(600))
            .await
            .unwrap()
            .unwrap();
    // A stale lock of a killed restore.
    let stale = serde_json::json!({ "holder": "a killed restore", "token": "t", "acquired_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-01T00:10:00Z" });
    store.put(ngbak::store::lock::RESTORE_LOCK, serde_json::to_vec(&stale).unwrap().into()).await.unwrap();

    let env = [("NGBAK_STORE", format!("s3://{bucket}/left"))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let listed = ngbak(&["list"], &env);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("snapshot_2026-01-01T00-00-00Z.ngbak") && text.contains("EXPIRED"), "{text}");
    let dry = json_of(&ngbak(&["cleanup", "--older-than", "0", "--dry-run", "--json"], &env));
    assert_eq!(dry["aborted_uploads"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(pending_uploads(&bucket).await.len(), 2, "a dry run aborted something");

    let done = json_of(&ngbak(&["cleanup", "--older-than", "0", "--json"], &env));
    assert_eq!(done["aborted_uploads"][0]["key"], "snapshot_2026-01-01T00-00-00Z.ngbak", "{done}");
    assert_eq!(done["removed_locks"][0]["holder"], "a killed restore", "{done}");
    assert_eq!(done["kept"]["pending_uploads"][0]["key"], live.archive_key(), "{done}");
    let pending = pending_uploads(&bucket).await;
    assert_eq!(pending, [format!("left/{}", live.archive_key())], "only the live upload is left");
    assert!(store.head(ngbak::store::lock::RESTORE_LOCK).await.unwrap().is_none());
    assert!(store.head(&live.lock_key("backup")).await.unwrap().is_some(), "a live lock was removed");
    running.abort().await.unwrap();
    lock.release().await.unwrap();
}

#[tokio::test]
async fn a_backup_past_its_max_duration_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let prefix = format!("ngstop_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_documents(&mut con, &prefix, 2000, 1000).await;
    let (port, _stalled) = stalling_writes_proxy(redis_url().trim_start_matches("redis://").to_string(), 40_000).await;
    let url = format!("redis://127.0.0.1:{port}");
    let store_arg = store.to_str().unwrap();
    let args =
        ["--store", store_arg, "--max-duration", "3", "backup", "--redis-pattern", &pattern, "--redis-url", &url];
    let out = wait_at_most(spawn_ngbak(&args), Duration::from_secs(30)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("time limit of 3 s"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&store).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "a stopped backup left {left:?}");
    delete_pattern(&mut con, &pattern).await;
}

#[tokio::test]
async fn ctrl_c_stops_a_command_that_only_reads_at_once() {
    // A download that never answers: `verify --file` waits on it until Ctrl-C.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let url = format!("http://127.0.0.1:{port}/snapshot.ngbak");
    let child = spawn_ngbak(&["verify", "--file", &url]);
    // (Time to start and install its handlers: a signal before that would kill it outright.)
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = std::process::Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let out = wait_at_most(child, Duration::from_secs(5)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "exit code 128 + SIGINT: {stderr}");
    assert!(stderr.contains("SIGINT"), "{stderr}");
    held.abort();
}
