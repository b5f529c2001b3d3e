//! What a deployment hands over to the check: which stores it holds (cheaply, before reading),
//! and its facts, one at a time, of the kinds asked for. Every reader (a working directory, the
//! live stores, an archive) speaks this one small interface.

use anyhow::Result;
use std::collections::BTreeSet;

/// A store of a GraphRAG deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Store {
    Graph,
    EntityVectors,
    /// LightRAG's relationship vectors.
    RelationshipVectors,
    /// LightRAG's (and nano-graphrag's naive RAG's) chunk vectors.
    ChunkVectors,
    Chunks,
    Docs,
    Reports,
}

impl Store {
    pub fn name(self) -> &'static str {
        match self {
            Store::Graph => "graph",
            Store::EntityVectors => "entity vectors",
            Store::RelationshipVectors => "relationship vectors",
            Store::ChunkVectors => "chunk vectors",
            Store::Chunks => "text chunks",
            Store::Docs => "full documents",
            Store::Reports => "community reports",
        }
    }
}

/// The kinds of fact, to ask for some of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Node,
    Relationship,
    EntityVector,
    RelationshipVector,
    ChunkVector,
    Chunk,
    Doc,
    Report,
}

/// One fact, borrowed from the reader's buffer for the length of the call.
#[derive(Debug, PartialEq)]
pub enum Fact<'a> {
    /// A graph node: its name (nano-graphrag's `id`) and its `source_id`.
    Node {
        name: &'a str,
        source_id: &'a str,
    },
    /// A graph relationship: its ends and its `source_id`.
    Relationship {
        from: &'a str,
        to: &'a str,
        source_id: &'a str,
    },
    EntityVector {
        id: &'a str,
        entity_name: Option<&'a str>,
    },
    RelationshipVector {
        id: &'a str,
        from: Option<&'a str>,
        to: Option<&'a str>,
    },
    ChunkVector {
        id: &'a str,
    },
    /// A `text_chunks` entry: its key and its `full_doc_id`.
    Chunk {
        key: &'a str,
        full_doc_id: Option<&'a str>,
    },
    Doc {
        key: &'a str,
    },
    /// A community report: its key and its member nodes.
    Report {
        key: &'a str,
        members: &'a [String],
    },
}

impl Fact<'_> {
    pub fn kind(&self) -> Kind {
        match self {
            Fact::Node { .. } => Kind::Node,
            Fact::Relationship { .. } => Kind::Relationship,
            Fact::EntityVector { .. } => Kind::EntityVector,
            Fact::RelationshipVector { .. } => Kind::RelationshipVector,
            Fact::ChunkVector { .. } => Kind::ChunkVector,
            Fact::Chunk { .. } => Kind::Chunk,
            Fact::Doc { .. } => Kind::Doc,
            Fact::Report { .. } => Kind::Report,
        }
    }
}

/// A fact that owns its text, to send between threads (an archive's facts are parsed on a
/// blocking thread and handed over on the walk's).
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedFact {
    Node { name: String, source_id: String },
    Relationship { from: String, to: String, source_id: String },
    EntityVector { id: String, entity_name: Option<String> },
    RelationshipVector { id: String, from: Option<String>, to: Option<String> },
    ChunkVector { id: String },
    Chunk { key: String, full_doc_id: Option<String> },
    Doc { key: String },
    Report { key: String, members: Vec<String> },
}

