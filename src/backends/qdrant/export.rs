//! Backup of Qdrant: per collection, a server snapshot (see `snapshot`) or its configuration and
//! every point, scrolled over gRPC into NDJSON parts and summed into the content digest.

use super::collection::{summarize, CollectionRecord};
use super::grpc::Grpc;
use super::points::record_of;
use super::{b64, canonical, collections, scroll_page, snapshot, CaptureMode, QdrantSettings, NAME};
use crate::archive::format::safe_component;
use crate::archive::{BackendManifest, ContentDigest, EntryBody};
use crate::backends::{redact_url, EntrySender, Exporter};
use anyhow::{anyhow, Context, Result};
use async_trait::async_trait;
use base64::Engine;
use prost::Message;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub struct QdrantExporter {
    settings: QdrantSettings,
}

impl QdrantExporter {
    pub fn new(settings: QdrantSettings) -> Self {
        QdrantExporter { settings }
    }

    async fn export_points(
        &self,
        grpc: &Grpc,
        c: &str,
        out: &EntrySender,
        digest: &mut ContentDigest,
    ) -> Result<(u64, Value)> {
        let info = grpc.collection_info(c).await.with_context(|| format!("Qdrant gRPC collection info of {c}"))?;
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

#[async_trait]
impl Exporter for QdrantExporter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> &'static str {
        "vector"
    }

    /// No collection, or a collection without points.
    async fn emptiness(&mut self, exported: &BackendManifest) -> Result<Option<String>> {
        if exported.stats.get("collections").copied().unwrap_or(0) == 0 {
            return Ok(Some(
                "no collection to back up: check --qdrant-collection (NGBAK_QDRANT_COLLECTIONS) and --qdrant-url".into(),
            ));
        }
        let empty: Vec<&str> = exported
            .stats
            .iter()
            .filter_map(|(stat, n)| stat.strip_prefix("vectors:").filter(|_| *n == 0))
            .collect();
        Ok((!empty.is_empty()).then(|| format!("collection(s) without points: {}", empty.join(", "))))
    }

    /// The point count of every collection backed up (a point changed in place goes unseen:
    /// Qdrant offers no write counter).
    async fn state_mark(&mut self) -> Result<Option<crate::consistency::state::StateMark>> {
        let rest = self.settings.rest()?;
        let mut mark = crate::consistency::state::StateMark::default();
        for c in collections(&self.settings, &rest).await? {
            let info = rest
                .result(rest.request(Method::GET, &format!("/collections/{c}")), &format!("info of collection {c}"))
                .await?;
            mark = mark.exact(&format!("points of {c}"), info["points_count"].as_u64().unwrap_or(0));
        }
        Ok(Some(mark))
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
                    let (points, detail) = self
                        .export_points(grpc, c, out, &mut digest)
                        .await
                        .with_context(|| self.settings.grpc_where())?;
                    total += points;
                    detail
                }
                None => {
                    total += count;
                    let mut d = snapshot::export(&rest, c, out).await?;
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
