//! Backends: each one exports its data as archive entries and restores them.
//!
//! The pipeline knows only the two traits below; a backend is one more implementation of them.

pub mod jsonkv;
pub mod ndjson;
pub mod neo4j;
pub mod qdrant;
pub mod redis;
mod redis_writes;

use crate::archive::{BackendManifest, EntryBody, EntryRecord, PendingEntry};
use anyhow::{anyhow, Result};
use async_trait::async_trait;
use std::collections::BTreeMap;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;

pub use ndjson::NdjsonParts;

/// Reads one backend and hands its data to the archive writer as entries.
#[async_trait]
pub trait Exporter: Send {
    /// The backend's name in the archive: `redis`, `jsonkv`, `neo4j`, `qdrant`.
    fn name(&self) -> &'static str;
    /// `kv`, `graph` or `vector`.
    fn kind(&self) -> &'static str;
    /// Exports everything through `out`; returns the backend's part of the manifest.
    async fn export(&mut self, out: &EntrySender) -> Result<BackendManifest>;
}

/// Writes one backend's entries back into it.
#[async_trait]
pub trait Restorer: Send {
    fn name(&self) -> &'static str;
    /// Where the data goes (credentials redacted), for reports.
    fn target(&self) -> String;
    /// Called once the archive has been verified, before the first entry (e.g. to clear the
    /// target in `replace` mode).
    async fn prepare(&mut self, backend: &BackendManifest) -> Result<()>;
    /// Restores one entry; the caller checks its hash as it is read.
    async fn restore_entry(&mut self, entry: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()>;
    /// Flushes what is pending and returns what was written, by the manifest's statistic names.
    async fn finish(&mut self) -> Result<BTreeMap<String, u64>>;
}

/// How a restore treats what is already in the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreMode {
    /// Upsert: what the archive holds overwrites, everything else stays.
    #[default]
    Merge,
    /// Make the target equal to the archive: also delete what the archive does not hold.
    Replace,
}

/// The exporters' way into the archive writer: a bounded channel, so a fast backend waits for
/// the writer instead of piling parts up in memory.
#[derive(Clone)]
pub struct EntrySender {
    tx: mpsc::Sender<PendingEntry>,
    backend: &'static str,
    /// Target size of one NDJSON part.
    pub part_bytes: usize,
}

impl EntrySender {
    pub fn new(tx: mpsc::Sender<PendingEntry>, backend: &'static str, part_bytes: usize) -> Self {
        EntrySender { tx, backend, part_bytes }
    }

    pub async fn send(&self, path: String, records: u64, body: EntryBody) -> Result<()> {
        let entry = PendingEntry { path, backend: self.backend.to_string(), records, body };
        self.tx.send(entry).await.map_err(|_| anyhow!("the archive writer stopped (see the error above)"))
    }

    /// Bounded NDJSON parts under `folder` (e.g. `kv/redis`).
    pub fn ndjson(&self, folder: &str) -> NdjsonParts<'_> {
        NdjsonParts::new(self, folder)
    }
}

/// nano-graphrag's namespaces and the manifest statistic each one feeds.
pub fn namespace_stat(namespace: &str) -> Option<&'static str> {
    match namespace {
        "full_docs" => Some("documents"),
        "text_chunks" => Some("chunks"),
        "community_reports" => Some("community_reports"),
        "llm_response_cache" => Some("cache_entries"),
        _ => None,
    }
}

/// `scheme://user:password@host` → `scheme://user:***@host`, for logs and manifests.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((auth, host)) => {
                let user = auth.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_reports() {
        assert_eq!(redact_url("redis://:s3cret@cache:6379/0"), "redis://:***@cache:6379/0");
        assert_eq!(redact_url("bolt://neo4j:pw@db:7687"), "bolt://neo4j:***@db:7687");
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
    }
}
