//! Verify and restore.
//!
//! A restore reads the archive twice: a first full pass proves it matches its sidecar (size,
//! SHA-256, every entry) before any backend is touched; the second pass, pinned to the same
//! object version, streams the entries into the backends. Nothing is staged on disk.

use crate::archive::reader::{read_archive, CheckOnly, EntryVisitor, ReadReport};
use crate::archive::{EntryRecord, Sidecar};
use crate::id::BackupId;
use crate::sources::Restorer;
use crate::store::{get_bytes, ObjectStore};
use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use tokio::io::AsyncRead;

/// Reads and parses the sidecar of a backup.
pub async fn load_sidecar(store: &dyn ObjectStore, id: &BackupId) -> Result<Sidecar> {
    let bytes = match get_bytes(store, &id.sidecar_key()).await {
        Ok(b) => b,
        Err(e) => {
            if store.head(&id.archive_key()).await.ok().flatten().is_some() {
                bail!(
                    "backup {id} has an archive but no sidecar {} in {}: it is incomplete or not written by ngbak, \
                     and cannot be verified ({e:#})",
                    id.sidecar_key(),
                    store.url()
                );
            }
            bail!("no backup {id} in {} (run `ngbak list` to see the backups there)", store.url());
        }
    };
    let sidecar: Sidecar = serde_json::from_slice(&bytes)
        .with_context(|| format!("the sidecar {} is not a valid ngbak manifest", id.sidecar_key()))?;
    if &sidecar.manifest.backup_id != id || sidecar.archive.key != id.archive_key() {
        bail!("the sidecar {} describes backup {}, not {id}", id.sidecar_key(), sidecar.manifest.backup_id);
    }
    Ok(sidecar)
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub backup_id: BackupId,
    pub ok: bool,
    pub entries: usize,
    pub archive_bytes: u64,
    pub archive_sha256: String,
    /// The version (ETag) that was read.
    #[serde(skip)]
    pub etag: Option<String>,
}

/// Reads the whole archive and checks it against its sidecar, entry by entry and as a whole.
pub async fn verify(store: &dyn ObjectStore, id: &BackupId) -> Result<(Sidecar, VerifyReport)> {
    let sidecar = load_sidecar(store, id).await?;
    let object = store.get(&id.archive_key(), None).await?;
    let etag = object.meta.etag.clone();
    let ReadReport { entries, archive_bytes, archive_sha256 } =
        read_archive(object.body, &sidecar, &mut CheckOnly).await?;
    let report = VerifyReport { backup_id: id.clone(), ok: true, entries, archive_bytes, archive_sha256, etag };
    Ok((sidecar, report))
}

#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Restore only these backends (names as in the manifest); all when empty.
    pub only: BTreeSet<String>,
    /// Verify and report what would be written; write nothing.
    pub dry_run: bool,
}

/// What a restore did, backend by backend.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub backup_id: BackupId,
    pub dry_run: bool,
    pub verified: bool,
    pub archive_sha256: String,
    pub backends: BTreeMap<String, BackendReport>,
    /// Backends in the archive that were not restored, and why.
    pub skipped: BTreeMap<String, String>,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct BackendReport {
    pub target: String,
    /// The manifest's statistics for this backend.
    pub expected: BTreeMap<String, u64>,
    /// What was written (empty in a dry run).
    pub restored: BTreeMap<String, u64>,
}

/// Verifies the archive, then restores it into `restorers`.
pub async fn run_restore(
    store: &dyn ObjectStore,
    id: &BackupId,
    mut restorers: Vec<Box<dyn Restorer>>,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let sidecar = load_sidecar(store, id).await?;
    let manifest = &sidecar.manifest;
    for name in &options.only {
        if !manifest.backends.contains_key(name) {
            bail!(
                "backup {id} holds no backend {name:?}; it holds: {}",
                manifest.backends.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let mut skipped = BTreeMap::new();
    let mut selected = BTreeSet::new();
    for name in manifest.backends.keys() {
        let wanted = options.only.is_empty() || options.only.contains(name);
        let has_target = restorers.iter().any(|r| r.name() == name);
        match (wanted, has_target) {
            (false, _) => {
                skipped.insert(name.clone(), "not selected".into());
            }
            (true, false) => bail!(
                "backup {id} holds backend {name:?} but no target for it is configured: {} — or restore a \
                 subset with --only",
                target_hint(name)
            ),
            (true, true) => {
                selected.insert(name.clone());
            }
        }
    }
    restorers.retain(|r| selected.contains(r.name()));

    tracing::info!(backup_id = %id, "verifying the archive before touching any backend");
    let object = store.get(&id.archive_key(), None).await?;
    let etag = object.meta.etag.clone();
    let checked = read_archive(object.body, &sidecar, &mut CheckOnly).await?;
    tracing::info!(backup_id = %id, entries = checked.entries, sha256 = %checked.archive_sha256, "archive verified");

    let mut backends = BTreeMap::new();
    for r in &restorers {
        let expected = manifest.backends[r.name()].stats.clone();
        backends
            .insert(r.name().to_string(), BackendReport { target: r.target(), expected, restored: BTreeMap::new() });
    }
    if !options.dry_run {
        for r in restorers.iter_mut() {
            r.prepare(&manifest.backends[r.name()])
                .await
                .with_context(|| format!("preparing {} for restore", r.name()))?;
        }
        let object = store.get(&id.archive_key(), etag.as_deref()).await.context("re-reading the verified archive")?;
        let mut dispatch = Dispatch { restorers: &mut restorers };
        read_archive(object.body, &sidecar, &mut dispatch).await?;
        for r in restorers.iter_mut() {
            let restored = r.finish().await.with_context(|| format!("finishing the {} restore", r.name()))?;
            tracing::info!(backend = r.name(), ?restored, "backend restored");
            backends.get_mut(r.name()).expect("inserted above").restored = restored;
        }
    }
    Ok(RestoreReport {
        backup_id: id.clone(),
        dry_run: options.dry_run,
        verified: true,
        archive_sha256: checked.archive_sha256,
        backends,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn target_hint(backend: &str) -> &'static str {
    match backend {
        "redis" => "pass --redis-url / REDIS_URL",
        "jsonkv" => "pass --kv-dir / NGBAK_KV_DIR",
        "neo4j" => "pass --neo4j-uri / NEO4J_URI",
        "qdrant" => "pass --qdrant-url / QDRANT_URL",
        _ => "this ngbak does not know that backend; use a newer ngbak",
    }
}

/// Hands each entry to the restorer of its backend; entries of other backends are only read.
struct Dispatch<'a> {
    restorers: &'a mut Vec<Box<dyn Restorer>>,
}

#[async_trait]
impl EntryVisitor for Dispatch<'_> {
    async fn visit(&mut self, record: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        if let Some(r) = self.restorers.iter_mut().find(|r| r.name() == record.backend) {
            r.restore_entry(record, body)
                .await
                .with_context(|| format!("restoring {} into {}", record.path, r.name()))?;
        }
        Ok(())
    }
}
