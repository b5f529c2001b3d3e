//! A working directory as a GraphRAG deployment for the consistency check: the GraphML graph,
//! the NanoVectorDB files and the key-value JSON files, each read as a stream (one node, vector
//! or entry at a time), never loaded whole. The same readers serve an archive's `jsonkv` entries
//! (the files byte for byte): [`role_of`] names what a file is, [`facts_of`] reads it.

use super::json;
use crate::consistency::{Deployment, Fact, FactSink, Kind, Layout, Store, Want};
use anyhow::{bail, Context, Result};
use quick_xml::events::Event;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// What a nano-graphrag file holds of the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Graph,
    /// A key-value namespace, whose entries are facts of this kind (chunks, docs, reports).
    Kv(Kind),
    /// A NanoVectorDB file, whose items are vectors of this kind.
    Vectors(Kind),
}

impl Role {
    pub fn store(self) -> Store {
        match self {
            Role::Graph => Store::Graph,
            Role::Kv(Kind::Chunk) => Store::Chunks,
            Role::Kv(Kind::Doc) => Store::Docs,
            Role::Kv(_) => Store::Reports,
            Role::Vectors(Kind::EntityVector) => Store::EntityVectors,
            Role::Vectors(Kind::RelationshipVector) => Store::RelationshipVectors,
            Role::Vectors(_) => Store::ChunkVectors,
        }
    }

    /// The kinds of fact the file holds.
    fn kinds(self) -> &'static [Kind] {
        match self {
            Role::Graph => &[Kind::Node, Kind::Relationship],
            Role::Kv(Kind::Chunk) => &[Kind::Chunk],
            Role::Kv(Kind::Doc) => &[Kind::Doc],
            Role::Kv(_) => &[Kind::Report],
            Role::Vectors(Kind::EntityVector) => &[Kind::EntityVector],
            Role::Vectors(Kind::RelationshipVector) => &[Kind::RelationshipVector],
            Role::Vectors(_) => &[Kind::ChunkVector],
        }
    }
}

/// What the file `name` (a working directory's, or an archive entry's last part) holds under
/// `layout`, if anything.
pub fn role_of(name: &str, layout: &Layout) -> Option<Role> {
    if name.ends_with(".graphml") {
        return Some(Role::Graph);
    }
    if let Some(namespace) = name.strip_prefix("kv_store_").and_then(|n| n.strip_suffix(".json")) {
        let kind = [(&layout.chunks, Kind::Chunk), (&layout.docs, Kind::Doc), (&layout.reports, Kind::Report)]
            .into_iter()
            .find_map(|(ns, kind)| (ns == namespace).then_some(kind))?;
        return Some(Role::Kv(kind));
    }
    let namespace = name.strip_prefix("vdb_").and_then(|n| n.strip_suffix(".json"))?;
    [
        (&layout.entities, Kind::EntityVector),
        (&layout.relationships, Kind::RelationshipVector),
        (&layout.chunk_vectors, Kind::ChunkVector),
    ]
    .into_iter()
    .find_map(|(ns, kind)| (ns == namespace).then_some(Role::Vectors(kind)))
}

/// Hands the facts of the kinds in `want` that a file of `role` holds to `each`, reading it
/// once as a stream (nothing when it holds none of them).
pub fn facts_of(role: Role, reader: impl Read, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
    if !want.any(role.kinds()) {
        return Ok(());
    }
    let reader = BufReader::with_capacity(1 << 20, reader);
    match role {
        Role::Graph => read_graphml(reader, want, each),
        Role::Kv(Kind::Chunk) => {
            #[derive(Deserialize)]
            struct Chunk {
                full_doc_id: Option<String>,
            }
            json::each_entry::<Chunk>(reader, &mut |key, c| each(Fact::Chunk { key, full_doc_id: c.full_doc_id.as_deref() }))?;
            Ok(())
        }
        Role::Kv(Kind::Doc) => Ok(json::each_entry::<IgnoredAny>(reader, &mut |key, _| each(Fact::Doc { key }))?),
        Role::Kv(_) => {
            #[derive(Deserialize)]
            struct Report {
                #[serde(default)]
                nodes: Vec<String>,
            }
            json::each_entry::<Report>(reader, &mut |key, r| each(Fact::Report { key, members: &r.nodes }))?;
            Ok(())
        }
        Role::Vectors(kind) => {
            #[derive(Deserialize)]
            struct Item {
                #[serde(rename = "__id__")]
                id: String,
                entity_name: Option<String>,
                src_id: Option<String>,
                tgt_id: Option<String>,
            }
            each_item::<Item>(reader, &mut |item| {
                let id = item.id.as_str();
                each(match kind {
                    Kind::EntityVector => Fact::EntityVector { id, entity_name: item.entity_name.as_deref() },
                    Kind::RelationshipVector => {
                        Fact::RelationshipVector { id, from: item.src_id.as_deref(), to: item.tgt_id.as_deref() }
                    }
                    _ => Fact::ChunkVector { id },
                })
            })
        }
    }
}

