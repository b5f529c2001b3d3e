//! `ngbak consistency` over nano-graphrag working directories written in its layout: a
//! deployment with known breaks is reported with exactly those links broken, by name, and the
//! same deployment without them holds on every rule (through the real binary, on real files).

mod common;

use common::*;
use md5::Digest;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

/// A nano-graphrag deployment, as its working directory holds it.
#[derive(Clone, Debug)]
struct Deployment {
    docs: Vec<String>,
    /// (key, full_doc_id)
    chunks: Vec<(String, String)>,
    /// (name, chunk ids)
    nodes: Vec<(String, Vec<String>)>,
    /// (source, target, chunk ids)
    edges: Vec<(String, String, Vec<String>)>,
    /// (vector id, entity_name)
    vectors: Vec<(String, String)>,
    /// (key, member nodes)
    reports: Vec<(String, Vec<String>)>,
    /// LightRAG's relationship vectors (id, src_id, tgt_id) and chunk vectors, when it has them.
    relationship_vectors: Option<Vec<(String, String, String)>>,
    chunk_vectors: Option<Vec<String>>,
}

fn vector_id(name: &str) -> String {
    format!("ent-{}", hex::encode(md5::Md5::digest(name.as_bytes())))
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

impl Deployment {
    /// `n` entities (names quoted as nano-graphrag's are, with characters XML must escape), each
    /// from one or two of `n` chunks of `n / 3 + 1` documents, linked in a chain, in one report.
    fn consistent(n: usize, flavour: &str) -> Self {
        let docs: Vec<String> = (0..n / 3 + 1).map(|i| format!("doc-{i:04x}")).collect();
        let chunks: Vec<(String, String)> =
            (0..n).map(|i| (format!("chunk-{i:06x}"), docs[i % docs.len()].clone())).collect();
        let nodes: Vec<(String, Vec<String>)> = (0..n)
            .map(|i| {
                let name = format!("\"{flavour} {i} & <CO> 'É'\"");
                let mut sources = vec![chunks[i].0.clone()];
                if i > 0 {
                    sources.push(chunks[i - 1].0.clone());
                }
                (name, sources)
            })
            .collect();
        let edges = (1..n).map(|i| (nodes[i - 1].0.clone(), nodes[i].0.clone(), vec![chunks[i].0.clone()])).collect();
        let vectors = nodes.iter().map(|(name, _)| (vector_id(name), name.clone())).collect();
        let reports = vec![("0".to_string(), nodes.iter().map(|(name, _)| name.clone()).collect())];
        Deployment { docs, chunks, nodes, edges, vectors, reports, relationship_vectors: None, chunk_vectors: None }
    }

    /// As [`Deployment::consistent`], with LightRAG's relationship and chunk vectors.
    fn lightrag(n: usize) -> Self {
        let mut d = Deployment::consistent(n, "L");
        let rel_id = |a: &str, b: &str| format!("rel-{}", hex::encode(md5::Md5::digest(format!("{a}{b}").as_bytes())));
        d.relationship_vectors = Some(d.edges.iter().map(|(a, b, _)| (rel_id(a, b), a.clone(), b.clone())).collect());
        d.chunk_vectors = Some(d.chunks.iter().map(|(key, _)| key.clone()).collect());
        d
    }

    fn write(&self, dir: &Path) {
        let mut graphml = String::from(
            "<?xml version='1.0' encoding='utf-8'?>\n<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n  \
             <key id=\"d0\" for=\"node\" attr.name=\"entity_type\" attr.type=\"string\" />\n  \
             <key id=\"d2\" for=\"node\" attr.name=\"source_id\" attr.type=\"string\" />\n  \
             <key id=\"d5\" for=\"edge\" attr.name=\"source_id\" attr.type=\"string\" />\n  \
             <graph edgedefault=\"undirected\">\n",
        );
        for (name, sources) in &self.nodes {
            graphml += &format!(
                "    <node id=\"{}\">\n      <data key=\"d0\">\"PERSON\"</data>\n      <data key=\"d2\">{}</data>\n    </node>\n",
                xml(name),
                xml(&sources.join("<SEP>"))
            );
        }
        for (source, target, sources) in &self.edges {
            graphml += &format!(
                "    <edge source=\"{}\" target=\"{}\">\n      <data key=\"d5\">{}</data>\n    </edge>\n",
                xml(source),
                xml(target),
                xml(&sources.join("<SEP>"))
            );
        }
        graphml += "  </graph>\n</graphml>\n";
        std::fs::write(dir.join("graph_chunk_entity_relation.graphml"), graphml).unwrap();
        let data: Vec<Value> =
            self.vectors.iter().map(|(id, name)| json!({ "__id__": id, "entity_name": name })).collect();
        let vdb = json!({ "embedding_dim": 4, "data": data, "matrix": "" });
        std::fs::write(dir.join("vdb_entities.json"), vdb.to_string()).unwrap();
        let docs: serde_json::Map<String, Value> =
            self.docs.iter().map(|d| (d.clone(), json!({ "content": format!("text of {d}") }))).collect();
        std::fs::write(dir.join("kv_store_full_docs.json"), Value::Object(docs).to_string()).unwrap();
        let chunks: serde_json::Map<String, Value> = self
            .chunks
            .iter()
            .map(|(k, d)| (k.clone(), json!({ "tokens": 3, "content": "…", "chunk_order_index": 0, "full_doc_id": d })))
            .collect();
        std::fs::write(dir.join("kv_store_text_chunks.json"), Value::Object(chunks).to_string()).unwrap();
        let reports: serde_json::Map<String, Value> = self
            .reports
            .iter()
            .map(|(k, members)| (k.clone(), json!({ "report_string": "…", "level": 0, "nodes": members, "edges": [] })))
            .collect();
        std::fs::write(dir.join("kv_store_community_reports.json"), Value::Object(reports).to_string()).unwrap();
        if let Some(vectors) = &self.relationship_vectors {
            let data: Vec<Value> =
                vectors.iter().map(|(id, a, b)| json!({ "__id__": id, "src_id": a, "tgt_id": b })).collect();
            let vdb = json!({ "embedding_dim": 4, "data": data, "matrix": "" });
            std::fs::write(dir.join("vdb_relationships.json"), vdb.to_string()).unwrap();
        }
        if let Some(vectors) = &self.chunk_vectors {
            let data: Vec<Value> = vectors.iter().map(|id| json!({ "__id__": id })).collect();
            let vdb = json!({ "embedding_dim": 4, "data": data, "matrix": "" });
            std::fs::write(dir.join("vdb_chunks.json"), vdb.to_string()).unwrap();
        }
    }
}

/// Runs `ngbak consistency --json` on `dir`: (exit code, report).
fn check(dir: &Path) -> (i32, Value) {
    exit_and_report(&ngbak(&["consistency", "--kv-dir", dir.to_str().unwrap(), "--json"], &[]))
}

/// Backs `dir` up into a directory store and runs `ngbak consistency --backup --json` on the
/// archive: (exit code, report).
fn check_archived(dir: &Path) -> (i32, Value) {
    let store = tempfile::tempdir().unwrap();
    let store = store.path().to_str().unwrap();
    json_of(&ngbak(&["--store", store, "backup", "--id", "checked", "--kv-dir", dir.to_str().unwrap(), "--json"], &[]));
    exit_and_report(&ngbak(&["--store", store, "consistency", "--backup", "checked", "--json"], &[]))
}

fn broken(report: &Value, rule: &str) -> BTreeSet<String> {
    let outcome = report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == rule).unwrap();
    outcome["first_broken"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()).collect()
}

