//! What is in a store: listing backups from their sidecars, and deleting them.

use super::restore::load_sidecar;
use crate::archive::Sidecar;
use crate::id::{BackupId, ARCHIVE_SUFFIX, SIDECAR_SUFFIX};
use crate::store::{get_bytes, ObjectMeta, ObjectStore};
use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Sidecars `list` reads at once.
const SIDECAR_READS: usize = 16;

/// One line of `ngbak list`.
#[derive(Clone, Debug, Serialize)]
pub struct BackupListing {
    pub backup_id: BackupId,
    pub created_at: Option<DateTime<Utc>>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub backends: Vec<String>,
    pub stats: BTreeMap<String, u64>,
    /// `complete`, or what is wrong (`no sidecar`, `unreadable sidecar`).
    pub status: String,
    /// Why the backup was taken, when it says (e.g. a safety backup before a restore).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether the stores held still and linked up (absent for older backups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<crate::archive::ConsistencySummary>,
}

/// Every backup in the store, newest first; archives without a readable sidecar are listed too,
/// flagged, so nothing hides.
pub async fn list_backups(store: &dyn ObjectStore) -> Result<Vec<BackupListing>> {
    list_backups_in(store, &store.list("").await?).await
}

/// [`list_backups`] from a listing of the store already made (`ngbak list` also looks for
/// leftovers in it).
pub async fn list_backups_in(store: &dyn ObjectStore, objects: &[ObjectMeta]) -> Result<Vec<BackupListing>> {
    let archives: BTreeSet<_> = objects.iter().filter_map(|o| BackupId::from_archive_key(&o.key)).collect();
    // A few sidecars read at once: a store of hundreds of backups lists in a second, not one
    // round trip after another. (The reads are made futures first: a closure over borrowed keys
    // would not make a future the Lambda runtime can send between threads.)
    let reads: Vec<_> = objects
        .iter()
        .filter_map(|o| {
            let id = o.key.strip_suffix(SIDECAR_SUFFIX).and_then(|s| s.parse::<BackupId>().ok())?;
            let key = o.key.clone();
            Some(async move { (id, get_bytes(store, &key).await) })
        })
        .collect();
    let mut read = futures::stream::iter(reads).buffered(SIDECAR_READS);
    let mut out = Vec::new();
    while let Some((id, bytes)) = read.next().await {
        let listing = match bytes.map(|b| serde_json::from_slice::<Sidecar>(&b)) {
            Ok(Ok(s)) => BackupListing {
                stats: totals(&s),
                backup_id: id.clone(),
                created_at: Some(s.manifest.created_at),
                size: Some(s.archive.size),
                sha256: Some(s.archive.sha256),
                backends: s.manifest.backends.keys().cloned().collect(),
                status: if archives.contains(&id) { "complete".into() } else { "archive missing".into() },
                reason: s.manifest.reason.clone(),
                consistency: s.manifest.consistency.clone(),
            },
            _ => bare(&id, "unreadable sidecar"),
        };
        out.push(listing);
    }
    for id in &archives {
        if !out.iter().any(|l| &l.backup_id == id) {
            let mut l = bare(id, "no sidecar (`ngbak import` it)");
            l.size = objects.iter().find(|o| o.key == format!("{id}{ARCHIVE_SUFFIX}")).map(|o| o.size);
            out.push(l);
        }
    }
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.backup_id.cmp(&a.backup_id)));
    Ok(out)
}

fn bare(id: &BackupId, status: &str) -> BackupListing {
    BackupListing {
        backup_id: id.clone(),
        created_at: None,
        size: None,
        sha256: None,
        backends: Vec::new(),
        stats: BTreeMap::new(),
        status: status.into(),
        reason: None,
        consistency: None,
    }
}

/// Statistics summed over backends.
fn totals(s: &Sidecar) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for b in s.manifest.backends.values() {
        for (k, v) in &b.stats {
            *out.entry(k.clone()).or_default() += v;
        }
    }
    out
}

/// Deletes a backup, archive and sidecar together (archive first: if the run stops between the two,
/// `list` shows the leftover sidecar as "archive missing" rather than hiding anything). Refuses a
/// backup under an S3 Object Lock.
pub async fn delete_backup(store: &dyn ObjectStore, id: &BackupId) -> Result<()> {
    let archive = store.head(&id.archive_key()).await?;
    let sidecar = store.head(&id.sidecar_key()).await?;
    if archive.is_none() && sidecar.is_none() {
        bail!("no backup {id} in {}", store.url());
    }
    if store.is_locked(&id.archive_key()).await? || store.is_locked(&id.sidecar_key()).await? {
        bail!("backup {id} is protected by an S3 Object Lock (retention or legal hold) and cannot be deleted yet");
    }
    store.delete(&id.archive_key()).await?;
    store.delete(&id.sidecar_key()).await?;
    store.delete(&id.report_key()).await?;
    Ok(())
}

/// The manifest of a backup, as stored in its sidecar.
pub async fn inspect(store: &dyn ObjectStore, id: &BackupId) -> Result<Sidecar> {
    load_sidecar(store, id).await
}
