//! Redis → archive → Redis, through S3 and through a local directory, compared key by key.

mod common;

use common::*;
use ngbak::archive::compress::Codec;
use ngbak::backends::redis::{RedisExporter, RedisRestorer};
use ngbak::backends::RestoreMode;
use ngbak::id::BackupId;
use ngbak::pipeline::backup::{run_backup, BackupOptions, BackupSummary};
use ngbak::pipeline::restore::{run_restore, RestoreOptions};
use ngbak::store::ObjectStore;
use redis::aio::MultiplexedConnection;
use std::collections::BTreeMap;
use std::sync::Arc;

async fn round_trip(store: Arc<dyn ObjectStore>, codec: Codec) {
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let before = redis_snapshot(&mut con, &pattern).await;
    assert_eq!(before.len(), 13);

    let options = BackupOptions {
        id: Some(BackupId::for_time(chrono::Utc::now())),
        part_bytes: 200,
        compression: compression(codec),
        ..Default::default()
    };
    let exporter = RedisExporter::new(&redis_url(), std::slice::from_ref(&pattern));
    let summary = run_backup(store.clone(), vec![Box::new(exporter)], options).await.unwrap();
    let stats = &summary.backends["redis"].stats;
    assert_eq!(stats["keys"], 13);
    assert_eq!((stats["documents"], stats["chunks"], stats["cache_entries"], stats["community_reports"]), (2, 1, 1, 1));
    assert!(summary.entries > 3, "a 200-byte part size must cut the keys into several parts");

    delete_pattern(&mut con, &pattern).await;
    assert!(redis_snapshot(&mut con, &pattern).await.is_empty());

    let restorer = RedisRestorer::new(&redis_url(), std::slice::from_ref(&pattern), RestoreMode::Merge);
    let report = run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(restorer)], &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(report.backends["redis"].restored["keys"], 13);
    assert_eq!(report.backends["redis"].restored, report.backends["redis"].expected);

    let after = redis_snapshot(&mut con, &pattern).await;
    assert_same_keys(&before, &after, 1000);
    delete_pattern(&mut con, &pattern).await;
}

#[tokio::test]
async fn redis_round_trip_through_s3_keeps_every_type_ttl_and_byte() {
    let bucket = new_bucket().await;
    for codec in CODECS {
        round_trip(s3_store(&bucket, &format!("backups-{codec:?}")).await, codec).await;
    }
    assert!(pending_uploads(&bucket).await.is_empty());
}

#[tokio::test]
async fn redis_round_trip_through_a_directory() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        round_trip(local_store(dir.path()), codec).await;
    }
}

/// Keys of every type under a fresh prefix, as they were when they were backed up.
struct Seeded {
    prefix: String,
    pattern: String,
    con: MultiplexedConnection,
    before: BTreeMap<Vec<u8>, KeyState>,
    summary: BackupSummary,
}

/// Seeds every key type under a fresh prefix, snapshots it, and backs it up into `store`.
async fn seeded_backup(store: &Arc<dyn ObjectStore>) -> Seeded {
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    seed_redis(&mut con, &prefix).await;
    let before = redis_snapshot(&mut con, &pattern).await;
    let exporter = RedisExporter::new(&redis_url(), std::slice::from_ref(&pattern));
    let summary = run_backup(store.clone(), vec![Box::new(exporter)], BackupOptions::default()).await.unwrap();
    Seeded { prefix, pattern, con, before, summary }
}

#[tokio::test]
async fn replace_mode_deletes_keys_the_archive_lacks_and_merge_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let Seeded { prefix, pattern, mut con, before, summary } = seeded_backup(&store).await;

    // Changes after the backup: a new key, and a changed value.
    let _: () = redis::pipe()
        .cmd("SET")
        .arg(format!("{prefix}:full_docs:new"))
        .arg("{}")
        .ignore()
        .cmd("SET")
        .arg(format!("{prefix}:full_docs:doc-2"))
        .arg("changed")
        .ignore()
        .query_async(&mut con)
        .await
        .unwrap();

    let merge = RedisRestorer::new(&redis_url(), std::slice::from_ref(&pattern), RestoreMode::Merge);
    run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(merge)], &RestoreOptions::default()).await.unwrap();
    let merged = redis_snapshot(&mut con, &pattern).await;
    assert_eq!(merged.len(), before.len() + 1, "merge keeps keys the archive does not hold");
    assert_eq!(
        merged[format!("{prefix}:full_docs:doc-2").as_bytes()].value,
        before[format!("{prefix}:full_docs:doc-2").as_bytes()].value
    );

    let replace = RedisRestorer::new(&redis_url(), std::slice::from_ref(&pattern), RestoreMode::Replace);
    run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(replace)], &RestoreOptions::default()).await.unwrap();
    assert_same_keys(&before, &redis_snapshot(&mut con, &pattern).await, 2000);
    delete_pattern(&mut con, &pattern).await;
}

