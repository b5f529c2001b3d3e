//! Redis key-value store: every key under the configured patterns, of every type, with its TTL.
//!
//! Export reads with SCAN and pipelined reads into NDJSON records, one key a line. Strings that
//! are valid UTF-8 (nano-graphrag's JSON documents) stay readable text; other bytes are base64.
//! Restore writes each key exactly (strings with one SET, other types deleted, recreated and
//! expired in MULTI/EXEC) over several connections: see `redis_writes`.

use super::redis_writes::{Tally, Writers};
use super::{namespace_stat, redact_url, EntrySender, Exporter, RestoreMode, Restorer};
use crate::archive::{BackendManifest, EntryRecord};
use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use base64::Engine;
use redis::aio::MultiplexedConnection;
use redis::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncReadExt};

pub const NAME: &str = "redis";
const FOLDER: &str = "kv/redis";
/// Keys read or written per round trip.
const BATCH: usize = 500;

/// Bytes as they are in Redis: text when valid UTF-8, else base64.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Blob {
    Text(String),
    Binary { b64: String },
}

impl Blob {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(s) => Blob::Text(s),
            Err(e) => Blob::Binary { b64: base64::engine::general_purpose::STANDARD.encode(e.into_bytes()) },
        }
    }

    pub fn into_bytes(self) -> Result<Vec<u8>> {
        match self {
            Blob::Text(s) => Ok(s.into_bytes()),
            Blob::Binary { b64 } => Ok(base64::engine::general_purpose::STANDARD.decode(b64)?),
        }
    }
}

/// One key, as one NDJSON line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key: Blob,
    /// Remaining time to live in milliseconds when it was read; absent for keys that never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pttl: Option<i64>,
    #[serde(flatten)]
    pub value: KeyValue,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum KeyValue {
    String(Blob),
    Hash(Vec<(Blob, Blob)>),
    List(Vec<Blob>),
    Set(Vec<Blob>),
    /// Members with their scores as Redis prints them (exact, including `inf`).
    Zset(Vec<(Blob, String)>),
    /// Any other type (streams, module types), as `DUMP` output for `RESTORE`.
    Dump(Blob),
}

pub async fn connect(url: &str) -> Result<MultiplexedConnection> {
    let client = redis::Client::open(url).with_context(|| format!("invalid Redis URL {}", redact_url(url)))?;
    client.get_multiplexed_async_connection().await.with_context(|| {
        format!(
            "cannot connect to Redis at {}: is it running and reachable, and is the password right?",
            redact_url(url)
        )
    })
}

/// Walks every key matching a list of patterns, one SCAN batch at a time, so memory holds one
/// batch whatever the number of keys. (SCAN may return a key twice; restoring it twice is harmless.)
struct Scanner {
    patterns: Vec<String>,
    current: usize,
    cursor: u64,
}

impl Scanner {
    fn new(patterns: &[String]) -> Self {
        Scanner { patterns: patterns.to_vec(), current: 0, cursor: 0 }
    }

    async fn next_batch(&mut self, con: &mut MultiplexedConnection) -> Result<Option<Vec<Vec<u8>>>> {
        while let Some(pattern) = self.patterns.get(self.current) {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(self.cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(BATCH)
                .query_async(con)
                .await
                .with_context(|| format!("SCAN {pattern} on Redis"))?;
            self.cursor = next;
            if next == 0 {
                self.current += 1;
            }
            if !keys.is_empty() {
                return Ok(Some(keys));
            }
        }
        Ok(None)
    }
}

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

    async fn export(&mut self, out: &EntrySender) -> Result<BackendManifest> {
        let mut con = connect(&self.url).await?;
        let mut parts = out.ndjson(FOLDER);
        let mut stats = BTreeMap::new();
        let mut scanner = Scanner::new(&self.patterns);
        while let Some(keys) = scanner.next_batch(&mut con).await? {
            for record in read_keys(&mut con, keys).await? {
                count_key(&mut stats, &record.key);
                parts.push(&record).await?;
            }
        }
        let keys = parts.finish().await?;
        stats.insert("keys".to_string(), keys);
        Ok(BackendManifest {
            kind: "kv".into(),
            stats,
            details: serde_json::json!({ "url": redact_url(&self.url), "patterns": self.patterns }),
            warnings: Vec::new(),
        })
    }
}

