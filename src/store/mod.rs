//! Where archives live: one small trait, implemented for S3 and for a local directory.
//!
//! Keys given to a store are relative to its root (`s3://bucket/prefix/` or a directory).

pub mod local;
pub mod lock;
pub mod s3;

use anyhow::{bail, Result};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncRead;

/// An object as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub modified: Option<DateTime<Utc>>,
    /// An opaque version token: the S3 ETag, or size and mtime for files.
    pub etag: Option<String>,
}

/// A streaming read, pinned to one version of the object.
pub struct GetObject {
    pub meta: ObjectMeta,
    pub body: Box<dyn AsyncRead + Send + Unpin>,
}

/// An upload in progress. Nothing is visible under the key until `complete` succeeds; `abort`
/// removes every trace.
#[async_trait]
pub trait Upload: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<()>;
    /// Makes the object visible; returns its size.
    async fn complete(self: Box<Self>) -> Result<u64>;
    async fn abort(self: Box<Self>) -> Result<()>;
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The store's root as a URL, for messages.
    fn url(&self) -> String;
    async fn put(&self, key: &str, body: Bytes) -> Result<()>;
    /// Writes only when nothing is at `key`; `false` when something already is.
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool>;
    /// Replaces the object only while it is still the version `etag` (as `head` or `get` gave
    /// it); `false` when it was changed, replaced or removed since.
    async fn replace_if_match(&self, key: &str, body: Bytes, etag: &str) -> Result<bool>;
    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>>;
    /// An upload that replaces the object at `key`, completing only while it is still the version
    /// `etag` (a new S3 object version; a file renamed into place): for `rekey`.
    async fn start_replacing(&self, key: &str, etag: &str) -> Result<Box<dyn Upload>>;
    /// Streams an object; with `if_match` the read fails if the object changed since.
    async fn get(&self, key: &str, if_match: Option<&str>) -> Result<GetObject>;
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>>;
    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;
    /// Deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
    async fn get_tags(&self, key: &str) -> Result<BTreeMap<String, String>>;
    async fn put_tags(&self, key: &str, tags: &BTreeMap<String, String>) -> Result<()>;
    async fn presign_get(&self, key: &str, expires: Duration) -> Result<String>;
    /// Uploads started but neither completed nor aborted (a killed run's leftovers, or a run
    /// still going), oldest first.
    async fn pending_uploads(&self) -> Result<Vec<PendingUpload>>;
    /// Aborts one of [`ObjectStore::pending_uploads`], freeing what it holds.
    async fn abort_pending(&self, upload: &PendingUpload) -> Result<()>;
    /// Whether an S3 Object Lock retention or legal hold protects the object now.
    async fn is_locked(&self, key: &str) -> Result<bool>;
    /// A multipart upload to `key` whose `parts` a client sends itself, each to its own presigned
    /// PUT address (the API function's uploads: S3 only).
    async fn presign_upload(&self, key: &str, parts: u32, expires: Duration) -> Result<PresignedUpload> {
        let _ = (parts, expires);
        bail!("{key}: uploads to presigned addresses need an S3 store, not {}", self.url())
    }
    /// Completes a [`ObjectStore::presign_upload`] with the ETag S3 gave back for each part;
    /// only while nothing is at `key`.
    async fn complete_presigned(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<()> {
        let _ = (upload_id, etags);
        bail!("{key}: uploads to presigned addresses need an S3 store, not {}", self.url())
    }
}

/// A multipart upload a client sends: the upload's id and one PUT address per part, in order.
#[derive(Clone, Debug)]
pub struct PresignedUpload {
    pub upload_id: String,
    pub part_urls: Vec<String>,
}

/// An upload in progress or left behind: S3 bills its parts until it is aborted.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PendingUpload {
    /// The key it would complete to.
    pub key: String,
    /// The S3 upload id, or the temporary file's name.
    pub upload_id: String,
    pub started: Option<DateTime<Utc>>,
}

/// Completes an upload that must hold exactly `size` bytes (what was hashed on the way); an
/// object of any other size is removed again, so no archive that differs from its digest stays.
pub async fn complete_exactly(store: &dyn ObjectStore, upload: Box<dyn Upload>, key: &str, size: u64) -> Result<()> {
    use anyhow::Context;
    let stored = upload.complete().await.with_context(|| format!("completing the upload of {key}"))?;
    if stored != size {
        store.delete(key).await.ok();
        bail!("the store took {stored} bytes of a {size}-byte archive; the archive was removed");
    }
    Ok(())
}

/// The largest small object read whole (a sidecar, a report, a lock). A manifest lists every
/// entry in about 200 bytes, so 64 MiB holds some 300,000 entries (over 2 TiB of 8 MiB parts).
pub const MAX_SMALL_OBJECT: u64 = 64 << 20;

/// Reads a whole small object (a sidecar, a report, a lock), refusing one larger than
/// [`MAX_SMALL_OBJECT`] before reading it, and never reading past that size.
pub async fn get_bytes(store: &dyn ObjectStore, key: &str) -> Result<Vec<u8>> {
    Ok(get_small(store, key).await?.1)
}

/// [`get_bytes`] with the version read (for a write conditional on exactly those bytes).
pub async fn get_small(store: &dyn ObjectStore, key: &str) -> Result<(ObjectMeta, Vec<u8>)> {
    get_within(store, key, MAX_SMALL_OBJECT).await
}

/// Reads a whole object of at most `limit` bytes, refusing a larger one before reading it, and
/// never reading past `limit`.
pub async fn get_within(store: &dyn ObjectStore, key: &str, limit: u64) -> Result<(ObjectMeta, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let obj = store.get(key, None).await?;
    let most = match limit {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n % 1024 == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    };
    if obj.meta.size > limit {
        bail!(
            "{key} in {} has {} bytes; ngbak reads such metadata objects only up to {most}. It was not written \
             by ngbak, or was replaced: remove it or restore it from a copy",
            store.url(),
            obj.meta.size,
        );
    }
    let mut buf = Vec::with_capacity(obj.meta.size as usize);
    obj.body.take(limit + 1).read_to_end(&mut buf).await?;
    if buf.len() as u64 > limit {
        bail!("{key} in {} grew past {most} while it was read", store.url());
    }
    Ok((obj.meta, buf))
}

/// Settings for S3 stores that do not fit in a URL.
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    /// SSE-KMS key id or ARN; empty means the bucket's default encryption.
    pub kms_key_id: Option<String>,
    /// `AWS_ENDPOINT_URL` for S3-compatible servers (path-style addressing then).
    pub endpoint: Option<String>,
}

/// Opens `s3://bucket/prefix`, `file:///dir` or a bare directory path.
pub async fn open(url: &str, s3: &S3Options) -> Result<Arc<dyn ObjectStore>> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("store URL {url:?} names no bucket; use s3://bucket/prefix");
        }
        return Ok(Arc::new(s3::S3Store::connect(bucket, prefix, s3).await?));
    }
    if url.contains("://") && !url.starts_with("file://") {
        bail!("store URL {url:?} is not supported; use s3://bucket/prefix, file:///dir or a directory path");
    }
    let dir = url.strip_prefix("file://").unwrap_or(url);
    if dir.is_empty() {
        bail!("no store given: pass --store s3://bucket/prefix or a directory (or set NGBAK_STORE)");
    }
    Ok(Arc::new(local::LocalStore::new(dir)?))
}
