//! Archives written with several compressing threads, in either codec, read by the standard tools
//! (GNU tar, gunzip, zstd, Python's tarfile) and by ngbak, byte for byte. Blocks of the parallel
//! gzip writer are 128 KiB, so the working directory here is made large enough for many blocks.

mod common;

use common::*;
use ngbak::archive::compress::{Codec, Compression};
use ngbak::backends::workdir::{WorkdirExporter, WorkdirRestorer};
use ngbak::backends::RestoreMode;
use ngbak::pipeline::backup::{run_backup, BackupOptions, BackupSummary};
use ngbak::pipeline::restore::{run_restore, verify, RestoreOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The sample working directory plus a ~3 MB text-chunk store (about 25 gzip blocks).
fn large_workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(sample_workdir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let mut state = 42u64;
    let words = ["graph", "entity", "Lovelace", "engine", "community", "report", "the", "of", "ö", "—"];
    let chunks: BTreeMap<String, serde_json::Value> = (0..3000)
        .map(|i| {
            let text: Vec<&str> = (0..150)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    words[(state >> 59) as usize % words.len()]
                })
                .collect();
            (format!("chunk-{i:05}"), serde_json::json!({"content": text.join(" "), "tokens": 150 + i % 7}))
        })
        .collect();
    std::fs::write(dir.path().join("kv_store_text_chunks.json"), serde_json::to_vec(&chunks).unwrap()).unwrap();
    dir
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// Runs a tool; it must succeed and print nothing on stderr (no warnings).
fn quiet(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{cmd:?} failed or warned: {stderr}");
    out.stdout
}

async fn backup(store_dir: &Path, source: &Path, codec: Codec, threads: usize) -> (BackupSummary, PathBuf) {
    let options = BackupOptions { compression: Compression { codec, level: None, threads }, ..Default::default() };
    let summary =
        run_backup(local_store(store_dir), vec![Box::new(WorkdirExporter::new(source))], options).await.unwrap();
    let archive = store_dir.join(&summary.archive_key);
    (summary, archive)
}

#[tokio::test]
async fn threaded_gzip_archives_are_plain_tar_gz_for_gunzip_gnu_tar_and_python() {
    let source = large_workdir();
    let store = tempfile::tempdir().unwrap();
    let (summary, archive) = backup(store.path(), source.path(), Codec::Gzip, 4).await;
    assert!(summary.size > 300_000, "the archive must span many 128 KiB blocks ({} bytes)", summary.size);
    assert_eq!(&std::fs::read(&archive).unwrap()[..2], &[0x1f, 0x8b]);

    quiet(Command::new("gzip").arg("-t").arg(&archive));
    let listing = String::from_utf8(quiet(Command::new("tar").arg("-tzf").arg(&archive))).unwrap();
    assert!(listing.starts_with("ngbak.json\n") && listing.ends_with("manifest.json\n"), "{listing}");

    let by_tar = tempfile::tempdir().unwrap();
    quiet(Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(by_tar.path()));
    assert_eq!(
        files(&by_tar.path().join("kv/json")),
        files(source.path()).into_iter().filter(|(n, _)| n.starts_with("kv_store_")).collect()
    );

    let by_python = tempfile::tempdir().unwrap();
    let script = "import sys, tarfile\nwith tarfile.open(sys.argv[1], 'r:gz') as t:\n    t.extractall(sys.argv[2], filter='data')";
    quiet(Command::new("python3").arg("-W").arg("error").arg("-c").arg(script).arg(&archive).arg(by_python.path()));
    assert_eq!(files(&by_python.path().join("kv/json")), files(&by_tar.path().join("kv/json")));
}

#[tokio::test]
async fn zstd_archives_are_read_by_zstd_and_gnu_tar() {
    let source = large_workdir();
    let store = tempfile::tempdir().unwrap();
    let (summary, archive) = backup(store.path(), source.path(), Codec::Zstd, 2).await;
    assert_eq!(&std::fs::read(&archive).unwrap()[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    assert!(summary.size > 0);
    Command::new("zstd").arg("-q").arg("-t").arg(&archive).status().unwrap().success().then_some(()).expect("zstd -t");
    let by_tar = tempfile::tempdir().unwrap();
    quiet(Command::new("tar").arg("--zstd").arg("-xf").arg(&archive).arg("-C").arg(by_tar.path()));
    assert_eq!(
        files(&by_tar.path().join("kv/json")),
        files(source.path()).into_iter().filter(|(n, _)| n.starts_with("kv_store_")).collect()
    );
}

/// Every codec and thread count: the same archive contents, verified and restored byte for byte
/// by ngbak, which tells the codec from the magic bytes alone.
#[tokio::test]
async fn every_codec_and_thread_count_round_trips_through_ngbak() {
    let source = large_workdir();
    for codec in [Codec::Gzip, Codec::Zstd] {
        for threads in [1, 3] {
            let store_dir = tempfile::tempdir().unwrap();
            let (summary, _) = backup(store_dir.path(), source.path(), codec, threads).await;
            let store = local_store(store_dir.path());
            let (_, report) = verify(store.as_ref(), &summary.backup_id, &Default::default()).await.unwrap();
            assert_eq!(report.archive_bytes, summary.size);

            let target = tempfile::tempdir().unwrap();
            let restorer = WorkdirRestorer::new(target.path(), RestoreMode::Merge);
            run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(restorer)], &RestoreOptions::default())
                .await
                .unwrap();
            assert_eq!(files(target.path()), files(source.path()), "{codec:?}, {threads} threads");
        }
    }
}
