//! The backup function: a scheduled event or a direct invoke in, a summary out.

use super::events::parse_backup_event;
use super::FunctionConfig;
use crate::pipeline::backup::{run_backup, AlreadyExists};
use crate::pipeline::retention::{self, prune};
use crate::telemetry::{emit_metrics, metrics_namespace};
use anyhow::Result;
use serde_json::{json, Value};

/// Handles one event. A second delivery of the same scheduled event finds its backup (the id
/// comes from the schedule time) and is acknowledged as a duplicate instead of failing.
pub async fn handle(config: &FunctionConfig, event: Value) -> Result<Value> {
    handle_within(config, event, std::time::Duration::from_secs(900)).await
}

/// As `handle`, with the invocation's time left: a backup that would not finish in it is handed
/// to a Fargate task (`crate::runner`).
pub async fn handle_within(config: &FunctionConfig, event: Value, time_left: std::time::Duration) -> Result<Value> {
    let request = parse_backup_event(&event).map_err(super::malformed)?;
    // Stop cleanly (abort the upload, release the lock) before the function is killed.
    let deadline = crate::stop::deadline_within(time_left, std::time::Duration::from_secs(20));
    let _job = crate::stop::begin_job(Some(deadline), "the backup");
    let store = config.store.open().await?;
    let handoff = crate::handoff::backup(store.as_ref(), request.backup_id.as_ref(), &request.backends, time_left);
    if let Some(answer) = handoff.await? {
        return Ok(answer);
    }
    // Every backend and the store answer, or nothing starts (all failures named at once).
    crate::check::preflight(store.as_ref(), &config.backends, &request.backends).await?;
    let keys = config.auth.keys().await?;
    let mut options = config.tuning.backup_options(&config.backends, &store.url(), &keys);
    options.id = request.backup_id.clone();
    let exporters = config.backends.exporters(&request.backends)?;
    let ns = metrics_namespace();
    match run_backup(store.clone(), exporters, options).await {
        Ok(summary) => {
            emit_metrics(
                &ns,
                &[("Function", "backup")],
                &[
                    ("BackupSuccess", "Count", 1.0),
                    ("BackupDurationSeconds", "Seconds", summary.seconds),
                    ("ArchiveBytes", "Bytes", summary.size as f64),
                ],
            );
            if let Some(c) = &summary.consistency {
                crate::consistency::emit_rule_metrics(&ns, "backup", &c.rules, Some(!c.moved.is_empty()));
            }
            for (name, b) in &summary.backends {
                // Each backend says which of its statistics count its records.
                let counted = crate::backends::describe(name).map(|d| d.record_stats).unwrap_or_default();
                let records = counted.iter().find_map(|stat| b.stats.get(*stat)).copied().unwrap_or(0);
                emit_metrics(&ns, &[("Backend", name)], &[("Records", "Count", records as f64)]);
            }
            let mut out = serde_json::to_value(&summary)?;
            out["status"] = json!("completed");
            if config.prune_after_backup {
                // The backup stands whatever happens here; a failed prune is reported, not fatal.
                match prune(store.as_ref(), &config.keep, false, &keys.trust).await {
                    Ok(report) => out["prune"] = json!(retention::summary(&report)),
                    Err(e) => {
                        tracing::error!("prune after backup failed: {e:#}");
                        out["prune"] = json!({ "error": format!("{e:#}") });
                    }
                }
            }
            Ok(out)
        }
        Err(e) if request.from_schedule && e.downcast_ref::<AlreadyExists>().is_some() => {
            tracing::info!("duplicate delivery of a scheduled event: {e}");
            Ok(json!({ "status": "duplicate", "backup_id": request.backup_id, "reason": e.to_string() }))
        }
        Err(e) => {
            emit_metrics(&ns, &[("Function", "backup")], &[("Failures", "Count", 1.0)]);
            Err(e)
        }
    }
}
