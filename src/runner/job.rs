//! The Fargate task's entry point (`ngbak job restore <id>`, `ngbak job backup --id <id>`): runs
//! the function's own handler, so the report, the tags and the metric lines are the same; the
//! process exits non-zero when the job fails.

use crate::id::BackupId;
use crate::lambda::{backup, restore, FunctionConfig};
use anyhow::Result;
use serde_json::json;
use std::time::Duration;

/// A task's time when it has no `--max-duration`: long enough for any restore (the lock is a
/// renewed lease, so this does not keep a dead task's lock).
const TASK_TIME: Duration = Duration::from_secs(48 * 3600);

#[derive(clap::Subcommand, Debug)]
pub enum Job {
    /// Restore a backup as the restore function does (tag, report, metrics).
    Restore { id: BackupId },
    /// Back up as the backup function does.
    Backup {
        #[arg(long)]
        id: Option<BackupId>,
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
}

/// Runs the job within `max_duration` and prints the handler's answer (one JSON document) on stdout.
pub async fn run(job: Job, max_duration: Option<Duration>) -> Result<()> {
    let time = max_duration.unwrap_or(TASK_TIME);
    crate::handoff::mark_in_task();
    let config = FunctionConfig::from_env().await?;
    let answer = match job {
        Job::Restore { id } => restore::handle(&config, json!({ "backup_id": id }), time).await?,
        Job::Backup { id, only } => {
            backup::handle_within(&config, json!({ "backup_id": id, "backends": only }), time).await?
        }
    };
    println!("{answer}");
    Ok(())
}
