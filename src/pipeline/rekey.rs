//! `ngbak rekey`: an encrypted backup's file key re-wrapped to new recipients. Only the age header
//! changes; the body's bytes are streamed across untouched (no re-encryption of gigabytes). The
//! sealed manifest is sealed to the new recipients, and the sidecar rewritten and signed again.
//! The old recipients' identities no longer open the new object (a versioned bucket keeps the
//! old version until its noncurrent versions expire).

use super::catalog::list_backups;
use super::restore::load_trusted;
use crate::archive::hashing::Tally;
use crate::archive::{ArchiveDigest, Sidecar};
use crate::authenticity::{put_sidecar, Keys};
use crate::encryption::{rewrap, MAX_HEADER};
use crate::id::BackupId;
use crate::store::ObjectStore;
use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// What a rekey did (or, in a dry run, would do).
#[derive(Debug, Serialize)]
pub struct RekeyReport {
    pub backup_id: BackupId,
    pub dry_run: bool,
    pub from: Vec<String>,
    pub to: Vec<String>,
    /// The new object's size and SHA-256 (a dry run: the old one's).
    pub archive_bytes: u64,
    pub archive_sha256: String,
    /// Bytes of the body carried over unchanged.
    pub body_bytes: u64,
    /// The key that signed the new sidecar (none: it is unsigned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

/// Re-wraps backup `id` to `to` (`keys` opens it, checks its signature, and signs the result).
pub async fn rekey(
    store: &Arc<dyn ObjectStore>,
    id: &BackupId,
    to: &[age::x25519::Recipient],
    keys: &Keys,
    dry_run: bool,
) -> Result<RekeyReport> {
    if to.is_empty() {
        bail!("rekey needs the new recipients: pass --encrypt-to age1… (one or more; NGBAK_RECIPIENTS)");
    }
    if keys.trust.is_required() && keys.signing_key.is_none() && !dry_run {
        bail!(
            "rekey rewrites the sidecar, so its signature must be made again and trusted keys are configured: \
             pass the signing key (--signing-key, --kms-signing-key …); nothing was changed"
        );
    }
    let (sidecar, _) = load_trusted(store.as_ref(), id, &keys.trust).await?;
    let Some(encryption) = sidecar.encryption.clone() else {
        bail!("backup {id} is not encrypted: nothing to rekey (back it up again with --encrypt-to)");
    };
    let holder = format!("ngbak rekey of {id} (pid {})", std::process::id());
    let lock = super::writing_lock(store, id, &holder).await?;
    let result = rekey_locked(store.as_ref(), &sidecar, to, keys, dry_run).await;
    lock.release().await.ok();
    let (archive, body_bytes) = result?;
    Ok(RekeyReport {
        backup_id: id.clone(),
        dry_run,
        from: encryption.recipients,
        to: to.iter().map(|r| r.to_string()).collect(),
        archive_bytes: archive.size,
        archive_sha256: archive.sha256,
        body_bytes,
        signed_by: if dry_run { None } else { keys.signing_key.as_ref().map(|k| k.id()) },
    })
}

async fn rekey_locked(
    store: &dyn ObjectStore,
    sidecar: &Sidecar,
    to: &[age::x25519::Recipient],
    keys: &Keys,
    dry_run: bool,
) -> Result<(ArchiveDigest, u64)> {
    let id = &sidecar.manifest.backup_id;
    let key = id.archive_key();
    let object = store.get(&key, None).await?;
    let etag = object.meta.etag.clone().context("the store gave the archive no version to replace")?;
    let mut body = object.body;
    let mut head = Vec::new();
    (&mut body).take(MAX_HEADER as u64).read_to_end(&mut head).await.with_context(|| format!("reading {key}"))?;
    let rewrapped = rewrap(&head, &sidecar.opener, to).with_context(|| format!("re-wrapping the key of {key}"))?;
    if dry_run {
        return Ok((sidecar.archive.clone(), sidecar.archive.size - rewrapped.body_offset as u64));
    }
    let mut old = Tally::default();
    old.update(&head);
    let mut new = Tally::default();
    let mut upload = store.start_replacing(&key, &etag).await?;
    let copied: Result<u64> = crate::stop::or_stop(async {
        let first = [&rewrapped.header[..], &head[rewrapped.body_offset..]].concat();
        new.update(&first);
        upload.write(Bytes::from(first)).await?;
        loop {
            let mut buf = BytesMut::with_capacity(1 << 20);
            if body.read_buf(&mut buf).await.with_context(|| format!("reading {key}"))? == 0 {
                break;
            }
            old.update(&buf);
            new.update(&buf);
            upload.write(buf.freeze()).await?;
        }
        let (sha256, size) = old.clone().finish();
        if sha256 != sidecar.archive.sha256 || size != sidecar.archive.size {
            bail!(
                "{key} is not the archive its sidecar describes (SHA-256 {sha256}, {size} bytes); nothing was changed"
            );
        }
        Ok(size - rewrapped.body_offset as u64)
    })
    .await;
    let body_bytes = match copied {
        Ok(n) => n,
        Err(e) => {
            upload.abort().await.ok();
            return Err(e);
        }
    };
    let (sha256, size) = new.finish();
    crate::store::complete_exactly(store, upload, &key, size).await?;
    let mut rekeyed = sidecar.clone();
    rekeyed.archive = ArchiveDigest { key: key.clone(), size, sha256 };
    if let Some(e) = rekeyed.encryption.as_mut() {
        e.recipients = to.iter().map(|r| r.to_string()).collect();
    }
    if keys.signing_key.is_none() {
        // The old signature is over the old sidecar: left, it would only say "changed after signing".
        store.delete(&id.signature_key()).await?;
    }
    put_sidecar(store, &rekeyed, keys.signing_key.as_deref(), false).await.with_context(|| {
        format!(
            "{key} was re-wrapped, but writing its new sidecar failed: the backup reads as damaged (its sidecar \
             describes the previous version). Restore the archive's previous object version (S3 versioning keeps \
             it) and run `ngbak rekey {id}` again"
        )
    })?;
    Ok((rekeyed.archive, body_bytes))
}

/// Every encrypted backup in the store that `keys` opens, re-wrapped to `to`.
pub async fn rekey_all(
    store: &Arc<dyn ObjectStore>,
    to: &[age::x25519::Recipient],
    keys: &Keys,
    dry_run: bool,
) -> Result<Vec<RekeyReport>> {
    let mut out = Vec::new();
    for listing in list_backups(store.as_ref(), &keys.trust).await? {
        if listing.encrypted_to.is_none() || listing.status != "complete" {
            continue;
        }
        out.push(rekey(store, &listing.backup_id, to, keys, dry_run).await?);
    }
    Ok(out)
}
