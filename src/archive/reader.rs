//! Reads a `.ngbak` stream and proves it matches its sidecar, entry by entry and as a whole.
//!
//! The raw bytes are pumped by their own task that always reads to the end and hashes
//! everything, even when decoding stops early: a damaged archive is then reported by the
//! whole-archive hash mismatch (its root cause), naming both hashes.

use super::format::{
    check_entry_path, ArchiveHeader, EntryRecord, Sidecar, FORMAT_NAME, FORMAT_VERSION, HEADER_PATH, MANIFEST_PATH,
};
use super::hashing::{HashingReader, Tally};
use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::io::StreamReader;

/// Largest header or manifest accepted (they are small JSON documents).
const MAX_JSON_ENTRY: u64 = crate::store::MAX_SMALL_OBJECT;

/// Largest entry held in memory to check its hash before a visitor sees it (a part is 8 MiB by
/// default, plus at most one record of up to 64 MiB); larger entries stream through.
pub const MAX_CHECKED_ENTRY: u64 = 80 << 20;

/// Receives each payload entry, in archive order, after its name, type and size were checked.
#[async_trait]
pub trait EntryVisitor: Send {
    /// Reads what it needs of `body`; what it leaves is read and hashed by the caller.
    async fn visit(&mut self, record: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()>;
    /// Receives an entry read whole and checked against its hash (see `checks_before_visit`);
    /// by default as `visit`.
    async fn visit_checked(&mut self, record: &EntryRecord, bytes: Vec<u8>) -> Result<()> {
        self.visit(record, &mut &bytes[..]).await
    }
    /// Whether entries must match their hash before `visit` sees them (writers: so an archive
    /// changed since it was verified is never half-applied). Entries larger than
    /// [`MAX_CHECKED_ENTRY`] still stream, and are checked as they are read.
    fn checks_before_visit(&self) -> bool {
        false
    }
}

/// A visitor that only reads (for `verify` and the verification pass of a restore).
pub struct CheckOnly;

#[async_trait]
impl EntryVisitor for CheckOnly {
    async fn visit(&mut self, _: &EntryRecord, _: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        Ok(())
    }
}

/// What a full read established.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReadReport {
    pub entries: usize,
    pub archive_bytes: u64,
    pub archive_sha256: String,
}

/// An error from the archive itself (as opposed to one from a visitor, e.g. a backend write).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "archive {key} does not match its sidecar: SHA-256 {actual} ({actual_size} bytes) where the \
         sidecar says {expected} ({expected_size} bytes). The archive is damaged or was replaced; \
         nothing was restored. Restore an older backup, or re-run the backup.{detail}"
    )]
    DigestMismatch {
        key: String,
        expected: String,
        actual: String,
        expected_size: u64,
        actual_size: u64,
        detail: String,
    },
    #[error("archive {key} is invalid: {reason:#}. Nothing was restored; do not use this archive.")]
    Invalid { key: String, reason: anyhow::Error },
}

/// Reads the archive stream `raw`, checks it against `sidecar`, and gives each payload entry to
/// `visitor`. Errors from the visitor are returned as they are; archive faults as [`ArchiveError`].
pub async fn read_archive(
    raw: Box<dyn AsyncRead + Send + Unpin>,
    sidecar: &Sidecar,
    visitor: &mut dyn EntryVisitor,
) -> Result<ReadReport> {
    let (pump, decoded) = Pump::start(raw);
    let walked = walk_entries(decoded, sidecar, visitor).await;
    let key = sidecar.archive.key.clone();
    let (sha256, size) = match walked {
        Err(Walk::Visitor(e)) => {
            // A backend that stopped because the archive's bytes stopped coming is not the
            // culprit: when the read from the store failed, that is the error to report.
            if let Some(read) = pump.failure.get() {
                return Err(anyhow!("{read}").context(format!(
                    "reading archive {key} from the store failed (the restore stopped there: {e:#})"
                )));
            }
            pump.task.abort();
            return Err(e);
        }
        _ => pump
            .task
            .await
            .context("archive reader task failed")?
            .with_context(|| format!("reading archive {key}"))?
            .finish(),
    };
    if sha256 != sidecar.archive.sha256 || size != sidecar.archive.size {
        let detail = match &walked {
            Err(Walk::Archive(e)) => format!(" (while decoding: {e:#})"),
            _ => String::new(),
        };
        return Err(ArchiveError::DigestMismatch {
            key,
            expected: sidecar.archive.sha256.clone(),
            actual: sha256,
            expected_size: sidecar.archive.size,
            actual_size: size,
            detail,
        }
        .into());
    }
    match walked {
        Ok(entries) => Ok(ReadReport { entries, archive_bytes: size, archive_sha256: sha256 }),
        Err(Walk::Archive(reason)) => Err(ArchiveError::Invalid { key, reason }.into()),
        Err(Walk::Visitor(e)) => Err(e),
    }
}

