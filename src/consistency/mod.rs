//! A GraphRAG is one state in three stores: its graph, its vectors and its key-value store are
//! linked by ids. This room checks the links (nano-graphrag's layout, shared by LightRAG):
//!
//! 1. every graph node has its entity vector (`ent-` + md5 of its name), and every entity
//!    vector's `entity_name` is a node;
//! 2. every chunk id in a node's or a relationship's `source_id` is a `text_chunks` key;
//! 3. every text chunk's `full_doc_id` is a `full_docs` key;
//! 4. every community report's member nodes are nodes.
//!
//! A deployment hands its facts over twice ([`Deployment`]): first what can be linked *to*
//! (node names, vector ids, chunk and document keys), kept as 16-byte hashes, never the records;
//! then what links, each link checked at once against those sets, so the first broken ones are
//! named as they are met and memory holds the sets alone. A rule whose stores are not there is
//! reported as not checked, never as holding.

mod report;

pub use report::{render, ConsistencyReport, RuleOutcome};

use anyhow::Result;
use std::collections::HashSet;

/// Broken links named per rule (the count covers them all).
pub const NAMED: usize = 10;

/// How the deployment names and joins its ids: nano-graphrag's defaults, settable for a fork.
#[derive(clap::Args, Clone, Debug)]
pub struct Layout {
    /// Separator of the chunk ids in a node's or relationship's `source_id`.
    #[arg(long = "layout-separator", env = "NGBAK_LAYOUT_SEPARATOR", default_value = "<SEP>")]
    pub separator: String,
    /// Prefix of an entity vector's id before the md5 of the entity's name.
    #[arg(long = "layout-entity-prefix", env = "NGBAK_LAYOUT_ENTITY_PREFIX", default_value = "ent-")]
    pub entity_prefix: String,
    /// The vector namespace of the entities.
    #[arg(long = "layout-entities", env = "NGBAK_LAYOUT_ENTITIES", default_value = "entities")]
    pub entities: String,
    /// The key-value namespace of the text chunks.
    #[arg(long = "layout-chunks", env = "NGBAK_LAYOUT_CHUNKS", default_value = "text_chunks")]
    pub chunks: String,
    /// The key-value namespace of the full documents.
    #[arg(long = "layout-docs", env = "NGBAK_LAYOUT_DOCS", default_value = "full_docs")]
    pub docs: String,
    /// The key-value namespace of the community reports.
    #[arg(long = "layout-reports", env = "NGBAK_LAYOUT_REPORTS", default_value = "community_reports")]
    pub reports: String,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            separator: "<SEP>".into(),
            entity_prefix: "ent-".into(),
            entities: "entities".into(),
            chunks: "text_chunks".into(),
            docs: "full_docs".into(),
            reports: "community_reports".into(),
        }
    }
}

impl Layout {
    /// The id of the entity vector of the node `name` (`compute_mdhash_id(name, prefix)`).
    pub fn entity_vector_id(&self, name: &str) -> String {
        use md5::Digest;
        format!("{}{}", self.entity_prefix, hex::encode(md5::Md5::digest(name.as_bytes())))
    }
}

/// The stores of a deployment whose facts a [`Deployment`] hands over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Store {
    Graph,
    EntityVectors,
    Chunks,
    Docs,
    Reports,
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Store::Graph => "graph",
            Store::EntityVectors => "entity vectors",
            Store::Chunks => "text chunks",
            Store::Docs => "full documents",
            Store::Reports => "community reports",
        }
    }
}

