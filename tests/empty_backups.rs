//! Empty backups are loud: a Redis pattern that matches no key in a database that holds keys, and
//! a directory without nano-graphrag's files, are named with what is there instead; with
//! `--fail-if-empty` nothing is stored, with `--allow-empty` nothing is said (the real binary,
//! the real Redis, a directory store).

mod common;

use common::*;
use serde_json::Value;

/// A database of its own, so its key count and first prefixes are this test's.
const DB: &str = "/12";

fn db_url() -> String {
    format!("{}{DB}", redis_url().trim_end_matches('/'))
}

fn stored(store: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(store).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_pattern_matching_nothing_in_a_database_with_keys_is_named_and_fails_with_fail_if_empty() {
    let mut con = ngbak::backends::redis::connect(&db_url()).await.unwrap();
    let _: () = redis::cmd("FLUSHDB").query_async(&mut con).await.unwrap();
    let mut pipe = redis::pipe();
    for i in 0..30 {
        pipe.set(format!("lightrag:text_chunks:chunk-{i}"), "{}").ignore();
    }
    let _: () = pipe.query_async(&mut con).await.unwrap();
    let pattern = "nano_graphrag:*";
    let store = tempfile::tempdir().unwrap();
    let backup = |id: &str, extra: &[&str]| {
        let mut args = vec![
            "--store",
            store.path().to_str().unwrap(),
            "backup",
            "--id",
            id,
            "--redis-url",
            &db_url(),
            "--redis-pattern",
            pattern,
            "--no-link-check",
            "--json",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ngbak(&args, &[])
    };

    let failed = backup("strict", &["--fail-if-empty"]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    for expected in
        ["empty backup of redis", "nano_graphrag:*", "matched no key", "holds 30", "lightrag:", "--allow-empty"]
    {
        assert!(stderr.contains(expected), "names {expected:?}: {stderr}");
    }
    assert!(stored(store.path()).iter().all(|name| !name.starts_with("strict")), "{:?}", stored(store.path()));

    // By default the backup is stored, with the warning on stderr and in its manifest.
    let warned = backup("warned", &[]);
    let summary = json_of(&warned);
    assert!(String::from_utf8_lossy(&warned.stderr).contains("empty backup of redis"));
    let warnings = summary["backends"]["redis"]["warnings"].as_array().cloned().unwrap_or_default();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("holds 30")), "{summary}");

    // Meant to be empty: stored, nothing said.
    let allowed = backup("allowed", &["--allow-empty"]);
    let summary = json_of(&allowed);
    assert!(!String::from_utf8_lossy(&allowed.stderr).contains("empty backup"));
    assert_eq!(summary["backends"]["redis"].get("warnings"), None::<&Value>, "{summary}");
    let _: () = redis::cmd("FLUSHDB").query_async(&mut con).await.unwrap();
}

#[test]
fn a_directory_without_nano_graphrag_files_is_named_with_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a deployment").unwrap();
    let store = tempfile::tempdir().unwrap();
    let out = ngbak(
        &[
            "--store",
            store.path().to_str().unwrap(),
            "backup",
            "--kv-dir",
            dir.path().to_str().unwrap(),
            "--fail-if-empty",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("holds no nano-graphrag file") && stderr.contains("notes.txt"), "{stderr}");
    assert!(stored(store.path()).iter().all(|name| !name.ends_with(".ngbak")), "{:?}", stored(store.path()));
}
