//! A lock object taken with a conditional write (`If-None-Match: *`).
//!
//! Reading a tag and then setting it is not atomic, and EventBridge may deliver one event twice:
//! the conditional create is what makes "only one restore at a time" true. A lock names its
//! holder and expiry, so one left by a crashed run can be taken over once it has expired.
//!
//! A lock is a lease: it claims [`LEASE`] (never past the job's own deadline, when it has one —
//! see [`crate::stop`]) and is renewed every third of that while the job runs, so a run that was
//! killed blocks the next one for minutes, not hours. A run whose lock was taken over meanwhile
//! is told to stop.

use super::{get_small, ObjectStore};
use anyhow::Result;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize)]
struct LockBody {
    holder: String,
    token: String,
    acquired_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// How long a lock claims at a time; it is renewed every third of this while its job runs.
pub const LEASE: Duration = Duration::from_secs(10 * 60);

/// Past the job's deadline, how long its lock still claims (to write its report and clean up).
const DEADLINE_GRACE: Duration = Duration::from_secs(60);

/// A held lock; [`Lock::release`] deletes it if it is still ours. Dropping it stops the renewal.
pub struct Lock {
    store: Arc<dyn ObjectStore>,
    key: String,
    token: String,
    renewal: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(r) = self.renewal.take() {
            r.abort();
        }
    }
}

/// The lock's expiry if taken now: `lease` from now, but not past the job's deadline (+ grace).
fn expiry(lease: Duration) -> Result<DateTime<Utc>> {
    let mut claim = lease;
    if let Some(left) = crate::stop::time_left() {
        claim = claim.min(left + DEADLINE_GRACE);
    }
    Ok(Utc::now() + chrono::Duration::from_std(claim)?)
}

/// What a lock's key holds.
enum Found {
    Nothing,
    /// An object that is not a lock body (a holder that cannot be named).
    Unreadable,
    Body(LockBody),
}

/// Reads the lock object at `key`; a read that fails because the object is gone is `Nothing`.
async fn fetch(store: &dyn ObjectStore, key: &str) -> Result<Found> {
    Ok(fetch_version(store, key).await?.0)
}

/// [`fetch`], with the version of the bytes read (their ETag), for a write conditional on it.
async fn fetch_version(store: &dyn ObjectStore, key: &str) -> Result<(Found, Option<String>)> {
    match get_small(store, key).await {
        Ok((meta, bytes)) => {
            Ok((serde_json::from_slice(&bytes).map(Found::Body).unwrap_or(Found::Unreadable), meta.etag))
        }
        Err(_) if store.head(key).await?.is_none() => Ok((Found::Nothing, None)),
        Err(e) => Err(e),
    }
}

const UNREADABLE: &str = "unknown (unreadable lock object)";

/// Re-claims the lock every third of `lease` while it is ours; if another run took it over,
/// asks this job to stop (two restores must never write at once). The renewal is written only
/// over the version read and found ours, so it never overwrites a lock another run took
/// meanwhile.
async fn renew(store: Arc<dyn ObjectStore>, key: String, mut body: LockBody, lease: Duration) {
    loop {
        tokio::time::sleep(lease / 3).await;
        let (holder, version) = match fetch_version(store.as_ref(), &key).await {
            Ok((Found::Body(current), version)) if current.token == body.token => (None, version),
            Ok((Found::Body(current), _)) => (Some(current.holder), None),
            Ok((Found::Unreadable, _)) => (Some(UNREADABLE.to_string()), None),
            Ok((Found::Nothing, _)) => {
                tracing::warn!(lock = %key, "the lock is gone; it is not renewed");
                continue;
            }
            Err(e) => {
                tracing::warn!(lock = %key, "could not read the lock to renew it (will try again): {e:#}");
                continue;
            }
        };
        if let Some(holder) = holder {
            tracing::error!(lock = %key, new_holder = %holder, "the lock was taken over by another run: stopping");
            crate::stop::request(&format!("the lock {key} was taken over by {holder}"));
            return;
        }
        match expiry(lease) {
            Ok(at) => body.expires_at = at,
            Err(_) => return,
        }
        let (Ok(bytes), Some(version)) = (serde_json::to_vec(&body), version) else {
            tracing::warn!(lock = %key, "the lock's version is unknown; it is not renewed");
            continue;
        };
        match store.replace_if_match(&key, Bytes::from(bytes), &version).await {
            Ok(true) => {}
            Ok(false) => {
                // Changed between our read and our write. Our own write, when an attempt whose
                // answer was lost is sent again, leaves our token; anything else is a takeover.
                // (A read that fails, or finds the lock gone, is looked at again next round.)
                match fetch(store.as_ref(), &key).await {
                    Ok(Found::Body(current)) if current.token == body.token => continue,
                    Ok(Found::Nothing) | Err(_) => continue,
                    Ok(Found::Body(_) | Found::Unreadable) => {}
                }
                tracing::error!(lock = %key, "the lock was taken over while it was being renewed: stopping");
                crate::stop::request(&format!("the lock {key} was taken over by another run"));
                return;
            }
            Err(e) => tracing::warn!(lock = %key, "could not renew the lock (will try again): {e:#}"),
        }
    }
}

