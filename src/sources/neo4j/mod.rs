//! Neo4j (or any Bolt graph database) over Bolt with `neo4rs`: no APOC, no `neo4j-admin`, no
//! shared volume — what a Lambda function can reach.
//!
//! Export streams nodes (source id, labels, properties) and then relationships (source id, type,
//! ends, properties) into NDJSON parts under `graph/`, with `graph/schema.json` first. Restore
//! writes batched `UNWIND` statements grouped by label set and relationship type; relationships
//! find their ends through a temporary import key: the indexed property `__ngbak_src` on the
//! scope label (or, for a whole-database restore, on an extra label `__NgbakImport`), removed at
//! the end. Any failing statement fails the restore.

pub mod cypher;
mod export;
mod restore;
pub mod schema;
pub mod value;

pub use export::Neo4jExporter;
pub use restore::Neo4jRestorer;

use crate::archive::BackendManifest;
use crate::sources::{redact_url, RestoreMode};
use anyhow::Result;
use neo4rs::{query, Graph};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const NAME: &str = "neo4j";
pub const NODES: &str = "graph/nodes";
pub const RELATIONSHIPS: &str = "graph/relationships";
pub const SCHEMA: &str = "graph/schema.json";
pub const IMPORT_LABEL: &str = "__NgbakImport";
pub const IMPORT_KEY: &str = "__ngbak_src";
const IMPORT_INDEX: &str = "ngbak_import_key";

/// How to reach the graph and what to take.
#[derive(Clone, Debug)]
pub struct Neo4jSettings {
    pub uri: String,
    pub user: String,
    pub password: String,
    pub database: String,
    /// The namespace label that scopes the backup; `None` is the whole database.
    pub label: Option<String>,
    /// Rows per `UNWIND` statement (one transaction each).
    pub batch_size: usize,
    pub mode: RestoreMode,
    /// The unique property that identifies a node in `merge` mode (nano-graphrag: `id`).
    pub merge_key: String,
}

impl Neo4jSettings {
    async fn connect(&self) -> Result<Graph> {
        let config = crate::net::clients::neo4j(&self.uri, &self.user, &self.password, &self.database)
            .fetch_size(2000)
            .max_connections(4)
            .build()?;
        crate::net::clients::neo4j_connect(config, &self.uri, &self.database).await
    }

    fn describe(&self) -> String {
        format!(
            "{} (database {}, scope {})",
            redact_url(&self.uri),
            self.database,
            self.label.as_deref().unwrap_or("all")
        )
    }
}

/// One node, as one NDJSON line.
#[derive(Debug, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node's id in the source database (only to connect relationships).
    pub id: i64,
    pub labels: Vec<String>,
    pub props: Map<String, Value>,
}

/// One relationship, as one NDJSON line.
#[derive(Debug, Serialize, Deserialize)]
pub struct RelRecord {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub start: i64,
    pub end: i64,
    pub props: Map<String, Value>,
}

/// Community ids a node belongs to, as nano-graphrag records them: `clusters` (a JSON string
/// `[{"level": 0, "cluster": 3}, …]`) or `communityIds` (a list).
pub(crate) fn communities(props: &Map<String, Value>, into: &mut BTreeSet<String>) {
    if let Some(Value::String(s)) = props.get("clusters") {
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(s) {
            for c in items {
                into.insert(format!(
                    "{}:{}",
                    c.get("level").unwrap_or(&Value::Null),
                    c.get("cluster").unwrap_or(&Value::Null)
                ));
            }
        }
    }
    if let Some(list) = props.get("communityIds").and_then(|v| v.get("list")).and_then(Value::as_array) {
        for c in list {
            into.insert(c.to_string());
        }
    }
}

pub(crate) fn bump(stats: &mut BTreeMap<String, u64>, key: String, by: u64) {
    *stats.entry(key).or_default() += by;
}

impl RelRecord {
    /// The canonical form of a relationship for the content digest: its own id is left out, since
    /// a restored relationship gets a new one; its ends are the archived node ids.
    pub fn canonical(&self) -> CanonicalRel<'_> {
        CanonicalRel { kind: &self.kind, start: self.start, end: self.end, props: &self.props }
    }
}

/// See [`RelRecord::canonical`].
#[derive(Serialize)]
pub struct CanonicalRel<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub start: i64,
    pub end: i64,
    pub props: &'a Map<String, Value>,
}
