//! A Bolt graph as the graph of a GraphRAG deployment, for the consistency check: every node's
//! name (the merge-key property, nano-graphrag's `id`) and `source_id`, and every relationship's
//! ends and `source_id`, streamed from the database in the configured scope.

use super::{cypher, Neo4jSettings};
use crate::consistency::{Deployment, EdgeSink, NodeSink};
use anyhow::{Context, Result};
use neo4rs::query;

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
    async fn nodes(&mut self, each: &mut NodeSink<'_>) -> Result<bool> {
        let scope = cypher::scope(self.settings.label.as_deref())?;
        let key = cypher::quote(&self.settings.merge_key)?;
        let q = format!("MATCH (n{scope}) WHERE n.{key} IS NOT NULL RETURN n.{key} AS name, n.source_id AS source_id");
        self.rows(&q, "reading the graph's nodes", |row| {
            let name: String = row.get("name")?;
            let source_id: Option<String> = row.get("source_id").ok();
            each(&name, source_id.as_deref().unwrap_or_default());
            Ok(())
        })
        .await?;
        Ok(true)
    }

    async fn relationships(&mut self, each: &mut EdgeSink<'_>) -> Result<bool> {
        let scope = cypher::scope(self.settings.label.as_deref())?;
        let key = cypher::quote(&self.settings.merge_key)?;
        let q = format!(
            "MATCH (a{scope})-[r]->(b{scope}) RETURN a.{key} AS source, b.{key} AS target, r.source_id AS source_id"
        );
        self.rows(&q, "reading the graph's relationships", |row| {
            let (source, target): (Option<String>, Option<String>) = (row.get("source").ok(), row.get("target").ok());
            let source_id: Option<String> = row.get("source_id").ok();
            each(
                source.as_deref().unwrap_or("?"),
                target.as_deref().unwrap_or("?"),
                source_id.as_deref().unwrap_or_default(),
            );
            Ok(())
        })
        .await?;
        Ok(true)
    }
}
