//! Indexes and constraints: read with SHOW INDEXES / SHOW CONSTRAINTS at backup, recreated where
//! the target supports them at restore (a failure there is a warning, not an error).

use super::cypher;
use anyhow::{bail, Result};
use neo4rs::{query, Graph};
use serde::{Deserialize, Serialize};

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

pub async fn read_schema(graph: &Graph) -> Schema {
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

/// `CREATE CONSTRAINT …` for a uniqueness constraint; `None` for kinds that are not recreated.
pub fn constraint_statement(c: &SchemaItem) -> Result<Option<String>> {
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
pub fn index_statement(i: &SchemaItem) -> Result<Option<String>> {
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
