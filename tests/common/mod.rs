//! Shared test support: connections to the real servers that `make test` starts
//! (tests/servers/start.sh), unique names, and item-by-item snapshots of backends.
#![allow(dead_code)]

use ngbak::store::{self, ObjectStore, S3Options};
use redis::aio::MultiplexedConnection;
use std::collections::BTreeMap;
use std::sync::Arc;

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: these tests need the servers that `make test` starts (tests/servers/start.sh)")
    })
}

pub fn redis_url() -> String {
    required("NGBAK_TEST_REDIS_URL")
}

pub fn s3_endpoint() -> String {
    required("NGBAK_TEST_S3_ENDPOINT")
}

/// A short unique suffix for bucket names, key prefixes and directories.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

pub async fn s3_client() -> aws_sdk_s3::Client {
    let shared =
        ngbak::net::aws::loader().endpoint_url(s3_endpoint()).region(aws_config::Region::new("us-east-1")).load().await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&shared).force_path_style(true).build())
}

/// A fresh bucket (the S3 server keeps state between tests, so every test gets its own).
pub async fn new_bucket() -> String {
    let bucket = format!("ngbak-test-{}", unique());
    s3_client().await.create_bucket().bucket(&bucket).send().await.expect("create bucket");
    bucket
}

pub async fn s3_store(bucket: &str, prefix: &str) -> Arc<dyn ObjectStore> {
    let options = S3Options { endpoint: Some(s3_endpoint()), ..Default::default() };
    store::open(&format!("s3://{bucket}/{prefix}"), &options).await.expect("open S3 store")
}

pub fn local_store(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
    Arc::new(store::local::LocalStore::new(dir.to_str().unwrap()).unwrap())
}

pub async fn redis() -> MultiplexedConnection {
    ngbak::backends::redis::connect(&redis_url()).await.expect("connect to the test Redis")
}

/// One Redis key as read back for comparison: type, value in a canonical order, and PTTL.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyState {
    pub kind: String,
    pub value: Vec<Vec<u8>>,
    pub pttl: i64,
}

/// Every key matching `pattern`, item by item.
pub async fn redis_snapshot(con: &mut MultiplexedConnection, pattern: &str) -> BTreeMap<Vec<u8>, KeyState> {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg(pattern).query_async(con).await.unwrap();
    let mut out = BTreeMap::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(con).await.unwrap();
        let pttl: i64 = redis::cmd("PTTL").arg(&key).query_async(con).await.unwrap();
        let value: Vec<Vec<u8>> = match kind.as_str() {
            "string" => vec![redis::cmd("GET").arg(&key).query_async(con).await.unwrap()],
            "hash" => sorted_pairs(redis::cmd("HGETALL").arg(&key).query_async(con).await.unwrap()),
            "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query_async(con).await.unwrap(),
            "set" => {
                let mut m: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(&key).query_async(con).await.unwrap();
                m.sort();
                m
            }
            "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).arg("WITHSCORES").query_async(con).await.unwrap(),
            "stream" => {
                let v: redis::Value = redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query_async(con).await.unwrap();
                vec![format!("{v:?}").into_bytes()]
            }
            other => panic!("unexpected type {other}"),
        };
        out.insert(key, KeyState { kind, value, pttl });
    }
    out
}

fn sorted_pairs(flat: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = flat.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
    pairs.sort();
    pairs.into_iter().flat_map(|(a, b)| [a, b]).collect()
}

/// Asserts two snapshots hold the same keys, types and values, and TTLs within `slack_ms`
/// (restored TTLs can only be shorter: time passes between backup and restore).
pub fn assert_same_keys(before: &BTreeMap<Vec<u8>, KeyState>, after: &BTreeMap<Vec<u8>, KeyState>, slack_ms: i64) {
    assert_eq!(
        before.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect::<Vec<_>>(),
        after.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect::<Vec<_>>(),
        "key sets differ"
    );
    for (key, b) in before {
        let a = &after[key];
        let name = String::from_utf8_lossy(key);
        assert_eq!(a.kind, b.kind, "type of {name}");
        assert_eq!(a.value, b.value, "value of {name}");
        if b.pttl < 0 {
            assert_eq!(a.pttl, b.pttl, "{name} must not expire");
        } else {
            assert!(
                a.pttl <= b.pttl && a.pttl > b.pttl - slack_ms,
                "TTL of {name}: {} after, {} before",
                a.pttl,
                b.pttl
            );
        }
    }
}