/// The task that reads the raw archive to its end, hashing all of it, and forwards the bytes
/// to the decoder while it listens. A failed read is recorded in `failure` before the decoder
/// sees it as an error in the stream, so whoever stops on it can name the store as the cause.
struct Pump {
    task: tokio::task::JoinHandle<std::io::Result<Tally>>,
    failure: Arc<OnceLock<String>>,
}

type Decodable = StreamReader<ReceiverStream<std::io::Result<Bytes>>, Bytes>;

impl Pump {
    fn start(raw: Box<dyn AsyncRead + Send + Unpin>) -> (Pump, Decodable) {
        let (tx, rx) = mpsc::channel(4);
        let failure = Arc::new(OnceLock::new());
        let task = tokio::spawn(pump_and_hash(raw, tx, failure.clone()));
        (Pump { task, failure }, StreamReader::new(ReceiverStream::new(rx)))
    }
}

async fn pump_and_hash(
    mut raw: Box<dyn AsyncRead + Send + Unpin>,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    failure: Arc<OnceLock<String>>,
) -> std::io::Result<Tally> {
    let mut tally = Tally::default();
    let mut listening = true;
    loop {
        let mut buf = bytes::BytesMut::with_capacity(256 << 10);
        match raw.read_buf(&mut buf).await {
            Ok(0) => return Ok(tally),
            Ok(_) => {}
            Err(e) => {
                let _ = failure.set(e.to_string());
                if listening {
                    let _ = tx.send(Err(std::io::Error::new(e.kind(), e.to_string()))).await;
                }
                return Err(e);
            }
        }
        tally.update(&buf);
        if listening && tx.send(Ok(buf.freeze())).await.is_err() {
            listening = false;
        }
    }
}

enum Walk {
    Archive(anyhow::Error),
    Visitor(anyhow::Error),
}

/// Walks the tar entries of the decompressed stream; returns the number of payload entries.
async fn walk_entries<R: tokio::io::AsyncBufRead + Send + Unpin + 'static>(
    compressed: R,
    sidecar: &Sidecar,
    visitor: &mut dyn EntryVisitor,
) -> std::result::Result<usize, Walk> {
    let manifest = &sidecar.manifest;
    let fault = |e: anyhow::Error| Walk::Archive(e);
    let opened = super::compress::decoder(compressed, &sidecar.opener).await.map_err(fault)?;
    let mut archive = tokio_tar::Archive::new(opened);
    let mut entries = archive.entries().map_err(|e| fault(e.into()))?;
    let mut seen = HashSet::new();
    let mut position = 0usize;
    let mut manifest_seen = false;
    while let Some(entry) = entries.next().await {
        let mut entry = entry.map_err(|e| fault(anyhow!(e).context("undecodable archive data")))?;
        let path = checked_path(&entry).map_err(fault)?;
        if manifest_seen {
            return Err(fault(anyhow!("entry {path:?} follows the closing manifest")));
        }
        let size = entry.effective_size();
        position += 1;
        if position == 1 || path == HEADER_PATH {
            if position != 1 || path != HEADER_PATH {
                return Err(fault(anyhow!("the first entry must be {HEADER_PATH}, found {path:?}")));
            }
            let header: ArchiveHeader = read_json(&mut entry, size).await.map_err(fault)?;
            check_header(&header, sidecar).map_err(fault)?;
            continue;
        }
        if path == MANIFEST_PATH {
            let inner: crate::archive::Manifest = read_json(&mut entry, size).await.map_err(fault)?;
            if &inner != manifest {
                return Err(fault(anyhow!("the manifest inside the archive differs from the sidecar")));
            }
            manifest_seen = true;
            continue;
        }
        let record =
            manifest.entry(&path).ok_or_else(|| fault(anyhow!("entry {path:?} is not listed in the manifest")))?;
        if !seen.insert(path.clone()) {
            return Err(fault(anyhow!("entry {path:?} appears twice")));
        }
        if size != record.size {
            return Err(fault(anyhow!("entry {path:?} has {size} bytes, the manifest says {}", record.size)));
        }
        crate::progress::entry_done(size);
        if visitor.checks_before_visit() && size <= MAX_CHECKED_ENTRY {
            let mut buf = Vec::with_capacity(size as usize);
            let mut hashing = HashingReader::new(&mut entry);
            tokio::io::copy(&mut hashing, &mut buf)
                .await
                .map_err(|e| fault(anyhow!(e).context(format!("reading entry {path:?}"))))?;
            check_entry_digest(&path, record, hashing.into_tally().finish()).map_err(fault)?;
            visitor.visit_checked(record, buf).await.map_err(Walk::Visitor)?;
            continue;
        }
        let mut hashing = HashingReader::new(&mut entry);
        let visited = visitor.visit(record, &mut hashing).await;
        tokio::io::copy(&mut hashing, &mut tokio::io::sink())
            .await
            .map_err(|e| fault(anyhow!(e).context(format!("reading entry {path:?}"))))?;
        // A damaged entry is reported as damaged, even when the visitor tripped over it first.
        check_entry_digest(&path, record, hashing.into_tally().finish()).map_err(fault)?;
        visited.map_err(Walk::Visitor)?;
    }
    if !manifest_seen {
        return Err(fault(anyhow!("the archive ends before its manifest (truncated)")));
    }
    drop(entries);
    ends_cleanly(archive).await.map_err(fault)?;
    let missing: Vec<_> =
        manifest.entries.iter().filter(|e| !seen.contains(&e.path)).map(|e| e.path.as_str()).collect();
    if !missing.is_empty() {
        return Err(fault(anyhow!("entries listed in the manifest are missing: {}", missing.join(", "))));
    }
    Ok(seen.len())
}

