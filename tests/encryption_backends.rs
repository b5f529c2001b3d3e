//! Encrypted round trips through the graph and the vector backends, with two recipients: a Bolt
//! graph (ArcadeDB) and Qdrant's points (through `QdrantDouble`, the test double of a Qdrant
//! server, named so: a real Qdrant does not install here), each restored with either identity and
//! compared with what was backed up.

mod common;
#[path = "support/qdrant_double.rs"]
mod qdrant_double;

use common::*;
use qdrant_double::QdrantDouble;

fn identity() -> (String, String) {
    use age::secrecy::ExposeSecret;
    let made = age::x25519::Identity::generate();
    (made.to_string().expose_secret().to_string(), made.to_public().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_round_trips_encrypted_to_two_recipients() {
    use neo4rs::query;
    let ((secret1, r1), (secret2, r2)) = (identity(), identity());
    let label = format!("GraphRAG_enc{}", unique());
    let graph = bolt_graph().await;
    let create = format!(
        "CREATE (a:`{label}`:PERSON {{id: 'A', description: 'kept secret'}})-[:RELATED {{weight: 0.5}}]->(b:`{label}`:ORG {{id: 'B'}})"
    );
    graph.run(query(&create)).await.unwrap();
    let before = snapshot_graph(&graph, &label).await;
    let s = bolt_settings(&label, ngbak::backends::RestoreMode::Merge);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let flags = [
        "--neo4j-uri",
        &s.uri,
        "--neo4j-user",
        &s.user,
        "--neo4j-password",
        &s.password,
        "--neo4j-database",
        &s.database,
        "--neo4j-label",
        &label,
    ];
    let base = ["--store", store.to_str().unwrap()];
    let backed =
        ngbak(&[&base[..], &["backup", "--id", "g", "--encrypt-to", &r1, "--encrypt-to", &r2], &flags].concat(), &[]);
    assert!(backed.status.success(), "{}", String::from_utf8_lossy(&backed.stderr));
    for secret in [&secret1, &secret2] {
        graph.run(query(&format!("MATCH (n:`{label}`) DETACH DELETE n"))).await.unwrap();
        let restored = ngbak(
            &[&base[..], &["restore", "g", "--graph-mode", "replace", "--no-safety-backup", "--json"], &flags].concat(),
            &[("NGBAK_IDENTITY", secret.as_str())],
        );
        let report = json_of(&restored);
        assert_eq!(report["backends"]["neo4j"]["verified"], true, "{report}");
        assert_eq!(snapshot_graph(&graph, &label).await, before);
    }
    graph.run(query(&format!("MATCH (n:`{label}`) DETACH DELETE n"))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_round_trip_encrypted_into_another_server() {
    let ((_, r1), (secret2, r2)) = (identity(), identity());
    let source = QdrantDouble::start(Some("k"), "1.15.4").await;
    source.seed_hybrid("entities", 300, 16);
    let target = QdrantDouble::start(Some("k"), "1.15.4").await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let flags = |q: &QdrantDouble| {
        vec![
            "--qdrant-url".to_string(),
            q.rest_url.clone(),
            "--qdrant-grpc-url".into(),
            q.grpc_url.clone(),
            "--qdrant-api-key".into(),
            "k".into(),
            "--qdrant-mode".into(),
            "points".into(),
        ]
    };
    let run =
        |args: Vec<String>, envs: &[(&str, &str)]| ngbak(&args.iter().map(String::as_str).collect::<Vec<_>>(), envs);
    let mut backup: Vec<String> =
        ["--store", store.to_str().unwrap(), "backup", "--id", "v", "--encrypt-to", &r1, "--encrypt-to", &r2, "--json"]
            .map(String::from)
            .to_vec();
    backup.extend(flags(&source));
    let summary = json_of(&run(backup, &[]));
    let digest = summary["backends"]["qdrant"]["content_digest"].clone();
    assert!(digest["records"].as_u64().unwrap() >= 300, "{summary}");
    let mut restore: Vec<String> =
        ["--store", store.to_str().unwrap(), "restore", "v", "--no-safety-backup", "--json"].map(String::from).to_vec();
    restore.extend(flags(&target));
    let report = json_of(&run(restore, &[("NGBAK_IDENTITY", secret2.as_str())]));
    let restored = &report["backends"]["qdrant"];
    assert_eq!(restored["verified"], true, "{report}");
    assert_eq!(restored["digest_found"], digest, "the target's points read back differ from the source's");
}
