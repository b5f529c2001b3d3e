//! Archives without a sidecar: verifying one on its own (`ngbak verify --file`) and bringing one
//! into a store (`ngbak import`), e.g. an archive downloaded with `ngbak presign` and kept
//! elsewhere, or one uploaded into the bucket by hand.
//!
//! An archive's closing `manifest.json` lists every entry's size and SHA-256, so an archive alone
//! proves its entries; only the whole-file hash needs the sidecar (or `--sha256`). An import
//! reads the source twice: once to prove it, once to upload it, hashing the second read and
//! completing the upload only when it is byte for byte the archive that was proved.

use crate::archive::hashing::HashingReader;
use crate::archive::reader::{read_archive, read_standalone, CheckOnly};
use crate::archive::Sidecar;
use crate::authenticity::{put_sidecar, Keys, Provenance, SigningKey};
use crate::id::BackupId;
use crate::store::ObjectStore;
use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use futures::TryStreamExt;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Where a standalone archive is read from.
#[derive(Clone, Debug)]
pub enum ArchiveSource {
    File(PathBuf),
    /// An `http(s)://` URL, e.g. one printed by `ngbak presign`.
    Url(String),
    /// An archive already in the store under its own key, without a sidecar (uploaded by hand).
    InStore(BackupId),
    /// An `s3://` URL: it must name an archive inside the store (see [`ArchiveSource::resolve`]).
    StoreUrl(String),
    /// An object of the store that is not a backup's (an upload the API function staged).
    Staged(String),
}

impl ArchiveSource {
    /// A URL, a file path, or — when no such file exists — the id of an archive already in the store.
    pub fn parse(source: &str) -> Result<Self> {
        let lower = source.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            return Ok(ArchiveSource::Url(source.to_string()));
        }
        if lower.starts_with("s3://") {
            return Ok(ArchiveSource::StoreUrl(source.to_string()));
        }
        let path = PathBuf::from(source);
        if !path.exists() {
            if let Ok(id) = source.parse::<BackupId>() {
                return Ok(ArchiveSource::InStore(id));
            }
            bail!(
                "{source:?} is neither a file, an http(s) URL, nor the id of an archive in the store; for an archive \
                 in another bucket, download it or pass a URL from `ngbak presign`"
            );
        }
        Ok(ArchiveSource::File(path))
    }

    /// Whether reading it needs the store.
    pub fn needs_store(&self) -> bool {
        matches!(self, ArchiveSource::InStore(_) | ArchiveSource::StoreUrl(_) | ArchiveSource::Staged(_))
    }

    /// Maps an `s3://` URL to the archive of the store it names; one outside the store is refused
    /// (ngbak reads only its own store: download it, or pass a URL from `ngbak presign`).
    pub fn resolve(self, store: Option<&dyn ObjectStore>) -> Result<Self> {
        let ArchiveSource::StoreUrl(url) = &self else { return Ok(self) };
        let store = store.context("an s3:// archive is read through the store: pass --store")?;
        let base = store.url();
        let id = url
            .strip_prefix(&base)
            .filter(|rest| !rest.contains('/'))
            .and_then(BackupId::from_archive_key)
            .with_context(|| {
                format!("{url} is not an archive in the store {base}; download it, or pass a URL from `ngbak presign`")
            })?;
        Ok(ArchiveSource::InStore(id))
    }

    /// The source for messages: a URL without its query (a presigned URL's signature stays out).
    pub fn shown(&self) -> String {
        match self {
            ArchiveSource::File(p) => p.display().to_string(),
            ArchiveSource::Url(u) => match u.split_once('?') {
                Some((base, _)) => format!("{base}?…"),
                None => u.clone(),
            },
            ArchiveSource::InStore(id) => id.archive_key(),
            ArchiveSource::StoreUrl(url) => url.clone(),
            ArchiveSource::Staged(key) => key.clone(),
        }
    }

    /// A fresh read of the whole source.
    async fn open(&self, store: Option<&dyn ObjectStore>) -> Result<Box<dyn AsyncRead + Send + Unpin>> {
        let shown = self.shown();
        match self {
            ArchiveSource::File(path) => {
                let file = tokio::fs::File::open(path).await.with_context(|| format!("opening {shown}"))?;
                Ok(Box::new(file))
            }
            ArchiveSource::Url(url) => {
                let response = crate::net::clients::http()?.get(url).send().await.map_err(|e| {
                    anyhow::anyhow!("downloading {shown} failed: {}", crate::net::scrub(&e.without_url().to_string()))
                })?;
                let status = response.status();
                if !status.is_success() {
                    bail!(
                        "downloading {shown} failed: HTTP {status}{}",
                        if status.as_u16() == 403 { " (a presigned URL that expired? make a new one)" } else { "" }
                    );
                }
                let body = response.bytes_stream().map_err(|e| std::io::Error::other(e.without_url()));
                Ok(Box::new(tokio_util::io::StreamReader::new(body)))
            }
            ArchiveSource::InStore(id) => {
                let store = store.context("an archive in a store needs --store")?;
                Ok(store.get(&id.archive_key(), None).await?.body)
            }
            ArchiveSource::StoreUrl(url) => bail!("{url} was not resolved against the store"),
            ArchiveSource::Staged(key) => {
                let store = store.context("a staged upload is read through the store")?;
                Ok(store.get(key, None).await?.body)
            }
        }
    }
}

