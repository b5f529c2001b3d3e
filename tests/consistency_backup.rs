//! Consistency inside the jobs, against the real Redis and the real Bolt server (ArcadeDB): a
//! backup taken while a writer adds keys and nodes is stored marked inconsistent with what moved;
//! `--consistent` exports again until the writer has stopped, or fails storing nothing when it
//! never does; a restore with `--only` beside a store that does not link up says so, and fails
//! with `--require-consistent` (through the real binary, into a directory store).

mod common;

use common::*;
use neo4rs::query;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The marks see a whole Redis database (its key count) and server (its write counter), so these
/// tests, which write on purpose, take turns, in a database of their own (keys with a time to
/// live that other tests leave in database 0 would move it as they expire).
static DB: &str = "/11";

fn db_url() -> String {
    format!("{}{DB}", redis_url().trim_end_matches('/'))
}

async fn db() -> redis::aio::MultiplexedConnection {
    ngbak::backends::redis::connect(&db_url()).await.unwrap()
}

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A deployment's scope in the shared servers: its Redis key prefix and its graph label.
struct Scope {
    prefix: String,
    label: String,
}

impl Scope {
    fn new() -> Self {
        Scope { prefix: format!("ngq_{}", unique()), label: format!("Quiet_{}", unique()) }
    }

    fn pattern(&self) -> String {
        format!("{}:*", self.prefix)
    }

    /// The backend flags of this scope: Redis under the prefix, the graph in the label.
    fn flags(&self, graph: bool) -> Vec<String> {
        let mut flags = vec!["--redis-url".into(), db_url(), "--redis-pattern".into(), self.pattern()];
        if graph {
            let bolt = bolt_settings(&self.label, ngbak::backends::RestoreMode::Merge);
            flags.extend([
                "--neo4j-uri".into(),
                bolt.uri,
                "--neo4j-user".into(),
                bolt.user,
                "--neo4j-password".into(),
                bolt.password,
                "--neo4j-database".into(),
                bolt.database,
                "--neo4j-label".into(),
                self.label.clone(),
            ]);
        }
        flags
    }

    /// A small consistent nano-graphrag deployment: two documents, four chunks, nodes from them.
    async fn seed(&self) {
        let mut con = db().await;
        let mut pipe = redis::pipe();
        for doc in ["doc-1", "doc-2"] {
            pipe.set(format!("{}:full_docs:{doc}", self.prefix), json!({ "content": doc }).to_string());
        }
        for (chunk, doc) in [("chunk-a", "doc-1"), ("chunk-b", "doc-1"), ("chunk-c", "doc-2"), ("chunk-d", "doc-2")] {
            let value = json!({ "content": chunk, "full_doc_id": doc }).to_string();
            pipe.set(format!("{}:text_chunks:{chunk}", self.prefix), value);
        }
        pipe.query_async::<()>(&mut con).await.unwrap();
        let label = &self.label;
        bolt_graph()
            .await
            .run(query(&format!(
                "CREATE (:`{label}` {{id: '\"ADA\"', source_id: 'chunk-a<SEP>chunk-b'}})-[:RELATED {{source_id: 'chunk-c'}}]->(:`{label}` {{id: '\"BABBAGE\"', source_id: 'chunk-d'}})"
            )))
            .await
            .unwrap();
    }

    async fn clean(&self) {
        delete_pattern(&mut db().await, &self.pattern()).await;
        bolt_graph().await.run(query(&format!("MATCH (n:`{}`) DETACH DELETE n", self.label))).await.unwrap();
    }
}

