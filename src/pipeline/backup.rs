//! Backup: exporters run concurrently and hand finished entries to one archive writer over a
//! bounded channel; the compressed stream goes straight into an upload. Nothing is staged on
//! disk, and any failure aborts the upload so no archive appears under the final key. Whether
//! the stores held still and link up is recorded in the manifest (`super::quiet`).

pub use super::empty::EmptyPolicy;
use super::quiet::{self, Moved};
pub use super::quiet::{LinkCheck, QuietPolicy};
use super::TOOL_VERSION;
use crate::archive::compress::Compression;
use crate::archive::format::{ArchiveHeader, FORMAT_NAME, FORMAT_VERSION, HEADER_PATH, MANIFEST_PATH};
use crate::archive::{
    ArchiveDigest, ArchiveWriter, BackendManifest, ConsistencySummary, EntryBody, Manifest, PendingEntry, Sidecar,
};
use crate::authenticity::put_sidecar;
use crate::backends::{EntrySender, Exporter};
use crate::id::BackupId;
use crate::progress::Progress;
use crate::store::{lock, ObjectStore};
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use chrono::Utc;
use futures::future::try_join_all;
use futures::SinkExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::BufWriter;
use tokio::sync::mpsc;
use tokio_util::io::{CopyToBytes, SinkWriter};
use tokio_util::sync::PollSender;

#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// The id to use; default `snapshot_<UTC time>`.
    pub id: Option<BackupId>,
    /// Codec (gzip by default), level and compressing threads.
    pub compression: Compression,
    /// Target size of one NDJSON part.
    pub part_bytes: usize,
    /// The configuration in use, secrets redacted; recorded in the manifest and under `config/`.
    pub config: serde_json::Value,
    pub progress: bool,
    /// Recorded in the manifest: why this backup was taken (e.g. before a restore).
    pub reason: Option<String>,
    /// Whether a try whose stores moved fails (and how often to try).
    pub quiet: QuietPolicy,
    /// The link check run after the export (none: recorded as not checked).
    pub links: Option<LinkCheck>,
    /// What to do with a backend that exported nothing.
    pub empty: EmptyPolicy,
    /// Signs the sidecar (none: the backup is unsigned).
    pub signing_key: Option<Arc<crate::authenticity::SigningKey>>,
    /// Encrypts the archive to these age recipients (none: not encrypted).
    pub encrypt_to: crate::encryption::Recipients,
    /// Keeps an encrypted backup's manifest readable in its sidecar (`--plain-sidecar-counts`).
    pub plain_sidecar_counts: bool,
    /// Refuse to write a backup that would not be encrypted (`--require-encrypted`).
    pub require_encrypted: bool,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            id: None,
            compression: Compression::default(),
            part_bytes: 4 << 20,
            config: serde_json::Value::Null,
            progress: false,
            reason: None,
            quiet: QuietPolicy::default(),
            links: None,
            empty: EmptyPolicy::Warn,
            signing_key: None,
            encrypt_to: Default::default(),
            plain_sidecar_counts: false,
            require_encrypted: false,
        }
    }
}

/// What a finished backup reports (also the Lambda function's result).
#[derive(Clone, Debug, Serialize)]
pub struct BackupSummary {
    pub backup_id: BackupId,
    pub store: String,
    pub archive_key: String,
    pub sidecar_key: String,
    pub size: u64,
    pub sha256: String,
    /// The key id that signed the sidecar (none: unsigned).
    pub signed_by: Option<String>,
    /// The recipients the archive is encrypted to (none: not encrypted).
    pub encrypted_to: Option<Vec<String>>,
    pub entries: usize,
    pub backends: BTreeMap<String, BackendManifest>,
    pub consistency: Option<ConsistencySummary>,
    pub seconds: f64,
}

/// A backup under this id exists already (e.g. a second delivery of the same scheduled event).
#[derive(Debug, thiserror::Error)]
#[error("backup {0} already exists in the store; choose another id, or delete it first")]
pub struct AlreadyExists(pub BackupId);

/// `--a, --b or --c`: the flag of every registered backend.
fn every_backend_flag() -> String {
    let flags: Vec<&str> = crate::backends::descriptors().iter().map(|d| d.flag).collect();
    match flags.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => flags.join(""),
    }
}

