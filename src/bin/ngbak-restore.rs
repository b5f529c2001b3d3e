//! The restore Lambda function (`cargo lambda invoke ngbak-restore --data-file events/object-tags-added.json`).

/// Keeps peak memory flat however long the stream of large part buffers (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ngbak::alloc::configure();
    ngbak::net::tls::install_crypto_provider();
    ngbak::telemetry::init_logging(true);
    ngbak::stop::install_signal_handlers();
    let config = Arc::new(tokio::sync::RwLock::new(ngbak::lambda::FunctionConfig::from_env().await?));
    ngbak::lambda::serve(move |event, ctx| {
        let config = config.clone();
        let deadline = ctx.deadline();
        async move {
            ngbak::lambda::with_rotation(&config, |c| {
                let event = event.clone();
                let time_left = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::from_secs(900));
                async move {
                    // A job the API function handed over: run and recorded as `ngbak serve` runs it.
                    if let Some(job) = ngbak::api::run::job_event(&event) {
                        return ngbak::api::run::run_recorded(&c, &job?, time_left).await;
                    }
                    ngbak::lambda::restore::handle(&c, event, time_left).await
                }
            })
            .await
        }
    })
    .await
}
