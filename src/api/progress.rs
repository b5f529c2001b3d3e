//! `/api/v1/jobs`: the jobs, one job, and one job's changes as Server-Sent Events. Every answer
//! is read from the store, so any host tells the same, whoever started the job.

use super::jobs::{self, Job};
use super::problem::Problem;
use super::State;
use axum::extract::Path;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// How often a followed job is read again.
const POLL: Duration = Duration::from_millis(500);
/// On Lambda (a buffered Function URL answers only when the handler ends) a stream ends after
/// this long; an `EventSource` reconnects by itself, so a client follows the job in steps.
const FUNCTION_STREAM: Duration = Duration::from_secs(20);

#[derive(Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<Job>,
}

#[utoipa::path(get, tag = "jobs", path = "/api/v1/jobs", responses((status = 200, body = JobList)))]
pub async fn list(axum::extract::State(api): State) -> Result<Json<JobList>, Problem> {
    Ok(Json(JobList { jobs: jobs::list(api.store.as_ref(), 50).await? }))
}

async fn found(api: &super::Api, job: &str) -> Result<Job, Problem> {
    jobs::check_job_id(job).map_err(|e| Problem::bad_request(format!("{e:#}")))?;
    jobs::find(api.store.as_ref(), job)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no job {job} in {}", api.store.url())))
}

#[utoipa::path(get, tag = "jobs", path = "/api/v1/jobs/{job}", params(("job" = String, Path)),
    responses((status = 200, body = Job), (status = 404, body = Problem)))]
pub async fn show(axum::extract::State(api): State, Path(job): Path<String>) -> Result<Json<Job>, Problem> {
    Ok(Json(found(&api, &job).await?))
}

#[utoipa::path(get, tag = "jobs", path = "/api/v1/jobs/{job}/events", params(("job" = String, Path)),
    responses((status = 200, description = "events named `job`, each the job as GET /jobs/{job} answers; the stream ends after the job does",
               content_type = "text/event-stream"), (status = 404, body = Problem)))]
pub async fn events(
    axum::extract::State(api): State,
    Path(job): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, Problem> {
    let first = found(&api, &job).await?;
    let until = match api.host {
        super::Host::Function { .. } => Some(tokio::time::Instant::now() + FUNCTION_STREAM),
        super::Host::Serve { .. } => None,
    };
    // State: the job last sent (none before the first), and whether the stream is done.
    let stream = futures::stream::unfold((Some(first), None::<Job>, false), move |(next, last, done)| {
        let api = api.clone();
        let job = job.clone();
        async move {
            if done {
                return None;
            }
            let mut current = next;
            loop {
                if let Some(now) = current.take() {
                    if last.as_ref() != Some(&now) {
                        let event = Event::default().event("job").json_data(&now).unwrap_or_default();
                        let ended = now.status.is_final();
                        return Some((Ok(event), (None, Some(now), ended)));
                    }
                }
                if until.is_some_and(|t| tokio::time::Instant::now() >= t) {
                    return None;
                }
                tokio::time::sleep(POLL).await;
                match jobs::find(api.store.as_ref(), &job).await {
                    Ok(Some(now)) => current = Some(now),
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::warn!("following job {job}: {e:#}");
                    }
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
