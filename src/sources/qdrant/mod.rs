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

pub mod points;
pub mod rest;

use super::ndjson::LineReader;
use super::{redact_url, EntrySender, Exporter, RestoreMode, Restorer};
use crate::archive::format::safe_component;
use crate::archive::{BackendManifest, ContentDigest, EntryBody, EntryRecord};
use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use base64::Engine;
use futures::TryStreamExt;
use points::{point_of, record_of, PointRecord};
use prost::Message;
use qdrant_client::qdrant::{
    CollectionConfig, CreateCollection, CreateFieldIndexCollection, DeleteCollection, PayloadSchemaInfo, ScrollPoints,
    UpsertPoints,
};
use qdrant_client::Qdrant;
use reqwest::Method;
use rest::{major_minor, Rest};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::oneshot;

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

    fn grpc_url(&self) -> Result<String> {
        if let Some(u) = &self.grpc_url {
            return Ok(u.clone());
        }
        let mut url =
            reqwest::Url::parse(&self.url).with_context(|| format!("invalid QDRANT_URL {}", redact_url(&self.url)))?;
        url.set_port(Some(6334)).map_err(|_| anyhow!("cannot derive the gRPC URL from {}", redact_url(&self.url)))?;
        Ok(url.to_string().trim_end_matches('/').to_string())
    }

    fn grpc(&self) -> Result<Qdrant> {
        crate::net::clients::qdrant_grpc(&self.grpc_url()?, self.api_key.clone())
    }
}

/// `collection.json` of points mode: what is needed to create the collection again.
#[derive(Debug, Serialize, Deserialize)]
pub struct CollectionRecord {
    pub name: String,
    /// `CollectionConfig` as protobuf, base64: exact, and readable by any later client.
    pub config_pb: String,
    /// Payload indexes: field → `PayloadSchemaInfo` as protobuf, base64.
    #[serde(default)]
    pub payload_schema_pb: BTreeMap<String, String>,
    pub points_count: u64,
    /// A readable summary (vector names, sizes, distances) for people; not used to restore.
    pub summary: Value,
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

/// A reader that tells, when dropped, that the archive writer is done with it (fully read, or
/// abandoned because the backup failed), so the server-side snapshot can be deleted then.
struct DoneOnDrop<R> {
    inner: R,
    _done: oneshot::Sender<()>,
}

impl<R: AsyncRead + Unpin> AsyncRead for DoneOnDrop<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

pub struct QdrantExporter {
    settings: QdrantSettings,
}

impl QdrantExporter {
    pub fn new(settings: QdrantSettings) -> Self {
        QdrantExporter { settings }
    }

    async fn export_snapshot(&self, rest: &Rest, c: &str, out: &EntrySender) -> Result<Value> {
        let what = |op: &str| format!("{op} of collection {c}");
        let path = format!("/collections/{c}/snapshots");
        let created = rest
            .result(rest.request(Method::POST, &path).query(&[("wait", "true")]), &what("snapshot creation"))
            .await?;
        let name = created["name"].as_str().ok_or_else(|| anyhow!("Qdrant named no snapshot for {c}"))?.to_string();
        let downloaded = self.stream_snapshot(rest, c, &name, out).await;
        // Always remove the server-side snapshot, whether the download worked or not.
        let deleted =
            rest.send(rest.request(Method::DELETE, &format!("{path}/{name}")), &what("snapshot deletion")).await;
        let size = downloaded?;
        deleted?;
        Ok(json!({ "mode": "snapshot", "snapshot": name, "bytes": size }))
    }

    async fn stream_snapshot(&self, rest: &Rest, c: &str, name: &str, out: &EntrySender) -> Result<u64> {
        let req = rest.request(Method::GET, &format!("/collections/{c}/snapshots/{name}"));
        let resp = rest.send(req, &format!("snapshot download of collection {c}")).await?;
        let size = resp.content_length().ok_or_else(|| anyhow!("Qdrant sent snapshot {name} without a length"))?;
        let (done_tx, done_rx) = oneshot::channel();
        let body = tokio_util::io::StreamReader::new(resp.bytes_stream().map_err(std::io::Error::other));
        let reader = DoneOnDrop { inner: body, _done: done_tx };
        let entry = format!("vector/{}/{}", safe_component(c), safe_component(name));
        out.send(entry, 0, EntryBody::Stream { size, reader: Box::new(reader) }).await?;
        // The writer drops the reader when it has read it (or given up): only then is the snapshot free.
        let _ = done_rx.await;
        Ok(size)
    }

