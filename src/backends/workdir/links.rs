//! A working directory as a GraphRAG deployment for the consistency check: the GraphML graph,
//! the entities' NanoVectorDB file and the key-value JSON files, each read as a stream (one
//! node, vector or entry at a time), never loaded whole.

use crate::consistency::{Deployment, EdgeSink, IdSink, KeySink, Layout, NodeSink, ReportSink};
use anyhow::{bail, Context, Result};
use quick_xml::events::Event;
use super::json;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The deployment in `dir`, named by `layout`.
pub struct WorkdirDeployment {
    dir: PathBuf,
    layout: Layout,
}

impl WorkdirDeployment {
    pub fn new(dir: &Path, layout: &Layout) -> Self {
        WorkdirDeployment { dir: dir.to_path_buf(), layout: layout.clone() }
    }

    fn kv(&self, namespace: &str) -> PathBuf {
        self.dir.join(format!("kv_store_{namespace}.json"))
    }

    /// nano-graphrag's graph file, or the one GraphML file of the directory.
    fn graph(&self) -> Result<Option<PathBuf>> {
        let default = self.dir.join("graph_chunk_entity_relation.graphml");
        if default.is_file() {
            return Ok(Some(default));
        }
        let listing = std::fs::read_dir(&self.dir).with_context(|| format!("cannot read {}", self.dir.display()))?;
        let mut found: Vec<PathBuf> = listing
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "graphml"))
            .collect();
        found.sort();
        Ok(found.into_iter().next())
    }

    fn graph_elements(&self, each: &mut dyn FnMut(GraphElement<'_>)) -> Result<bool> {
        let Some(path) = self.graph()? else { return Ok(false) };
        read_graphml(&path, each).with_context(|| format!("reading the graph {}", path.display()))?;
        Ok(true)
    }
}

/// The files are read on the calling thread: a check is a command of its own, nothing waits on it.
#[async_trait::async_trait]
impl Deployment for WorkdirDeployment {
    async fn nodes(&mut self, each: &mut NodeSink<'_>) -> Result<bool> {
        self.graph_elements(&mut |element| {
            if let GraphElement::Node { id, source_id } = element {
                each(id, source_id);
            }
        })
    }

    async fn relationships(&mut self, each: &mut EdgeSink<'_>) -> Result<bool> {
        self.graph_elements(&mut |element| {
            if let GraphElement::Edge { source, target, source_id } = element {
                each(source, target, source_id);
            }
        })
    }

    async fn entity_vectors(&mut self, each: &mut KeySink<'_>) -> Result<bool> {
        #[derive(Deserialize)]
        struct Item {
            #[serde(rename = "__id__")]
            id: String,
            entity_name: Option<String>,
        }
        let path = self.dir.join(format!("vdb_{}.json", self.layout.entities));
        each_item_of::<Item>(&path, "data", &mut |item| each(&item.id, item.entity_name.as_deref()))
    }

    async fn chunks(&mut self, each: &mut KeySink<'_>) -> Result<bool> {
        #[derive(Deserialize)]
        struct Chunk {
            full_doc_id: Option<String>,
        }
        each_entry_of::<Chunk>(&self.kv(&self.layout.chunks), &mut |key, c| each(key, c.full_doc_id.as_deref()))
    }

    async fn docs(&mut self, each: &mut IdSink<'_>) -> Result<bool> {
        each_entry_of::<IgnoredAny>(&self.kv(&self.layout.docs), &mut |key, _| each(key))
    }

    async fn reports(&mut self, each: &mut ReportSink<'_>) -> Result<bool> {
        #[derive(Deserialize)]
        struct Report {
            #[serde(default)]
            nodes: Vec<String>,
        }
        each_entry_of::<Report>(&self.kv(&self.layout.reports), &mut |key, r| each(key, &r.nodes))
    }
}

/// A node or an edge of a GraphML graph, with its `source_id` (empty when it has none).
enum GraphElement<'a> {
    Node { id: &'a str, source_id: &'a str },
    Edge { source: &'a str, target: &'a str, source_id: &'a str },
}