pub async fn run_backup(
    store: Arc<dyn ObjectStore>,
    mut exporters: Vec<Box<dyn Exporter>>,
    options: BackupOptions,
) -> Result<BackupSummary> {
    if exporters.is_empty() {
        let message = format!("no backend configured: pass {} (or their environment variables)", every_backend_flag());
        return Err(crate::failure::FailureKind::ConfigurationError.marked(message).into());
    }
    if options.require_encrypted && options.encrypt_to.is_empty() {
        let message = "encryption is required (--require-encrypted) but no recipient is configured: pass \
                       --encrypt-to age1… (or NGBAK_RECIPIENTS); nothing was backed up";
        return Err(crate::failure::FailureKind::ConfigurationError.marked(message).into());
    }
    let started = Instant::now();
    let created_at = Utc::now();
    let id = options.id.clone().unwrap_or_else(|| BackupId::for_time(created_at));
    if store.head(&id.sidecar_key()).await?.is_some() || store.head(&id.archive_key()).await?.is_some() {
        return Err(AlreadyExists(id).into());
    }
    let holder = format!("backup on {}", hostname());
    let lock = match lock::acquire(store.clone(), &id.lock_key("backup"), &holder, lock::LEASE).await? {
        Ok(lock) => lock,
        Err(held) => {
            let message =
                format!("another backup with id {id} is running ({}); not starting a second one", held.holder);
            return Err(crate::failure::FailureKind::LockHeld.marked(message).into());
        }
    };
    let result = backup_tries(store.clone(), &mut exporters, &options, &id, created_at).await;
    lock.release().await.ok();
    let (manifest, digest) = result?;
    tracing::info!(backup_id = %id, size = digest.size, sha256 = %digest.sha256, "backup complete");
    Ok(BackupSummary {
        store: store.url(),
        archive_key: id.archive_key(),
        sidecar_key: id.sidecar_key(),
        backup_id: id,
        size: digest.size,
        sha256: digest.sha256,
        signed_by: options.signing_key.as_ref().map(|k| k.id()),
        encrypted_to: (!options.encrypt_to.is_empty()).then(|| options.encrypt_to.names()),
        entries: manifest.entries.len(),
        backends: manifest.backends,
        consistency: manifest.consistency,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Backs up once, or under `--consistent` until a try finds the stores held still.
async fn backup_tries(
    store: Arc<dyn ObjectStore>,
    exporters: &mut [Box<dyn Exporter>],
    options: &BackupOptions,
    id: &BackupId,
    created_at: chrono::DateTime<Utc>,
) -> Result<(Manifest, ArchiveDigest)> {
    let mut attempt = 1;
    loop {
        match backup_locked(store.clone(), exporters, options, id, created_at, attempt).await {
            Err(e) if e.is::<Moved>() && attempt < options.quiet.tries => {
                let pause = options.quiet.pause_before(attempt + 1);
                tracing::warn!("try {attempt} of {}: {e:#}; exporting again in {pause:?}", options.quiet.tries);
                crate::stop::or_stop(async {
                    tokio::time::sleep(pause).await;
                    Ok(())
                })
                .await?;
                attempt += 1;
            }
            Err(e) if e.is::<Moved>() => {
                let tries = options.quiet.tries;
                return Err(e.context(format!(
                    "backup {id}: the stores did not hold still in {tries} tries (--consistent); no archive was \
                     stored. Stop the indexer or the writers for the backup's length (README, Consistency), raise \
                     --consistent-tries, or back up without --consistent to store one marked inconsistent"
                )));
            }
            done => return done,
        }
    }
}

async fn backup_locked(
    store: Arc<dyn ObjectStore>,
    exporters: &mut [Box<dyn Exporter>],
    options: &BackupOptions,
    id: &BackupId,
    created_at: chrono::DateTime<Utc>,
    attempt: u32,
) -> Result<(Manifest, ArchiveDigest)> {
    let mut upload = store.start_upload(&id.archive_key()).await?;
    let (chunks_tx, mut chunks_rx) = mpsc::channel::<Bytes>(2);
    let progress = Progress::new("backup", options.progress);
    let produce = produce_archive(exporters, options, id, created_at, attempt, chunks_tx, &progress);
    // What is stored is hashed here: with encryption, the ciphertext.
    let mut stored = crate::archive::hashing::Tally::default();
    let pump = async {
        while let Some(chunk) = chunks_rx.recv().await {
            progress.add(chunk.len() as u64);
            stored.update(&chunk);
            upload.write(chunk).await?;
        }
        anyhow::Ok(())
    };
    // A stop (signal, deadline) drops the work in hand and takes the failure path: abort.
    let (produced, pumped) = match crate::stop::or_stop(async { Ok(tokio::join!(produce, pump)) }).await {
        Ok(both) => both,
        Err(stopped) => (Err(stopped), Ok(())),
    };
    progress.finish();
    let produced = match produced {
        Ok(_) if crate::stop::requested() => Err(crate::stop::stopped_error().into()),
        other => other,
    };
    let manifest = match (produced, pumped) {
        (Ok(manifest), Ok(())) => manifest,
        (produced, pumped) => {
            // The upload's own error explains a writer that could no longer send, so it comes first.
            let error = match (produced, pumped) {
                (Err(e), _) if e.is::<crate::stop::Stopped>() => e,
                (produced, pumped) => pumped.err().or(produced.err()).unwrap_or_else(|| anyhow!("backup failed")),
            };
            if let Err(abort) = upload.abort().await {
                tracing::error!("could not abort the upload of {}: {abort:#}", id.archive_key());
            }
            if error.is::<Moved>() {
                return Err(error);
            }
            return Err(error.context(format!("backup {id} failed; no archive was stored")));
        }
    };
    let (sha256, size) = stored.finish();
    crate::store::complete_exactly(store.as_ref(), upload, &id.archive_key(), size).await?;
    let digest = ArchiveDigest { key: id.archive_key(), size, sha256 };
    let encryption = (!options.encrypt_to.is_empty()).then(|| crate::archive::EncryptionInfo {
        scheme: "age".into(),
        recipients: options.encrypt_to.names(),
        counts_readable: options.plain_sidecar_counts,
    });
    let sidecar = Sidecar {
        manifest: manifest.clone(),
        archive: digest.clone(),
        encryption,
        opener: sealing_with(&options.encrypt_to),
    };
    if let Err(e) = put_sidecar(store.as_ref(), &sidecar, options.signing_key.as_deref(), false).await {
        store.delete(&id.archive_key()).await.ok();
        return Err(e.context("writing the sidecar failed; the archive was removed so no unverifiable backup is left"));
    }
    Ok((manifest, digest))
}

/// What the sidecar of an archive encrypted to `to` is sealed with beyond its public recipients:
/// the passphrase, when it is one.
fn sealing_with(to: &crate::encryption::Recipients) -> crate::encryption::Identities {
    crate::encryption::Identities { keys: Default::default(), passphrase: to.passphrase.clone() }
}

/// Runs the exporters and writes the archive into `chunks` (encrypted to `options.encrypt_to`
/// when there are recipients); returns the manifest.
async fn produce_archive(
    exporters: &mut [Box<dyn Exporter>],
    options: &BackupOptions,
    id: &BackupId,
    created_at: chrono::DateTime<Utc>,
    attempt: u32,
    chunks: mpsc::Sender<Bytes>,
    progress: &Progress,
) -> Result<Manifest> {
    let sink = PollSender::new(chunks).sink_map_err(|_| std::io::Error::other("the upload stopped"));
    let stored = BufWriter::with_capacity(1 << 20, SinkWriter::new(CopyToBytes::new(sink)));
    let out: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = match &options.encrypt_to {
        to if to.is_empty() => Box::new(stored),
        to => crate::encryption::encrypting(stored, to).await?,
    };
    let mut archive = ArchiveWriter::new(out, &options.compression, created_at.timestamp().max(0) as u64)?;
    let header = ArchiveHeader {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        backup_id: id.clone(),
        created_at,
        tool_version: TOOL_VERSION.into(),
        backends: exporters.iter().map(|e| e.name().to_string()).collect(),
    };
    archive.append_json(HEADER_PATH, &header).await?;
    let config = serde_json::to_vec_pretty(&options.config)?;
    archive
        .append(PendingEntry {
            path: "config/ngbak.json".into(),
            backend: "config".into(),
            records: 0,
            body: EntryBody::Bytes(config.into()),
        })
        .await?;

    let before = quiet::marks_before(exporters).await?;
    let (entries_tx, mut entries_rx) = mpsc::channel::<PendingEntry>(2);
    let exports = try_join_all(exporters.iter_mut().map(|exporter| {
        let out = EntrySender::new(entries_tx.clone(), exporter.name(), options.part_bytes);
        async move {
            let name = exporter.name();
            tracing::info!(backend = name, "export started");
            let mut manifest = exporter.export(&out).await.with_context(|| format!("{name} export failed"))?;
            manifest.kind = exporter.kind().into();
            tracing::info!(backend = name, stats = ?manifest.stats, "export finished");
            anyhow::Ok((name.to_string(), manifest))
        }
    }));
    drop(entries_tx);
    let write = async {
        while let Some(entry) = entries_rx.recv().await {
            let record = archive.append(entry).await?;
            tracing::debug!(path = %record.path, size = record.size, "entry written");
            progress.set_message(&record.path);
            crate::progress::entry_done(0); // the bytes are the stored ones, counted above
        }
        anyhow::Ok(())
    };
    let (backends, ()) = tokio::try_join!(exports, write)?;
    let mut backends: BTreeMap<String, BackendManifest> = backends.into_iter().collect();
    super::empty::check(exporters, &mut backends, options.empty).await?;
    let consistency = quiet::summarise(exporters, before, options.links.as_ref(), attempt).await;
    if !consistency.moved.is_empty() {
        if options.quiet.required {
            return Err(Moved(consistency.moved).into());
        }
        tracing::warn!(
            "the stores moved while the backup read them ({}); the backup is stored and marked inconsistent \
             (--consistent exports again until they hold still)",
            quiet::describe(&consistency.moved)
        );
    }
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        backup_id: id.clone(),
        created_at,
        completed_at: Utc::now(),
        tool_version: TOOL_VERSION.into(),
        backends,
        entries: archive.entries().to_vec(),
        config: options.config.clone(),
        reason: options.reason.clone(),
        consistency: Some(consistency),
    };
    let mut out = archive.finish(MANIFEST_PATH, &manifest).await?;
    tokio::io::AsyncWriteExt::shutdown(&mut out).await?;
    Ok(manifest)
}

fn hostname() -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown host".into())
}
