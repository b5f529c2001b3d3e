//! The check: the rules that can run (their stores are there) say which facts to collect as id
//! hashes in a first walk and which to check against them in a second; a broken link is named as
//! it is met (the first [`super::NAMED`]), so memory holds the hash sets alone.

use super::facts::{Deployment, Fact, Kind, Store, Want};
use super::report::{ConsistencyReport, RuleOutcome};
use super::Layout;
use anyhow::Result;
use std::collections::{BTreeSet, HashSet};

/// A set of ids as 16-byte hashes (XXH3-128: a collision would hide a broken link, never invent
/// one, and is out of reach at any deployment's size).
#[derive(Default)]
struct Ids(HashSet<u128>);

impl Ids {
    fn hash(id: &str) -> u128 {
        xxhash_rust::xxh3::xxh3_128(id.as_bytes())
    }
    fn pair(from: &str, to: &str) -> u128 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(from.as_bytes());
        h.update(&[0]);
        h.update(to.as_bytes());
        h.digest128()
    }
    fn insert(&mut self, id: &str) {
        self.0.insert(Self::hash(id));
    }
    fn contains(&self, id: &str) -> bool {
        self.0.contains(&Self::hash(id))
    }
}

/// The rules, in report order: name, description, the stores each needs.
const RULES: [(&str, &str, &[Store]); 8] = [
    ("node_has_entity_vector", "every graph node has its entity vector", &[Store::Graph, Store::EntityVectors]),
    ("entity_vector_is_node", "every entity vector's entity_name is a node", &[Store::Graph, Store::EntityVectors]),
    ("source_id_is_chunk", "every chunk id in a source_id is a text_chunks key", &[Store::Graph, Store::Chunks]),
    ("chunk_has_doc", "every text chunk's full_doc_id is a full_docs key", &[Store::Chunks, Store::Docs]),
    ("report_member_is_node", "every community report's member nodes are nodes", &[Store::Graph, Store::Reports]),
    (
        "relationship_vector_is_relationship",
        "(LightRAG) every relationship vector's ends are a relationship of the graph",
        &[Store::Graph, Store::RelationshipVectors],
    ),
    ("chunk_vector_is_chunk", "every chunk vector is a text_chunks key", &[Store::ChunkVectors, Store::Chunks]),
    ("chunk_has_vector", "every text chunk has its chunk vector", &[Store::ChunkVectors, Store::Chunks]),
];

const NODE_VECTOR: usize = 0;
const VECTOR_NODE: usize = 1;
const SOURCES: usize = 2;
const CHUNK_DOC: usize = 3;
const MEMBERS: usize = 4;
const RELATIONSHIP_VECTOR: usize = 5;
const CHUNK_VECTOR_CHUNK: usize = 6;
const CHUNK_HAS_VECTOR: usize = 7;

/// What the first walk collects.
#[derive(Default)]
struct Sets {
    nodes: Ids,
    relationships: Ids,
    entity_vectors: Ids,
    chunk_vectors: Ids,
    chunks: Ids,
    docs: Ids,
}