/// An entry's name, refused unless it is UTF-8, safe ([`check_entry_path`]) and a regular file.
fn checked_path<R: AsyncRead + Unpin>(entry: &tokio_tar::Entry<R>) -> Result<String> {
    let path = String::from_utf8(entry.path_bytes()?.into_owned()).map_err(|_| anyhow!("entry name is not UTF-8"))?;
    if entry.header().entry_type() != tokio_tar::EntryType::Regular {
        bail!("entry {path:?} is a {:?}, not a regular file", entry.header().entry_type());
    }
    check_entry_path(&path)?;
    Ok(path)
}

/// Reads a standalone archive (one without its sidecar, e.g. downloaded and kept elsewhere) and
/// proves it against its own closing manifest: every entry's size and SHA-256, the header, the
/// order, nothing missing or extra, and, when `expected_sha256` is given, the whole file. Returns
/// the sidecar that describes it. `shown` names the source in messages.
pub async fn read_standalone(
    raw: Box<dyn AsyncRead + Send + Unpin>,
    shown: &str,
    expected_sha256: Option<&str>,
    identities: &crate::encryption::Identities,
) -> Result<Sidecar> {
    let (pump, mut decoded) = Pump::start(raw);
    let encrypted = {
        use tokio::io::AsyncBufReadExt;
        let head = decoded.fill_buf().await.unwrap_or_default();
        head.starts_with(&crate::encryption::AGE_MAGIC[..4])
    };
    let walked = walk_standalone(decoded, identities).await;
    let (sha256, size) =
        pump.task.await.context("archive reader task failed")?.with_context(|| format!("reading {shown}"))?.finish();
    let invalid = |reason: anyhow::Error| {
        anyhow!("archive {shown} cannot be trusted: {reason:#}. It is damaged, incomplete or not an ngbak archive; nothing was changed")
    };
    if let Some(expected) = expected_sha256 {
        if !sha256.eq_ignore_ascii_case(expected.trim()) {
            let detail = match &walked {
                Err(e) => format!(" (while decoding: {e:#})"),
                Ok(_) => String::new(),
            };
            return Err(invalid(anyhow!(
                "its SHA-256 is {sha256} ({size} bytes), not the {expected} it was expected to have{detail}"
            )));
        }
    }
    let manifest = walked.map_err(invalid)?;
    let archive = super::ArchiveDigest { key: manifest.backup_id.archive_key(), size, sha256 };
    // An age file does not say to whom it is encrypted: the identities that opened it do.
    let encryption = encrypted.then(|| super::EncryptionInfo {
        scheme: "age".into(),
        recipients: identities.recipients(),
        counts_readable: false,
    });
    Ok(Sidecar { manifest, archive, encryption, opener: identities.clone() })
}