#[tokio::test]
async fn dry_run_verifies_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let Seeded { pattern, mut con, summary, .. } = seeded_backup(&store).await;
    delete_pattern(&mut con, &pattern).await;

    let restorer = RedisRestorer::new(&redis_url(), std::slice::from_ref(&pattern), RestoreMode::Replace);
    let options = RestoreOptions { dry_run: true, ..Default::default() };
    let report = run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(restorer)], &options).await.unwrap();
    assert!(report.dry_run && report.verified);
    assert_eq!(report.backends["redis"].expected["keys"], 13);
    assert!(report.backends["redis"].restored.is_empty());
    assert!(redis_snapshot(&mut con, &pattern).await.is_empty(), "a dry run wrote to Redis");
}

#[tokio::test]
async fn a_wrongtype_reply_is_recognised_through_the_error_context() {
    // The export reads a key's type, then its value; a key that changed type in between answers
    // WRONGTYPE, which must trigger a second read even when wrapped in context (it once did not).
    let mut con = redis().await;
    let key = format!("ngbak-test:{}:wrongtype", unique());
    let _: () = redis::cmd("HSET").arg(&key).arg("f").arg("v").query_async(&mut con).await.unwrap();
    let err: anyhow::Error = redis::pipe()
        .cmd("GET")
        .arg(&key)
        .query_async::<Vec<redis::Value>>(&mut con)
        .await
        .map_err(anyhow::Error::from)
        .map(|_| ())
        .unwrap_err()
        .context("reading values from Redis");
    assert!(ngbak::backends::redis::is_wrong_type(&err), "{err:#}");
    let other = anyhow::anyhow!("WRONGTYPE in plain text is not a Redis reply");
    assert!(!ngbak::backends::redis::is_wrong_type(&other));
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut con).await.unwrap();
}

/// Backs `double` up into a directory of its own, in parts of `part_bytes`, and restores it in
/// replace mode over `prefix:*`, which must fail: the error in full, and the backup's manifest.
async fn failed_restore_of(
    double: impl ngbak::backends::Exporter + 'static,
    prefix: &str,
    part_bytes: usize,
) -> (String, ngbak::archive::Manifest) {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let options = BackupOptions { part_bytes, ..BackupOptions::default() };
    let summary = run_backup(store.clone(), vec![Box::new(double)], options).await.unwrap();
    let manifest = ngbak::pipeline::restore::load_sidecar(store.as_ref(), &summary.backup_id).await.unwrap().manifest;
    let restorer = RedisRestorer::new(&redis_url(), &[format!("{prefix}:*")], RestoreMode::Replace);
    let err = run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(restorer)], &RestoreOptions::default())
        .await
        .unwrap_err();
    (format!("{err:#}"), manifest)
}

/// Test double for a Redis backup made on a newer server: it archives one key as a `DUMP`
/// payload whose footer says RDB version 99 (no Redis that runs here writes one).
struct NewerRedisDouble {
    key: String,
}

#[async_trait::async_trait]
impl ngbak::backends::Exporter for NewerRedisDouble {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn kind(&self) -> &'static str {
        "kv"
    }
    async fn export(&mut self, out: &ngbak::backends::EntrySender) -> anyhow::Result<ngbak::archive::BackendManifest> {
        use ngbak::backends::redis::{Blob, KeyRecord, KeyValue};
        let mut payload = vec![0u8, 1, b'x'];
        payload.extend_from_slice(&99u16.to_le_bytes());
        payload.extend_from_slice(&[0u8; 8]);
        let mut parts = out.ndjson("kv/redis");
        parts
            .push(&KeyRecord {
                key: Blob::Text(self.key.clone()),
                pttl: None,
                more: false,
                value: KeyValue::String(Blob::Text("first".into())),
            })
            .await?;
        parts
            .push(&KeyRecord {
                key: Blob::Text(format!("{}:stream", self.key)),
                pttl: None,
                more: false,
                value: KeyValue::Dump(Blob::from_bytes(payload)),
            })
            .await?;
        parts.finish().await?;
        Ok(ngbak::archive::BackendManifest { kind: "kv".into(), ..Default::default() })
    }
}

