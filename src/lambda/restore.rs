//! The restore function: fired by S3's "Object Tags Added" event through EventBridge.
//!
//! It restores only when the archive carries `ngbak-restore=requested`. The event carries no
//! tags, so they are read; its own tag changes (`running`, `completed`, `failed`) fire events
//! too, and those are acknowledged and ignored. A lock object taken with a conditional write
//! makes sure two deliveries, or two tags close together, never restore twice at once.

use super::events::{parse_restore_event, RestoreRequest};
use super::FunctionConfig;
use crate::id::BackupId;
use crate::pipeline::restore::{outcome_document, run_restore};
use crate::store::{lock, ObjectStore};
use crate::telemetry::{emit_metrics, metrics_namespace};
use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::Utc;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub const RUNNING: &str = "running";
pub const COMPLETED: &str = "completed";
pub const FAILED: &str = "failed";

/// Time kept back from the function's deadline to report, tag and release after a stop.
const STOP_MARGIN: Duration = Duration::from_secs(30);

/// Handles one event; `time_left` bounds how long the lock is held if this run dies.
pub async fn handle(config: &FunctionConfig, event: Value, time_left: Duration) -> Result<Value> {
    let store = config.store.open().await?;
    handle_in(config, store, event, time_left).await
}

/// [`handle`] with the store already open.
async fn handle_in(
    config: &FunctionConfig,
    store: Arc<dyn ObjectStore>,
    event: Value,
    time_left: Duration,
) -> Result<Value> {
    let request = parse_restore_event(&event).map_err(super::malformed)?;
    let (id, from_tag) = match request {
        RestoreRequest::Ignore(reason) => return Ok(ignored(None, &reason)),
        RestoreRequest::Direct { backup_id } => (backup_id, false),
        RestoreRequest::Tagged { bucket, key } => {
            let Some(id) = archive_of_store(store.as_ref(), &bucket, &key) else {
                return Ok(ignored(None, &format!("s3://{bucket}/{key} is not an archive in {}", store.url())));
            };
            let tags = match store.get_tags(&id.archive_key()).await {
                Ok(tags) => tags,
                // Tags change on every restore's status too: the event may arrive after the
                // archive was deleted.
                Err(_) if store.head(&id.archive_key()).await?.is_none() => {
                    return Ok(ignored(Some(&id), "the archive is no longer in the store"));
                }
                Err(e) => return Err(e),
            };
            let value = tags.get(&config.restore_tag_key).cloned();
            if value.as_deref() != Some(config.restore_tag_value.as_str()) {
                let reason = format!("tag {} is {value:?}, not {:?}", config.restore_tag_key, config.restore_tag_value);
                return Ok(ignored(Some(&id), &reason));
            }
            (id, true)
        }
    };
    // Stop cleanly before the function is killed: the report, the tag and the lock need a moment.
    let _job = crate::stop::begin_job(Some(crate::stop::deadline_within(time_left, STOP_MARGIN)), "the restore");
    let holder = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_else(|_| "ngbak restore".into());
    let lock = match lock::acquire(store.clone(), lock::RESTORE_LOCK, &holder, lock::LEASE).await? {
        Ok(lock) => lock,
        Err(held) => {
            let why =
                format!("a restore is already running in this store ({}); tag the archive again later", held.holder);
            return Ok(ignored(Some(&id), &why));
        }
    };
    let trigger = if from_tag { "tag" } else { "invoke" };
    let outcome = restore_locked(config, store.clone(), &id, from_tag, time_left, trigger).await;
    lock.release().await.ok();
    outcome
}

/// The backup id of `s3://bucket/key` when that is an archive of this store.
fn archive_of_store(store: &dyn ObjectStore, bucket: &str, key: &str) -> Option<BackupId> {
    let id = BackupId::from_archive_key(key)?;
    (format!("{}{}", store.url(), id.archive_key()) == format!("s3://{bucket}/{key}")).then_some(id)
}

fn ignored(id: Option<&BackupId>, reason: &str) -> Value {
    tracing::info!(backup_id = ?id.map(|i| i.as_str()), "event ignored: {reason}");
    json!({ "status": "ignored", "backup_id": id, "reason": reason })
}