/// Writes one key of every type (binary-safe, some with TTLs) under `prefix`, shaped like
/// nano-graphrag's `nano_graphrag:<namespace>:<id>` keys.
pub async fn seed_redis(con: &mut MultiplexedConnection, prefix: &str) {
    let k = |s: &str| format!("{prefix}:{s}");
    let doc = r#"{"content": "Ada Lovelace wrote the first algorithm — «vraiment».", "n": 1.50}"#;
    let _: () = redis::pipe()
        .cmd("SET")
        .arg(k("full_docs:doc-1"))
        .arg(doc)
        .ignore()
        .cmd("SET")
        .arg(k("full_docs:doc-2"))
        .arg(r#"{"content":"second"}"#)
        .ignore()
        .cmd("SET")
        .arg(k("text_chunks:chunk-1"))
        .arg(r#"{"tokens": 12, "content": "x", "full_doc_id": "doc-1"}"#)
        .ignore()
        .cmd("SET")
        .arg(k("llm_response_cache:abc"))
        .arg(r#"{"return": "cached"}"#)
        .arg("PX")
        .arg(3_600_000)
        .ignore()
        .cmd("SET")
        .arg(k("community_reports:0"))
        .arg("{}")
        .ignore()
        .cmd("SET")
        .arg(k("bin:value"))
        .arg((0u8..=255).collect::<Vec<u8>>())
        .ignore()
        .cmd("SET")
        .arg([k("bin:").into_bytes(), vec![0xff, 0x00, 0xfe]].concat())
        .arg("binary key")
        .ignore()
        .cmd("SET")
        .arg(k("empty"))
        .arg("")
        .ignore()
        .cmd("HSET")
        .arg(k("hash"))
        .arg("field")
        .arg("value")
        .arg(vec![0xc3u8, 0x28])
        .arg(vec![0u8, 1])
        .arg("e")
        .arg("")
        .ignore()
        .cmd("PEXPIRE")
        .arg(k("hash"))
        .arg(7_200_000)
        .ignore()
        .cmd("RPUSH")
        .arg(k("list"))
        .arg("b")
        .arg("a")
        .arg("b")
        .arg("")
        .arg(vec![0xffu8])
        .ignore()
        .cmd("SADD")
        .arg(k("set"))
        .arg("x")
        .arg("y")
        .arg(vec![0x80u8])
        .ignore()
        .cmd("ZADD")
        .arg(k("zset"))
        .arg("1.5")
        .arg("one-and-half")
        .arg("-inf")
        .arg("floor")
        .arg("1e-7")
        .arg("tiny")
        .arg("42")
        .arg(vec![0xfeu8])
        .ignore()
        .cmd("XADD")
        .arg(k("stream"))
        .arg("1-1")
        .arg("event")
        .arg("created")
        .ignore()
        .query_async(con)
        .await
        .unwrap();
}

pub async fn delete_pattern(con: &mut MultiplexedConnection, pattern: &str) {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg(pattern).query_async(con).await.unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(keys).query_async(con).await.unwrap();
    }
}

/// An event file from `events/`, as the functions receive it.
pub fn event(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The sample nano-graphrag working directory shipped with the tests.
pub fn sample_workdir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nano-graphrag-workdir")
}

/// Backs up the sample working directory into `store`.
pub async fn backup_sample(
    store: Arc<dyn ObjectStore>,
    options: ngbak::pipeline::backup::BackupOptions,
) -> anyhow::Result<ngbak::pipeline::backup::BackupSummary> {
    let exporter = ngbak::backends::workdir::WorkdirExporter::new(&sample_workdir());
    ngbak::pipeline::backup::run_backup(store, vec![Box::new(exporter)], options).await
}

/// Every object key in a bucket.
pub async fn bucket_keys(bucket: &str) -> Vec<String> {
    let out = s3_client().await.list_objects_v2().bucket(bucket).send().await.unwrap();
    out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
}

/// Multipart uploads still pending in a bucket.
pub async fn pending_uploads(bucket: &str) -> Vec<String> {
    let out = s3_client().await.list_multipart_uploads().bucket(bucket).send().await.unwrap();
    out.uploads().iter().filter_map(|u| u.key().map(str::to_string)).collect()
}

/// Settings for the Bolt test server (ArcadeDB here; a real Neo4j when NGBAK_TEST_BOLT_URI points
/// at one), scoped to `label`.
pub fn bolt_settings(label: &str, mode: ngbak::backends::RestoreMode) -> ngbak::backends::neo4j::Neo4jSettings {
    ngbak::backends::neo4j::Neo4jSettings {
        uri: required("NGBAK_TEST_BOLT_URI"),
        user: std::env::var("NGBAK_TEST_BOLT_USER").unwrap_or_else(|_| "neo4j".into()),
        password: required("NGBAK_TEST_BOLT_PASSWORD"),
        database: std::env::var("NGBAK_TEST_BOLT_DATABASE").unwrap_or_else(|_| "neo4j".into()),
        label: Some(label.to_string()),
        batch_size: 500,
        mode,
        merge_key: "id".into(),
    }
}

pub async fn bolt_graph() -> neo4rs::Graph {
    let s = bolt_settings("unused", ngbak::backends::RestoreMode::Merge);
    let config = neo4rs::ConfigBuilder::default()
        .uri(&s.uri)
        .user(&s.user)
        .password(&s.password)
        .db(s.database.as_str())
        .build()
        .unwrap();
    neo4rs::Graph::connect(config).unwrap()
}

/// A TCP proxy that forwards to `target` until `limit` bytes have come back from it, then
/// cuts every connection: a database going away in the middle of a result stream.
pub async fn cutting_proxy(target: String, limit: u64) -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let passed = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else { continue };
            let passed = passed.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if passed.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > limit
                        || cw.write_all(&buf[..n]).await.is_err()
                    {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    port
}

/// Nodes by their `id` property: (sorted labels, properties), and relationships as sorted lines.
/// Properties are in the archive's tagged form, so floats compare exactly (by value, not text).
pub type GraphState = (BTreeMap<String, (Vec<String>, serde_json::Map<String, serde_json::Value>)>, Vec<String>);

/// Every node labelled `label` and every relationship between two of them, item by item.
pub async fn snapshot_graph(graph: &neo4rs::Graph, label: &str) -> GraphState {
    use neo4rs::{query, BoltType};
    use ngbak::backends::neo4j::value;
    let mut nodes = BTreeMap::new();
    let mut rows =
        graph.execute(query(&format!("MATCH (n:`{label}`) RETURN labels(n) AS l, properties(n) AS p"))).await.unwrap();
    while let Some(row) = rows.next().await.unwrap() {
        let mut labels: Vec<String> = row.get("l").unwrap();
        labels.sort();
        let BoltType::Map(p) = row.get::<BoltType>("p").unwrap() else { panic!("properties are not a map") };
        let props = value::encode_map(&p).unwrap();
        let id = props["id"].as_str().unwrap().to_string();
        assert!(nodes.insert(id, (labels, props)).is_none(), "duplicate node id");
    }
    let mut rels = Vec::new();
    let q =
        format!("MATCH (a:`{label}`)-[r]->(b:`{label}`) RETURN a.id AS a, type(r) AS t, b.id AS b, properties(r) AS p");
    let mut rows = graph.execute(query(&q)).await.unwrap();
    while let Some(row) = rows.next().await.unwrap() {
        let BoltType::Map(p) = row.get::<BoltType>("p").unwrap() else { panic!("properties are not a map") };
        let (a, t, b): (String, String, String) = (row.get("a").unwrap(), row.get("t").unwrap(), row.get("b").unwrap());
        rels.push(format!("{a} -[{t} {}]-> {b}", serde_json::Value::Object(value::encode_map(&p).unwrap())));
    }
    rels.sort();
    (nodes, rels)
}

/// The codecs every round-trip test runs with (gzip the default, zstd the alternative).
pub const CODECS: [ngbak::archive::compress::Codec; 2] =
    [ngbak::archive::compress::Codec::Gzip, ngbak::archive::compress::Codec::Zstd];

/// Backup options for `codec` at its default level, on two threads.
pub fn compression(codec: ngbak::archive::compress::Codec) -> ngbak::archive::compress::Compression {
    ngbak::archive::compress::Compression { codec, level: None, threads: 2 }
}

/// Runs the real `ngbak` binary with the servers' AWS settings and no backend settings inherited.
pub fn ngbak(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    ngbak_command(args, envs).output().expect("running the ngbak binary")
}

/// The `ngbak` command of [`ngbak`], to spawn (e.g. to signal it while it runs).
pub fn ngbak_command(args: &[&str], envs: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ngbak"));
    for inherited in [
        "NGBAK_STORE",
        "REDIS_URL",
        "REDIS_URL_SECRET_ARN",
        "NGBAK_KV_DIR",
        "NEO4J_URI",
        "NEO4J_PASSWORD",
        "NEO4J_PASSWORD_SECRET_ARN",
        "QDRANT_URL",
        "QDRANT_API_KEY",
        "QDRANT_API_KEY_SECRET_ARN",
        "NGBAK_SIGNING_KEY",
        "NGBAK_SIGNING_KEY_FILE",
        "NGBAK_SIGNING_KEY_SECRET_ARN",
        "NGBAK_SIGNING_KEY_PASSWORD",
        "NGBAK_TRUSTED_KEYS",
        "NGBAK_ALLOW_UNSIGNED",
    ] {
        cmd.env_remove(inherited);
    }
    cmd.env("AWS_ENDPOINT_URL", s3_endpoint()).env("RUST_LOG", "warn").args(args).envs(envs.iter().copied());
    cmd
}

/// The exit code and the JSON report of a `--json` run that may fail on purpose (e.g.
/// `ngbak consistency`, which exits 3 when a link is broken).
pub fn exit_and_report(out: &std::process::Output) -> (i32, serde_json::Value) {
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

/// The one JSON document a `--json` run prints, after checking that it succeeded.
pub fn json_of(out: &std::process::Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ngbak failed ({}): {stderr}", out.status);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A TCP proxy to `target` that stalls a connection — stops passing the client's bytes on, and
/// so holds its requests unanswered without closing anything — once the client has sent `limit`
/// bytes on it: a server that hangs mid-write. Reads (small commands) pass; bulk writes stall.
/// `stalled` is notified when the first connection stalls.
pub async fn stalling_writes_proxy(target: String, limit: u64) -> (u16, Arc<tokio::sync::Notify>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stalled = Arc::new(tokio::sync::Notify::new());
    let notify = stalled.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else { continue };
            let notify = notify.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let down = tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
                let sent = AtomicU64::new(0);
                let mut buf = vec![0u8; 16 << 10];
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let before = sent.fetch_add(n as u64, Ordering::SeqCst);
                    let pass = (limit.saturating_sub(before) as usize).min(n);
                    if sw.write_all(&buf[..pass]).await.is_err() {
                        break;
                    }
                    if pass < n {
                        notify.notify_one();
                        // Hold the connection open, answering nothing more, until the client leaves.
                        while cr.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
                        break;
                    }
                }
                down.abort();
            });
        }
    });
    (port, stalled)
}

