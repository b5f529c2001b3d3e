//! Jobs as the store holds them, so that any host answers the same: a record per job started
//! through the API (`<job>.job.json` beside the backups, written only by the run doing the job),
//! and the jobs others started (the CLI, a tag, a Fargate task), seen through the locks and
//! restore reports ngbak writes anyway.

use crate::id::BackupId;
use crate::progress::Snapshot;
use crate::store::{lock, ObjectMeta, ObjectStore};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A running job's record that has not been written for this long belongs to a run that was
/// killed or lost (a live run rewrites it at least every 30 s).
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

/// A job record's key suffix.
pub const JOB_SUFFIX: &str = ".job.json";
/// The prefix of the ids of jobs seen through the store rather than started by the API.
const SEEN_REPORT: &str = "seen-restore_";
const SEEN_LOCK: &str = "seen-lock_";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Running,
    Completed,
    Failed,
    Stopped,
    /// Given to a Fargate task; followed through the store to its end.
    HandedOff,
}

impl Status {
    /// Whether the job has ended (nothing about it changes any more).
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Stopped)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Backup,
    Verify,
    Restore,
    DryRun,
    /// An archive the client uploaded to presigned addresses, verified and stored as a backup.
    Import,
}

/// What a job was asked to do (kept in its record: the host that runs it reads it from there).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Request {
    /// Only these configured backends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// Backup: `gzip` or `zstd` (default: the host's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    /// Restore: `merge` or `replace` per kind of store (default: the host's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_mode: Option<String>,
    #[serde(default)]
    pub no_verify_restored: bool,
    #[serde(default)]
    pub no_safety_backup: bool,
    /// Import: the object the client uploaded the archive to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<String>,
}

/// Why a job failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    /// The failure kind (README, "Failure kinds").
    pub kind: String,
    pub detail: String,
}

/// A job: its state, progress and, once it ended, its report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub job: String,
    pub kind: Kind,
    #[schema(value_type = Option<String>)]
    pub backup_id: Option<BackupId>,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// When the record was last written (a running job writes it every second or so).
    pub updated_at: DateTime<Utc>,
    pub progress: Snapshot,
    /// The job's result: the backup summary, the verify report, the restore report document.
    #[schema(value_type = Option<Object>)]
    pub report: Option<Value>,
    pub error: Option<JobError>,
    /// Who runs (or ran) it: `ngbak serve on <host>`, a function's log stream, a lock's holder.
    pub host: String,
    /// `api` for jobs started through the API; `cli`, `tag`, `invoke`, … for those seen in the store.
    pub source: String,
    pub request: Request,
}

impl Job {
    /// A new job, queued.
    pub fn new(kind: Kind, backup_id: Option<BackupId>, request: Request, host: &str) -> Self {
        let now = Utc::now();
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        Job {
            job: format!("job_{}_{suffix}", now.format("%Y%m%dT%H%M%S%3fZ")),
            kind,
            backup_id,
            status: Status::Queued,
            created_at: now,
            started_at: None,
            ended_at: None,
            updated_at: now,
            progress: Snapshot::default(),
            report: None,
            error: None,
            host: host.to_string(),
            source: "api".into(),
            request,
        }
    }

    pub fn key(&self) -> String {
        format!("{}{JOB_SUFFIX}", self.job)
    }
}

/// Checks a job id as it comes in (it becomes part of an object key): `[A-Za-z0-9_-]`, at most
/// 200 characters.
pub fn check_job_id(job: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if job.is_empty() || job.len() > 200 || !job.chars().all(ok) {
        bail!("invalid job id {job:?}: job ids are made of [A-Za-z0-9_-] (as POST answered them)");
    }
    Ok(())
}

/// Writes a job's record (only the run doing the job writes it).
pub async fn save(store: &dyn ObjectStore, job: &mut Job) -> Result<()> {
    job.updated_at = Utc::now();
    let body = serde_json::to_vec_pretty(job)?;
    store.put(&job.key(), Bytes::from(body)).await.with_context(|| format!("writing the record of job {}", job.job))
}

/// A job by id: its record (followed through the store when it was handed off), or one seen
/// through the store. `None` when there is no such job.
pub async fn find(store: &dyn ObjectStore, job: &str) -> Result<Option<Job>> {
    check_job_id(job)?;
    if job.starts_with(SEEN_REPORT) || job.starts_with(SEEN_LOCK) {
        let objects = store.list("").await?;
        return Ok(seen(store, &objects).await?.into_iter().find(|j| j.job == job));
    }
    read_record(store, &format!("{job}{JOB_SUFFIX}")).await
}

