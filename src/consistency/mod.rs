//! A GraphRAG is one state in three stores: its graph, its vectors and its key-value store are
//! linked by ids. This room checks the links (nano-graphrag's layout, shared by LightRAG):
//!
//! 1. every graph node has its entity vector (`ent-` + md5 of its name), and every entity
//!    vector's `entity_name` is a node;
//! 2. every chunk id in a node's or a relationship's `source_id` is a `text_chunks` key;
//! 3. every text chunk's `full_doc_id` is a `full_docs` key;
//! 4. every community report's member nodes are nodes;
//! 5. (LightRAG) every relationship vector's ends are a relationship, and the chunk vectors and
//!    the text chunks are the same ids.
//!
//! A deployment says which stores it holds, then hands its facts over in two walks
//! ([`Deployment`], `rules`): first what can be linked *to* (node names, vector ids, chunk and
//! document keys), kept as 16-byte hashes, never the records; then what links, each link checked
//! at once against those sets, so the first broken ones are named as they are met and memory
//! holds the sets alone. A rule whose stores are not there is reported as not checked, never as
//! holding. The readers live with their backends (`backends/*/links.rs`) and, for an archive,
//! in `pipeline::archived_links`.

mod facts;
mod report;
mod rules;
pub mod state;

pub use facts::{ArchivedFacts, Combined, Deployment, Fact, FactSink, Kind, OwnedFact, Store, Want};
pub use rules::check;

pub use report::{render, ConsistencyReport, RuleOutcome};

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
    /// The vector namespace of LightRAG's relationship vectors (`rel-` ids, `src_id`/`tgt_id`).
    #[arg(long = "layout-relationships", env = "NGBAK_LAYOUT_RELATIONSHIPS", default_value = "relationships")]
    pub relationships: String,
    /// The vector namespace of the chunk vectors (LightRAG; nano-graphrag's naive RAG).
    #[arg(long = "layout-chunk-vectors", env = "NGBAK_LAYOUT_CHUNK_VECTORS", default_value = "chunks")]
    pub chunk_vectors: String,
    /// Do not check the links at backup and after a restore (the check reads the stores again).
    #[arg(long = "no-link-check", env = "NGBAK_NO_LINK_CHECK")]
    pub no_link_check: bool,
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
            relationships: "relationships".into(),
            chunk_vectors: "chunks".into(),
            no_link_check: false,
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

/// CloudWatch metrics (EMF) of a backup's or a restore's consistency: `BrokenLinks` per checked
/// rule (an alarm on it catches a deployment drifting apart), and for a backup `StoresMoved`
/// (1 when the stores moved while it read them).
pub fn emit_rule_metrics(namespace: &str, function: &str, rules: &[crate::archive::RuleCounts], moved: Option<bool>) {
    use crate::telemetry::emit_metrics;
    for rule in rules.iter().filter(|r| r.checked) {
        emit_metrics(
            namespace,
            &[("Function", function), ("Rule", &rule.rule)],
            &[("BrokenLinks", "Count", rule.broken as f64)],
        );
    }
    if let Some(moved) = moved {
        emit_metrics(namespace, &[("Function", function)], &[("StoresMoved", "Count", f64::from(u8::from(moved)))]);
    }
}