#[test]
fn a_consistent_deployment_holds_on_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = Deployment::consistent(12, "ENTITY");
    deployment.write(dir.path());
    let (code, report) = check(dir.path());
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["consistent"], json!(true));
    let holds: Vec<(String, u64)> = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["checked"] == json!(true))
        .map(|r| (r["rule"].as_str().unwrap().to_string(), r["holds"].as_u64().unwrap()))
        .collect();
    let sources = 12 + 11 + 11; // one or two chunks per node, one per relationship
    let expected = [
        ("node_has_entity_vector", 12),
        ("entity_vector_is_node", 12),
        ("source_id_is_chunk", sources),
        ("chunk_has_doc", 12),
        ("report_member_is_node", 12),
    ];
    assert_eq!(holds, expected.map(|(r, n)| (r.to_string(), n)).to_vec());
}

#[test]
fn the_five_kinds_of_break_are_named_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Deployment::consistent(9, "NODE");
    // A node without its vector, and a vector of an entity that is gone.
    let lonely = d.nodes[3].0.clone();
    d.vectors.retain(|(_, name)| name != &lonely);
    let ghost = "\"DELETED ENTITY\"".to_string();
    d.vectors.push((vector_id(&ghost), ghost.clone()));
    // A source_id naming a chunk that is gone.
    d.nodes[5].1.push("chunk-missing".into());
    // A chunk whose document is gone.
    d.chunks[7].1 = "doc-gone".into();
    // A report naming a node that is not in the graph.
    d.reports[0].1.push("\"NOT A NODE\"".into());
    d.write(dir.path());
    let (code, report) = check(dir.path());
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["consistent"], json!(false));
    let one = |s: String| BTreeSet::from([s]);
    assert_eq!(broken(&report, "node_has_entity_vector"), one(format!("{lonely} (no vector {})", vector_id(&lonely))));
    assert_eq!(broken(&report, "entity_vector_is_node"), one(format!("{} (entity_name {ghost})", vector_id(&ghost))));
    assert_eq!(
        broken(&report, "source_id_is_chunk"),
        one(format!("chunk-missing (in the source_id of node {})", d.nodes[5].0))
    );
    assert_eq!(broken(&report, "chunk_has_doc"), one(format!("{} (full_doc_id doc-gone)", d.chunks[7].0)));
    assert_eq!(broken(&report, "report_member_is_node"), one("\"NOT A NODE\" (in report 0)".to_string()));
    // The same deployment in an archive: the same report, read from the archive's entries.
    assert_eq!(check_archived(dir.path()), (code, report));
}