/// What `verify --file` and `import` established.
#[derive(Debug, Serialize)]
pub struct StandaloneReport {
    pub backup_id: BackupId,
    pub source: String,
    pub ok: bool,
    pub entries: usize,
    pub archive_bytes: u64,
    pub archive_sha256: String,
    /// Whether the whole-file SHA-256 was compared with one given (`--sha256`); without it only
    /// the entries and the structure are proven.
    pub whole_file_checked: bool,
    pub backends: Vec<String>,
    /// Set by an import: where the archive now is in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported_to: Option<String>,
    /// Set by an import: who vouches for the archive (the signature of the sidecar given with
    /// `--sidecar`, or none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Provenance>,
    /// Set by an import: the key that signed the sidecar the import wrote (none when the original
    /// sidecar and its signature were kept, or no signing key is configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

impl StandaloneReport {
    fn new(sidecar: &Sidecar, source: &ArchiveSource, whole_file_checked: bool) -> Self {
        StandaloneReport {
            backup_id: sidecar.manifest.backup_id.clone(),
            source: source.shown(),
            ok: true,
            entries: sidecar.manifest.entries.len(),
            archive_bytes: sidecar.archive.size,
            archive_sha256: sidecar.archive.sha256.clone(),
            whole_file_checked,
            backends: sidecar.manifest.backends.keys().cloned().collect(),
            imported_to: None,
            signature: None,
            signed_by: None,
        }
    }
}

/// Proves a standalone archive against its own manifest (and `sha256`, when given).
/// An encrypted archive is opened with `identities`.
pub async fn verify_file(
    source: &ArchiveSource,
    sha256: Option<&str>,
    store: Option<&dyn ObjectStore>,
    identities: &crate::encryption::Identities,
) -> Result<(Sidecar, StandaloneReport)> {
    let shown = source.shown();
    let sidecar =
        crate::stop::or_stop(async { read_standalone(source.open(store).await?, &shown, sha256, identities).await })
            .await?;
    let report = StandaloneReport::new(&sidecar, source, sha256.is_some());
    Ok((sidecar, report))
}

/// Verifies `source`, then stores it as backup `<its id>` with a sidecar, so that it can be listed,
/// verified and restored like any backup. `expected_id` guards against importing the wrong file
/// (an archive's id is written inside it and cannot change). With trusted keys, the archive must
/// come with its original sidecar (`given_sidecar`) signed by one of them, which is then kept as
/// it is; otherwise the import writes a sidecar of its own, signed by `keys.signing_key`. Nothing
/// is left in the store when any check fails.
pub async fn import(
    store: &std::sync::Arc<dyn ObjectStore>,
    source: &ArchiveSource,
    expected_id: Option<&BackupId>,
    sha256: Option<&str>,
    given_sidecar: Option<&Path>,
    keys: &Keys,
) -> Result<StandaloneReport> {
    let source = &source.clone().resolve(Some(store.as_ref()))?;
    let (sidecar, mut report) = verify_file(source, sha256, Some(store.as_ref()), &keys.trust.identities).await?;
    let id = sidecar.manifest.backup_id.clone();
    if keys.encryption.require_encrypted && sidecar.encryption.is_none() {
        bail!(
            "{} is not encrypted, and encryption is required (--require-encrypted); nothing was imported",
            source.shown()
        );
    }
    if let Some(expected) = expected_id {
        if expected != &id {
            bail!(
                "{} holds backup {id}, not {expected}: an archive's id is written inside it and cannot be changed; \
                 import it as {id}, or check that this is the file you meant",
                source.shown()
            );
        }
    }
    let (provenance, written) = vouched(&sidecar, given_sidecar, keys)?;
    // The lock a backup with this id takes: an import and a backup never write one id at once.
    let holder = format!("ngbak import of {} (pid {})", source.shown(), std::process::id());
    let lock = super::writing_lock(store, &id, &holder).await?;
    let result = import_locked(store.as_ref(), source, &sidecar, &written).await;
    lock.release().await.ok();
    result?;
    report.imported_to = Some(format!("{} in {}", id.archive_key(), store.url()));
    report.signed_by = match &written {
        SidecarToWrite::Made(Some(key)) => Some(key.id()),
        _ => None,
    };
    report.signature = Some(provenance);
    Ok(report)
}

/// The sidecar an import writes.
enum SidecarToWrite {
    /// The archive's original sidecar, byte for byte, and its signature (when it has one).
    Original { bytes: Vec<u8>, signature: Option<Vec<u8>> },
    /// One made from the archive, signed by this key (when one is configured).
    Made(Option<std::sync::Arc<SigningKey>>),
}

/// Who vouches for the archive that `sidecar` describes (as proved from the archive itself), and
/// which sidecar to keep. A sidecar given must describe exactly that archive; its signature is
/// judged by the trusted keys. Without one, an import under trusted keys is refused (a file alone
/// carries no signature) unless `--allow-unsigned` takes it.
fn vouched(sidecar: &Sidecar, given: Option<&Path>, keys: &Keys) -> Result<(Provenance, SidecarToWrite)> {
    let id = &sidecar.manifest.backup_id;
    let Some(path) = given else {
        let provenance = if keys.trust.is_required() {
            keys.trust.refuse(
                id,
                format!(
                    "the archive of backup {id} comes without its sidecar, and a file alone carries no signature \
                     (pass its sidecar with --sidecar FILE, its signature FILE.minisig beside it)"
                ),
            )?
        } else {
            Provenance::Unsigned
        };
        return Ok((provenance, SidecarToWrite::Made(keys.signing_key.clone())));
    };
    let bytes = read_bounded(path, crate::store::MAX_SMALL_OBJECT)?;
    let original: Sidecar = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not an ngbak sidecar (a <id>.manifest.json)", path.display()))?;
    if &original != sidecar {
        bail!(
            "the sidecar {} does not describe this archive (it names backup {}, {} bytes, SHA-256 {}; the archive is \
             backup {id}, {} bytes, SHA-256 {}): pass the sidecar that was stored with it",
            path.display(),
            original.manifest.backup_id,
            original.archive.size,
            original.archive.sha256,
            sidecar.archive.size,
            sidecar.archive.sha256
        );
    }
    let signature_path = format!("{}.minisig", path.display());
    let signature = match Path::new(&signature_path).exists() {
        true => Some(read_bounded(Path::new(&signature_path), crate::authenticity::MAX_SIGNATURE_BYTES)?),
        false => None,
    };
    let provenance = keys.trust.judge(id, &bytes, &sidecar.archive.sha256, signature.as_deref())?;
    Ok((provenance, SidecarToWrite::Original { bytes, signature }))
}

/// A whole small file, refused when it is larger than `limit` (read no further).
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!("{} is larger than the {limit} bytes such a file can have; it is not what ngbak wrote", path.display());
    }
    Ok(bytes)
}