/// Streams the nodes and edges of a GraphML file, with the value of their `source_id` data.
fn read_graphml(path: &Path, each: &mut dyn FnMut(GraphElement<'_>)) -> Result<()> {
    let file = std::fs::File::open(path)?;
    let mut reader = quick_xml::Reader::from_reader(BufReader::with_capacity(1 << 20, file));
    let mut buf = Vec::new();
    // `<key id="d2" for="node" attr.name="source_id">`: the data key that holds it, per element kind.
    let mut source_keys: std::collections::HashSet<(String, String)> = Default::default();
    // The element being read: ("node", id, "") or ("edge", source, target), and its data.
    let mut open: Option<(String, String, String)> = None;
    let mut data_key: Option<String> = None;
    let mut text = String::new();
    let mut source_id = String::new();
    loop {
        match reader.read_event_into(&mut buf)? {
            Event::Eof => return Ok(()),
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "key" => {
                let attrs = attributes(&e)?;
                if attrs.get("attr.name").map(String::as_str) == Some("source_id") {
                    let (Some(id), Some(kind)) = (attrs.get("id"), attrs.get("for")) else { continue };
                    source_keys.insert((kind.clone(), id.clone()));
                }
            }
            Event::Start(e) if matches!(e.name().as_ref(), "node" | "edge") => {
                let attrs = attributes(&e)?;
                let kind = e.name().as_ref().to_string();
                let (a, b) = match kind.as_str() {
                    "node" => (attrs.get("id").cloned().context("a node without an id")?, String::new()),
                    _ => (
                        attrs.get("source").cloned().context("an edge without a source")?,
                        attrs.get("target").cloned().context("an edge without a target")?,
                    ),
                };
                open = Some((kind, a, b));
                source_id.clear();
            }
            Event::Empty(e) if matches!(e.name().as_ref(), "node" | "edge") => {
                let attrs = attributes(&e)?;
                match e.name().as_ref() {
                    "node" => each(GraphElement::Node { id: attrs.get("id").context("a node without an id")?, source_id: "" }),
                    _ => each(GraphElement::Edge {
                        source: attrs.get("source").context("an edge without a source")?,
                        target: attrs.get("target").context("an edge without a target")?,
                        source_id: "",
                    }),
                }
            }
            Event::Start(e) if e.name().as_ref() == "data" => {
                data_key = attributes(&e)?.get("key").cloned();
                text.clear();
            }
            Event::Text(t) if data_key.is_some() => text.push_str(&t.xml10_content()),
            Event::CData(t) if data_key.is_some() => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if data_key.is_some() => match r.resolve_char_ref()? {
                Some(c) => text.push(c),
                None => {
                    let name: &str = &r;
                    match quick_xml::escape::resolve_predefined_entity(name) {
                        Some(s) => text.push_str(s),
                        None => bail!("unknown entity &{name}; in a data value"),
                    }
                }
            },
            Event::End(e) if e.name().as_ref() == "data" => {
                if let (Some(key), Some((kind, _, _))) = (data_key.take(), &open) {
                    if source_keys.contains(&(kind.clone(), key.clone())) || source_keys.contains(&("all".into(), key)) {
                        source_id = std::mem::take(&mut text);
                    }
                }
            }
            Event::End(e) if matches!(e.name().as_ref(), "node" | "edge") => {
                if let Some((kind, a, b)) = open.take() {
                    match kind.as_str() {
                        "node" => each(GraphElement::Node { id: &a, source_id: &source_id }),
                        _ => each(GraphElement::Edge { source: &a, target: &b, source_id: &source_id }),
                    }
                }
            }
            _ => {}
        }
        buf.clear();
    }
}

/// An element's attributes, unescaped.
fn attributes(e: &quick_xml::events::BytesStart<'_>) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for a in e.attributes() {
        let a = a?;
        let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0)?;
        out.insert(a.key.as_ref().to_string(), value.into_owned());
    }
    Ok(out)
}

/// Hands each entry of the JSON object in `path` to `each`, one at a time; `false` when there
/// is no such file.
fn each_entry_of<T: DeserializeOwned>(path: &Path, each: &mut dyn FnMut(&str, T)) -> Result<bool> {
    let Some(file) = open(path)? else { return Ok(false) };
    json::each_entry(file, each).with_context(|| format!("reading {}", path.display()))?;
    Ok(true)
}

/// Hands each element of the array under `field` of the JSON object in `path` to `each`.
fn each_item_of<T: DeserializeOwned>(path: &Path, field: &'static str, each: &mut dyn FnMut(T)) -> Result<bool> {
    let Some(file) = open(path)? else { return Ok(false) };
    json::each_item(file, field, each).with_context(|| format!("reading {}", path.display()))?;
    Ok(true)
}

fn open(path: &Path) -> Result<Option<BufReader<std::fs::File>>> {
    match std::fs::File::open(path) {
        Ok(f) => Ok(Some(BufReader::with_capacity(1 << 20, f))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("opening {}", path.display())),
    }
}
