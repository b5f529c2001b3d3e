//! The safety backup: what the restore may overwrite, backed up before it writes (the rollback
//! point). If it fails, the restore does not start.

use super::SafetyBackup;
use crate::backends::Restorer;
use crate::id::BackupId;
use crate::pipeline::backup::{run_backup, BackupOptions};
use anyhow::{Context, Result};

/// Backs up exactly what the restore may overwrite (each restorer's target and scope) as an
/// ordinary backup `pre-restore_<id>_<time>`. If it fails, the restore does not start.
pub(super) async fn take_safety_backup(
    safety: &SafetyBackup,
    id: &BackupId,
    restorers: &mut [Box<dyn Restorer>],
    signing_key: Option<std::sync::Arc<crate::authenticity::SigningKey>>,
    encrypt_to: crate::encryption::Recipients,
) -> Result<Option<BackupId>> {
    let mut exporters = Vec::new();
    for r in restorers.iter_mut() {
        let name = r.name();
        if let Some(e) = r.safety_exporter().await.with_context(|| format!("preparing the safety backup of {name}"))? {
            exporters.push(e);
        }
    }
    if exporters.is_empty() {
        tracing::info!(backup_id = %id, "no safety backup: the targets hold nothing yet");
        return Ok(None);
    }
    let mut safety_id = BackupId::safety_for(id, chrono::Utc::now());
    while crate::pipeline::catalog::exists(safety.store.as_ref(), &safety_id).await? {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        safety_id = BackupId::safety_for(id, chrono::Utc::now());
    }
    tracing::info!(backup_id = %id, safety_backup = %safety_id, "backing up what the restore will overwrite");
    let options = BackupOptions {
        id: Some(safety_id.clone()),
        reason: Some(format!("safety backup taken before restoring {id}")),
        config: serde_json::json!({ "safety_backup_before_restoring": id }),
        signing_key,
        encrypt_to,
        ..Default::default()
    };
    run_backup(safety.store.clone(), exporters, options).await.with_context(|| {
        format!(
            "the safety backup before restoring {id} failed, so the restore did not start and nothing was written. \
             Fix the cause, or restore without a rollback point with --no-safety-backup"
        )
    })?;
    Ok(Some(safety_id))
}