/// Adds a key to the nano-graphrag statistics (`nano_graphrag:<namespace>:<id>`).
fn count_key(stats: &mut BTreeMap<String, u64>, key: &Blob) {
    if let Blob::Text(k) = key {
        let mut parts = k.splitn(3, ':');
        if let (Some(_), Some(ns), Some(_)) = (parts.next(), parts.next(), parts.next()) {
            if let Some(stat) = namespace_stat(ns) {
                *stats.entry(stat.to_string()).or_default() += 1;
            }
        }
    }
}

/// Reads the type, TTL and value of each key; keys that vanished meanwhile are left out.
async fn read_keys(con: &mut MultiplexedConnection, keys: Vec<Vec<u8>>) -> Result<Vec<KeyRecord>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match read_keys_once(con, &keys).await {
            Ok(records) => return Ok(records),
            // A key changed type between the two round trips: read the batch again.
            Err(e) if attempt < 3 && e.to_string().contains("WRONGTYPE") => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn read_keys_once(con: &mut MultiplexedConnection, keys: &[Vec<u8>]) -> Result<Vec<KeyRecord>> {
    let mut meta = redis::pipe();
    for k in keys {
        meta.cmd("TYPE").arg(k).cmd("PTTL").arg(k);
    }
    let meta: Vec<Value> = meta.query_async(con).await.context("reading key types and TTLs from Redis")?;
    let mut reads = redis::pipe();
    let mut kinds = Vec::new();
    for (k, pair) in keys.iter().zip(meta.chunks(2)) {
        let kind = match &pair[0] {
            Value::SimpleString(s) => s.clone(),
            Value::Okay => "ok".into(),
            other => redis::from_redis_value_ref::<String>(other)?,
        };
        let pttl = redis::from_redis_value_ref::<i64>(&pair[1])?;
        match kind.as_str() {
            "none" => continue,
            "string" => reads.cmd("GET").arg(k),
            "hash" => reads.cmd("HGETALL").arg(k),
            "list" => reads.cmd("LRANGE").arg(k).arg(0).arg(-1),
            "set" => reads.cmd("SMEMBERS").arg(k),
            "zset" => reads.cmd("ZRANGE").arg(k).arg(0).arg(-1).arg("WITHSCORES"),
            _ => reads.cmd("DUMP").arg(k),
        };
        kinds.push((k.clone(), kind, pttl));
    }
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<Value> = reads.query_async(con).await.context("reading values from Redis")?;
    let mut out = Vec::with_capacity(kinds.len());
    for ((key, kind, pttl), value) in kinds.into_iter().zip(values) {
        if value == Value::Nil {
            continue; // expired or deleted since TYPE
        }
        let value = match kind.as_str() {
            "string" => KeyValue::String(blob(value)?),
            "hash" => {
                KeyValue::Hash(pairs(value)?.into_iter().map(|(f, v)| Ok((blob(f)?, blob(v)?))).collect::<Result<_>>()?)
            }
            "list" => KeyValue::List(items(value)?.into_iter().map(blob).collect::<Result<_>>()?),
            "set" => KeyValue::Set(items(value)?.into_iter().map(blob).collect::<Result<_>>()?),
            "zset" => KeyValue::Zset(
                pairs(value)?.into_iter().map(|(m, s)| Ok((blob(m)?, score(s)?))).collect::<Result<_>>()?,
            ),
            _ => KeyValue::Dump(blob(value)?),
        };
        out.push(KeyRecord { key: Blob::from_bytes(key), pttl: (pttl >= 0).then_some(pttl), value });
    }
    Ok(out)
}

fn blob(v: Value) -> Result<Blob> {
    Ok(Blob::from_bytes(redis::from_redis_value::<Vec<u8>>(v)?))
}

fn items(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => bail!("unexpected Redis reply {other:?}"),
    }
}

