//! The Lambda function binaries under a Runtime API: a SIGTERM while idle ends them at once; one
//! during a backup stops it cleanly (upload aborted, lock released, the failure answered) and
//! then ends them; every failure answers with a stable `errorType`.

mod common;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use common::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// Test double of AWS Lambda's Runtime API (the service that hands a function its events and
/// takes its answers), which cannot run on this machine: it hands out the events queued with
/// [`RuntimeApiStandIn::invoke`] one per `next` request (a `next` with none queued waits, as an
/// idle function's does), and records the answers.
struct RuntimeApiStandIn {
    address: String,
    events: mpsc::UnboundedSender<Vec<u8>>,
    state: Arc<StandInState>,
}

/// What the function answered one invocation: `response` or `error`, and the body.
struct Answer {
    kind: String,
    body: Value,
}

struct StandInState {
    queued: tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    answers: Mutex<Vec<Answer>>,
    waiting: Notify,
    answered: Notify,
}

impl RuntimeApiStandIn {
    async fn start() -> Self {
        let (events, queued) = mpsc::unbounded_channel();
        let state = Arc::new(StandInState {
            queued: tokio::sync::Mutex::new(queued),
            answers: Mutex::new(Vec::new()),
            waiting: Notify::new(),
            answered: Notify::new(),
        });
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        RuntimeApiStandIn { address, events, state }
    }

    fn invoke(&self, payload: &[u8]) {
        self.events.send(payload.to_vec()).unwrap();
    }

    /// Waits until the function asks for its next event (it is idle then).
    async fn until_waiting(&self) {
        tokio::time::timeout(Duration::from_secs(60), self.state.waiting.notified())
            .await
            .expect("the function never asked for an event");
    }

    async fn next_answer(&self) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let notified = self.state.answered.notified();
            if let Some(answer) = self.state.answers.lock().unwrap().pop() {
                return answer;
            }
            assert!(Instant::now() < deadline, "the function never answered");
            let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
        }
    }
}

async fn next(State(state): State<Arc<StandInState>>) -> impl IntoResponse {
    state.waiting.notify_waiters();
    let event = state.queued.lock().await.recv().await.unwrap_or_default();
    let deadline = chrono::Utc::now().timestamp_millis() + 600_000;
    let mut headers = HeaderMap::new();
    headers.insert("Lambda-Runtime-Aws-Request-Id", uuid::Uuid::new_v4().to_string().parse().unwrap());
    headers.insert("Lambda-Runtime-Deadline-Ms", deadline.to_string().parse().unwrap());
    headers.insert(
        "Lambda-Runtime-Invoked-Function-Arn",
        "arn:aws:lambda:us-east-1:000000000000:function:ngbak".parse().unwrap(),
    );
    (headers, event)
}

async fn answer(
    State(state): State<Arc<StandInState>>,
    Path((_id, kind)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
    state.answers.lock().unwrap().push(Answer { kind, body });
    state.answered.notify_waiters();
    StatusCode::ACCEPTED
}

async fn init_error(body: axum::body::Bytes) -> StatusCode {
    panic!("the function failed to start: {}", String::from_utf8_lossy(&body));
}

/// Starts a function binary against the stand-in, with `envs` as its configuration.
fn start_function(binary: &str, api: &RuntimeApiStandIn, envs: &[(&str, &str)]) -> std::process::Child {
    let mut command = std::process::Command::new(binary);
    for inherited in ["NGBAK_STORE", "REDIS_URL", "NGBAK_KV_DIR", "NEO4J_URI", "QDRANT_URL"] {
        command.env_remove(inherited);
    }
    command
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "ngbak-test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test-group")
        .env("AWS_ENDPOINT_URL", s3_endpoint())
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command.spawn().expect("starting the function binary")
}

#[tokio::test]
async fn an_idle_function_exits_at_once_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    for binary in [env!("CARGO_BIN_EXE_ngbak-backup"), env!("CARGO_BIN_EXE_ngbak-restore")] {
        let api = RuntimeApiStandIn::start().await;
        let child = start_function(binary, &api, &[("NGBAK_STORE", store)]);
        api.until_waiting().await;
        let signalled = Instant::now();
        terminate(&child);
        let out = wait_at_most(child, Duration::from_secs(2)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{binary}: {stderr}");
        assert!(stderr.contains("no invocation runs"), "{binary}: {stderr}");
        assert!(signalled.elapsed() < Duration::from_secs(2));
    }
}

#[tokio::test]
async fn failures_answer_with_their_kind_as_error_type() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().to_str().unwrap();
    let api = RuntimeApiStandIn::start().await;
    let child = start_function(env!("CARGO_BIN_EXE_ngbak-restore"), &api, &[("NGBAK_STORE", store)]);
    let cases: [(&[u8], &str); 3] = [
        (b"this is not json {", "MalformedEvent"),
        (br#"{"backup_id": "a/../b"}"#, "MalformedEvent"),
        (br#"{"backup_id": "snapshot_2026-01-01T00-00-00Z"}"#, "BackupNotFound"),
    ];
    for (event, kind) in cases {
        api.invoke(event);
        let Answer { kind: answer, body } = api.next_answer().await;
        assert_eq!(answer, "error", "{}", String::from_utf8_lossy(event));
        assert_eq!(body["errorType"], json!(kind), "{body}");
        assert!(!body["errorMessage"].as_str().unwrap_or_default().is_empty(), "{body}");
    }
    api.until_waiting().await;
    terminate(&child);
    wait_at_most(child, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn sigterm_during_a_backup_stops_it_cleanly_answers_and_exits() {
    let bucket = new_bucket().await;
    let store = format!("s3://{bucket}/fn");
    let (pattern, url, stalled) = stalling_redis(2000, 40_000).await;

    let api = RuntimeApiStandIn::start().await;
    let envs = [("NGBAK_STORE", store.as_str()), ("REDIS_URL", url.as_str()), ("NGBAK_REDIS_PATTERNS", &pattern)];
    let child = start_function(env!("CARGO_BIN_EXE_ngbak-backup"), &api, &envs);
    api.invoke(br#"{"backup_id": "stopped_in_function"}"#);
    tokio::time::timeout(Duration::from_secs(60), stalled.notified()).await.expect("the backup never reached Redis");
    until_upload_pending(&bucket).await;
    terminate(&child);
    let Answer { kind: answer, body } = api.next_answer().await;
    let out = wait_at_most(child, Duration::from_secs(25)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(answer, "error", "{body}");
    assert_eq!(body["errorType"], json!("Stopped"), "{body}");
    assert!(body["errorMessage"].as_str().unwrap().contains("SIGTERM"), "{body}");
    assert!(out.status.success(), "{stderr}");
    assert!(pending_uploads(&bucket).await.is_empty(), "the multipart upload was left pending");
    assert!(bucket_keys(&bucket).await.is_empty(), "objects (archive, lock) left: {:?}", bucket_keys(&bucket).await);
    delete_pattern(&mut redis().await, &pattern).await;
}
