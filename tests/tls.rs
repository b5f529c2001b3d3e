//! TLS end to end with the test CA that tests/servers/start-tls.sh makes: Redis with
//! `--tls-port` and an ACL user, Bolt and S3 through socat TLS-terminating proxies, each driven
//! through the real `ngbak` binary with `--ca-file`; and the clear failures (wrong CA, wrong
//! password) with no secret in what is printed.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Output};

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run under tests/servers/with-servers.sh"))
}

/// The password of the TLS Redis's ACL user, as start-tls.sh creates it.
const REDIS_TLS_PASSWORD: &str = "ngbak-tls-pw-4711";

/// Runs the real `ngbak` binary with no backend or store settings inherited.
fn ngbak(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ngbak"));
    for inherited in ["NGBAK_STORE", "REDIS_URL", "NEO4J_URI", "NEO4J_PASSWORD", "QDRANT_URL", "NGBAK_CA_FILE"] {
        cmd.env_remove(inherited);
    }
    cmd.env("RUST_LOG", "warn").args(args).envs(envs.iter().copied());
    cmd.output().expect("running the ngbak binary")
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "ngbak failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// Everything the run printed.
fn printed(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A connection to the TLS Redis from the test itself, trusting the test CA.
async fn tls_redis() -> redis::aio::MultiplexedConnection {
    let ca = required("NGBAK_TEST_CA_FILE");
    let client = redis::Client::build_with_tls(
        required("NGBAK_TEST_REDISS_URL").as_str(),
        redis::TlsCertificates { client_tls: None, root_cert: Some(std::fs::read(ca).unwrap()) },
    )
    .unwrap();
    client.get_multiplexed_async_connection().await.expect("the test connects to the TLS Redis")
}

#[tokio::test]
async fn redis_over_tls_with_an_acl_user_backs_up_to_s3_over_https_and_restores() {
    ngbak::net::tls::install_crypto_provider();
    let ca = required("NGBAK_TEST_CA_FILE");
    let url = required("NGBAK_TEST_REDISS_URL");
    let https = required("NGBAK_TEST_S3_HTTPS_ENDPOINT");
    let bucket = new_bucket().await;
    let store = format!("s3://{bucket}/tls");
    let prefix = format!("ngtls_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = tls_redis().await;
    seed_redis(&mut con, &prefix).await;
    let before = redis_snapshot(&mut con, &pattern).await;
    let env = [
        ("NGBAK_STORE", store.as_str()),
        ("REDIS_URL", url.as_str()),
        ("AWS_ENDPOINT_URL", https.as_str()),
        ("NGBAK_CA_FILE", ca.as_str()),
    ];

    let backup = ngbak(&["backup", "--redis-pattern", &pattern, "--json"], &env);
    let summary = json_of(&backup);
    assert_eq!(summary["backends"]["redis"]["stats"]["keys"], 13, "{summary}");
    let id = summary["backup_id"].as_str().unwrap().to_string();
    assert!(!printed(&backup).contains(REDIS_TLS_PASSWORD));

    delete_pattern(&mut con, &pattern).await;
    let restored = json_of(&ngbak(&["restore", &id, "--redis-pattern", &pattern, "--json"], &env));
    assert_eq!(restored["backends"]["redis"]["restored"]["keys"], 13, "{restored}");
    assert_same_keys(&before, &redis_snapshot(&mut con, &pattern).await, 5000);
    assert!(!restored.to_string().contains(REDIS_TLS_PASSWORD));

    // Without the CA the HTTPS endpoint is not trusted: the S3 client's custom-CA path is what worked.
    let untrusted = ngbak(&["list", "--json"], &env[..3]);
    assert!(!untrusted.status.success(), "S3 over HTTPS with a private CA needs --ca-file");
    delete_pattern(&mut con, &pattern).await;
}

#[tokio::test]
async fn a_wrong_ca_or_a_wrong_password_fails_clearly_without_printing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let url = required("NGBAK_TEST_REDISS_URL");
    let other_ca = required("NGBAK_TEST_OTHER_CA_FILE");
    let ca = required("NGBAK_TEST_CA_FILE");

    let wrong_ca = ngbak(&["--store", store, "--ca-file", &other_ca, "backup", "--redis-url", &url], &[]);
    let text = printed(&wrong_ca);
    assert!(!wrong_ca.status.success());
    assert!(text.contains("certificate") || text.contains("Certificate"), "a certificate error: {text}");
    assert!(text.contains("127.0.0.1:") && text.contains("TLS on"), "names the server: {text}");
    assert!(!text.contains(REDIS_TLS_PASSWORD), "{text}");

    let bad = url.replace(REDIS_TLS_PASSWORD, "not-the-password-0815");
    let wrong_pw = ngbak(&["--store", store, "--ca-file", &ca, "backup", "--redis-url", &bad], &[]);
    let text = printed(&wrong_pw);
    assert!(!wrong_pw.status.success());
    assert!(text.contains("WRONGPASS") || text.contains("password"), "says the password is wrong: {text}");
    assert!(!text.contains("not-the-password-0815") && !text.contains(REDIS_TLS_PASSWORD), "{text}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a failed backup leaves nothing");
}

#[tokio::test]
async fn bolt_over_tls_backs_up_and_restores_and_rejects_an_unknown_ca() {
    let ca = required("NGBAK_TEST_CA_FILE");
    let uri = required("NGBAK_TEST_BOLTS_URI");
    let password = required("NGBAK_TEST_BOLT_PASSWORD");
    let user = std::env::var("NGBAK_TEST_BOLT_USER").unwrap_or_else(|_| "neo4j".into());
    let label = format!("GraphRAG_tls{}", unique());
    let graph = bolt_graph().await;
    for i in 0..5 {
        let q = format!("CREATE (:`{label}`:PERSON {{id: 'p{i}', description: 'over TLS'}})");
        graph.run(neo4rs::query(&q)).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let env = [
        ("NEO4J_URI", uri.as_str()),
        ("NEO4J_USERNAME", user.as_str()),
        ("NEO4J_PASSWORD", password.as_str()),
        ("NEO4J_GRAPH_NAMESPACE", label.as_str()),
        ("NGBAK_STORE", store),
    ];

    let backup = ngbak(&["--ca-file", &ca, "backup", "--json"], &env);
    let summary = json_of(&backup);
    assert_eq!(summary["backends"]["neo4j"]["stats"]["entities"], 5, "{summary}");
    let id = summary["backup_id"].as_str().unwrap().to_string();
    graph.run(neo4rs::query(&format!("MATCH (n:`{label}`) DETACH DELETE n"))).await.unwrap();
    let restored = json_of(&ngbak(&["--ca-file", &ca, "restore", &id, "--json"], &env));
    assert_eq!(restored["backends"]["neo4j"]["restored"]["entities"], 5, "{restored}");
    let mut rows = graph.execute(neo4rs::query(&format!("MATCH (n:`{label}`) RETURN count(n) AS c"))).await.unwrap();
    let count: i64 = rows.next().await.unwrap().unwrap().get("c").unwrap();
    assert_eq!(count, 5);

    let other_ca = required("NGBAK_TEST_OTHER_CA_FILE");
    let rejected = ngbak(&["--ca-file", &other_ca, "backup"], &env);
    let text = printed(&rejected);
    assert!(!rejected.status.success());
    assert!(text.contains("cannot reach Neo4j at bolt+s://127.0.0.1:"), "{text}");
    assert!(!text.contains(&password), "{text}");
    graph.run(neo4rs::query(&format!("MATCH (n:`{label}`) DETACH DELETE n"))).await.unwrap();
}

#[tokio::test]
async fn check_reports_version_tls_and_auth_for_each_backend_and_fails_on_an_unreachable_one() {
    let ca = required("NGBAK_TEST_CA_FILE");
    let bucket = new_bucket().await;
    let store = format!("s3://{bucket}/check");
    let redis_url = required("NGBAK_TEST_REDISS_URL");
    let bolt = required("NGBAK_TEST_BOLTS_URI");
    let password = required("NGBAK_TEST_BOLT_PASSWORD");
    let user = std::env::var("NGBAK_TEST_BOLT_USER").unwrap_or_else(|_| "neo4j".into());
    let https = required("NGBAK_TEST_S3_HTTPS_ENDPOINT");
    let mut env = vec![
        ("NGBAK_STORE", store.as_str()),
        ("AWS_ENDPOINT_URL", https.as_str()),
        ("NGBAK_CA_FILE", ca.as_str()),
        ("REDIS_URL", redis_url.as_str()),
        ("NEO4J_URI", bolt.as_str()),
        ("NEO4J_USERNAME", user.as_str()),
        ("NEO4J_PASSWORD", password.as_str()),
    ];
    let started = std::time::Instant::now();
    let out = ngbak(&["check", "--json"], &env);
    let report = json_of(&out);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "a check takes seconds");
    assert_eq!(report["ok"], true, "{report}");
    let by_name = |n: &str| report["checks"].as_array().unwrap().iter().find(|c| c["name"] == n).cloned().unwrap();
    for name in ["store", "redis", "neo4j"] {
        let c = by_name(name);
        assert_eq!((c["ok"].as_bool(), c["tls"].as_bool()), (Some(true), Some(true)), "{c}");
    }
    assert_eq!(by_name("redis")["auth"], true);
    assert!(by_name("redis")["version"].as_str().is_some_and(|v| v.starts_with('7')), "{report}");
    assert!(!printed(&out).contains(REDIS_TLS_PASSWORD) && !printed(&out).contains(&password));

    env.push(("QDRANT_URL", "http://127.0.0.1:1"));
    let down = ngbak(&["check", "--json"], &env);
    assert!(!down.status.success(), "an unreachable backend fails the check");
    let report: Value = serde_json::from_slice(&down.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert!(report["checks"].to_string().contains("127.0.0.1:1"), "{report}");
}
