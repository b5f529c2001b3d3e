//! Qdrant as the vector store of a GraphRAG deployment, for the consistency check: the points of
//! the entities' collection (and LightRAG's relationship and chunk vector collections), a scroll
//! page at a time, payload fields `id`, `entity_name`, `src_id` and `tgt_id` only (no vectors);
//! or the same read from an archive's points-mode entries ([`ArchivedVectors`]).
//!
//! How nano-graphrag lays them out: it ships no Qdrant store in `nano_graphrag/_storage/`; its
//! Qdrant store is `QdrantStorage` of `examples/using_qdrant_as_vectorDB.py` (gusye1234/
//! nano-graphrag), followed here with `nano_graphrag/graphrag.py` (`entities_vdb`): the
//! collection is the storage's namespace, `entities` (`Layout.entities`), with no prefix; a
//! point's id is a fresh `uuid.uuid4().hex`, since Qdrant takes only integers and UUIDs, and the
//! entity's id, `compute_mdhash_id(entity_name, prefix="ent-")`, is kept in the payload as `id`
//! beside the meta field `entity_name`. LightRAG's `QdrantVectorDBStorage.upsert`
//! (`lightrag/kg/qdrant_impl.py`) keeps the same payload `id` (its point id is a UUID from the
//! SHA-256 of workspace and id; its collection is `lightrag_vdb_entities_<model>`, given as
//! `Layout.entities`, shared by workspaces whose points are all read). So the `ent-` id comes
//! from the payload: neither point id can be turned back into it. A point without a payload `id`
//! is handed over under its point id, which matches no node's `ent-` id: that node is reported
//! without its vector, and the point is named.

use super::grpc::Grpc;
use super::points::{key_of, PointKey};
use super::{QdrantSettings, PAGE};
use crate::consistency::{ArchivedFacts, Deployment, Fact, FactSink, Kind, Layout, Store, Want};
use anyhow::{Context, Result};
use qdrant_client::qdrant::{value::Kind as ValueKind, ScrollPoints, Value};
use std::collections::BTreeSet;
use std::io::BufRead;

/// The payload fields read: the vector's id, its entity's name, a relationship's ends.
const ID: &str = "id";
const ENTITY_NAME: &str = "entity_name";
const SOURCE: &str = "src_id";
const TARGET: &str = "tgt_id";

/// The collections of the deployment's vectors, by the kind of fact their points are.
fn collections(layout: &Layout) -> [(String, Kind, Store); 3] {
    [
        (layout.entities.clone(), Kind::EntityVector, Store::EntityVectors),
        (layout.relationships.clone(), Kind::RelationshipVector, Store::RelationshipVectors),
        (layout.chunk_vectors.clone(), Kind::ChunkVector, Store::ChunkVectors),
    ]
}

/// The fact a point is, from its vector id (the payload's `id`, else the point id) and payload.
fn emit(kind: Kind, id: &str, field: &dyn Fn(&str) -> Option<String>, each: &mut FactSink<'_>) {
    match kind {
        Kind::EntityVector => each(Fact::EntityVector { id, entity_name: field(ENTITY_NAME).as_deref() }),
        Kind::RelationshipVector => {
            each(Fact::RelationshipVector { id, from: field(SOURCE).as_deref(), to: field(TARGET).as_deref() })
        }
        _ => each(Fact::ChunkVector { id }),
    }
}

pub struct VectorDeployment {
    settings: QdrantSettings,
    layout: Layout,
}

impl VectorDeployment {
    pub fn new(settings: QdrantSettings, layout: &Layout) -> Self {
        VectorDeployment { settings, layout: layout.clone() }
    }

