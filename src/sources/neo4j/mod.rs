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
pub mod value;

use super::ndjson::for_each_line;
use super::{redact_url, EntrySender, Exporter, RestoreMode, Restorer};
use crate::archive::{BackendManifest, EntryBody, EntryRecord};
use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use neo4rs::{query, BoltInteger, BoltList, BoltMap, BoltString, BoltType, Graph};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use tokio::io::AsyncRead;

pub const NAME: &str = "neo4j";
const NODES: &str = "graph/nodes";
const RELATIONSHIPS: &str = "graph/relationships";
const SCHEMA: &str = "graph/schema.json";
const IMPORT_LABEL: &str = "__NgbakImport";
const IMPORT_KEY: &str = "__ngbak_src";
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

/// An index or constraint as the server reported it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SchemaItem {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub entity_type: String,
    pub labels_or_types: Vec<String>,
    pub properties: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owning_constraint: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Schema {
    pub indexes: Vec<SchemaItem>,
    pub constraints: Vec<SchemaItem>,
    /// Why the schema could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// Community ids a node belongs to, as nano-graphrag records them: `clusters` (a JSON string
/// `[{"level": 0, "cluster": 3}, …]`) or `communityIds` (a list).
fn communities(props: &Map<String, Value>, into: &mut BTreeSet<String>) {
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

fn bump(stats: &mut BTreeMap<String, u64>, key: String, by: u64) {
    *stats.entry(key).or_default() += by;
}

async fn read_schema(graph: &Graph) -> Schema {
    async fn rows(graph: &Graph, q: &str) -> Result<Vec<SchemaItem>> {
        let mut stream = graph.execute(query(q)).await?;
        let mut out = Vec::new();
        while let Some(row) = stream.next().await? {
            let text = |k: &str| row.get::<Option<String>>(k).ok().flatten().unwrap_or_default();
            let list = |k: &str| row.get::<Option<Vec<String>>>(k).ok().flatten().unwrap_or_default();
            out.push(SchemaItem {
                name: text("name"),
                kind: text("type"),
                entity_type: text("entityType"),
                labels_or_types: list("labelsOrTypes"),
                properties: list("properties"),
                owning_constraint: row.get::<Option<String>>("owningConstraint").ok().flatten(),
            });
        }
        Ok(out)
    }
    match (rows(graph, "SHOW INDEXES").await, rows(graph, "SHOW CONSTRAINTS").await) {
        (Ok(indexes), Ok(constraints)) => Schema { indexes, constraints, unavailable: None },
        (i, c) => {
            let why = i.err().or(c.err()).map(|e| format!("{e:#}")).unwrap_or_default();
            Schema { unavailable: Some(format!("SHOW INDEXES / SHOW CONSTRAINTS failed: {why}")), ..Default::default() }
        }
    }
}

pub struct Neo4jExporter {
    settings: Neo4jSettings,
}

impl Neo4jExporter {
    pub fn new(settings: Neo4jSettings) -> Self {
        Neo4jExporter { settings }
    }
}

#[async_trait]
impl Exporter for Neo4jExporter {
    fn name(&self) -> &'static str {
        NAME
    }

    fn kind(&self) -> &'static str {
        "graph"
    }

    async fn export(&mut self, out: &EntrySender) -> Result<BackendManifest> {
        let graph = self.settings.connect().await?;
        let scope = cypher::scope(self.settings.label.as_deref())?;
        let where_ = self.settings.describe();
        let mut manifest = BackendManifest { kind: "graph".into(), ..Default::default() };

        let schema = read_schema(&graph).await;
        if let Some(why) = &schema.unavailable {
            manifest.warnings.push(format!("indexes and constraints not recorded: {why}"));
        }
        let body = serde_json::to_vec_pretty(&schema)?;
        let schema_records = (schema.indexes.len() + schema.constraints.len()) as u64;
        out.send(SCHEMA.into(), schema_records, EntryBody::Bytes(body.into())).await?;

        // Nodes first; their ids are kept so that every archived relationship has both ends.
        let mut ids = HashSet::new();
        let mut communities_seen = BTreeSet::new();
        let mut parts = out.ndjson(NODES);
        let q = format!("MATCH (n{scope}) RETURN id(n) AS id, labels(n) AS labels, properties(n) AS props");
        let mut rows = graph.execute(query(&q)).await.with_context(|| format!("reading nodes from {where_}"))?;
        while let Some(row) = rows.next().await.with_context(|| format!("reading nodes from {where_}"))? {
            let id: i64 = row.get("id")?;
            let mut labels: Vec<String> = row.get("labels")?;
            labels.sort();
            let BoltType::Map(props) = row.get::<BoltType>("props")? else {
                bail!("node {id}: properties are not a map")
            };
            let props = value::encode_map(&props).with_context(|| format!("node {id}"))?;
            communities(&props, &mut communities_seen);
            for l in &labels {
                bump(&mut manifest.stats, format!("label:{l}"), 1);
            }
            ids.insert(id);
            parts.push(&NodeRecord { id, labels, props }).await?;
        }
        let nodes = parts.finish().await?;

        let mut parts = out.ndjson(RELATIONSHIPS);
        let mut dangling = 0u64;
        let q = format!(
            "MATCH (a{scope})-[r]->(b{scope}) RETURN id(r) AS id, type(r) AS type, id(a) AS start, id(b) AS end, properties(r) AS props"
        );
        let mut rows =
            graph.execute(query(&q)).await.with_context(|| format!("reading relationships from {where_}"))?;
        while let Some(row) = rows.next().await.with_context(|| format!("reading relationships from {where_}"))? {
            let (start, end): (i64, i64) = (row.get("start")?, row.get("end")?);
            if !ids.contains(&start) || !ids.contains(&end) {
                dangling += 1; // created after the node scan: its ends are not in this archive
                continue;
            }
            let id: i64 = row.get("id")?;
            let kind: String = row.get("type")?;
            let BoltType::Map(props) = row.get::<BoltType>("props")? else {
                bail!("relationship {id}: bad properties")
            };
            let props = value::encode_map(&props).with_context(|| format!("relationship {id}"))?;
            bump(&mut manifest.stats, format!("type:{kind}"), 1);
            parts.push(&RelRecord { id, kind, start, end, props }).await?;
        }
        let relationships = parts.finish().await?;
        if dangling > 0 {
            manifest.warnings.push(format!(
                "{dangling} relationships created during the export (after their nodes were read) were left out"
            ));
        }
        manifest.stats.insert("entities".into(), nodes);
        manifest.stats.insert("relationships".into(), relationships);
        manifest.stats.insert("communities".into(), communities_seen.len() as u64);
        manifest.details = serde_json::json!({
            "uri": redact_url(&self.settings.uri),
            "database": self.settings.database,
            "scope": self.settings.label,
            "indexes": schema.indexes.len(),
            "constraints": schema.constraints.len(),
        });
        Ok(manifest)
    }
}