/// A writer adding a key (and, with `graph`, a node) in the scope again and again until it is
/// stopped or `for_at_most` has passed; `written` counts its writes.
struct Writer {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(scope: &Scope, graph: bool, for_at_most: Duration) -> Self {
        let (stop, written) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (prefix, label) = (scope.prefix.clone(), scope.label.clone());
        let (stop_flag, count) = (stop.clone(), written.clone());
        let task = tokio::spawn(async move {
            let mut con = db().await;
            let bolt = bolt_graph().await;
            let until = tokio::time::Instant::now() + for_at_most;
            let mut i = 0u64;
            while !stop_flag.load(Ordering::SeqCst) && tokio::time::Instant::now() < until {
                redis::cmd("SET").arg(format!("{prefix}:writer:{i}")).arg(i).query_async::<()>(&mut con).await.unwrap();
                if graph {
                    bolt.run(query(&format!("CREATE (:`{label}` {{id: 'writer {i}'}})"))).await.unwrap();
                }
                i += 1;
                count.store(i, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Writer { stop, written, task }
    }

    /// Waits until the writer has written `n` times (so a job started now overlaps it).
    async fn until_written(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.written.load(Ordering::SeqCst) < n {
            assert!(tokio::time::Instant::now() < deadline, "the writer did not write {n} times in 30 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
    }
}

/// Runs the binary off the runtime's threads, so the writer keeps writing meanwhile.
async fn run(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ngbak(&args, &[])
    })
    .await
    .unwrap()
}

fn backup_args(store: &std::path::Path, id: &str, scope: &Scope, graph: bool, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--store".into(),
        store.to_str().unwrap().into(),
        "backup".into(),
        "--id".into(),
        id.into(),
        "--json".into(),
    ];
    args.extend(scope.flags(graph));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_writes_is_stored_marked_inconsistent_with_what_moved() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (scope, store) = (Scope::new(), tempfile::tempdir().unwrap());
    scope.seed().await;
    let writer = Writer::start(&scope, true, Duration::from_secs(120));
    writer.until_written(10).await;
    let out = run(backup_args(store.path(), "during_writes", &scope, true, &[])).await;
    writer.stop().await;
    let summary = json_of(&out);
    let consistency = &summary["consistency"];
    assert_eq!(consistency["consistent"], json!(false), "{consistency}");
    let moved = |backend: &str| -> Vec<String> {
        consistency["moved"][backend]
            .as_array()
            .map(|a| a.iter().map(|m| m.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    assert!(moved("redis").iter().any(|m| m.starts_with("keys ") || m.starts_with("writes ")), "{consistency}");
    assert!(moved("neo4j").iter().any(|m| m.starts_with("nodes ")), "{consistency}");
    assert_eq!(consistency["attempts"], json!(1));

    // The listing says so too, in JSON and to a person.
    let list = json_of(&ngbak(&["--store", store.path().to_str().unwrap(), "list", "--json"], &[]));
    let listed = list.as_array().unwrap().iter().find(|b| b["backup_id"] == "during_writes").unwrap().clone();
    assert_eq!(listed["consistency"]["consistent"], json!(false), "{listed}");
    let human = ngbak(&["--store", store.path().to_str().unwrap(), "list"], &[]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(human.contains("INCONSISTENT") && human.contains("neo4j moved during the backup (nodes "), "{human}");
    scope.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_backup_is_consistent_and_its_links_are_counted() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (scope, store) = (Scope::new(), tempfile::tempdir().unwrap());
    scope.seed().await;
    let summary = json_of(&run(backup_args(store.path(), "quiet", &scope, true, &[])).await);
    let consistency = &summary["consistency"];
    assert_eq!(consistency["consistent"], json!(true), "{consistency}");
    assert!(consistency.get("moved").is_none(), "{consistency}");
    let rule =
        |name: &str| consistency["rules"].as_array().unwrap().iter().find(|r| r["rule"] == name).unwrap().clone();
    // ADA's two chunks, BABBAGE's one, the relationship's one; four chunks with their documents.
    assert_eq!(rule("source_id_is_chunk")["holds"], json!(4), "{consistency}");
    assert_eq!(rule("chunk_has_doc")["holds"], json!(4), "{consistency}");
    assert_eq!(rule("node_has_entity_vector")["checked"], json!(false), "{consistency}");

    // The archive, checked on its own, reports what the live stores do.
    let mut live = vec!["consistency".to_string(), "--json".into()];
    live.extend(scope.flags(true));
    let live = json_of(&run(live).await);
    let store_arg = store.path().to_str().unwrap().to_string();
    let archived = ["--store", &store_arg, "consistency", "--backup", "quiet", "--json"].map(String::from).to_vec();
    assert_eq!(json_of(&run(archived).await), live);
    scope.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_exports_again_until_the_writer_has_stopped() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (scope, store) = (Scope::new(), tempfile::tempdir().unwrap());
    scope.seed().await;
    let writer = Writer::start(&scope, false, Duration::from_millis(1500));
    writer.until_written(10).await;
    let extra = ["--consistent", "--consistent-pause", "1", "--consistent-tries", "8"];
    let out = run(backup_args(store.path(), "held_still", &scope, false, &extra)).await;
    let stopped_after = writer.written.load(Ordering::SeqCst);
    writer.stop().await;
    let summary = json_of(&out);
    let consistency = &summary["consistency"];
    assert_eq!(consistency["consistent"], json!(true), "{consistency}");
    let attempts = consistency["attempts"].as_u64().unwrap();
    assert!(attempts >= 2, "the first try overlapped the writer, so it cannot have held still: {consistency}");
    // The archive holds every key the writer wrote: it was taken after the writer stopped.
    let keys = summary["backends"]["redis"]["stats"]["keys"].as_u64().unwrap();
    assert_eq!(keys, 6 + stopped_after, "{summary}");
    scope.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_fails_and_stores_nothing_when_the_stores_never_hold_still() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (scope, store) = (Scope::new(), tempfile::tempdir().unwrap());
    scope.seed().await;
    let writer = Writer::start(&scope, false, Duration::from_secs(120));
    writer.until_written(10).await;
    let extra = ["--consistent", "--consistent-pause", "0", "--consistent-tries", "2"];
    let out = run(backup_args(store.path(), "never_still", &scope, false, &extra)).await;
    writer.stop().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("did not hold still in 2 tries") && stderr.contains("redis: "), "{stderr}");
    let left: Vec<String> = std::fs::read_dir(store.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|name| !name.starts_with("never_still")), "something was stored: {left:?}");
    scope.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_with_only_says_when_the_untouched_store_does_not_link_up() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (scope, store) = (Scope::new(), tempfile::tempdir().unwrap());
    scope.seed().await;
    json_of(&run(backup_args(store.path(), "linked", &scope, true, &[])).await);
    // The graph moves on without the key-value store: a node from a chunk it does not hold.
    bolt_graph()
        .await
        .run(query(&format!("CREATE (:`{}` {{id: '\"EVE\"', source_id: 'chunk-zzz'}})", scope.label)))
        .await
        .unwrap();
    let restore = |extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "--store".into(),
            store.path().to_str().unwrap().into(),
            "restore".into(),
            "linked".into(),
            "--only".into(),
            "redis".into(),
            "--json".into(),
        ];
        args.extend(scope.flags(true));
        args.extend(extra.iter().map(|s| s.to_string()));
        run(args)
    };

    // A dry run predicts it from the archive and the live graph, before anything is written.
    let predicted = json_of(&restore(&["--dry-run"]).await);
    assert_eq!(predicted["consistency"]["predicted"], json!(true), "{predicted}");
    let broken = predicted["consistency"]["report"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "source_id_is_chunk")
        .unwrap()
        .clone();
    assert_eq!(broken["first_broken"], json!(["chunk-zzz (in the source_id of node \"EVE\")"]), "{predicted}");

    let report = json_of(&restore(&[]).await);
    let after = &report["consistency"];
    assert_eq!(after["consistent"], json!(false), "{after}");
    let warning = after["warning"].as_str().unwrap();
    assert!(
        warning.contains("source_id_is_chunk 1") && warning.contains("neo4j") && warning.contains("without --only")
    );
    let broken =
        after["report"]["rules"].as_array().unwrap().iter().find(|r| r["rule"] == "source_id_is_chunk").unwrap();
    assert_eq!(broken["first_broken"], json!(["chunk-zzz (in the source_id of node \"EVE\")"]), "{after}");
    assert_eq!(after["at_backup"]["consistent"], json!(true), "{after}");

    let out = restore(&["--require-consistent"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let object: Value =
        serde_json::from_slice(&std::fs::read(store.path().join("linked.restore-report.json")).unwrap()).unwrap();
    assert_eq!(object["kind"], json!("Inconsistent"), "{object}");
    assert_eq!(object["report"]["consistency"]["consistent"], json!(false), "{object}");
    scope.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_restore_relies_on_the_backups_own_check_unless_asked_to_read_again() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let (scope, store) = (Scope::new(), tempfile::tempdir().unwrap());
    scope.seed().await;
    json_of(&run(backup_args(store.path(), "whole", &scope, true, &[])).await);
    let restore = |extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "--store".into(),
            store.path().to_str().unwrap().into(),
            "restore".into(),
            "whole".into(),
            "--json".into(),
        ];
        args.extend(scope.flags(true));
        args.extend(extra.iter().map(|s| s.to_string()));
        run(args)
    };
    // Every configured backend restored: the backup's recorded links stand for the result.
    let report = json_of(&restore(&[]).await);
    let after = &report["consistency"];
    assert_eq!(after["consistent"], json!(true), "{after}");
    assert!(after["not_checked"].as_str().unwrap().contains("whole restore"), "{after}");
    assert!(after.get("report").is_none(), "{after}");
    assert_eq!(after["at_backup"]["consistent"], json!(true), "{after}");
    // --check-links reads the restored stores again.
    let report = json_of(&restore(&["--check-links"]).await);
    let after = &report["consistency"];
    assert_eq!(after["report"]["consistent"], json!(true), "{after}");
    let rule = after["report"]["rules"].as_array().unwrap().iter().find(|r| r["rule"] == "source_id_is_chunk").unwrap();
    assert_eq!(rule["holds"], json!(4), "{after}");
    scope.clean().await;
}
