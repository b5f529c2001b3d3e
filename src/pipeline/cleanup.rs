//! Leftovers of runs that were killed before they could clean up: pending uploads (S3 keeps and
//! bills their parts until they are aborted) and expired locks. `ngbak list` shows them;
//! `ngbak cleanup` removes them, never touching what a live run still holds.

use crate::id::{BackupId, ARCHIVE_SUFFIX};
use crate::store::lock::{self, LockInfo};
use crate::store::{ObjectMeta, ObjectStore, PendingUpload};
use anyhow::Result;
use chrono::Utc;
use serde::Serialize;
use std::time::Duration;

/// A pending upload and whether a live run may still be writing it.
#[derive(Clone, Debug, Serialize)]
pub struct Pending {
    #[serde(flatten)]
    pub upload: PendingUpload,
    /// Why it is left alone, when it is (its backup's lock is held, or it is too recent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_because: Option<String>,
}

/// What is left behind in a store.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Leftovers {
    pub pending_uploads: Vec<Pending>,
    pub locks: Vec<LockInfo>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.pending_uploads.is_empty() && self.locks.is_empty()
    }
}

/// Finds pending uploads and locks. An upload is kept (not a leftover to remove) while the lock
/// of the backup writing it is live, or when it started less than `min_age` ago.
pub async fn find(store: &dyn ObjectStore, min_age: Duration) -> Result<Leftovers> {
    find_in(store, &store.list("").await?, min_age).await
}

/// [`find`] from a listing of the store already made.
pub async fn find_in(store: &dyn ObjectStore, objects: &[ObjectMeta], min_age: Duration) -> Result<Leftovers> {
    let mut locks = Vec::new();
    for object in objects {
        if lock::is_lock_key(&object.key) {
            if let Some(info) = lock::read(store, &object.key).await? {
                locks.push(info);
            }
        }
    }
    let mut pending_uploads = Vec::new();
    for upload in store.pending_uploads().await? {
        let writer_lock = upload
            .key
            .strip_suffix(ARCHIVE_SUFFIX)
            .and_then(|id| id.parse::<BackupId>().ok())
            .map(|id| id.lock_key("backup"));
        let live_lock = locks.iter().find(|l| Some(&l.key) == writer_lock.as_ref() && !l.expired);
        let age = upload.started.map(|t| (Utc::now() - t).to_std().unwrap_or_default());
        let kept_because = match (live_lock, age) {
            (Some(l), _) => Some(format!("its backup is running ({})", l.holder)),
            (None, Some(age)) if age < min_age => Some(format!("started {} s ago", age.as_secs())),
            _ => None,
        };
        pending_uploads.push(Pending { upload, kept_because });
    }
    Ok(Leftovers { pending_uploads, locks })
}

/// What `ngbak cleanup` did (or, in a dry run, would do).
#[derive(Debug, Serialize)]
pub struct CleanupReport {
    pub dry_run: bool,
    pub aborted_uploads: Vec<PendingUpload>,
    pub removed_locks: Vec<LockInfo>,
    /// What was left alone, and why.
    pub kept: Leftovers,
}

/// Aborts pending uploads no live run holds (and older than `min_age`), and removes expired locks.
pub async fn cleanup(store: &dyn ObjectStore, min_age: Duration, dry_run: bool) -> Result<CleanupReport> {
    let found = find(store, min_age).await?;
    let mut report =
        CleanupReport { dry_run, aborted_uploads: Vec::new(), removed_locks: Vec::new(), kept: Leftovers::default() };
    for pending in found.pending_uploads {
        if pending.kept_because.is_some() {
            report.kept.pending_uploads.push(pending);
            continue;
        }
        if !dry_run {
            store.abort_pending(&pending.upload).await?;
            tracing::info!(key = %pending.upload.key, "aborted a pending upload");
        }
        report.aborted_uploads.push(pending.upload);
    }
    for found_lock in found.locks {
        if !found_lock.expired {
            report.kept.locks.push(found_lock);
            continue;
        }
        if !dry_run {
            // Read again right before deleting: a run may have taken it over meanwhile.
            match lock::read(store, &found_lock.key).await? {
                Some(now) if now.expired => store.delete(&found_lock.key).await?,
                _ => continue,
            }
            tracing::info!(lock = %found_lock.key, holder = %found_lock.holder, "removed an expired lock");
        }
        report.removed_locks.push(found_lock);
    }
    Ok(report)
}
