//! Archives without their sidecar, as operators keep them: downloaded with `ngbak presign` (curl),
//! verified on their own (`verify --file`), imported back (from a file, a URL, or an archive put
//! into the bucket by hand) and restored key by key; a tampered archive is refused everywhere and
//! leaves nothing behind.

mod common;

use clap::Parser;
use common::*;
use std::time::Duration;

/// Redis keys backed up with the CLI into `store`; returns the backup's `--json` summary.
async fn backed_up(store: &str, pattern: &str) -> serde_json::Value {
    json_of(&ngbak(
        &["--store", store, "backup", "--redis-pattern", pattern, "--redis-url", &redis_url(), "--json"],
        &[],
    ))
}

/// Flips one bit in the middle of a file.
fn tamper(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

fn failed_with(out: &std::process::Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "ngbak succeeded where it must fail");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    stderr
}

#[tokio::test]
async fn a_downloaded_archive_is_verified_imported_and_restored_exactly() {
    let bucket = new_bucket().await;
    let store = format!("s3://{bucket}/kept");
    let prefix = format!("ngimp_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let before = redis_snapshot(&mut con, &pattern).await;
    let backup = backed_up(&store, &pattern).await;
    let id = backup["backup_id"].as_str().unwrap().to_string();
    let sha256 = backup["sha256"].as_str().unwrap().to_string();

    // Download with a presigned URL, as the runbook says, then delete the backup from the store.
    let url = String::from_utf8(ngbak(&["--store", &store, "presign", &id], &[]).stdout).unwrap().trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{id}.ngbak"));
    let curl = std::process::Command::new("curl").args(["-sSf", "-o", file.to_str().unwrap(), &url]).status().unwrap();
    assert!(curl.success(), "curl could not download the presigned URL");
    assert!(ngbak(&["--store", &store, "delete", &id], &[]).status.success());
    assert!(bucket_keys(&bucket).await.is_empty(), "the backup was not deleted");

    // The file alone proves itself: entries against its manifest, and the whole file when the
    // operator kept its SHA-256.
    let path = file.to_str().unwrap();
    let checked = json_of(&ngbak(&["verify", "--file", path, "--sha256", &sha256, "--json"], &[]));
    assert_eq!(
        (checked["backup_id"].as_str(), checked["whole_file_checked"].as_bool()),
        (Some(id.as_str()), Some(true))
    );
    assert_eq!(checked["archive_sha256"], sha256.as_str());
    // Another hash: the last digit changed (a fixed "0" is the real one every 16th run).
    let last = if sha256.ends_with('0') { '1' } else { '0' };
    let other_sha = format!("{}{last}", &sha256[..63]);
    failed_with(&ngbak(&["verify", "--file", path, "--sha256", &other_sha], &[]), "not the");

    // Imported, it is a backup like any other: listed, verified against its new sidecar, restored.
    let wrong_id = ngbak(&["--store", &store, "import", path, "--id", "snapshot_2020-01-01T00-00-00Z"], &[]);
    failed_with(&wrong_id, "cannot be changed");
    let imported = json_of(&ngbak(&["--store", &store, "import", path, "--json"], &[]));
    assert_eq!(imported["backup_id"], id.as_str(), "{imported}");
    let listed = json_of(&ngbak(&["--store", &store, "list", "--json"], &[]));
    assert_eq!(listed[0]["status"], "complete", "{listed}");
    assert_eq!(listed[0]["sha256"], sha256.as_str(), "the import wrote the same archive");
    json_of(&ngbak(&["--store", &store, "verify", &id, "--json"], &[]));
    failed_with(&ngbak(&["--store", &store, "import", path], &[]), "already in");

    delete_pattern(&mut con, &pattern).await;
    let restored =
        ngbak(&["--store", &store, "restore", &id, "--redis-pattern", &pattern, "--redis-url", &redis_url()], &[]);
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    assert_same_keys(&before, &redis_snapshot(&mut con, &pattern).await, 60_000);

    // Straight from a URL into another store (the download is read twice: check, then upload).
    let other = format!("s3://{bucket}/elsewhere");
    let url = String::from_utf8(ngbak(&["--store", &store, "presign", &id], &[]).stdout).unwrap().trim().to_string();
    let from_url = json_of(&ngbak(&["--store", &other, "import", &url, "--sha256", &sha256, "--json"], &[]));
    assert_eq!(from_url["archive_sha256"], sha256.as_str());
    assert!(!from_url["source"].as_str().unwrap().contains("X-Amz-Signature"), "the signature was printed: {from_url}");
    json_of(&ngbak(&["--store", &other, "verify", &id, "--json"], &[]));
    delete_pattern(&mut con, &pattern).await;
}

#[tokio::test]
async fn a_tampered_or_truncated_archive_is_refused_and_leaves_nothing() {
    let bucket = new_bucket().await;
    let store = format!("s3://{bucket}/src");
    let prefix = format!("ngimp_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let id = backed_up(&store, &pattern).await["backup_id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.ngbak");
    let s3 = s3_store(&bucket, "src").await;
    std::fs::write(&good, ngbak::store::get_bytes(s3.as_ref(), &format!("{id}.ngbak")).await.unwrap()).unwrap();

    let tampered = dir.path().join("tampered.ngbak");
    std::fs::copy(&good, &tampered).unwrap();
    tamper(&tampered);
    let truncated = dir.path().join("truncated.ngbak");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 40]).unwrap();
    let target = format!("s3://{bucket}/dst");
    for bad in [&tampered, &truncated] {
        let path = bad.to_str().unwrap();
        failed_with(&ngbak(&["verify", "--file", path], &[]), "cannot be trusted");
        failed_with(&ngbak(&["--store", &target, "import", path], &[]), "cannot be trusted");
    }
    let left: Vec<String> = bucket_keys(&bucket).await.into_iter().filter(|k| k.starts_with("dst/")).collect();
    assert!(left.is_empty(), "a refused import left {left:?}");
    assert!(pending_uploads(&bucket).await.is_empty(), "a refused import left an upload pending");
    delete_pattern(&mut con, &pattern).await;
}

