//! Qdrant, in two modes.
//!
//! - **snapshot** (default; fastest, exact): the server writes a collection snapshot, which is
//!   streamed (REST, with its Content-Length) straight into a tar entry and deleted on the server
//!   afterwards — also when the download fails. Restore streams the entry back into
//!   `POST /collections/{c}/snapshots/upload`. Snapshots only restore onto a compatible server
//!   version, so the version is recorded and checked first.
//! - **points** (portable across versions and clusters; can restore under another name): the
//!   collection's configuration and payload indexes, then every point via gRPC scroll into
//!   NDJSON parts; restore creates the collection and upserts in batches.
//!
//! `export` and `restore` are the two directions; `snapshot` and `collection` hold what each mode
//! needs on both; `points` converts points to archive records; `rest` and `grpc` are the clients;
//! `links` hands the entity vectors to the consistency check.

mod collection;
mod export;
pub mod grpc;
mod links;
pub mod points;
mod readback;
pub mod rest;
mod restore;
mod snapshot;

pub use collection::CollectionRecord;
pub use export::QdrantExporter;
pub use restore::QdrantRestorer;

use super::descriptor::{set, Backend, Descriptor, Probe, ProbeFound, SecretSetting};
use super::{redact_url, BackendRestoreArgs, Exporter, RestoreMode, Restorer};
use anyhow::{anyhow, Context, Result};
use clap::Args;
use grpc::Grpc;
use points::PointRecord;
use qdrant_client::qdrant::ScrollPoints;
use reqwest::Method;
use rest::Rest;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const NAME: &str = "qdrant";

pub static DESCRIPTOR: Descriptor =
    Descriptor { name: NAME, kind: "vector", flag: "--qdrant-url", env: "QDRANT_URL", record_stats: &["vectors"] };
/// Points per scroll page and per upsert.
const PAGE: u32 = 256;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureMode {
    #[default]
    Snapshot,
    Points,
}

#[derive(Clone, Debug)]
pub struct QdrantSettings {
    /// REST URL, e.g. http://qdrant:6333.
    pub url: String,
    /// gRPC URL; default the REST host on port 6334.
    pub grpc_url: Option<String>,
    pub api_key: Option<String>,
    /// Collections to back up; empty means all.
    pub collections: Vec<String>,
    pub mode: CaptureMode,
    /// Restore the (single) collection under this name instead.
    pub restore_as: Option<String>,
    /// After a points-mode restore, point this alias at the restored collection (atomically).
    pub switch_alias: Option<String>,
    /// `replace` drops an existing target collection first; `merge` upserts into it.
    pub restore_mode: RestoreMode,
}

impl QdrantSettings {
    fn rest(&self) -> Result<Rest> {
        Rest::new(&self.url, self.api_key.as_deref())
    }

    /// `--qdrant-grpc-url` when given, else the REST URL on Qdrant's gRPC port (6334).
    pub(crate) fn grpc_url(&self) -> Result<String> {
        if let Some(u) = &self.grpc_url {
            return Ok(u.clone());
        }
        let mut url =
            reqwest::Url::parse(&self.url).with_context(|| format!("invalid QDRANT_URL {}", redact_url(&self.url)))?;
        url.set_port(Some(6334)).map_err(|_| anyhow!("cannot derive the gRPC URL from {}", redact_url(&self.url)))?;
        Ok(url.to_string().trim_end_matches('/').to_string())
    }

    fn grpc(&self) -> Result<Grpc> {
        Grpc::new(&self.grpc_url()?, self.api_key.as_deref())
    }

