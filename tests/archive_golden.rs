//! Guard of the archive format across refactors: the same input gives the same archive.
//!
//! The sample working directory and a fixed set of Redis keys are backed up through the real
//! binary; everything in the resulting manifest that does not depend on the clock or the machine
//! (every entry's path, size, SHA-256 and record count; each backend's kind, statistics, details
//! and content digest; the configuration echo) must equal `tests/fixtures/archive-golden.json`,
//! recorded before the change. The entries' SHA-256 cover every byte of the data entries, so a
//! match means the archive differs from the golden one only in its timestamps and tool version.
//! Some bytes vary from run to run on any version, and are compared in a normal form instead:
//! Redis parts are read on several connections at once, so the order of their lines varies, and
//! a set's or a hash's members come in the order of the server's hash seed; for them the SHA-256
//! of their lines with members sorted, the lines sorted, stands in. The `config/ngbak.json`
//! entry holds the time and the configuration echo, which is compared on its own.
//! `NGBAK_BLESS_GOLDEN=1` rewrites the file (only on purpose: a format change).

mod common;

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PREFIX: &str = "ngbak_golden";
const GOLDEN: &str = "tests/fixtures/archive-golden.json";

/// Keys of every Redis type, without TTLs (a TTL is read as the time left, which moves).
async fn seed_fixed_keys() {
    let mut con = redis().await;
    delete_pattern(&mut con, &format!("{PREFIX}:*")).await;
    let mut pipe = redis::pipe();
    for i in 0..50 {
        pipe.set(format!("{PREFIX}:text_chunks:chunk-{i:03}"), format!("{{\"content\":\"chunk {i}\",\"n\":{i}}}"));
    }
    pipe.set(format!("{PREFIX}:binary"), vec![0u8, 159, 146, 150, 255]);
    pipe.hset_multiple(format!("{PREFIX}:hash"), &[("a", "1"), ("b", "2"), ("c", "3")]);
    pipe.rpush(format!("{PREFIX}:list"), &["x", "y", "x", "z"]);
    pipe.sadd(format!("{PREFIX}:set"), &["m1", "m2", "m3"]);
    pipe.zadd_multiple(format!("{PREFIX}:zset"), &[(1.5, "one"), (2.25, "two"), (-3.0, "three")]);
    pipe.query_async::<()>(&mut con).await.expect("seed the golden keys");
}

/// What of a sidecar (the manifest and the archive's digest) must not change: all but the times, ids and tool version.
fn stable_part(manifest: &Value, store: &str, redis_url: &str, unpacked: &std::path::Path) -> Value {
    let mut config = manifest["config"].clone();
    let echoed_store = config["store"].as_str().expect("the store is echoed");
    assert!(echoed_store.ends_with(store), "the configuration echo names the store: {echoed_store}");
    config["store"] = json!("<store>");
    let echoed = config["backends"]["redis_url"].as_str().expect("the Redis URL is echoed").to_string();
    assert_eq!(echoed, ngbak::net::redact_url(redis_url));
    config["backends"]["redis_url"] = json!("<redis>");
    config["backends"]["kv_dir"] = json!("<workdir>");
    let mut backends = manifest["backends"].clone();
    backends["redis"]["details"]["url"] = json!("<redis>");
    backends["jsonkv"]["details"]["dir"] = json!("<workdir>");
    let mut entries = manifest["entries"].as_array().expect("entries").clone();
    for entry in entries.iter_mut().filter(|e| e["backend"] == "redis") {
        let bytes = std::fs::read(unpacked.join(entry["path"].as_str().unwrap())).expect("the entry is in the archive");
        let mut lines: Vec<String> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|line| {
                let mut record: Value = serde_json::from_slice(line).expect("a Redis record");
                if record["type"] == "set" || record["type"] == "hash" {
                    record["value"].as_array_mut().unwrap().sort_by_key(|member| member.to_string());
                }
                record.to_string()
            })
            .collect();
        lines.sort();
        entry["sha256"] = json!(format!("normal form {}", hex::encode(Sha256::digest(lines.join("\n")))));
    }
    for entry in entries.iter_mut().filter(|e| e["backend"] == "config") {
        entry["sha256"] = json!("<varies>");
        entry["size"] = json!("<varies>");
    }
    entries.sort_by_key(|e| e["path"].as_str().unwrap().to_string());
    json!({
        "format": manifest["format"],
        "format_version": manifest["format_version"],
        "backends": backends,
        "entries": entries,
        "config": config,
    })
}

#[tokio::test]
async fn the_same_input_gives_the_same_archive() {
    seed_fixed_keys().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    let workdir = sample_workdir();
    let url = redis_url();
    let pattern = format!("{PREFIX}:*");
    let out = ngbak(
        &[
            "--store",
            store,
            "backup",
            "--id",
            "golden",
            "--kv-dir",
            workdir.to_str().unwrap(),
            "--redis-url",
            &url,
            "--redis-pattern",
            &pattern,
            "--threads",
            "2",
            "--json",
        ],
        &[],
    );
    json_of(&out);
    let sidecar: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("store/golden.manifest.json")).unwrap()).unwrap();
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(dir.path().join("store/golden.ngbak"))
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(tar.success(), "plain tar reads the archive");
    let found = stable_part(&sidecar, store, &url, &unpacked);
    let golden_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("NGBAK_BLESS_GOLDEN").is_some() {
        std::fs::write(&golden_path, serde_json::to_vec_pretty(&found).unwrap()).unwrap();
    }
    let golden: Value = serde_json::from_slice(&std::fs::read(&golden_path).expect("the golden file")).unwrap();
    assert_eq!(
        found, golden,
        "the archive differs from {GOLDEN}: a format change must be deliberate (bump the format version, \
         then rewrite the golden file with NGBAK_BLESS_GOLDEN=1)"
    );
    delete_pattern(&mut redis().await, &pattern).await;
}