/// The deployment in `dir`, named by `layout`.
pub struct WorkdirDeployment {
    dir: PathBuf,
    layout: Layout,
}

impl WorkdirDeployment {
    pub fn new(dir: &Path, layout: &Layout) -> Self {
        WorkdirDeployment { dir: dir.to_path_buf(), layout: layout.clone() }
    }

    /// Every file of the deployment with its role: nano-graphrag's graph file (or else the first
    /// GraphML file by name), the key-value and vector files the layout names.
    fn files(&self) -> Result<Vec<(PathBuf, Role)>> {
        let listing = std::fs::read_dir(&self.dir).with_context(|| format!("cannot read {}", self.dir.display()))?;
        let mut names: Vec<String> =
            listing.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        let graph = names
            .iter()
            .find(|n| n.as_str() == "graph_chunk_entity_relation.graphml")
            .or_else(|| names.iter().find(|n| n.ends_with(".graphml")))
            .cloned();
        Ok(names
            .into_iter()
            .filter_map(|name| {
                let role = role_of(&name, &self.layout)?;
                (role != Role::Graph || Some(&name) == graph.as_ref()).then(|| (self.dir.join(name), role))
            })
            .collect())
    }
}

/// The working directory's files in the archive (`kv/json/`, `graph/graphml/`,
/// `vector/nano-vectordb/`, byte for byte), as facts.
pub struct ArchivedFiles {
    layout: Layout,
}

impl ArchivedFiles {
    pub fn new(layout: &Layout) -> Self {
        ArchivedFiles { layout: layout.clone() }
    }

    fn role(&self, path: &str) -> Option<Role> {
        let (folder, name) = path.rsplit_once('/')?;
        matches!(folder, "kv/json" | "graph/graphml" | "vector/nano-vectordb").then_some(())?;
        role_of(name, &self.layout)
    }
}

impl crate::consistency::ArchivedFacts for ArchivedFiles {
    fn stores_of(&self, path: &str) -> Vec<Store> {
        self.role(path).map(Role::store).into_iter().collect()
    }

    fn entry(&mut self, path: &str, body: &mut dyn Read, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
        match self.role(path) {
            Some(role) => facts_of(role, body, want, each).with_context(|| format!("reading {path}")),
            None => Ok(()),
        }
    }
}

/// The files are read on the calling thread: a check is a command of its own, nothing waits on it.
#[async_trait::async_trait]
impl Deployment for WorkdirDeployment {
    async fn stores(&mut self) -> Result<BTreeSet<Store>> {
        Ok(self.files()?.into_iter().map(|(_, role)| role.store()).collect())
    }

    async fn walk(&mut self, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
        for (path, role) in self.files()? {
            let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            facts_of(role, file, want, each).with_context(|| format!("reading {}", path.display()))?;
        }
        Ok(())
    }
}

