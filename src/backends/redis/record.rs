//! The archive's Redis records: one key as one NDJSON line (`KeyRecord`), its canonical lines
//! for the content digest (FORMAT.md), and the 8-byte key hashes that remember keys seen.

use crate::backends::records::json_text;
use crate::backends::records::ndjson::MAX_LINE;
use crate::backends::namespace_stat;
use anyhow::{bail, Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;

/// Where a Redis backup's NDJSON parts live in the archive.
pub(crate) const FOLDER: &str = "kv/redis";

/// Bytes as they are in Redis: text when valid UTF-8, else base64. Read by hand (below): the
/// derived reader of an untagged enum copies every value into a buffer first, then tries each
/// form in turn.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Blob {
    Text(String),
    Binary { b64: String },
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(BlobVisitor)
    }
}

/// A string is text; a map is `{"b64": "…"}` (other fields ignored, as the derived reader did).
struct BlobVisitor;

impl<'de> serde::de::Visitor<'de> for BlobVisitor {
    type Value = Blob;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string, or {\"b64\": \"…\"}")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Blob, E> {
        Ok(Blob::Text(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> std::result::Result<Blob, E> {
        Ok(Blob::Text(v))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Blob, A::Error> {
        let mut b64 = None;
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*name {
                "b64" if b64.is_none() => b64 = Some(map.next_value::<String>()?),
                "b64" => return Err(serde::de::Error::duplicate_field("b64")),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        b64.map(|b64| Blob::Binary { b64 }).ok_or_else(|| serde::de::Error::missing_field("b64"))
    }
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

/// One key, as one NDJSON line (read by [`RecordVisitor`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
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

#[derive(Clone, Debug, PartialEq, Serialize)]
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

/// Canonical lines of several records in one buffer (one allocation per batch, not per line).
#[derive(Default)]
pub struct Lines {
    pub buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Lines {
    /// Lines written into `buf` (cleared), so a pooled buffer can be reused.
    pub fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        Lines { buf, ends: Vec::new() }
    }

    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.buf);
        self.ends.push(self.buf.len());
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(a, b)| &self.buf[a..b])
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }
}

/// The records of one NDJSON part, a line each, parsed by [`parse_record`] (a line longer than
/// a record may take is refused).
pub(crate) fn records<'a>(body: &'a [u8], path: &'a str) -> impl Iterator<Item = Result<KeyRecord>> + 'a {
    body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(move |line| {
        if line.len() > MAX_LINE {
            bail!("{path}: a line is longer than {} MiB, the most a record may take (FORMAT.md)", MAX_LINE >> 20);
        }
        parse_record(line, path)
    })
}

/// Parses one archived key and checks what a write would need (scores, base64).
pub(crate) fn parse_record(line: &[u8], entry: &str) -> Result<KeyRecord> {
    let record: KeyRecord = serde_json::from_slice(line).with_context(|| format!("bad record in {entry}"))?;
    record.key.bytes().with_context(|| format!("bad key in {entry}"))?;
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

/// Reads a record line as it is written: `type` first, then `value`, read straight into its
/// type. A derived reader of the flattened, adjacently tagged value buffered every line into an
/// intermediate tree first; with every record of a restore read twice, that was a tenth of its
/// time. A line with `value` before `type` (not one ngbak writes) goes through a tree.
impl<'de> Deserialize<'de> for KeyRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_map(RecordVisitor)
    }
}

const KINDS: &[&str] = &["string", "hash", "list", "set", "zset", "dump"];

struct RecordVisitor;

impl<'de> serde::de::Visitor<'de> for RecordVisitor {
    type Value = KeyRecord;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Redis record (key, type, value)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<KeyRecord, A::Error> {
        use serde::de::Error;
        let (mut key, mut pttl, mut more, mut kind) = (None, None, None, None::<String>);
        let (mut value, mut early) = (None, None::<serde_json::Value>);
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*name {
                "key" if key.is_none() => key = Some(map.next_value::<Blob>()?),
                "pttl" if pttl.is_none() => pttl = Some(map.next_value::<Option<i64>>()?),
                "more" if more.is_none() => more = Some(map.next_value::<bool>()?),
                "type" if kind.is_none() => {
                    let k = map.next_value::<std::borrow::Cow<'de, str>>()?;
                    if !KINDS.contains(&&*k) {
                        return Err(A::Error::unknown_variant(&k, KINDS));
                    }
                    kind = Some(k.into_owned());
                }
                "value" if value.is_none() && early.is_none() => match &kind {
                    Some(k) => value = Some(map.next_value_seed(ValueOf(k))?),
                    None => early = Some(map.next_value()?),
                },
                "key" | "pttl" | "more" | "type" | "value" => return Err(A::Error::custom(format!("duplicate field `{name}`"))),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let kind = kind.ok_or_else(|| A::Error::missing_field("type"))?;
        let value = match (value, early) {
            (Some(v), _) => v,
            (None, Some(tree)) => serde::de::DeserializeSeed::deserialize(ValueOf(&kind), tree).map_err(A::Error::custom)?,
            (None, None) => return Err(A::Error::missing_field("value")),
        };
        let key = key.ok_or_else(|| A::Error::missing_field("key"))?;
        Ok(KeyRecord { key, pttl: pttl.flatten(), more: more.unwrap_or(false), value })
    }
}

/// Reads a value of the named type.
struct ValueOf<'k>(&'k str);

impl<'de> serde::de::DeserializeSeed<'de> for ValueOf<'_> {
    type Value = KeyValue;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<KeyValue, D::Error> {
        Ok(match self.0 {
            "string" => KeyValue::String(Blob::deserialize(d)?),
            "hash" => KeyValue::Hash(Vec::deserialize(d)?),
            "list" => KeyValue::List(Vec::deserialize(d)?),
            "set" => KeyValue::Set(Vec::deserialize(d)?),
            "zset" => KeyValue::Zset(Vec::deserialize(d)?),
            "dump" => KeyValue::Dump(Blob::deserialize(d)?),
            other => return Err(serde::de::Error::unknown_variant(other, KINDS)),
        })
    }
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
pub(crate) const MAX_PRESIZED_KEYS: u64 = 1 << 20;

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

    /// Any bytes, mostly printable with stray high bytes and escapes (text or base64 then).
    fn any_blob() -> impl proptest::strategy::Strategy<Value = Blob> {
        use proptest::prelude::*;
        proptest::collection::vec(prop_oneof![6 => 0x20u8..0x7f, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => any::<u8>()], 0..40)
            .prop_map(Blob::from_bytes)
    }

    fn any_record() -> impl proptest::strategy::Strategy<Value = KeyRecord> {
        use proptest::collection::vec;
        use proptest::prelude::*;
        let score = prop_oneof![Just("inf".to_string()), Just("-inf".to_string()), any::<f64>().prop_filter("a number", |f| !f.is_nan()).prop_map(|f| f.to_string())];
        let value = prop_oneof![
            any_blob().prop_map(KeyValue::String),
            vec((any_blob(), any_blob()), 0..4).prop_map(KeyValue::Hash),
            vec(any_blob(), 0..4).prop_map(KeyValue::List),
            vec(any_blob(), 0..4).prop_map(KeyValue::Set),
            vec((any_blob(), score), 0..4).prop_map(KeyValue::Zset),
            any_blob().prop_map(KeyValue::Dump),
        ];
        (any_blob(), proptest::option::of(any::<i64>()), any::<bool>(), value)
            .prop_map(|(key, pttl, more, value)| KeyRecord { key, pttl, more, value })
    }

    proptest::proptest! {
        /// The hand-written reader of a record line gives the record that was written, from the
        /// line or from a JSON tree, whatever the bytes, types and flags; and it does not depend
        /// on the fields' order.
        #[test]
        fn record_lines_read_back_as_written(record in any_record()) {
            let line = serde_json::to_vec(&record).unwrap();
            proptest::prop_assert_eq!(&read_record(&line).unwrap(), &record);
            let tree: serde_json::Value = serde_json::from_slice(&line).unwrap();
            proptest::prop_assert_eq!(&serde_json::from_value::<KeyRecord>(tree).unwrap(), &record);
            let mut tree: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&line).unwrap();
            let value = tree.remove("value").unwrap();
            let mut reordered = serde_json::Map::new();
            reordered.insert("value".into(), value);
            reordered.append(&mut tree);
            reordered.insert("unknown".into(), serde_json::json!([1, {"b64": 2}]));
            let reordered = serde_json::to_vec(&reordered).unwrap();
            proptest::prop_assert_eq!(&read_record(&reordered).unwrap(), &record);
        }
    }

    fn read_record(line: &[u8]) -> serde_json::Result<KeyRecord> {
        serde_json::from_slice(line)
    }

    #[test]
    fn malformed_record_lines_are_refused() {
        for line in [
            &br#"{"key":"k","type":"strin","value":"v"}"#[..],
            br#"{"key":"k","type":"string"}"#,
            br#"{"key":"k","value":"v"}"#,
            br#"{"key":{"b46":"AA=="},"type":"string","value":"v"}"#,
            br#"{"key":"k","type":"hash","value":"v"}"#,
            br#"{"key":"k","type":"string","value":"v""#,
            br#"{"key":"k","type":"string","value":"v","pttl":"soon"}"#,
        ] {
            assert!(read_record(line).is_err(), "{}", String::from_utf8_lossy(line));
            let tree = serde_json::from_slice::<serde_json::Value>(line);
            assert!(tree.map_or(true, |t| serde_json::from_value::<KeyRecord>(t).is_err()), "{}", String::from_utf8_lossy(line));
        }
        let escaped = br#"{"key":"k","type":"string","value":"v"}"#;
        assert_eq!(read_record(escaped).unwrap().value, KeyValue::String(Blob::Text("v".into())));
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
