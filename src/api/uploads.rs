//! `POST /api/v1/uploads`: restore from an operator's own archive file. `serve` takes the body
//! as a stream, read once: into a pending upload under the archive's key and through the
//! verifier at the same time; the upload completes only when the archive proved to be backup
//! `id`'s, whole and untampered (as `ngbak import` checks it), so a refused or broken-off upload
//! leaves nothing behind. Restoring it is then `POST /backups/{id}/restore`.
//!
//! On Lambda (Function URL bodies are capped at a few MB) the answer is a presigned multipart
//! upload instead: the client PUTs each part to its address, then `POST /uploads/{upload}/complete`
//! with the ETags starts an import job, which proves the staged object as `ngbak import` does,
//! stores it as the backup, and removes the staged object whatever the outcome.

use super::backups::backup_id;
use super::problem::Problem;
use super::{Host, State};
use axum::body::Body;
use axum::extract::Query;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct UploadTarget {
    /// The backup id the archive holds (its file name without `.ngbak`).
    id: String,
    /// The archive's size in bytes (on Lambda: to cut it into presigned parts).
    size: Option<u64>,
}

/// How long the presigned part addresses stay valid.
const PART_URL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
/// The smallest part (S3 takes at most 10,000 parts, each but the last at least 5 MiB).
const MIN_PART_BYTES: u64 = 16 << 20;

/// The parts to send on Lambda.
#[derive(Serialize, ToSchema)]
pub struct PresignedParts {
    /// Pass back in `POST /uploads/{upload}/complete`.
    pub upload: String,
    pub backup_id: String,
    /// Every part but the last holds exactly this many bytes.
    pub part_bytes: u64,
    /// PUT part `i` (from 1) of the file to `parts[i-1]`; keep each answer's ETag header.
    pub parts: Vec<String>,
    pub complete: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// What `complete` is sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteUpload {
    /// The ETag each part's PUT answered, in part order.
    pub etags: Vec<String>,
}

/// The upload token: the backup id and S3's upload id, both checked again when it comes back.
#[derive(Serialize, Deserialize)]
struct Token {
    id: String,
    upload_id: String,
}

fn staged_key(id: &crate::id::BackupId) -> String {
    format!("{}.upload", id.archive_key())
}

#[derive(Serialize, ToSchema)]
pub struct Uploaded {
    pub backup_id: String,
    /// What the import proved (`ngbak import --json`'s document).
    #[schema(value_type = Object)]
    pub report: crate::pipeline::import::StandaloneReport,
    pub location: String,
}

#[utoipa::path(post, tag = "uploads", path = "/api/v1/uploads", params(UploadTarget),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the .ngbak archive"),
    responses((status = 201, body = Uploaded, description = "serve: stored, verified"),
              (status = 200, body = PresignedParts, description = "Lambda: where to send the parts"),
              (status = 400, body = Problem), (status = 409, body = Problem),
              (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn upload(
    axum::extract::State(api): State,
    Query(target): Query<UploadTarget>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let id = backup_id(&target.id)?;
    if let Host::Function { .. } = api.host {
        return presign(&api, id, target.size).await;
    }
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > api.max_upload_bytes) {
        return Err(too_large(api.max_upload_bytes));
    }
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let imported =
        crate::pipeline::import::import_stream(&api.store, Box::pin(stream), &id, api.max_upload_bytes, &api.keys)
            .await;
    let report = match imported {
        Ok(report) => report,
        Err(e) if e.downcast_ref::<crate::pipeline::import::TooLarge>().is_some() => {
            return Err(too_large(api.max_upload_bytes))
        }
        Err(e) => return Err(e.into()),
    };
    let location = format!("/api/v1/backups/{id}");
    let body = Uploaded { backup_id: id.to_string(), report, location: location.clone() };
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response())
}

fn too_large(limit: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the archive is larger than the {limit} bytes this server takes; nothing was stored"),
        "raise NGBAK_API_MAX_UPLOAD_BYTES (--max-upload-bytes), or import it with `ngbak import FILE`",
    )
}

/// Lambda: a presigned multipart upload to a staging object beside the backups.
async fn presign(api: &super::Api, id: crate::id::BackupId, size: Option<u64>) -> Result<Response, Problem> {
    let size =
        size.ok_or_else(|| Problem::bad_request("size: the archive's size in bytes is needed to cut it into parts"))?;
    if size > api.max_upload_bytes {
        return Err(too_large(api.max_upload_bytes));
    }
    if crate::pipeline::catalog::exists(api.store.as_ref(), &id).await? {
        return Err(Problem::conflict(
            format!("backup {id} already exists"),
            "delete it first, or upload under its own id",
        ));
    }
    let part_bytes = size.div_ceil(10_000).max(MIN_PART_BYTES).next_multiple_of(1 << 20);
    let parts = size.div_ceil(part_bytes).max(1) as u32;
    let presigned = api.store.presign_upload(&staged_key(&id), parts, PART_URL_LIFETIME).await?;
    use base64::Engine;
    let token = serde_json::to_vec(&Token { id: id.to_string(), upload_id: presigned.upload_id })
        .map_err(anyhow::Error::from)?;
    let upload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token);
    let body = PresignedParts {
        complete: format!("/api/v1/uploads/{upload}/complete"),
        upload,
        backup_id: id.to_string(),
        part_bytes,
        parts: presigned.part_urls,
        expires_at: chrono::Utc::now() + PART_URL_LIFETIME,
    };
    Ok((StatusCode::OK, Json(body)).into_response())
}

#[utoipa::path(post, tag = "uploads", path = "/api/v1/uploads/{upload}/complete", params(("upload" = String, Path)),
    request_body = CompleteUpload,
    responses((status = 202, body = super::backups::Accepted, description = "the import job"),
              (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn complete(
    axum::extract::State(api): State,
    axum::extract::Path(upload): axum::extract::Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, Problem> {
    use base64::Engine;
    let token: Token = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(upload.as_bytes())
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .ok_or_else(|| {
            Problem::bad_request("upload: not an upload this API handed out (POST /api/v1/uploads?id=…&size=…)")
        })?;
    let id = backup_id(&token.id)?;
    let done: CompleteUpload = super::backups::body(&bytes)?;
    if done.etags.is_empty() {
        return Err(Problem::bad_request("etags: one ETag per part, in order"));
    }
    let staged = staged_key(&id);
    api.store.complete_presigned(&staged, &token.upload_id, &done.etags).await?;
    let request = super::jobs::Request { staged: Some(staged), ..Default::default() };
    let job = super::jobs::Job::new(super::jobs::Kind::Import, Some(id), request, &api.host_name);
    let job = api.dispatch(job, None).await?;
    Ok(super::backups::accepted(job))
}
