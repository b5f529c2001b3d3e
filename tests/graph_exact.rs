//! A nano-graphrag-shaped graph — two labels per node, `RELATED` edges written with MERGE between
//! random ends (repeats and self-loops), float weights from the whole [0, 1) range — restores
//! exactly in every mode: merge and replace, scoped and whole database, into an emptied and into a
//! non-empty database. Against the real Bolt server `make test` starts (ArcadeDB), or a real Neo4j.

mod common;

use common::*;
use neo4rs::{query, BoltType};
use ngbak::pipeline::backup::{run_backup, BackupOptions};
use ngbak::pipeline::restore::{run_restore, RestoreOptions};
use ngbak::sources::neo4j::{value, Neo4jExporter, Neo4jRestorer};
use ngbak::sources::RestoreMode;
use serde_json::{json, Value};
use std::sync::Arc;

/// One writer at a time against the server (see graph_roundtrip.rs for why).
static ONE_WRITER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TYPES: [&str; 4] = ["\"PERSON\"", "\"ORGANIZATION\"", "\"EVENT\"", "\"GEO\""];

/// Writes the graph the way nano-graphrag does: `MERGE (n:ns:type {id})`, `MERGE (s)-[:RELATED]->(t)`.
async fn seed_nano_graphrag(graph: &neo4rs::Graph, ns: &str, nodes: usize, edges: usize, seed: u64) {
    let mut rng = SplitMix(seed);
    for t in TYPES {
        let rows: Vec<BoltType> = (0..nodes)
            .filter(|i| TYPES[i % 4] == t)
            .map(|i| {
                let props = json!({
                    "id": format!("\"ENTITY {i}\""),
                    "entity_type": t,
                    "description": format!("Entity {i}<SEP>seen again «ü»"),
                    "source_id": format!("chunk-{:x}", i / 3),
                    "weight": {"float": rng.unit_float()},
                    "rank": {"int": (rng.next() >> 40) as i64},
                    "clusters": format!("[{{\"level\": 0, \"cluster\": {}}}]", i % 13),
                });
                bolt_row(&[("id", json!(format!("\"ENTITY {i}\""))), ("props", props)])
            })
            .collect();
        let q = format!(
            "UNWIND $rows AS row MERGE (n:`{ns}`:`{}` {{id: row.id}}) SET n += row.props",
            t.replace('`', "``")
        );
        graph.run(query(&q).param("rows", BoltType::List(neo4rs::BoltList { value: rows }))).await.unwrap();
    }
    let rows: Vec<BoltType> = (0..edges)
        .map(|k| {
            let (a, b) = if k % 97 == 0 {
                let a = rng.below(nodes);
                (a, a) // a self-loop
            } else {
                (rng.below(nodes), rng.below(nodes))
            };
            let props = json!({
                "weight": {"float": rng.unit_float() * 10.0},
                "description": format!("link {k}"),
                "source_id": "chunk-1",
                "order": {"int": 1},
            });
            bolt_row(&[
                ("a", json!(format!("\"ENTITY {a}\""))),
                ("b", json!(format!("\"ENTITY {b}\""))),
                ("props", props),
            ])
        })
        .collect();
    for chunk in rows.chunks(1000) {
        let q = format!(
            "UNWIND $rows AS row MATCH (s:`{ns}` {{id: row.a}}) MATCH (t:`{ns}` {{id: row.b}}) \
             MERGE (s)-[r:RELATED]->(t) SET r += row.props"
        );
        graph.run(query(&q).param("rows", BoltType::List(neo4rs::BoltList { value: chunk.to_vec() }))).await.unwrap();
    }
}

fn bolt_row(fields: &[(&str, Value)]) -> BoltType {
    let mut m = neo4rs::BoltMap::new();
    for (k, v) in fields {
        let bolt = match v {
            Value::Object(o) => BoltType::Map(value::decode_map(o).unwrap()),
            other => value::decode(other).unwrap(),
        };
        m.put((*k).into(), bolt);
    }
    BoltType::Map(m)
}

