//! Running a job: the same pipeline calls the CLI and the functions make, inside a tracker, with
//! the job's record written when it starts, about every second while its progress moves, and
//! when it ends. `ngbak serve` runs jobs here; so do the backup and restore functions when the
//! API function hands them a job (`{"ngbak_job": "<job>"}`).

use super::jobs::{self, Job, JobError, Kind, Request, Status};
use crate::lambda::FunctionConfig;
use crate::store::{lock, ObjectStore};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How often a running job's record is rewritten while its progress moves.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How often it is rewritten at least, moving or not (so a reader can tell a live run from one
/// that was killed: [`super::jobs::STALE_AFTER`]).
const ALIVE: Duration = Duration::from_secs(30);

/// What a job's work ended with.
enum Outcome {
    Done(Value),
    /// Given to a Fargate task (the answer says which); followed through the store.
    HandedOff(Value),
}

/// The job a function's event hands it, if it is one: `{"ngbak_job": "<job>"}` (a malformed
/// one is a `MalformedEvent`).
pub fn job_event(event: &Value) -> Option<Result<String>> {
    let job = event.get("ngbak_job")?;
    let malformed = |why: String| crate::failure::FailureKind::MalformedEvent.marked(why).into();
    Some(match job.as_str() {
        Some(job) => jobs::check_job_id(job).map(|()| job.to_string()).map_err(|e| malformed(format!("{e:#}"))),
        None => Err(malformed("malformed job event: ngbak_job must be a job id string".into())),
    })
}

/// Runs the job whose record is in `store` (a function handed it by the API function).
pub async fn run_recorded(config: &FunctionConfig, job: &str, time_left: Duration) -> Result<Value> {
    let store = config.store.open().await?;
    let record = jobs::find(store.as_ref(), job).await?.with_context(|| format!("no job {job} in {}", store.url()))?;
    if record.status != Status::Queued {
        // A second delivery of the same asynchronous invoke.
        return Ok(json!({ "status": "ignored", "reason": format!("job {job} is already {:?}", record.status) }));
    }
    let host = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_else(|_| "a function".into());
    let ended = run_job(config, store, record, None, &host, time_left).await;
    Ok(serde_json::to_value(&ended)?)
}

/// Runs `job` to its end and returns its final record. `held` is the restore lock when the
/// caller took it already (to answer 409 at once); otherwise a restore takes it here.
pub async fn run_job(
    config: &FunctionConfig,
    store: Arc<dyn ObjectStore>,
    mut job: Job,
    held: Option<lock::Lock>,
    host: &str,
    time_left: Duration,
) -> Job {
    // A stop state of its own: a lock taken over stops this job, not the host.
    let _stop = crate::stop::begin_job(None, "the job");
    job.status = Status::Running;
    job.started_at = Some(chrono::Utc::now());
    job.host = host.to_string();
    if let Err(e) = jobs::save(store.as_ref(), &mut job).await {
        tracing::error!("{e:#}");
    }
    let tracker = Arc::new(crate::progress::Tracker::default());
    let asked = job.clone();
    let work = crate::progress::track(tracker.clone(), execute(config, store.clone(), &asked, held, time_left));
    tokio::pin!(work);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = heartbeat.tick() => {
                let now = tracker.snapshot();
                let quiet_for = (chrono::Utc::now() - job.updated_at).to_std().unwrap_or_default();
                if now != job.progress || quiet_for >= ALIVE {
                    job.progress = now;
                    if let Err(e) = jobs::save(store.as_ref(), &mut job).await {
                        tracing::warn!("{e:#}");
                    }
                }
            }
        }
    };
    job.progress = tracker.snapshot();
    job.ended_at = Some(chrono::Utc::now());
    match outcome {
        Ok(Outcome::Done(report)) => {
            job.status = Status::Completed;
            job.report = Some(report);
        }
        Ok(Outcome::HandedOff(answer)) => {
            job.status = Status::HandedOff;
            job.ended_at = None;
            job.report = Some(answer);
        }
        Err(e) => {
            let kind = crate::pipeline::failure_kind(&e);
            job.status = if kind == crate::failure::FailureKind::Stopped { Status::Stopped } else { Status::Failed };
            job.error = Some(JobError { kind: kind.name().into(), detail: crate::net::scrub(&format!("{e:#}")) });
            if let (Kind::Restore, Some(id)) = (job.kind, &job.backup_id) {
                // The report the restore wrote says what was written before it failed.
                if let Ok(bytes) = crate::store::get_bytes(store.as_ref(), &id.report_key()).await {
                    job.report = serde_json::from_slice(&bytes).ok();
                }
            }
        }
    }
    if let Err(e) = jobs::save(store.as_ref(), &mut job).await {
        tracing::error!("{e:#}");
    }
    tracing::info!(job = %job.job, status = ?job.status, "job ended");
    job
}