#[tokio::test]
async fn a_dump_from_a_newer_redis_is_refused_before_any_key_is_written() {
    let prefix = format!("ngt_{}", unique());
    let exporter = NewerRedisDouble { key: format!("{prefix}:a") };
    let (text, _) = failed_restore_of(exporter, &prefix, BackupOptions::default().part_bytes).await;
    assert!(text.contains("RDB version 99") && text.contains("nothing was restored"), "{text}");
    let mut con = redis().await;
    assert!(redis_snapshot(&mut con, &format!("{prefix}:*")).await.is_empty(), "a key was written");
}

/// Test double for a damaged Redis backup whose hashes are all right: a sorted-set member
/// with a score that is no number sits in the first of several parts (an archive written by a
/// faulty ngbak; no Redis holds such a score).
struct BadScoreDouble {
    prefix: String,
}

#[async_trait::async_trait]
impl ngbak::backends::Exporter for BadScoreDouble {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn kind(&self) -> &'static str {
        "kv"
    }
    async fn export(&mut self, out: &ngbak::backends::EntrySender) -> anyhow::Result<ngbak::archive::BackendManifest> {
        use ngbak::backends::redis::{Blob, KeyRecord, KeyValue};
        let mut parts = out.ndjson("kv/redis");
        let bad = vec![(Blob::Text("member".into()), "banana".to_string())];
        parts
            .push(&KeyRecord {
                key: Blob::Text(format!("{}:z", self.prefix)),
                pttl: None,
                more: false,
                value: KeyValue::Zset(bad),
            })
            .await?;
        for i in 0..400 {
            let value = KeyValue::String(Blob::Text(format!("{i:>200}")));
            parts
                .push(&KeyRecord { key: Blob::Text(format!("{}:{i}", self.prefix)), pttl: None, more: false, value })
                .await?;
        }
        parts.finish().await?;
        Ok(ngbak::archive::BackendManifest { kind: "kv".into(), ..Default::default() })
    }
}

/// The records are checked on a thread of their own while the reader goes on: a bad record in
/// the first part is still reported by its part, after the whole archive was read, and nothing
/// is written.
#[tokio::test]
async fn a_bad_record_in_an_early_part_is_named_and_nothing_is_written() {
    let prefix = format!("ngt_{}", unique());
    let (text, manifest) = failed_restore_of(BadScoreDouble { prefix: prefix.clone() }, &prefix, 16 << 10).await;
    assert!(manifest.entries.len() >= 4, "the double should span several parts: {:?}", manifest.entries.len());
    let first = &manifest.entries.iter().find(|e| e.backend == "redis").unwrap().path;
    assert!(text.contains(&format!("{first} holds a record that cannot be restored")), "{text}");
    assert!(text.contains("banana") && text.contains("nothing was restored"), "{text}");
    let mut con = redis().await;
    assert!(redis_snapshot(&mut con, &format!("{prefix}:*")).await.is_empty(), "a key was written");
}

/// Test double for a backup whose restore cannot read back as archived: a sorted-set score
/// written as `1.50` (Redis keeps the number, and answers `1.5`), and a list archived in two
/// pages that fall into two parts.
struct ScoreSpellingDouble {
    prefix: String,
}

#[async_trait::async_trait]
impl ngbak::backends::Exporter for ScoreSpellingDouble {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn kind(&self) -> &'static str {
        "kv"
    }
    async fn export(&mut self, out: &ngbak::backends::EntrySender) -> anyhow::Result<ngbak::archive::BackendManifest> {
        use ngbak::backends::redis::{Blob, KeyRecord, KeyValue};
        let p = &self.prefix;
        let items = |from: usize| (from..from + 100).map(|i| Blob::Text(format!("{i:>200}"))).collect();
        let mut parts = out.ndjson("kv/redis");
        let list = Blob::Text(format!("{p}:list"));
        parts.push(&KeyRecord { key: list.clone(), pttl: None, more: false, value: KeyValue::List(items(0)) }).await?;
        parts.push(&KeyRecord { key: list, pttl: None, more: true, value: KeyValue::List(items(100)) }).await?;
        let text = |s: &str| KeyValue::String(Blob::Text(s.into()));
        parts
            .push(&KeyRecord { key: Blob::Text(format!("{p}:kept")), pttl: None, more: false, value: text("k") })
            .await?;
        let zset = KeyValue::Zset(vec![(Blob::Text("m".into()), "1.50".into())]);
        parts.push(&KeyRecord { key: Blob::Text(format!("{p}:z")), pttl: None, more: false, value: zset }).await?;
        parts.finish().await?;
        Ok(ngbak::archive::BackendManifest { kind: "kv".into(), ..Default::default() })
    }
}