/// The walk of [`read_standalone`]: hashes each entry, then checks them all against the manifest
/// that closes the archive.
async fn walk_standalone<R: tokio::io::AsyncBufRead + Send + Unpin + 'static>(
    compressed: R,
    identities: &crate::encryption::Identities,
) -> Result<crate::archive::Manifest> {
    let mut archive = tokio_tar::Archive::new(super::compress::decoder(compressed, identities).await?);
    let mut entries = archive.entries()?;
    let mut header: Option<ArchiveHeader> = None;
    let mut manifest: Option<crate::archive::Manifest> = None;
    let mut seen: std::collections::HashMap<String, (String, u64)> = Default::default();
    while let Some(entry) = entries.next().await {
        let mut entry = entry.map_err(|e| anyhow!(e).context("undecodable archive data"))?;
        let path = checked_path(&entry)?;
        if manifest.is_some() {
            bail!("entry {path:?} follows the closing manifest");
        }
        let size = entry.effective_size();
        if header.is_none() {
            if path != HEADER_PATH {
                bail!("the first entry must be {HEADER_PATH}, found {path:?}: this is not an ngbak archive");
            }
            let h: ArchiveHeader = read_json(&mut entry, size).await?;
            check_format(&h)?;
            header = Some(h);
            continue;
        }
        if path == HEADER_PATH {
            bail!("entry {HEADER_PATH:?} appears twice");
        }
        if path == MANIFEST_PATH {
            manifest = Some(read_json(&mut entry, size).await?);
            continue;
        }
        if seen.contains_key(&path) {
            bail!("entry {path:?} appears twice");
        }
        let mut hashing = HashingReader::new(&mut entry);
        tokio::io::copy(&mut hashing, &mut tokio::io::sink())
            .await
            .with_context(|| format!("reading entry {path:?}"))?;
        let (sha256, read) = hashing.into_tally().finish();
        seen.insert(path, (sha256, read));
    }
    drop(entries);
    ends_cleanly(archive).await?;
    let header = header.ok_or_else(|| anyhow!("the archive is empty: it holds no {HEADER_PATH}"))?;
    let manifest = manifest.ok_or_else(|| anyhow!("the archive ends before its manifest (truncated)"))?;
    if manifest.backup_id != header.backup_id {
        bail!("the archive header names backup {}, its manifest {}", header.backup_id, manifest.backup_id);
    }
    if seen.len() != manifest.entries.len() {
        bail!("the archive holds {} data entries, its manifest lists {}", seen.len(), manifest.entries.len());
    }
    for (path, found) in seen {
        let record = manifest.entry(&path).ok_or_else(|| anyhow!("entry {path:?} is not listed in the manifest"))?;
        check_entry_digest(&path, record, found)?;
    }
    Ok(manifest)
}

/// Reads the stream past the tar's end to its very end: only the tar's zero padding may follow
/// the last entry, and the compressed stream must end with it (see `compress::decoder`), so that
/// nothing unchecked hides in bytes the whole-archive hash covers; the codec's own checks (gzip
/// CRC, zstd checksum) then cover the tail too.
async fn ends_cleanly<R: AsyncRead + Unpin>(archive: tokio_tar::Archive<R>) -> Result<()> {
    let Ok(mut rest) = archive.into_inner() else {
        bail!("the archive's end could not be read (reader still shared)");
    };
    let mut tail = Vec::new();
    (&mut rest).take(1 << 20).read_to_end(&mut tail).await.context("reading the end of the archive")?;
    let more = match rest.read_u8().await {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
        Err(e) => return Err(anyhow!(e).context("reading the end of the archive")),
    };
    if more || tail.iter().any(|b| *b != 0) {
        bail!("data follows the end of the tar stream (only its zero padding may)");
    }
    Ok(())
}

fn check_entry_digest(path: &str, record: &EntryRecord, (sha256, read): (String, u64)) -> Result<()> {
    if sha256 != record.sha256 || read != record.size {
        bail!(
            "entry {path:?} has SHA-256 {sha256} ({read} bytes), the manifest says {} ({} bytes)",
            record.sha256,
            record.size
        );
    }
    Ok(())
}

/// Refuses a format (or format version) this ngbak does not read.
fn check_format(header: &ArchiveHeader) -> Result<()> {
    if header.format != FORMAT_NAME || header.format_version != FORMAT_VERSION {
        bail!(
            "format {} v{} is not supported by this ngbak (it reads {FORMAT_NAME} v{FORMAT_VERSION}); use a newer ngbak",
            header.format,
            header.format_version
        );
    }
    Ok(())
}

fn check_header(header: &ArchiveHeader, sidecar: &Sidecar) -> Result<()> {
    check_format(header)?;
    if header.backup_id != sidecar.manifest.backup_id {
        bail!("archive header names backup {}, the sidecar {}", header.backup_id, sidecar.manifest.backup_id);
    }
    Ok(())
}

async fn read_json<T: serde::de::DeserializeOwned>(body: &mut (impl AsyncRead + Unpin), size: u64) -> Result<T> {
    if size > MAX_JSON_ENTRY {
        bail!("a {size}-byte metadata entry is larger than allowed");
    }
    let mut buf = Vec::with_capacity(size as usize);
    body.read_to_end(&mut buf).await?;
    Ok(serde_json::from_slice(&buf)?)
}
