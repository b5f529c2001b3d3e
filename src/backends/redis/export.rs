//! Redis backup: every key under the patterns, read on several lanes, into NDJSON parts.

use super::client::ReadConnection;
use super::lanes::{finish_lanes, in_lanes, LineBuffers, BLOCK_BYTES};
use super::reads::{read_keys, LargeKey, Pager};
use super::record::{count_key, CanonicalLines, Lines, FOLDER};
use super::NAME;
use crate::archive::{BackendManifest, ContentDigest};
use crate::backends::records::ndjson::write_line;
use crate::backends::{redact_url, EntrySender, Exporter};
use crate::consistency::state::StateMark;
use anyhow::{anyhow, Result};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub struct RedisExporter {
    url: String,
    patterns: Vec<String>,
}

impl RedisExporter {
    pub fn new(url: &str, patterns: &[String]) -> Self {
        RedisExporter { url: url.to_string(), patterns: patterns.to_vec() }
    }
}

#[async_trait]
impl Exporter for RedisExporter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> &'static str {
        "kv"
    }

    /// The database's key count and Redis's count of writes since its last save (server-wide:
    /// a write to another database of the same server counts too; a save resets it).
    async fn state_mark(&mut self) -> Result<Option<StateMark>> {
        let mut con = crate::net::clients::redis(&self.url).await?;
        let keys: Result<u64, _> = redis::cmd("DBSIZE").query_async(&mut con).await;
        let info: Result<String, _> = redis::cmd("INFO").arg("persistence").query_async(&mut con).await;
        let (keys, info) = match (keys, info) {
            (Ok(keys), Ok(info)) => (keys, info),
            (Err(e), _) | (_, Err(e)) => {
                // E.g. an ACL user without DBSIZE or INFO: the backup goes on, unmarked.
                tracing::warn!("cannot mark Redis's state to notice writes during the backup: {e}");
                return Ok(None);
            }
        };
        let writes = info.lines().find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"));
        let mut mark = StateMark::default().exact("keys", keys);
        if let Some(writes) = writes.and_then(|w| w.trim().parse().ok()) {
            mark = mark.counter("writes", writes);
        }
        Ok(Some(mark))
    }

    /// No key matched: how many the database holds, and the first prefixes among them.
    async fn emptiness(&mut self, exported: &BackendManifest) -> Result<Option<String>> {
        if exported.stats.get("keys").copied().unwrap_or(0) > 0 {
            return Ok(None);
        }
        let mut con = crate::net::clients::redis(&self.url).await?;
        let keys: u64 = redis::cmd("DBSIZE").query_async(&mut con).await?;
        let patterns = self.patterns.join(", ");
        if keys == 0 {
            return Ok(Some(format!("the patterns {patterns} matched no key: the database holds none")));
        }
        let (_, sample): (u64, Vec<Vec<u8>>) =
            redis::cmd("SCAN").arg(0).arg("COUNT").arg(200).query_async(&mut con).await?;
        let mut prefixes: Vec<String> = sample
            .iter()
            .map(|k| {
                let k = String::from_utf8_lossy(k);
                match k.split_once(':') {
                    Some((prefix, _)) => format!("{prefix}:"),
                    None => k.chars().take(24).collect(),
                }
            })
            .collect();
        prefixes.sort();
        prefixes.dedup();
        prefixes.truncate(5);
        Ok(Some(format!(
            "the patterns {patterns} matched no key, while the database holds {keys} (first prefixes seen: {}): \
             check --redis-pattern (NGBAK_REDIS_PATTERNS) and the database number in the URL",
            prefixes.join(", ")
        )))
    }

    /// Reads, serialises and digests small keys on several connections at once
    /// ([`export_blocks`]) and pages each large key here, one after another, so that
    /// a key's records stay together in the archive.
    async fn export(&mut self, out: &EntrySender) -> Result<BackendManifest> {
        let pages = ReadConnection::open(&self.url).await?;
        let mut parts = out.ndjson(FOLDER);
        let mut stats = BTreeMap::new();
        let mut digest = ContentDigest::default();
        let mut keys = 0u64;
        let (lanes, mut blocks, buffers) = export_blocks(&self.url, &self.patterns).await?;
        while let Some(block) = blocks.recv().await {
            let block = block?;
            digest.merge(&block.digest);
            for (stat, n) in &block.stats {
                *stats.entry(stat.clone()).or_default() += n;
            }
            keys += block.keys;
            parts.push_lines(&block.ndjson).await?;
            buffers.give(block.ndjson);
            for large in block.large {
                let mut pager = Pager::new(large);
                let mut lines = CanonicalLines::default();
                while let Some(record) = pager.next(&pages).await? {
                    if !record.more {
                        count_key(&mut stats, &record.key);
                        keys += 1;
                    }
                    for line in lines.of(&record) {
                        digest.add(&line);
                    }
                    parts.push(&record).await?;
                }
            }
        }
        finish_export(lanes).await?;
        parts.finish().await?;
        stats.insert("keys".to_string(), keys);
        Ok(BackendManifest {
            kind: "kv".into(),
            stats,
            details: serde_json::json!({ "url": redact_url(&self.url), "patterns": self.patterns }),
            warnings: Vec::new(),
            content_digest: Some(digest),
        })
    }
}

