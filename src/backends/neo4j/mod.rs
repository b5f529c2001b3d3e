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
mod links;
mod readback;
mod restore;
pub mod schema;
pub mod value;

pub use export::Neo4jExporter;
pub use restore::Neo4jRestorer;

use crate::archive::BackendManifest;
use crate::backends::descriptor::{set, Backend, Descriptor, Probe, ProbeFound, SecretSetting};
use crate::backends::{redact_url, BackendRestoreArgs, Exporter, RestoreMode, Restorer};
use anyhow::Result;
use clap::Args;
use neo4rs::{query, Graph};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const NAME: &str = "neo4j";

pub static DESCRIPTOR: Descriptor =
    Descriptor { name: NAME, kind: "graph", flag: "--neo4j-uri", env: "NEO4J_URI", record_stats: &["entities"] };
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

/// The graph's settings.
#[derive(Args, Clone, Default)]
pub struct Neo4jArgs {
    /// Neo4j (or another Bolt graph database), e.g. bolt://graph:7687 or neo4j+s://….
    #[arg(long, env = "NEO4J_URI", hide_env_values = true)]
    pub neo4j_uri: Option<String>,
    #[arg(long, env = "NEO4J_USERNAME", default_value = "neo4j")]
    pub neo4j_user: String,
    #[arg(long, env = "NEO4J_PASSWORD", hide_env_values = true)]
    pub neo4j_password: Option<String>,
    /// Secrets Manager secret holding the Neo4j password (plain, or JSON {"password": …}); read
    /// when --neo4j-password is unset.
    #[arg(long, env = "NEO4J_PASSWORD_SECRET_ARN")]
    pub neo4j_password_secret_arn: Option<String>,
    #[arg(long, env = "NEO4J_DATABASE", default_value = "neo4j")]
    pub neo4j_database: String,
    /// The namespace label that scopes the graph backup (nano-graphrag: GraphRAG_<namespace>);
    /// unset means the whole database.
    #[arg(long, env = "NEO4J_GRAPH_NAMESPACE")]
    pub neo4j_label: Option<String>,
    /// Rows per batched graph write (one transaction each).
    #[arg(long, env = "NGBAK_GRAPH_BATCH_SIZE", default_value_t = 1000)]
    pub graph_batch_size: usize,
    /// The unique node property that `--graph-mode merge` matches on.
    #[arg(long, env = "NGBAK_GRAPH_MERGE_KEY", default_value = "id")]
    pub graph_merge_key: String,
}

impl Neo4jArgs {
    /// The graph settings, when a graph is configured.
    pub fn settings(&self, mode: RestoreMode) -> Option<Neo4jSettings> {
        Some(Neo4jSettings {
            uri: set(&self.neo4j_uri)?.to_string(),
            user: self.neo4j_user.clone(),
            password: set(&self.neo4j_password).unwrap_or_default().to_string(),
            database: self.neo4j_database.clone(),
            label: set(&self.neo4j_label).map(str::to_string),
            batch_size: self.graph_batch_size,
            mode,
            merge_key: self.graph_merge_key.clone(),
        })
    }
}

impl Backend for Neo4jArgs {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn is_configured(&self) -> bool {
        set(&self.neo4j_uri).is_some()
    }

    fn exporter(&self) -> Box<dyn Exporter> {
        Box::new(Neo4jExporter::new(self.settings(RestoreMode::Merge).expect("configured")))
    }

    fn restorer(&self, mode: RestoreMode, _restore: &BackendRestoreArgs) -> Box<dyn Restorer> {
        Box::new(Neo4jRestorer::new(self.settings(mode).expect("configured")))
    }

    fn probes(&self) -> Vec<Probe> {
        let g = self.settings(RestoreMode::Merge).expect("configured");
        let tls = g.uri.contains("+s");
        vec![Probe { name: NAME, target: redact_url(&g.uri), tls, run: Box::pin(probe(g)) }]
    }

    fn secrets(&mut self) -> Vec<SecretSetting<'_>> {
        let arn = set(&self.neo4j_password_secret_arn).map(str::to_string);
        vec![SecretSetting {
            field: "password",
            flag: "--neo4j-password-secret-arn / NEO4J_PASSWORD_SECRET_ARN",
            value: &mut self.neo4j_password,
            arn,
        }]
    }

    fn remember_secrets(&self) {
        if let Some(u) = set(&self.neo4j_uri) {
            crate::net::redact::remember_url(u);
        }
        if let Some(s) = set(&self.neo4j_password) {
            crate::net::redact::remember(s);
        }
    }

    fn echo(&self, config: &mut serde_json::Map<String, serde_json::Value>) {
        let echo = self.settings(RestoreMode::Merge).map(|g| {
            serde_json::json!({ "uri": redact_url(&g.uri), "user": g.user, "database": g.database, "label": g.label })
        });
        config.insert("neo4j".into(), serde_json::json!(echo));
    }

    /// The graph: nodes and relationships with their `source_id`.
    fn deployment(&self, _layout: &crate::consistency::Layout) -> Option<Box<dyn crate::consistency::Deployment>> {
        Some(Box::new(links::GraphDeployment::new(self.settings(RestoreMode::Merge)?)))
    }

    fn archived(&self, _layout: &crate::consistency::Layout) -> Option<Box<dyn crate::consistency::ArchivedFacts>> {
        Some(Box::new(links::ArchivedGraph::new(&self.graph_merge_key)))
    }
}

/// Connects over Bolt; Neo4j says its version, other Bolt servers (ArcadeDB) may not.
async fn probe(g: Neo4jSettings) -> Result<ProbeFound> {
    let config = crate::net::clients::neo4j(&g.uri, &g.user, &g.password, &g.database).max_connections(1).build()?;
    let graph = crate::net::clients::neo4j_connect(config, &g.uri, &g.database).await?;
    let mut version = None;
    if let Ok(mut rows) =
        graph.execute(neo4rs::query("CALL dbms.components() YIELD versions RETURN versions[0] AS v")).await
    {
        if let Ok(Some(row)) = rows.next().await {
            version = row.get::<String>("v").ok();
        }
    }
    Ok(ProbeFound { version, authenticated: true })
}
