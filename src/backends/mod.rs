//! Backends: each one exports its data as archive entries and restores them.
//!
//! Every backend is a folder with the same rooms: `mod.rs` (what it is: its settings group,
//! its [`Descriptor`], its probe and secrets), `export.rs`, `restore.rs`, `readback.rs` (the
//! proof that a restore equals the archive), and its protocol's client where it needs one. The
//! pipeline knows only the [`Exporter`] and [`Restorer`] traits; the hosts know only [`Backend`]
//! and the list below. Adding a backend: its folder, and one line in `register_backends!`.

#[macro_use]
mod registry;
pub mod descriptor;
pub mod records;

register_backends! {
    redis => redis::RedisArgs, registry::NoRestoreArgs;
    workdir => workdir::WorkdirArgs, registry::NoRestoreArgs;
    neo4j => neo4j::Neo4jArgs, registry::NoRestoreArgs;
    qdrant => qdrant::QdrantArgs, qdrant::QdrantRestoreArgs;
}

pub use descriptor::{set, Backend, Descriptor};

use crate::archive::{BackendManifest, EntryBody, EntryRecord, PendingEntry};
use anyhow::{anyhow, Result};
use async_trait::async_trait;
use std::collections::BTreeMap;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;

pub use records::ndjson::NdjsonParts;

/// Reads one backend and hands its data to the archive writer as entries.
#[async_trait]
pub trait Exporter: Send {
    /// The backend's name in the archive: `redis`, `jsonkv`, `neo4j`, `qdrant`.
    fn name(&self) -> &'static str;
    /// `kv`, `graph` or `vector`.
    fn kind(&self) -> &'static str;
    /// Exports everything through `out`; returns the backend's part of the manifest. May be
    /// called again on the same exporter (a `--consistent` backup exports until the stores hold
    /// still).
    async fn export(&mut self, out: &EntrySender) -> Result<BackendManifest>;
    /// A cheap mark of the backend's state (counts, a write counter), taken before the export
    /// and after it to notice writes during it; `None` when the backend cannot take one (e.g.
    /// its user may not run the commands). An error means the backend cannot be reached: before
    /// the export, it fails the backup.
    async fn state_mark(&mut self) -> Result<Option<crate::consistency::state::StateMark>> {
        Ok(None)
    }
    /// After the export: `Some` when it held nothing (no key under the patterns, no
    /// nano-graphrag file, no node in scope, a collection without points), saying what the
    /// backend holds instead, so that a wrong pattern or path is seen at once and not at the
    /// next restore.
    async fn emptiness(&mut self, _exported: &BackendManifest) -> Result<Option<String>> {
        Ok(None)
    }
}

/// Receives canonical records (FORMAT.md), one at a time, to add them to a content digest.
pub type RecordSink<'a> = dyn for<'r> FnMut(&'r [u8]) + Send + 'a;

/// Writes one backend's entries back into it, and proves afterwards what it wrote.
///
/// The pipeline calls, in order: `preflight` (connect and check the target; nothing written),
/// `check_entry` for every entry during the verification pass, then `prepare`, `restore_entry`
/// for every entry, `finish`, `read_back`, and `cleanup` — the last also after any failure.
#[async_trait]
pub trait Restorer: Send {
    fn name(&self) -> &'static str;
    /// Where the data goes (credentials redacted), for reports.
    fn target(&self) -> String;
    /// Checks that the target can take *this archive* (server and format versions, modes), before
    /// anything is written. Whether every backend and the store answer at all is
    /// [`crate::check::preflight`]'s job, run first by the CLI and the functions alike.
    async fn preflight(&mut self, _backend: &BackendManifest) -> Result<()> {
        Ok(())
    }
    /// Parses one entry with the same code the write pass uses, without writing, and hands each
    /// record's canonical form (FORMAT.md) to `each`: a record that could not be written fails
    /// here, before any backend is touched.
    async fn check_entry(
        &mut self,
        _entry: &EntryRecord,
        _body: &mut (dyn AsyncRead + Send + Unpin),
        _each: &mut RecordSink<'_>,
    ) -> Result<()> {
        Ok(())
    }
    /// The verification pass's check of one entry on a thread of the restorer's own, so the
    /// reader goes on meanwhile: `Ok(true)` when it was queued (its records' digest then comes
    /// from [`Restorer::checked_digest`]); `Ok(false)`, the default, when the caller is to call
    /// `check_entry`. A bad record is reported by `checked_digest`.
    async fn queue_check(&mut self, _entry: &EntryRecord, _body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<bool> {
        Ok(false)
    }
    /// After the verification pass: waits for the entries queued by `queue_check` to be checked,
    /// and returns the digest of their records; `None` when none was queued.
    async fn checked_digest(&mut self) -> Result<Option<crate::archive::ContentDigest>> {
        Ok(None)
    }
    /// Called once the archive has been verified, before the first entry (e.g. to clear the
    /// target in `replace` mode).
    async fn prepare(&mut self, backend: &BackendManifest) -> Result<()>;
    /// Restores one entry; the caller checks its hash as it is read.
    async fn restore_entry(&mut self, entry: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()>;
    /// Restores one entry the reader has already read whole and checked against its hash. By
    /// default as [`Restorer::restore_entry`]; a restorer that keeps the bytes takes them as they
    /// are instead of copying them.
    async fn restore_checked(&mut self, entry: &EntryRecord, bytes: Vec<u8>) -> Result<()> {
        self.restore_entry(entry, &mut &bytes[..]).await
    }
    /// Flushes what is pending and returns what was written, by the manifest's statistic names.
    async fn finish(&mut self) -> Result<BTreeMap<String, u64>>;
    /// Reads back what this restore wrote (in `replace` mode: the whole scope) and hands each
    /// record's canonical form to `each`. `Ok(false)` when the backend cannot read back.
    async fn read_back(&mut self, _each: &mut RecordSink<'_>) -> Result<bool> {
        Ok(false)
    }
    /// An exporter of exactly what this restore may overwrite (same target, same scope), for the
    /// safety backup taken before a restore writes; `None` when the target holds nothing yet.
    /// Called after `preflight`.
    async fn safety_exporter(&mut self) -> Result<Option<Box<dyn Exporter>>> {
        Ok(None)
    }
    /// Removes what only the restore needed (temporary keys, indexes, uploaded files). Runs after
    /// success and after failure; must be safe to call when nothing was prepared.
    async fn cleanup(&mut self) -> Result<()> {
        Ok(())
    }
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

/// Credentials hidden, for logs, reports and manifests (see [`crate::net::redact`]).
pub use crate::net::redact_url;

/// What the registered backend called `name` is, if this ngbak knows it.
pub fn describe(name: &str) -> Option<&'static Descriptor> {
    descriptors().into_iter().find(|d| d.name == name)
}
