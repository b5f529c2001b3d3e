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
//! needs on both; `points` converts points to archive records; `rest` and `grpc` are the clients.

mod collection;
mod export;
pub mod grpc;
pub mod points;
pub mod rest;
mod restore;
mod snapshot;

pub use collection::CollectionRecord;
pub use export::QdrantExporter;
pub use restore::QdrantRestorer;

use super::{redact_url, RestoreMode};
use anyhow::{anyhow, Context, Result};
use grpc::Grpc;
use points::PointRecord;
use qdrant_client::qdrant::ScrollPoints;
use reqwest::Method;
use rest::Rest;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const NAME: &str = "qdrant";
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
