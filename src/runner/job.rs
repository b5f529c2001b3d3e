//! The Fargate task's entry point (`ngbak job restore <id>`, `ngbak job backup --id <id>`): runs
//! the function's own handler, so the report, the tags and the metric lines are the same; the
//! process exits non-zero when the job fails.

use crate::id::BackupId;
use crate::lambda::{backup, restore, FunctionConfig};
use anyhow::Result;
use serde_json::json;
use std::time::Duration;

/// How long a task's restore lock claims, should the task die without releasing it.
const TASK_LOCK_TIME: Duration = Duration::from_secs(12 * 3600);

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

/// Runs the job and prints the handler's answer (one JSON document) on stdout.
pub async fn run(job: Job) -> Result<()> {
    super::handoff::mark_in_task();
    let config = FunctionConfig::from_env().await?;
    let answer = match job {
        Job::Restore { id } => restore::handle(&config, json!({ "backup_id": id }), TASK_LOCK_TIME).await?,
        Job::Backup { id, only } => backup::handle(&config, json!({ "backup_id": id, "backends": only })).await?,
    };
    println!("{answer}");
    Ok(())
}
