//! A nano-graphrag-shaped graph — two labels per node, `RELATED` edges written with MERGE between
//! random ends (repeats and self-loops), float weights from the whole [0, 1) range — restores
//! exactly in every mode: merge and replace, scoped and whole database, into an emptied and into a
//! non-empty database. Against the real Bolt server `make test` starts (ArcadeDB), or a real Neo4j.

mod common;

use common::*;
use neo4rs::{query, BoltType};
use ngbak::backends::neo4j::{value, Neo4jExporter, Neo4jRestorer};
use ngbak::backends::RestoreMode;
use ngbak::pipeline::backup::{run_backup, BackupOptions};
use ngbak::pipeline::restore::{run_restore, RestoreOptions};
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

/// Wraps the real restorer and changes one restored property after the write, before the check:
/// the read-back must catch it and name the record.
struct AlteringRestorer {
    inner: Neo4jRestorer,
    graph: neo4rs::Graph,
    label: String,
}

#[async_trait::async_trait]
impl ngbak::backends::Restorer for AlteringRestorer {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn target(&self) -> String {
        self.inner.target()
    }
    async fn preflight(&mut self, b: &ngbak::archive::BackendManifest) -> anyhow::Result<()> {
        self.inner.preflight(b).await
    }
    async fn check_entry(
        &mut self,
        e: &ngbak::archive::EntryRecord,
        body: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
        each: &mut ngbak::backends::RecordSink<'_>,
    ) -> anyhow::Result<()> {
        self.inner.check_entry(e, body, each).await
    }
    async fn prepare(&mut self, b: &ngbak::archive::BackendManifest) -> anyhow::Result<()> {
        self.inner.prepare(b).await
    }
    async fn restore_entry(
        &mut self,
        e: &ngbak::archive::EntryRecord,
        body: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
    ) -> anyhow::Result<()> {
        self.inner.restore_entry(e, body).await
    }
    async fn finish(&mut self) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
        let stats = self.inner.finish().await?;
        let q = format!(
            "MATCH (n:`{}` {{id: '\"ENTITY 7\"'}}) SET n.description = 'changed behind the restore'",
            self.label
        );
        self.graph.run(query(&q)).await?;
        Ok(stats)
    }
    async fn read_back(&mut self, each: &mut ngbak::backends::RecordSink<'_>) -> anyhow::Result<bool> {
        self.inner.read_back(each).await
    }
    async fn cleanup(&mut self) -> anyhow::Result<()> {
        self.inner.cleanup().await
    }
}

#[tokio::test]
async fn a_target_changed_between_write_and_check_fails_the_restore_and_names_the_record() {
    let _one = ONE_WRITER.lock().await;
    let graph = bolt_graph().await;
    let ns = format!("GraphRAG_a{}", unique());
    seed_nano_graphrag(&graph, &ns, 60, 100, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let id = backup(store.clone(), Some(&ns)).await;
    for mode in [RestoreMode::Replace, RestoreMode::Merge] {
        let mut settings = bolt_settings(&ns, mode);
        settings.label = Some(ns.clone());
        let restorer =
            AlteringRestorer { inner: Neo4jRestorer::new(settings), graph: bolt_graph().await, label: ns.clone() };
        let err =
            run_restore(store.as_ref(), &id, vec![Box::new(restorer)], &RestoreOptions::default()).await.unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("the restored neo4j differs from backup"), "{mode:?}: {text}");
        assert!(text.contains("changed behind the restore") && text.contains("ENTITY 7"), "{mode:?}: {text}");
        // The failed check still removed the temporary keys.
        assert_no_import_leftovers(&graph).await;
    }
    // Without the alteration the same restore verifies, and says so.
    let report = run_restore(
        store.as_ref(),
        &id,
        vec![Box::new(Neo4jRestorer::new(bolt_settings(&ns, RestoreMode::Merge)))],
        &RestoreOptions::default(),
    )
    .await
    .unwrap();
    let neo = &report.backends["neo4j"];
    assert_eq!(neo.verified, Some(true));
    assert_eq!(neo.digest_found, neo.digest_expected);
    assert_eq!(neo.digest_found.unwrap().records, 60 + graph_state(&graph, &ns).await.1.len() as u64);
    clear_label(&graph, &ns).await;
}

