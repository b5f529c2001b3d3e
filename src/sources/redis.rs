//! Redis key-value store: every key under the configured patterns, of every type, with its TTL.
//!
//! Export reads with SCAN and pipelined reads into NDJSON records, one key a line. Strings that
//! are valid UTF-8 (nano-graphrag's JSON documents) stay readable text; other bytes are base64.
//! Restore writes each key exactly (strings with one SET, other types deleted, recreated and
//! expired in MULTI/EXEC) over several connections: see `redis_writes`.

use super::json_text;
use super::ndjson::LineReader;
use super::redis_reads::{Lines, ReadConnection};
use super::redis_writes::{Tally, Writers};
use super::{namespace_stat, redact_url, EntrySender, Exporter, RestoreMode, Restorer};
use crate::archive::{BackendManifest, ContentDigest, EntryRecord};
use crate::sources::RecordSink;
use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use base64::Engine;
use redis::Value;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use tokio::io::{AsyncRead, AsyncReadExt};

pub const NAME: &str = "redis";
pub(crate) const FOLDER: &str = "kv/redis";
/// Keys read or written per round trip.
const BATCH: usize = 500;

/// Bytes as they are in Redis: text when valid UTF-8, else base64.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Blob {
    Text(String),
    Binary { b64: String },
}

impl Blob {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        // simdutf8 checks the bytes several times faster than the standard library (a read-back
        // or backup checks every value once).
        if simdutf8::basic::from_utf8(&bytes).is_ok() {
            // SAFETY: the bytes were just checked to be UTF-8.
            Blob::Text(unsafe { String::from_utf8_unchecked(bytes) })
        } else {
            Blob::Binary { b64: base64::engine::general_purpose::STANDARD.encode(bytes) }
        }
    }

    /// The bytes as they are in Redis, without a copy for text.
    pub fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            Blob::Text(s) => Ok(s.as_bytes().into()),
            Blob::Binary { b64 } => Ok(base64::engine::general_purpose::STANDARD.decode(b64)?.into()),
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
    /// This record continues the previous record's key (a large hash, list, set or sorted set is
    /// archived in pages): append to it instead of replacing it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
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

pub async fn connect(url: &str) -> Result<redis::aio::MultiplexedConnection> {
    crate::net::clients::redis(url).await
}

/// Walks every key matching a list of patterns, one SCAN batch at a time, so memory holds one
/// batch whatever the number of keys. SCAN may return a key twice: each key is handed out once
/// (remembered as a 64-bit hash). A batch may come out empty when all its keys were seen.
pub(crate) struct Scanner {
    patterns: Vec<String>,
    current: usize,
    cursor: u64,
    seen: KeyHashes,
    /// When set, only these keys are handed out (a merge restore's check).
    pub only: Option<KeyHashes>,
}

impl Scanner {
    pub fn new(patterns: &[String]) -> Self {
        Scanner { patterns: patterns.to_vec(), current: 0, cursor: 0, seen: KeyHashes::default(), only: None }
    }

    /// As [`Scanner::new`], with room for `keys` keys from the start (growing a large set of
    /// seen keys step by step costs more than the set itself).
    pub fn sized(patterns: &[String], keys: usize) -> Self {
        Scanner { seen: KeyHashes::with_capacity_and_hasher(keys, Default::default()), ..Scanner::new(patterns) }
    }

    /// The next batch of keys not handed out before; `None` at the end.
    pub async fn next_batch(&mut self, rc: &ReadConnection) -> Result<Option<Vec<Vec<u8>>>> {
        let Some(keys) = self.next_raw(rc).await? else { return Ok(None) };
        Ok(Some(
            keys.into_iter()
                .filter(|k| {
                    let h = key_hash(k);
                    self.only.as_ref().is_none_or(|only| only.contains(&h)) && self.seen.insert(h)
                })
                .collect(),
        ))
    }