/// A restore whose read-back differs names the records that differ, found by reading the
/// archive again: the score as archived and as found, and no list element (its pages span two
/// parts, and their positions follow on).
#[tokio::test]
async fn a_read_back_that_differs_names_what_differs() {
    let prefix = format!("ngt_{}", unique());
    let (text, manifest) = failed_restore_of(ScoreSpellingDouble { prefix: prefix.clone() }, &prefix, 16 << 10).await;
    assert!(manifest.entries.len() >= 2, "the list's pages should fall into two parts");
    let missing =
        text.split("archived but not found as archived (first 1):").nth(1).unwrap_or_else(|| panic!("{text}"));
    let (missing, extra) =
        missing.split_once("found but not in the archive (first 1):").unwrap_or_else(|| panic!("{text}"));
    assert!(missing.contains(&format!("{prefix}:z")) && missing.contains(r#""score":"1.50""#), "{text}");
    assert!(extra.contains(&format!("{prefix}:z")) && extra.contains(r#""score":"1.5""#), "{text}");
    assert!(!text.contains("index"), "a list element differs: {text}");
    let mut con = redis().await;
    assert_eq!(redis_snapshot(&mut con, &format!("{prefix}:*")).await.len(), 3, "the data was written");
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:list"))
        .arg(format!("{prefix}:kept"))
        .arg(format!("{prefix}:z"))
        .query_async(&mut con)
        .await
        .unwrap();
}

/// Hashes, lists, sets and sorted sets far larger than one page are archived in pages (several
/// records per key) and come back exactly, in merge and replace mode, with their TTLs.
#[tokio::test]
async fn large_keys_are_archived_in_pages_and_restore_exactly() {
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    let n = 4_500usize; // four and a half pages
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            pipe.cmd("HSET").arg(format!("{prefix}:hash")).arg(format!("f{i}")).arg(format!("v{i}")).ignore();
            pipe.cmd("RPUSH").arg(format!("{prefix}:list")).arg(format!("item {}", i % 7)).ignore();
            pipe.cmd("SADD").arg(format!("{prefix}:set")).arg(format!("m{i}")).ignore();
            pipe.cmd("ZADD").arg(format!("{prefix}:zset")).arg(i as f64 / 3.0).arg(format!("z{i}")).ignore();
        }
        let _: () = pipe.query_async(&mut con).await.unwrap();
    }
    let _: () = redis::cmd("PEXPIRE").arg(format!("{prefix}:hash")).arg(3_600_000).query_async(&mut con).await.unwrap();
    let before = redis_snapshot(&mut con, &pattern).await;
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let exporter = RedisExporter::new(&redis_url(), std::slice::from_ref(&pattern));
    let summary = run_backup(store.clone(), vec![Box::new(exporter)], BackupOptions::default()).await.unwrap();
    let redis_stats = &summary.backends["redis"];
    assert_eq!(redis_stats.stats["keys"], 4);
    let records: u64 = summary_records(&store, &summary).await;
    assert!(records >= 4 * 5, "{records} records: large keys were not paged");
    for mode in [RestoreMode::Replace, RestoreMode::Merge] {
        delete_pattern(&mut con, &pattern).await;
        let restorer = RedisRestorer::new(&redis_url(), std::slice::from_ref(&pattern), mode);
        let report =
            run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(restorer)], &RestoreOptions::default())
                .await
                .unwrap();
        assert_eq!(report.backends["redis"].verified, Some(true));
        assert_eq!(report.backends["redis"].restored["keys"], 4);
        assert_same_keys(&before, &redis_snapshot(&mut con, &pattern).await, 60_000);
    }
    delete_pattern(&mut con, &pattern).await;
}

/// The records the manifest lists for the backup's Redis entries.
async fn summary_records(store: &Arc<dyn ObjectStore>, summary: &BackupSummary) -> u64 {
    let sidecar = ngbak::pipeline::restore::load_sidecar(store.as_ref(), &summary.backup_id).await.unwrap();
    sidecar.manifest.entries.iter().filter(|e| e.backend == "redis").map(|e| e.records).sum()
}

