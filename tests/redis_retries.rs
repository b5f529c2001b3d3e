//! Redis reads retry on a lost or stalled connection, against the real Redis through a loopback
//! proxy that cuts or stalls one connection; a Redis that stays away fails the job with a message
//! naming host:port and what was tried, and never the password.
//!
//! This file is its own test process: it sets the process's timeout policy (1 s answers).

mod common;

use common::*;
use ngbak::archive::ContentDigest;
use ngbak::backends::redis::{RedisExporter, RedisRestorer};
use ngbak::backends::{RestoreMode, Restorer};
use ngbak::id::BackupId;
use ngbak::pipeline::backup::{run_backup, BackupOptions};
use ngbak::pipeline::restore::{run_restore, RestoreOptions};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// `host:port` of the test Redis.
fn redis_addr() -> String {
    redis_url().trim_start_matches("redis://").trim_end_matches('/').to_string()
}

/// `n` string keys of about 300 bytes under `prefix`, besides one key of every type.
async fn seed(prefix: &str, n: usize) {
    seed_in(&mut redis().await, prefix, n).await;
}

async fn seed_in(con: &mut redis::aio::MultiplexedConnection, prefix: &str, n: usize) {
    seed_redis(con, prefix).await;
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("SET")
            .arg(format!("{prefix}:text_chunks:c{i}"))
            .arg(format!("{{\"content\":\"{}\"}}", "x".repeat(280)))
            .ignore();
    }
    let _: () = pipe.query_async(con).await.unwrap();
}

async fn read_back_digest(url: &str, pattern: &str) -> ContentDigest {
    let mut restorer = RedisRestorer::new(url, &[pattern.to_string()], RestoreMode::Replace);
    let mut digest = ContentDigest::default();
    assert!(restorer.read_back(&mut |line: &[u8]| digest.add(line)).await.unwrap());
    digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_goes_on_when_its_redis_connection_is_cut_once() {
    short_timeouts();
    let prefix = format!("ngr_{}", unique());
    let pattern = format!("{prefix}:*");
    seed(&prefix, 2000).await;
    let mut con = redis().await;
    let before = redis_snapshot(&mut con, &pattern).await;

    // The backup marks Redis's state on a connection of its own (1), then opens one for large
    // keys (2), one for SCAN (3) and its read lanes (4 on); SCAN's answers come to about 70 kB, a
    // lane's batch to about 175 kB. Cut SCAN's and the first lane's after 20 kB: each read goes
    // on over a new connection, never cut twice.
    let proxy = flaky_proxy(redis_addr(), 3..=4, 20_000, Fault::Cut).await;
    let port = proxy.port;
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let options = BackupOptions { id: Some(BackupId::for_time(chrono::Utc::now())), ..Default::default() };
    let exporter = RedisExporter::new(&format!("redis://127.0.0.1:{port}"), std::slice::from_ref(&pattern));
    let summary = run_backup(store.clone(), vec![Box::new(exporter)], options).await.unwrap();
    assert_eq!(proxy.faulted.load(Ordering::SeqCst), 2, "SCAN's and a lane's connection were cut");
    assert_eq!(summary.backends["redis"].stats["keys"], 2013);

    // What was archived is exactly what is in Redis: restored into an emptied scope, key by key,
    // and the restore's own read-back proves the digest recorded at backup time.
    delete_pattern(&mut con, &pattern).await;
    let restorer = RedisRestorer::new(&redis_url(), std::slice::from_ref(&pattern), RestoreMode::Replace);
    let report = run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(restorer)], &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(report.backends["redis"].verified, Some(true));
    assert_same_keys(&before, &redis_snapshot(&mut con, &pattern).await, 5000);
    delete_pattern(&mut con, &pattern).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_back_goes_on_when_a_connection_stops_answering() {
    short_timeouts();
    // In database 9, which holds only these keys: one SCAN finds them all, so they make one batch.
    let prefix = format!("ngr_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = ngbak::backends::redis::connect(&format!("{}/9", redis_url())).await.unwrap();
    seed_in(&mut con, &prefix, 300).await;
    let direct = read_back_digest(&format!("{}/9", redis_url()), &pattern).await;
    assert_eq!(direct.records, 300 + 28, "a line per key, and one per element of hashes, lists, sets, sorted sets");

    // Connection 1 walks the keys; the one batch goes to a lane on connection 2, which stalls
    // after 2 kB of its answer: the 1 s answer timeout fires and the lane reads again.
    let proxy = flaky_proxy(redis_addr(), 2..=2, 2_000, Fault::Stall).await;
    let (port, accepted) = (proxy.port, proxy.accepted);
    let started = Instant::now();
    let through = read_back_digest(&format!("redis://127.0.0.1:{port}/9"), &pattern).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "the stall held the read for the answer timeout");
    assert!(accepted.load(Ordering::SeqCst) >= 3, "the lane read again over a new connection");
    assert_eq!(through, direct);
    delete_pattern(&mut con, &pattern).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_stays_away_fails_naming_host_port_and_attempts_but_not_the_password() {
    short_timeouts();
    let prefix = format!("ngr_{}", unique());
    let pattern = format!("{prefix}:*");
    seed(&prefix, 2000).await;
    // An ACL user, so the URL carries a password to keep out of the message.
    let (user, password) = (format!("ngbak_retry_{}", unique()), format!("retry-pw-{}", unique()));
    let mut con = redis().await;
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(format!(">{password}"))
        .arg("~*")
        .arg("+@all")
        .query_async(&mut con)
        .await
        .unwrap();

    // Every connection is cut once 50 kB have come back through the proxy, in all.
    let port = cutting_proxy(redis_addr(), 50_000).await;
    let url = format!("redis://{user}:{password}@127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let exporter = RedisExporter::new(&url, std::slice::from_ref(&pattern));
    let err =
        run_backup(local_store(dir.path()), vec![Box::new(exporter)], BackupOptions::default()).await.unwrap_err();
    let took = started.elapsed();
    let text = format!("{err:#}");
    let _: () = redis::cmd("ACL").arg("DELUSER").arg(&user).query_async(&mut con).await.unwrap();
    delete_pattern(&mut con, &pattern).await;

    assert!(text.contains(&format!("127.0.0.1:{port}")), "names host and port: {text}");
    assert!(text.contains("failed 3 time(s)") && text.contains("NGBAK_MAX_ATTEMPTS=3"), "says what was tried: {text}");
    assert!(!text.contains(&password), "the password stays out of the message: {text}");
    assert!(took < Duration::from_secs(15), "gave up in bounded time, not {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_not_retried() {
    short_timeouts();
    let proxy = flaky_proxy(redis_addr(), 0..=0, u64::MAX, Fault::Cut).await;
    let (port, accepted) = (proxy.port, proxy.accepted);
    let url = format!("redis://nobody_{}:not-the-password@127.0.0.1:{port}", unique());
    let exporter = RedisExporter::new(&url, &["ngr_none:*".to_string()]);
    let dir = tempfile::tempdir().unwrap();
    let err =
        run_backup(local_store(dir.path()), vec![Box::new(exporter)], BackupOptions::default()).await.unwrap_err();
    let text = format!("{err:#}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "an authentication failure is final: {text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")) && !text.contains("not-the-password"), "{text}");
}
