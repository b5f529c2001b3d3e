//! Restore: batched `UNWIND` statements by label set and relationship type.
//!
//! Over 500 lines on purpose: the import-key lifecycle (index, keys, leftovers, removal) and the
//! batching it serves are one mechanism; its read-back is apart, in `readback.rs`.
//!
//! Relationships find their end nodes through a temporary import key, `__ngbak_src =
//! "<run>:<archived id>"`, indexed on the scope label (or, for a whole-database restore, on an
//! extra label `__NgbakImport`). The run token makes a key left over by an earlier, failed restore
//! unmatchable; `prepare` also removes such leftovers, and `cleanup` removes this run's keys after
//! success and after failure.
//!
//! Merge mode updates the nodes that exist (`MATCH` on the merge key) and `CREATE`s the others
//! with all their labels. It does not `MERGE` and then add labels: on ArcadeDB, a `MERGE` that
//! creates a node followed by a label change in the same statement applies the change to only
//! part of the rows while reporting all of them written.

use super::schema::{constraint_statement, index_statement, Schema};
use super::*;
use crate::archive::EntryRecord;
use crate::backends::records::ndjson::LineReader;
use crate::backends::RecordSink;
use crate::backends::Restorer;
use anyhow::{anyhow, bail, Context};
use async_trait::async_trait;
use neo4rs::{BoltList, BoltMap, BoltString, BoltType};
use std::collections::HashSet;
use tokio::io::AsyncRead;

/// Largest `graph/schema.json` read (it lists indexes and constraints).
const MAX_SCHEMA: usize = 16 << 20;

/// Nodes or relationships handled per cleanup statement.
const CHUNK: usize = 10_000;

/// One node waiting for its batch: the import key, the merge key (merge mode) and properties.
struct NodeRow {
    src: String,
    key: Option<BoltType>,
    props: BoltMap,
}

/// Nodes of one label set waiting for one statement, with their merge keys (so that two archived
/// nodes with the same key never land in one batch, where both would be created).
#[derive(Default)]
struct NodeBatch {
    rows: Vec<NodeRow>,
    keys: HashSet<String>,
}

pub struct Neo4jRestorer {
    pub(super) settings: Neo4jSettings,
    graph: Option<Graph>,
    /// This run's token, the prefix of every import key it writes.
    pub(super) run: String,
    node_batches: BTreeMap<Vec<String>, NodeBatch>,
    rel_batches: BTreeMap<String, Vec<BoltType>>,
    stats: BTreeMap<String, u64>,
    communities: BTreeSet<String>,
    schema_warnings: Vec<String>,
}

impl Neo4jRestorer {
    pub fn new(settings: Neo4jSettings) -> Self {
        Neo4jRestorer {
            settings,
            graph: None,
            run: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            node_batches: BTreeMap::new(),
            rel_batches: BTreeMap::new(),
            stats: BTreeMap::new(),
            communities: BTreeSet::new(),
            schema_warnings: Vec::new(),
        }
    }

    fn graph(&self) -> Result<&Graph> {
        self.graph.as_ref().ok_or_else(|| anyhow!("Neo4j restorer used before it connected"))
    }