async fn import_locked(
    store: &dyn ObjectStore,
    source: &ArchiveSource,
    sidecar: &Sidecar,
    written: &SidecarToWrite,
) -> Result<()> {
    let id = &sidecar.manifest.backup_id;
    if store.head(&id.sidecar_key()).await?.is_some() {
        bail!("backup {id} is already in {} with its sidecar; nothing to import (`ngbak verify {id}`)", store.url());
    }
    match store.head(&id.archive_key()).await? {
        // The very object just verified in place: its size still says so (were it replaced since,
        // every later verify or restore would refuse it against this sidecar).
        Some(meta) if matches!(source, ArchiveSource::InStore(s) if s == id) => {
            if meta.size != sidecar.archive.size {
                bail!("{} changed while it was verified; import it again", id.archive_key());
            }
        }
        // In the store already (uploaded by hand, or an import that stopped before its sidecar):
        // prove that object is the archive just verified, then only the sidecar is written.
        Some(_) => {
            let object = store.get(&id.archive_key(), None).await?;
            read_archive(object.body, sidecar, &mut CheckOnly).await.with_context(|| {
                format!(
                    "{} in {} is not the archive that was verified: delete it (`ngbak delete {id}`) and import again",
                    id.archive_key(),
                    store.url()
                )
            })?;
        }
        None => upload_same(store, source, sidecar).await?,
    }
    let stored = match written {
        SidecarToWrite::Made(key) => put_sidecar(store, sidecar, key.as_deref(), true).await?,
        SidecarToWrite::Original { bytes, signature } => {
            if let Some(signature) = signature {
                store.put(&id.signature_key(), bytes::Bytes::from(signature.clone())).await?;
            }
            store.put_if_absent(&id.sidecar_key(), bytes::Bytes::from(bytes.clone())).await?
        }
    };
    if !stored {
        bail!("another run wrote the sidecar of {id} meanwhile; `ngbak verify {id}` checks it");
    }
    Ok(())
}

