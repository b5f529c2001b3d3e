//! A backup that fails leaves nothing behind: no object under the final key, no pending
//! multipart upload, no temporary file.

mod common;

use async_trait::async_trait;
use common::*;
use ngbak::archive::{BackendManifest, EntryBody};
use ngbak::backends::redis::RedisExporter;
use ngbak::backends::workdir::WorkdirExporter;
use ngbak::backends::{EntrySender, Exporter};
use ngbak::id::BackupId;
use ngbak::pipeline::backup::{run_backup, AlreadyExists, BackupOptions};

/// Test double for a backend that breaks off in the middle of its export — a database that
/// goes away mid-stream cannot be made to fail at a chosen byte on this machine. It sends
/// `parts` incompressible parts of `part_size` bytes, then fails.
struct BreaksMidExportDouble {
    parts: usize,
    part_size: usize,
}

#[async_trait]
impl Exporter for BreaksMidExportDouble {
    fn name(&self) -> &'static str {
        "flaky"
    }

    fn kind(&self) -> &'static str {
        "kv"
    }

    async fn export(&mut self, out: &EntrySender) -> anyhow::Result<BackendManifest> {
        let mut state = 0x9e3779b97f4a7c15u64;
        for i in 0..self.parts {
            let bytes: Vec<u8> = (0..self.part_size)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            out.send(format!("kv/flaky/{i:06}.bin"), 0, EntryBody::Bytes(bytes.into())).await?;
        }
        anyhow::bail!("connection reset by peer (simulated)")
    }
}

#[tokio::test]
async fn an_export_failing_after_parts_were_uploaded_leaves_no_object_and_no_pending_upload() {
    let bucket = new_bucket().await;
    let store = s3_store(&bucket, "backups").await;
    // 20 MiB of incompressible data: at least two 8 MiB parts are uploaded before the failure.
    let double = BreaksMidExportDouble { parts: 5, part_size: 4 << 20 };
    let err = run_backup(store, vec![Box::new(double)], BackupOptions::default()).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("flaky export failed") && text.contains("no archive was stored"), "{text}");
    assert!(bucket_keys(&bucket).await.is_empty(), "objects left: {:?}", bucket_keys(&bucket).await);
    assert!(pending_uploads(&bucket).await.is_empty(), "a multipart upload was left pending");
}

#[tokio::test]
async fn a_backend_that_is_down_fails_the_backup_cleanly() {
    let bucket = new_bucket().await;
    let store = s3_store(&bucket, "backups").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = RedisExporter::new(&format!("redis://127.0.0.1:{port}"), &["nano_graphrag:*".into()]);
    let working = WorkdirExporter::new(&sample_workdir());
    let err = run_backup(store, vec![Box::new(working), Box::new(down)], BackupOptions::default()).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("cannot connect to Redis at redis://127.0.0.1"), "{text}");
    assert!(bucket_keys(&bucket).await.is_empty());
    assert!(pending_uploads(&bucket).await.is_empty());
}

#[tokio::test]
async fn a_failed_backup_into_a_directory_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let double = BreaksMidExportDouble { parts: 2, part_size: 1 << 20 };
    run_backup(local_store(dir.path()), vec![Box::new(double)], BackupOptions::default()).await.unwrap_err();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn an_existing_backup_id_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let id: BackupId = "nightly_1".parse().unwrap();
    let options = BackupOptions { id: Some(id.clone()), ..Default::default() };
    backup_sample(store.clone(), options.clone()).await.unwrap();
    let before = std::fs::read(dir.path().join(id.archive_key())).unwrap();
    let err = backup_sample(store, options).await.unwrap_err();
    assert!(err.downcast_ref::<AlreadyExists>().is_some(), "{err:#}");
    assert_eq!(std::fs::read(dir.path().join(id.archive_key())).unwrap(), before);
}

#[tokio::test]
async fn a_missing_bucket_is_reported_with_what_to_do() {
    let store = s3_store(&format!("ngbak-missing-{}", unique()), "x").await;
    let err = backup_sample(store, BackupOptions::default()).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("NoSuchBucket") || text.contains("bucket does not exist"), "{text}");
}

