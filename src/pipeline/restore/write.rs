//! The writing pass: the archive read again (pinned to the verified version), each entry handed
//! to its backend's restorer, each backend prepared right before its first entry; then each
//! restorer finishes. A failure after the first write says what was written.

use super::report::{Applied, BackendReport, PartialRestore};
use super::verify::Verified;
use crate::archive::reader::{read_archive, EntryVisitor};
use crate::archive::EntryRecord;
use crate::backends::Restorer;
use crate::id::BackupId;
use crate::stop::or_stop;
use anyhow::{Context, Result};
use async_trait::async_trait;
use std::collections::BTreeMap;
use tokio::io::AsyncRead;

/// Writes every selected backend and records what each restored in `backends`. An error says
/// which backends had been written to, since the targets are then partly restored.
pub(super) async fn write_pass(
    verified: &Verified<'_>,
    restorers: &mut [Box<dyn Restorer>],
    backends: &mut BTreeMap<String, BackendReport>,
    safety: Option<&BackupId>,
) -> Result<()> {
    let Verified { store, id, sidecar, etag } = *verified;
    let manifest = &sidecar.manifest;
    let object = match or_stop(store.get(&id.archive_key(), etag)).await {
        Ok(o) => o,
        Err(e) => return Err(e.context("re-reading the verified archive; nothing was written")),
    };
    let mut dispatch = Dispatch { restorers: &mut *restorers, manifest, progress: BTreeMap::new() };
    let mut written = or_stop(read_archive(object.body, sidecar, &mut dispatch)).await.map(|_| ());
    if written.is_ok() {
        written = or_stop(dispatch.prepare_rest()).await;
    }
    let progress = std::mem::take(&mut dispatch.progress);
    let targets: Vec<(&'static str, String)> = restorers.iter().map(|r| (r.name(), r.target())).collect();
    let partial = |e: anyhow::Error| e.context(PartialRestore::new(id, manifest, &targets, &progress, safety));
    if let Err(e) = written {
        return Err(partial(e));
    }
    for r in restorers.iter_mut() {
        let name = r.name();
        let restored = match or_stop(r.finish()).await {
            Ok(s) => s,
            Err(e) => return Err(partial(e.context(format!("finishing the {name} restore")))),
        };
        tracing::info!(backend = name, ?restored, "backend restored");
        backends.get_mut(name).expect("inserted above").restored = restored;
    }
    Ok(())
}

/// Hands each entry to the restorer of its backend (entries of other backends are only read),
/// preparing a backend — clearing it, in `replace` mode — right before its first entry, so a
/// failure earlier in the archive leaves the backends after it untouched.
struct Dispatch<'a> {
    restorers: &'a mut [Box<dyn Restorer>],
    manifest: &'a crate::archive::Manifest,
    /// What each backend prepared so far has taken (it may hold part of the backup).
    progress: BTreeMap<&'static str, Applied>,
}

impl Dispatch<'_> {
    async fn prepare(&mut self, index: usize) -> Result<()> {
        let name = self.restorers[index].name();
        if self.progress.contains_key(name) {
            return Ok(());
        }
        self.progress.insert(name, Applied::default());
        let backend = &self.manifest.backends[name];
        self.restorers[index].prepare(backend).await.with_context(|| format!("preparing {name} for restore"))
    }

    /// The restorer of the entry's backend, prepared; `None` for a backend not restored.
    async fn ready_for(&mut self, record: &EntryRecord) -> Result<Option<usize>> {
        let Some(i) = self.restorers.iter().position(|r| r.name() == record.backend) else { return Ok(None) };
        self.prepare(i).await?;
        Ok(Some(i))
    }

    /// Counts an entry handed to restorer `i`, or says which entry failed where.
    fn applied(&mut self, i: usize, record: &EntryRecord, written: Result<()>) -> Result<()> {
        let name = self.restorers[i].name();
        written.with_context(|| format!("restoring {} into {name}", record.path))?;
        let applied = self.progress.get_mut(name).expect("prepared before its first entry");
        applied.entries += 1;
        applied.records += record.records;
        crate::progress::records_written(name, record.records);
        Ok(())
    }

    /// Prepares the backends that had no entry (a `replace` restore of an empty backup still
    /// clears them).
    async fn prepare_rest(&mut self) -> Result<()> {
        for i in 0..self.restorers.len() {
            self.prepare(i).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl EntryVisitor for Dispatch<'_> {
    async fn visit(&mut self, record: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        let Some(i) = self.ready_for(record).await? else { return Ok(()) };
        let written = self.restorers[i].restore_entry(record, body).await;
        self.applied(i, record, written)
    }

    async fn visit_checked(&mut self, record: &EntryRecord, bytes: Vec<u8>) -> Result<()> {
        let Some(i) = self.ready_for(record).await? else { return Ok(()) };
        let written = self.restorers[i].restore_checked(record, bytes).await;
        self.applied(i, record, written)
    }

    fn checks_before_visit(&self) -> bool {
        true
    }
}