/// Field/value or member/score pairs, from a flat RESP2 array or a RESP3 map or pair list.
fn pairs(v: Value) -> Result<Vec<(Value, Value)>> {
    match v {
        Value::Map(pairs) => Ok(pairs),
        Value::Array(items)
            if items.iter().all(|i| matches!(i, Value::Array(p) if p.len() == 2)) && !items.is_empty() =>
        {
            items
                .into_iter()
                .map(|i| match i {
                    Value::Array(mut p) => {
                        let b = p.pop().expect("two");
                        Ok((p.pop().expect("two"), b))
                    }
                    _ => unreachable!(),
                })
                .collect()
        }
        Value::Array(items) if items.len() % 2 == 0 => {
            let mut it = items.into_iter();
            let mut out = Vec::new();
            while let (Some(a), Some(b)) = (it.next(), it.next()) {
                out.push((a, b));
            }
            Ok(out)
        }
        other => bail!("unexpected Redis reply {other:?}"),
    }
}

fn score(v: Value) -> Result<String> {
    Ok(match v {
        Value::Double(d) => d.to_string(),
        other => redis::from_redis_value::<String>(other)?,
    })
}

pub struct RedisRestorer {
    url: String,
    patterns: Vec<String>,
    mode: RestoreMode,
    writers: Option<Writers>,
}

impl RedisRestorer {
    pub fn new(url: &str, patterns: &[String], mode: RestoreMode) -> Self {
        RedisRestorer { url: url.to_string(), patterns: patterns.to_vec(), mode, writers: None }
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
            let mut con = connect(&self.url).await?;
            let mut deleted = 0u64;
            let mut scanner = Scanner::new(&self.patterns);
            while let Some(keys) = scanner.next_batch(&mut con).await? {
                let n: u64 = redis::cmd("UNLINK")
                    .arg(keys)
                    .query_async(&mut con)
                    .await
                    .context("clearing keys before replace")?;
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
        self.writers()?.release().await?;
        // One byte over the size: reading to the end then never doubles the buffer.
        let mut bytes = Vec::with_capacity(entry.size.min(256 << 20) as usize + 1);
        body.read_to_end(&mut bytes).await.with_context(|| format!("reading {}", entry.path))?;
        self.writers()?.parse(bytes, entry.path.clone(), count_key);
        Ok(())
    }

    async fn finish(&mut self) -> Result<BTreeMap<String, u64>> {
        let Tally { keys, mut stats } = match self.writers.as_mut() {
            Some(writers) => writers.finish().await?,
            None => Tally::default(),
        };
        stats.insert("keys".into(), keys);
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_json_readable_and_bytes_exact() {
        let rec = KeyRecord {
            key: Blob::from_bytes(b"nano_graphrag:full_docs:doc-1".to_vec()),
            pttl: Some(5000),
            value: KeyValue::String(Blob::from_bytes(br#"{"content":"hi"}"#.to_vec())),
        };
        let line = serde_json::to_string(&rec).unwrap();
        assert!(line.contains(r#""type":"string""#) && line.contains(r#"{\"content\":\"hi\"}"#), "{line}");
        assert_eq!(serde_json::from_str::<KeyRecord>(&line).unwrap(), rec);

        let binary = Blob::from_bytes(vec![0xff, 0, 1]);
        assert!(matches!(binary, Blob::Binary { .. }));
        assert_eq!(binary.into_bytes().unwrap(), vec![0xff, 0, 1]);
    }

    #[test]
    fn nano_graphrag_keys_feed_the_statistics() {
        let mut stats = BTreeMap::new();
        count_key(&mut stats, &Blob::Text("nano_graphrag:text_chunks:c1".into()));
        count_key(&mut stats, &Blob::Text("nano_graphrag:llm_response_cache:x".into()));
        count_key(&mut stats, &Blob::Text("other".into()));
        assert_eq!(stats.get("chunks"), Some(&1));
        assert_eq!(stats.get("cache_entries"), Some(&1));
        assert_eq!(stats.len(), 2);
    }
}