/// Uploads a second read of `source` under the archive's key, completing only when that read is
/// exactly the verified archive (size and SHA-256); otherwise the upload is aborted.
async fn upload_same(store: &dyn ObjectStore, source: &ArchiveSource, sidecar: &Sidecar) -> Result<()> {
    let key = &sidecar.archive.key;
    let mut body = HashingReader::new(source.open(Some(store)).await?);
    let mut upload = store.start_upload(key).await?;
    // A stop (signal, deadline) takes the failure path: the upload is aborted.
    let copied: Result<()> = crate::stop::or_stop(async {
        loop {
            let mut buf = BytesMut::with_capacity(1 << 20);
            if body.read_buf(&mut buf).await.with_context(|| format!("reading {} again", source.shown()))? == 0 {
                break;
            }
            upload.write(buf.freeze()).await?;
        }
        let (sha256, size) = body.tally().clone().finish();
        if sha256 != sidecar.archive.sha256 || size != sidecar.archive.size {
            bail!(
                "{} changed between the check and the upload ({size} bytes, SHA-256 {sha256} on the second read); \
                 nothing was imported — import it again once it no longer changes",
                source.shown()
            );
        }
        Ok(())
    })
    .await;
    if let Err(e) = copied {
        if let Err(abort) = upload.abort().await {
            tracing::error!("could not abort the upload of {key}: {abort:#}");
        }
        return Err(e);
    }
    crate::store::complete_exactly(store, upload, key, sidecar.archive.size).await
}

/// An archive arriving in chunks (an HTTP request's body).
pub type ChunkStream = futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

/// An archive sent as a stream (an HTTP upload) was larger than allowed.
#[derive(Debug, thiserror::Error)]
#[error("the upload is larger than the {0} bytes this server accepts (NGBAK_API_MAX_UPLOAD_BYTES); nothing was stored")]
pub struct TooLarge(pub u64);

/// Imports an archive that arrives as a stream of chunks (`POST /api/v1/uploads`), read once:
/// each chunk goes both into a pending upload under the archive's key and into the verifier, and
/// the upload is completed only when the whole stream proved to be backup `id`'s archive, no
/// larger than `limit`; otherwise (or when the stream breaks off) it is aborted, so nothing stays.
pub async fn import_stream(
    store: &std::sync::Arc<dyn ObjectStore>,
    body: ChunkStream,
    id: &BackupId,
    limit: u64,
    keys: &Keys,
) -> Result<StandaloneReport> {
    if super::catalog::exists(store.as_ref(), id).await? {
        return Err(crate::failure::FailureKind::BackupExists
            .marked(format!("backup {id} is already in {}; delete it first or upload under its own id", store.url()))
            .into());
    }
    let holder = format!("upload of {id} (pid {})", std::process::id());
    let lock = super::writing_lock(store, id, &holder).await?;
    let result = import_stream_locked(store.as_ref(), body, id, limit, keys).await;
    lock.release().await.ok();
    result
}

