//! No secret in any output: the `ngbak` binary is run with known test secrets (a Redis ACL
//! password over TLS, a Neo4j password, a Qdrant API key, URLs with credentials in every shape
//! Redis accepts), and everything it printed and every object it stored is searched for them.

mod common;

use common::*;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run under tests/servers/with-servers.sh"))
}

const REDIS_TLS_PASSWORD: &str = "ngbak-tls-pw-4711";
const NEO4J_PASSWORD: &str = "neo4j-secret-pw-9731";
const QDRANT_KEY: &str = "qdrant-secret-key-5521";
const NO_SCHEME_PASSWORD: &str = "nsp-secret-8812";
const UNIX_PASSWORD: &str = "unix-secret-3345";
const QDRANT_URL_PASSWORD: &str = "qdurl-secret-7781";
const ALL: [&str; 6] =
    [REDIS_TLS_PASSWORD, NEO4J_PASSWORD, QDRANT_KEY, NO_SCHEME_PASSWORD, UNIX_PASSWORD, QDRANT_URL_PASSWORD];

fn ngbak(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ngbak"));
    for inherited in ["NGBAK_STORE", "REDIS_URL", "NEO4J_URI", "NEO4J_PASSWORD", "QDRANT_URL", "QDRANT_API_KEY"] {
        cmd.env_remove(inherited);
    }
    // Logs at debug level too: the clients' own log lines must not carry secrets either.
    cmd.env("RUST_LOG", "debug").args(args).envs(envs.iter().copied());
    cmd.output().expect("running the ngbak binary")
}

fn assert_no_secret(what: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    for secret in ALL {
        assert!(!text.contains(secret), "{what} shows the secret {secret:?}:\n{text}");
    }
}

fn assert_clean(what: &str, out: &Output) {
    assert_no_secret(&format!("{what} (stdout)"), &out.stdout);
    assert_no_secret(&format!("{what} (stderr)"), &out.stderr);
}

/// Every file under `dir`, gzip members decompressed (the archive's manifest and
/// config/ngbak.json are inside it).
fn stored_bytes(dir: &Path, into: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            stored_bytes(&path, into);
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut plain).unwrap();
            plain
        } else {
            raw
        };
        into.push((path.display().to_string(), bytes));
    }
}

#[tokio::test]
async fn no_command_prints_or_stores_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let ca = required("NGBAK_TEST_CA_FILE");
    let rediss = required("NGBAK_TEST_REDISS_URL");
    assert!(rediss.contains(REDIS_TLS_PASSWORD), "start-tls.sh's Redis user has the known test password");
    let kv = sample_workdir();
    let kv = kv.to_str().unwrap();
    let pattern = format!("ngsecret_{}:*", unique());
    let env = [
        ("NGBAK_STORE", store),
        ("NGBAK_CA_FILE", ca.as_str()),
        ("REDIS_URL", rediss.as_str()),
        ("NEO4J_PASSWORD", NEO4J_PASSWORD),
        ("QDRANT_API_KEY", QDRANT_KEY),
    ];

    let help = ngbak(&["backup", "--help"], &env);
    assert!(help.status.success());
    assert_clean("backup --help", &help);
    assert!(String::from_utf8_lossy(&help.stdout).contains("REDIS_URL"), "the variable is named, not its value");

    let backup = ngbak(&["backup", "--redis-pattern", &pattern, "--kv-dir", kv, "--json"], &env);
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    assert_clean("backup", &backup);
    let summary: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();
    let id = summary["backup_id"].as_str().unwrap().to_string();

    let archive = dir.path().join(format!("{id}.ngbak"));
    let archive = archive.to_str().unwrap();
    for args in [
        vec!["list", "--json"],
        vec!["list"],
        vec!["inspect", &id, "--json"],
        vec!["verify", &id, "--json"],
        vec!["verify", "--file", archive, "--json"],
        vec!["cleanup", "--dry-run", "--json"],
        vec!["restore", &id, "--dry-run", "--only", "redis", "--redis-pattern", &pattern, "--json"],
        // A restore that writes: its safety backup and its report object are searched below.
        vec!["restore", &id, "--only", "redis", "--redis-pattern", &pattern, "--json"],
    ] {
        let out = ngbak(&args, &env);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_clean(&format!("{args:?}"), &out);
    }
    // A restore that fails at its preflight writes a report object that quotes the failure.
    let unreachable = [("NGBAK_STORE", store), ("REDIS_URL", "redis://:nsp-secret-8812@127.0.0.1:1")];
    let args = ["restore", &id, "--only", "redis", "--redis-pattern", &pattern, "--json", "--connect-timeout", "2"];
    let out = ngbak(&args, &unreachable);
    assert!(!out.status.success(), "a restore into an unreachable Redis must fail");
    assert_clean("a failed restore", &out);
    assert!(dir.path().join(format!("{id}.restore-report.json")).exists(), "the failed restore wrote no report");

    let mut stored = Vec::new();
    stored_bytes(dir.path(), &mut stored);
    assert!(
        stored.len() >= 2,
        "an archive and its sidecar: {stored:?}",
        stored = stored.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    let mut saw_config = false;
    for (path, bytes) in &stored {
        assert_no_secret(path, bytes);
        saw_config |= String::from_utf8_lossy(bytes).contains("redis_url");
    }
    assert!(saw_config, "the stored configuration (config/ngbak.json, manifest) was searched too");

    // Failures quote the settings they could not use: never with the secret in them.
    let failing: [(&str, &[(&str, &str)]); 5] = [
        ("redis URL without a scheme", &[("REDIS_URL", ":nsp-secret-8812@127.0.0.1:1")]),
        ("redis+unix with ?pass=", &[("REDIS_URL", "redis+unix:///nonexistent/ngbak.sock?db=0&pass=unix-secret-3345")]),
        ("neo4j", &[("NEO4J_URI", "bolt://neo4j:neo4j-secret-pw-9731@127.0.0.1:1")]),
        ("qdrant URL with credentials", &[("QDRANT_URL", "http://qd:qdurl-secret-7781@127.0.0.1:1")]),
        ("qdrant points mode", &[("QDRANT_URL", "http://127.0.0.1:1"), ("NGBAK_QDRANT_MODE", "points")]),
    ];
    for (what, settings) in failing {
        let mut all: Vec<(&str, &str)> = vec![("NGBAK_STORE", store), ("NEO4J_PASSWORD", NEO4J_PASSWORD)];
        all.push(("QDRANT_API_KEY", QDRANT_KEY));
        all.extend_from_slice(settings);
        let out = ngbak(&["backup", "--connect-timeout", "2"], &all);
        assert!(!out.status.success(), "{what}: must fail");
        assert_clean(what, &out);
    }
}
