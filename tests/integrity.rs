//! A damaged, truncated or hostile archive is refused before any backend is written, and a good
//! one opens with standard tools.

mod common;

use common::*;
use ngbak::archive::format::{ArchiveHeader, FORMAT_NAME, FORMAT_VERSION, HEADER_PATH, MANIFEST_PATH};
use ngbak::archive::hashing::sha256_hex;
use ngbak::archive::reader::ArchiveError;
use ngbak::archive::{ArchiveDigest, BackendManifest, EntryRecord, Manifest, Sidecar};
use ngbak::backends::redis::{RedisExporter, RedisRestorer};
use ngbak::backends::workdir::WorkdirRestorer;
use ngbak::backends::RestoreMode;
use ngbak::id::BackupId;
use ngbak::pipeline::backup::{run_backup, BackupOptions};
use ngbak::pipeline::restore::{run_restore, verify, RestoreOptions};
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Backs up Redis keys under a fresh prefix into a directory store; returns (prefix, id).
async fn redis_backup(store_dir: &Path) -> (String, BackupId) {
    let prefix = format!("ngt_{}", unique());
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let exporter = RedisExporter::new(&redis_url(), &[format!("{prefix}:*")]);
    let summary = run_backup(local_store(store_dir), vec![Box::new(exporter)], BackupOptions::default()).await.unwrap();
    (prefix, summary.backup_id)
}

/// Restores in replace mode (which would clear the keys first) and returns the error.
async fn restore_error(store_dir: &Path, prefix: &str, id: &BackupId) -> anyhow::Error {
    let restorer = RedisRestorer::new(&redis_url(), &[format!("{prefix}:*")], RestoreMode::Replace);
    run_restore(local_store(store_dir).as_ref(), id, vec![Box::new(restorer)], &RestoreOptions::default())
        .await
        .expect_err("a damaged archive was restored")
}

#[tokio::test]
async fn a_flipped_byte_anywhere_is_refused_before_any_backend_write() {
    let dir = tempfile::tempdir().unwrap();
    let (prefix, id) = redis_backup(dir.path()).await;
    let archive = dir.path().join(id.archive_key());
    let good = std::fs::read(&archive).unwrap();
    let mut con = redis().await;
    // The live data moved on after the backup: a restore would delete and rewrite these.
    delete_pattern(&mut con, &format!("{prefix}:*")).await;
    let sentinel = format!("{prefix}:full_docs:written-after-backup");
    let _: () = redis::cmd("SET").arg(&sentinel).arg("live").query_async(&mut con).await.unwrap();
    let live = redis_snapshot(&mut con, &format!("{prefix}:*")).await;

    for position in [0, 3, 10, good.len() / 3, good.len() / 2, good.len() - 9, good.len() - 1] {
        let mut bad = good.clone();
        bad[position] ^= 0x20;
        std::fs::write(&archive, &bad).unwrap();
        let err = restore_error(dir.path(), &prefix, &id).await;
        let text = format!("{err:#}");
        match err.downcast_ref::<ArchiveError>() {
            Some(ArchiveError::DigestMismatch { expected, actual, .. }) => {
                assert_eq!(expected, &sha256_hex(&good));
                assert_eq!(actual, &sha256_hex(&bad));
                assert!(text.contains(expected) && text.contains(actual), "both hashes named: {text}");
            }
            other => panic!("byte {position}: expected a digest mismatch, got {other:?}: {text}"),
        }
        assert_eq!(redis_snapshot(&mut con, &format!("{prefix}:*")).await, live, "byte {position}: Redis was touched");
    }

    // Truncated (an upload cut short, a partial copy).
    std::fs::write(&archive, &good[..good.len() - 100]).unwrap();
    let err = restore_error(dir.path(), &prefix, &id).await;
    assert!(matches!(err.downcast_ref::<ArchiveError>(), Some(ArchiveError::DigestMismatch { .. })), "{err:#}");
    assert_eq!(redis_snapshot(&mut con, &format!("{prefix}:*")).await, live);

    // And the intact archive restores.
    std::fs::write(&archive, &good).unwrap();
    let restorer = RedisRestorer::new(&redis_url(), &[format!("{prefix}:*")], RestoreMode::Replace);
    run_restore(local_store(dir.path()).as_ref(), &id, vec![Box::new(restorer)], &RestoreOptions::default())
        .await
        .unwrap();
    assert!(!redis_snapshot(&mut con, &format!("{prefix}:*")).await.contains_key(sentinel.as_bytes()));
    delete_pattern(&mut con, &format!("{prefix}:*")).await;
}

