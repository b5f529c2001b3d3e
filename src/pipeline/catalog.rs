//! What is in a store: listing backups from their sidecars, and deleting them.

use crate::archive::{Sidecar, StoredSidecar};
use crate::authenticity::{Provenance, Trust, MAX_SIGNATURE_BYTES};
use crate::failure::FailureKind;
use crate::id::{BackupId, ARCHIVE_SUFFIX, SIDECAR_SUFFIX};
use crate::store::{get_bytes, get_within, ObjectMeta, ObjectStore};
use anyhow::{bail, Context, Result};
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
    /// How long the backup took (from its creation to its completion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
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
    /// Who signed it, as the trusted keys tell (absent without a readable sidecar).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Provenance>,
    /// The recipients an encrypted archive is encrypted to (its counts and backends are sealed
    /// then, unless kept readable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_to: Option<Vec<String>>,
}

/// Every backup in the store, newest first; archives without a readable sidecar are listed too,
/// flagged, so nothing hides.
pub async fn list_backups(store: &dyn ObjectStore, trust: &Trust) -> Result<Vec<BackupListing>> {
    list_backups_in(store, &store.list("").await?, trust).await
}

/// [`list_backups`] from a listing of the store already made (`ngbak list` also looks for
/// leftovers in it).
pub async fn list_backups_in(
    store: &dyn ObjectStore,
    objects: &[ObjectMeta],
    trust: &Trust,
) -> Result<Vec<BackupListing>> {
    let archives: BTreeSet<_> = objects.iter().filter_map(|o| BackupId::from_archive_key(&o.key)).collect();
    let signed: BTreeSet<&str> = objects.iter().map(|o| o.key.as_str()).filter(|k| k.ends_with(".minisig")).collect();
    // A few sidecars read at once: a store of hundreds of backups lists in a second, not one
    // round trip after another. (The reads are made futures first: a closure over borrowed keys
    // would not make a future the Lambda runtime can send between threads.)
    let reads: Vec<_> = objects
        .iter()
        .filter_map(|o| {
            let id = o.key.strip_suffix(SIDECAR_SUFFIX).and_then(|s| s.parse::<BackupId>().ok())?;
            let key = o.key.clone();
            let has_signature = signed.contains(id.signature_key().as_str());
            Some(async move {
                let signature = match has_signature {
                    true => get_within(store, &id.signature_key(), MAX_SIGNATURE_BYTES).await.ok().map(|s| s.1),
                    false => None,
                };
                (id, get_bytes(store, &key).await, signature)
            })
        })
        .collect();
    let mut read = futures::stream::iter(reads).buffered(SIDECAR_READS);
    let mut out = Vec::new();
    while let Some((id, bytes, signature)) = read.next().await {
        let status = if archives.contains(&id) { "complete" } else { "archive missing" };
        let listing = match bytes.map(|b| (StoredSidecar::parse(&b), b)) {
            Ok((Ok(StoredSidecar::Sealed(s)), b)) => BackupListing {
                signature: Some(trust.examine(&id, &b, &s.archive.sha256, signature.as_deref())),
                backup_id: id.clone(),
                created_at: Some(s.created_at),
                seconds: Some(took(s.created_at, s.completed_at)),
                size: Some(s.archive.size),
                sha256: Some(s.archive.sha256.clone()),
                backends: Vec::new(),
                stats: BTreeMap::new(),
                status: status.into(),
                reason: s.reason.clone(),
                consistency: None,
                encrypted_to: Some(s.encryption.recipients.clone()),
            },
            Ok((Ok(StoredSidecar::Open(s)), b)) => BackupListing {
                signature: Some(trust.examine(&id, &b, &s.archive.sha256, signature.as_deref())),
                encrypted_to: s.encryption.as_ref().map(|e| e.recipients.clone()),
                stats: totals(&s),
                backup_id: id.clone(),
                created_at: Some(s.manifest.created_at),
                seconds: Some(took(s.manifest.created_at, s.manifest.completed_at)),
                size: Some(s.archive.size),
                sha256: Some(s.archive.sha256),
                backends: s.manifest.backends.keys().cloned().collect(),
                status: status.into(),
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
        seconds: None,
        size: None,
        sha256: None,
        backends: Vec::new(),
        stats: BTreeMap::new(),
        status: status.into(),
        reason: None,
        consistency: None,
        signature: None,
        encrypted_to: None,
    }
}

/// Seconds from `start` to `end`.
fn took(start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
    (end - start).num_milliseconds() as f64 / 1000.0
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

/// Whether the store holds backup `id` in any part (its sidecar or its archive).
pub async fn exists(store: &dyn ObjectStore, id: &BackupId) -> Result<bool> {
    Ok(store.head(&id.sidecar_key()).await?.is_some() || store.head(&id.archive_key()).await?.is_some())
}

/// The sidecar as stored (open, or sealed when the archive is encrypted) and its exact bytes
/// (what a signature is over).
pub async fn load_stored(store: &dyn ObjectStore, id: &BackupId) -> Result<(StoredSidecar, Vec<u8>)> {
    let bytes = match get_bytes(store, &id.sidecar_key()).await {
        Ok(b) => b,
        Err(e) => {
            if store.head(&id.sidecar_key()).await.ok().flatten().is_some() {
                return Err(e.context(format!("reading the sidecar of backup {id}")));
            }
            if store.head(&id.archive_key()).await.ok().flatten().is_some() {
                return Err(FailureKind::BackupNotFound
                    .marked(format!(
                        "no sidecar: backup {id} has an archive in {} but no sidecar {} (uploaded by hand, or a \
                         backup that did not finish). Nothing was restored. Run `ngbak --store {} import {id}` to \
                         verify the archive against its own manifest and write its sidecar, then restore (or tag) \
                         it again",
                        store.url(),
                        id.sidecar_key(),
                        store.url()
                    ))
                    .into());
            }
            let missing = format!("no backup {id} in {} (run `ngbak list` to see the backups there)", store.url());
            return Err(FailureKind::BackupNotFound.marked(missing).into());
        }
    };
    let sidecar = StoredSidecar::parse(&bytes)
        .with_context(|| format!("the sidecar {} is not a valid ngbak manifest", id.sidecar_key()))?;
    if sidecar.backup_id() != id || sidecar.archive().key != id.archive_key() {
        let message = format!("the sidecar {} describes backup {}, not {id}", id.sidecar_key(), sidecar.backup_id());
        return Err(FailureKind::IntegrityError.marked(message).into());
    }
    Ok((sidecar, bytes))
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
    store.delete(&id.signature_key()).await?;
    store.delete(&id.report_key()).await?;
    Ok(())
}

/// The manifest of a backup, as stored in its sidecar, and who signed it (never refused: an
/// operator inspects a backup to find out). An encrypted backup's sidecar is shown opened when
/// the identities open it, else as stored (what it keeps readable).
pub async fn inspect(store: &dyn ObjectStore, id: &BackupId, trust: &Trust) -> Result<(serde_json::Value, Provenance)> {
    let (stored, bytes) = load_stored(store, id).await?;
    let signature = match crate::authenticity::read_signature(store, id).await {
        Ok(signature) => signature,
        Err(e) => Some(format!("unreadable: {e:#}").into_bytes()),
    };
    let provenance = trust.examine(id, &bytes, &stored.archive().sha256, signature.as_deref());
    let shown = match stored {
        StoredSidecar::Sealed(sealed) if trust.identities.is_empty() => serde_json::to_value(&sealed)?,
        stored => serde_json::to_value(stored.open(&trust.identities)?)?,
    };
    Ok((shown, provenance))
}
