//! The functions' side of the hand-off: decide from what was measured, and when the job does not
//! fit, start it as a Fargate task and answer `{"status": "handed_off", "task_arn": …}`.

use super::decide::{backup_estimate, decide, restore_estimate, Decision};
use super::ecs::{EcsLauncher, TaskLauncher, TaskRequest};
use super::{history, Runner, RunnerConfig};
use crate::id::BackupId;
use crate::store::ObjectStore;
use anyhow::Result;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set in the Fargate task itself (`ngbak job …`): the task is the runner and never hands off.
static IN_TASK: AtomicBool = AtomicBool::new(false);

pub(crate) fn mark_in_task() {
    IN_TASK.store(true, Ordering::SeqCst);
}

/// For the restore function, once it holds the lock: `None` restores here, `Some` is the
/// function's answer after a task was started.
pub async fn restore(store: &dyn ObjectStore, id: &BackupId, time_left: Duration) -> Result<Option<Value>> {
    let config = RunnerConfig::from_env()?;
    let Some(why) = restore_decision(&config, store, id, time_left).await? else { return Ok(None) };
    let command = vec!["job".into(), "restore".into(), id.to_string()];
    start(&config, &EcsLauncher::from_env().await, command, id, &why, "ngbak-restore").await.map(Some)
}

/// The restore decision; `Some(reason)` to hand off.
pub async fn restore_decision(
    config: &RunnerConfig,
    store: &dyn ObjectStore,
    id: &BackupId,
    time_left: Duration,
) -> Result<Option<String>> {
    if !worth_deciding(config) {
        return Ok(None);
    }
    let estimate = if config.runner == Runner::Auto {
        let bytes = history::archive_bytes(store, id).await?;
        let (rate, source) = match history::measured_restore_rate(store).await? {
            Some(rate) => (rate, "measured"),
            None => (config.assumed_restore_mibps * 1024.0 * 1024.0, "assumed (NGBAK_ASSUMED_RESTORE_MIBPS)"),
        };
        tracing::info!(archive_bytes = bytes, rate_mib_s = rate / 1048576.0, "restore rate {source}");
        Some(restore_estimate(bytes, rate))
    } else {
        None
    };
    Ok(confirm(decide(config.runner, estimate, time_left, config.safety_factor)))
}

/// For the backup function, before it starts: as `restore`, from the last backup's duration.
pub async fn backup(
    store: &dyn ObjectStore,
    id: Option<&BackupId>,
    only: &[String],
    time_left: Duration,
) -> Result<Option<Value>> {
    let config = RunnerConfig::from_env()?;
    if !worth_deciding(&config) {
        return Ok(None);
    }
    // A second delivery of a scheduled event finds its backup: the function answers "duplicate".
    if let Some(id) = id {
        if store.head(&id.archive_key()).await?.is_some() {
            return Ok(None);
        }
    }
    let estimate = match config.runner {
        Runner::Auto => history::last_backup(store).await?.map(|(took, bytes)| backup_estimate(took, bytes, None)),
        _ => None,
    };
    let Some(why) = confirm(decide(config.runner, estimate, time_left, config.safety_factor)) else {
        return Ok(None);
    };
    let id = id.cloned().unwrap_or_else(|| BackupId::for_time(chrono::Utc::now()));
    let mut command = vec!["job".into(), "backup".into(), "--id".into(), id.to_string()];
    if !only.is_empty() {
        command.extend(["--only".into(), only.join(",")]);
    }
    start(&config, &EcsLauncher::from_env().await, command, &id, &why, "ngbak-backup").await.map(Some)
}

/// False when the job runs here whatever the estimate: in the task itself, with `lambda`, or with
/// `auto` and no task configured (no reads of the store's history then).
fn worth_deciding(config: &RunnerConfig) -> bool {
    let auto_without_task = config.runner == Runner::Auto && !config.can_hand_off();
    !(IN_TASK.load(Ordering::SeqCst) || config.runner == Runner::Lambda || auto_without_task)
}

/// Logs a decision to run here; returns the reason to hand off.
fn confirm(decision: Decision) -> Option<String> {
    match decision {
        Decision::Here(why) => {
            tracing::info!("running in this function: {why}");
            None
        }
        Decision::HandOff(why) => Some(why),
    }
}

/// Starts the task and builds the function's answer.
pub async fn start(
    config: &RunnerConfig,
    launcher: &dyn TaskLauncher,
    command: Vec<String>,
    id: &BackupId,
    why: &str,
    started_by: &str,
) -> Result<Value> {
    let request = TaskRequest::new(config, command, started_by)?;
    let task_arn = launcher.run_task(&request).await?;
    tracing::info!(backup_id = %id, task_arn, "handed off to Fargate: {why}");
    Ok(json!({
        "status": "handed_off",
        "backup_id": id,
        "task_arn": task_arn,
        "reason": why,
        "command": request.command,
    }))
}
