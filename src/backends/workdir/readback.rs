//! The proof that a working-directory restore equals the archive: each file (in merge mode,
//! each file the restore wrote) read back as its name, SHA-256 and size.

use super::files::{canonical, copy_hashed, known_files, FILE_BUFFER};
use crate::backends::{RecordSink, RestoreMode};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::Path;

/// Hands the canonical form of every nano-graphrag file in `dir` (merge mode: of those in
/// `written`) to `each`.
pub(super) async fn read_back(
    dir: &Path,
    mode: RestoreMode,
    written: &BTreeSet<String>,
    each: &mut RecordSink<'_>,
) -> Result<()> {
    // Replace mode: every nano-graphrag file in the directory; merge mode: the files written.
    let listed = dir.to_path_buf();
    let present = tokio::task::spawn_blocking(move || known_files(&listed)).await??.known;
    for (name, _) in present {
        if mode == RestoreMode::Merge && !written.contains(&name) {
            continue;
        }
        let path = dir.join(&name);
        let file =
            tokio::fs::File::open(&path).await.with_context(|| format!("reading back {}", path.display()))?;
        let mut file = tokio::io::BufReader::with_capacity(FILE_BUFFER, file);
        let (sha256, size) = copy_hashed(&mut file, &mut tokio::io::sink()).await?;
        each(&canonical(&name, &sha256, size));
    }
    Ok(())
}