mod properties {
    //! Random property values of every Bolt type — floats from the whole bit space, any Unicode,
    //! nested lists, temporal and spatial values — through the real server and back, bit for bit.
    //! `PROPTEST_CASES` sets how many graphs (default 24 of 16 nodes each here).
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    fn float() -> impl Strategy<Value = f64> {
        // Every bit pattern, NaNs included (compared by class, since Bolt servers may canonicalise them).
        any::<u64>().prop_map(f64::from_bits)
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            float().prop_map(|f| json!({ "float": if f.is_nan() { json!("NaN") } else if f.is_infinite() { json!(if f > 0.0 { "Infinity" } else { "-Infinity" }) } else { json!(f) } })),
            any::<i64>().prop_map(|i| json!({ "int": i })),
            any::<String>().prop_map(Value::String),
            any::<bool>().prop_map(Value::Bool),
            (-100_000i32..100_000).prop_map(|d| json!({ "date": (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(d as i64)).format("%Y-%m-%d").to_string() })),
            (0u32..86_400, 0u32..1_000_000_000).prop_map(|(s, n)| json!({ "local_time": chrono::NaiveTime::from_num_seconds_from_midnight_opt(s, n).unwrap().format("%H:%M:%S%.9f").to_string() })),
            (float(), float()).prop_filter("finite", |(x, y)| x.is_finite() && y.is_finite()).prop_map(|(x, y)| json!({ "point": { "srid": 7203, "x": x, "y": y } })),
            (any::<i32>(), any::<i32>(), any::<i32>(), 0i64..1_000_000_000).prop_map(|(m, d, s, n)| json!({ "duration": [m as i64, d as i64, s as i64, n] })),
        ]
    }

    fn property() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => scalar(),
            1 => prop::collection::vec(float().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!({ "float": f })), 0..6).prop_map(|l| json!({ "list": l })),
            1 => prop::collection::vec(any::<String>(), 0..4).prop_map(|l| json!({ "list": l })),
        ]
    }

    #[tokio::test]
    async fn random_values_of_every_type_restore_bit_for_bit() {
        let _one = ONE_WRITER.lock().await;
        let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24);
        let graph = bolt_graph().await;
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        let strategy = prop::collection::vec(prop::collection::btree_map("[a-z]{1,8}", property(), 1..6), 16);
        for _ in 0..cases {
            let nodes = strategy.new_tree(&mut runner).unwrap().current();
            let ns = format!("GraphRAG_p{}", unique());
            for (i, props) in nodes.iter().enumerate() {
                let mut props: serde_json::Map<String, Value> = props.clone().into_iter().collect();
                props.insert("id".into(), json!(format!("n{i}")));
                let q = format!("CREATE (n:`{ns}`:Thing) SET n = $props");
                graph.run(query(&q).param("props", BoltType::Map(value::decode_map(&props).unwrap()))).await.unwrap();
            }
            let q = format!("MATCH (a:`{ns}` {{id: 'n0'}}), (b:`{ns}`) CREATE (a)-[:RELATED {{w: $w}}]->(b)");
            graph.run(query(&q).param("w", 0.1f64 + 0.2f64)).await.unwrap();
            let before = graph_state(&graph, &ns).await;
            let dir = tempfile::tempdir().unwrap();
            let store = local_store(dir.path());
            let id = backup(store.clone(), Some(&ns)).await;
            clear_label(&graph, &ns).await;
            restore(store.as_ref(), &id, Some(&ns), RestoreMode::Replace).await;
            let after = graph_state(&graph, &ns).await;
            assert_graph_eq(&after, &before, "random values, replace");
            clear_label(&graph, &ns).await;
        }
    }
}
