//! Redis as the key-value store of a GraphRAG deployment, for the consistency check: the keys
//! `<prefix>:<namespace>:<id>` of the text chunks, full documents and community reports under
//! the configured patterns, in one SCAN per walk (values of one batch in memory; a document's
//! value is never read, its key is the fact). [`facts_of_key`] also reads an archive's records.

use super::client::{ReadConnection, Scanner};
use super::reads::read_keys;
use super::record::KeyValue;
use crate::consistency::{Deployment, Fact, FactSink, Kind, Layout, Store, Want};
use anyhow::Result;
use serde::Deserialize;
use std::collections::BTreeSet;

pub struct KvDeployment {
    url: String,
    patterns: Vec<String>,
    layout: Layout,
}

impl KvDeployment {
    pub fn new(url: &str, patterns: &[String], layout: &Layout) -> Self {
        KvDeployment { url: url.to_string(), patterns: patterns.to_vec(), layout: layout.clone() }
    }
}

/// The fact kind of a key's namespace under `layout`, and the key's id.
fn kind_of<'k>(key: &'k [u8], layout: &Layout) -> Option<(Kind, &'k str)> {
    let mut parts = std::str::from_utf8(key).ok()?.splitn(3, ':');
    let (_, namespace, id) = (parts.next()?, parts.next()?, parts.next()?);
    let kind = if namespace == layout.chunks {
        Kind::Chunk
    } else if namespace == layout.docs {
        Kind::Doc
    } else if namespace == layout.reports {
        Kind::Report
    } else {
        return None;
    };
    Some((kind, id))
}

/// Hands the fact that the string key `key` with `value` is, when `want` asks for its kind.
pub fn facts_of_key(layout: &Layout, key: &[u8], value: &[u8], want: &Want, each: &mut FactSink<'_>) {
    #[derive(Deserialize)]
    struct Chunk {
        full_doc_id: Option<String>,
    }
    #[derive(Deserialize)]
    struct Report {
        #[serde(default)]
        nodes: Vec<String>,
    }
    let Some((kind, id)) = kind_of(key, layout).filter(|(kind, _)| want.0.contains(kind)) else { return };
    match kind {
        Kind::Chunk => {
            let doc = serde_json::from_slice::<Chunk>(value).ok().and_then(|c| c.full_doc_id);
            each(Fact::Chunk { key: id, full_doc_id: doc.as_deref() });
        }
        Kind::Doc => each(Fact::Doc { key: id }),
        _ => {
            let members = serde_json::from_slice::<Report>(value).map(|r| r.nodes).unwrap_or_default();
            each(Fact::Report { key: id, members: &members });
        }
    }
}

#[async_trait::async_trait]
impl Deployment for KvDeployment {
    /// The namespaces are always there: a namespace without keys is an empty store.
    async fn stores(&mut self) -> Result<BTreeSet<Store>> {
        Ok([Store::Chunks, Store::Docs, Store::Reports].into())
    }

    async fn walk(&mut self, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
        if !want.any(&[Kind::Chunk, Kind::Doc, Kind::Report]) {
            return Ok(());
        }
        let rc = ReadConnection::open(&self.url).await?;
        let mut scanner = Scanner::new(&self.patterns);
        while let Some(keys) = scanner.next_batch(&rc).await? {
            // Documents are facts by their keys alone; chunks and reports need their values.
            let mut valued = Vec::new();
            for key in keys {
                match kind_of(&key, &self.layout).filter(|(kind, _)| want.0.contains(kind)) {
                    Some((Kind::Doc, id)) => each(Fact::Doc { key: id }),
                    Some(_) => valued.push(key),
                    None => {}
                }
            }
            if valued.is_empty() {
                continue;
            }
            let (records, _large) = read_keys(&rc, valued).await?;
            for record in records {
                let (KeyValue::String(value), Ok(key)) = (&record.value, record.key.bytes()) else { continue };
                facts_of_key(&self.layout, &key, &value.bytes()?, want, each);
            }
        }
        Ok(())
    }
}

/// The key-value namespaces in the archive's Redis entries (`kv/redis/*.ndjson`, one key per
/// line), as facts.
pub struct ArchivedKv {
    layout: Layout,
}

impl ArchivedKv {
    pub fn new(layout: &Layout) -> Self {
        ArchivedKv { layout: layout.clone() }
    }
}

impl crate::consistency::ArchivedFacts for ArchivedKv {
    /// Every Redis entry may hold any of the namespaces.
    fn stores_of(&self, path: &str) -> Vec<Store> {
        match path.starts_with("kv/redis/") {
            true => vec![Store::Chunks, Store::Docs, Store::Reports],
            false => Vec::new(),
        }
    }

    fn entry(&mut self, path: &str, body: &mut dyn std::io::Read, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
        use anyhow::Context;
        use std::io::BufRead;
        if !want.any(&[Kind::Chunk, Kind::Doc, Kind::Report]) {
            return Ok(());
        }
        for line in std::io::BufReader::new(body).lines() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            let record: super::record::KeyRecord =
                serde_json::from_str(&line).with_context(|| format!("a record of {path}"))?;
            if let (KeyValue::String(value), Ok(key)) = (&record.value, record.key.bytes()) {
                facts_of_key(&self.layout, &key, &value.bytes()?, want, each);
            }
        }
        Ok(())
    }
}
