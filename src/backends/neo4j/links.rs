//! A Bolt graph as the graph of a GraphRAG deployment, for the consistency check: every node's
//! name (the merge-key property, nano-graphrag's `id`) and `source_id`, and every relationship's
//! ends and `source_id`, streamed from the database in the configured scope; or the same read
//! from the graph's archive entries ([`ArchivedGraph`]).

use super::{cypher, Neo4jSettings};
use crate::consistency::{ArchivedFacts, Deployment, Fact, FactSink, Kind, Store, Want};
use anyhow::{Context, Result};
use neo4rs::query;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;

pub struct GraphDeployment {
    settings: Neo4jSettings,
}

impl GraphDeployment {
    pub fn new(settings: Neo4jSettings) -> Self {
        GraphDeployment { settings }
    }

    /// Runs `q` and hands each row to `each`.
    async fn rows(&self, q: &str, what: &str, mut each: impl FnMut(neo4rs::Row) -> Result<()>) -> Result<()> {
        let graph = self.settings.connect().await?;
        let mut rows = graph.execute(query(q)).await.with_context(|| what.to_string())?;
        while let Some(row) = rows.next().await.with_context(|| what.to_string())? {
            each(row)?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Deployment for GraphDeployment {
    async fn stores(&mut self) -> Result<BTreeSet<Store>> {
        Ok([Store::Graph].into())
    }

    async fn walk(&mut self, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
        let scope = cypher::scope(self.settings.label.as_deref())?;
        let key = cypher::quote(&self.settings.merge_key)?;
        if want.0.contains(&Kind::Node) {
            let q = format!(
                "MATCH (n{scope}) WHERE n.{key} IS NOT NULL RETURN n.{key} AS name, n.source_id AS source_id"
            );
            self.rows(&q, "reading the graph's nodes", |row| {
                let name: String = row.get("name")?;
                let source_id: Option<String> = row.get("source_id").ok();
                each(Fact::Node { name: &name, source_id: source_id.as_deref().unwrap_or_default() });
                Ok(())
            })
            .await?;
        }
        if want.0.contains(&Kind::Relationship) {
            let q = format!(
                "MATCH (a{scope})-[r]->(b{scope}) RETURN a.{key} AS source, b.{key} AS target, r.source_id AS source_id"
            );
            self.rows(&q, "reading the graph's relationships", |row| {
                let (from, to): (Option<String>, Option<String>) = (row.get("source").ok(), row.get("target").ok());
                let source_id: Option<String> = row.get("source_id").ok();
                each(Fact::Relationship {
                    from: from.as_deref().unwrap_or("?"),
                    to: to.as_deref().unwrap_or("?"),
                    source_id: source_id.as_deref().unwrap_or_default(),
                });
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}

/// The graph's archive entries (`graph/nodes/*.ndjson`, then `graph/relationships/*.ndjson`)
/// as facts. Relationships name their ends by the source database's node ids, so when they are
/// wanted the node names are kept by id (the one map the check holds beyond its hash sets).
pub struct ArchivedGraph {
    merge_key: String,
    names: HashMap<i64, String>,
}

impl ArchivedGraph {
    pub fn new(merge_key: &str) -> Self {
        ArchivedGraph { merge_key: merge_key.to_string(), names: HashMap::new() }
    }
}

#[derive(Deserialize)]
struct Record {
    id: i64,
    #[serde(default)]
    start: Option<i64>,
    #[serde(default)]
    end: Option<i64>,
    #[serde(default)]
    props: HashMap<String, serde_json::Value>,
}

impl ArchivedFacts for ArchivedGraph {
    fn stores_of(&self, path: &str) -> Vec<Store> {
        match path.starts_with("graph/nodes/") || path.starts_with("graph/relationships/") {
            true => vec![Store::Graph],
            false => Vec::new(),
        }
    }

    fn entry(&mut self, path: &str, body: &mut dyn std::io::Read, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
        let nodes = path.starts_with("graph/nodes/");
        let (emit_nodes, keep_names) = (want.0.contains(&Kind::Node), want.0.contains(&Kind::Relationship));
        // Node entries matter for their facts or their names; relationship entries need names.
        let needed = keep_names || (nodes && emit_nodes);
        if !needed {
            return Ok(());
        }
        // String properties are stored as themselves (FORMAT.md, graph records).
        let text = |r: &Record, name: &str| r.props.get(name).and_then(|v| v.as_str().map(str::to_string));
        for line in std::io::BufReader::new(body).lines() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            let record: Record = serde_json::from_str(&line).with_context(|| format!("a record of {path}"))?;
            let source_id = text(&record, "source_id").unwrap_or_default();
            if nodes {
                let Some(name) = text(&record, &self.merge_key) else { continue };
                if emit_nodes {
                    each(Fact::Node { name: &name, source_id: &source_id });
                }
                if keep_names {
                    self.names.insert(record.id, name);
                }
            } else {
                let end = |id: Option<i64>| id.and_then(|id| self.names.get(&id)).map(String::as_str).unwrap_or("?");
                each(Fact::Relationship { from: end(record.start), to: end(record.end), source_id: &source_id });
            }
        }
        Ok(())
    }
}
