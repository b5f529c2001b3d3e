//! Before any write: the sidecar read and checked, and the verification pass, which reads the
//! whole archive against its sidecar and has each restorer parse every record it would write,
//! adding up each backend's content digest.

use crate::archive::reader::{read_archive, CheckOnly, EntryVisitor, ReadReport};
use crate::archive::{ContentDigest, EntryRecord, Sidecar, StoredSidecar};
use crate::authenticity::{read_signature, Provenance, Trust};
use crate::backends::Restorer;
use crate::failure::FailureKind;
use crate::id::BackupId;
use crate::pipeline::catalog::load_stored;
use crate::stop::or_stop;
use crate::store::ObjectStore;
use anyhow::{Context, Result};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;
use tokio::io::AsyncRead;

/// Reads and parses the sidecar of a backup; who signed it is not asked, and an encrypted
/// backup's is not opened (see [`load_trusted`]).
pub async fn load_sidecar(store: &dyn ObjectStore, id: &BackupId) -> Result<Sidecar> {
    load_stored(store, id).await?.0.open(&Default::default())
}

/// The sidecar of backup `id` and who signed it, as `trust` judges: a backup no trusted key
/// vouches for fails here (kind `Unauthenticated`), before its archive is read; an encrypted one
/// is opened with `trust`'s identities (none of them fitting is a configuration error), and a
/// plain one is refused under `--require-encrypted`.
pub async fn load_trusted(store: &dyn ObjectStore, id: &BackupId, trust: &Trust) -> Result<(Sidecar, Provenance)> {
    let (stored, bytes) = load_stored(store, id).await?;
    let provenance = judge(store, id, &stored, &bytes, trust).await?;
    let sidecar =
        stored.open(&trust.identities).map_err(|e| FailureKind::ConfigurationError.marked(format!("{e:#}")))?;
    if trust.require_encrypted && sidecar.encryption.is_none() {
        let message = format!(
            "backup {id} is not encrypted, and encryption is required (--require-encrypted); nothing was read or \
             written. Restore an encrypted backup"
        );
        return Err(FailureKind::IntegrityError.marked(message).into());
    }
    Ok((sidecar, provenance))
}

/// Who signed the sidecar `bytes` of backup `id`, as `trust` judges.
async fn judge(
    store: &dyn ObjectStore,
    id: &BackupId,
    stored: &StoredSidecar,
    bytes: &[u8],
    trust: &Trust,
) -> Result<Provenance> {
    match read_signature(store, id).await {
        Ok(signature) => trust.judge(id, bytes, &stored.archive().sha256, signature.as_deref()),
        Err(e) if trust.is_required() => {
            trust.refuse(id, format!("the signature {} could not be read: {e:#}", id.signature_key()))
        }
        Err(_) => Ok(Provenance::Unsigned),
    }
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub backup_id: BackupId,
    pub ok: bool,
    pub entries: usize,
    pub archive_bytes: u64,
    pub archive_sha256: String,
    /// Who signed the backup.
    pub signature: Provenance,
    /// What was proved: `entries` (every entry and the whole archive) or, for an encrypted
    /// archive read without an identity, `ciphertext` (its size and SHA-256 only).
    pub checked: &'static str,
    /// The version (ETag) that was read.
    #[serde(skip)]
    pub etag: Option<String>,
}

/// Reads the whole archive and checks it against its sidecar, entry by entry and as a whole.
/// A backup no trusted key vouches for is refused before its archive is read. An encrypted one
/// read without an identity is proved as ciphertext only (size and SHA-256), and no sidecar is
/// returned.
pub async fn verify(store: &dyn ObjectStore, id: &BackupId, trust: &Trust) -> Result<(Option<Sidecar>, VerifyReport)> {
    let (stored, bytes) = load_stored(store, id).await?;
    if stored.is_encrypted() && trust.identities.is_empty() {
        let expected = stored.archive();
        let signature = judge(store, id, &stored, &bytes, trust).await?;
        let object = store.get(&id.archive_key(), None).await?;
        let etag = object.meta.etag.clone();
        let mut body = crate::archive::hashing::HashingReader::new(object.body);
        tokio::io::copy(&mut body, &mut tokio::io::sink())
            .await
            .with_context(|| format!("reading {}", id.archive_key()))?;
        let (sha256, size) = body.into_tally().finish();
        if sha256 != expected.sha256 || size != expected.size {
            return Err(crate::archive::reader::ArchiveError::DigestMismatch {
                key: id.archive_key(),
                expected: expected.sha256.clone(),
                actual: sha256,
                expected_size: expected.size,
                actual_size: size,
                detail: String::new(),
            }
            .into());
        }
        let report = VerifyReport {
            backup_id: id.clone(),
            ok: true,
            entries: 0,
            archive_bytes: size,
            archive_sha256: sha256,
            signature,
            checked: "ciphertext",
            etag,
        };
        return Ok((None, report));
    }
    let (sidecar, signature) = load_trusted(store, id, trust).await?;
    let object = store.get(&id.archive_key(), None).await?;
    let etag = object.meta.etag.clone();
    let ReadReport { entries, archive_bytes, archive_sha256 } =
        read_archive(object.body, &sidecar, &mut CheckOnly).await?;
    let report = VerifyReport {
        backup_id: id.clone(),
        ok: true,
        entries,
        archive_bytes,
        archive_sha256,
        signature,
        checked: "entries",
        etag,
    };
    Ok((Some(sidecar), report))
}