/// `count` string keys of `size` bytes under `prefix`, some with TTLs.
pub async fn seed_documents(con: &mut redis::aio::MultiplexedConnection, prefix: &str, count: usize, size: usize) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for i in chunk {
            let value = format!("{{\"content\": \"{}\", \"n\": {i}}}", "x".repeat(size));
            pipe.cmd("SET").arg(format!("{prefix}:doc-{i}")).arg(value).ignore();
            if i % 5 == 0 {
                pipe.cmd("PEXPIRE").arg(format!("{prefix}:doc-{i}")).arg(7_200_000).ignore();
            }
        }
        let _: () = pipe.query_async(con).await.unwrap();
    }
}

/// What [`flaky_proxy`] does to its chosen connection once `limit` bytes came back on it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// Closes the connection: the server went away mid-answer.
    Cut,
    /// Stops forwarding but keeps the connection open: the server stopped answering.
    Stall,
}

/// Sets this test process's network policy to 1 s for connecting and for each answer, and 3
/// attempts per idempotent call, so that faults show within seconds.
pub fn short_timeouts() {
    ngbak::net::timeouts::configure(ngbak::net::Policy {
        connect: std::time::Duration::from_secs(1),
        request: std::time::Duration::from_secs(1),
        max_attempts: 3,
        ca: None,
    });
}

