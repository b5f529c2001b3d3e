//! Errors as `application/problem+json` (RFC 9457): a status, a `detail` that says what went
//! wrong, the failure `kind` when there is one, and the operator's `next_step`.

use crate::failure::FailureKind;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind_uri: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The failure kind (README, "Failure kinds"), when the pipeline named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub next_step: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>, next_step: impl Into<String>) -> Self {
        Problem {
            kind_uri: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: crate::net::scrub(&detail.into()),
            kind: None,
            next_step: next_step.into(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, detail, "correct the request and send it again")
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, detail, "GET /api/v1/backups lists what there is")
    }

    pub fn conflict(detail: impl Into<String>, next_step: impl Into<String>) -> Self {
        Problem::new(StatusCode::CONFLICT, detail, next_step)
    }
}

/// A pipeline error: its failure kind chooses the status and the next step.
impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Self {
        let kind = crate::pipeline::failure_kind(&e);
        let (status, next) = match kind {
            FailureKind::MalformedEvent | FailureKind::ConfigurationError => {
                (StatusCode::BAD_REQUEST, "correct the request or the server's configuration")
            }
            FailureKind::BackupExists => (StatusCode::CONFLICT, "choose another id, or delete that backup first"),
            FailureKind::BackupNotFound => (StatusCode::NOT_FOUND, "GET /api/v1/backups lists what there is"),
            FailureKind::LockHeld => (StatusCode::CONFLICT, "wait for the running job to end (GET /api/v1/jobs)"),
            FailureKind::IntegrityError | FailureKind::Unauthenticated => {
                (StatusCode::UNPROCESSABLE_ENTITY, "this archive cannot be trusted; use another backup")
            }
            FailureKind::BackendUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "check that the backends and the store answer (ngbak check)")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "see the server's log for the whole error"),
        };
        let mut problem = Problem::new(status, format!("{e:#}"), next);
        if kind != FailureKind::Internal {
            problem.kind = Some(kind.name());
        }
        problem
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
    }
}
