//! Redis as the key-value store of a GraphRAG deployment, for the consistency check: the keys
//! `<prefix>:<namespace>:<id>` of the text chunks, full documents and community reports under
//! the configured patterns, read a SCAN batch at a time (values of one batch in memory).

use super::client::{ReadConnection, Scanner};
use super::reads::read_keys;
use super::record::KeyValue;
use crate::consistency::{Deployment, IdSink, KeySink, Layout, ReportSink};
use anyhow::Result;
use serde::Deserialize;

pub struct KvDeployment {
    url: String,
    patterns: Vec<String>,
    layout: Layout,
}

impl KvDeployment {
    pub fn new(url: &str, patterns: &[String], layout: &Layout) -> Self {
        KvDeployment { url: url.to_string(), patterns: patterns.to_vec(), layout: layout.clone() }
    }

    /// Hands the id and the string value of every key of `namespace` to `each`.
    async fn each_in(&self, namespace: &str, each: &mut (dyn FnMut(&str, &[u8]) + Send)) -> Result<()> {
        let rc = ReadConnection::open(&self.url).await?;
        let mut scanner = Scanner::new(&self.patterns);
        while let Some(keys) = scanner.next_batch(&rc).await? {
            let keys: Vec<Vec<u8>> = keys.into_iter().filter(|k| split(k).is_some_and(|(ns, _)| ns == namespace)).collect();
            if keys.is_empty() {
                continue;
            }
            let (records, _large) = read_keys(&rc, keys).await?;
            for record in records {
                let (KeyValue::String(value), Ok(key)) = (&record.value, record.key.bytes()) else { continue };
                let Some((_, id)) = split(&key) else { continue };
                each(id, &value.bytes()?);
            }
        }
        Ok(())
    }
}

/// `<prefix>:<namespace>:<id>` → (namespace, id).
fn split(key: &[u8]) -> Option<(&str, &str)> {
    let mut parts = std::str::from_utf8(key).ok()?.splitn(3, ':');
    let (_, namespace, id) = (parts.next()?, parts.next()?, parts.next()?);
    Some((namespace, id))
}

#[async_trait::async_trait]
impl Deployment for KvDeployment {
    async fn chunks(&mut self, each: &mut KeySink<'_>) -> Result<bool> {
        #[derive(Deserialize)]
        struct Chunk {
            full_doc_id: Option<String>,
        }
        let namespace = self.layout.chunks.clone();
        self.each_in(&namespace, &mut |id, value| {
            let doc = serde_json::from_slice::<Chunk>(value).ok().and_then(|c| c.full_doc_id);
            each(id, doc.as_deref());
        })
        .await?;
        Ok(true)
    }

    async fn docs(&mut self, each: &mut IdSink<'_>) -> Result<bool> {
        let namespace = self.layout.docs.clone();
        self.each_in(&namespace, &mut |id, _| each(id)).await?;
        Ok(true)
    }

    async fn reports(&mut self, each: &mut ReportSink<'_>) -> Result<bool> {
        #[derive(Deserialize)]
        struct Report {
            #[serde(default)]
            nodes: Vec<String>,
        }
        let namespace = self.layout.reports.clone();
        self.each_in(&namespace, &mut |id, value| {
            let nodes = serde_json::from_slice::<Report>(value).map(|r| r.nodes).unwrap_or_default();
            each(id, &nodes);
        })
        .await?;
        Ok(true)
    }
}
