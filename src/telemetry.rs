//! Logging: readable lines on a terminal, JSON lines elsewhere (Lambda, containers, CI).

use std::io::{IsTerminal, Write};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Sets up `tracing`. `RUST_LOG` overrides the default level (info).
pub fn init_logging(force_json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(ScrubbedStderr);
    let result = if force_json || !std::io::stderr().is_terminal() {
        builder.json().with_current_span(true).flatten_event(true).try_init()
    } else {
        builder.compact().with_target(false).try_init()
    };
    drop(result); // already set (tests): keep the first
}

/// Log lines go to stderr through [`crate::net::scrub`]: whatever a library logs at any level (a
/// URL it was given, an error quoting a password), no secret the process knows leaves with it.
struct ScrubbedStderr;

impl<'a> MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedLine;

    fn make_writer(&'a self) -> ScrubbedLine {
        ScrubbedLine(Vec::new())
    }
}

/// One log event, held until it is complete and then written scrubbed (the formatter makes a
/// writer per event).
struct ScrubbedLine(Vec<u8>);

impl Write for ScrubbedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedLine {
    fn drop(&mut self) {
        let line = crate::net::scrub(&String::from_utf8_lossy(&self.0));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Prints one CloudWatch Embedded Metric Format line on stdout; CloudWatch Logs turns it into
/// metrics in `namespace` (no API calls, no extra permissions).
pub fn emit_metrics(namespace: &str, dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)]) {
    let mut doc = serde_json::Map::new();
    let names: Vec<_> =
        metrics.iter().map(|(name, unit, _)| serde_json::json!({ "Name": name, "Unit": unit })).collect();
    let dims: Vec<_> = dimensions.iter().map(|(k, _)| *k).collect();
    doc.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{ "Namespace": namespace, "Dimensions": [dims], "Metrics": names }],
        }),
    );
    for (k, v) in dimensions {
        doc.insert(k.to_string(), serde_json::json!(v));
    }
    for (name, _, value) in metrics {
        doc.insert(name.to_string(), serde_json::json!(value));
    }
    println!("{}", serde_json::Value::Object(doc));
}

/// The namespace for metrics (`NGBAK_METRICS_NAMESPACE`, default `ngbak`).
pub fn metrics_namespace() -> String {
    std::env::var("NGBAK_METRICS_NAMESPACE").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "ngbak".into())
}

/// This machine's name, for lock holders and job records.
pub fn host_name() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "this host".into())
}