async fn execute(
    config: &FunctionConfig,
    store: Arc<dyn ObjectStore>,
    job: &Job,
    held: Option<lock::Lock>,
    time_left: Duration,
) -> Result<Outcome> {
    let id = job.backup_id.clone();
    let needs_id = || id.clone().context("this job names no backup");
    match job.kind {
        Kind::Backup => {
            let config = with_request(config, &job.request, false)?;
            let event = json!({ "backup_id": id, "backends": job.request.only });
            crate::progress::phase("backing up");
            outcome_of(crate::lambda::backup::handle_within(&config, event, time_left).await?)
        }
        Kind::Verify => {
            crate::progress::phase("verifying");
            let trust = config.auth.trust().await?;
            let (_, report) = crate::pipeline::restore::verify(store.as_ref(), &needs_id()?, &trust).await?;
            Ok(Outcome::Done(serde_json::to_value(report)?))
        }
        Kind::DryRun => {
            // As `ngbak restore --dry-run`: no lock, no report object, nothing written.
            let config = with_request(config, &job.request, true)?;
            let keys = config.auth.keys().await?;
            let restorers = config.backends.restorers(&config.restore);
            let options = config.restore.options(&store, &config.backends, &keys);
            let report =
                crate::pipeline::restore::run_restore(store.as_ref(), &needs_id()?, restorers, &options).await?;
            Ok(Outcome::Done(serde_json::to_value(report)?))
        }
        Kind::Import => {
            let id = needs_id()?;
            let staged = job.request.staged.clone().context("an import job names its staged upload")?;
            crate::progress::phase("verifying");
            let keys = config.auth.keys().await?;
            let source = crate::pipeline::import::ArchiveSource::Staged(staged.clone());
            let imported = crate::pipeline::import::import(&store, &source, Some(&id), None, None, &keys).await;
            // Stored as the backup or refused: the staged copy goes either way.
            if let Err(e) = store.delete(&staged).await {
                tracing::warn!("could not remove the staged upload {staged}: {e:#}");
            }
            Ok(Outcome::Done(serde_json::to_value(imported?)?))
        }
        Kind::Restore => {
            let id = needs_id()?;
            let config = with_request(config, &job.request, false)?;
            let lock = match held {
                Some(lock) => lock,
                None => take_restore_lock(&store, &job.host).await?,
            };
            let answer =
                crate::lambda::restore::restore_locked(&config, store.clone(), &id, false, time_left, "api").await;
            lock.release().await.ok();
            // A job's report is the restore's own, as a dry run's is (the document around it is
            // the report object in the store).
            match outcome_of(answer?)? {
                Outcome::Done(mut doc) if doc.get("report").is_some() => Ok(Outcome::Done(doc["report"].take())),
                other => Ok(other),
            }
        }
    }
}

/// Takes the store's restore lock, or says who holds it (kind `LockHeld`).
pub async fn take_restore_lock(store: &Arc<dyn ObjectStore>, holder: &str) -> Result<lock::Lock> {
    match lock::acquire(store.clone(), lock::RESTORE_LOCK, holder, lock::LEASE).await? {
        Ok(lock) => Ok(lock),
        Err(held) => Err(crate::failure::FailureKind::LockHeld
            .marked(format!(
                "another restore is running in {} ({}); wait for it to end (GET /api/v1/jobs)",
                store.url(),
                held.holder
            ))
            .into()),
    }
}

/// A function's answer as a job's outcome.
fn outcome_of(answer: Value) -> Result<Outcome> {
    match answer["status"].as_str() {
        Some("handed_off") => Ok(Outcome::HandedOff(answer)),
        Some("ignored") | Some("duplicate") => Err(crate::failure::FailureKind::LockHeld
            .marked(answer["reason"].as_str().unwrap_or("the job was not run").to_string())
            .into()),
        _ => Ok(Outcome::Done(answer)),
    }
}

/// The host's settings with a request's choices laid over them.
fn with_request(config: &FunctionConfig, request: &Request, dry_run: bool) -> Result<FunctionConfig> {
    use clap::ValueEnum;
    let mut config = config.clone();
    let parse_mode = |field: &str, value: &Option<String>, default| match value {
        None => Ok(default),
        Some(v) => crate::backends::RestoreMode::from_str(v, true)
            .map_err(|_| anyhow::anyhow!("{field} must be merge or replace, not {v:?}")),
    };
    if let Some(codec) = &request.codec {
        config.tuning.compression = crate::archive::compress::Codec::from_str(codec, true)
            .map_err(|_| anyhow::anyhow!("codec must be gzip or zstd, not {codec:?}"))?;
    }
    let restore = &mut config.restore;
    restore.kv_mode = parse_mode("kv_mode", &request.kv_mode, restore.kv_mode)?;
    restore.graph_mode = parse_mode("graph_mode", &request.graph_mode, restore.graph_mode)?;
    restore.vector_mode = parse_mode("vector_mode", &request.vector_mode, restore.vector_mode)?;
    restore.only = request.only.clone();
    restore.dry_run = dry_run;
    restore.no_verify_restored |= request.no_verify_restored;
    if request.no_safety_backup {
        restore.no_safety_backup = true;
        restore.safety_backup = false;
    }
    Ok(config)
}

/// Checks a request's choices before a job is queued (a 400 at once, not a failed job later).
pub fn check_request(config: &FunctionConfig, request: &Request) -> Result<()> {
    with_request(config, request, false).map(|_| ())
}