    /// Where gRPC calls go, for their errors (qdrant-client's own say "Timeout expired" or the
    /// status alone): `host:port` and the answer timeout that applied.
    fn grpc_where(&self) -> String {
        let url = self.grpc_url().unwrap_or_else(|_| self.url.clone());
        let addr = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
            .unwrap_or_else(|| redact_url(&url));
        format!(
            "Qdrant gRPC at {addr} (answer timeout {} s, NGBAK_REQUEST_TIMEOUT)",
            crate::net::policy().request.as_secs()
        )
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Collections named in the settings, or every collection on the server.
async fn collections(settings: &QdrantSettings, rest: &Rest) -> Result<Vec<String>> {
    if !settings.collections.is_empty() {
        return Ok(settings.collections.clone());
    }
    let result = rest.result(rest.request(Method::GET, "/collections"), "listing collections").await?;
    let mut names: Vec<String> = result["collections"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// One page of a collection's points, with vectors and payload (export and read-back).
async fn scroll_page(
    grpc: &Grpc,
    collection: &str,
    offset: Option<qdrant_client::qdrant::PointId>,
) -> Result<qdrant_client::qdrant::ScrollResponse> {
    grpc.scroll(ScrollPoints {
        collection_name: collection.to_string(),
        limit: Some(PAGE),
        offset,
        with_payload: Some(true.into()),
        with_vectors: Some(true.into()),
        ..Default::default()
    })
    .await
    .with_context(|| format!("Qdrant gRPC scroll of {collection}"))
}

/// A point's canonical form for the content digest (FORMAT.md): the archived collection name and
/// the point record (id, vectors as packed f32, payload with keys in order).
fn canonical(collection: &str, point: &PointRecord) -> Vec<u8> {
    serde_json::to_vec(&json!({ "collection": collection, "point": point })).expect("points serialise")
}

/// A 64-bit hash of a point id, to remember which points a merge restore wrote in 8 bytes each.
fn point_hash(collection: &str, id: &points::PointKey) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (collection, id).hash(&mut h);
    h.finish()
}

/// Parsed `--qdrant-collection` values: a comma list or repeated flags.
pub fn collection_list(values: &[String]) -> Vec<String> {
    values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// The Qdrant settings.
#[derive(Args, Clone, Default)]
pub struct QdrantArgs {
    /// Qdrant REST URL, e.g. http://qdrant:6333.
    #[arg(long, env = "QDRANT_URL", hide_env_values = true)]
    pub qdrant_url: Option<String>,
    /// Qdrant gRPC URL (points mode); default: the REST host on port 6334.
    #[arg(long, env = "QDRANT_GRPC_URL", hide_env_values = true)]
    pub qdrant_grpc_url: Option<String>,
    #[arg(long, env = "QDRANT_API_KEY", hide_env_values = true)]
    pub qdrant_api_key: Option<String>,
    /// Secrets Manager secret holding the Qdrant API key (plain, or JSON {"api_key": …}); read
    /// when --qdrant-api-key is unset.
    #[arg(long, env = "QDRANT_API_KEY_SECRET_ARN")]
    pub qdrant_api_key_secret_arn: Option<String>,
    /// Collections to back up (repeatable, or comma-separated); default all.
    #[arg(long = "qdrant-collection", env = "NGBAK_QDRANT_COLLECTIONS", value_delimiter = ',')]
    pub qdrant_collections: Vec<String>,
    /// snapshot (server snapshots, exact, fastest) or points (portable across versions).
    #[arg(long, env = "NGBAK_QDRANT_MODE", value_enum, default_value_t = CaptureMode::Snapshot)]
    pub qdrant_mode: CaptureMode,
}

/// Qdrant's restore-only settings.
#[derive(Args, Clone, Debug, Default)]
pub struct QdrantRestoreArgs {
    /// Restore the archive's (single) Qdrant collection under this name, beside the live one.
    #[arg(long, env = "NGBAK_RESTORE_AS")]
    pub restore_as: Option<String>,
    /// After restoring, point this Qdrant alias at the restored collection (atomically).
    #[arg(long, env = "NGBAK_QDRANT_SWITCH_ALIAS")]
    pub qdrant_switch_alias: Option<String>,
}

impl QdrantArgs {
    /// The Qdrant settings, when Qdrant is configured; for a restore, with its mode and options.
    pub fn settings(&self, restore: Option<(RestoreMode, &QdrantRestoreArgs)>) -> Option<QdrantSettings> {
        Some(QdrantSettings {
            url: set(&self.qdrant_url)?.to_string(),
            grpc_url: set(&self.qdrant_grpc_url).map(str::to_string),
            api_key: set(&self.qdrant_api_key).map(str::to_string),
            collections: collection_list(&self.qdrant_collections),
            mode: self.qdrant_mode,
            restore_as: restore.and_then(|(_, r)| set(&r.restore_as)).map(str::to_string),
            switch_alias: restore.and_then(|(_, r)| set(&r.qdrant_switch_alias)).map(str::to_string),
            restore_mode: restore.map(|(mode, _)| mode).unwrap_or_default(),
        })
    }
}

impl Backend for QdrantArgs {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn is_configured(&self) -> bool {
        set(&self.qdrant_url).is_some()
    }

    fn exporter(&self) -> Box<dyn Exporter> {
        Box::new(QdrantExporter::new(self.settings(None).expect("configured")))
    }

    fn restorer(&self, mode: RestoreMode, restore: &BackendRestoreArgs) -> Box<dyn Restorer> {
        Box::new(QdrantRestorer::new(self.settings(Some((mode, &restore.qdrant))).expect("configured")))
    }

    /// REST always; gRPC too in points mode, which talks gRPC.
    fn probes(&self) -> Vec<Probe> {
        let q = self.settings(None).expect("configured");
        let mut probes = Vec::new();
        if q.mode == CaptureMode::Points {
            // A URL the gRPC address cannot be derived from is probed as given (and fails there).
            let grpc = q.grpc_url().unwrap_or_else(|_| q.url.clone());
            let tls = grpc.starts_with("https://");
            let run = Box::pin(probe_grpc(grpc.clone(), q.api_key.clone()));
            probes.push(Probe { name: "qdrant-grpc", target: redact_url(&grpc), tls, run });
        }
        let tls = q.url.trim_start().starts_with("https://");
        let target = redact_url(&q.url);
        probes.push(Probe { name: NAME, target, tls, run: Box::pin(probe_rest(q.url, q.api_key)) });
        probes
    }

    fn secrets(&mut self) -> Vec<SecretSetting<'_>> {
        let arn = set(&self.qdrant_api_key_secret_arn).map(str::to_string);
        vec![SecretSetting {
            field: "api_key",
            flag: "--qdrant-api-key-secret-arn / QDRANT_API_KEY_SECRET_ARN",
            value: &mut self.qdrant_api_key,
            arn,
        }]
    }

    fn remember_secrets(&self) {
        for url in [&self.qdrant_url, &self.qdrant_grpc_url] {
            if let Some(u) = set(url) {
                crate::net::redact::remember_url(u);
            }
        }
        if let Some(s) = set(&self.qdrant_api_key) {
            crate::net::redact::remember(s);
        }
    }

    fn echo(&self, config: &mut serde_json::Map<String, serde_json::Value>) {
        let echo = self
            .settings(None)
            .map(|q| json!({ "url": redact_url(&q.url), "collections": q.collections, "mode": q.mode }));
        config.insert("qdrant".into(), json!(echo));
    }

    /// The entity vectors: the points of the layout's entities collection.
    fn deployment(&self, layout: &crate::consistency::Layout) -> Option<Box<dyn crate::consistency::Deployment>> {
        Some(Box::new(links::VectorDeployment::new(self.settings(None).expect("configured"), layout)))
    }

    fn archived(&self, layout: &crate::consistency::Layout) -> Option<Box<dyn crate::consistency::ArchivedFacts>> {
        Some(Box::new(links::ArchivedVectors::new(layout)))
    }
}

/// The server's version (an open endpoint), then a listing of collections to check the key.
async fn probe_rest(url: String, api_key: Option<String>) -> Result<ProbeFound> {
    let rest = Rest::new(&url, api_key.as_deref())?;
    let version = rest.version().await?;
    rest.result(rest.request(Method::GET, "/collections"), "list collections").await?;
    Ok(ProbeFound { version: Some(version), authenticated: api_key.is_some() })
}

/// Qdrant's gRPC health check (points mode talks gRPC), at the URL `QdrantSettings::grpc_url` gives.
async fn probe_grpc(url: String, api_key: Option<String>) -> Result<ProbeFound> {
    let client = Grpc::new(&url, api_key.as_deref())?;
    let health = client.health_check().await.map_err(|e| {
        anyhow!(
            "Qdrant gRPC at {} did not answer a health check: {}",
            redact_url(&url),
            crate::net::scrub(&e.to_string())
        )
    })?;
    Ok(ProbeFound { version: Some(health.version), authenticated: api_key.is_some() })
}
