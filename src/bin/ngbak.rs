//! `ngbak`: the command line.

/// See Cargo.toml: keeps peak memory flat over long streams of large buffers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ngbak::telemetry::init_logging(false);
    let cli = ngbak::cli::Cli::parse();
    match ngbak::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
