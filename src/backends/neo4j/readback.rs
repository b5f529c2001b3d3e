//! The proof that a graph restore equals the archive: the restored nodes and relationships
//! (in `replace` mode the whole scope, in `merge` mode what this run wrote, told by its import
//! keys) read back in the archive's canonical form.

use super::restore::Neo4jRestorer;
use super::*;
use crate::backends::RecordSink;
use anyhow::bail;
use neo4rs::BoltType;

impl Neo4jRestorer {
    /// Hands every restored record's canonical form to `each`.
    pub(super) async fn read_back_records(&mut self, each: &mut RecordSink<'_>) -> Result<()> {
        let anchor = cypher::quote(self.anchor())?;
        let scope = cypher::scope(self.settings.label.as_deref())?;
        let prefix = format!("{}:", self.run);
        // Replace mode reads the whole scope (anything not written by this run shows up as a
        // record with id -1); merge mode reads what this run wrote.
        let (nodes, rels) = match self.settings.mode {
            RestoreMode::Replace => (
                format!("MATCH (n{scope}) RETURN n.{IMPORT_KEY} AS key, labels(n) AS labels, properties(n) AS props"),
                format!(
                    "MATCH (a{scope})-[r]->(b{scope}) RETURN a.{IMPORT_KEY} AS start, type(r) AS type, \
                     b.{IMPORT_KEY} AS end, properties(r) AS props"
                ),
            ),
            RestoreMode::Merge => (
                format!(
                    "MATCH (n:{anchor}) WHERE n.{IMPORT_KEY} STARTS WITH $p \
                     RETURN n.{IMPORT_KEY} AS key, labels(n) AS labels, properties(n) AS props"
                ),
                format!(
                    "MATCH (a:{anchor})-[r]->(b:{anchor}) WHERE r.{IMPORT_KEY} STARTS WITH $p \
                     RETURN a.{IMPORT_KEY} AS start, type(r) AS type, b.{IMPORT_KEY} AS end, properties(r) AS props"
                ),
            ),
        };
        let props_of = |row: &neo4rs::Row| -> Result<Map<String, Value>> {
            let BoltType::Map(p) = row.get::<BoltType>("props")? else { bail!("properties are not a map") };
            let mut props = value::encode_map(&p)?;
            props.remove(IMPORT_KEY);
            Ok(props)
        };
        self.each_row(query(&nodes).param("p", prefix.as_str()), "reading back the restored nodes", |row| {
            let mut labels: Vec<String> = row.get("labels")?;
            labels.retain(|l| l != IMPORT_LABEL);
            labels.sort();
            let id = self.archived_id(row.get::<Option<String>>("key").ok().flatten()).unwrap_or(-1);
            each(&serde_json::to_vec(&NodeRecord { id, labels, props: props_of(&row)? })?);
            Ok(())
        })
        .await?;
        self.each_row(query(&rels).param("p", prefix.as_str()), "reading back the restored relationships", |row| {
            let end = |k: &str| self.archived_id(row.get::<Option<String>>(k).ok().flatten()).unwrap_or(-1);
            let kind: String = row.get("type")?;
            let props = props_of(&row)?;
            let rel = CanonicalRel { kind: &kind, start: end("start"), end: end("end"), props: &props };
            each(&serde_json::to_vec(&rel)?);
            Ok(())
        })
        .await?;
        Ok(())
    }
}
