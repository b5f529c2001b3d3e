//! Lambda entry points: the scheduled backup and the tag-triggered restore.
//!
//! Both read their settings from the environment (the same names as the CLI's variables) and are
//! plain async functions of a JSON event, so tests and `cargo lambda invoke` drive the very code
//! that runs in AWS.

pub mod backup;
pub mod events;
pub mod restore;

use crate::config::{BackendArgs, RestoreArgs, StoreArgs, TuningArgs};
use crate::failure::FailureKind;
use crate::pipeline::failure_kind;
use clap::Parser;

/// The functions' settings, read from environment variables.
#[derive(Parser, Clone, Debug)]
#[command(name = "ngbak-lambda", about = "settings of the ngbak Lambda functions (from the environment)")]
pub struct FunctionConfig {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub backends: BackendArgs,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub restore: RestoreArgs,
    /// Tag whose value asks for a restore.
    #[arg(long, env = "NGBAK_RESTORE_TAG_KEY", default_value = "ngbak-restore")]
    pub restore_tag_key: String,
    /// The value of that tag that means "restore this archive".
    #[arg(long, env = "NGBAK_RESTORE_TAG_VALUE", default_value = "requested")]
    pub restore_tag_value: String,
    /// After a successful scheduled backup, prune with the NGBAK_KEEP_* policy.
    #[arg(long, env = "NGBAK_PRUNE_AFTER_BACKUP", default_value = "false", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub prune_after_backup: bool,
    #[command(flatten)]
    pub keep: crate::pipeline::retention::KeepPolicy,
    #[command(flatten)]
    pub net: crate::net::NetArgs,
    #[command(flatten)]
    pub auth: crate::authenticity::AuthArgs,
}

impl FunctionConfig {
    /// `ngbak serve`'s settings: the command line's, with the functions' own (tags, pruning)
    /// from the environment or their defaults.
    pub fn for_serve(
        store: StoreArgs,
        backends: BackendArgs,
        tuning: TuningArgs,
        restore: RestoreArgs,
        net: crate::net::NetArgs,
        auth: crate::authenticity::AuthArgs,
    ) -> anyhow::Result<Self> {
        let defaults = FunctionConfig::try_parse_from(["ngbak-lambda"])?;
        Ok(FunctionConfig { store, backends, tuning, restore, net, auth, ..defaults })
    }

    /// Reads the configuration from the environment only, then resolves Secrets Manager ARNs.
    pub async fn from_env() -> anyhow::Result<Self> {
        let mut config = FunctionConfig::try_parse_from(["ngbak-lambda"])?;
        config.net.apply()?;
        crate::secrets::resolve(&mut config.backends).await?;
        Ok(config)
    }
}

/// Runs `job` with the current settings. When a backend refuses the credentials and a secret they
/// came from has changed since it was read (rotation), the new value is kept and `job` runs once
/// more: a warm function would otherwise fail until its next cold start.
pub async fn with_rotation<F, Fut>(
    config: &tokio::sync::RwLock<FunctionConfig>,
    job: F,
) -> anyhow::Result<serde_json::Value>
where
    F: Fn(FunctionConfig) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<serde_json::Value>>,
{
    let current = config.read().await.clone();
    match job(current).await {
        Err(e) if crate::secrets::is_auth_failure(&e) => {
            let mut settings = config.write().await;
            if !crate::secrets::refresh(&mut settings.backends).await? {
                return Err(e);
            }
            tracing::warn!("credentials were refused and a secret has changed since it was read: trying once more");
            let renewed = settings.clone();
            drop(settings);
            job(renewed).await
        }
        outcome => outcome,
    }
}

/// An event that could not be read, as a [`FailureKind::MalformedEvent`] (same text).
pub(crate) fn malformed(error: anyhow::Error) -> anyhow::Error {
    FailureKind::MalformedEvent.marked(format!("{error:#}")).into()
}

/// What a function answers for a failure: its kind as `errorType` (stable, see
/// [`crate::failure`]), its message scrubbed of secrets.
pub fn error_response(error: &anyhow::Error) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic {
        error_type: failure_kind(error).name().to_string(),
        error_message: crate::net::scrub(&format!("{error:#}")),
    }
}

/// An invocation's payload: JSON, or the reason it is not (answered as `MalformedEvent` by the
/// function instead of the runtime's own error, whose type names a Rust type).
pub enum Payload {
    Json(serde_json::Value),
    Malformed(String),
}

impl<'de> serde::Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match serde_json::Value::deserialize(deserializer) {
            Ok(value) => Payload::Json(value),
            Err(e) => Payload::Malformed(e.to_string()),
        })
    }
}

/// Runs a handler under the Lambda runtime, logging JSON with the request id. Failures answer
/// with their kind (see [`error_response`]). A SIGTERM or SIGINT while no invocation runs ends
/// the process at once (status 0); one during an invocation stops its job cleanly (the upload
/// aborted, the lock released, the report written), lets its answer reach the Runtime API, and
/// then ends the process, so a function being shut down never waits for another event.
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(serde_json::Value, lambda_runtime::Context) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<serde_json::Value>> + Send,
{
    crate::stop::exit_when_signalled_idle();
    let handler = std::sync::Arc::new(handler);
    let run = lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Payload>| {
        let handler = handler.clone();
        async move {
            let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
            let _guard = span.enter();
            let _invocation = crate::stop::begin_invocation();
            let outcome = match event.payload {
                Payload::Json(payload) => handler(payload, event.context.clone()).await,
                Payload::Malformed(why) => Err(malformed(anyhow::anyhow!(
                    "the event is not JSON ({why}); send a JSON event such as those in events/"
                ))),
            };
            outcome.map_err(|e| {
                let response = error_response(&e);
                tracing::error!(error = %response.error_message, kind = %response.error_type, "invocation failed");
                response
            })
        }
    }));
    tokio::select! {
        done = run => done,
        () = crate::stop::stopped_after_invocation() => Ok(()),
    }
}