impl From<Fact<'_>> for OwnedFact {
    fn from(fact: Fact<'_>) -> Self {
        let own = |s: Option<&str>| s.map(str::to_string);
        match fact {
            Fact::Node { name, source_id } => OwnedFact::Node { name: name.into(), source_id: source_id.into() },
            Fact::Relationship { from, to, source_id } => {
                OwnedFact::Relationship { from: from.into(), to: to.into(), source_id: source_id.into() }
            }
            Fact::EntityVector { id, entity_name } => {
                OwnedFact::EntityVector { id: id.into(), entity_name: own(entity_name) }
            }
            Fact::RelationshipVector { id, from, to } => {
                OwnedFact::RelationshipVector { id: id.into(), from: own(from), to: own(to) }
            }
            Fact::ChunkVector { id } => OwnedFact::ChunkVector { id: id.into() },
            Fact::Chunk { key, full_doc_id } => OwnedFact::Chunk { key: key.into(), full_doc_id: own(full_doc_id) },
            Fact::Doc { key } => OwnedFact::Doc { key: key.into() },
            Fact::Report { key, members } => OwnedFact::Report { key: key.into(), members: members.to_vec() },
        }
    }
}

impl OwnedFact {
    pub fn as_fact(&self) -> Fact<'_> {
        match self {
            OwnedFact::Node { name, source_id } => Fact::Node { name, source_id },
            OwnedFact::Relationship { from, to, source_id } => Fact::Relationship { from, to, source_id },
            OwnedFact::EntityVector { id, entity_name } => {
                Fact::EntityVector { id, entity_name: entity_name.as_deref() }
            }
            OwnedFact::RelationshipVector { id, from, to } => {
                Fact::RelationshipVector { id, from: from.as_deref(), to: to.as_deref() }
            }
            OwnedFact::ChunkVector { id } => Fact::ChunkVector { id },
            OwnedFact::Chunk { key, full_doc_id } => Fact::Chunk { key, full_doc_id: full_doc_id.as_deref() },
            OwnedFact::Doc { key } => Fact::Doc { key },
            OwnedFact::Report { key, members } => Fact::Report { key, members },
        }
    }
}

/// The kinds of fact a walk is asked for; a reader skips what is not asked (a file it need not
/// open, a query it need not run).
#[derive(Clone, Debug, Default)]
pub struct Want(pub BTreeSet<Kind>);

impl Want {
    pub fn any(&self, kinds: &[Kind]) -> bool {
        kinds.iter().any(|k| self.0.contains(k))
    }
}

/// Receives facts, one at a time (named so the async trait keeps it higher-ranked).
pub type FactSink<'s> = dyn for<'a> FnMut(Fact<'a>) + Send + 's;

/// A GraphRAG deployment's facts, read as a stream (a working directory, live stores, an
/// archive). A store may be spread over several backends (see [`Combined`]).
#[async_trait::async_trait]
pub trait Deployment: Send {
    /// The stores it holds, found without reading them (a file, a collection, a namespace).
    async fn stores(&mut self) -> Result<BTreeSet<Store>>;
    /// Hands every fact of the kinds in `want` to `each`.
    async fn walk(&mut self, want: &Want, each: &mut FactSink<'_>) -> Result<()>;
}

/// One deployment spread over several backends (a graph database, a vector store, a key-value
/// store): each store is what the backends that hold it hand over together.
pub struct Combined<'a>(pub Vec<Box<dyn Deployment + 'a>>);

#[async_trait::async_trait]
impl Deployment for Combined<'_> {
    async fn stores(&mut self) -> Result<BTreeSet<Store>> {
        let mut all = BTreeSet::new();
        for part in &mut self.0 {
            all.extend(part.stores().await?);
        }
        Ok(all)
    }

    async fn walk(&mut self, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
        for part in &mut self.0 {
            part.walk(want, &mut *each).await?;
        }
        Ok(())
    }
}

/// A backend's reader of its own archive entries, for the check of an archive: each entry's
/// body is handed over in archive order (on a blocking thread: the parsers are synchronous), and
/// the reader may keep state from one entry to the next (e.g. node ids before relationships).
pub trait ArchivedFacts: Send {
    /// The stores an entry at `path` holds (from the manifest, before reading).
    fn stores_of(&self, path: &str) -> Vec<Store>;
    /// Hands the facts of the kinds in `want` that the entry holds to `each`.
    fn entry(&mut self, path: &str, body: &mut dyn std::io::Read, want: &Want, each: &mut FactSink<'_>) -> Result<()>;
}
