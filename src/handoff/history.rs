//! What past runs measured, read from the store: the restore rate (from restore reports and the
//! sizes of the archives they restored) and the last backup's duration and size (its sidecar).

use crate::id::BackupId;
use crate::pipeline::catalog;
use crate::store::{get_bytes, ObjectStore};
use anyhow::Result;
use std::time::Duration;

/// Reports looked at; the slowest of them counts (a cautious estimate).
const RECENT_REPORTS: usize = 5;
const REPORT_SUFFIX: &str = ".restore-report.json";

/// The archive's size, from its sidecar.
pub async fn archive_bytes(store: &dyn ObjectStore, id: &BackupId) -> Result<u64> {
    Ok(crate::pipeline::catalog::load_stored(store, id).await?.0.archive().size)
}

/// Archive bytes per second of the slowest of the last completed restores, if any completed.
pub async fn measured_restore_rate(store: &dyn ObjectStore) -> Result<Option<f64>> {
    let mut reports: Vec<_> = store.list("").await?.into_iter().filter(|o| o.key.ends_with(REPORT_SUFFIX)).collect();
    reports.sort_by_key(|o| std::cmp::Reverse(o.modified));
    let mut slowest: Option<f64> = None;
    for obj in reports.iter().take(RECENT_REPORTS) {
        let Ok(report) = get_bytes(store, &obj.key).await.map(|b| serde_json::from_slice::<serde_json::Value>(&b))
        else {
            continue;
        };
        let Ok(report) = report else { continue };
        let seconds = report["report"]["seconds"].as_f64().filter(|s| *s > 0.0);
        let id = obj.key.strip_suffix(REPORT_SUFFIX).and_then(|k| k.parse::<BackupId>().ok());
        let (Some(seconds), Some(id)) = (seconds, id) else { continue };
        if report["status"] != "completed" || report["report"]["dry_run"] == true {
            continue;
        }
        if let Ok(bytes) = archive_bytes(store, &id).await {
            let rate = bytes as f64 / seconds;
            slowest = Some(slowest.map_or(rate, |s: f64| s.min(rate)));
        }
    }
    Ok(slowest)
}

/// The newest complete backup's duration (created to completed) and archive size.
pub async fn last_backup(store: &dyn ObjectStore) -> Result<Option<(Duration, u64)>> {
    for listing in catalog::list_backups(store, &Default::default()).await? {
        if listing.status != "complete" {
            continue;
        }
        let (sidecar, _) = crate::pipeline::catalog::load_stored(store, &listing.backup_id).await?;
        let (started, completed) = sidecar.times();
        let took = (completed - started).to_std().unwrap_or_default();
        return Ok(Some((took, sidecar.archive().size)));
    }
    Ok(None)
}