/// Receivers of facts, one at a time (named so the async trait keeps them higher-ranked).
pub type NodeSink<'s> = dyn for<'a> FnMut(&'a str, &'a str) + Send + 's;
pub type EdgeSink<'s> = dyn for<'a> FnMut(&'a str, &'a str, &'a str) + Send + 's;
pub type KeySink<'s> = dyn for<'a> FnMut(&'a str, Option<&'a str>) + Send + 's;
pub type IdSink<'s> = dyn for<'a> FnMut(&'a str) + Send + 's;
pub type ReportSink<'s> = dyn for<'a> FnMut(&'a str, &'a [String]) + Send + 's;

/// A GraphRAG deployment's facts, read as a stream (a working directory, live stores, an
/// archive). Each method returns `false` when the deployment has no such store; a store may be
/// spread over several backends (see [`Combined`]).
#[async_trait::async_trait]
pub trait Deployment: Send {
    /// Every node: its name and its `source_id`.
    async fn nodes(&mut self, _each: &mut NodeSink<'_>) -> Result<bool> {
        Ok(false)
    }
    /// Every relationship: its ends and its `source_id`.
    async fn relationships(&mut self, _each: &mut EdgeSink<'_>) -> Result<bool> {
        Ok(false)
    }
    /// Every entity vector: its id and its `entity_name`.
    async fn entity_vectors(&mut self, _each: &mut KeySink<'_>) -> Result<bool> {
        Ok(false)
    }
    /// Every text chunk: its key and its `full_doc_id`.
    async fn chunks(&mut self, _each: &mut KeySink<'_>) -> Result<bool> {
        Ok(false)
    }
    /// Every full document's key.
    async fn docs(&mut self, _each: &mut IdSink<'_>) -> Result<bool> {
        Ok(false)
    }
    /// Every community report: its key and its member nodes.
    async fn reports(&mut self, _each: &mut ReportSink<'_>) -> Result<bool> {
        Ok(false)
    }
}

/// One deployment spread over several backends (a graph database, a vector store, a key-value
/// store): each store is what the backends that hold it hand over together.
pub struct Combined(pub Vec<Box<dyn Deployment>>);

// Written out: `async_trait` cannot see methods a `macro_rules!` would generate.
#[async_trait::async_trait]
impl Deployment for Combined {
    async fn nodes(&mut self, each: &mut NodeSink<'_>) -> Result<bool> {
        let mut any = false;
        for part in &mut self.0 {
            any |= part.nodes(&mut *each).await?;
        }
        Ok(any)
    }

    async fn relationships(&mut self, each: &mut EdgeSink<'_>) -> Result<bool> {
        let mut any = false;
        for part in &mut self.0 {
            any |= part.relationships(&mut *each).await?;
        }
        Ok(any)
    }

    async fn entity_vectors(&mut self, each: &mut KeySink<'_>) -> Result<bool> {
        let mut any = false;
        for part in &mut self.0 {
            any |= part.entity_vectors(&mut *each).await?;
        }
        Ok(any)
    }

    async fn chunks(&mut self, each: &mut KeySink<'_>) -> Result<bool> {
        let mut any = false;
        for part in &mut self.0 {
            any |= part.chunks(&mut *each).await?;
        }
        Ok(any)
    }

    async fn docs(&mut self, each: &mut IdSink<'_>) -> Result<bool> {
        let mut any = false;
        for part in &mut self.0 {
            any |= part.docs(&mut *each).await?;
        }
        Ok(any)
    }

    async fn reports(&mut self, each: &mut ReportSink<'_>) -> Result<bool> {
        let mut any = false;
        for part in &mut self.0 {
            any |= part.reports(&mut *each).await?;
        }
        Ok(any)
    }
}

/// A set of ids as 16-byte hashes (XXH3-128: a collision would hide a broken link, never invent
/// one, and is out of reach at any deployment's size).
#[derive(Default)]
struct Ids(HashSet<u128>);

impl Ids {
    fn hash(id: &str) -> u128 {
        xxhash_rust::xxh3::xxh3_128(id.as_bytes())
    }
    fn insert(&mut self, id: &str) {
        self.0.insert(Self::hash(id));
    }
    fn contains(&self, id: &str) -> bool {
        self.0.contains(&Self::hash(id))
    }
}

/// The deployment's links do not all hold (`ngbak consistency` exits with 3).
#[derive(Debug, thiserror::Error)]
#[error("the deployment is inconsistent: {broken} broken link(s) (see the report)")]
pub struct Inconsistent {
    pub broken: u64,
}

impl ConsistencyReport {
    /// `Err(Inconsistent)` when a checked rule found a broken link.
    pub fn into_result(self) -> std::result::Result<Self, Inconsistent> {
        match self.rules.iter().map(|r| r.broken).sum() {
            0 => Ok(self),
            broken => Err(Inconsistent { broken }),
        }
    }
}

/// Checks every rule over `deployment`.
pub async fn check(deployment: &mut dyn Deployment, layout: &Layout) -> Result<ConsistencyReport> {
    // First pass: what can be linked to.
    let (mut nodes, mut vectors, mut chunks, mut docs) =
        (Ids::default(), Ids::default(), Ids::default(), Ids::default());
    let mut present = std::collections::BTreeSet::new();
    if deployment.nodes(&mut |name, _| nodes.insert(name)).await? {
        present.insert(Store::Graph);
    }
    if deployment.entity_vectors(&mut |id, _| vectors.insert(id)).await? {
        present.insert(Store::EntityVectors);
    }
    if deployment.chunks(&mut |key, _| chunks.insert(key)).await? {
        present.insert(Store::Chunks);
    }
    if deployment.docs(&mut |key| docs.insert(key)).await? {
        present.insert(Store::Docs);
    }
    let has = |stores: &[Store]| stores.iter().all(|s| present.contains(s));

    // Second pass: what links, each link checked against the sets.
    let mut report = ConsistencyReport::default();
    let mut node_has_vector = RuleOutcome::new("node_has_entity_vector", "every graph node has its entity vector");
    let mut vector_is_node = RuleOutcome::new("entity_vector_is_node", "every entity vector's entity_name is a node");
    let mut sources_are_chunks =
        RuleOutcome::new("source_id_is_chunk", "every chunk id in a source_id is a text_chunks key");
    let mut chunk_has_doc = RuleOutcome::new("chunk_has_doc", "every text chunk's full_doc_id is a full_docs key");
    let mut members_are_nodes =
        RuleOutcome::new("report_member_is_node", "every community report's member nodes are nodes");
    let sources = |outcome: &mut RuleOutcome, owner: &str, source_id: &str| {
        for chunk in source_id.split(layout.separator.as_str()).map(str::trim).filter(|c| !c.is_empty()) {
            outcome.link(chunks.contains(chunk), || format!("{chunk} (in the source_id of {owner})"));
        }
    };
    if has(&[Store::Graph]) {
        let check_vectors = has(&[Store::EntityVectors]);
        let check_chunks = has(&[Store::Chunks]);
        deployment
            .nodes(&mut |name, source_id| {
                if check_vectors {
                    let id = layout.entity_vector_id(name);
                    node_has_vector.link(vectors.contains(&id), || format!("{name} (no vector {id})"));
                }
                if check_chunks {
                    sources(&mut sources_are_chunks, &format!("node {name}"), source_id);
                }
            })
            .await?;
        if check_chunks {
            deployment
                .relationships(&mut |from, to, source_id| {
                    sources(&mut sources_are_chunks, &format!("relationship {from} -> {to}"), source_id);
                })
                .await?;
        }
    }
    if has(&[Store::Graph, Store::EntityVectors]) {
        deployment
            .entity_vectors(&mut |id, name| match name {
                Some(name) => vector_is_node.link(nodes.contains(name), || format!("{id} (entity_name {name})")),
                None => vector_is_node.link(false, || format!("{id} (no entity_name)")),
            })
            .await?;
    }
    if has(&[Store::Chunks, Store::Docs]) {
        deployment
            .chunks(&mut |key, doc| match doc {
                Some(doc) => chunk_has_doc.link(docs.contains(doc), || format!("{key} (full_doc_id {doc})")),
                None => chunk_has_doc.link(false, || format!("{key} (no full_doc_id)")),
            })
            .await?;
    }
    if has(&[Store::Graph]) {
        let reports = deployment
            .reports(&mut |key, members| {
                for member in members {
                    members_are_nodes.link(nodes.contains(member), || format!("{member} (in report {key})"));
                }
            })
            .await?;
        if !reports {
            members_are_nodes.not_checked("no community reports");
        }
    } else {
        members_are_nodes.not_checked("no graph");
    }
    let missing = |stores: &[Store]| -> Option<String> {
        let absent: Vec<String> =
            stores.iter().filter(|s| !present.contains(s)).map(|s| s.name().to_string()).collect();
        (!absent.is_empty()).then(|| format!("no {}", absent.join(", no ")))
    };
    for (outcome, needs) in [
        (&mut node_has_vector, &[Store::Graph, Store::EntityVectors][..]),
        (&mut vector_is_node, &[Store::Graph, Store::EntityVectors][..]),
        (&mut sources_are_chunks, &[Store::Graph, Store::Chunks][..]),
        (&mut chunk_has_doc, &[Store::Chunks, Store::Docs][..]),
    ] {
        if let Some(why) = missing(needs) {
            outcome.not_checked(&why);
        }
    }
    report.rules = vec![node_has_vector, vector_is_node, sources_are_chunks, chunk_has_doc, members_are_nodes];
    report.consistent = report.rules.iter().all(|r| r.broken == 0);
    report.checked = report.rules.iter().any(|r| r.checked);
    Ok(report)
}