/// A job's record as its run left it, followed when it was handed off, and told as failed when
/// its run went silent; `None` when there is no such record.
async fn read_record(store: &dyn ObjectStore, key: &str) -> Result<Option<Job>> {
    let bytes = match crate::store::get_bytes(store, key).await {
        Ok(bytes) => bytes,
        Err(_) if store.head(key).await?.is_none() => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut record: Job = serde_json::from_slice(&bytes).with_context(|| format!("{key} is not a job record"))?;
    if record.status == Status::HandedOff {
        follow(store, &mut record).await?;
    }
    if record.status == Status::Running && (Utc::now() - record.updated_at).to_std().unwrap_or_default() > STALE_AFTER {
        // Said, not written: the record stays as its run left it.
        record.status = Status::Failed;
        record.error = Some(JobError {
            kind: "Stopped".into(),
            detail: format!(
                "the run doing this job ({}) stopped writing its record at {}: it was killed or lost. What it did is \
                 in the store's restore report and locks; `ngbak cleanup` removes what it left",
                record.host, record.updated_at
            ),
        });
    }
    Ok(Some(record))
}

/// Every job: the records and the jobs seen through the store, newest first.
pub async fn list(store: &dyn ObjectStore, limit: usize) -> Result<Vec<Job>> {
    let objects = store.list("").await?;
    let mut records: Vec<&ObjectMeta> = objects.iter().filter(|o| o.key.ends_with(JOB_SUFFIX)).collect();
    // Job ids start with their creation time: the newest are the last keys.
    records.sort_by(|a, b| b.key.cmp(&a.key));
    let mut jobs = Vec::new();
    for object in records.into_iter().take(limit) {
        if let Some(found) = read_record(store, &object.key).await? {
            jobs.push(found);
        }
    }
    jobs.extend(seen(store, &objects).await?);
    jobs.sort_by_key(|j| std::cmp::Reverse(j.created_at));
    jobs.truncate(limit);
    Ok(jobs)
}

/// The jobs started elsewhere, as the store shows them: a held lock is a running job, a restore
/// report an ended restore (those the API ran have records of their own and are left out).
async fn seen(store: &dyn ObjectStore, objects: &[ObjectMeta]) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for object in objects {
        if lock::is_lock_key(&object.key) {
            let Some(info) = lock::read(store, &object.key).await? else { continue };
            if info.expired {
                continue;
            }
            let lock_name = object.key.trim_end_matches(".lock").replace('.', "-");
            let (kind, backup_id) = match object.key.strip_suffix(".backup.lock") {
                Some(id) => (Kind::Backup, id.parse().ok()),
                None => (Kind::Restore, None),
            };
            let mut job = seen_job(format!("{SEEN_LOCK}{lock_name}"), kind, backup_id, &info.holder, "lock");
            job.status = Status::Running;
            job.created_at = info.acquired_at.unwrap_or(job.created_at);
            job.started_at = info.acquired_at;
            jobs.push(job);
        } else if let Some(id) = object.key.strip_suffix(".restore-report.json") {
            let Ok(id) = id.parse::<BackupId>() else { continue };
            let Ok(bytes) = crate::store::get_bytes(store, &object.key).await else { continue };
            let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else { continue };
            let trigger = doc["trigger"].as_str().unwrap_or("unknown").to_string();
            if trigger == "api" {
                continue;
            }
            let mut job = seen_job(format!("{SEEN_REPORT}{id}"), Kind::Restore, Some(id), &trigger, &trigger);
            apply_report(&mut job, doc);
            jobs.push(job);
        }
    }
    Ok(jobs)
}

fn seen_job(job: String, kind: Kind, backup_id: Option<BackupId>, host: &str, source: &str) -> Job {
    let mut seen = Job::new(kind, backup_id, Request::default(), host);
    seen.job = job;
    seen.source = source.to_string();
    seen
}

/// Sets a job's end from a restore report document (`<id>.restore-report.json`).
fn apply_report(job: &mut Job, doc: Value) {
    let time = |field: &str| doc[field].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok());
    job.created_at = time("started_at").unwrap_or(job.created_at);
    job.started_at = time("started_at");
    job.ended_at = time("finished_at");
    job.status = match doc["status"].as_str() {
        Some("completed") => Status::Completed,
        _ if doc.get("stopped").is_some() => Status::Stopped,
        _ => Status::Failed,
    };
    if job.status != Status::Completed {
        job.error = Some(JobError {
            kind: doc["kind"].as_str().unwrap_or("Internal").to_string(),
            detail: doc["error"].as_str().unwrap_or("the restore failed (see its report)").to_string(),
        });
    }
    // A completed restore's report is the restore's own (as for the API's jobs); a failed one's
    // is the whole document (what was written, the rollback).
    job.report = match job.status {
        Status::Completed if doc.get("report").is_some() => Some(doc["report"].clone()),
        _ => Some(doc),
    };
}