    /// Every point of collection `c` as the fact of `kind`.
    async fn each_point(&self, grpc: &Grpc, c: &str, kind: Kind, each: &mut FactSink<'_>) -> Result<()> {
        let mut offset = None;
        loop {
            let page = grpc
                .scroll(ScrollPoints {
                    collection_name: c.to_string(),
                    limit: Some(PAGE),
                    offset: offset.take(),
                    with_payload: Some(vec![ID, ENTITY_NAME, SOURCE, TARGET].into()),
                    with_vectors: Some(false.into()),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("Qdrant gRPC scroll of {c}"))?;
            for point in &page.result {
                let id = match point.payload.get(ID).and_then(text) {
                    Some(id) => id.to_string(),
                    None => match point.id.as_ref().map(key_of).transpose()? {
                        Some(PointKey::Num(n)) => n.to_string(),
                        Some(PointKey::Uuid(u)) => u,
                        None => continue,
                    },
                };
                let field = |name: &str| point.payload.get(name).and_then(text).map(str::to_string);
                emit(kind, &id, &field, each);
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(()),
            }
        }
    }
}

/// A payload value's text, when it is a string.
fn text(value: &Value) -> Option<&str> {
    match &value.kind {
        Some(ValueKind::StringValue(s)) => Some(s),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Deployment for VectorDeployment {
    /// The collections that exist (an absent one is a store the deployment does not have).
    async fn stores(&mut self) -> Result<BTreeSet<Store>> {
        let grpc = self.settings.grpc()?;
        let mut stores = BTreeSet::new();
        for (c, _, store) in collections(&self.layout) {
            let exists = grpc.collection_exists(&c).await.with_context(|| format!("Qdrant gRPC: does {c} exist"))?;
            if exists {
                stores.insert(store);
            }
        }
        Ok(stores)
    }

    async fn walk(&mut self, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
        let grpc = self.settings.grpc()?;
        for (c, kind, _) in collections(&self.layout) {
            if want.0.contains(&kind) && grpc.collection_exists(&c).await? {
                self.each_point(&grpc, &c, kind, each).await.with_context(|| self.settings.grpc_where())?;
            }
        }
        Ok(())
    }
}

/// The points-mode entries of the deployment's collections (`vector/<collection>/points/*.ndjson`)
/// as facts; a snapshot-mode archive's vectors are opaque, so its collections are no store here.
pub struct ArchivedVectors {
    layout: Layout,
}

impl ArchivedVectors {
    pub fn new(layout: &Layout) -> Self {
        ArchivedVectors { layout: layout.clone() }
    }

    fn kind_of(&self, path: &str) -> Option<(Kind, Store)> {
        let rest = path.strip_prefix("vector/")?;
        let (collection, part) = rest.split_once('/')?;
        part.starts_with("points/").then_some(())?;
        collections(&self.layout).into_iter().find(|(c, _, _)| c == collection).map(|(_, kind, store)| (kind, store))
    }
}

impl ArchivedFacts for ArchivedVectors {
    fn stores_of(&self, path: &str) -> Vec<Store> {
        self.kind_of(path).map(|(_, store)| store).into_iter().collect()
    }

    fn entry(&mut self, path: &str, body: &mut dyn std::io::Read, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
        let Some((kind, _)) = self.kind_of(path).filter(|(kind, _)| want.0.contains(kind)) else { return Ok(()) };
        for line in std::io::BufReader::new(body).lines() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            /// A point's id and payload (its vectors are skipped unread).
            #[derive(serde::Deserialize)]
            struct Point {
                id: PointKey,
                #[serde(default)]
                payload: serde_json::Map<String, serde_json::Value>,
            }
            let point: Point = serde_json::from_str(&line).with_context(|| format!("a point of {path}"))?;
            let field = |name: &str| point.payload.get(name).and_then(|v| v.as_str()).map(str::to_string);
            let id = match field(ID) {
                Some(id) => id,
                None => match &point.id {
                    PointKey::Num(n) => n.to_string(),
                    PointKey::Uuid(u) => u.clone(),
                },
            };
            emit(kind, &id, &field, each);
        }
        Ok(())
    }
}
