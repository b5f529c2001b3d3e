//! nano-graphrag working directory → archive → directory, through S3 and a local directory.

mod common;

use common::*;
use ngbak::archive::compress::Codec;
use ngbak::backends::workdir::{WorkdirExporter, WorkdirRestorer};
use ngbak::backends::RestoreMode;
use ngbak::pipeline::backup::{run_backup, BackupOptions};
use ngbak::pipeline::restore::{run_restore, RestoreOptions};
use ngbak::store::ObjectStore;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Every file of a directory: name → bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

async fn round_trip(store: Arc<dyn ObjectStore>, codec: Codec) {
    let source = sample_workdir();
    let target = tempfile::tempdir().unwrap();
    let options = BackupOptions { compression: compression(codec), ..Default::default() };
    let summary = run_backup(store.clone(), vec![Box::new(WorkdirExporter::new(&source))], options).await.unwrap();
    let stats = &summary.backends["jsonkv"].stats;
    assert_eq!((stats["documents"], stats["chunks"], stats["community_reports"], stats["cache_entries"]), (2, 4, 1, 1));
    assert_eq!((stats["entities"], stats["relationships"], stats["vectors"], stats["files"]), (5, 3, 5, 6));

    let restorer = WorkdirRestorer::new(target.path(), RestoreMode::Merge);
    let report = run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(restorer)], &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(report.backends["jsonkv"].restored, report.backends["jsonkv"].expected);

    let (original, restored) = (files(&source), files(target.path()));
    assert_eq!(original.keys().collect::<Vec<_>>(), restored.keys().collect::<Vec<_>>());
    for (name, bytes) in &original {
        assert_eq!(bytes, &restored[name], "{name} differs");
        if name.starts_with("kv_store_") {
            // Item by item, as nano-graphrag will read them.
            let a: BTreeMap<String, Value> = serde_json::from_slice(bytes).unwrap();
            let b: BTreeMap<String, Value> = serde_json::from_slice(&restored[name]).unwrap();
            for (id, doc) in &a {
                assert_eq!(Some(doc), b.get(id), "{name}: document {id}");
            }
            assert_eq!(a.len(), b.len());
        }
    }
}

#[tokio::test]
async fn workdir_round_trip_through_s3() {
    let bucket = new_bucket().await;
    for codec in CODECS {
        round_trip(s3_store(&bucket, &format!("nested/prefix-{codec:?}")).await, codec).await;
    }
    let keys = bucket_keys(&bucket).await;
    assert_eq!(keys.len(), 2 * CODECS.len(), "archive and sidecar only, no lock or temporary left: {keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("nested/prefix-")));
}

#[tokio::test]
async fn workdir_round_trip_through_a_directory() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        round_trip(local_store(dir.path()), codec).await;
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "archive and sidecar only: {names:?}");
    }
}

#[tokio::test]
async fn replace_removes_files_the_archive_lacks_and_merge_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let summary = backup_sample(store.clone(), BackupOptions::default()).await.unwrap();
    let target = tempfile::tempdir().unwrap();
    std::fs::write(target.path().join("kv_store_extra.json"), "{}").unwrap();
    std::fs::write(target.path().join("notes.txt"), "operator notes").unwrap();

    let merge = WorkdirRestorer::new(target.path(), RestoreMode::Merge);
    run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(merge)], &RestoreOptions::default()).await.unwrap();
    assert!(target.path().join("kv_store_extra.json").exists());

    let replace = WorkdirRestorer::new(target.path(), RestoreMode::Replace);
    run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(replace)], &RestoreOptions::default()).await.unwrap();
    assert!(!target.path().join("kv_store_extra.json").exists(), "replace keeps a store the archive lacks");
    assert!(target.path().join("notes.txt").exists(), "replace touched a file that is not nano-graphrag's");
    assert_eq!(files(target.path()).len(), 7);
}
