//! Logging: readable lines on a terminal, JSON lines elsewhere (Lambda, containers, CI).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Sets up `tracing`. `RUST_LOG` overrides the default level (info).
pub fn init_logging(force_json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if force_json || !std::io::stderr().is_terminal() {
        builder.json().with_current_span(true).flatten_event(true).try_init()
    } else {
        builder.compact().with_target(false).try_init()
    };
    drop(result); // already set (tests): keep the first
}