/// A Redis entry is applied only after the reader has moved past it (so after its size and
/// SHA-256 were checked): a restore that stops at an entry writes none of it.
#[tokio::test]
async fn an_entry_is_written_only_once_the_reader_has_moved_past_it() {
    use ngbak::archive::{BackendManifest, EntryRecord};
    use ngbak::backends::Restorer;
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut con = redis().await;
    let entry = |n: u32, key: &str| {
        let body = format!("{{\"key\":\"{prefix}:full_docs:{key}\",\"type\":\"string\",\"value\":\"v\"}}\n");
        let record = EntryRecord {
            path: format!("kv/redis/{n:06}.ndjson"),
            backend: "redis".into(),
            size: body.len() as u64,
            sha256: String::new(),
            records: 1,
        };
        (record, body)
    };
    let exists = |con: &mut MultiplexedConnection, key: &str| {
        let key = format!("{prefix}:full_docs:{key}");
        let mut con = con.clone();
        async move { redis::cmd("EXISTS").arg(key).query_async::<u32>(&mut con).await.unwrap() == 1 }
    };
    let settle = || tokio::time::sleep(std::time::Duration::from_millis(300));

    let mut restorer = RedisRestorer::new(&redis_url(), std::slice::from_ref(&pattern), RestoreMode::Merge);
    restorer.prepare(&BackendManifest::default()).await.unwrap();
    let (first, body) = entry(1, "a");
    restorer.restore_entry(&first, &mut body.as_bytes()).await.unwrap();
    settle().await;
    assert!(!exists(&mut con, "a").await, "an entry was written before the reader moved past it");
    let (second, body) = entry(2, "b");
    restorer.restore_entry(&second, &mut body.as_bytes()).await.unwrap();
    let stats = restorer.finish().await.unwrap();
    assert_eq!(stats["keys"], 2);
    assert!(exists(&mut con, "a").await && exists(&mut con, "b").await);

    let mut stopped = RedisRestorer::new(&redis_url(), std::slice::from_ref(&pattern), RestoreMode::Merge);
    stopped.prepare(&BackendManifest::default()).await.unwrap();
    let (third, body) = entry(3, "c");
    stopped.restore_entry(&third, &mut body.as_bytes()).await.unwrap();
    drop(stopped); // the reader found entry 3 damaged: finish is never called
    settle().await;
    assert!(!exists(&mut con, "c").await, "an entry the reader did not get past was written");
    delete_pattern(&mut con, &pattern).await;
}

/// The records of one key are applied in archive order, whatever connection carries them: the
/// last record of a key written twice wins.
#[tokio::test]
async fn records_of_one_key_are_applied_in_archive_order() {
    use ngbak::archive::{BackendManifest, EntryRecord};
    use ngbak::backends::Restorer;
    let prefix = format!("ngt_{}", unique());
    let pattern = format!("{prefix}:*");
    let mut restorer = RedisRestorer::new(&redis_url(), std::slice::from_ref(&pattern), RestoreMode::Merge);
    restorer.prepare(&BackendManifest::default()).await.unwrap();
    for n in 0..20u32 {
        let mut body = String::new();
        for k in 0..300 {
            body += &format!(
                "{{\"key\":\"{prefix}:text_chunks:filler-{n}-{k}\",\"type\":\"string\",\"value\":\"{}\"}}\n",
                "x".repeat(4000)
            );
            if k % 100 == 0 {
                body += &format!("{{\"key\":\"{prefix}:text_chunks:k\",\"type\":\"string\",\"value\":\"{n}-{k}\"}}\n");
            }
        }
        let record = EntryRecord {
            path: format!("kv/redis/{:06}.ndjson", n + 1),
            backend: "redis".into(),
            size: body.len() as u64,
            sha256: String::new(),
            records: 303,
        };
        restorer.restore_entry(&record, &mut body.as_bytes()).await.unwrap();
    }
    let stats = restorer.finish().await.unwrap();
    assert_eq!(stats["keys"], 20 * 303);
    let mut con = redis().await;
    let last: String = redis::cmd("GET").arg(format!("{prefix}:text_chunks:k")).query_async(&mut con).await.unwrap();
    assert_eq!(last, "19-200");
    delete_pattern(&mut con, &pattern).await;
}