/// Two uploads to one key, completed one after the other: the second must fail and leave the
/// first's object as it was, with no upload left pending — in S3 and in a directory.
#[tokio::test]
async fn an_upload_never_completes_over_an_existing_object() {
    let bucket = new_bucket().await;
    let dir = tempfile::tempdir().unwrap();
    for store in [s3_store(&bucket, "race").await, local_store(dir.path())] {
        let mut first = store.start_upload("same.ngbak").await.unwrap();
        let mut second = store.start_upload("same.ngbak").await.unwrap();
        first.write(bytes::Bytes::from_static(b"first")).await.unwrap();
        second.write(bytes::Bytes::from_static(b"second, longer")).await.unwrap();
        first.complete().await.unwrap();
        let err = second.complete().await.unwrap_err();
        assert!(format!("{err:#}").contains("appeared while this upload ran"), "{}: {err:#}", store.url());
        let kept = ngbak::store::get_bytes(store.as_ref(), "same.ngbak").await.unwrap();
        assert_eq!(kept, b"first", "{}", store.url());
        assert!(store.pending_uploads().await.unwrap().is_empty(), "{}: an upload was left pending", store.url());
    }
}

/// Two backups with the same id started together: exactly one wins, the other fails clearly, and
/// the winner verifies.
#[tokio::test]
async fn two_backups_with_one_id_started_together_leave_exactly_one_verified_backup() {
    let bucket = new_bucket().await;
    let store = s3_store(&bucket, "same-id").await;
    let id: BackupId = "snapshot_2026-11-23T03-00-00Z".parse().unwrap();
    let options = BackupOptions { id: Some(id.clone()), ..Default::default() };
    let (a, b) = tokio::join!(backup_sample(store.clone(), options.clone()), backup_sample(store.clone(), options));
    let (won, lost) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (a, b) => panic!("exactly one must win: {:?} / {:?}", a.map(|s| s.sha256), b.map(|s| s.sha256)),
    };
    let text = format!("{lost:#}");
    assert!(
        text.contains("already exists") || text.contains("is running") || text.contains("appeared while"),
        "{text}"
    );
    let (sidecar, report) = ngbak::pipeline::restore::verify(store.as_ref(), &id, &Default::default()).await.unwrap();
    assert_eq!(sidecar.expect("a plain backup returns its sidecar").archive.sha256, won.sha256);
    assert!(report.ok);
    assert!(pending_uploads(&bucket).await.is_empty());
}

/// A proxy to S3 that forwards every request but loses the response to the first
/// CompleteMultipartUpload (`POST …?uploadId=…`): the upload was completed, the client never heard.
async fn loses_first_complete_response(target: String) -> u16 {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let lost_one = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&target).await else { continue };
            let lost_one = lost_one.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let losing = Arc::new(AtomicBool::new(false));
                let mark = losing.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let text = String::from_utf8_lossy(&buf[..n.min(2048)]);
                        let complete =
                            text.lines().next().is_some_and(|l| l.starts_with("POST ") && l.contains("uploadId="));
                        if complete && !lost_one.swap(true, Ordering::SeqCst) {
                            mark.store(true, Ordering::SeqCst);
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 || losing.load(Ordering::SeqCst) || cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    port
}

#[tokio::test]
async fn a_completed_upload_whose_answer_was_lost_is_recognised_and_finished() {
    let bucket = new_bucket().await;
    let port = loses_first_complete_response(s3_endpoint().trim_start_matches("http://").to_string()).await;
    let options = ngbak::store::S3Options { endpoint: Some(format!("http://127.0.0.1:{port}")), ..Default::default() };
    let store = ngbak::store::open(&format!("s3://{bucket}/lost"), &options).await.unwrap();
    let options = BackupOptions { id: Some("lost_answer".parse().unwrap()), ..Default::default() };
    let summary = backup_sample(store.clone(), options).await.expect("the backup whose Complete answer was lost");
    let (_, report) =
        ngbak::pipeline::restore::verify(store.as_ref(), &summary.backup_id, &Default::default()).await.unwrap();
    assert_eq!(report.archive_sha256, summary.sha256);
    assert!(pending_uploads(&bucket).await.is_empty());
}
