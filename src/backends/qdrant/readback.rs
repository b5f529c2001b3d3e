//! The proof that a points-mode Qdrant restore equals the archive: the restored points (in
//! `merge` mode, those this restore wrote) scrolled back in the archive's canonical form. A
//! snapshot restore is opaque and is checked by its point count instead (see `restore`).

use super::points::record_of;
use super::restore::QdrantRestorer;
use super::{canonical, point_hash, scroll_page};
use crate::backends::{RecordSink, RestoreMode};
use anyhow::{Context, Result};

impl QdrantRestorer {
    /// Hands every restored point's canonical form to `each`; `false` for a snapshot restore.
    pub(super) async fn read_back_points(&mut self, each: &mut RecordSink<'_>) -> Result<bool> {
        if self.stats.contains_key("snapshots") {
            return Ok(false); // checked by the point count in `finish`
        }
        let merge = self.settings.restore_mode == RestoreMode::Merge;
        for c in self.restored.clone() {
            let target = self.target(&c);
            let mut offset = None;
            loop {
                let page = scroll_page(self.grpc()?, &target, offset.take())
                    .await
                    .with_context(|| self.settings.grpc_where())?;
                for point in &page.result {
                    let record = record_of(point).with_context(|| format!("a point of {target}"))?;
                    if !merge || self.written.contains(&point_hash(&c, &record.id)) {
                        each(&canonical(&c, &record));
                    }
                }
                match page.next_page_offset {
                    Some(next) => offset = Some(next),
                    None => break,
                }
            }
        }
        Ok(true)
    }
}
