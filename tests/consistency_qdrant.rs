//! `ngbak consistency` with the entity vectors in Qdrant and the rest of the deployment in a
//! nano-graphrag working directory (graph and key-value files, no `vdb_entities.json`): the
//! points are written as nano-graphrag's `QdrantStorage` writes them (a random UUID as the point
//! id, the `ent-` id and `entity_name` in the payload), into the Qdrant test double, and checked
//! through the real binary.

mod common;
#[path = "support/qdrant_double.rs"]
mod qdrant_double;

use ::qdrant_client::qdrant::*;
use ::qdrant_client::Qdrant;
use common::*;
use md5::Digest;
use qdrant_double::QdrantDouble;
use serde_json::{json, Value as Json};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

const KEY: &str = "ngbak-test-key";
/// More than a scroll page (256), so the points are read in several.
const NODES: usize = 300;

/// `compute_mdhash_id(name, prefix="ent-")`.
fn vector_id(name: &str) -> String {
    format!("ent-{}", hex::encode(md5::Md5::digest(name.as_bytes())))
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("\"ENTITY {i} & <CO> 'É'\"")).collect()
}

/// The working directory without the vectors: one document, one chunk per node, nodes in a chain.
fn write_workdir(dir: &Path, nodes: &[String]) {
    let mut graphml = String::from(
        "<?xml version='1.0' encoding='utf-8'?>\n<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n  \
         <key id=\"d2\" for=\"node\" attr.name=\"source_id\" attr.type=\"string\" />\n  \
         <key id=\"d5\" for=\"edge\" attr.name=\"source_id\" attr.type=\"string\" />\n  \
         <graph edgedefault=\"undirected\">\n",
    );
    for (i, name) in nodes.iter().enumerate() {
        graphml += &format!("    <node id=\"{}\">\n      <data key=\"d2\">chunk-{i}</data>\n    </node>\n", xml(name));
    }
    for i in 1..nodes.len() {
        graphml += &format!(
            "    <edge source=\"{}\" target=\"{}\">\n      <data key=\"d5\">chunk-{i}</data>\n    </edge>\n",
            xml(&nodes[i - 1]),
            xml(&nodes[i])
        );
    }
    graphml += "  </graph>\n</graphml>\n";
    std::fs::write(dir.join("graph_chunk_entity_relation.graphml"), graphml).unwrap();
    std::fs::write(dir.join("kv_store_full_docs.json"), json!({ "doc-0": { "content": "text" } }).to_string()).unwrap();
    let chunks: serde_json::Map<String, Json> =
        (0..nodes.len()).map(|i| (format!("chunk-{i}"), json!({ "content": "…", "full_doc_id": "doc-0" }))).collect();
    std::fs::write(dir.join("kv_store_text_chunks.json"), Json::Object(chunks).to_string()).unwrap();
    let reports = json!({ "0": { "report_string": "…", "level": 0, "nodes": nodes, "edges": [] } });
    std::fs::write(dir.join("kv_store_community_reports.json"), reports.to_string()).unwrap();
}

/// A point id for `name`: random in nano-graphrag (`uuid4().hex`), fixed here so a test can name it.
fn point_id_of(name: &str) -> String {
    uuid::Uuid::from_bytes(md5::Md5::digest(name.as_bytes()).into()).simple().to_string()
}

fn client(double: &QdrantDouble) -> Qdrant {
    Qdrant::from_url(&double.grpc_url).api_key(KEY).skip_compatibility_check().build().unwrap()
}