    /// The next SCAN batch as it comes (a cursor is the server's, so a retried SCAN on a new
    /// connection goes on where the lost one stopped).
    async fn next_raw(&mut self, rc: &ReadConnection) -> Result<Option<Vec<Vec<u8>>>> {
        while let Some(pattern) = self.patterns.get(self.current) {
            let scan = redis::cmd("SCAN").arg(self.cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(BATCH).clone();
            let (next, keys): (u64, Vec<Vec<u8>>) = rc.cmd(&format!("SCAN {pattern}"), &scan).await?;
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

    /// Reads, serialises and digests small keys on several connections at once
    /// (`redis_reads::export_blocks`) and pages each large key here, one after another, so that
    /// a key's records stay together in the archive.
    async fn export(&mut self, out: &EntrySender) -> Result<BackendManifest> {
        let pages = ReadConnection::open(&self.url).await?;
        let mut parts = out.ndjson(FOLDER);
        let mut stats = BTreeMap::new();
        let mut digest = ContentDigest::default();
        let mut keys = 0u64;
        let (lanes, mut blocks, buffers) = super::redis_reads::export_blocks(&self.url, &self.patterns).await?;
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
        super::redis_reads::finish_export(lanes).await?;
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

/// The canonical lines of the records of a key, for the content digest (FORMAT.md): one line
/// for the key (name, type, whether it expires, and a string's or DUMP's value) and one per
/// element of a hash, list, set or sorted set — so a key archived whole or in pages adds up to
/// the same digest. Keeps the position within the current list across its pages.
#[derive(Default)]
pub struct CanonicalLines {
    list_index: u64,
}

impl CanonicalLines {
    pub fn of(&mut self, record: &KeyRecord) -> Vec<Vec<u8>> {
        let mut lines = Lines::default();
        self.write(record, &mut lines);
        lines.iter().map(<[u8]>::to_vec).collect()
    }

    /// Appends the record's canonical lines to `out`. Each line is written straight from the
    /// record, its fields in the canonical (sorted) order, so no JSON tree is built and strings
    /// go through [`json_text`]'s fast escaping: the bytes are those of FORMAT.md's form (a test
    /// holds them equal to the JSON-tree form).
    pub fn write(&mut self, record: &KeyRecord, out: &mut Lines) {
        let key = &record.key;
        if !record.more {
            self.list_index = 0;
            let (kind, value) = match &record.value {
                KeyValue::String(v) => ("string", Some(v)),
                KeyValue::Dump(v) => ("dump", Some(v)),
                KeyValue::Hash(_) => ("hash", None),
                KeyValue::List(_) => ("list", None),
                KeyValue::Set(_) => ("set", None),
                KeyValue::Zset(_) => ("zset", None),
            };
            out.push_with(|buf| {
                let expires: &[u8] = if record.pttl.is_some() { b"true" } else { b"false" };
                buf.extend_from_slice(b"{\"expires\":");
                buf.extend_from_slice(expires);
                field(buf, "key", key);
                buf.extend_from_slice(b",\"type\":\"");
                buf.extend_from_slice(kind.as_bytes());
                buf.extend_from_slice(b"\",\"value\":");
                match value {
                    Some(v) => push_blob(buf, v),
                    None => buf.extend_from_slice(b"null"),
                }
                buf.push(b'}');
            });
        }
        match &record.value {
            KeyValue::Hash(fields) => {
                for (name, value) in fields {
                    out.push_with(|buf| {
                        buf.extend_from_slice(b"{\"field\":");
                        push_blob(buf, name);
                        field(buf, "key", key);
                        field(buf, "value", value);
                        buf.push(b'}');
                    });
                }
            }
            KeyValue::Set(members) => {
                for member in members {
                    out.push_with(|buf| member_line(buf, key, member, None));
                }
            }
            KeyValue::Zset(members) => {
                for (member, score) in members {
                    out.push_with(|buf| member_line(buf, key, member, Some(score)));
                }
            }
            KeyValue::List(items) => {
                for value in items {
                    out.push_with(|buf| {
                        let _ = write!(buf, "{{\"index\":{}", self.list_index);
                        field(buf, "key", key);
                        field(buf, "value", value);
                        buf.push(b'}');
                    });
                    self.list_index += 1;
                }
            }
            KeyValue::String(_) | KeyValue::Dump(_) => {}
        }
    }
}

/// `,"name":` and the blob.
fn field(buf: &mut Vec<u8>, name: &str, blob: &Blob) {
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\":");
    push_blob(buf, blob);
}

fn member_line(buf: &mut Vec<u8>, key: &Blob, member: &Blob, score: Option<&str>) {
    buf.extend_from_slice(b"{\"key\":");
    push_blob(buf, key);
    field(buf, "member", member);
    if let Some(score) = score {
        buf.extend_from_slice(b",\"score\":");
        json_text::push_str(buf, score);
    }
    buf.push(b'}');
}

/// A blob as serde writes it: text as a JSON string, other bytes as `{"b64":"…"}`.
fn push_blob(buf: &mut Vec<u8>, blob: &Blob) {
    match blob {
        Blob::Text(s) => json_text::push_str(buf, s),
        Blob::Binary { b64 } => {
            buf.extend_from_slice(b"{\"b64\":");
            json_text::push_str(buf, b64);
            buf.push(b'}');
        }
    }
}

/// True when `e` is Redis's WRONGTYPE reply (a key changed type between two round trips),
/// wherever it sits in the error's chain of context.
pub fn is_wrong_type(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<ChangedType>())
        || e.chain().filter_map(|c| c.downcast_ref::<redis::RedisError>()).any(|r| {
            // A pipeline's replies come back as one error holding each failed command's.
            r.code() == Some("WRONGTYPE")
                || r.clone().into_server_errors().is_some_and(|errs| errs.iter().any(|(_, e)| e.code() == "WRONGTYPE"))
        })
}

/// Parses one archived key and checks what a write would need (scores, base64).
pub(crate) fn parse_record(line: &[u8], entry: &str) -> Result<KeyRecord> {
    let record: KeyRecord = serde_json::from_slice(line).with_context(|| format!("bad record in {entry}"))?;
    record.key.clone().into_bytes().with_context(|| format!("bad key in {entry}"))?;
    if let KeyValue::Zset(members) = &record.value {
        for (m, score) in members {
            let ok =
                matches!(score.as_str(), "inf" | "-inf" | "+inf") || score.parse::<f64>().is_ok_and(|f| !f.is_nan());
            if !ok {
                bail!("bad sorted-set score {score:?} for member {m:?} in {entry}");
            }
        }
    }
    Ok(record)
}

/// Adds a key to the nano-graphrag statistics (`nano_graphrag:<namespace>:<id>`).
pub(crate) fn count_key(stats: &mut BTreeMap<String, u64>, key: &Blob) {
    if let Blob::Text(k) = key {
        let mut parts = k.splitn(3, ':');
        if let (Some(_), Some(ns), Some(_)) = (parts.next(), parts.next(), parts.next()) {
            if let Some(stat) = namespace_stat(ns) {
                *stats.entry(stat.to_string()).or_default() += 1;
            }
        }
    }
}

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

/// Elements read per round trip of a large key, and the most a key may hold to be read whole.
const PAGE_ELEMS: usize = 1000;

/// A key too large to read whole: its type and TTL, read page by page afterwards.
pub(crate) struct LargeKey {
    key: Vec<u8>,
    kind: String,
    pttl: Option<i64>,
}

/// Reads one large key page by page (HSCAN, SSCAN, ZSCAN, or LRANGE windows). SCAN-style reads
/// may return an element twice; it is archived once (remembered as a 64-bit hash).
pub(crate) struct Pager {
    key: LargeKey,
    cursor: u64,
    offset: i64,
    first: bool,
    done: bool,
    seen: KeyHashes,
}

impl Pager {
    pub fn new(key: LargeKey) -> Self {
        Pager { key, cursor: 0, offset: 0, first: true, done: false, seen: KeyHashes::default() }
    }

    pub async fn next(&mut self, rc: &ReadConnection) -> Result<Option<KeyRecord>> {
        while !self.done {
            let k = &self.key.key;
            let what = format!("reading the large key {:?}", Blob::from_bytes(k.clone()));
            let value = if self.key.kind == "list" {
                let end = self.offset + PAGE_ELEMS as i64 - 1;
                let items: Vec<Vec<u8>> = rc.cmd(&what, redis::cmd("LRANGE").arg(k).arg(self.offset).arg(end)).await?;
                self.offset += items.len() as i64;
                self.done = items.len() < PAGE_ELEMS;
                KeyValue::List(items.into_iter().map(Blob::from_bytes).collect())
            } else {
                let command = match self.key.kind.as_str() {
                    "hash" => "HSCAN",
                    "set" => "SSCAN",
                    _ => "ZSCAN",
                };
                let (next, page): (u64, Value) =
                    rc.cmd(&what, redis::cmd(command).arg(k).arg(self.cursor).arg("COUNT").arg(PAGE_ELEMS)).await?;
                self.cursor = next;
                self.done = next == 0;
                // A member SCAN already returned is left out, told by the hash of its bytes.
                let seen = &mut self.seen;
                let mut fresh = |member: Value| -> Result<Option<Blob>> {
                    let bytes = redis::from_redis_value::<Vec<u8>>(member)?;
                    Ok(seen.insert(key_hash(&bytes)).then(|| Blob::from_bytes(bytes)))
                };
                match self.key.kind.as_str() {
                    "set" => {
                        let mut members = Vec::new();
                        for m in items(page)? {
                            members.extend(fresh(m)?);
                        }
                        KeyValue::Set(members)
                    }
                    "hash" => {
                        let mut fields = Vec::new();
                        for (f, v) in pairs(page)? {
                            if let Some(f) = fresh(f)? {
                                fields.push((f, blob(v)?));
                            }
                        }
                        KeyValue::Hash(fields)
                    }
                    _ => {
                        let mut members = Vec::new();
                        for (m, sc) in pairs(page)? {
                            if let Some(m) = fresh(m)? {
                                members.push((m, score(sc)?));
                            }
                        }
                        KeyValue::Zset(members)
                    }
                }
            };
            if value_len(&value) == 0 && !(self.first && self.done) {
                continue; // an empty page; SCAN goes on
            }
            let first = std::mem::replace(&mut self.first, false);
            let pttl = if first { self.key.pttl } else { None };
            return Ok(Some(KeyRecord { key: Blob::from_bytes(k.clone()), pttl, more: !first, value }));
        }
        Ok(None)
    }
}

fn value_len(v: &KeyValue) -> usize {
    match v {
        KeyValue::Hash(x) => x.len(),
        KeyValue::List(x) | KeyValue::Set(x) => x.len(),
        KeyValue::Zset(x) => x.len(),
        KeyValue::String(_) | KeyValue::Dump(_) => 1,
    }
}

/// Reads the type, TTL and value of each key; keys that vanished meanwhile are left out, and
/// keys too large to read whole are returned apart, to be paged.
pub(crate) async fn read_keys(rc: &ReadConnection, keys: Vec<Vec<u8>>) -> Result<(Vec<KeyRecord>, Vec<LargeKey>)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match read_keys_once(rc, &keys).await {
            Ok(read) => return Ok(read),
            // A key changed type between the round trips: read the batch again.
            Err(e) if attempt < 5 && is_wrong_type(&e) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One batch in as few round trips as the types need. First, in one pipeline, `PTTL` for every
/// key and one `MGET` of them all (one command, not one `GET` per key: Redis spends less time on
/// commands): a string — most keys — is then read. `MGET` answers nil both for a key that is gone
/// and for one of another type; only those take two more round trips: `TYPE` (which tells the
/// two apart) and the length of collections, then the value (or pages, when large).
async fn read_keys_once(rc: &ReadConnection, keys: &[Vec<u8>]) -> Result<(Vec<KeyRecord>, Vec<LargeKey>)> {
    if keys.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut first = redis::pipe();
    for k in keys {
        first.cmd("PTTL").arg(k);
    }
    first.cmd("MGET").arg(keys);
    let mut replies: Vec<Value> = rc.pipe("reading TTLs and string values", &first).await?;
    let values = match replies.pop() {
        Some(Value::Array(values)) if replies.len() == keys.len() && values.len() == keys.len() => values,
        _ => bail!("Redis answered {} replies to {} PTTLs and an MGET of as many keys", replies.len(), keys.len()),
    };
    let mut out = Vec::with_capacity(keys.len());
    let mut others = Vec::new();
    for ((k, pttl), value) in keys.iter().zip(replies).zip(values) {
        let pttl = redis::from_redis_value::<i64>(pttl)?;
        let pttl = (pttl >= 0).then_some(pttl);
        match value {
            Value::Nil => others.push((k.clone(), pttl)), // gone since SCAN, or not a string
            v => out.push(KeyRecord {
                key: Blob::from_bytes(k.clone()),
                pttl,
                more: false,
                value: KeyValue::String(blob(v)?),
            }),
        }
    }
    if others.is_empty() {
        return Ok((out, Vec::new()));
    }
    let (rest, large) = read_other_keys(rc, others).await?;
    out.extend(rest);
    Ok((out, large))
}

/// Keys that are not strings: their type, the length of collections, then their values.
async fn read_other_keys(
    rc: &ReadConnection,
    keys: Vec<(Vec<u8>, Option<i64>)>,
) -> Result<(Vec<KeyRecord>, Vec<LargeKey>)> {
    let mut types = redis::pipe();
    for (k, _) in &keys {
        types.cmd("TYPE").arg(k);
    }
    let types: Vec<Value> = rc.pipe("reading key types", &types).await?;
    let mut typed = Vec::new();
    // Only collections need their length (to be paged when large): a DUMP of a key that
    // vanished since TYPE reads back as nil, and is left out then.
    let mut lengths = redis::pipe();
    let mut collections = 0;
    for ((k, pttl), kind) in keys.into_iter().zip(types) {
        let kind = match &kind {
            Value::SimpleString(s) => s.clone(),
            Value::Okay => "ok".into(),
            other => redis::from_redis_value_ref::<String>(other)?,
        };
        let length = match kind.as_str() {
            "none" => continue,
            // A string again: it changed type since MGET; read the batch again.
            "string" => return Err(ChangedType.into()),
            "hash" => Some("HLEN"),
            "list" => Some("LLEN"),
            "set" => Some("SCARD"),
            "zset" => Some("ZCARD"),
            _ => None,
        };
        if let Some(length) = length {
            lengths.cmd(length).arg(&k);
            collections += 1;
        }
        typed.push((k, kind, pttl));
    }
    if typed.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let lengths: Vec<u64> = if collections > 0 { rc.pipe("reading key sizes", &lengths).await? } else { Vec::new() };
    let mut lengths = lengths.into_iter();
    let mut reads = redis::pipe();
    let mut small = Vec::new();
    let mut large = Vec::new();
    for (key, kind, pttl) in typed {
        let collection = matches!(kind.as_str(), "hash" | "list" | "set" | "zset");
        let len =
            if collection { lengths.next().ok_or_else(|| anyhow!("Redis answered too few lengths"))? } else { 0 };
        if collection && len as usize > PAGE_ELEMS {
            large.push(LargeKey { key, kind, pttl });
            continue;
        }
        match kind.as_str() {
            "hash" => reads.cmd("HGETALL").arg(&key),
            "list" => reads.cmd("LRANGE").arg(&key).arg(0).arg(-1),
            "set" => reads.cmd("SMEMBERS").arg(&key),
            "zset" => reads.cmd("ZRANGE").arg(&key).arg(0).arg(-1).arg("WITHSCORES"),
            _ => reads.cmd("DUMP").arg(&key),
        };
        small.push((key, kind, pttl));
    }
    if small.is_empty() {
        return Ok((Vec::new(), large));
    }
    let values: Vec<Value> = rc.pipe("reading values", &reads).await?;
    let mut out = Vec::with_capacity(small.len());
    for ((key, kind, pttl), value) in small.into_iter().zip(values) {
        if value == Value::Nil {
            continue; // expired or deleted since TYPE
        }
        let value = match kind.as_str() {
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
        out.push(KeyRecord { key: Blob::from_bytes(key), pttl, more: false, value });
    }
    Ok((out, large))
}

/// A key for which MGET found no string reads as a string on TYPE: it changed type between the
/// round trips (handled like Redis's WRONGTYPE: the batch is read again).
#[derive(Debug, thiserror::Error)]
#[error("a key changed type while it was being read")]
struct ChangedType;

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
    /// Merge mode: hashes of the keys written, so the check reads back only those.
    written: KeyHashes,
    /// Keys written, to size the check's set of keys seen.
    keys_written: u64,
    /// The RDB version of the target's `DUMP` format, learnt in `preflight`.
    server_rdb: Option<u16>,
    /// Canonical lines of the records being checked (a list's position spans its pages).
    lines: CanonicalLines,
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
            lines: CanonicalLines::default(),
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
        part_fits(&entry.path, entry.size)?;
        // One byte over the size: reading to the end then never doubles the buffer.
        let mut bytes = Vec::with_capacity(entry.size as usize + 1);
        body.take(MAX_PART + 1).read_to_end(&mut bytes).await.with_context(|| format!("reading {}", entry.path))?;
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
        let mut lines = LineReader::new(body);
        while let Some(line) = lines.next_line().await? {
            let record = parse_record(line, &entry.path)?;
            if let (KeyValue::Dump(payload), Some(server)) = (&record.value, self.server_rdb) {
                let version = rdb_version(&payload.clone().into_bytes()?);
                if version.is_some_and(|v| v > server) {
                    bail!(
                        "key {:?} is archived as a DUMP of RDB version {}, which the target Redis (RDB version \
                         {server}) cannot load: restore into a Redis at least as new as the one backed up",
                        record.key,
                        version.unwrap_or_default()
                    );
                }
            }
            for line in self.lines.of(&record) {
                each(&line);
            }
        }
        Ok(())
    }

    async fn read_back(&mut self, each: &mut RecordSink<'_>) -> Result<bool> {
        // Replace mode: every key in scope; merge mode: the keys this restore wrote.
        let only = (self.mode == RestoreMode::Merge).then(|| self.written.clone());
        let keys = self.keys_written.min(MAX_PRESIZED_KEYS) as usize;
        super::redis_reads::read_back(&self.url, &self.patterns, keys, only, each).await?;
        Ok(true)
    }
}

/// The RDB version in a `DUMP` payload's footer (two little-endian bytes before the CRC-64).
fn rdb_version(dump: &[u8]) -> Option<u16> {
    let n = dump.len();
    (n >= 10).then(|| u16::from_le_bytes([dump[n - 10], dump[n - 9]]))
}

/// A 64-bit hash of a key's bytes, to remember which keys were seen or written in 8 bytes each.
/// XXH3 (already built for redis-rs): several times faster than the standard library's SipHash
/// on short keys, and as good at telling keys apart; no one can choose keys against it to any
/// gain, since a collision makes the check fail loudly, never pass.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// A set of [`key_hash`]es. They are hashes already, so the set takes them as they are instead
/// of hashing them again.
pub(crate) type KeyHashes = HashSet<u64, std::hash::BuildHasherDefault<Prehashed>>;

/// The set of seen keys is sized up front for at most this many keys (18 MiB of set); beyond,
/// it grows as needed (it holds 8 bytes and a control byte per slot, a slot per key or more).
const MAX_PRESIZED_KEYS: u64 = 1 << 20;

/// The "hasher" of [`KeyHashes`]: hands back the `u64` it is given.
#[derive(Default)]
pub(crate) struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are ever hashed; fold anything else in rather than fail.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Text exactly when the standard library finds UTF-8 (the check is simdutf8's), and the
        /// bytes come back as they were either way; mostly-ASCII inputs with stray high bytes
        /// reach the checker's slow paths.
        #[test]
        fn blobs_are_text_exactly_when_utf8_and_keep_their_bytes(
            bytes in proptest::collection::vec(proptest::prop_oneof![8 => 0x20u8..0x7f, 1 => proptest::num::u8::ANY], 0..200),
            text in ".{0,80}",
        ) {
            for bytes in [bytes, text.into_bytes()] {
                let blob = Blob::from_bytes(bytes.clone());
                proptest::prop_assert_eq!(matches!(blob, Blob::Text(_)), std::str::from_utf8(&bytes).is_ok());
                proptest::prop_assert_eq!(&*blob.bytes().unwrap(), &bytes[..]);
                proptest::prop_assert_eq!(key_hash(&blob.bytes().unwrap()), key_hash(&bytes));
                proptest::prop_assert_eq!(blob.into_bytes().unwrap(), bytes);
            }
        }
    }

    /// Against the real Redis `make test` starts: `MGET` answers nil both for a key that is gone
    /// and for a key of another type; the first is left out, the second read by its type.
    #[tokio::test]
    async fn keys_mget_finds_no_string_for_are_left_out_when_gone_and_read_by_type_otherwise() {
        let url = std::env::var("NGBAK_TEST_REDIS_URL")
            .expect("NGBAK_TEST_REDIS_URL is not set: this test needs the Redis that `make test` starts");
        let prefix = format!("ngbak-test:{}:mget", uuid::Uuid::new_v4().simple());
        let name = |suffix: &str| format!("{prefix}:{suffix}").into_bytes();
        let rc = ReadConnection::new(&url).unwrap();
        let mut setup = redis::pipe();
        setup
            .cmd("SET")
            .arg(name("string"))
            .arg("{\"a\": 1}")
            .arg("PX")
            .arg(600_000)
            .cmd("HSET")
            .arg(name("hash"))
            .arg("f")
            .arg(&[0xffu8, 0][..])
            .cmd("RPUSH")
            .arg(name("list"))
            .arg("x")
            .arg("y")
            .cmd("SET")
            .arg(name("plain"))
            .arg("");
        let _: () = rc.pipe("setting up", &setup).await.unwrap();
        let keys = ["string", "gone", "hash", "list", "plain"].map(name).to_vec();
        let (records, large) = read_keys(&rc, keys).await.unwrap();
        let _: () = rc
            .cmd("cleaning up", redis::cmd("DEL").arg(["string", "hash", "list", "plain"].map(name).to_vec()))
            .await
            .unwrap();
        assert!(large.is_empty());
        let found: BTreeMap<Vec<u8>, &KeyRecord> =
            records.iter().map(|r| (r.key.bytes().unwrap().into_owned(), r)).collect();
        assert_eq!(found.len(), 4, "the key that is gone is left out: {:?}", found.keys());
        let string = found[&name("string")];
        assert_eq!(string.value, KeyValue::String(Blob::from_bytes(b"{\"a\": 1}".to_vec())));
        assert!(string.pttl.is_some_and(|ms| ms > 0 && ms <= 600_000));
        assert_eq!(found[&name("plain")].value, KeyValue::String(Blob::from_bytes(Vec::new())));
        assert_eq!(found[&name("plain")].pttl, None);
        let hash = KeyValue::Hash(vec![(Blob::from_bytes(b"f".to_vec()), Blob::from_bytes(vec![0xff, 0]))]);
        assert_eq!(found[&name("hash")].value, hash);
        let list = KeyValue::List(vec![Blob::from_bytes(b"x".to_vec()), Blob::from_bytes(b"y".to_vec())]);
        assert_eq!(found[&name("list")].value, list);
    }

    #[test]
    fn key_hashes_are_kept_as_they_are() {
        use std::hash::BuildHasher;
        let build = std::hash::BuildHasherDefault::<Prehashed>::default();
        let h = key_hash(b"nano_graphrag:text_chunks:chunk-1");
        assert_eq!(build.hash_one(h), h);
        let mut seen = KeyHashes::default();
        assert!(seen.insert(h) && !seen.insert(h) && seen.insert(key_hash(b"other")));
    }

    #[test]
    fn records_keep_json_readable_and_bytes_exact() {
        let rec = KeyRecord {
            more: false,
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

    /// The canonical form as FORMAT.md states it, built as a JSON tree (how it was first written):
    /// the oracle for [`CanonicalLines`], which serialises the same bytes without the tree.
    fn canonical_by_tree(record: &KeyRecord, list_index: &mut u64) -> Vec<Vec<u8>> {
        use serde_json::json;
        let key = &record.key;
        let line = |v: serde_json::Value| serde_json::to_vec(&v).unwrap();
        let mut out = Vec::new();
        let kind = match &record.value {
            KeyValue::String(_) => "string",
            KeyValue::Hash(_) => "hash",
            KeyValue::List(_) => "list",
            KeyValue::Set(_) => "set",
            KeyValue::Zset(_) => "zset",
            KeyValue::Dump(_) => "dump",
        };
        if !record.more {
            *list_index = 0;
            let value = match &record.value {
                KeyValue::String(v) | KeyValue::Dump(v) => json!(v),
                _ => serde_json::Value::Null,
            };
            out.push(line(json!({ "key": key, "type": kind, "expires": record.pttl.is_some(), "value": value })));
        }
        match &record.value {
            KeyValue::Hash(f) => out.extend(f.iter().map(|(f, v)| line(json!({ "key": key, "field": f, "value": v })))),
            KeyValue::Set(m) => out.extend(m.iter().map(|m| line(json!({ "key": key, "member": m })))),
            KeyValue::Zset(m) => {
                out.extend(m.iter().map(|(m, sc)| line(json!({ "key": key, "member": m, "score": sc }))))
            }
            KeyValue::List(items) => {
                for item in items {
                    out.push(line(json!({ "key": key, "index": *list_index, "value": item })));
                    *list_index += 1;
                }
            }
            KeyValue::String(_) | KeyValue::Dump(_) => {}
        }
        out
    }

    #[test]
    fn canonical_lines_are_the_json_tree_form_byte_for_byte() {
        let b = |s: &[u8]| Blob::from_bytes(s.to_vec());
        let text = "{\"content\":\"Ada \u{00f6}\u{2014} \\ \t\x01 \u{1f600} \u{7f}\"}".as_bytes();
        let records = vec![
            KeyRecord { key: b(b"k:s"), pttl: Some(5), more: false, value: KeyValue::String(b(text)) },
            KeyRecord { key: b(b"k:\xff\x00bin"), pttl: None, more: false, value: KeyValue::String(b(&[0xff, 0, 7])) },
            KeyRecord {
                key: b(b"k:h"),
                pttl: None,
                more: false,
                value: KeyValue::Hash(vec![(b(b"f\"1"), b(text)), (b(&[0x80]), b(b""))]),
            },
            KeyRecord { key: b(b"k:l"), pttl: Some(1), more: false, value: KeyValue::List(vec![b(b"a"), b(&[0xfe])]) },
            KeyRecord { key: b(b"k:l"), pttl: None, more: true, value: KeyValue::List(vec![b(b"c")]) },
            KeyRecord { key: b(b"k:set"), pttl: None, more: false, value: KeyValue::Set(vec![b(b"m"), b(&[0xc3])]) },
            KeyRecord {
                key: b(b"k:z"),
                pttl: None,
                more: false,
                value: KeyValue::Zset(vec![(b(b"m1"), "-inf".into()), (b(&[0x00, 0xff]), "1.5e-300".into())]),
            },
            KeyRecord { key: b(b"k:z"), pttl: None, more: true, value: KeyValue::Zset(vec![(b(b"m2"), "inf".into())]) },
            KeyRecord { key: b(b"k:d"), pttl: Some(9), more: false, value: KeyValue::Dump(b(&[0, 1, 2, 0xff])) },
            KeyRecord { key: b(b"k:empty"), pttl: None, more: false, value: KeyValue::Hash(vec![]) },
        ];
        let (mut fast, mut index) = (CanonicalLines::default(), 0);
        let mut n = 0;
        for record in &records {
            let expected = canonical_by_tree(record, &mut index);
            let got = fast.of(record);
            n += got.len();
            for (g, e) in got.iter().zip(&expected) {
                assert_eq!(String::from_utf8_lossy(g), String::from_utf8_lossy(e));
            }
            assert_eq!(got, expected);
        }
        assert_eq!(n, 18);
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
