//! Nothing hangs: against a server that accepts connections and never answers, every job fails
//! within its timeouts, with an error naming the host and port, and a non-zero exit.

mod common;
#[path = "support/qdrant_double.rs"]
mod qdrant_double;

use common::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A test double for a stalled server: a loopback listener that accepts every connection and
/// never reads or writes (the connections stay open until the test process ends).
fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.extend(stream.ok());
        }
    });
    port
}

/// Runs the `ngbak` binary with short timeouts; returns its output and how long it took.
fn ngbak_timed(args: &[&str], envs: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ngbak"));
    for inherited in ["NGBAK_STORE", "REDIS_URL", "NEO4J_URI", "QDRANT_URL", "QDRANT_GRPC_URL", "NGBAK_CA_FILE"] {
        cmd.env_remove(inherited);
    }
    cmd.env("RUST_LOG", "warn")
        .env("NGBAK_CONNECT_TIMEOUT", "1")
        .env("NGBAK_REQUEST_TIMEOUT", "2")
        .args(args)
        .envs(envs.iter().copied());
    let started = Instant::now();
    let out = cmd.output().expect("running the ngbak binary");
    (out, started.elapsed())
}

/// Asserts a run failed in time with an error that names `127.0.0.1:<port>`.
fn assert_fails_in_time(what: &str, (out, took): (Output, Duration), port: u16, limit: Duration) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: must fail");
    assert!(took < limit, "{what}: took {took:?}, more than {limit:?}: {stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{what}: the error names host and port: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: no panic: {stderr}");
}

fn local_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    (dir, path)
}

#[test]
fn a_silent_redis_fails_the_backup_within_the_timeouts() {
    let port = silent_server();
    let (_dir, store) = local_store();
    let url = format!("redis://127.0.0.1:{port}");
    let run = ngbak_timed(&["--store", &store, "backup", "--redis-url", &url], &[]);
    assert_fails_in_time("redis", run, port, Duration::from_secs(10));
}

#[test]
fn a_silent_bolt_server_fails_the_backup_within_the_timeouts() {
    let port = silent_server();
    let (_dir, store) = local_store();
    let uri = format!("bolt://127.0.0.1:{port}");
    let run = ngbak_timed(&["--store", &store, "backup"], &[("NEO4J_URI", &uri), ("NEO4J_PASSWORD", "pw")]);
    assert_fails_in_time("bolt", run, port, Duration::from_secs(15));
}

#[test]
fn a_silent_qdrant_fails_the_backup_within_the_timeouts() {
    let port = silent_server();
    let (_dir, store) = local_store();
    let url = format!("http://127.0.0.1:{port}");
    let run = ngbak_timed(&["--store", &store, "backup"], &[("QDRANT_URL", url.as_str())]);
    assert_fails_in_time("qdrant", run, port, Duration::from_secs(15));
}

/// Points mode: REST (the Qdrant double) answers, so the job gets as far as gRPC, which is silent.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_qdrant_grpc_fails_a_points_mode_backup_within_the_timeouts() {
    let double = qdrant_double::QdrantDouble::start(None, "1.15.0").await;
    double.seed_hybrid("entities", 5, 8);
    let port = silent_server();
    let (_dir, store) = local_store();
    let grpc = format!("http://127.0.0.1:{port}");
    let rest = double.rest_url.clone();
    let run = tokio::task::spawn_blocking(move || {
        let env = [("QDRANT_URL", rest.as_str()), ("QDRANT_GRPC_URL", grpc.as_str()), ("NGBAK_QDRANT_MODE", "points")];
        ngbak_timed(&["--store", &store, "backup"], &env)
    })
    .await
    .unwrap();
    assert_fails_in_time("qdrant gRPC", run, port, Duration::from_secs(15));
}

#[test]
fn a_silent_s3_endpoint_fails_the_backup_within_the_timeouts() {
    let port = silent_server();
    let endpoint = format!("http://127.0.0.1:{port}");
    let kv = sample_workdir();
    let env = [("AWS_ENDPOINT_URL", endpoint.as_str()), ("NGBAK_MAX_ATTEMPTS", "2")];
    let run = ngbak_timed(&["--store", "s3://stalled-bucket/x", "backup", "--kv-dir", kv.to_str().unwrap()], &env);
    assert_fails_in_time("s3", run, port, Duration::from_secs(20));
}

/// The preflight: a restore whose second backend does not answer writes nothing into the first.
#[tokio::test]
async fn a_restore_with_one_backend_down_writes_nothing_into_the_others() {
    let (_dir, store) = local_store();
    let prefix = format!("ngpre_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let url = redis_url();
    let backup = ["--store", &store, "backup", "--redis-url", &url, "--redis-pattern", &pattern, "--id", "preflight"];
    let (out, _) = ngbak_timed(&backup, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    delete_pattern(&mut con, &pattern).await;

    let port = silent_server();
    let bolt = format!("bolt://127.0.0.1:{port}");
    let restore = ["--store", &store, "restore", "preflight", "--redis-url", &url, "--redis-pattern", &pattern];
    let run = ngbak_timed(&restore, &[("NEO4J_URI", bolt.as_str()), ("NEO4J_PASSWORD", "pw")]);
    let stderr = String::from_utf8_lossy(&run.0.stderr).into_owned();
    assert_fails_in_time("restore preflight", run, port, Duration::from_secs(10));
    assert!(stderr.contains("preflight failed"), "{stderr}");
    assert!(redis_snapshot(&mut con, &pattern).await.is_empty(), "nothing was restored into Redis");
}
