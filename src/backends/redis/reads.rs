//! Reading keys whole or in pages: one batch of keys in as few round trips as their types need,
//! and large collections page by page.

use super::client::ReadConnection;
use super::record::{key_hash, Blob, KeyHashes, KeyRecord, KeyValue};
use anyhow::{anyhow, bail, Result};
use redis::Value;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

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
}