/// A small deterministic generator: random but repeatable test data.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Like Python's `random.random()`: 53 random bits in [0, 1).
    fn unit_float(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

async fn backup(store: Arc<dyn ngbak::store::ObjectStore>, label: Option<&str>) -> ngbak::id::BackupId {
    let mut settings = bolt_settings("unused", RestoreMode::Merge);
    settings.label = label.map(str::to_string);
    let summary =
        run_backup(store, vec![Box::new(Neo4jExporter::new(settings))], BackupOptions::default()).await.unwrap();
    summary.backup_id
}

async fn restore(
    store: &dyn ngbak::store::ObjectStore,
    id: &ngbak::id::BackupId,
    label: Option<&str>,
    mode: RestoreMode,
) {
    let mut settings = bolt_settings("unused", mode);
    settings.label = label.map(str::to_string);
    let restorer = Neo4jRestorer::new(settings);
    let report = run_restore(store, id, vec![Box::new(restorer)], &RestoreOptions::default()).await;
    if let Err(e) = report {
        panic!("restore ({mode:?}, scope {label:?}) failed: {e:#}");
    }
}

#[tokio::test]
async fn a_nano_graphrag_graph_restores_exactly_in_merge_and_replace_mode() {
    let _one = ONE_WRITER.lock().await;
    let graph = bolt_graph().await;
    let ns = format!("GraphRAG_x{}", unique());
    seed_nano_graphrag(&graph, &ns, 3000, 6000, 7).await;
    let before = graph_state(&graph, &ns).await;
    assert_eq!(before.0.len(), 3000);
    assert!(before.1.len() > 5000, "{} relationships", before.1.len());
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let id = backup(store.clone(), Some(&ns)).await;

    for mode in [RestoreMode::Merge, RestoreMode::Replace] {
        // Into an emptied scope.
        clear_label(&graph, &ns).await;
        restore(store.as_ref(), &id, Some(&ns), mode).await;
        assert_graph_eq(&graph_state(&graph, &ns).await, &before, &format!("{mode:?} into an emptied scope"));
        // Into a scope that already holds the graph (a restore over itself changes nothing).
        restore(store.as_ref(), &id, Some(&ns), mode).await;
        assert_graph_eq(&graph_state(&graph, &ns).await, &before, &format!("{mode:?} over the same graph"));
    }
    // Into a scope where some nodes changed and some were deleted: merge brings the archived ones back.
    graph.run(query(&format!("MATCH (n:`{ns}`) WHERE n.rank % 3 = 0 SET n.weight = 0.5"))).await.unwrap();
    graph.run(query(&format!("MATCH (n:`{ns}`) WHERE n.rank % 5 = 0 DETACH DELETE n"))).await.unwrap();
    restore(store.as_ref(), &id, Some(&ns), RestoreMode::Merge).await;
    assert_graph_eq(&graph_state(&graph, &ns).await, &before, "merge into a changed scope");
    assert_no_import_leftovers(&graph).await;
    clear_label(&graph, &ns).await;
}

#[tokio::test]
async fn a_whole_database_restores_exactly_in_merge_and_replace_mode() {
    let _one = ONE_WRITER.lock().await;
    let graph = bolt_graph().await;
    graph.run(query("MATCH (n) DETACH DELETE n")).await.unwrap();
    let ns = format!("GraphRAG_w{}", unique());
    seed_nano_graphrag(&graph, &ns, 800, 1600, 11).await;
    let before = graph_state(&graph, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let id = backup(store.clone(), None).await;
    for mode in [RestoreMode::Merge, RestoreMode::Replace] {
        graph.run(query("MATCH (n) DETACH DELETE n")).await.unwrap();
        restore(store.as_ref(), &id, None, mode).await;
        assert_graph_eq(&graph_state(&graph, &ns).await, &before, &format!("{mode:?}, whole database"));
    }
    assert_no_import_leftovers(&graph).await;
    graph.run(query("MATCH (n) DETACH DELETE n")).await.unwrap();
}

/// Nodes by id (labels, properties) and relationships as sorted lines, floats compared by bits.
async fn graph_state(graph: &neo4rs::Graph, label: &str) -> GraphState {
    snapshot_graph(graph, label).await
}

fn assert_graph_eq(after: &GraphState, before: &GraphState, what: &str) {
    let differing: Vec<_> = before
        .0
        .iter()
        .filter(|(k, v)| after.0.get(*k) != Some(v))
        .map(|(k, v)| (k, v, after.0.get(k)))
        .take(3)
        .collect();
    assert!(
        differing.is_empty() && after.0.len() == before.0.len(),
        "{what}: {} nodes after, {} before; first differences (id, before, after): {differing:#?}",
        after.0.len(),
        before.0.len()
    );
    let missing: Vec<_> = before.1.iter().filter(|r| !after.1.contains(r)).take(3).collect();
    assert!(
        after.1 == before.1,
        "{what}: {} relationships after, {} before; first missing: {missing:#?}",
        after.1.len(),
        before.1.len()
    );
}

async fn clear_label(graph: &neo4rs::Graph, label: &str) {
    graph.run(query(&format!("MATCH (n:`{label}`) DETACH DELETE n"))).await.unwrap();
}

async fn assert_no_import_leftovers(graph: &neo4rs::Graph) {
    let q = "MATCH (n) WHERE n.__ngbak_src IS NOT NULL OR n.__ngbak_run IS NOT NULL RETURN count(n) AS c";
    let mut r = graph.execute(query(q)).await.unwrap();
    let c: i64 = r.next().await.unwrap().unwrap().get("c").unwrap();
    assert_eq!(c, 0, "the temporary import key was left behind");
}