pub(crate) async fn restore_locked(
    config: &FunctionConfig,
    store: Arc<dyn ObjectStore>,
    id: &BackupId,
    from_tag: bool,
    time_left: Duration,
    trigger: &str,
) -> Result<Value> {
    let tag_key = &config.restore_tag_key;
    // Tags are written back whole, so a set that could not be read is never written: that
    // would erase the archive's other tags.
    let (mut tags, tags_read) = match store.get_tags(&id.archive_key()).await {
        Ok(tags) => (tags, true),
        Err(e) if from_tag => {
            return Err(e.context(format!(
                "reading the tags of {} (nothing was restored and no tag was changed); check the function's \
                 s3:GetObjectTagging permission",
                id.archive_key()
            )))
        }
        Err(e) => {
            tracing::warn!(backup_id = %id, "the archive's tags cannot be read, so its restore status will not be tagged: {e:#}");
            (Default::default(), false)
        }
    };
    // Checked again under the lock: a run that finished just before us has changed it.
    if from_tag && tags.get(tag_key) != Some(&config.restore_tag_value) {
        return Ok(ignored(Some(id), "the restore was handled by another run"));
    }
    let set_tag = |value: &str, tags: &mut std::collections::BTreeMap<String, String>| {
        tags.insert(tag_key.clone(), value.to_string());
        tags.clone()
    };
    let tagging = tags_read && (from_tag || store.url().starts_with("s3://"));
    if tagging {
        store
            .put_tags(&id.archive_key(), &set_tag(RUNNING, &mut tags))
            .await
            .context("marking the archive as restoring")?;
    }
    let started_at = Utc::now();
    let restorers = config.backends.restorers(&config.restore);
    // Too big for the time left: a Fargate task restores (and reports, and tags) instead.
    let result = match crate::handoff::restore(store.as_ref(), id, time_left).await {
        Ok(Some(handed_off)) => return Ok(handed_off),
        // Every backend and the store answer, or nothing is written (as in the CLI).
        Ok(None) => {
            async {
                crate::check::preflight(store.as_ref(), &config.backends, &config.restore.only).await?;
                let keys = config.auth.keys().await?;
                run_restore(store.as_ref(), id, restorers, &config.restore.options(&store, &config.backends, &keys))
                    .await
            }
            .await
        }
        Err(e) => Err(e),
    };
    let status = if result.is_ok() { COMPLETED } else { FAILED };
    let mut report = outcome_document(id, &result, started_at, trigger);
    store
        .put(&id.report_key(), Bytes::from(serde_json::to_vec_pretty(&report)?))
        .await
        .context("writing the restore report")?;
    if tagging {
        store
            .put_tags(&id.archive_key(), &set_tag(status, &mut tags))
            .await
            .context("marking the archive's restore status")?;
    }
    let ns = metrics_namespace();
    match result {
        Ok(done) => {
            emit_metrics(&ns, &[("Function", "restore")], &[("RestoreSuccess", "Count", 1.0)]);
            if let Some(links) = done.consistency.as_ref().and_then(|c| c.report.as_ref()) {
                crate::consistency::emit_rule_metrics(&ns, "restore", &links.counts(), None);
            }
            report["report_key"] = json!(id.report_key());
            Ok(report)
        }
        Err(e) => {
            emit_metrics(&ns, &[("Function", "restore")], &[("Failures", "Count", 1.0)]);
            Err(e.context(format!("restore of {id} failed; see {}", id.report_key())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::LocalStore;
    use crate::store::{GetObject, ObjectMeta, Upload};
    use bytes::Bytes;
    use clap::Parser;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Test double for an S3 bucket whose GetObjectTagging fails (S3 cannot be made to refuse one
    /// call on demand here): a directory store that answers as `s3://ngbak-test/`, keeps tags in
    /// memory, and fails every tag read.
    struct TagReadFailsDouble {
        inner: LocalStore,
        tags: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    }

    #[async_trait::async_trait]
    impl ObjectStore for TagReadFailsDouble {
        fn url(&self) -> String {
            "s3://ngbak-test/".into()
        }
        async fn put(&self, key: &str, body: Bytes) -> Result<()> {
            self.inner.put(key, body).await
        }
        async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
            self.inner.put_if_absent(key, body).await
        }
        async fn replace_if_match(&self, key: &str, body: Bytes, etag: &str) -> Result<bool> {
            self.inner.replace_if_match(key, body, etag).await
        }
        async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>> {
            self.inner.start_upload(key).await
        }
        async fn start_replacing(&self, key: &str, etag: &str) -> Result<Box<dyn Upload>> {
            self.inner.start_replacing(key, etag).await
        }
        async fn get(&self, key: &str, if_match: Option<&str>) -> Result<GetObject> {
            self.inner.get(key, if_match).await
        }
        async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
            self.inner.head(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
            self.inner.list(prefix).await
        }
        async fn delete(&self, key: &str) -> Result<()> {
            self.inner.delete(key).await
        }
        async fn get_tags(&self, key: &str) -> Result<BTreeMap<String, String>> {
            anyhow::bail!("GetObjectTagging of {key} failed: AccessDenied (injected by the test double)")
        }
        async fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> Result<()> {
            self.tags.lock().unwrap().insert(key.to_string(), tags.clone());
            Ok(())
        }
        async fn presign_get(&self, key: &str, expires: Duration) -> Result<String> {
            self.inner.presign_get(key, expires).await
        }
        async fn pending_uploads(&self) -> Result<Vec<crate::store::PendingUpload>> {
            self.inner.pending_uploads().await
        }
        async fn abort_pending(&self, upload: &crate::store::PendingUpload) -> Result<()> {
            self.inner.abort_pending(upload).await
        }
        async fn is_locked(&self, key: &str) -> Result<bool> {
            self.inner.is_locked(key).await
        }
    }

    #[tokio::test]
    async fn tags_that_cannot_be_read_are_never_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let double = Arc::new(TagReadFailsDouble {
            inner: LocalStore::new(dir.path().to_str().unwrap()).unwrap(),
            tags: Mutex::new(BTreeMap::new()),
        });
        let id: BackupId = "snapshot_2026-11-23T03-00-00Z".parse().unwrap();
        double.inner.put(&id.archive_key(), Bytes::from_static(b"not read")).await.unwrap();
        let config = FunctionConfig::try_parse_from(["ngbak-restore", "--store", "s3://ngbak-test/"]).unwrap();
        // A direct invocation: before the fix, the failed read became an empty tag set, and the
        // status was written over the archive's other tags.
        let event = serde_json::json!({ "backup_id": id });
        let _ = handle_in(&config, double.clone(), event, Duration::from_secs(60)).await;
        assert!(double.tags.lock().unwrap().is_empty(), "tags were written: {:?}", double.tags.lock().unwrap());
        // A tag-triggered one fails clearly and changes no tag.
        let event = serde_json::json!({
            "source": "aws.s3", "detail-type": "Object Tags Added",
            "detail": { "bucket": { "name": "ngbak-test" }, "object": { "key": id.archive_key() } }
        });
        let err = handle_in(&config, double.clone(), event, Duration::from_secs(60)).await.unwrap_err();
        assert!(format!("{err:#}").contains("AccessDenied"), "{err:#}");
        assert!(double.tags.lock().unwrap().is_empty());
    }
}