/// Rows waiting for one batched statement.
#[derive(Default)]
struct Pending {
    rows: Vec<BoltType>,
}

pub struct Neo4jRestorer {
    settings: Neo4jSettings,
    graph: Option<Graph>,
    node_batches: BTreeMap<Vec<String>, Pending>,
    rel_batches: BTreeMap<String, Pending>,
    stats: BTreeMap<String, u64>,
    communities: BTreeSet<String>,
    schema_warnings: Vec<String>,
}

impl Neo4jRestorer {
    pub fn new(settings: Neo4jSettings) -> Self {
        Neo4jRestorer {
            settings,
            graph: None,
            node_batches: BTreeMap::new(),
            rel_batches: BTreeMap::new(),
            stats: BTreeMap::new(),
            communities: BTreeSet::new(),
            schema_warnings: Vec::new(),
        }
    }

    fn graph(&self) -> Result<&Graph> {
        self.graph.as_ref().ok_or_else(|| anyhow!("Neo4j restorer used before prepare"))
    }

    /// The label that carries the import key: the scope label every restored node has, or an
    /// extra temporary label for a whole-database restore. (Adding and removing a label is far
    /// costlier than a property on some servers: ArcadeDB changes the vertex's type.)
    fn anchor(&self) -> &str {
        self.settings.label.as_deref().unwrap_or(IMPORT_LABEL)
    }

    /// The extra labels every restored node gets.
    fn extra_labels(&self) -> Vec<String> {
        if self.settings.label.is_some() {
            Vec::new()
        } else {
            vec![IMPORT_LABEL.to_string()]
        }
    }

    /// Runs `q` and returns its single `count` column.
    async fn count(&self, q: neo4rs::Query, what: &str) -> Result<i64> {
        let mut rows = self.graph()?.execute(q).await.with_context(|| what.to_string())?;
        let row = rows.next().await.with_context(|| what.to_string())?.ok_or_else(|| anyhow!("{what}: no result"))?;
        Ok(row.get::<i64>("count")?)
    }

