//! Working-directory restore: each file written to a temporary name, its SHA-256 checked,
//! fsynced and renamed into place; `replace` also removes the nano-graphrag files the archive
//! lacks.

use super::export::WorkdirExporter;
use super::files::{canonical, copy_hashed, count_file, file_of, known_files, FILE_BUFFER};
use super::NAME;
use crate::archive::{BackendManifest, EntryRecord};
use crate::backends::{Exporter, RecordSink, RestoreMode, Restorer};
use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tokio::io::AsyncRead;


pub struct WorkdirRestorer {
    dir: PathBuf,
    mode: RestoreMode,
    written: BTreeSet<String>,
    stats: BTreeMap<String, u64>,
}

impl WorkdirRestorer {
    pub fn new(dir: &Path, mode: RestoreMode) -> Self {
        WorkdirRestorer { dir: dir.to_path_buf(), mode, written: BTreeSet::new(), stats: BTreeMap::new() }
    }
}

#[async_trait]
impl Restorer for WorkdirRestorer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn target(&self) -> String {
        self.dir.display().to_string()
    }

    async fn prepare(&mut self, _backend: &BackendManifest) -> Result<()> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .with_context(|| format!("creating the working directory {}", self.dir.display()))
    }

    async fn safety_exporter(&mut self) -> Result<Option<Box<dyn Exporter>>> {
        let exists = tokio::fs::metadata(&self.dir).await.is_ok_and(|m| m.is_dir());
        Ok(exists.then(|| Box::new(WorkdirExporter::new(&self.dir)) as Box<dyn Exporter>))
    }

    async fn check_entry(
        &mut self,
        entry: &EntryRecord,
        body: &mut (dyn AsyncRead + Send + Unpin),
        each: &mut RecordSink<'_>,
    ) -> Result<()> {
        let (name, _) = file_of(entry)?;
        let (sha256, size) = copy_hashed(body, &mut tokio::io::sink()).await?;
        each(&canonical(&name, &sha256, size));
        Ok(())
    }

    async fn read_back(&mut self, each: &mut RecordSink<'_>) -> Result<bool> {
        super::readback::read_back(&self.dir, self.mode, &self.written, each).await?;
        Ok(true)
    }

    async fn restore_entry(&mut self, entry: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        let (name, kind) = file_of(entry)?;
        let target = self.dir.join(&name);
        let temp = self.dir.join(format!(".{name}.ngbak-{}", uuid::Uuid::new_v4().simple()));
        let written = write_checked(&temp, body, entry).await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e.context(format!("restoring {}", target.display())));
        }
        let (p, k) = (temp.clone(), kind.clone());
        if let Ok(Ok(stats)) = tokio::task::spawn_blocking(move || count_file(&p, &k)).await {
            for (k, v) in stats {
                *self.stats.entry(k).or_default() += v;
            }
        }
        tokio::fs::rename(&temp, &target)
            .await
            .with_context(|| format!("moving the restored file to {}", target.display()))?;
        tokio::fs::File::open(&self.dir).await?.sync_all().await?;
        self.written.insert(name);
        Ok(())
    }

    async fn finish(&mut self) -> Result<BTreeMap<String, u64>> {
        if self.mode == RestoreMode::Replace {
            let dir = self.dir.clone();
            let present = tokio::task::spawn_blocking(move || known_files(&dir)).await??.known;
            for (name, _) in present.into_iter().filter(|(n, _)| !self.written.contains(n)) {
                tokio::fs::remove_file(self.dir.join(&name)).await?;
                tracing::info!(file = %name, "replace mode: removed a file the archive does not hold");
            }
        }
        let mut stats = std::mem::take(&mut self.stats);
        stats.insert("files".into(), self.written.len() as u64);
        Ok(stats)
    }
}

/// Copies `body` into a new file at `path`, checks size and SHA-256 against `entry`, fsyncs.
async fn write_checked(path: &Path, body: &mut (dyn AsyncRead + Send + Unpin), entry: &EntryRecord) -> Result<()> {
    let mut file = tokio::io::BufWriter::with_capacity(FILE_BUFFER, tokio::fs::File::create(path).await?);
    let (sha256, size) = copy_hashed(body, &mut file).await?;
    if sha256 != entry.sha256 || size != entry.size {
        bail!("the bytes read do not match the manifest (SHA-256 {sha256}, expected {})", entry.sha256);
    }
    tokio::io::AsyncWriteExt::flush(&mut file).await?;
    file.get_mut().sync_all().await?;
    Ok(())
}
