//! Redis key-value store: every key under the configured patterns, of every type, with its TTL.
//!
//! Export reads with SCAN and pipelined reads into NDJSON records, one key a line. Strings that
//! are valid UTF-8 (nano-graphrag's JSON documents) stay readable text; other bytes are base64.
//! Restore writes each key exactly (strings with one SET, other types deleted, recreated and
//! expired in MULTI/EXEC) over several connections.
//!
//! Rooms, from the wire up: `record` (the archive's records and canonical lines), `client` (the
//! retrying read connection and SCAN), `reads` (keys whole or in pages), `lanes` (reading on
//! several connections at once), `export`, `writer` (the restore's pipelined writes), `restore`
//! and `readback`.

mod check;
mod client;
mod export;
mod lanes;
mod links;
mod readback;
mod reads;
mod record;
mod restore;
mod writer;

pub use client::connect;
pub use export::RedisExporter;
pub use reads::is_wrong_type;
pub use record::{Blob, CanonicalLines, KeyRecord, KeyValue};
pub use restore::RedisRestorer;

use super::descriptor::{set, Backend, Descriptor, Probe, ProbeFound, SecretSetting};
use super::{redact_url, BackendRestoreArgs, Exporter, RestoreMode, Restorer};
use anyhow::Result;
use clap::Args;

pub const NAME: &str = "redis";

pub static DESCRIPTOR: Descriptor =
    Descriptor { name: NAME, kind: "kv", flag: "--redis-url", env: "REDIS_URL", record_stats: &["keys"] };

/// The Redis settings.
#[derive(Args, Clone, Default)]
pub struct RedisArgs {
    /// Redis to back up / restore into, e.g. redis://:password@host:6379/0 or
    /// rediss://user:password@host:6380/0 (TLS).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Secrets Manager secret holding the Redis URL (plain, or JSON {"url": …}); read when
    /// --redis-url is unset.
    #[arg(long, env = "REDIS_URL_SECRET_ARN")]
    pub redis_url_secret_arn: Option<String>,
    /// Key patterns to include (repeatable, or comma-separated in the variable).
    #[arg(
        long = "redis-pattern",
        env = "NGBAK_REDIS_PATTERNS",
        value_delimiter = ',',
        default_value = "nano_graphrag:*"
    )]
    pub redis_patterns: Vec<String>,
}

impl RedisArgs {
    fn patterns(&self) -> Vec<String> {
        let p: Vec<String> =
            self.redis_patterns.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
        if p.is_empty() {
            vec!["nano_graphrag:*".into()]
        } else {
            p
        }
    }

    fn url(&self) -> &str {
        set(&self.redis_url).unwrap_or_default()
    }
}

impl Backend for RedisArgs {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn is_configured(&self) -> bool {
        set(&self.redis_url).is_some()
    }

    fn exporter(&self) -> Box<dyn Exporter> {
        Box::new(RedisExporter::new(self.url(), &self.patterns()))
    }

    fn restorer(&self, mode: RestoreMode, _restore: &BackendRestoreArgs) -> Box<dyn Restorer> {
        Box::new(RedisRestorer::new(self.url(), &self.patterns(), mode))
    }

    fn probes(&self) -> Vec<Probe> {
        let url = self.url().to_string();
        let tls = url.trim_start().starts_with("rediss://");
        vec![Probe { name: NAME, target: redact_url(&url), tls, run: Box::pin(probe(url)) }]
    }

    fn secrets(&mut self) -> Vec<SecretSetting<'_>> {
        let arn = set(&self.redis_url_secret_arn).map(str::to_string);
        vec![SecretSetting {
            field: "url",
            flag: "--redis-url-secret-arn / REDIS_URL_SECRET_ARN",
            value: &mut self.redis_url,
            arn,
        }]
    }

    fn remember_secrets(&self) {
        if let Some(u) = set(&self.redis_url) {
            crate::net::redact::remember_url(u);
        }
    }

    fn echo(&self, config: &mut serde_json::Map<String, serde_json::Value>) {
        config.insert("redis_url".into(), serde_json::json!(set(&self.redis_url).map(redact_url)));
        config.insert("redis_patterns".into(), serde_json::json!(self.patterns()));
    }

    /// The key-value store: text chunks, full documents, community reports.
    fn deployment(&self, layout: &crate::consistency::Layout) -> Option<Box<dyn crate::consistency::Deployment>> {
        Some(Box::new(links::KvDeployment::new(self.url(), &self.patterns(), layout)))
    }

    fn archived(&self, layout: &crate::consistency::Layout) -> Option<Box<dyn crate::consistency::ArchivedFacts>> {
        Some(Box::new(links::ArchivedKv::new(layout)))
    }
}

/// The server's version from `INFO server`, and whether the URL carries a password.
async fn probe(url: String) -> Result<ProbeFound> {
    let mut con = crate::net::clients::redis(&url).await?;
    let info: String = redis::cmd("INFO").arg("server").query_async(&mut con).await?;
    let version = info.lines().find_map(|l| l.strip_prefix("redis_version:")).map(|v| v.trim().to_string());
    Ok(ProbeFound {
        version,
        authenticated: redis::IntoConnectionInfo::into_connection_info(url.as_str())
            .map(|i| i.redis_settings().password().is_some())
            .unwrap_or(false),
    })
}