async fn import_stream_locked(
    store: &dyn ObjectStore,
    mut body: ChunkStream,
    id: &BackupId,
    limit: u64,
    keys: &Keys,
) -> Result<StandaloneReport> {
    use futures::StreamExt;
    let shown = format!("the upload of {id}");
    let key = id.archive_key();
    let mut upload = store.start_upload(&key).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    let verifier = {
        let reader = tokio_util::io::StreamReader::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        let identities = keys.trust.identities.clone();
        let shown = shown.clone();
        tokio::spawn(async move { read_standalone(Box::new(reader), &shown, None, &identities).await })
    };
    let copied: Result<u64> = crate::stop::or_stop(async {
        let mut total = 0u64;
        // A client that stops sending is given up after the request timeout, not waited for.
        let idle = crate::net::timeouts::policy().request;
        while let Some(chunk) = tokio::time::timeout(idle, body.next()).await.map_err(|_| {
            anyhow::anyhow!(
                "{shown} sent nothing for {} s after {total} bytes (NGBAK_REQUEST_TIMEOUT); the upload was given up",
                idle.as_secs()
            )
        })? {
            let chunk = chunk.map_err(|e| anyhow::anyhow!("{shown} broke off after {total} bytes: {e}"))?;
            total += chunk.len() as u64;
            if total > limit {
                return Err(TooLarge(limit).into());
            }
            upload.write(chunk.clone()).await?;
            if tx.send(Ok(chunk)).await.is_err() {
                break; // the verifier stopped: its error says why
            }
        }
        Ok(total)
    })
    .await;
    drop(tx);
    let verified = match copied {
        Ok(_) => verifier.await.context("the verifier task failed")?,
        Err(e) => {
            verifier.abort();
            Err(e)
        }
    };
    let sidecar = match verified.and_then(|s| check_uploaded(s, id, keys)) {
        Ok(sidecar) => sidecar,
        Err(e) => {
            if let Err(abort) = upload.abort().await {
                tracing::error!("could not abort the upload of {key}: {abort:#}");
            }
            let refused = format!("{shown} was refused; nothing was stored");
            return Err(e.context(crate::failure::FailureKind::IntegrityError.marked(refused)));
        }
    };
    crate::store::complete_exactly(store, upload, &key, sidecar.archive.size).await?;
    let (provenance, written) = vouched(&sidecar, None, keys)?;
    let SidecarToWrite::Made(signing_key) = &written else { unreachable!("no sidecar was given") };
    if !put_sidecar(store, &sidecar, signing_key.as_deref(), true).await? {
        bail!("another run wrote the sidecar of {id} meanwhile; `ngbak verify {id}` checks it");
    }
    let mut report = StandaloneReport::new(&sidecar, &ArchiveSource::InStore(id.clone()), false);
    report.source = shown;
    report.imported_to = Some(format!("{key} in {}", store.url()));
    report.signed_by = signing_key.as_ref().map(|k| k.id());
    report.signature = Some(provenance);
    Ok(report)
}

/// The archive proved from an upload must be the one it was sent as, and trusted as the
/// configuration asks.
fn check_uploaded(sidecar: Sidecar, id: &BackupId, keys: &Keys) -> Result<Sidecar> {
    if &sidecar.manifest.backup_id != id {
        return Err(crate::failure::FailureKind::IntegrityError
            .marked(format!(
                "the archive holds backup {}, not {id}: an archive's id is written inside it and cannot change; \
                 upload it as {}",
                sidecar.manifest.backup_id, sidecar.manifest.backup_id
            ))
            .into());
    }
    if keys.encryption.require_encrypted && sidecar.encryption.is_none() {
        return Err(crate::failure::FailureKind::IntegrityError
            .marked("the archive is not encrypted, and encryption is required (--require-encrypted)")
            .into());
    }
    // Under trusted keys a bare archive carries no signature: refused unless --allow-unsigned.
    vouched(&sidecar, None, keys)?;
    Ok(sidecar)
}