/// What [`flaky_proxy`] counts, and where it listens.
pub struct FlakyProxy {
    pub port: u16,
    /// Connections accepted so far (to see that a job really connected again).
    pub accepted: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections the fault was applied to (to see that the fault really happened).
    pub faulted: Arc<std::sync::atomic::AtomicUsize>,
}

/// A TCP proxy to `target` that applies `fault` to the connections numbered in `which` (1-based:
/// `2..=2` the second only, `3..=usize::MAX` the third and every later one) once `limit` bytes
/// have come back on each; the other connections pass untouched.
pub async fn flaky_proxy(
    target: String,
    which: std::ops::RangeInclusive<usize>,
    limit: u64,
    fault: Fault,
) -> FlakyProxy {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let faulted = Arc::new(AtomicUsize::new(0));
    let (count, faults) = (accepted.clone(), faulted.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let which = which.clone();
            let this = count.fetch_add(1, Ordering::SeqCst) + 1;
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else { continue };
            let limit = if which.contains(&this) { limit } else { u64::MAX };
            let faults = faults.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move { tokio::io::copy(&mut cr, &mut sw).await });
                let mut buf = vec![0u8; 4096];
                let mut passed = 0u64;
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    passed += n as u64;
                    if passed > limit {
                        faults.fetch_add(1, Ordering::SeqCst);
                        if fault == Fault::Stall {
                            // Hold both halves open, silent, until the client gives up.
                            let _held = (cw, sr);
                            std::future::pending::<()>().await;
                        }
                        break;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    FlakyProxy { port, accepted, faulted }
}

/// Sends SIGTERM to a running child.
pub fn terminate(child: &std::process::Child) {
    let status = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success(), "kill -TERM failed");
}