    /// Repeats a statement that handles up to 10,000 nodes until it reports 0.
    async fn in_chunks(&self, q: &str, what: &str) -> Result<i64> {
        let mut total = 0;
        loop {
            let n = self.count(query(q), what).await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    async fn flush_nodes(&mut self, labels: Vec<String>) -> Result<()> {
        let Some(batch) = self.node_batches.remove(&labels) else { return Ok(()) };
        if batch.rows.is_empty() {
            return Ok(());
        }
        let n = batch.rows.len();
        let all = cypher::labels(&labels)?;
        let import = cypher::labels(&self.extra_labels())?;
        let q = match self.settings.mode {
            RestoreMode::Replace => format!(
                "UNWIND $rows AS row CREATE (n{all}{import}) SET n = row.props, n.{IMPORT_KEY} = row.src RETURN count(n) AS count"
            ),
            RestoreMode::Merge => {
                let anchor = match &self.settings.label {
                    Some(l) if labels.contains(l) => l.clone(),
                    _ => labels.first().cloned().ok_or_else(|| anyhow!("a node without labels cannot be merged"))?,
                };
                format!(
                    "UNWIND $rows AS row MERGE (n{} {{{}: row.key}}) SET n = row.props, n.{IMPORT_KEY} = row.src SET n{all}{import} RETURN count(n) AS count",
                    cypher::labels(&[anchor])?,
                    cypher::quote(&self.settings.merge_key)?
                )
            }
        };
        let written = self
            .count(query(&q).param("rows", BoltType::List(BoltList { value: batch.rows })), "writing nodes")
            .await
            .with_context(|| format!("writing {n} nodes labelled {labels:?}"))?;
        if written as usize != n {
            bail!("writing {n} nodes labelled {labels:?}: the server wrote {written}");
        }
        for l in &labels {
            bump(&mut self.stats, format!("label:{l}"), n as u64);
        }
        bump(&mut self.stats, "entities".into(), n as u64);
        Ok(())
    }

    async fn flush_rels(&mut self, kind: String) -> Result<()> {
        let Some(batch) = self.rel_batches.remove(&kind) else { return Ok(()) };
        let n = batch.rows.len();
        if n == 0 {
            return Ok(());
        }
        let verb = if self.settings.mode == RestoreMode::Merge { "MERGE" } else { "CREATE" };
        let import = cypher::quote(self.anchor())?;
        let q = format!(
            "UNWIND $rows AS row MATCH (a:{import} {{{IMPORT_KEY}: row.start}}) MATCH (b:{import} {{{IMPORT_KEY}: row.end}}) \
             {verb} (a)-[r:{}]->(b) SET r = row.props RETURN count(r) AS count",
            cypher::quote(&kind)?
        );
        let written = self
            .count(query(&q).param("rows", BoltType::List(BoltList { value: batch.rows })), "writing relationships")
            .await
            .with_context(|| format!("writing {n} relationships of type {kind}"))?;
        // Fewer means some rows found no end nodes; more (merge only) means parallel edges that
        // already existed between the same nodes were matched and updated.
        if (written as usize) < n {
            bail!("writing {n} relationships of type {kind}: only {written} found both of their end nodes");
        }
        bump(&mut self.stats, format!("type:{kind}"), n as u64);
        bump(&mut self.stats, "relationships".into(), n as u64);
        Ok(())
    }

    /// Counts what a replace restore left in the database — nodes with the import key and the
    /// relationships between them — against what it wrote. The drivers retry a batch on a
    /// transient error; a server that reports one after committing (ArcadeDB does, under
    /// concurrent writes) would otherwise leave duplicates behind without a word.
    async fn check_written(&self) -> Result<()> {
        let anchor = cypher::quote(self.anchor())?;
        let nodes = self
            .count(
                query(&format!("MATCH (n:{anchor}) WHERE n.{IMPORT_KEY} IS NOT NULL RETURN count(n) AS count")),
                "counting the restored nodes",
            )
            .await?;
        let rels = self
            .count(
                query(&format!(
                    "MATCH (a:{anchor})-[r]->(b:{anchor}) WHERE a.{IMPORT_KEY} IS NOT NULL AND b.{IMPORT_KEY} IS NOT NULL \
                     RETURN count(r) AS count"
                )),
                "counting the restored relationships",
            )
            .await?;
        let written = |k: &str| self.stats.get(k).copied().unwrap_or(0);
        same_counts(("nodes", written("entities"), nodes), ("relationships", written("relationships"), rels))
    }

    async fn restore_schema(&mut self, schema: Schema) -> Result<()> {
        let mut created = 0;
        let statements =
            schema.constraints.iter().map(|c| (c, constraint_statement(c))).chain(
                schema.indexes.iter().filter(|i| i.owning_constraint.is_none()).map(|i| (i, index_statement(i))),
            );
        for (item, statement) in statements {
            let outcome = match statement {
                Ok(Some(s)) => self.graph()?.run(query(&s)).await.map_err(anyhow::Error::from),
                Ok(None) => continue,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(_) => created += 1,
                Err(e) => self.schema_warnings.push(format!("{} {:?} not recreated: {e:#}", item.kind, item.name)),
            }
        }
        for w in &self.schema_warnings {
            tracing::warn!(backend = NAME, "{w}");
        }
        self.stats.insert("schema_recreated".into(), created);
        Ok(())
    }
}

/// `CREATE CONSTRAINT …` for a uniqueness constraint; `None` for kinds that are not recreated.
fn constraint_statement(c: &SchemaItem) -> Result<Option<String>> {
    if !c.kind.contains("UNIQUE") || c.entity_type != "NODE" || c.labels_or_types.len() != 1 {
        bail!("only node uniqueness constraints are recreated");
    }
    let props: Vec<String> =
        c.properties.iter().map(|p| cypher::quote(p).map(|q| format!("n.{q}"))).collect::<Result<_>>()?;
    Ok(Some(format!(
        "CREATE CONSTRAINT {} IF NOT EXISTS FOR (n:{}) REQUIRE ({}) IS UNIQUE",
        cypher::quote(&c.name)?,
        cypher::quote(&c.labels_or_types[0])?,
        props.join(", ")
    )))
}

/// `CREATE [TEXT] INDEX …`; `None` for built-in token lookup indexes.
fn index_statement(i: &SchemaItem) -> Result<Option<String>> {
    if i.kind == "LOOKUP" || i.labels_or_types.is_empty() {
        return Ok(None);
    }
    let kind = match i.kind.as_str() {
        "RANGE" | "BTREE" => "",
        "TEXT" => "TEXT ",
        "POINT" => "POINT ",
        other => bail!("{other} indexes are not recreated"),
    };
    let target = cypher::quote(&i.labels_or_types[0])?;
    let pattern = if i.entity_type == "RELATIONSHIP" { format!("()-[n:{target}]-()") } else { format!("(n:{target})") };
    let props: Vec<String> =
        i.properties.iter().map(|p| cypher::quote(p).map(|q| format!("n.{q}"))).collect::<Result<_>>()?;
    Ok(Some(format!(
        "CREATE {kind}INDEX {} IF NOT EXISTS FOR {pattern} ON ({})",
        cypher::quote(&i.name)?,
        props.join(", ")
    )))
}

fn row(src: i64, extra: Vec<(&str, BoltType)>, props: &Map<String, Value>) -> Result<BoltType> {
    let mut m = BoltMap::new();
    m.put(BoltString::new("src"), BoltType::Integer(BoltInteger::new(src)));
    for (k, v) in extra {
        m.put(BoltString::new(k), v);
    }
    m.put(BoltString::new("props"), BoltType::Map(value::decode_map(props)?));
    Ok(BoltType::Map(m))
}

#[async_trait]
impl Restorer for Neo4jRestorer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn target(&self) -> String {
        self.settings.describe()
    }

    async fn prepare(&mut self, _backend: &BackendManifest) -> Result<()> {
        self.graph = Some(self.settings.connect().await?);
        if self.settings.mode == RestoreMode::Replace {
            let scope = cypher::scope(self.settings.label.as_deref())?;
            let q = format!("MATCH (n{scope}) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS count");
            let deleted = self.in_chunks(&q, "clearing the graph scope before replace").await?;
            tracing::info!(deleted, scope = ?self.settings.label, "replace mode: cleared the graph scope");
        }
        let index = format!(
            "CREATE INDEX {IMPORT_INDEX} IF NOT EXISTS FOR (n:{}) ON (n.{IMPORT_KEY})",
            cypher::quote(self.anchor())?
        );
        self.graph()?.run(query(&index)).await.context("creating the temporary import index")?;
        Ok(())
    }

    async fn restore_entry(&mut self, entry: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        if entry.path == SCHEMA {
            let mut buf = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(body, &mut buf).await?;
            return self.restore_schema(serde_json::from_slice(&buf)?).await;
        }
        let nodes = entry.path.starts_with(&format!("{NODES}/"));
        if !nodes && !entry.path.starts_with(&format!("{RELATIONSHIPS}/")) {
            bail!("unknown graph entry {}", entry.path);
        }
        let mut lines = Vec::new();
        for_each_line(body, |l| {
            lines.push(l.to_vec());
            Ok(())
        })
        .await?;
        let batch_size = self.settings.batch_size.max(1);
        for line in lines {
            if nodes {
                let n: NodeRecord =
                    serde_json::from_slice(&line).with_context(|| format!("bad node in {}", entry.path))?;
                communities(&n.props, &mut self.communities);
                let key = match self.settings.mode {
                    RestoreMode::Merge => vec![(
                        "key",
                        value::decode(n.props.get(&self.settings.merge_key).ok_or_else(|| {
                            anyhow!(
                                "node {} has no {:?} property to merge on; restore it with --graph-mode replace or set --graph-merge-key",
                                n.id,
                                self.settings.merge_key
                            )
                        })?)?,
                    )],
                    RestoreMode::Replace => vec![],
                };
                let batch = self.node_batches.entry(n.labels.clone()).or_default();
                batch.rows.push(row(n.id, key, &n.props)?);
                if batch.rows.len() >= batch_size {
                    self.flush_nodes(n.labels).await?;
                }
            } else {
                let r: RelRecord =
                    serde_json::from_slice(&line).with_context(|| format!("bad relationship in {}", entry.path))?;
                let ends = vec![
                    ("start", BoltType::Integer(BoltInteger::new(r.start))),
                    ("end", BoltType::Integer(BoltInteger::new(r.end))),
                ];
                let batch = self.rel_batches.entry(r.kind.clone()).or_default();
                batch.rows.push(row(r.id, ends, &r.props)?);
                if batch.rows.len() >= batch_size {
                    self.flush_rels(r.kind).await?;
                }
            }
        }
        // Nodes must be in place before any relationship looks for them.
        for labels in self.node_batches.keys().cloned().collect::<Vec<_>>() {
            self.flush_nodes(labels).await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<BTreeMap<String, u64>> {
        for labels in self.node_batches.keys().cloned().collect::<Vec<_>>() {
            self.flush_nodes(labels).await?;
        }
        for kind in self.rel_batches.keys().cloned().collect::<Vec<_>>() {
            self.flush_rels(kind).await?;
        }
        if self.settings.mode == RestoreMode::Replace {
            self.check_written().await?;
        }
        let anchor = cypher::quote(self.anchor())?;
        let remove_label = if self.settings.label.is_some() { String::new() } else { format!("n:{anchor}, ") };
        let q = format!(
            "MATCH (n:{anchor}) WHERE n.{IMPORT_KEY} IS NOT NULL WITH n LIMIT 10000 \
             REMOVE {remove_label}n.{IMPORT_KEY} RETURN count(n) AS count"
        );
        self.in_chunks(&q, "removing the temporary import key").await?;
        self.graph()?
            .run(query(&format!("DROP INDEX {IMPORT_INDEX} IF EXISTS")))
            .await
            .context("dropping the import index")?;
        let mut stats = std::mem::take(&mut self.stats);
        stats.entry("entities".into()).or_default();
        stats.entry("relationships".into()).or_default();
        stats.insert("communities".into(), self.communities.len() as u64);
        Ok(stats)
    }
}

/// Fails unless each `(what, written, found)` count agrees.
fn same_counts(nodes: (&str, u64, i64), rels: (&str, u64, i64)) -> Result<()> {
    for (what, written, found) in [nodes, rels] {
        if found != written as i64 {
            bail!(
                "after the restore the database holds {found} restored {what} where {written} were written: \
                 the server applied a batch twice or lost one (ArcadeDB can, when a retried write meets \
                 concurrent writers). Stop other writers and run the restore again with --graph-mode replace"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_count_that_differs_from_what_was_written_fails_the_restore() {
        assert!(super::same_counts(("nodes", 3, 3), ("relationships", 5, 5)).is_ok());
        let err = super::same_counts(("nodes", 3, 3), ("relationships", 4, 5)).unwrap_err().to_string();
        assert!(err.contains("holds 5 restored relationships where 4 were written"), "{err}");
        assert!(super::same_counts(("nodes", 3, 2), ("relationships", 0, 0)).is_err());
    }
}