/// Why a lock could not be had.
#[derive(Debug)]
pub struct Held {
    pub holder: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The store-wide restore lock: one restore at a time per store, whoever runs it (CLI, function,
/// container task), since restores of different backups may write the same targets.
pub const RESTORE_LOCK: &str = "ngbak-restore.lock";

/// Like [`acquire`]; with `force`, a lock that is held is taken over (for one left by a run that
/// was killed before its expiry), naming its holder in the log.
pub async fn acquire_or_take_over(
    store: Arc<dyn ObjectStore>,
    key: &str,
    holder: &str,
    ttl: Duration,
    force: bool,
) -> Result<Result<Lock, Held>> {
    match acquire(store.clone(), key, holder, ttl).await? {
        Err(held) if force => {
            tracing::warn!(lock = key, old_holder = %held.holder, "taking over the lock (--force)");
            store.delete(key).await?;
            acquire(store, key, holder, ttl).await
        }
        other => Ok(other),
    }
}

/// Tries to take the lock at `key`, as a lease of `lease` renewed while the job runs (see the
/// module's doc). An expired lock is removed and taken over, naming its holder in the log.
pub async fn acquire(
    store: Arc<dyn ObjectStore>,
    key: &str,
    holder: &str,
    lease: Duration,
) -> Result<Result<Lock, Held>> {
    let token = uuid::Uuid::new_v4().to_string();
    for _ in 0..2 {
        let body = LockBody {
            holder: holder.to_string(),
            token: token.clone(),
            acquired_at: Utc::now(),
            expires_at: expiry(lease)?,
        };
        if store.put_if_absent(key, Bytes::from(serde_json::to_vec(&body)?)).await? {
            let renewal = tokio::spawn(renew(store.clone(), key.to_string(), body, lease));
            return Ok(Ok(Lock { store, key: key.to_string(), token, renewal: Some(renewal) }));
        }
        match fetch(store.as_ref(), key).await {
            Ok(Found::Body(other)) if other.expires_at > Utc::now() => {
                return Ok(Err(Held { holder: other.holder, expires_at: Some(other.expires_at) }));
            }
            Ok(Found::Body(old)) => {
                tracing::warn!(lock = key, old_holder = %old.holder, expired_at = %old.expires_at, "taking over an expired lock");
                store.delete(key).await?
            }
            Ok(Found::Unreadable) => return Ok(Err(Held { holder: UNREADABLE.into(), expires_at: None })),
            // Released between our write and our read: try again.
            Ok(Found::Nothing) | Err(_) => continue,
        }
    }
    Ok(Err(Held { holder: "another run (it took the lock as we retried)".into(), expires_at: None }))
}

impl Lock {
    pub async fn release(mut self) -> Result<()> {
        if let Some(r) = self.renewal.take() {
            r.abort();
        }
        let ours = matches!(fetch(self.store.as_ref(), &self.key).await, Ok(Found::Body(b)) if b.token == self.token);
        if ours {
            self.store.delete(&self.key).await?;
        }
        Ok(())
    }
}

/// A lock as found in the store (for `ngbak list` and `ngbak cleanup`).
#[derive(Clone, Debug, Serialize)]
pub struct LockInfo {
    pub key: String,
    pub holder: String,
    pub acquired_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Past its expiry: its run died (or is hung); the next run takes it over.
    pub expired: bool,
}

/// Whether a key names a lock object.
pub fn is_lock_key(key: &str) -> bool {
    key.ends_with(".lock")
}

/// Reads the lock at `key`; `None` when there is none.
pub async fn read(store: &dyn ObjectStore, key: &str) -> Result<Option<LockInfo>> {
    Ok(Some(match fetch(store, key).await? {
        Found::Nothing => return Ok(None),
        Found::Body(b) => LockInfo {
            key: key.to_string(),
            expired: b.expires_at <= Utc::now(),
            holder: b.holder,
            acquired_at: Some(b.acquired_at),
            expires_at: Some(b.expires_at),
        },
        Found::Unreadable => LockInfo {
            key: key.to_string(),
            holder: UNREADABLE.into(),
            acquired_at: None,
            expires_at: None,
            expired: true,
        },
    }))
}