    async fn export_points(
        &self,
        grpc: &Qdrant,
        c: &str,
        out: &EntrySender,
        digest: &mut ContentDigest,
    ) -> Result<(u64, Value)> {
        let info = grpc
            .collection_info(c)
            .await
            .with_context(|| format!("Qdrant gRPC collection info of {c}"))?
            .result
            .ok_or_else(|| anyhow!("Qdrant returned no info for {c}"))?;
        let config = info.config.clone().ok_or_else(|| anyhow!("collection {c} has no configuration"))?;
        let summary = summarize(&config);
        let record = CollectionRecord {
            name: c.to_string(),
            config_pb: b64().encode(config.encode_to_vec()),
            payload_schema_pb: info
                .payload_schema
                .iter()
                .map(|(k, v)| (k.clone(), b64().encode(v.encode_to_vec())))
                .collect(),
            points_count: info.points_count.unwrap_or(0),
            summary: summary.clone(),
        };
        let folder = format!("vector/{}", safe_component(c));
        let body = serde_json::to_vec_pretty(&record)?;
        out.send(format!("{folder}/collection.json"), 0, EntryBody::Bytes(body.into())).await?;

        let mut parts = out.ndjson(&format!("{folder}/points"));
        let mut offset = None;
        loop {
            let page = scroll_page(grpc, c, offset.take()).await?;
            for point in &page.result {
                let record = record_of(point).with_context(|| format!("a point of {c}"))?;
                digest.add(&canonical(c, &record));
                parts.push(&record).await?;
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => break,
            }
        }
        let points = parts.finish().await?;
        Ok((points, json!({ "mode": "points", "points": points, "vectors": summary })))
    }
}

/// One page of a collection's points, with vectors and payload (export and read-back).
async fn scroll_page(
    grpc: &Qdrant,
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

/// Vector names, sizes and distances of a collection, for the manifest.
fn summarize(config: &CollectionConfig) -> Value {
    use qdrant_client::qdrant::vectors_config::Config;
    let params = config.params.as_ref();
    let dense = match params.and_then(|p| p.vectors_config.as_ref()).and_then(|v| v.config.as_ref()) {
        Some(Config::Params(p)) => json!({ "": { "size": p.size, "distance": p.distance } }),
        Some(Config::ParamsMap(m)) => {
            json!(m
                .map
                .iter()
                .map(|(k, p)| (k.clone(), json!({ "size": p.size, "distance": p.distance })))
                .collect::<BTreeMap<_, _>>())
        }
        None => json!({}),
    };
    let sparse: Vec<&String> =
        params.and_then(|p| p.sparse_vectors_config.as_ref()).map(|s| s.map.keys().collect()).unwrap_or_default();
    json!({ "dense": dense, "sparse": sparse })
}

#[async_trait]
impl Exporter for QdrantExporter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> &'static str {
        "vector"
    }

    async fn export(&mut self, out: &EntrySender) -> Result<BackendManifest> {
        let rest = self.settings.rest()?;
        let version =
            rest.version().await.with_context(|| format!("reaching Qdrant at {}", redact_url(&self.settings.url)))?;
        let names = collections(&self.settings, &rest).await?;
        let grpc = match self.settings.mode {
            CaptureMode::Points => Some(self.settings.grpc()?),
            CaptureMode::Snapshot => None,
        };
        let mut manifest = BackendManifest { kind: "vector".into(), ..Default::default() };
        let mut details = BTreeMap::new();
        let mut total = 0;
        let mut digest = ContentDigest::default();
        for c in &names {
            let info = rest
                .result(rest.request(Method::GET, &format!("/collections/{c}")), &format!("info of collection {c}"))
                .await?;
            let count = info["points_count"].as_u64().unwrap_or(0);
            let detail = match &grpc {
                Some(grpc) => {
                    let (points, detail) = self.export_points(grpc, c, out, &mut digest).await?;
                    total += points;
                    detail
                }
                None => {
                    total += count;
                    let mut d = self.export_snapshot(&rest, c, out).await?;
                    d["vectors"] = info["config"]["params"]["vectors"].clone();
                    d
                }
            };
            manifest.stats.insert(format!("vectors:{c}"), count);
            details.insert(c.clone(), detail);
        }
        manifest.stats.insert("vectors".into(), total);
        manifest.stats.insert("collections".into(), names.len() as u64);
        // Points mode proves every point after a restore; a snapshot is opaque, so its restore
        // is checked by the collection's point count.
        if self.settings.mode == CaptureMode::Points {
            manifest.content_digest = Some(digest);
        }
        manifest.details = json!({
            "url": redact_url(&self.settings.url),
            "server_version": version,
            "mode": self.settings.mode,
            "collections": details,
        });
        Ok(manifest)
    }
}

