//! `/api/v1/backups`: the list, one backup, its download, deleting it, and the jobs that start
//! from a backup (back up, verify, restore).

use super::jobs::{Job, Kind, Request};
use super::problem::Problem;
use super::{Api, Host, State};
use crate::id::BackupId;
use crate::pipeline::catalog;
use crate::store::lock;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// How long a download address handed out on Lambda stays valid.
const DOWNLOAD_URL_LIFETIME: Duration = Duration::from_secs(300);

/// A backup id from the path, checked before any store call.
pub fn backup_id(raw: &str) -> Result<BackupId, Problem> {
    raw.parse().map_err(|e: anyhow::Error| Problem::bad_request(format!("{e:#}")))
}

/// A JSON body (an empty one is the default), refused with the field at fault.
pub fn body<T: serde::de::DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| Problem::bad_request(format!("malformed request body: {e}")))
}

/// 404 unless the store holds the backup's archive or its sidecar.
async fn must_exist(api: &Api, id: &BackupId) -> Result<(), Problem> {
    if !catalog::exists(api.store.as_ref(), id).await? {
        return Err(Problem::not_found(format!("no backup {id} in {}", api.store.url())));
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct Page {
    /// At most this many backups (default 50, at most 1000).
    limit: Option<usize>,
    /// The backups after this one (the `next_after` of the page before).
    after: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BackupPage {
    /// `ngbak list --json`'s documents, newest first.
    #[schema(value_type = Vec<Object>)]
    pub backups: Vec<catalog::BackupListing>,
    /// Pass as `after` for the next page; null on the last.
    pub next_after: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/backups", tag = "backups", params(Page),
    responses((status = 200, body = BackupPage), (status = 400, body = Problem)))]
pub async fn list(axum::extract::State(api): State, Query(page): Query<Page>) -> Result<Json<BackupPage>, Problem> {
    let limit = page.limit.unwrap_or(50).clamp(1, 1000);
    let mut all = catalog::list_backups(api.store.as_ref(), &api.keys.trust).await?;
    if let Some(after) = page.after {
        let after = backup_id(&after)?;
        match all.iter().position(|b| b.backup_id == after) {
            Some(i) => drop(all.drain(..=i)),
            None => return Err(Problem::bad_request(format!("after: no backup {after} in the list"))),
        }
    }
    let next_after = (all.len() > limit).then(|| all[limit - 1].backup_id.to_string());
    all.truncate(limit);
    Ok(Json(BackupPage { backups: all, next_after }))
}

#[derive(Serialize, ToSchema)]
pub struct BackupDetail {
    #[schema(value_type = String)]
    pub backup_id: BackupId,
    /// The sidecar as stored (opened when the server holds an identity for an encrypted one).
    #[schema(value_type = Object)]
    pub manifest: Value,
    /// Who signed it, as the server's trusted keys tell.
    #[schema(value_type = Object)]
    pub signature: crate::authenticity::Provenance,
    /// The report of the last restore of this backup (`<id>.restore-report.json`), if any.
    #[schema(value_type = Option<Object>)]
    pub last_restore: Option<Value>,
}

#[utoipa::path(get, tag = "backups", path = "/api/v1/backups/{id}", params(("id" = String, Path)),
    responses((status = 200, body = BackupDetail), (status = 404, body = Problem)))]
pub async fn show(axum::extract::State(api): State, Path(id): Path<String>) -> Result<Json<BackupDetail>, Problem> {
    let id = backup_id(&id)?;
    must_exist(&api, &id).await?;
    let (manifest, signature) = catalog::inspect(api.store.as_ref(), &id, &api.keys.trust).await?;
    let last_restore = match api.store.head(&id.report_key()).await? {
        Some(_) => serde_json::from_slice(&crate::store::get_bytes(api.store.as_ref(), &id.report_key()).await?).ok(),
        None => None,
    };
    Ok(Json(BackupDetail { backup_id: id, manifest, signature, last_restore }))
}

#[utoipa::path(get, tag = "backups", path = "/api/v1/backups/{id}/download", params(("id" = String, Path)),
    responses((status = 200, description = "the archive's bytes (serve)", content_type = "application/octet-stream"),
              (status = 302, description = "a presigned GET of the archive (Lambda)"),
              (status = 404, body = Problem)))]
pub async fn download(axum::extract::State(api): State, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = backup_id(&id)?;
    let key = id.archive_key();
    let Some(meta) = api.store.head(&key).await? else {
        return Err(Problem::not_found(format!("no archive {key} in {}", api.store.url())));
    };
    if let Host::Function { .. } = api.host {
        // Function URL bodies are capped at a few MB: the client fetches the archive from S3.
        let url = api.store.presign_get(&key, DOWNLOAD_URL_LIFETIME).await?;
        return Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response());
    }
    // Pinned to the version just looked at: a replaced archive fails the read, never mixes.
    let object = api.store.get(&key, meta.etag.as_deref()).await?;
    let stream = tokio_util::io::ReaderStream::with_capacity(object.body, 1 << 20);
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::CONTENT_LENGTH, object.meta.size.to_string()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{key}\"")),
    ];
    Ok((headers, Body::from_stream(stream)).into_response())
}

