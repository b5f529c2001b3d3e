//! Redis restore: each key written exactly (strings with one SET, other types deleted, recreated
//! and expired in MULTI/EXEC) over several connections (see [`super::writer`]), after a probe of
//! the target's DUMP version; the read-back is [`super::readback`].

use super::check::{rdb_version, Checker, RecordCheck};
use super::client::{connect, ReadConnection, Scanner};
use super::export::RedisExporter;
use super::record::{count_key, KeyHashes, MAX_PRESIZED_KEYS};
use super::writer::{Tally, Writers};
use super::NAME;
use crate::archive::{BackendManifest, ContentDigest, EntryRecord};
use crate::backends::{redact_url, Exporter, RecordSink, RestoreMode, Restorer};
use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest Redis part a restore reads (a part is 8 MiB by default, at most 128 MiB with
/// `--part-mib`, plus one record of at most 64 MiB).
const MAX_PART: u64 = 192 << 20;

/// Refuses a part larger than [`MAX_PART`] (before it is read, where its size is known).
fn part_fits(path: &str, size: u64) -> Result<()> {
    if size > MAX_PART {
        bail!("{path} has {size} bytes; a Redis part may have at most {} MiB (FORMAT.md)", MAX_PART >> 20);
    }
    Ok(())
}

/// Reads one part whole (refused when larger than [`MAX_PART`]).
async fn read_part(entry: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<Vec<u8>> {
    part_fits(&entry.path, entry.size)?;
    // One byte over the size: reading to the end then never doubles the buffer.
    let mut bytes = Vec::with_capacity(entry.size as usize + 1);
    body.take(MAX_PART + 1).read_to_end(&mut bytes).await.with_context(|| format!("reading {}", entry.path))?;
    part_fits(&entry.path, bytes.len() as u64)?;
    Ok(bytes)
}

pub struct RedisRestorer {
    url: String,
    patterns: Vec<String>,
    mode: RestoreMode,
    writers: Option<Writers>,
    /// Merge mode: hashes of the keys written, so the check reads back only those.
    written: KeyHashes,
    /// Keys written, to size the check's set of keys seen.
    keys_written: u64,
    /// The RDB version of the target's `DUMP` format, learnt in `preflight`.
    server_rdb: Option<u16>,
    /// The verification pass's check thread, from the first entry checked.
    checker: Option<Checker>,
    /// The check of [`Restorer::check_entry`] (a list's position spans its pages, which may span
    /// entries).
    check: Option<RecordCheck>,
}

impl RedisRestorer {
    pub fn new(url: &str, patterns: &[String], mode: RestoreMode) -> Self {
        RedisRestorer {
            url: url.to_string(),
            patterns: patterns.to_vec(),
            mode,
            writers: None,
            written: KeyHashes::default(),
            keys_written: 0,
            server_rdb: None,
            checker: None,
            check: None,
        }
    }

    fn writers(&mut self) -> Result<&mut Writers> {
        self.writers.as_mut().ok_or_else(|| anyhow!("Redis restorer used before prepare"))
    }
}

#[async_trait]
impl Restorer for RedisRestorer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn target(&self) -> String {
        redact_url(&self.url)
    }

    async fn prepare(&mut self, _backend: &BackendManifest) -> Result<()> {
        if self.mode == RestoreMode::Replace {
            let rc = ReadConnection::open(&self.url).await?;
            let mut deleted = 0u64;
            let mut scanner = Scanner::new(&self.patterns);
            while let Some(keys) = scanner.next_batch(&rc).await? {
                if keys.is_empty() {
                    continue;
                }
                let n: u64 = rc.once("clearing keys before replace (UNLINK)", redis::cmd("UNLINK").arg(keys)).await?;
                deleted += n;
            }
            tracing::info!(deleted, patterns = ?self.patterns, "replace mode: cleared Redis keys before restore");
        }
        self.writers = Some(Writers::connect(&self.url).await?);
        Ok(())
    }

    /// Releases the previous entry to the writers (the reader checked it before handing out this
    /// one), then reads this entry (one part, bounded by the part size) and has it parsed while
    /// the writers work.
    async fn restore_entry(&mut self, entry: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        let bytes = read_part(entry, body).await?;
        self.restore_checked(entry, bytes).await
    }

    /// Takes the checked bytes as they are (no copy), releases the previous entry to the writers,
    /// and has this one parsed while they work.
    async fn restore_checked(&mut self, entry: &EntryRecord, bytes: Vec<u8>) -> Result<()> {
        part_fits(&entry.path, bytes.len() as u64)?;
        self.writers()?.release().await?;
        self.writers()?.parse(bytes, entry.path.clone(), count_key);
        Ok(())
    }

    async fn finish(&mut self) -> Result<BTreeMap<String, u64>> {
        let Tally { keys, mut stats, written } = match self.writers.as_mut() {
            Some(writers) => writers.finish().await?,
            None => Tally::default(),
        };
        if self.mode == RestoreMode::Merge {
            self.written = written;
        }
        self.keys_written = keys;
        stats.insert("keys".into(), keys);
        Ok(stats)
    }

    async fn preflight(&mut self, _backend: &BackendManifest) -> Result<()> {
        let mut con = connect(&self.url).await?;
        // The target's DUMP format version, from a probe key of its own: a DUMP of a newer
        // version cannot be loaded, and is refused before anything is written.
        let probe = format!("__ngbak_probe:{}", uuid::Uuid::new_v4().simple());
        let (dump,): (Vec<u8>,) = redis::pipe()
            .cmd("SET")
            .arg(&probe)
            .arg("x")
            .arg("PX")
            .arg(60_000)
            .ignore()
            .cmd("DUMP")
            .arg(&probe)
            .cmd("DEL")
            .arg(&probe)
            .ignore()
            .query_async(&mut con)
            .await
            .with_context(|| {
                format!("checking Redis at {} (SET, DUMP and DEL of a probe key)", redact_url(&self.url))
            })?;
        self.server_rdb = rdb_version(&dump);
        Ok(())
    }

    async fn safety_exporter(&mut self) -> Result<Option<Box<dyn Exporter>>> {
        Ok(Some(Box::new(RedisExporter::new(&self.url, &self.patterns))))
    }

    async fn check_entry(
        &mut self,
        entry: &EntryRecord,
        body: &mut (dyn AsyncRead + Send + Unpin),
        each: &mut RecordSink<'_>,
    ) -> Result<()> {
        let bytes = read_part(entry, body).await?;
        let server_rdb = self.server_rdb;
        self.check.get_or_insert_with(|| RecordCheck::new(server_rdb)).entry(&bytes, &entry.path, each)
    }

    /// Reads the entry (one part) and queues it for the check thread, which parses it while the
    /// reader goes on with the next; its digest comes from [`Restorer::checked_digest`].
    async fn queue_check(&mut self, entry: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<bool> {
        let bytes = read_part(entry, body).await?;
        if self.checker.is_none() {
            self.checker = Some(Checker::start(self.server_rdb)?);
        }
        self.checker.as_mut().expect("started above").check(bytes, entry.path.clone()).await;
        Ok(true)
    }

    async fn checked_digest(&mut self) -> Result<Option<ContentDigest>> {
        match self.checker.take() {
            Some(mut checker) => Ok(Some(checker.finish().await?)),
            None => Ok(None),
        }
    }

    async fn read_back(&mut self, each: &mut RecordSink<'_>) -> Result<bool> {
        // Replace mode: every key in scope; merge mode: the keys this restore wrote.
        let only = (self.mode == RestoreMode::Merge).then(|| self.written.clone());
        let keys = self.keys_written.min(MAX_PRESIZED_KEYS) as usize;
        super::readback::read_back(&self.url, &self.patterns, keys, only, each).await?;
        Ok(true)
    }
}