pub struct QdrantRestorer {
    settings: QdrantSettings,
    rest: Option<Rest>,
    grpc: Option<Qdrant>,
    /// Collections in the archive (to refuse `--restore-as` with more than one).
    archived: Vec<String>,
    /// Points per archived collection, as the backup counted them.
    expected: BTreeMap<String, u64>,
    stats: BTreeMap<String, u64>,
    restored: Vec<String>,
    /// Merge mode, points archives: hashes of the points written, so the check reads back only those.
    written: HashSet<u64>,
}

impl QdrantRestorer {
    pub fn new(settings: QdrantSettings) -> Self {
        QdrantRestorer {
            settings,
            rest: None,
            grpc: None,
            archived: Vec::new(),
            expected: BTreeMap::new(),
            stats: BTreeMap::new(),
            restored: Vec::new(),
            written: HashSet::new(),
        }
    }

    fn target(&self, archived: &str) -> String {
        self.settings.restore_as.clone().unwrap_or_else(|| archived.to_string())
    }

    fn rest(&self) -> Result<&Rest> {
        self.rest.as_ref().ok_or_else(|| anyhow!("Qdrant restorer used before prepare"))
    }

    fn grpc(&mut self) -> Result<&Qdrant> {
        if self.grpc.is_none() {
            self.grpc = Some(self.settings.grpc()?);
        }
        Ok(self.grpc.as_ref().expect("set above"))
    }

    /// The archived collection a `vector/<c>/…` entry belongs to.
    fn collection_of(&self, entry: &EntryRecord) -> Result<String> {
        let folder = entry.path.split('/').nth(1).unwrap_or_default();
        self.archived
            .iter()
            .find(|c| safe_component(c) == folder)
            .cloned()
            .ok_or_else(|| anyhow!("entry {} belongs to no collection in the manifest", entry.path))
    }