/// What a backup lane made of (part of) a batch of keys: the small keys' archive lines, their
/// digest and statistics, and the large keys, which the exporter pages itself so that each
/// one's records stay together in the archive.
#[derive(Default)]
pub struct ExportBlock {
    /// NDJSON lines, one per key.
    pub ndjson: Vec<u8>,
    pub keys: u64,
    pub digest: ContentDigest,
    pub stats: BTreeMap<String, u64>,
    pub large: Vec<LargeKey>,
}

/// A backup's reads: every key under `patterns`, over [`READ_LANES`] connections plus one for
/// SCAN; the lanes also serialise and digest the records, so that work is spread over the cores.
/// Hand each block's `ndjson` back to the returned [`LineBuffers`] once it is copied.
pub async fn export_blocks(
    url: &str,
    patterns: &[String],
) -> Result<(JoinSet<()>, mpsc::Receiver<Result<ExportBlock>>, LineBuffers)> {
    let buffers = LineBuffers::default();
    let pool = buffers.clone();
    let lane = move |rc: Arc<ReadConnection>, keys, out: mpsc::Sender<Result<ExportBlock>>| {
        let pool = pool.clone();
        async move { export_batch(&rc, keys, &out, &pool).await }
    };
    let (tasks, blocks) = in_lanes(url, patterns, 0, None, lane).await?;
    Ok((tasks, blocks, buffers))
}

/// Finishes [`export_blocks`] once its channel has ended.
pub async fn finish_export(tasks: JoinSet<()>) -> Result<()> {
    finish_lanes(tasks, "backup").await
}

async fn export_batch(
    rc: &ReadConnection,
    keys: Vec<Vec<u8>>,
    out: &mpsc::Sender<Result<ExportBlock>>,
    buffers: &LineBuffers,
) -> Result<()> {
    let (small, large) = read_keys(rc, keys).await?;
    let mut block = ExportBlock { ndjson: buffers.take(), ..Default::default() };
    let mut canonical = CanonicalLines::default();
    let mut lines = Lines::default();
    for record in small {
        write_line(&mut block.ndjson, &record, FOLDER)?;
        canonical.write(&record, &mut lines);
        for line in lines.iter() {
            block.digest.add(line);
        }
        lines.clear();
        count_key(&mut block.stats, &record.key);
        block.keys += 1;
        if block.ndjson.len() >= BLOCK_BYTES {
            let full = std::mem::replace(&mut block, ExportBlock { ndjson: buffers.take(), ..Default::default() });
            out.send(Ok(full)).await.map_err(|_| anyhow!("the Redis backup stopped"))?;
        }
    }
    block.large = large;
    out.send(Ok(block)).await.map_err(|_| anyhow!("the Redis backup stopped"))
}
