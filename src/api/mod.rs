//! The operator HTTP API: one axum router over the same pipeline the CLI calls, hosted by
//! `ngbak serve` (a directory or S3 store, a bearer token) and by the API function behind a
//! Lambda Function URL (IAM). Jobs live in the store (`jobs`), run in `run`, and are handed out
//! by the host (`Host`): queued in-process by `serve`, invoked asynchronously on Lambda.

pub mod auth;
pub mod backups;
pub mod function;
pub mod jobs;
pub mod openapi;
pub mod page;
pub mod problem;
pub mod progress;
pub mod run;
pub mod serve;
pub mod uploads;

use crate::lambda::FunctionConfig;
use crate::store::{lock, ObjectStore};
use axum::routing::{get, post};
use axum::Router;
use jobs::Job;
use problem::Problem;
use std::sync::Arc;

/// Where jobs run.
pub enum Host {
    /// `ngbak serve`: one job at a time, in this process, in the order they came.
    Serve { queue: tokio::sync::mpsc::UnboundedSender<(Job, Option<lock::Lock>)> },
    /// The API function: backups and imports go to the backup function, the rest to the restore function,
    /// each as an asynchronous invoke naming the job (`{"ngbak_job": "<job>"}`).
    Function { lambda: aws_sdk_lambda::Client, backup_function: String, restore_function: String },
}

/// What every handler shares.
pub struct Api {
    pub store: Arc<dyn ObjectStore>,
    pub config: FunctionConfig,
    /// The keys the host trusts, opens and signs with, read once at its start (a trusted KMS
    /// key's public half, an identity from Secrets Manager: not fetched again per request).
    pub keys: crate::authenticity::Keys,
    pub host: Host,
    /// `serve`'s bearer token (none on Lambda, where IAM guards the Function URL).
    pub token: Option<String>,
    /// The largest archive `POST /uploads` takes.
    pub max_upload_bytes: u64,
    /// Who runs the jobs, for their records.
    pub host_name: String,
}

pub type State = axum::extract::State<Arc<Api>>;

/// The default limit of `POST /uploads` (100 GiB).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 100 << 30;

/// The whole API: the page at `/`, the JSON routes under `/api/v1`, the token check around both.
pub fn router(api: Arc<Api>) -> Router {
    let v1 = Router::new()
        .route("/backups", get(backups::list).post(backups::start_backup))
        .route("/backups/{id}", get(backups::show).delete(backups::delete))
        .route("/backups/{id}/download", get(backups::download))
        .route("/backups/{id}/verify", post(backups::start_verify))
        .route("/backups/{id}/restore", post(backups::start_restore))
        .route("/uploads", post(uploads::upload))
        .route("/uploads/{upload}/complete", post(uploads::complete))
        .route("/jobs", get(progress::list))
        .route("/jobs/{job}", get(progress::show))
        .route("/jobs/{job}/events", get(progress::events))
        .route("/openapi.json", get(openapi::document))
        .fallback(|| async { Problem::not_found("no such route under /api/v1 (GET /api/v1/openapi.json lists them)") });
    Router::new()
        .route("/", get(page::page))
        .route("/healthz", get(|| async { "ok" }))
        .nest("/api/v1", v1)
        .layer(axum::middleware::from_fn_with_state(api.clone(), auth::check))
        .with_state(api)
}

impl Api {
    /// Records `job` as queued and hands it to the host; the answer is the job as recorded.
    pub async fn dispatch(&self, mut job: Job, held: Option<lock::Lock>) -> Result<Job, Problem> {
        jobs::save(self.store.as_ref(), &mut job).await?;
        match &self.host {
            Host::Serve { queue } => {
                let failed = queue.send((job.clone(), held)).is_err();
                if failed {
                    return Err(Problem::new(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "the server is shutting down and takes no new job",
                        "start the job again once ngbak serve is back",
                    ));
                }
            }
            Host::Function { lambda, backup_function, restore_function } => {
                // Jobs that write a backup go where backups are written (the backup function's
                // role); the others to the restore function.
                let function = match job.kind {
                    jobs::Kind::Backup | jobs::Kind::Import => backup_function,
                    jobs::Kind::Verify | jobs::Kind::DryRun | jobs::Kind::Restore => restore_function,
                };
                let payload = serde_json::json!({ "ngbak_job": job.job }).to_string().into_bytes();
                let invoked = lambda
                    .invoke()
                    .function_name(function)
                    .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                    .payload(aws_sdk_lambda::primitives::Blob::new(payload))
                    .send()
                    .await;
                if let Err(e) = invoked {
                    let detail =
                        format!("invoking {function} failed: {}", aws_sdk_lambda::error::DisplayErrorContext(&e));
                    job.status = jobs::Status::Failed;
                    job.error = Some(jobs::JobError { kind: "Internal".into(), detail: detail.clone() });
                    jobs::save(self.store.as_ref(), &mut job).await?;
                    return Err(Problem::new(
                        axum::http::StatusCode::BAD_GATEWAY,
                        detail,
                        "check the API function's lambda:InvokeFunction permission and NGBAK_BACKUP_FUNCTION / NGBAK_RESTORE_FUNCTION",
                    ));
                }
            }
        }
        Ok(job)
    }
}

/// `ngbak serve`'s worker: runs the queued jobs one after another (a restore and a backup of
/// one deployment never overlap) until a signal stops the server; the jobs still queued then are
/// recorded as stopped.
pub async fn work_queue(api: Arc<Api>, mut queue: tokio::sync::mpsc::UnboundedReceiver<(Job, Option<lock::Lock>)>) {
    let far = std::time::Duration::from_secs(365 * 24 * 3600);
    loop {
        let next = tokio::select! {
            next = queue.recv() => next,
            () = crate::stop::signalled() => None,
        };
        let Some((job, held)) = next else { break };
        run::run_job(&api.config, api.store.clone(), job, held, &api.host_name, far).await;
    }
    queue.close();
    while let Ok((mut job, held)) = queue.try_recv() {
        job.status = jobs::Status::Stopped;
        job.ended_at = Some(chrono::Utc::now());
        let detail = "the server stopped before the job ran; nothing was done".to_string();
        job.error = Some(jobs::JobError { kind: "Stopped".into(), detail });
        if let Err(e) = jobs::save(api.store.as_ref(), &mut job).await {
            tracing::error!("{e:#}");
        }
        if let Some(lock) = held {
            lock.release().await.ok();
        }
    }
}