/// A job handed off to a Fargate task ends when the store says so: a restore's report written
/// after the job started, or a backup's sidecar.
async fn follow(store: &dyn ObjectStore, job: &mut Job) -> Result<()> {
    let Some(id) = job.backup_id.clone() else { return Ok(()) };
    match job.kind {
        Kind::Restore => {
            let Some(meta) = store.head(&id.report_key()).await? else { return Ok(()) };
            if meta.modified.zip(job.started_at).is_some_and(|(written, started)| written >= started) {
                let doc = serde_json::from_slice(&crate::store::get_bytes(store, &id.report_key()).await?)?;
                apply_report(job, doc);
            }
        }
        Kind::Backup => {
            if let Some(sidecar) = store.head(&id.sidecar_key()).await? {
                job.status = Status::Completed;
                job.ended_at = sidecar.modified;
                job.report = Some(serde_json::json!({ "backup_id": id, "sidecar_key": id.sidecar_key() }));
            }
        }
        Kind::Verify | Kind::DryRun | Kind::Import => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_become_keys_only_when_safe() {
        let job = Job::new(Kind::Verify, None, Request::default(), "here");
        assert!(check_job_id(&job.job).is_ok());
        assert!(job.key().ends_with(JOB_SUFFIX));
        for bad in ["", "../x", "a/b", "a.b", "a b", &"j".repeat(201)] {
            assert!(check_job_id(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[tokio::test]
    async fn a_running_job_whose_record_went_quiet_is_said_to_have_failed() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local::LocalStore::new(dir.path().to_str().unwrap()).unwrap();
        let mut job = Job::new(Kind::Backup, None, Request::default(), "a host that died");
        job.status = Status::Running;
        save(&store, &mut job).await.unwrap();
        assert_eq!(find(&store, &job.job).await.unwrap().unwrap().status, Status::Running);
        // As a killed run leaves it: last written three minutes ago.
        job.updated_at = Utc::now() - chrono::Duration::minutes(3);
        store.put(&job.key(), Bytes::from(serde_json::to_vec(&job).unwrap())).await.unwrap();
        let seen = find(&store, &job.job).await.unwrap().unwrap();
        assert_eq!(seen.status, Status::Failed);
        assert!(seen.error.unwrap().detail.contains("a host that died"));
        assert!(find(&store, "job_nothing").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_handed_off_restore_is_followed_to_its_report() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::local::LocalStore::new(dir.path().to_str().unwrap()).unwrap();
        let id: BackupId = "handed".parse().unwrap();
        let mut job = Job::new(Kind::Restore, Some(id.clone()), Request::default(), "a function");
        job.status = Status::HandedOff;
        job.started_at = Some(Utc::now() - chrono::Duration::seconds(5));
        save(&store, &mut job).await.unwrap();
        assert_eq!(find(&store, &job.job).await.unwrap().unwrap().status, Status::HandedOff);
        // The Fargate task writes the restore's report when it ends.
        let report = serde_json::json!({"status": "completed", "report": {"backends": {}}, "trigger": "api"});
        store.put(&id.report_key(), Bytes::from(report.to_string())).await.unwrap();
        let followed = find(&store, &job.job).await.unwrap().unwrap();
        assert_eq!(followed.status, Status::Completed);
        assert_eq!(followed.report, Some(serde_json::json!({"backends": {}})));
    }

    #[test]
    fn a_restore_report_tells_how_the_restore_ended() {
        let mut job = seen_job("seen-restore_x".into(), Kind::Restore, "x".parse().ok(), "cli", "cli");
        let done = serde_json::json!({"status": "completed", "report": {"backends": {}}, "trigger": "cli",
            "started_at": "2026-12-05T03:00:00Z", "finished_at": "2026-12-05T03:00:05Z"});
        apply_report(&mut job, done);
        assert_eq!(job.status, Status::Completed);
        assert_eq!(job.report, Some(serde_json::json!({"backends": {}})));
        assert_eq!(job.ended_at.unwrap().to_rfc3339(), "2026-12-05T03:00:05+00:00");
        let stopped = serde_json::json!({"status": "failed", "kind": "Stopped", "error": "SIGTERM", "stopped": "SIGTERM received"});
        apply_report(&mut job, stopped);
        assert_eq!(job.status, Status::Stopped);
        assert_eq!(job.error.as_ref().unwrap().kind, "Stopped");
        assert!(job.status.is_final() && !Status::HandedOff.is_final());
    }
}