#[test]
fn lightrag_relationship_and_chunk_vectors_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Deployment::lightrag(8);
    let (code, report) = {
        d.write(dir.path());
        check(dir.path())
    };
    assert_eq!(code, 0, "{report}");
    let rule = |report: &Value, name: &str| {
        report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == name).unwrap().clone()
    };
    assert_eq!(rule(&report, "relationship_vector_is_relationship")["holds"], json!(7), "{report}");
    assert_eq!(rule(&report, "chunk_vector_is_chunk")["holds"], json!(8), "{report}");
    assert_eq!(rule(&report, "chunk_has_vector")["holds"], json!(8), "{report}");

    // A relationship vector whose relationship is gone (either direction counts: the graph is
    // undirected), a chunk without its vector, a vector of a chunk that is gone.
    let rels = d.relationship_vectors.as_mut().unwrap();
    rels[2] = (rels[2].0.clone(), rels[2].2.clone(), rels[2].1.clone());
    let (gone_id, a, b) = ("rel-gone".to_string(), d.nodes[0].0.clone(), d.nodes[5].0.clone());
    rels.push((gone_id.clone(), a.clone(), b.clone()));
    let chunks = d.chunk_vectors.as_mut().unwrap();
    let unvectored = chunks.remove(4);
    chunks.push("chunk-gone".into());
    d.write(dir.path());
    let (code, report) = check(dir.path());
    assert_eq!(code, 3, "{report}");
    let one = |s: String| BTreeSet::from([s]);
    assert_eq!(broken(&report, "relationship_vector_is_relationship"), one(format!("{gone_id} ({a} -> {b})")));
    assert_eq!(broken(&report, "chunk_has_vector"), one(format!("{unvectored} (no chunk vector)")));
    assert_eq!(broken(&report, "chunk_vector_is_chunk"), one("chunk-gone (no text chunk)".to_string()));
    assert_eq!(check_archived(dir.path()), (code, report));
}

#[test]
fn rules_whose_stores_are_missing_are_not_checked_never_passed() {
    let dir = tempfile::tempdir().unwrap();
    Deployment::consistent(4, "X").write(dir.path());
    std::fs::remove_file(dir.path().join("vdb_entities.json")).unwrap();
    std::fs::remove_file(dir.path().join("kv_store_full_docs.json")).unwrap();
    let (code, report) = check(dir.path());
    assert_eq!(code, 0, "{report}");
    for rule in ["node_has_entity_vector", "entity_vector_is_node", "chunk_has_doc"] {
        let outcome = report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == rule).unwrap();
        assert_eq!(outcome["checked"], json!(false), "{rule}: {outcome}");
        assert_eq!(outcome["holds"], json!(0), "{rule}: {outcome}");
    }
    let human = ngbak(&["consistency", "--kv-dir", dir.path().to_str().unwrap()], &[]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("not checked: no entity vectors") && text.contains("not checked: no full documents"),
        "{text}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// Breaks planted at random places are reported, all of them and nothing else.
    #[test]
    fn planted_breaks_and_only_they_are_reported(
        n in 3usize..40,
        unvectored in proptest::collection::btree_set(0usize..40, 0..4),
        orphan_chunks in proptest::collection::btree_set(0usize..40, 0..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Deployment::consistent(n, "P");
        let unvectored: BTreeSet<usize> = unvectored.into_iter().filter(|i| *i < n).collect();
        let orphan_chunks: BTreeSet<usize> = orphan_chunks.into_iter().filter(|i| *i < n).collect();
        let names: Vec<String> = unvectored.iter().map(|i| d.nodes[*i].0.clone()).collect();
        d.vectors.retain(|(_, name)| !names.contains(name));
        for i in &orphan_chunks {
            d.chunks[*i].1 = format!("doc-gone-{i}");
        }
        d.write(dir.path());
        let (code, report) = check(dir.path());
        let expect_broken = !unvectored.is_empty() || !orphan_chunks.is_empty();
        prop_assert_eq!(code, if expect_broken { 3 } else { 0 });
        let vectors: BTreeSet<String> = names.iter().map(|name| format!("{name} (no vector {})", vector_id(name))).collect();
        prop_assert_eq!(broken(&report, "node_has_entity_vector"), vectors);
        let docs: BTreeSet<String> = orphan_chunks.iter().map(|i| format!("{} (full_doc_id doc-gone-{i})", d.chunks[*i].0)).collect();
        prop_assert_eq!(broken(&report, "chunk_has_doc"), docs);
        for rule in ["entity_vector_is_node", "source_id_is_chunk", "report_member_is_node"] {
            prop_assert!(broken(&report, rule).is_empty(), "{}: {}", rule, report);
        }
        prop_assert_eq!(check_archived(dir.path()), (code, report));
    }
}

/// The sample working directory the demo backs up is a consistent nano-graphrag deployment.
#[test]
fn the_sample_working_directory_is_consistent() {
    let (code, report) = check(&sample_workdir());
    assert_eq!(code, 0, "{report}");
    // nano-graphrag keeps no relationship or chunk vectors (LightRAG does): those rules only
    // are not checked.
    let unchecked: Vec<&str> = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["checked"] != json!(true))
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        unchecked,
        ["relationship_vector_is_relationship", "chunk_vector_is_chunk", "chunk_has_vector"],
        "{report}"
    );
}