/// Waits for a child for at most `limit`; panics (after killing it) if it does not exit: a stop
/// that hangs is the failure the callers are about. (Async, so a test's proxy keeps running.)
pub async fn wait_at_most(mut child: std::process::Child, limit: std::time::Duration) -> std::process::Output {
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().ok();
            let out = child.wait_with_output().unwrap();
            panic!("the process did not stop within {limit:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.wait_with_output().unwrap()
}

/// A Redis backup under way and stalled: `count` documents under a fresh prefix, read through a
/// proxy that stops passing the client's bytes once it has sent `limit`. Returns the pattern,
/// the proxy's URL and what is notified when it stalls.
pub async fn stalling_redis(count: usize, limit: u64) -> (String, String, Arc<tokio::sync::Notify>) {
    let pattern = format!("ngstop_{}:*", unique());
    let mut con = redis().await;
    seed_documents(&mut con, pattern.trim_end_matches(":*"), count, 1000).await;
    let (port, stalled) = stalling_writes_proxy(redis_url().trim_start_matches("redis://").to_string(), limit).await;
    (pattern, format!("redis://127.0.0.1:{port}"), stalled)
}

/// Waits (at most 20 s) until `bucket` has a pending multipart upload: a backup is writing.
pub async fn until_upload_pending(bucket: &str) {
    let started = std::time::Instant::now();
    while pending_uploads(bucket).await.is_empty() {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the backup never started its upload");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A new secret in the emulator's Secrets Manager (named `<name>-<unique>`); returns its ARN.
pub async fn create_secret(name: &str, value: &str) -> String {
    let shared =
        ngbak::net::aws::loader().endpoint_url(s3_endpoint()).region(aws_config::Region::new("us-east-1")).load().await;
    let made = aws_sdk_secretsmanager::Client::new(&shared)
        .create_secret()
        .name(format!("{name}-{}", unique()))
        .secret_string(value)
        .send()
        .await
        .expect("create the secret");
    made.arn().expect("a new secret has an ARN").to_string()
}

/// The functions' settings for a store under `s3://<bucket>/ngbak` and the test Redis keys
/// under `pattern`, plus `extra` flags.
pub fn function_config(bucket: &str, pattern: &str, extra: &[&str]) -> ngbak::lambda::FunctionConfig {
    let store = format!("s3://{bucket}/ngbak");
    let url = redis_url();
    let mut args = vec!["test", "--store", &store, "--redis-url", &url, "--redis-pattern", pattern];
    args.extend_from_slice(extra);
    <ngbak::lambda::FunctionConfig as clap::Parser>::try_parse_from(args).unwrap()
}

/// The bearer token the test servers of [`Served`] run with.
pub const TOKEN: &str = "test-token-0123456789";

/// A running `ngbak serve` (the operator API) on a free port with [`TOKEN`]; stopped (SIGTERM)
/// when dropped.
pub struct Served {
    pub child: std::process::Child,
    /// `http://127.0.0.1:<port>`
    pub base: String,
}

impl Served {
    /// `ngbak serve` on `store` for the test Redis keys under `pattern`, plus `extra` flags.
    pub fn start(store: &str, pattern: &str, extra: &[&str]) -> Served {
        let url = redis_url();
        Served::start_with(store, &[&["--redis-url", &url, "--redis-pattern", pattern], extra].concat())
    }

    /// `ngbak --store <store> serve --listen 127.0.0.1:0 <args>`.
    pub fn start_with(store: &str, args: &[&str]) -> Served {
        use std::io::{BufRead, BufReader};
        let args = [&["--store", store, "serve", "--listen", "127.0.0.1:0"], args].concat();
        let mut child = ngbak_command(&args, &[("NGBAK_API_TOKEN", TOKEN), ("RUST_LOG", "info")])
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("starting ngbak serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("ngbak serve ended before it listened").unwrap();
            if let Some(rest) = line.strip_prefix("ngbak serve: listening on ") {
                break rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string();
            }
        };
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Served { child, base }
    }

    /// The address of an API route.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        terminate(&self.child);
        let _ = self.child.wait();
    }
}