    async fn upload_snapshot(
        &mut self,
        collection: &str,
        entry: &EntryRecord,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<()> {
        let target = self.target(collection);
        let rest = self.rest()?.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), entry.size)
            .file_name(format!("{target}.snapshot"))
            .mime_str("application/octet-stream")?;
        let form = reqwest::multipart::Form::new().part("snapshot", part);
        let req = rest
            .request(Method::POST, &format!("/collections/{target}/snapshots/upload"))
            .query(&[("priority", "snapshot"), ("wait", "true")])
            .multipart(form);
        let pump = async move {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = body.read(&mut buf).await?;
                if n == 0 {
                    return anyhow::Ok(());
                }
                if tx.send(Ok(bytes::Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                    return Ok(()); // the upload ended early; its error explains why
                }
            }
        };
        let what = format!("snapshot upload into collection {target}");
        let upload = rest.send(req, &what);
        let (pumped, uploaded) = tokio::join!(pump, upload);
        // Qdrant keeps the uploaded file among the collection's snapshots, as large as the
        // collection, whether recovery worked or not: delete it either way.
        let file = format!("/collections/{target}/snapshots/{target}.snapshot");
        let removed = rest.send(rest.request(Method::DELETE, &file), &format!("deleting the uploaded {file}")).await;
        uploaded?;
        pumped?;
        if let Err(e) = removed {
            let text = format!("{e:#}");
            if !text.contains("404") && !text.contains("not found") && !text.contains("Not found") {
                tracing::warn!(
                    backend = NAME,
                    "the uploaded snapshot {file} could not be deleted: {text}; delete it by hand"
                );
            }
        }
        Ok(())
    }

    #[allow(deprecated)] // on_disk_payload: still what servers before 1.16 read
    async fn create_collection(&mut self, record: CollectionRecord) -> Result<()> {
        let target = self.target(&record.name);
        let config = CollectionConfig::decode(b64().decode(&record.config_pb)?.as_slice())?;
        let mode = self.settings.restore_mode;
        let grpc = self.grpc()?;
        let exists =
            grpc.collection_exists(&target).await.with_context(|| format!("Qdrant gRPC: does {target} exist"))?;
        if exists && mode == RestoreMode::Replace {
            grpc.delete_collection(DeleteCollection { collection_name: target.clone(), ..Default::default() })
                .await
                .with_context(|| format!("Qdrant gRPC: deleting {target} before replace"))?;
        }
        if !exists || mode == RestoreMode::Replace {
            let params = config.params.unwrap_or_default();
            let create = CreateCollection {
                collection_name: target.clone(),
                vectors_config: params.vectors_config,
                sparse_vectors_config: params.sparse_vectors_config,
                shard_number: Some(params.shard_number),
                replication_factor: params.replication_factor,
                write_consistency_factor: params.write_consistency_factor,
                on_disk_payload: Some(params.on_disk_payload),
                payload: params.payload,
                sharding_method: params.sharding_method,
                hnsw_config: config.hnsw_config,
                wal_config: config.wal_config,
                optimizers_config: config.optimizer_config,
                quantization_config: config.quantization_config,
                strict_mode_config: config.strict_mode_config,
                metadata: config.metadata,
                ..Default::default()
            };
            grpc.create_collection(create)
                .await
                .with_context(|| format!("Qdrant gRPC: creating collection {target}"))?;
        }
        for (field, schema) in &record.payload_schema_pb {
            let schema = PayloadSchemaInfo::decode(b64().decode(schema)?.as_slice())?;
            grpc.create_field_index(CreateFieldIndexCollection {
                collection_name: target.clone(),
                wait: Some(true),
                field_name: field.clone(),
                field_type: Some(schema.data_type),
                field_index_params: schema.params,
                ..Default::default()
            })
            .await
            .with_context(|| format!("Qdrant gRPC: creating the payload index {field} on {target}"))?;
        }
        *self.stats.entry("payload_indexes".into()).or_default() += record.payload_schema_pb.len() as u64;
        Ok(())
    }

    async fn upsert(&mut self, collection: &str, records: Vec<PointRecord>) -> Result<()> {
        let target = self.target(collection);
        let n = records.len() as u64;
        let points = records.iter().map(point_of).collect::<Result<Vec<_>>>()?;
        self.grpc()?
            .upsert_points(UpsertPoints {
                collection_name: target.clone(),
                wait: Some(true),
                points,
                ..Default::default()
            })
            .await
            .with_context(|| format!("Qdrant gRPC: upserting {n} points into {target}"))?;
        *self.stats.entry("vectors".into()).or_default() += n;
        *self.stats.entry(format!("vectors:{collection}")).or_default() += n;
        Ok(())
    }
}