#[utoipa::path(delete, tag = "backups", path = "/api/v1/backups/{id}", params(("id" = String, Path)),
    responses((status = 204, description = "archive, sidecar, signature and report deleted"),
              (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(axum::extract::State(api): State, Path(id): Path<String>) -> Result<StatusCode, Problem> {
    let id = backup_id(&id)?;
    must_exist(&api, &id).await?;
    let store = api.store.as_ref();
    if store.is_locked(&id.archive_key()).await? || store.is_locked(&id.sidecar_key()).await? {
        return Err(Problem::conflict(
            format!("backup {id} is protected by an S3 Object Lock (retention or legal hold)"),
            "wait until its retention ends, or ask whoever set the legal hold",
        ));
    }
    catalog::delete_backup(store, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The answer to a job started: 202, its id and where to follow it.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub job: String,
    pub location: String,
    pub status: super::jobs::Status,
}

/// 202 with the job's id and `Location`.
pub fn accepted(job: Job) -> Response {
    let location = format!("/api/v1/jobs/{}", job.job);
    let body = Accepted { job: job.job, location: location.clone(), status: job.status };
    (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response()
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBackup {
    /// The backup id (default `snapshot_<UTC time>`).
    pub id: Option<String>,
    /// Only these configured backends.
    #[serde(default)]
    pub only: Vec<String>,
    /// `gzip` or `zstd` (default: the server's setting).
    pub codec: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/backups", tag = "backups", request_body(content = Option<StartBackup>),
    responses((status = 202, body = Accepted), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn start_backup(axum::extract::State(api): State, bytes: Bytes) -> Result<Response, Problem> {
    let start: StartBackup = body(&bytes)?;
    let id = match &start.id {
        Some(id) => backup_id(id)?,
        None => BackupId::for_time(chrono::Utc::now()),
    };
    let request = Request { only: start.only, codec: start.codec, ..Default::default() };
    super::run::check_request(&api.config, &request).map_err(|e| Problem::bad_request(format!("{e:#}")))?;
    if api.store.head(&id.sidecar_key()).await?.is_some() {
        return Err(Problem::conflict(format!("backup {id} already exists"), "choose another id, or delete it first"));
    }
    if let Some(held) = lock::read(api.store.as_ref(), &id.lock_key("backup")).await?.filter(|l| !l.expired) {
        return Err(Problem::conflict(
            format!("backup {id} is being written by {}", held.holder),
            "wait for that job to end (GET /api/v1/jobs)",
        ));
    }
    let job = api.dispatch(Job::new(Kind::Backup, Some(id), request, &api.host_name), None).await?;
    Ok(accepted(job))
}

#[utoipa::path(post, tag = "backups", path = "/api/v1/backups/{id}/verify", params(("id" = String, Path)),
    responses((status = 202, body = Accepted), (status = 404, body = Problem)))]
pub async fn start_verify(axum::extract::State(api): State, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = backup_id(&id)?;
    must_exist(&api, &id).await?;
    let job = api.dispatch(Job::new(Kind::Verify, Some(id), Request::default(), &api.host_name), None).await?;
    Ok(accepted(job))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRestore {
    /// Only these backends of the archive.
    #[serde(default)]
    pub only: Vec<String>,
    /// Verify and plan, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// `merge` or `replace` (default: the server's setting).
    pub kv_mode: Option<String>,
    pub graph_mode: Option<String>,
    pub vector_mode: Option<String>,
    #[serde(default)]
    pub no_verify_restored: bool,
    #[serde(default)]
    pub no_safety_backup: bool,
    /// The backup id again: required for a restore that writes.
    pub confirm: Option<String>,
}

#[utoipa::path(post, tag = "backups", path = "/api/v1/backups/{id}/restore", params(("id" = String, Path)),
    request_body(content = Option<StartRestore>),
    responses((status = 202, body = Accepted), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
pub async fn start_restore(
    axum::extract::State(api): State,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, Problem> {
    let id = backup_id(&id)?;
    let start: StartRestore = body(&bytes)?;
    if !start.dry_run && start.confirm.as_deref() != Some(id.as_str()) {
        return Err(Problem::bad_request(format!(
            "confirm: a restore writes into the live stores; send \"confirm\": \"{id}\" to say this is the backup meant \
             (or \"dry_run\": true to see what it would do)"
        )));
    }
    let request = Request {
        only: start.only,
        kv_mode: start.kv_mode,
        graph_mode: start.graph_mode,
        vector_mode: start.vector_mode,
        no_verify_restored: start.no_verify_restored,
        no_safety_backup: start.no_safety_backup,
        ..Default::default()
    };
    super::run::check_request(&api.config, &request).map_err(|e| Problem::bad_request(format!("{e:#}")))?;
    must_exist(&api, &id).await?;
    let kind = if start.dry_run { Kind::DryRun } else { Kind::Restore };
    let job = Job::new(kind, Some(id), request, &api.host_name);
    // One restore at a time per store: held from now (serve), or checked now (Lambda: the
    // restore function takes it; a job that lost the race fails as LockHeld).
    let held = match (&api.host, kind) {
        (_, Kind::DryRun) => None,
        (Host::Serve { .. }, _) => {
            Some(super::run::take_restore_lock(&api.store, &format!("{} ({})", api.host_name, job.job)).await?)
        }
        (Host::Function { .. }, _) => {
            if let Some(held) = lock::read(api.store.as_ref(), lock::RESTORE_LOCK).await?.filter(|l| !l.expired) {
                return Err(Problem::conflict(
                    format!("another restore is running in {} ({})", api.store.url(), held.holder),
                    "wait for it to end (GET /api/v1/jobs)",
                ));
            }
            None
        }
    };
    let job = api.dispatch(job, held).await?;
    Ok(accepted(job))
}
