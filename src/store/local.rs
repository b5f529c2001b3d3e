//! A directory as an object store: for laptops, tests, and mounted volumes.
//!
//! Uploads go to a hidden temporary file that is fsynced and renamed into place, so a
//! half-written archive is never visible under its final name.

use super::{GetObject, ObjectMeta, ObjectStore, PendingUpload, Upload};
use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::fs;
use tokio::io::AsyncWriteExt;

pub struct LocalStore {
    root: PathBuf,
}

/// Temporary uploads start with this, so that `list` skips them and `pending_uploads` finds them.
const PARTIAL_PREFIX: &str = ".partial-";

impl LocalStore {
    pub fn new(dir: &str) -> Result<Self> {
        let root = PathBuf::from(dir);
        std::fs::create_dir_all(&root).with_context(|| format!("creating backup directory {}", root.display()))?;
        Ok(LocalStore { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        if key.is_empty() || key.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            bail!("invalid key {key:?}");
        }
        Ok(self.root.join(key))
    }
}

/// The version token: size, modification time in nanoseconds and inode, so that a file replaced
/// by another (even of one size and time) is a new version. The content itself is pinned by the
/// hashes a restore checks (each entry before it is applied, the whole file against the sidecar).
fn meta_of(key: &str, m: &std::fs::Metadata) -> ObjectMeta {
    use std::os::unix::fs::MetadataExt;
    let modified = m.modified().ok().map(chrono::DateTime::<chrono::Utc>::from);
    let etag = modified.map(|t| format!("{}-{}-{}", m.len(), t.timestamp_nanos_opt().unwrap_or_default(), m.ino()));
    ObjectMeta { key: key.to_string(), size: m.len(), modified, etag }
}

async fn write_durably(path: &Path, body: &[u8], create_new: bool) -> std::io::Result<()> {
    let mut f =
        fs::OpenOptions::new().write(true).create(true).create_new(create_new).truncate(!create_new).open(path).await?;
    f.write_all(body).await?;
    f.sync_all().await
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    /// Writes whole, replacing what is there (reports, renewed locks): a temporary file renamed
    /// into place, so a reader sees the old object or the new one, never a part.
    async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        let target = self.path(key)?;
        let temp = self.root.join(format!("{PARTIAL_PREFIX}{}-{key}", uuid::Uuid::new_v4().simple()));
        let written = async {
            write_durably(&temp, &body, true).await?;
            fs::rename(&temp, &target).await
        }
        .await;
        if let Err(e) = written {
            let _ = fs::remove_file(&temp).await;
            return Err(e).with_context(|| format!("writing {}", target.display()));
        }
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool> {
        let path = self.path(key)?;
        match write_durably(&path, &body, true).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }

    /// The version check and the rename are two steps here (S3 makes them one): a directory
    /// store serves one host, and a writer that slips in between them is overwritten (a lock's
    /// holder finds its lock gone to another at its next renewal, and stops).
    async fn replace_if_match(&self, key: &str, body: Bytes, etag: &str) -> Result<bool> {
        match self.head(key).await? {
            Some(meta) if meta.etag.as_deref() == Some(etag) => self.put(key, body).await.map(|()| true),
            _ => Ok(false),
        }
    }

    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>> {
        let target = self.path(key)?;
        let temp = self.root.join(format!("{PARTIAL_PREFIX}{}-{key}", uuid::Uuid::new_v4().simple()));
        let file = fs::File::create(&temp).await.with_context(|| format!("creating {}", temp.display()))?;
        Ok(Box::new(LocalUpload { file, temp, target, size: 0, replacing: None }))
    }

    async fn start_replacing(&self, key: &str, etag: &str) -> Result<Box<dyn Upload>> {
        let target = self.path(key)?;
        let temp = self.root.join(format!("{PARTIAL_PREFIX}{}-{key}", uuid::Uuid::new_v4().simple()));
        let file = fs::File::create(&temp).await.with_context(|| format!("creating {}", temp.display()))?;
        Ok(Box::new(LocalUpload { file, temp, target, size: 0, replacing: Some(etag.to_string()) }))
    }

    async fn get(&self, key: &str, if_match: Option<&str>) -> Result<GetObject> {
        let path = self.path(key)?;
        let file = fs::File::open(&path).await.with_context(|| format!("opening {}", path.display()))?;
        let meta = meta_of(key, &file.metadata().await?);
        if let Some(expected) = if_match {
            if meta.etag.as_deref() != Some(expected) {
                bail!("{} changed while it was being read (expected version {expected})", path.display());
            }
        }
        Ok(GetObject { meta, body: Box::new(file) })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        match fs::metadata(self.path(key)?).await {
            Ok(m) => Ok(Some(meta_of(key, &m))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut dir = fs::read_dir(&self.root).await.with_context(|| format!("listing {}", self.root.display()))?;
        while let Some(e) = dir.next_entry().await? {
            let name = e.file_name().to_string_lossy().into_owned();
            let m = e.metadata().await?;
            if m.is_file() && name.starts_with(prefix) && !name.starts_with(PARTIAL_PREFIX) {
                out.push(meta_of(&name, &m));
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn get_tags(&self, _key: &str) -> Result<BTreeMap<String, String>> {
        bail!("object tags exist only in S3; a directory store has none (restore with `ngbak restore <id>`)")
    }

    async fn put_tags(&self, key: &str, _tags: &BTreeMap<String, String>) -> Result<()> {
        self.get_tags(key).await.map(|_| ())
    }

    async fn presign_get(&self, key: &str, _expires: Duration) -> Result<String> {
        let path =
            fs::canonicalize(self.path(key)?).await.with_context(|| format!("no object {key} in {}", self.url()))?;
        Ok(format!("file://{}", path.display()))
    }

    async fn pending_uploads(&self) -> Result<Vec<PendingUpload>> {
        let mut out = Vec::new();
        let mut dir = fs::read_dir(&self.root).await?;
        while let Some(e) = dir.next_entry().await? {
            let name = e.file_name().to_string_lossy().into_owned();
            // `.partial-<32 hex>-<key>`
            let Some(key) = name.strip_prefix(PARTIAL_PREFIX).and_then(|rest| rest.get(33..)) else { continue };
            let started = e.metadata().await.ok().and_then(|m| m.modified().ok()).map(DateTime::<Utc>::from);
            out.push(PendingUpload { key: key.to_string(), upload_id: name.clone(), started });
        }
        out.sort_by_key(|u| u.started);
        Ok(out)
    }

    async fn abort_pending(&self, upload: &PendingUpload) -> Result<()> {
        let name = &upload.upload_id;
        if !name.starts_with(PARTIAL_PREFIX) || name.contains('/') {
            bail!("{name:?} is not a pending upload of {}", self.url());
        }
        match fs::remove_file(self.root.join(name)).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn is_locked(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }
}

struct LocalUpload {
    file: fs::File,
    temp: PathBuf,
    target: PathBuf,
    size: u64,
    /// Replace the target while it is this version (`start_replacing`); else never replace.
    replacing: Option<String>,
}

#[async_trait]
impl Upload for LocalUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.size += chunk.len() as u64;
        self.file.write_all(&chunk).await.with_context(|| format!("writing {}", self.temp.display()))
    }

    async fn complete(self: Box<Self>) -> Result<u64> {
        self.file.sync_all().await?;
        drop(self.file);
        if let Some(etag) = &self.replacing {
            // As replace_if_match: the check and the rename are two steps on one host.
            let now = fs::metadata(&self.target).await.ok().map(|m| meta_of("", &m).etag);
            if now != Some(Some(etag.clone())) {
                let _ = fs::remove_file(&self.temp).await;
                anyhow::bail!("{} changed while it was rewritten; nothing was replaced", self.target.display());
            }
            fs::rename(&self.temp, &self.target)
                .await
                .with_context(|| format!("moving {} to {}", self.temp.display(), self.target.display()))?;
            if let Some(dir) = self.target.parent() {
                fs::File::open(dir).await?.sync_all().await?;
            }
            return Ok(self.size);
        }
        // A hard link never replaces an existing file (a rename would): a second job with the
        // same id fails here instead of overwriting the first one's archive.
        let linked = fs::hard_link(&self.temp, &self.target).await;
        let _ = fs::remove_file(&self.temp).await;
        match linked {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => anyhow::bail!(
                "{} appeared while this upload ran (another job with the same id finished first); it was \
                 left as it is and this upload was discarded",
                self.target.display()
            ),
            other => other.with_context(|| format!("moving {} to {}", self.temp.display(), self.target.display()))?,
        }
        if let Some(dir) = self.target.parent() {
            fs::File::open(dir).await?.sync_all().await?;
        }
        Ok(self.size)
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        drop(self.file);
        match fs::remove_file(&self.temp).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