#[async_trait]
impl Restorer for QdrantRestorer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn target(&self) -> String {
        let to = self.settings.restore_as.as_deref().map(|n| format!(" as {n}")).unwrap_or_default();
        format!("{}{to}", redact_url(&self.settings.url))
    }

    async fn preflight(&mut self, backend: &BackendManifest) -> Result<()> {
        let details = backend.details["collections"].as_object().cloned().unwrap_or_default();
        self.archived = details.keys().cloned().collect();
        for c in &self.archived {
            if let Some(n) = backend.stats.get(&format!("vectors:{c}")) {
                self.expected.insert(c.clone(), *n);
            }
        }
        if self.settings.restore_as.is_some() && self.archived.len() != 1 {
            bail!("--restore-as needs an archive with exactly one collection; this one has {:?}", self.archived);
        }
        // A snapshot upload replaces a collection; merging into a live one is refused up front.
        if self.settings.restore_mode != RestoreMode::Merge {
            return Ok(());
        }
        let grpc = self.settings.grpc()?;
        for (name, d) in &details {
            if d["mode"] != "snapshot" {
                continue;
            }
            let target = self.target(name);
            let exists = grpc
                .collection_exists(&target)
                .await
                .with_context(|| format!("reaching Qdrant to check whether {target} exists (nothing was written)"))?;
            if exists {
                bail!(
                    "collection {target} exists and this archive holds it as a Qdrant snapshot, which replaces a \
                     collection rather than merging into it. Restore with --vector-mode replace, or beside the \
                     live one with --restore-as <new name> (then --qdrant-switch-alias to switch readers)"
                );
            }
        }
        Ok(())
    }

    async fn prepare(&mut self, backend: &BackendManifest) -> Result<()> {
        let rest = self.settings.rest()?;
        let here =
            rest.version().await.with_context(|| format!("reaching Qdrant at {}", redact_url(&self.settings.url)))?;
        let details = backend.details["collections"].as_object().cloned().unwrap_or_default();
        let snapshots = details.values().any(|d| d["mode"] == "snapshot");
        let there = backend.details["server_version"].as_str().unwrap_or_default();
        if snapshots {
            match (major_minor(there), major_minor(&here)) {
                (Some(from), Some(to)) if to < from => bail!(
                    "this archive holds Qdrant {there} snapshots, which Qdrant {here} cannot load; restore onto \
                     Qdrant {}.{} or newer, or back up with --qdrant-mode points (portable across versions)",
                    from.0,
                    from.1
                ),
                _ => {}
            }
        }
        self.rest = Some(rest);
        Ok(())
    }

    async fn restore_entry(&mut self, entry: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        let collection = self.collection_of(entry)?;
        let file = entry.path.rsplit('/').next().unwrap_or_default();
        if entry.path.ends_with(".snapshot") {
            self.upload_snapshot(&collection, entry, body).await?;
            *self.stats.entry("snapshots".into()).or_default() += 1;
        } else if file == "collection.json" {
            let record = read_collection_record(entry, body).await?;
            self.create_collection(record).await?;
        } else if entry.path.contains("/points/") {
            let mut batch = Vec::new();
            let mut lines = LineReader::new(body);
            while let Some(line) = lines.next_line().await? {
                let record = parse_point(line, &entry.path)?;
                if self.settings.restore_mode == RestoreMode::Merge {
                    self.written.insert(point_hash(&collection, &record.id));
                }
                batch.push(record);
                if batch.len() == PAGE as usize {
                    self.upsert(&collection, std::mem::take(&mut batch)).await?;
                }
            }
            if !batch.is_empty() {
                self.upsert(&collection, batch).await?;
            }
        } else {
            bail!("unknown vector entry {}", entry.path);
        }
        if !self.restored.contains(&collection) {
            self.restored.push(collection);
        }
        Ok(())
    }

    async fn safety_exporter(&mut self) -> Result<Option<Box<dyn Exporter>>> {
        // The collections this restore writes, as far as they exist now.
        let grpc = self.settings.grpc()?;
        let mut existing = Vec::new();
        for c in &self.archived {
            let target = self.target(c);
            if grpc.collection_exists(&target).await.with_context(|| format!("Qdrant gRPC: does {target} exist"))? {
                existing.push(target);
            }
        }
        if existing.is_empty() {
            return Ok(None);
        }
        let settings = QdrantSettings { collections: existing, ..self.settings.clone() };
        Ok(Some(Box::new(QdrantExporter::new(settings))))
    }

    async fn check_entry(
        &mut self,
        entry: &EntryRecord,
        body: &mut (dyn AsyncRead + Send + Unpin),
        each: &mut (dyn for<'r> FnMut(&'r [u8]) + Send),
    ) -> Result<()> {
        let collection = self.collection_of(entry)?;
        let file = entry.path.rsplit('/').next().unwrap_or_default();
        if entry.path.ends_with(".snapshot") {
            return Ok(()); // opaque to ngbak; its bytes were checked against the manifest
        }
        if file == "collection.json" {
            let record = read_collection_record(entry, body).await?;
            CollectionConfig::decode(b64().decode(&record.config_pb)?.as_slice())
                .with_context(|| format!("{}: the collection configuration is unreadable", entry.path))?;
            return Ok(());
        }
        if !entry.path.contains("/points/") {
            bail!("unknown vector entry {}", entry.path);
        }
        let mut lines = LineReader::new(body);
        while let Some(line) = lines.next_line().await? {
            let record = parse_point(line, &entry.path)?;
            each(&canonical(&collection, &record));
        }
        Ok(())
    }

    async fn read_back(&mut self, each: &mut (dyn for<'r> FnMut(&'r [u8]) + Send)) -> Result<bool> {
        if self.stats.contains_key("snapshots") {
            return Ok(false); // checked by the point count in `finish`
        }
        let merge = self.settings.restore_mode == RestoreMode::Merge;
        for c in self.restored.clone() {
            let target = self.target(&c);
            let mut offset = None;
            loop {
                let page = scroll_page(self.grpc()?, &target, offset.take()).await?;
                for point in &page.result {
                    let record = record_of(point).with_context(|| format!("a point of {target}"))?;
                    if !merge || self.written.contains(&point_hash(&c, &record.id)) {
                        each(&canonical(&c, &record));
                    }
                }
                match page.next_page_offset {
                    Some(next) => offset = Some(next),
                    None => break,
                }
            }
        }
        Ok(true)
    }

    async fn finish(&mut self) -> Result<BTreeMap<String, u64>> {
        // Snapshot restores report the points the server now holds.
        let rest = self.rest()?.clone();
        for c in self.restored.clone() {
            if self.stats.contains_key(&format!("vectors:{c}")) {
                continue;
            }
            let target = self.target(&c);
            let info = rest
                .result(rest.request(Method::GET, &format!("/collections/{target}")), &format!("info of {target}"))
                .await?;
            let n = info["points_count"].as_u64().unwrap_or(0);
            if let Some(&archived) = self.expected.get(&c) {
                if n != archived {
                    bail!(
                        "collection {target} holds {n} points after the snapshot was recovered, where the backup \
                         counted {archived}: the restore is not what was backed up. Restore again with \
                         --vector-mode replace, and stop writers to the collection meanwhile"
                    );
                }
            }
            self.stats.insert(format!("vectors:{c}"), n);
            *self.stats.entry("vectors".into()).or_default() += n;
        }
        if let (Some(alias), Some(target)) =
            (self.settings.switch_alias.clone(), self.restored.first().map(|c| self.target(c)))
        {
            // One request (REST; the gRPC client only sends one alias operation per call), so
            // readers never find the alias missing: drop it if it exists, and create it anew.
            let aliases = rest.result(rest.request(Method::GET, "/aliases"), "listing aliases").await?;
            let exists = aliases["aliases"].as_array().into_iter().flatten().any(|a| a["alias_name"] == alias.as_str());
            let mut actions = Vec::new();
            if exists {
                actions.push(json!({ "delete_alias": { "alias_name": alias } }));
            }
            actions.push(json!({ "create_alias": { "collection_name": target, "alias_name": alias } }));
            let req = rest.request(Method::POST, "/collections/aliases").json(&json!({ "actions": actions }));
            rest.result(req, &format!("switching alias {alias} to {target}")).await?;
            self.stats.insert("alias_switched".into(), 1);
        }
        self.stats.insert("collections".into(), self.restored.len() as u64);
        self.stats.entry("vectors".into()).or_default();
        Ok(std::mem::take(&mut self.stats))
    }
}

/// Largest `collection.json` read (a configuration and payload index list).
const MAX_COLLECTION_RECORD: u64 = 16 << 20;

async fn read_collection_record(
    entry: &EntryRecord,
    body: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<CollectionRecord> {
    if entry.size > MAX_COLLECTION_RECORD {
        bail!("{} has {} bytes; a collection record may have at most 16 MiB", entry.path, entry.size);
    }
    let mut buf = Vec::with_capacity(entry.size as usize);
    body.read_to_end(&mut buf).await?;
    serde_json::from_slice(&buf).with_context(|| format!("{} is not a valid collection record", entry.path))
}

/// Parses one archived point and checks that it converts to a Qdrant point.
fn parse_point(line: &[u8], entry: &str) -> Result<PointRecord> {
    let record: PointRecord = serde_json::from_slice(line).with_context(|| format!("bad point in {entry}"))?;
    point_of(&record).with_context(|| format!("point {:?} in {entry}", record.id))?;
    Ok(record)
}

/// Parsed `--qdrant-collection` values: a comma list or repeated flags.
pub fn collection_list(values: &[String]) -> Vec<String> {
    values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}