#[tokio::test]
async fn a_corrupted_archive_in_s3_is_refused_by_verify() {
    let bucket = new_bucket().await;
    let store = s3_store(&bucket, "p").await;
    let summary = backup_sample(store.clone(), BackupOptions::default()).await.unwrap();
    verify(store.as_ref(), &summary.backup_id, &Default::default()).await.unwrap();
    let client = s3_client().await;
    let key = format!("p/{}", summary.backup_id.archive_key());
    let mut bytes =
        client.get_object().bucket(&bucket).key(&key).send().await.unwrap().body.collect().await.unwrap().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    client.put_object().bucket(&bucket).key(&key).body(bytes.into()).send().await.unwrap();
    let err = verify(store.as_ref(), &summary.backup_id, &Default::default()).await.unwrap_err();
    assert!(format!("{err:#}").contains("does not match its sidecar"), "{err:#}");
}

/// A tar.gz with a valid header entry, then `hostile`, then a manifest — and a sidecar whose
/// digest matches, so only the entry checks stand between it and the disk.
async fn hostile_archive(dir: &Path, id: &BackupId, hostile: tokio_tar::Header, data: &[u8]) {
    let created_at = chrono::Utc::now();
    let header = ArchiveHeader {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        backup_id: id.clone(),
        created_at,
        tool_version: "test".into(),
        backends: vec!["jsonkv".into()],
    };
    let hostile_path = String::from_utf8_lossy(&hostile.path_bytes()).into_owned();
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        backup_id: id.clone(),
        created_at,
        completed_at: created_at,
        tool_version: "test".into(),
        reason: None,
        consistency: None,
        backends: [("jsonkv".to_string(), BackendManifest { kind: "kv".into(), ..Default::default() })].into(),
        entries: vec![EntryRecord {
            path: hostile_path,
            backend: "jsonkv".into(),
            size: data.len() as u64,
            sha256: sha256_hex(data),
            records: 0,
        }],
        config: serde_json::Value::Null,
    };
    let mut tar = tokio_tar::Builder::new_non_terminated(Vec::new());
    for (path, body) in [(HEADER_PATH, serde_json::to_vec(&header).unwrap())] {
        let mut h = tokio_tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, path, &body[..]).await.unwrap();
    }
    tar.append(&hostile, data).await.unwrap();
    let body = serde_json::to_vec(&manifest).unwrap();
    let mut h = tokio_tar::Header::new_ustar();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, MANIFEST_PATH, &body[..]).await.unwrap();
    let tar = tar.into_inner().await.unwrap();
    let mut gz = async_compression::tokio::write::GzipEncoder::new(Vec::new());
    gz.write_all(&tar).await.unwrap();
    gz.shutdown().await.unwrap();
    let archive = gz.into_inner();
    std::fs::write(dir.join(id.archive_key()), &archive).unwrap();
    let sidecar = Sidecar {
        manifest,
        archive: ArchiveDigest { key: id.archive_key(), size: archive.len() as u64, sha256: sha256_hex(&archive) },
        encryption: None,
        opener: Default::default(),
    };
    std::fs::write(dir.join(id.sidecar_key()), serde_json::to_vec(&sidecar).unwrap()).unwrap();
}

/// A header whose raw name field holds `name` (the tar crate refuses to set such names itself).
fn raw_header(name: &str, kind: tokio_tar::EntryType, size: u64) -> tokio_tar::Header {
    let mut h = tokio_tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h
}

#[tokio::test]
async fn hostile_entries_are_refused_and_nothing_is_written() {
    let root = tempfile::tempdir().unwrap();
    let store_dir = root.path().join("store");
    let target = root.path().join("workdir");
    std::fs::create_dir_all(&store_dir).unwrap();
    let cases = [
        ("../kv_store_x.json", tokio_tar::EntryType::Regular),
        ("kv/json/../../kv_store_x.json", tokio_tar::EntryType::Regular),
        ("/etc/kv_store_x.json", tokio_tar::EntryType::Regular),
        ("kv/json/kv_store_x.json", tokio_tar::EntryType::Symlink),
        ("kv/json/kv_store_x.json", tokio_tar::EntryType::Char),
        ("unknown/kv_store_x.json", tokio_tar::EntryType::Regular),
    ];
    for (i, (name, kind)) in cases.into_iter().enumerate() {
        let id: BackupId = format!("hostile_{i}").parse().unwrap();
        let data: &[u8] = if kind == tokio_tar::EntryType::Regular { b"{\"pwned\": true}" } else { b"" };
        let mut header = raw_header(name, kind, data.len() as u64);
        if kind == tokio_tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
            header.set_cksum();
        }
        hostile_archive(&store_dir, &id, header, data).await;
        let restorer = WorkdirRestorer::new(&target, RestoreMode::Replace);
        let err =
            run_restore(local_store(&store_dir).as_ref(), &id, vec![Box::new(restorer)], &RestoreOptions::default())
                .await
                .expect_err(name);
        assert!(
            matches!(err.downcast_ref::<ArchiveError>(), Some(ArchiveError::Invalid { .. })),
            "{name} ({kind:?}): {err:#}"
        );
        assert!(!target.exists(), "{name}: the target directory was created");
        assert!(!root.path().join("kv_store_x.json").exists(), "{name}: written outside the target");
    }
}

