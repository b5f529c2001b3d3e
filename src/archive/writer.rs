//! Streams entries into tar → gzip or zstd (multi-threaded) → any async writer, in one pass. The
//! whole stream's SHA-256 is taken where it is stored (after encryption, when there is one).
//!
//! Entries arrive with their size known (a finished part in memory, or a reader of known length
//! such as a file or an HTTP body), so nothing is buffered here beyond what tar and gzip need.

use super::compress::{Compression, Encoder};
use super::format::{check_entry_path, EntryRecord};
use super::hashing::HashingReader;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tar::{Builder, EntryType, Header};

/// The bytes of one entry.
pub enum EntryBody {
    /// A finished part held in memory (bounded by the part size).
    Bytes(Bytes),
    /// A reader that yields exactly `size` bytes.
    Stream { size: u64, reader: Box<dyn AsyncRead + Send + Unpin> },
}

/// An entry on its way into the archive.
pub struct PendingEntry {
    pub path: String,
    pub backend: String,
    pub records: u64,
    pub body: EntryBody,
}

impl PendingEntry {
    pub fn size(&self) -> u64 {
        match &self.body {
            EntryBody::Bytes(b) => b.len() as u64,
            EntryBody::Stream { size, .. } => *size,
        }
    }
}

/// Writes a `.ngbak` stream and records every payload entry for the manifest.
pub struct ArchiveWriter<W: AsyncWrite + Unpin + Send> {
    tar: Builder<Encoder<W>>,
    mtime: u64,
    entries: Vec<EntryRecord>,
}

impl<W: AsyncWrite + Unpin + Send> ArchiveWriter<W> {
    /// `compression` picks codec, level and threads; `mtime` is stamped on every entry.
    pub fn new(out: W, compression: &Compression, mtime: u64) -> Result<Self> {
        let encoder = Encoder::new(out, compression)?;
        Ok(ArchiveWriter { tar: Builder::new_non_terminated(encoder), mtime, entries: Vec::new() })
    }

    /// Writes a JSON document (the header or the manifest) as an entry not listed in the manifest.
    pub async fn append_json<T: Serialize>(&mut self, path: &str, value: &T) -> Result<()> {
        let body = serde_json::to_vec_pretty(value)?;
        let mut header = self.header(body.len() as u64);
        self.tar
            .append_data(&mut header, path, &body[..])
            .await
            .with_context(|| format!("writing {path} into the archive"))
    }

    /// Appends a payload entry, hashing it on the way, and records it.
    pub async fn append(&mut self, entry: PendingEntry) -> Result<&EntryRecord> {
        check_entry_path(&entry.path)?;
        if self.entries.iter().any(|e| e.path == entry.path) {
            bail!("two entries named {} (a bug in the {} exporter)", entry.path, entry.backend);
        }
        let size = entry.size();
        let mut header = self.header(size);
        let reader: Box<dyn AsyncRead + Send + Unpin> = match entry.body {
            EntryBody::Bytes(bytes) => Box::new(std::io::Cursor::new(bytes)),
            EntryBody::Stream { reader, .. } => Box::new(reader.take(size)),
        };
        let mut hashing = HashingReader::new(reader);
        self.tar
            .append_data(&mut header, &entry.path, &mut hashing)
            .await
            .with_context(|| format!("writing {} into the archive", entry.path))?;
        let (sha256, written) = hashing.into_tally().finish();
        if written != size {
            bail!(
                "{} ended after {written} of its announced {size} bytes \
                 (the source changed or broke off while it was read)",
                entry.path
            );
        }
        self.entries.push(EntryRecord {
            path: entry.path,
            backend: entry.backend,
            size,
            sha256,
            records: entry.records,
        });
        Ok(self.entries.last().expect("just pushed"))
    }

    pub fn entries(&self) -> &[EntryRecord] {
        &self.entries
    }

    /// Writes the closing entry, ends tar and the compression, and returns the writer.
    pub async fn finish<T: Serialize>(mut self, manifest_path: &str, manifest: &T) -> Result<W> {
        self.append_json(manifest_path, manifest).await?;
        let mut encoder = self.tar.into_inner().await.context("ending the tar stream")?;
        encoder.shutdown().await.context("ending the compressed stream")?;
        Ok(encoder.into_inner())
    }

    fn header(&self, size: u64) -> Header {
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::Regular);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.mtime);
        header
    }
}
