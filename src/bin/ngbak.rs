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
            match e.downcast_ref::<ngbak::stop::Stopped>() {
                Some(stopped) => std::process::ExitCode::from(stopped.exit_code()),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}