#[tokio::test]
async fn archives_open_with_gnu_tar_and_python_and_hash_as_the_sidecar_says() {
    let dir = tempfile::tempdir().unwrap();
    let summary = backup_sample(local_store(dir.path()), BackupOptions::default()).await.unwrap();
    let archive = dir.path().join(summary.backup_id.archive_key());

    let listing = std::process::Command::new("tar").arg("-tzf").arg(&archive).output().unwrap();
    assert!(listing.status.success() && listing.stderr.is_empty(), "{}", String::from_utf8_lossy(&listing.stderr));
    let names: Vec<_> = String::from_utf8(listing.stdout).unwrap().lines().map(str::to_string).collect();
    assert_eq!(names.first().map(String::as_str), Some(HEADER_PATH));
    assert_eq!(names.last().map(String::as_str), Some(MANIFEST_PATH));
    assert!(names.contains(&"kv/json/kv_store_full_docs.json".to_string()));

    let sum = std::process::Command::new("sha256sum").arg(&archive).output().unwrap();
    let sidecar: Sidecar =
        serde_json::from_slice(&std::fs::read(dir.path().join(summary.backup_id.sidecar_key())).unwrap()).unwrap();
    assert_eq!(String::from_utf8(sum.stdout).unwrap().split_whitespace().next(), Some(sidecar.archive.sha256.as_str()));
    assert_eq!(sidecar.archive.size, std::fs::metadata(&archive).unwrap().len());

    let out = dir.path().join("py");
    let script =
        "import sys, tarfile\nwith tarfile.open(sys.argv[1]) as t:\n    t.extractall(sys.argv[2], filter='data')\n";
    let py = std::process::Command::new("python3")
        .args(["-W", "error", "-c", script])
        .arg(&archive)
        .arg(&out)
        .output()
        .unwrap();
    assert!(py.status.success() && py.stderr.is_empty(), "{}", String::from_utf8_lossy(&py.stderr));
    assert_eq!(
        std::fs::read(out.join("kv/json/kv_store_full_docs.json")).unwrap(),
        std::fs::read(sample_workdir().join("kv_store_full_docs.json")).unwrap()
    );
}

#[tokio::test]
async fn an_archive_without_its_sidecar_is_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let summary = backup_sample(local_store(dir.path()), BackupOptions::default()).await.unwrap();
    std::fs::remove_file(dir.path().join(summary.backup_id.sidecar_key())).unwrap();
    let target = tempfile::tempdir().unwrap();
    let restorer = WorkdirRestorer::new(target.path(), RestoreMode::Merge);
    let err = run_restore(
        local_store(dir.path()).as_ref(),
        &summary.backup_id,
        vec![Box::new(restorer)],
        &RestoreOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("no sidecar"), "{err:#}");
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
}

/// A sidecar of 64 GiB (sparse: it takes no disk) must be refused with a clear error by `list`,
/// `verify` and `restore`, never read into memory.
#[tokio::test]
async fn an_oversized_sidecar_is_refused_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let summary = backup_sample(store.clone(), Default::default()).await.unwrap();
    let id = summary.backup_id;
    let sidecar = std::fs::OpenOptions::new().write(true).open(dir.path().join(id.sidecar_key())).unwrap();
    sidecar.set_len(64 << 30).unwrap();
    let listed = ngbak::pipeline::catalog::list_backups(store.as_ref(), &Default::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "unreadable sidecar");
    let err = ngbak::pipeline::restore::verify(store.as_ref(), &id, &Default::default()).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("64 MiB") && text.contains(&id.sidecar_key()), "{text}");
}

/// Test double for a hostile but hash-consistent archive: one Redis record line of 65 MiB (no
/// ngbak writes one; its writer refuses records over the limit).
struct OverlongLineDouble;

#[async_trait::async_trait]
impl ngbak::backends::Exporter for OverlongLineDouble {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn kind(&self) -> &'static str {
        "kv"
    }
    async fn export(&mut self, out: &ngbak::backends::EntrySender) -> anyhow::Result<ngbak::archive::BackendManifest> {
        let mut line = br#"{"key":"ngt_overlong","type":"string","value":""#.to_vec();
        line.resize(line.len() + (65 << 20), b'x');
        line.extend_from_slice(b"\"}\n");
        out.send("kv/redis/000001.ndjson".into(), 1, ngbak::archive::EntryBody::Bytes(line.into())).await?;
        Ok(ngbak::archive::BackendManifest { kind: "kv".into(), ..Default::default() })
    }
}

#[tokio::test]
async fn an_overlong_record_line_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let summary =
        ngbak::pipeline::backup::run_backup(store.clone(), vec![Box::new(OverlongLineDouble)], Default::default())
            .await
            .unwrap();
    let restorer = RedisRestorer::new(&redis_url(), &["ngt_overlong*".to_string()], RestoreMode::Replace);
    let err = run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(restorer)], &RestoreOptions::default())
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("longer than 64 MiB") && text.contains("nothing was restored"), "{text}");
}