    /// The label that carries the import key: the scope label every restored node has, or an
    /// extra temporary label for a whole-database restore. (Adding and removing a label is far
    /// costlier than a property on some servers: ArcadeDB changes the vertex's type.)
    pub(super) fn anchor(&self) -> &str {
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

    fn import_key(&self, src: i64) -> String {
        format!("{}:{src}", self.run)
    }

    /// The archived id in an import key of this run; `None` for anything else.
    pub(super) fn archived_id(&self, key: Option<String>) -> Option<i64> {
        key?.strip_prefix(&self.run)?.strip_prefix(':')?.parse().ok()
    }

    /// Runs `q` and returns its single `count` column.
    async fn count(&self, q: neo4rs::Query, what: &str) -> Result<i64> {
        let mut rows = self.graph()?.execute(q).await.with_context(|| what.to_string())?;
        let row = rows.next().await.with_context(|| what.to_string())?.ok_or_else(|| anyhow!("{what}: no result"))?;
        Ok(row.get::<i64>("count")?)
    }

    /// Repeats a statement that handles up to [`CHUNK`] items until it reports 0.
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

    /// Removes every import key and label (of this run or an earlier one) and the import index.
    async fn remove_import_keys(&self) -> Result<()> {
        let anchor = cypher::quote(self.anchor())?;
        let remove_label = if self.settings.label.is_some() { String::new() } else { format!("n:{anchor}, ") };
        let q = format!(
            "MATCH (n:{anchor}) WHERE n.{IMPORT_KEY} IS NOT NULL WITH n LIMIT {CHUNK} \
             REMOVE {remove_label}n.{IMPORT_KEY} RETURN count(n) AS count"
        );
        self.in_chunks(&q, "removing the temporary import key from nodes").await?;
        if self.settings.label.is_none() {
            let q = format!("MATCH (n:{anchor}) WITH n LIMIT {CHUNK} REMOVE n:{anchor} RETURN count(n) AS count");
            self.in_chunks(&q, "removing the temporary import label").await?;
        }
        if self.settings.mode == RestoreMode::Merge {
            let q = format!(
                "MATCH ()-[r]->() WHERE r.{IMPORT_KEY} IS NOT NULL WITH r LIMIT {CHUNK} \
                 REMOVE r.{IMPORT_KEY} RETURN count(r) AS count"
            );
            self.in_chunks(&q, "removing the temporary import key from relationships").await?;
        }
        Ok(())
    }

    async fn flush_nodes(&mut self, labels: Vec<String>) -> Result<()> {
        let Some(batch) = self.node_batches.remove(&labels) else { return Ok(()) };
        let n = batch.rows.len();
        if n == 0 {
            return Ok(());
        }
        let all = cypher::labels(&labels)?;
        let import = cypher::labels(&self.extra_labels())?;
        let mut rows = batch.rows;
        if self.settings.mode == RestoreMode::Merge {
            // Update the nodes that exist; what is left is created below.
            let anchor = match &self.settings.label {
                Some(l) if labels.contains(l) => l.clone(),
                _ => labels.first().cloned().ok_or_else(|| anyhow!("a node without labels cannot be merged"))?,
            };
            let q = format!(
                "UNWIND $rows AS row MATCH (n{} {{{}: row.key}}) SET n = row.props, n.{IMPORT_KEY} = row.src \
                 SET n{all}{import} RETURN row.src AS src",
                cypher::labels(&[anchor])?,
                cypher::quote(&self.settings.merge_key)?
            );
            let mut found = HashSet::new();
            let mut result = self
                .graph()?
                .execute(query(&q).param("rows", bolt_rows(&rows)))
                .await
                .with_context(|| format!("updating {n} nodes labelled {labels:?}"))?;
            while let Some(row) = result.next().await.with_context(|| format!("updating nodes labelled {labels:?}"))? {
                found.insert(row.get::<String>("src")?);
            }
            rows.retain(|r| !found.contains(&r.src));
        }
        if !rows.is_empty() {
            let q = format!(
                "UNWIND $rows AS row CREATE (n{all}{import}) SET n = row.props, n.{IMPORT_KEY} = row.src \
                 RETURN count(n) AS count"
            );
            let created = rows.len();
            let written = self
                .count(query(&q).param("rows", bolt_rows(&rows)), "writing nodes")
                .await
                .with_context(|| format!("creating {created} nodes labelled {labels:?}"))?;
            if written as usize != created {
                bail!("creating {created} nodes labelled {labels:?}: the server wrote {written}");
            }
        }
        for l in &labels {
            bump(&mut self.stats, format!("label:{l}"), n as u64);
        }
        bump(&mut self.stats, "entities".into(), n as u64);
        Ok(())
    }

    async fn flush_rels(&mut self, kind: String) -> Result<()> {
        let Some(rows) = self.rel_batches.remove(&kind) else { return Ok(()) };
        let n = rows.len();
        if n == 0 {
            return Ok(());
        }
        let (verb, mark) = match self.settings.mode {
            // Merge marks what it wrote, so that the check after the restore can tell it apart
            // from relationships the target held already.
            RestoreMode::Merge => ("MERGE", format!(", r.{IMPORT_KEY} = row.src")),
            RestoreMode::Replace => ("CREATE", String::new()),
        };
        let anchor = cypher::quote(self.anchor())?;
        let q = format!(
            "UNWIND $rows AS row MATCH (a:{anchor} {{{IMPORT_KEY}: row.start}}) MATCH (b:{anchor} {{{IMPORT_KEY}: row.end}}) \
             {verb} (a)-[r:{}]->(b) SET r = row.props{mark} RETURN count(r) AS count",
            cypher::quote(&kind)?
        );
        let written = self
            .count(query(&q).param("rows", BoltType::List(BoltList { value: rows })), "writing relationships")
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

    /// Parses a node line into its record and the row that writes it.
    fn node_row(&self, line: &[u8], entry: &str) -> Result<(NodeRecord, NodeRow)> {
        let n: NodeRecord = serde_json::from_slice(line).with_context(|| format!("bad node in {entry}"))?;
        cypher::labels(&n.labels).with_context(|| format!("node {} in {entry}", n.id))?;
        let key = match self.settings.mode {
            RestoreMode::Merge => Some(value::decode(n.props.get(&self.settings.merge_key).ok_or_else(|| {
                anyhow!(
                    "node {} has no {:?} property to merge on; restore it with --graph-mode replace or set --graph-merge-key",
                    n.id,
                    self.settings.merge_key
                )
            })?)?),
            RestoreMode::Replace => None,
        };
        let props = value::decode_map(&n.props).with_context(|| format!("node {} in {entry}", n.id))?;
        let row = NodeRow { src: self.import_key(n.id), key, props };
        Ok((n, row))
    }

    /// Parses a relationship line into its record and the row that writes it.
    fn rel_row(&self, line: &[u8], entry: &str) -> Result<(RelRecord, BoltType)> {
        let r: RelRecord = serde_json::from_slice(line).with_context(|| format!("bad relationship in {entry}"))?;
        cypher::quote(&r.kind).with_context(|| format!("relationship {} in {entry}", r.id))?;
        let mut m = BoltMap::new();
        m.put(BoltString::new("src"), BoltType::String(BoltString::new(&self.import_key(r.id))));
        m.put(BoltString::new("start"), BoltType::String(BoltString::new(&self.import_key(r.start))));
        m.put(BoltString::new("end"), BoltType::String(BoltString::new(&self.import_key(r.end))));
        let props = value::decode_map(&r.props).with_context(|| format!("relationship {} in {entry}", r.id))?;
        m.put(BoltString::new("props"), BoltType::Map(props));
        Ok((r, BoltType::Map(m)))
    }

    /// Counts what a replace restore left in the database — nodes with this run's import key and
    /// the relationships between them — against what it wrote. The drivers retry a batch on a
    /// transient error; a server that reports one after committing (ArcadeDB does, under
    /// concurrent writes) would otherwise leave duplicates behind without a word.
    async fn check_written(&self) -> Result<()> {
        let anchor = cypher::quote(self.anchor())?;
        let prefix = format!("{}:", self.run);
        let nodes = self
            .count(
                query(&format!("MATCH (n:{anchor}) WHERE n.{IMPORT_KEY} STARTS WITH $p RETURN count(n) AS count"))
                    .param("p", prefix.as_str()),
                "counting the restored nodes",
            )
            .await?;
        let rels = self
            .count(
                query(&format!(
                    "MATCH (a:{anchor})-[r]->(b:{anchor}) WHERE a.{IMPORT_KEY} STARTS WITH $p AND b.{IMPORT_KEY} STARTS WITH $p \
                     RETURN count(r) AS count"
                ))
                .param("p", prefix.as_str()),
                "counting the restored relationships",
            )
            .await?;
        let written = |k: &str| self.stats.get(k).copied().unwrap_or(0);
        same_counts(("nodes", written("entities"), nodes), ("relationships", written("relationships"), rels))
    }

    /// Streams `q`'s rows and hands each to `each`.
    pub(super) async fn each_row(
        &self,
        q: neo4rs::Query,
        what: &str,
        mut each: impl FnMut(neo4rs::Row) -> Result<()>,
    ) -> Result<()> {
        let mut rows = self.graph()?.execute(q).await.with_context(|| what.to_string())?;
        while let Some(row) = rows.next().await.with_context(|| what.to_string())? {
            each(row)?;
        }
        Ok(())
    }
}

fn bolt_rows(rows: &[NodeRow]) -> BoltType {
    let value = rows
        .iter()
        .map(|r| {
            let mut m = BoltMap::new();
            m.put(BoltString::new("src"), BoltType::String(BoltString::new(&r.src)));
            if let Some(k) = &r.key {
                m.put(BoltString::new("key"), k.clone());
            }
            m.put(BoltString::new("props"), BoltType::Map(r.props.clone()));
            BoltType::Map(m)
        })
        .collect();
    BoltType::List(BoltList { value })
}

/// Reads `graph/schema.json`, refusing one larger than [`MAX_SCHEMA`] before reading it.
async fn read_schema_entry(entry: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<Schema> {
    if entry.size > MAX_SCHEMA as u64 {
        bail!("{} has {} bytes; a schema may have at most {} MiB", entry.path, entry.size, MAX_SCHEMA >> 20);
    }
    let mut buf = Vec::with_capacity(entry.size as usize);
    tokio::io::AsyncReadExt::read_to_end(body, &mut buf).await?;
    serde_json::from_slice(&buf).with_context(|| format!("{} is not a valid schema", entry.path))
}

fn entry_kind(path: &str) -> Result<bool> {
    if path.starts_with(&format!("{NODES}/")) {
        Ok(true)
    } else if path.starts_with(&format!("{RELATIONSHIPS}/")) {
        Ok(false)
    } else {
        bail!("unknown graph entry {path}")
    }
}

#[async_trait]
impl Restorer for Neo4jRestorer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn target(&self) -> String {
        self.settings.describe()
    }

    async fn preflight(&mut self, _backend: &BackendManifest) -> Result<()> {
        if self.graph.is_none() {
            self.graph = Some(self.settings.connect().await?);
        }
        Ok(())
    }

    async fn safety_exporter(&mut self) -> Result<Option<Box<dyn crate::backends::Exporter>>> {
        Ok(Some(Box::new(super::Neo4jExporter::new(self.settings.clone()))))
    }

    async fn check_entry(
        &mut self,
        entry: &EntryRecord,
        body: &mut (dyn AsyncRead + Send + Unpin),
        each: &mut RecordSink<'_>,
    ) -> Result<()> {
        if entry.path == SCHEMA {
            read_schema_entry(entry, body).await?;
            return Ok(());
        }
        let nodes = entry_kind(&entry.path)?;
        let mut lines = LineReader::new(body);
        while let Some(line) = lines.next_line().await? {
            if nodes {
                each(&serde_json::to_vec(&self.node_row(line, &entry.path)?.0)?);
            } else {
                each(&serde_json::to_vec(&self.rel_row(line, &entry.path)?.0.canonical())?);
            }
        }
        Ok(())
    }

    async fn prepare(&mut self, _backend: &BackendManifest) -> Result<()> {
        if self.graph.is_none() {
            self.graph = Some(self.settings.connect().await?);
        }
        // Keys left by an earlier restore that failed before its cleanup could match this one's.
        self.remove_import_keys().await.context("removing what an earlier restore left behind")?;
        if self.settings.mode == RestoreMode::Replace {
            let scope = cypher::scope(self.settings.label.as_deref())?;
            let q = format!("MATCH (n{scope}) WITH n LIMIT {CHUNK} DETACH DELETE n RETURN count(*) AS count");
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
            let schema = read_schema_entry(entry, body).await?;
            return self.restore_schema(schema).await;
        }
        let nodes = entry_kind(&entry.path)?;
        let batch_size = self.settings.batch_size.max(1);
        let mut lines = LineReader::new(body);
        while let Some(line) = lines.next_line().await? {
            if nodes {
                let (n, row) = self.node_row(line, &entry.path)?;
                communities(&n.props, &mut self.communities);
                let key = row.key.as_ref().map(|k| format!("{k:?}")).unwrap_or_default();
                if self.node_batches.get(&n.labels).is_some_and(|b| !key.is_empty() && b.keys.contains(&key)) {
                    self.flush_nodes(n.labels.clone()).await?;
                }
                let batch = self.node_batches.entry(n.labels.clone()).or_default();
                batch.keys.insert(key);
                batch.rows.push(row);
                if batch.rows.len() >= batch_size {
                    self.flush_nodes(n.labels).await?;
                }
            } else {
                let (r, row) = self.rel_row(line, &entry.path)?;
                let batch = self.rel_batches.entry(r.kind.clone()).or_default();
                batch.push(row);
                if batch.len() >= batch_size {
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
        let mut stats = std::mem::take(&mut self.stats);
        stats.entry("entities".into()).or_default();
        stats.entry("relationships".into()).or_default();
        stats.insert("communities".into(), self.communities.len() as u64);
        Ok(stats)
    }

    async fn read_back(&mut self, each: &mut RecordSink<'_>) -> Result<bool> {
        self.read_back_records(each).await?;
        Ok(true)
    }

    async fn cleanup(&mut self) -> Result<()> {
        if self.graph.is_none() {
            return Ok(());
        }
        self.remove_import_keys().await?;
        self.graph()?
            .run(query(&format!("DROP INDEX {IMPORT_INDEX} IF EXISTS")))
            .await
            .context("dropping the import index")?;
        Ok(())
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
