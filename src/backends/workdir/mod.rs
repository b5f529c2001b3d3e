//! nano-graphrag's working directory: its default JSON key-value store (`kv_store_<ns>.json`),
//! and beside it the GraphML graph and the nano-vectordb files it writes by default. Archived
//! as backend `jsonkv`.
//!
//! Files go into the archive byte for byte, streamed with their known size (never loaded whole);
//! they are parsed once on the side only to count documents. Restore writes each file to a
//! temporary name, checks its SHA-256, fsyncs and renames it into place.

mod export;
mod files;
mod json;
mod links;
mod readback;
mod restore;

pub use export::WorkdirExporter;
pub use restore::WorkdirRestorer;

use super::descriptor::{Backend, Descriptor, Probe, ProbeFound};
use super::{BackendRestoreArgs, Exporter, RestoreMode, Restorer};
use anyhow::{anyhow, Result};
use clap::Args;
use std::path::PathBuf;

pub const NAME: &str = "jsonkv";

pub static DESCRIPTOR: Descriptor = Descriptor {
    name: NAME,
    kind: "kv",
    flag: "--kv-dir",
    env: "NGBAK_KV_DIR",
    record_stats: &["entities", "vectors", "files"],
};

/// The working-directory settings.
#[derive(Args, Clone, Debug, Default)]
pub struct WorkdirArgs {
    /// nano-graphrag working directory (kv_store_*.json, *.graphml, vdb_*.json).
    #[arg(long, env = "NGBAK_KV_DIR")]
    pub kv_dir: Option<PathBuf>,
}

impl WorkdirArgs {
    fn dir(&self) -> Option<&PathBuf> {
        self.kv_dir.as_ref().filter(|d| !d.as_os_str().is_empty())
    }
}

impl Backend for WorkdirArgs {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn is_configured(&self) -> bool {
        self.dir().is_some()
    }

    fn exporter(&self) -> Box<dyn Exporter> {
        Box::new(WorkdirExporter::new(self.dir().expect("configured")))
    }

    fn restorer(&self, mode: RestoreMode, _restore: &BackendRestoreArgs) -> Box<dyn Restorer> {
        Box::new(WorkdirRestorer::new(self.dir().expect("configured"), mode))
    }

    fn probes(&self) -> Vec<Probe> {
        let dir = self.dir().expect("configured").clone();
        vec![Probe { name: NAME, target: dir.display().to_string(), tls: false, run: Box::pin(probe(dir)) }]
    }

    fn echo(&self, config: &mut serde_json::Map<String, serde_json::Value>) {
        config.insert("kv_dir".into(), serde_json::json!(self.dir()));
    }

    /// Graph, entity vectors and key-value store, all in its files.
    fn deployment(&self, layout: &crate::consistency::Layout) -> Option<Box<dyn crate::consistency::Deployment>> {
        Some(Box::new(links::WorkdirDeployment::new(self.dir().expect("configured"), layout)))
    }

    fn archived(&self, layout: &crate::consistency::Layout) -> Option<Box<dyn crate::consistency::ArchivedFacts>> {
        Some(Box::new(links::ArchivedFiles::new(layout)))
    }
}

async fn probe(dir: PathBuf) -> Result<ProbeFound> {
    let found = ProbeFound { version: None, authenticated: false };
    match tokio::fs::metadata(&dir).await {
        Ok(meta) if meta.is_dir() => Ok(found),
        Ok(_) => Err(anyhow!("{} is not a directory", dir.display())),
        // A directory that does not exist yet is fine where it can be made: a restore creates it
        // and its parents (restoring onto a new machine); a backup of it then fails, naming it.
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            let existing = dir.ancestors().skip(1).find(|a| a.as_os_str().is_empty() || a.exists());
            match existing.filter(|a| !a.as_os_str().is_empty()) {
                Some(a) if !a.is_dir() => Err(anyhow!(
                    "{} cannot be created: {} is not a directory (choose another --kv-dir)",
                    dir.display(),
                    a.display()
                )),
                _ => Ok(found),
            }
        }
        Err(e) => Err(anyhow!("cannot read {}: {e}", dir.display())),
    }
}
