//! `ngbak`: the command line.

/// Keeps peak memory flat however long the stream of large part buffers (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ngbak::alloc::configure();
    ngbak::net::tls::install_crypto_provider();
    ngbak::telemetry::init_logging(false);
    let cli = ngbak::cli::Cli::parse();
    ngbak::stop::install_signal_handlers();
    match ngbak::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", ngbak::net::scrub(&format!("{e:#}")));
            if let Some(stopped) = e.downcast_ref::<ngbak::stop::Stopped>() {
                return std::process::ExitCode::from(stopped.exit_code());
            }
            if ngbak::pipeline::failure_kind(&e) == ngbak::failure::FailureKind::Inconsistent {
                return std::process::ExitCode::from(3);
            }
            std::process::ExitCode::FAILURE
        }
    }
}
