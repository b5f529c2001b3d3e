//! Restore of Qdrant: snapshots are uploaded whole (see `snapshot`); points archives create
//! the collection from its configuration (see `collection`) and upsert the points in pages, then
//! the read-back scrolls the restored points to prove them against the content digest.

use super::collection::{self, read_collection_record};
use super::grpc::Grpc;
use super::points::{point_of, PointRecord};
use super::rest::{major_minor, Rest};
use super::{b64, canonical, point_hash, snapshot, QdrantExporter, QdrantSettings, NAME, PAGE};
use crate::archive::format::safe_component;
use crate::archive::{BackendManifest, EntryRecord};
use crate::backends::records::ndjson::LineReader;
use crate::backends::RecordSink;
use crate::backends::{redact_url, Exporter, RestoreMode, Restorer};
use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use base64::Engine;
use prost::Message;
use qdrant_client::qdrant::{CollectionConfig, UpsertPoints};
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use tokio::io::AsyncRead;

pub struct QdrantRestorer {
    pub(super) settings: QdrantSettings,
    rest: Option<Rest>,
    grpc: Option<Grpc>,
    /// Collections in the archive (to refuse `--restore-as` with more than one).
    archived: Vec<String>,
    /// Points per archived collection, as the backup counted them.
    expected: BTreeMap<String, u64>,
    pub(super) stats: BTreeMap<String, u64>,
    pub(super) restored: Vec<String>,
    /// Merge mode, points archives: hashes of the points written, so the check reads back only those.
    pub(super) written: HashSet<u64>,
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

    pub(super) fn target(&self, archived: &str) -> String {
        self.settings.restore_as.clone().unwrap_or_else(|| archived.to_string())
    }

    fn rest(&self) -> Result<&Rest> {
        self.rest.as_ref().ok_or_else(|| anyhow!("Qdrant restorer used before prepare"))
    }

    pub(super) fn grpc(&mut self) -> Result<&Grpc> {
        if self.grpc.is_none() {
            self.grpc = Some(self.settings.grpc()?);
        }
        Ok(self.grpc.as_ref().expect("set above"))
    }

    /// Whether collection `target` exists now (a read, before anything is written).
    async fn exists(&self, grpc: &Grpc, target: &str) -> Result<bool> {
        grpc.collection_exists(target)
            .await
            .with_context(|| format!("reaching Qdrant to check whether {target} exists (nothing was written)"))
            .with_context(|| self.settings.grpc_where())
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
            .with_context(|| format!("Qdrant gRPC: upserting {n} points into {target}"))
            .with_context(|| self.settings.grpc_where())?;
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
            if self.exists(&grpc, &target).await? {
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
            let target = self.target(&collection);
            snapshot::upload(self.rest()?, &target, entry, body).await?;
            *self.stats.entry("snapshots".into()).or_default() += 1;
        } else if file == "collection.json" {
            let record = read_collection_record(entry, body).await?;
            let (target, mode) = (self.target(&record.name), self.settings.restore_mode);
            collection::create(self.grpc()?, &record, &target, mode)
                .await
                .with_context(|| self.settings.grpc_where())?;
            *self.stats.entry("payload_indexes".into()).or_default() += record.payload_schema_pb.len() as u64;
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
            if self.exists(&grpc, &target).await? {
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
        each: &mut RecordSink<'_>,
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

    async fn read_back(&mut self, each: &mut RecordSink<'_>) -> Result<bool> {
        self.read_back_points(each).await
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

/// Parses one archived point and checks that it converts to a Qdrant point.
fn parse_point(line: &[u8], entry: &str) -> Result<PointRecord> {
    let record: PointRecord = serde_json::from_slice(line).with_context(|| format!("bad point in {entry}"))?;
    point_of(&record).with_context(|| format!("point {:?} in {entry}", record.id))?;
    Ok(record)
}