/// Streams the nodes and edges of a GraphML file (those `want` asks for), with the value of
/// their `source_id` data.
fn read_graphml(reader: impl BufRead, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum Element {
        Node,
        Edge,
    }
    let (nodes, edges) = (want.0.contains(&Kind::Node), want.0.contains(&Kind::Relationship));
    let mut emit = |element: Element, a: &str, b: &str, source_id: &str| match element {
        Element::Node if nodes => each(Fact::Node { name: a, source_id }),
        Element::Edge if edges => each(Fact::Relationship { from: a, to: b, source_id }),
        _ => {}
    };
    let mut reader = quick_xml::Reader::from_reader(reader);
    let mut buf = Vec::new();
    // `<key id="d2" for="node" attr.name="source_id">`: the data keys that hold it, per element.
    let (mut node_keys, mut edge_keys) = (Vec::<String>::new(), Vec::<String>::new());
    // The element being read (its id, or its ends) and its `source_id`; buffers are reused, and
    // the text of other data (descriptions: most of the file) is never collected.
    let mut open: Option<Element> = None;
    let (mut a, mut b, mut source_id, mut text) = (String::new(), String::new(), String::new(), String::new());
    let mut capturing = false;
    loop {
        let event = reader.read_event_into(&mut buf)?;
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Eof => return Ok(()),
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "key" => {
                let is_source_id = attr(&e, "attr.name")?.as_deref() == Some("source_id");
                let (Some(id), Some(kind)) = (attr(&e, "id")?, attr(&e, "for")?) else { continue };
                match kind.as_ref() {
                    _ if !is_source_id => {}
                    "node" => node_keys.push(id.into_owned()),
                    "edge" => edge_keys.push(id.into_owned()),
                    "all" => {
                        node_keys.push(id.to_string());
                        edge_keys.push(id.into_owned());
                    }
                    _ => {}
                }
            }
            Event::Start(e) | Event::Empty(e) if matches!(e.name().as_ref(), "node" | "edge") => {
                let element = if e.name().as_ref() == "node" { Element::Node } else { Element::Edge };
                a.clear();
                b.clear();
                source_id.clear();
                match element {
                    Element::Node => a.push_str(&attr(&e, "id")?.context("a node without an id")?),
                    Element::Edge => {
                        a.push_str(&attr(&e, "source")?.context("an edge without a source")?);
                        b.push_str(&attr(&e, "target")?.context("an edge without a target")?);
                    }
                }
                if empty {
                    emit(element, &a, &b, "");
                } else {
                    open = Some(element);
                }
            }
            Event::Start(e) if e.name().as_ref() == "data" => {
                let keys = match open {
                    Some(Element::Node) => &node_keys,
                    Some(Element::Edge) => &edge_keys,
                    None => continue,
                };
                let key = attr(&e, "key")?;
                capturing = key.is_some_and(|key| keys.iter().any(|k| *k == key));
                text.clear();
            }
            Event::Text(t) if capturing => text.push_str(&t.xml10_content()),
            Event::CData(t) if capturing => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if capturing => match r.resolve_char_ref()? {
                Some(c) => text.push(c),
                None => {
                    let name: &str = &r;
                    match quick_xml::escape::resolve_predefined_entity(name) {
                        Some(s) => text.push_str(s),
                        None => bail!("unknown entity &{name}; in a data value"),
                    }
                }
            },
            Event::End(e) if capturing && e.name().as_ref() == "data" => {
                capturing = false;
                std::mem::swap(&mut source_id, &mut text);
            }
            Event::End(e) if matches!(e.name().as_ref(), "node" | "edge") => {
                if let Some(element) = open.take() {
                    emit(element, &a, &b, &source_id);
                }
            }
            _ => {}
        }
        buf.clear();
    }
}

/// The unescaped value of an element's attribute `name`, if it has one.
fn attr<'e>(e: &'e quick_xml::events::BytesStart<'_>, name: &str) -> Result<Option<std::borrow::Cow<'e, str>>> {
    for a in e.attributes() {
        let a = a?;
        if AsRef::<str>::as_ref(&a.key) == name {
            return Ok(Some(a.normalized_value(quick_xml::XmlVersion::Implicit1_0)?));
        }
    }
    Ok(None)
}

/// Hands each element of the NanoVectorDB file's `data` array to `each`.
fn each_item<T: DeserializeOwned>(reader: impl Read, each: &mut dyn FnMut(T)) -> Result<()> {
    Ok(json::each_item(reader, "data", each)?)
}