/// The same rules over live stores: the key-value store in the real Redis, the graph in the real
/// Bolt server (ArcadeDB here), with a known break each; the entity vectors are not read from a
/// vector store yet, so their rules say not checked.
#[tokio::test]
async fn redis_and_a_bolt_graph_are_checked_together() {
    use neo4rs::query;
    let prefix = format!("ngcons_{}", unique());
    let label = format!("Cons_{}", unique());
    let mut con = redis().await;
    let mut pipe = redis::pipe();
    pipe.set(format!("{prefix}:full_docs:doc-1"), json!({ "content": "text" }).to_string());
    pipe.set(format!("{prefix}:text_chunks:chunk-a"), json!({ "content": "a", "full_doc_id": "doc-1" }).to_string());
    pipe.set(format!("{prefix}:text_chunks:chunk-b"), json!({ "content": "b", "full_doc_id": "doc-gone" }).to_string());
    pipe.set(format!("{prefix}:community_reports:0"), json!({ "nodes": ["\"ADA\"", "\"NOBODY\""] }).to_string());
    pipe.query_async::<()>(&mut con).await.unwrap();
    let graph = bolt_graph().await;
    graph
        .run(query(&format!(
            "CREATE (a:`{label}` {{id: '\"ADA\"', source_id: 'chunk-a<SEP>chunk-b'}})-[:RELATED {{source_id: 'chunk-missing'}}]->(b:`{label}` {{id: '\"BABBAGE\"', source_id: 'chunk-a'}})"
        )))
        .await
        .unwrap();

    let pattern = format!("{prefix}:*");
    let bolt = bolt_settings(&label, ngbak::backends::RestoreMode::Merge);
    let out = ngbak(
        &[
            "consistency",
            "--json",
            "--redis-url",
            &redis_url(),
            "--redis-pattern",
            &pattern,
            "--neo4j-uri",
            &bolt.uri,
            "--neo4j-user",
            &bolt.user,
            "--neo4j-password",
            &bolt.password,
            "--neo4j-database",
            &bolt.database,
            "--neo4j-label",
            &label,
        ],
        &[],
    );
    let (code, report) = exit_and_report(&out);
    assert_eq!(code, 3, "{report}");
    let one = |s: &str| BTreeSet::from([s.to_string()]);
    assert_eq!(
        broken(&report, "source_id_is_chunk"),
        one("chunk-missing (in the source_id of relationship \"ADA\" -> \"BABBAGE\")")
    );
    assert_eq!(broken(&report, "chunk_has_doc"), one("chunk-b (full_doc_id doc-gone)"));
    assert_eq!(broken(&report, "report_member_is_node"), one("\"NOBODY\" (in report 0)"));
    let rule = |name: &str| report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == name).unwrap().clone();
    assert_eq!(rule("source_id_is_chunk")["holds"], json!(3), "{report}");
    assert_eq!(rule("node_has_entity_vector")["checked"], json!(false), "{report}");

    graph.run(query(&format!("MATCH (n:`{label}`) DETACH DELETE n"))).await.unwrap();
    delete_pattern(&mut con, &pattern).await;
}
