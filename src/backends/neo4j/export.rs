//! Export: the schema first, then every node in scope, then every relationship between two of
//! them, as NDJSON parts; each record also feeds the backend's content digest.

use super::schema::read_schema;
use super::*;
use crate::archive::{ContentDigest, EntryBody};
use crate::backends::{redact_url, EntrySender, Exporter};
use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use neo4rs::{query, BoltType};
use std::collections::{BTreeSet, HashSet};

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

    /// No node in scope: how many the database holds, and its first labels.
    async fn emptiness(&mut self, exported: &BackendManifest) -> Result<Option<String>> {
        if exported.stats.get("entities").copied().unwrap_or(0) > 0 {
            return Ok(None);
        }
        let graph = self.settings.connect().await?;
        let mut rows = graph.execute(query("MATCH (n) RETURN count(n) AS c")).await?;
        let all: i64 = match rows.next().await? {
            Some(row) => row.get("c")?,
            None => 0,
        };
        let scope = self.settings.describe();
        if all == 0 {
            return Ok(Some(format!("no node in {scope}: the database holds none")));
        }
        let mut labels = Vec::new();
        if let Ok(mut rows) = graph.execute(query("MATCH (n) UNWIND labels(n) AS l RETURN DISTINCT l LIMIT 5")).await {
            while let Ok(Some(row)) = rows.next().await {
                if let Ok(label) = row.get::<String>("l") {
                    labels.push(label);
                }
            }
        }
        Ok(Some(format!(
            "no node in {scope}, while the database holds {all} (labels seen: {}): check --neo4j-label \
             (NEO4J_GRAPH_NAMESPACE) and --neo4j-database",
            labels.join(", ")
        )))
    }

    /// The counts of nodes and relationships in scope (a property changed in place goes unseen:
    /// Bolt offers no cheap write counter across servers).
    async fn state_mark(&mut self) -> Result<Option<crate::consistency::state::StateMark>> {
        let graph = self.settings.connect().await?;
        let scope = cypher::scope(self.settings.label.as_deref())?;
        let mut mark = crate::consistency::state::StateMark::default();
        for (name, q) in [
            ("nodes", format!("MATCH (n{scope}) RETURN count(n) AS c")),
            ("relationships", format!("MATCH (a{scope})-[r]->(b{scope}) RETURN count(r) AS c")),
        ] {
            let mut rows = graph.execute(query(&q)).await.with_context(|| format!("counting the graph's {name}"))?;
            let count: i64 = match rows.next().await? {
                Some(row) => row.get("c")?,
                None => 0,
            };
            mark = mark.exact(name, count);
        }
        Ok(Some(mark))
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
        let mut digest = ContentDigest::default();
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
            let node = NodeRecord { id, labels, props };
            digest.add_json(&node);
            parts.push(&node).await?;
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
            let rel = RelRecord { id, kind, start, end, props };
            digest.add_json(&rel.canonical());
            parts.push(&rel).await?;
        }
        let relationships = parts.finish().await?;
        if dangling > 0 {
            manifest.warnings.push(format!(
                "{dangling} relationships created during the export (after their nodes were read) were left out"
            ));
        }
        manifest.content_digest = Some(digest);
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
