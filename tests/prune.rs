//! Retention against real backups in a directory store.

mod common;

use common::*;
use ngbak::id::BackupId;
use ngbak::pipeline::backup::BackupOptions;
use ngbak::pipeline::catalog::list_backups;
use ngbak::pipeline::retention::{prune, KeepPolicy};
use std::path::Path;

async fn backups(dir: &Path, n: usize) -> Vec<BackupId> {
    let store = local_store(dir);
    let mut ids = Vec::new();
    for i in 0..n {
        let id: BackupId = format!("nightly_{i}").parse().unwrap();
        let options = BackupOptions { id: Some(id.clone()), ..Default::default() };
        backup_sample(store.clone(), options).await.unwrap();
        ids.push(id);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await; // distinct creation times
    }
    ids
}

async fn remaining(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = list_backups(local_store(dir).as_ref(), &Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.backup_id.to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn keep_last_deletes_the_oldest_archive_and_sidecar_together() {
    let dir = tempfile::tempdir().unwrap();
    backups(dir.path(), 4).await;
    let policy = KeepPolicy { keep_last: Some(2), ..Default::default() };

    let dry = prune(local_store(dir.path()).as_ref(), &policy, true, &Default::default()).await.unwrap();
    assert_eq!(dry.decisions.iter().filter(|d| !d.keep).count(), 2);
    assert_eq!(remaining(dir.path()).await.len(), 4, "a dry run deleted something");

    let report = prune(local_store(dir.path()).as_ref(), &policy, false, &Default::default()).await.unwrap();
    assert_eq!(report.deleted, 2);
    assert_eq!(remaining(dir.path()).await, vec!["nightly_2", "nightly_3"]);
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files, 4, "two archives and two sidecars remain, nothing half-deleted");
}

#[tokio::test]
async fn the_newest_backup_that_verifies_is_never_pruned_and_incomplete_ones_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let ids = backups(dir.path(), 4).await;
    // The newest archive is damaged; the one before it is the newest that verifies.
    let newest = dir.path().join(ids[3].archive_key());
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&newest, bytes).unwrap();
    // An archive whose sidecar never came (an interrupted backup).
    std::fs::remove_file(dir.path().join(ids[0].sidecar_key())).unwrap();

    let policy = KeepPolicy { keep_last: Some(1), ..Default::default() };
    let report = prune(local_store(dir.path()).as_ref(), &policy, false, &Default::default()).await.unwrap();
    let why = |id: &BackupId| report.decisions.iter().find(|d| &d.backup_id == id).unwrap().reasons.join(", ");
    assert!(why(&ids[2]).contains("newest verified backup"), "{}", why(&ids[2]));
    assert!(why(&ids[0]).contains("not touched"), "{}", why(&ids[0]));
    assert_eq!(remaining(dir.path()).await, vec!["nightly_0", "nightly_2", "nightly_3"]);

    let err =
        prune(local_store(dir.path()).as_ref(), &KeepPolicy::default(), false, &Default::default()).await.unwrap_err();
    assert!(format!("{err:#}").contains("at least one of --keep-last"), "{err:#}");
}

#[tokio::test]
async fn list_reads_more_sidecars_than_it_reads_at_once_and_reports_each_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let original = backups(dir.path(), 1).await.remove(0);
    // 40 copies (the sidecars are read 16 at a time): names differ, manifests are the same.
    let copies: Vec<BackupId> = (0..40).map(|i| format!("copy_{i:02}").parse().unwrap()).collect();
    for id in &copies {
        for (from, to) in [(original.archive_key(), id.archive_key()), (original.sidecar_key(), id.sidecar_key())] {
            std::fs::copy(dir.path().join(from), dir.path().join(to)).unwrap();
        }
    }
    std::fs::write(dir.path().join(copies[7].sidecar_key()), b"{ not a sidecar").unwrap();
    std::fs::remove_file(dir.path().join(copies[20].archive_key())).unwrap();

    let listed = list_backups(local_store(dir.path()).as_ref(), &Default::default()).await.unwrap();
    let mut expected: Vec<String> = copies.iter().chain([&original]).map(|id| id.to_string()).collect();
    expected.sort();
    let mut names: Vec<String> = listed.iter().map(|b| b.backup_id.to_string()).collect();
    names.sort();
    assert_eq!(names, expected, "every backup listed once");
    let status = |id: &BackupId| listed.iter().find(|b| &b.backup_id == id).unwrap().status.clone();
    assert_eq!(status(&copies[7]), "unreadable sidecar");
    assert_eq!(status(&copies[20]), "archive missing");
    assert_eq!(listed.iter().filter(|b| b.status == "complete").count(), 39);
    // Newest first; the same creation time falls back to the id, descending.
    let readable: Vec<&str> = listed.iter().filter(|b| b.created_at.is_some()).map(|b| b.backup_id.as_str()).collect();
    let mut sorted = readable.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(readable, sorted);
}
