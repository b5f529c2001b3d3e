//! A renewal whose write went through but whose answer was lost: the SDK sends it again, and S3
//! answers the repeat "precondition failed" (the version it was conditional on is gone — replaced
//! by the first attempt). The job must go on, not stop as if its lock were taken over. (Its own
//! test binary: the stop state is per process.)

mod common;

use anyhow::Result;
use bytes::Bytes;
use common::*;
use ngbak::store::{lock, GetObject, ObjectMeta, ObjectStore, PendingUpload, Upload};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Test double (a lost answer cannot be had on demand from a real server at the right moment):
/// a directory store whose conditional replace writes, then reports a failed condition, as the
/// repeat of a lost-answer write does on S3. Everything else is the directory store's.
struct LostAnswerOnReplaceDouble {
    inner: Arc<dyn ObjectStore>,
    replaced: AtomicU32,
}

#[async_trait::async_trait]
impl ObjectStore for LostAnswerOnReplaceDouble {
    fn url(&self) -> String {
        self.inner.url()
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        self.inner.put(key, body).await
    }
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        self.inner.put_if_absent(key, body).await
    }
    async fn replace_if_match(&self, key: &str, body: Bytes, etag: &str) -> Result<bool> {
        assert!(self.inner.replace_if_match(key, body, etag).await?, "the first attempt must succeed");
        self.replaced.fetch_add(1, Ordering::Relaxed);
        Ok(false)
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
        self.inner.get_tags(key).await
    }
    async fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.inner.put_tags(key, tags).await
    }
    async fn presign_get(&self, key: &str, expires: Duration) -> Result<String> {
        self.inner.presign_get(key, expires).await
    }
    async fn pending_uploads(&self) -> Result<Vec<PendingUpload>> {
        self.inner.pending_uploads().await
    }
    async fn abort_pending(&self, upload: &PendingUpload) -> Result<()> {
        self.inner.abort_pending(upload).await
    }
    async fn is_locked(&self, key: &str) -> Result<bool> {
        self.inner.is_locked(key).await
    }
}

#[tokio::test]
async fn a_renewal_repeated_after_a_lost_answer_does_not_stop_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let double = Arc::new(LostAnswerOnReplaceDouble { inner: local_store(dir.path()), replaced: AtomicU32::new(0) });
    let store: Arc<dyn ObjectStore> = double.clone();
    let _job = ngbak::stop::begin_job(None, "the test job");
    let held = lock::acquire(store.clone(), "job.lock", "first", Duration::from_millis(600)).await.unwrap().unwrap();
    let first = lock::read(store.as_ref(), "job.lock").await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(double.replaced.load(Ordering::Relaxed) >= 2, "the lock was not renewed");
    assert!(!ngbak::stop::requested(), "a lost answer stopped the job: {}", ngbak::stop::stopped_error().reason);
    let renewed = lock::read(store.as_ref(), "job.lock").await.unwrap().unwrap();
    assert!(!renewed.expired && renewed.expires_at > first.expires_at, "{first:?} then {renewed:?}");
    held.release().await.unwrap();
    assert!(lock::read(store.as_ref(), "job.lock").await.unwrap().is_none());
}