/// Checks every rule over `deployment`.
pub async fn check(deployment: &mut dyn Deployment, layout: &Layout) -> Result<ConsistencyReport> {
    let present = deployment.stores().await?;
    let mut rules: Vec<RuleOutcome> =
        RULES.iter().map(|(name, description, _)| RuleOutcome::new(name, description)).collect();
    let runs: Vec<bool> = RULES.iter().map(|(_, _, needs)| needs.iter().all(|s| present.contains(s))).collect();
    for ((rule, (_, _, needs)), runs) in rules.iter_mut().zip(RULES.iter()).zip(&runs) {
        if !runs {
            let absent: Vec<&str> = needs.iter().filter(|s| !present.contains(s)).map(|s| s.name()).collect();
            rule.not_checked(&format!("no {}", absent.join(", no ")));
        }
    }
    let run = |i: usize| runs[i];

    // First walk: what can be linked to.
    let mut first = BTreeSet::new();
    let mut second = BTreeSet::new();
    let mut ask = |runs: bool, collect: &[Kind], check: &[Kind]| {
        if runs {
            first.extend(collect.iter().copied());
            second.extend(check.iter().copied());
        }
    };
    ask(run(NODE_VECTOR), &[Kind::EntityVector], &[Kind::Node]);
    ask(run(VECTOR_NODE), &[Kind::Node], &[Kind::EntityVector]);
    ask(run(SOURCES), &[Kind::Chunk], &[Kind::Node, Kind::Relationship]);
    ask(run(CHUNK_DOC), &[Kind::Doc], &[Kind::Chunk]);
    ask(run(MEMBERS), &[Kind::Node], &[Kind::Report]);
    ask(run(RELATIONSHIP_VECTOR), &[Kind::Relationship], &[Kind::RelationshipVector]);
    ask(run(CHUNK_VECTOR_CHUNK), &[Kind::Chunk], &[Kind::ChunkVector]);
    ask(run(CHUNK_HAS_VECTOR), &[Kind::ChunkVector], &[Kind::Chunk]);

    let mut sets = Sets::default();
    if !first.is_empty() {
        let want = Want(first);
        deployment
            .walk(&want, &mut |fact| match fact {
                Fact::Node { name, .. } => sets.nodes.insert(name),
                Fact::Relationship { from, to, .. } => {
                    sets.relationships.0.insert(Ids::pair(from, to));
                }
                Fact::EntityVector { id, .. } => sets.entity_vectors.insert(id),
                Fact::ChunkVector { id } => sets.chunk_vectors.insert(id),
                Fact::Chunk { key, .. } => sets.chunks.insert(key),
                Fact::Doc { key } => sets.docs.insert(key),
                Fact::RelationshipVector { .. } | Fact::Report { .. } => {}
            })
            .await?;
    }

    // Second walk: what links, each link checked against the sets.
    if !second.is_empty() {
        let want = Want(second);
        let sources = |rule: &mut RuleOutcome, owner: &dyn Fn() -> String, source_id: &str| {
            for chunk in source_id.split(layout.separator.as_str()).map(str::trim).filter(|c| !c.is_empty()) {
                rule.link(sets.chunks.contains(chunk), || format!("{chunk} (in the source_id of {})", owner()));
            }
        };
        deployment
            .walk(&want, &mut |fact| match fact {
                Fact::Node { name, source_id } => {
                    if run(NODE_VECTOR) {
                        let id = layout.entity_vector_id(name);
                        rules[NODE_VECTOR]
                            .link(sets.entity_vectors.contains(&id), || format!("{name} (no vector {id})"));
                    }
                    if run(SOURCES) {
                        sources(&mut rules[SOURCES], &|| format!("node {name}"), source_id);
                    }
                }
                Fact::Relationship { from, to, source_id } if run(SOURCES) => {
                    sources(&mut rules[SOURCES], &|| format!("relationship {from} -> {to}"), source_id);
                }
                Fact::EntityVector { id, entity_name } if run(VECTOR_NODE) => match entity_name {
                    Some(name) => {
                        rules[VECTOR_NODE].link(sets.nodes.contains(name), || format!("{id} (entity_name {name})"))
                    }
                    None => rules[VECTOR_NODE].link(false, || format!("{id} (no entity_name)")),
                },
                Fact::Chunk { key, full_doc_id } => {
                    if run(CHUNK_DOC) {
                        match full_doc_id {
                            Some(doc) => {
                                rules[CHUNK_DOC].link(sets.docs.contains(doc), || format!("{key} (full_doc_id {doc})"))
                            }
                            None => rules[CHUNK_DOC].link(false, || format!("{key} (no full_doc_id)")),
                        }
                    }
                    if run(CHUNK_HAS_VECTOR) {
                        rules[CHUNK_HAS_VECTOR]
                            .link(sets.chunk_vectors.contains(key), || format!("{key} (no chunk vector)"));
                    }
                }
                Fact::Report { key, members } if run(MEMBERS) => {
                    for member in members {
                        rules[MEMBERS].link(sets.nodes.contains(member), || format!("{member} (in report {key})"));
                    }
                }
                Fact::RelationshipVector { id, from, to } if run(RELATIONSHIP_VECTOR) => match (from, to) {
                    (Some(from), Some(to)) => {
                        let holds = sets.relationships.0.contains(&Ids::pair(from, to))
                            || sets.relationships.0.contains(&Ids::pair(to, from));
                        rules[RELATIONSHIP_VECTOR].link(holds, || format!("{id} ({from} -> {to})"));
                    }
                    _ => rules[RELATIONSHIP_VECTOR].link(false, || format!("{id} (no src_id/tgt_id)")),
                },
                Fact::ChunkVector { id } if run(CHUNK_VECTOR_CHUNK) => {
                    rules[CHUNK_VECTOR_CHUNK].link(sets.chunks.contains(id), || format!("{id} (no text chunk)"));
                }
                _ => {}
            })
            .await?;
    }
    let mut report = ConsistencyReport { rules, ..Default::default() };
    report.consistent = report.rules.iter().all(|r| r.broken == 0);
    report.checked = report.rules.iter().any(|r| r.checked);
    Ok(report)
}