#[tokio::test]
async fn an_archive_uploaded_by_hand_is_reported_by_the_restore_function_until_imported_in_place() {
    let bucket = new_bucket().await;
    let prefix = format!("ngimp_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let before = redis_snapshot(&mut con, &pattern).await;
    let made = format!("s3://{bucket}/made");
    let id = backed_up(&made, &pattern).await["backup_id"].as_str().unwrap().to_string();
    let s3 = s3_store(&bucket, "made").await;
    let archive = ngbak::store::get_bytes(s3.as_ref(), &format!("{id}.ngbak")).await.unwrap();

    // Put into the bucket by hand, without its sidecar, then asked for by the restore function.
    let hand = s3_store(&bucket, "ngbak").await;
    let key = format!("{id}.ngbak");
    let mut bad = archive.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 1;
    hand.put(&key, bad.into()).await.unwrap();
    let store = format!("s3://{bucket}/ngbak");
    let config = ngbak::lambda::FunctionConfig::try_parse_from([
        "test",
        "--store",
        &store,
        "--redis-url",
        &redis_url(),
        "--redis-pattern",
        &pattern,
    ])
    .unwrap();
    let invoke = serde_json::json!({ "backup_id": id });
    let err = ngbak::lambda::restore::handle(&config, invoke.clone(), Duration::from_secs(300)).await.unwrap_err();
    assert!(format!("{err:#}").contains(&format!("{id}.restore-report.json")), "{err:#}");
    let report: serde_json::Value = serde_json::from_slice(
        &ngbak::store::get_bytes(hand.as_ref(), &format!("{id}.restore-report.json")).await.unwrap(),
    )
    .unwrap();
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("no sidecar") && error.contains(&format!("import {id}")), "{report}");

    // A damaged hand upload is refused by the in-place import (by id or by its s3:// URL), and by
    // verify --file; no sidecar appears. An s3:// URL outside the store is not read.
    failed_with(&ngbak(&["--store", &store, "import", &id], &[]), "cannot be trusted");
    let in_store = format!("{store}/{key}");
    failed_with(&ngbak(&["--store", &store, "verify", "--file", &in_store], &[]), "cannot be trusted");
    failed_with(&ngbak(&["--store", &store, "import", &in_store], &[]), "cannot be trusted");
    let foreign = format!("s3://{bucket}/made/{key}");
    failed_with(&ngbak(&["--store", &store, "import", &foreign], &[]), "is not an archive in the store");
    assert!(hand.head(&format!("{id}.manifest.json")).await.unwrap().is_none());

    // The right file, imported in place (only the sidecar is written), restores.
    hand.put(&key, archive.into()).await.unwrap();
    let imported = json_of(&ngbak(&["--store", &store, "import", &id, "--json"], &[]));
    assert_eq!(imported["backup_id"], id.as_str());
    delete_pattern(&mut con, &pattern).await;
    let done = ngbak::lambda::restore::handle(&config, invoke, Duration::from_secs(300)).await.unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    assert_same_keys(&before, &redis_snapshot(&mut con, &pattern).await, 60_000);
    delete_pattern(&mut con, &pattern).await;
}
