//! Working-directory backup: each known file streamed into the archive byte for byte, with its
//! known size (never loaded whole); parsed once on the side only to count what it holds.

use super::files::{count_file, known_files, FileKind, Listing, FILE_BUFFER};
use super::NAME;
use crate::archive::{BackendManifest, EntryBody};
use crate::backends::{namespace_stat, EntrySender, Exporter};
use anyhow::{Context, Result};
use async_trait::async_trait;
use std::path::{Path, PathBuf};

pub struct WorkdirExporter {
    dir: PathBuf,
}

impl WorkdirExporter {
    pub fn new(dir: &Path) -> Self {
        WorkdirExporter { dir: dir.to_path_buf() }
    }
}


#[async_trait]
impl Exporter for WorkdirExporter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> &'static str {
        "kv"
    }

    /// No nano-graphrag file: what the directory holds instead.
    async fn emptiness(&mut self, exported: &BackendManifest) -> Result<Option<String>> {
        if exported.stats.get("files").copied().unwrap_or(0) > 0 {
            return Ok(None);
        }
        let dir = self.dir.clone();
        let listing = tokio::task::spawn_blocking(move || known_files(&dir)).await??;
        let mut other = listing.other;
        other.sort();
        let holds = match other.len() {
            0 => "nothing".to_string(),
            n if n > 5 => format!("{} and {} more", other[..5].join(", "), n - 5),
            _ => other.join(", "),
        };
        Ok(Some(format!(
            "{} holds no nano-graphrag file (kv_store_*.json, vdb_*.json, *.graphml) but {holds}: check --kv-dir \
             (NGBAK_KV_DIR), nano-graphrag's working_dir",
            self.dir.display()
        )))
    }

    /// Each nano-graphrag file's size and modification time (nano-graphrag rewrites its files
    /// when an insert ends).
    async fn state_mark(&mut self) -> Result<Option<crate::consistency::state::StateMark>> {
        let dir = self.dir.clone();
        let mark = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut mark = crate::consistency::state::StateMark::default();
            for (name, _) in known_files(&dir)?.known {
                let meta = std::fs::metadata(dir.join(&name))?;
                let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                let modified = modified.map(|t| t.as_nanos()).unwrap_or_default();
                mark = mark.exact(&name, format!("{} bytes at {modified}", meta.len()));
            }
            Ok(mark)
        })
        .await??;
        Ok(Some(mark))
    }

    async fn export(&mut self, out: &EntrySender) -> Result<BackendManifest> {
        let dir = self.dir.clone();
        let Listing { known: files, other: skipped } = tokio::task::spawn_blocking(move || known_files(&dir)).await??;
        let mut manifest = BackendManifest { kind: "kv".into(), ..Default::default() };
        for (name, kind) in &files {
            let path = self.dir.join(name);
            let counted = {
                let (p, k) = (path.clone(), kind.clone());
                tokio::task::spawn_blocking(move || count_file(&p, &k)).await?
            };
            match counted {
                Ok(stats) => {
                    for (k, v) in stats {
                        *manifest.stats.entry(k).or_default() += v;
                    }
                }
                Err(e) => manifest.warnings.push(format!("{name} could not be parsed ({e}); it was archived as it is")),
            }
            let file = tokio::fs::File::open(&path).await.with_context(|| format!("opening {}", path.display()))?;
            let size = file.metadata().await?.len();
            let records = match kind {
                FileKind::Kv(ns) => {
                    manifest.stats.get(namespace_stat(ns).unwrap_or("documents_other")).copied().unwrap_or(0)
                }
                _ => 0,
            };
            let entry_path = format!("{}/{name}", kind.folder());
            let reader = Box::new(tokio::io::BufReader::with_capacity(FILE_BUFFER, file));
            out.send(entry_path, records, EntryBody::Stream { size, reader }).await?;
        }
        manifest.stats.insert("files".into(), files.len() as u64);
        for w in &manifest.warnings {
            tracing::warn!(backend = NAME, "{w}");
        }
        manifest.details = serde_json::json!({ "dir": self.dir, "files": files.iter().map(|f| &f.0).collect::<Vec<_>>(), "not_included": skipped });
        Ok(manifest)
    }
}
