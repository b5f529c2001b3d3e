//! A lock object taken with a conditional write (`If-None-Match: *`).
//!
//! Reading a tag and then setting it is not atomic, and EventBridge may deliver one event twice:
//! the conditional create is what makes "only one restore at a time" true. A lock names its
//! holder and expiry, so one left by a crashed run can be taken over once it has expired.

use super::{get_bytes, ObjectStore};
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

/// A held lock; [`Lock::release`] deletes it if it is still ours.
pub struct Lock {
    store: Arc<dyn ObjectStore>,
    key: String,
    token: String,
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

/// Tries to take the lock at `key` for `ttl`. An expired lock is removed and taken over.
pub async fn acquire(
    store: Arc<dyn ObjectStore>,
    key: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Result<Lock, Held>> {
    let token = uuid::Uuid::new_v4().to_string();
    for _ in 0..2 {
        let now = Utc::now();
        let body = LockBody {
            holder: holder.to_string(),
            token: token.clone(),
            acquired_at: now,
            expires_at: now + chrono::Duration::from_std(ttl)?,
        };
        if store.put_if_absent(key, Bytes::from(serde_json::to_vec(&body)?)).await? {
            return Ok(Ok(Lock { store, key: key.to_string(), token }));
        }
        let existing = match get_bytes(store.as_ref(), key).await {
            Ok(bytes) => serde_json::from_slice::<LockBody>(&bytes).ok(),
            Err(_) => continue, // released between our write and our read: try again
        };
        match existing {
            Some(other) if other.expires_at > Utc::now() => {
                return Ok(Err(Held { holder: other.holder, expires_at: Some(other.expires_at) }));
            }
            Some(_) => store.delete(key).await?, // expired: take it over
            None => return Ok(Err(Held { holder: "unknown (unreadable lock object)".into(), expires_at: None })),
        }
    }
    Ok(Err(Held { holder: "another run (it took the lock as we retried)".into(), expires_at: None }))
}

impl Lock {
    pub async fn release(self) -> Result<()> {
        let ours = match get_bytes(self.store.as_ref(), &self.key).await {
            Ok(bytes) => serde_json::from_slice::<LockBody>(&bytes).map(|b| b.token == self.token).unwrap_or(false),
            Err(_) => false,
        };
        if ours {
            self.store.delete(&self.key).await?;
        }
        Ok(())
    }
}