/// The archive as verified: where it is, and the version (ETag) every later read is pinned to.
#[derive(Clone, Copy)]
pub(super) struct Verified<'a> {
    pub(super) store: &'a dyn ObjectStore,
    pub(super) id: &'a BackupId,
    pub(super) sidecar: &'a Sidecar,
    pub(super) etag: Option<&'a str>,
}

/// The verification pass over `restorers` (each parses its own entries); returns what was read
/// and, per backend, the content digest its restored state must read back as (`None` when the
/// archive gives nothing to compare with).
pub(super) async fn verification_pass(
    store: &dyn ObjectStore,
    id: &BackupId,
    sidecar: &Sidecar,
    restorers: &mut Vec<Box<dyn Restorer>>,
) -> Result<(ReadReport, Option<String>, BTreeMap<String, Option<ContentDigest>>)> {
    let manifest = &sidecar.manifest;
    tracing::info!(backup_id = %id, "verifying the archive and every record before touching any backend");
    let object = store.get(&id.archive_key(), None).await?;
    let etag = object.meta.etag.clone();
    let mut checking = Checking { restorers, digests: BTreeMap::new() };
    let checked = or_stop(read_archive(object.body, sidecar, &mut checking))
        .await
        .context(FailureKind::IntegrityError.marked("verifying the archive (nothing was written)"))?;
    let mut parsed = std::mem::take(&mut checking.digests);
    for r in restorers.iter_mut() {
        let checked = or_stop(r.checked_digest()).await.with_context(|| {
            FailureKind::IntegrityError.marked(format!(
                "the {} records of backup {id} hold one that cannot be restored; nothing was restored",
                r.name()
            ))
        })?;
        if let Some(digest) = checked {
            parsed.entry(r.name().to_string()).or_default().merge(&digest);
        }
    }
    let mut expected_digests = BTreeMap::new();
    for r in restorers.iter() {
        let name = r.name();
        let from_records = parsed.get(name).copied().unwrap_or_default();
        let expected = match manifest.backends[name].content_digest {
            Some(recorded) if recorded.records > 0 || from_records.records > 0 => {
                if from_records != recorded {
                    return Err(FailureKind::IntegrityError
                        .marked(format!(
                            "the {name} records of backup {id} read back as {from_records:?}, but the backup \
                             recorded {recorded:?}: this ngbak would not restore them exactly. Nothing was \
                             restored; report this as a bug, and restore with the ngbak version that made the \
                             backup"
                        ))
                        .into());
                }
                Some(recorded)
            }
            Some(recorded) => Some(recorded),
            // An archive of an older ngbak: what its records parse to is what must come back.
            None => (from_records.records > 0).then_some(from_records),
        };
        expected_digests.insert(name.to_string(), expected);
    }
    tracing::info!(backup_id = %id, entries = checked.entries, sha256 = %checked.archive_sha256, "archive verified");
    Ok((checked, etag, expected_digests))
}

/// The verification pass: each selected backend's restorer parses its entries as the write pass
/// would, and the canonical records add up to that backend's content digest.
struct Checking<'a> {
    restorers: &'a mut Vec<Box<dyn Restorer>>,
    digests: BTreeMap<String, ContentDigest>,
}

#[async_trait]
impl EntryVisitor for Checking<'_> {
    async fn visit(&mut self, record: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        if let Some(r) = self.restorers.iter_mut().find(|r| r.name() == record.backend) {
            let cannot =
                || format!("{} in backup holds a record that cannot be restored; nothing was restored", record.path);
            if r.queue_check(record, body).await.with_context(cannot)? {
                return Ok(());
            }
            let digest = self.digests.entry(record.backend.clone()).or_default();
            r.check_entry(record, body, &mut |canonical: &[u8]| digest.add(canonical)).await.with_context(cannot)?;
        }
        Ok(())
    }
}
