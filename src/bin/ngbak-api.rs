//! The API function: the operator HTTP API behind a Lambda Function URL
//! (`cargo lambda invoke ngbak-api --data-file events/api-list-backups.json`).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    ngbak::alloc::configure();
    ngbak::net::tls::install_crypto_provider();
    ngbak::telemetry::init_logging(true);
    let writes_through_any = ngbak::api::function::writes_through_any()?;
    let api = ngbak::api::function::from_env().await?;
    lambda_http::run(ngbak::api::function::app(api, writes_through_any)).await
}