/// The `entities` collection as nano-graphrag's `QdrantStorage.upsert` fills it: point id
/// `uuid.uuid4().hex`, payload `{"id": "ent-…", "entity_name": …}` (its meta field); the points
/// of `unnamed` without the payload `id`.
async fn seed_entities(client: &Qdrant, entities: &[String], unnamed: &[String]) {
    client
        .create_collection(CreateCollection {
            collection_name: "entities".into(),
            vectors_config: Some(VectorsConfig {
                config: Some(vectors_config::Config::Params(VectorParams {
                    size: 4,
                    distance: Distance::Cosine as i32,
                    ..Default::default()
                })),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let points: Vec<PointStruct> = entities
        .iter()
        .enumerate()
        .map(|(i, name)| PointStruct {
            id: Some(PointId { point_id_options: Some(point_id::PointIdOptions::Uuid(point_id_of(name))) }),
            payload: HashMap::from_iter(
                [("id", vector_id(name)), ("entity_name", name.clone())]
                    .into_iter()
                    .filter(|(field, _)| *field != "id" || !unnamed.contains(name))
                    .map(|(field, value)| (field.to_string(), Value::from(value))),
            ),
            vectors: Some(Vectors {
                vectors_options: Some(vectors::VectorsOptions::Vector(Vector {
                    vector: Some(vector::Vector::Dense(DenseVector { data: vec![i as f32, 1.0, 0.5, -0.25] })),
                    ..Default::default()
                })),
            }),
        })
        .collect();
    for chunk in points.chunks(100) {
        client
            .upsert_points(UpsertPoints {
                collection_name: "entities".into(),
                wait: Some(true),
                points: chunk.to_vec(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

/// The working directory and the double's points, as flags.
fn deployment(dir: &Path, double: &QdrantDouble) -> Vec<String> {
    let flags = ["--kv-dir", dir.to_str().unwrap(), "--qdrant-url", &double.rest_url, "--qdrant-grpc-url"];
    let mut flags: Vec<String> = flags.map(String::from).to_vec();
    flags.extend([double.grpc_url.clone(), "--qdrant-api-key".into(), KEY.into()]);
    flags
}

fn run(args: &[String]) -> std::process::Output {
    ngbak(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}

/// Runs `ngbak consistency --kv-dir DIR --qdrant-url … --json`: (exit code, report).
fn check(dir: &Path, double: &QdrantDouble) -> (i32, Json) {
    let mut args = vec!["consistency".to_string(), "--json".into()];
    args.extend(deployment(dir, double));
    exit_and_report(&run(&args))
}

/// Backs the working directory and the points up (points mode) into a directory store and runs
/// `ngbak consistency --backup --json` on the archive: (exit code, report).
fn check_archived(dir: &Path, double: &QdrantDouble) -> (i32, Json) {
    let store = tempfile::tempdir().unwrap();
    let store = store.path().to_str().unwrap().to_string();
    let mut backup: Vec<String> =
        ["--store", &store, "backup", "--id", "with_points", "--qdrant-mode", "points", "--json"]
            .map(String::from)
            .to_vec();
    backup.extend(deployment(dir, double));
    json_of(&run(&backup));
    exit_and_report(&ngbak(&["--store", &store, "consistency", "--backup", "with_points", "--json"], &[]))
}

fn rule(report: &Json, name: &str) -> Json {
    report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == name).unwrap().clone()
}

fn broken(report: &Json, name: &str) -> BTreeSet<String> {
    rule(report, name)["first_broken"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_vectors_in_qdrant_are_checked_against_the_graph() {
    let double = QdrantDouble::start(Some(KEY), "1.15.4").await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = names(NODES);
    write_workdir(dir.path(), &nodes);
    seed_entities(&client(&double), &nodes, &[]).await;

    let (code, report) = tokio::task::block_in_place(|| check(dir.path(), &double));
    assert_eq!(code, 0, "{report}");
    for name in ["node_has_entity_vector", "entity_vector_is_node"] {
        let outcome = rule(&report, name);
        assert_eq!(outcome["checked"], json!(true), "{name}: {outcome}");
        assert_eq!(outcome["holds"], json!(NODES), "{name}: {outcome}");
        assert_eq!(outcome["broken"], json!(0), "{name}: {outcome}");
    }
    assert_eq!(double.vectors_sent(), 0, "the check reads payloads, never vectors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_and_a_deleted_entity_vector_are_named() {
    let double = QdrantDouble::start(Some(KEY), "1.15.4").await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = names(NODES);
    write_workdir(dir.path(), &nodes);
    // No vector for one node; a vector for an entity the graph no longer has.
    let lonely = nodes[117].clone();
    let ghost = "\"DELETED ENTITY\"".to_string();
    let mut entities: Vec<String> = nodes.iter().filter(|n| **n != lonely).cloned().collect();
    entities.push(ghost.clone());
    seed_entities(&client(&double), &entities, &[]).await;

    let (code, report) = tokio::task::block_in_place(|| check(dir.path(), &double));
    assert_eq!(code, 3, "{report}");
    assert_eq!(
        broken(&report, "node_has_entity_vector"),
        BTreeSet::from([format!("{lonely} (no vector {})", vector_id(&lonely))])
    );
    assert_eq!(
        broken(&report, "entity_vector_is_node"),
        BTreeSet::from([format!("{} (entity_name {ghost})", vector_id(&ghost))])
    );
    for (name, holds) in [("node_has_entity_vector", NODES - 1), ("entity_vector_is_node", NODES - 1)] {
        let outcome = rule(&report, name);
        assert_eq!((outcome["holds"].clone(), outcome["broken"].clone()), (json!(holds), json!(1)), "{outcome}");
    }
    for name in ["source_id_is_chunk", "chunk_has_doc", "report_member_is_node"] {
        assert!(broken(&report, name).is_empty(), "{name}: {report}");
    }
    // Archived in points mode, the points' payloads are read from the archive: the same report.
    assert_eq!(tokio::task::block_in_place(|| check_archived(dir.path(), &double)), (code, report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_entities_collection_the_vector_rules_are_not_checked() {
    let double = QdrantDouble::start(Some(KEY), "1.15.4").await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = names(5);
    write_workdir(dir.path(), &nodes);
    // Another collection is there (none of the deployment's); the entities' is not.
    client(&double)
        .create_collection(CreateCollection { collection_name: "unrelated".into(), ..Default::default() })
        .await
        .unwrap();

    let (code, report) = tokio::task::block_in_place(|| check(dir.path(), &double));
    assert_eq!(code, 0, "{report}");
    for name in ["node_has_entity_vector", "entity_vector_is_node"] {
        let outcome = rule(&report, name);
        assert_eq!(outcome["checked"], json!(false), "{name}: {outcome}");
        assert_eq!(outcome["not_checked"], json!("no entity vectors"), "{name}: {outcome}");
        assert_eq!(outcome["holds"], json!(0), "{name}: {outcome}");
    }
    assert_eq!(rule(&report, "source_id_is_chunk")["holds"], json!(5 + 4), "{report}");
}

/// A point whose payload lacks the `ent-` id is handed over under its point id (neither nano-
/// graphrag's random UUID nor LightRAG's hashed one gives the `ent-` id back): its node is
/// reported without a vector, and a point of a deleted entity is named by its point id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_without_its_ent_id_is_named_by_its_point_id() {
    let double = QdrantDouble::start(Some(KEY), "1.15.4").await;
    let dir = tempfile::tempdir().unwrap();
    let nodes = names(3);
    write_workdir(dir.path(), &nodes);
    let ghost = "\"DELETED ENTITY\"".to_string();
    let entities = [nodes.clone(), vec![ghost.clone()]].concat();
    seed_entities(&client(&double), &entities, &[nodes[2].clone(), ghost.clone()]).await;

    let (code, report) = tokio::task::block_in_place(|| check(dir.path(), &double));
    assert_eq!(code, 3, "{report}");
    assert_eq!(
        broken(&report, "node_has_entity_vector"),
        BTreeSet::from([format!("{} (no vector {})", nodes[2], vector_id(&nodes[2]))])
    );
    assert_eq!(
        broken(&report, "entity_vector_is_node"),
        BTreeSet::from([format!("{} (entity_name {ghost})", point_id_of(&ghost))])
    );
    assert_eq!(rule(&report, "entity_vector_is_node")["holds"], json!(3), "{report}");
}
