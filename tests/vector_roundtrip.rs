//! Qdrant → archive → Qdrant in both modes, against the Qdrant test double (or a real Qdrant when
//! NGBAK_TEST_QDRANT_URL, NGBAK_TEST_QDRANT_GRPC_URL and NGBAK_TEST_QDRANT_API_KEY are set).

mod common;
#[path = "support/qdrant_double.rs"]
mod qdrant_double;

use ::qdrant_client::qdrant::*;
use ::qdrant_client::Qdrant;
use common::*;
use ngbak::backends::qdrant::points::{record_of, PointKey, PointRecord};
use ngbak::backends::qdrant::{CaptureMode, QdrantExporter, QdrantRestorer, QdrantSettings};
use ngbak::backends::RestoreMode;
use ngbak::id::BackupId;
use ngbak::pipeline::backup::{run_backup, BackupOptions};
use ngbak::pipeline::restore::{run_restore, RestoreOptions, RestoreReport};
use ngbak::store::ObjectStore;
use qdrant_double::{Faults, QdrantDouble};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

const KEY: &str = "ngbak-test-key";

/// A Qdrant to test against: the double (kept alive by the returned handle) or a real one.
struct Server {
    rest: String,
    grpc: String,
    key: String,
    double: Option<QdrantDouble>,
}

async fn server(version: &str) -> Server {
    if let Ok(rest) = std::env::var("NGBAK_TEST_QDRANT_URL") {
        return Server {
            rest,
            grpc: std::env::var("NGBAK_TEST_QDRANT_GRPC_URL").expect("NGBAK_TEST_QDRANT_GRPC_URL"),
            key: std::env::var("NGBAK_TEST_QDRANT_API_KEY").unwrap_or_default(),
            double: None,
        };
    }
    let double = QdrantDouble::start(Some(KEY), version).await;
    Server { rest: double.rest_url.clone(), grpc: double.grpc_url.clone(), key: KEY.into(), double: Some(double) }
}

impl Server {
    fn settings(&self, collection: &str, mode: CaptureMode) -> QdrantSettings {
        QdrantSettings {
            url: self.rest.clone(),
            grpc_url: Some(self.grpc.clone()),
            api_key: Some(self.key.clone()),
            collections: vec![collection.to_string()],
            mode,
            restore_as: None,
            switch_alias: None,
            restore_mode: RestoreMode::Replace,
        }
    }

    fn client(&self) -> Qdrant {
        Qdrant::from_url(&self.grpc).api_key(self.key.clone()).skip_compatibility_check().build().unwrap()
    }
}

fn dense(data: Vec<f32>) -> Vector {
    Vector { vector: Some(vector::Vector::Dense(DenseVector { data })), ..Default::default() }
}

fn sparse(indices: Vec<u32>, values: Vec<f32>) -> Vector {
    Vector { vector: Some(vector::Vector::Sparse(SparseVector { indices, values })), ..Default::default() }
}

/// A nano-graphrag hybrid collection: a named dense vector, sparse vectors `sparse` and
/// `sparse_name`, entity payloads, integer and UUID ids, and a payload index.
async fn seed(client: &Qdrant, name: &str, n: u64) {
    let vectors = VectorParamsMap {
        map: HashMap::from([(
            "dense".to_string(),
            VectorParams { size: 8, distance: Distance::Cosine as i32, ..Default::default() },
        )]),
    };
    client
        .create_collection(CreateCollection {
            collection_name: name.into(),
            vectors_config: Some(VectorsConfig { config: Some(vectors_config::Config::ParamsMap(vectors)) }),
            sparse_vectors_config: Some(SparseVectorConfig {
                map: HashMap::from([
                    ("sparse".into(), SparseVectorParams::default()),
                    ("sparse_name".into(), SparseVectorParams::default()),
                ]),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .create_field_index(CreateFieldIndexCollection {
            collection_name: name.into(),
            wait: Some(true),
            field_name: "entity_name".into(),
            field_type: Some(FieldType::Keyword as i32),
            ..Default::default()
        })
        .await
        .unwrap();
    let points: Vec<PointStruct> = (0..n)
        .map(|i| {
            let id: PointId = if i % 5 == 0 {
                PointId {
                    point_id_options: Some(point_id::PointIdOptions::Uuid(format!("00000000-0000-4000-8000-{i:012}"))),
                }
            } else {
                PointId { point_id_options: Some(point_id::PointIdOptions::Num(i)) }
            };
            let named = HashMap::from([
                ("dense".to_string(), dense((0..8).map(|d| ((i * 8 + d) as f32).sin() / 3.0).collect())),
                ("sparse".to_string(), sparse(vec![i as u32 % 97, 1000 + i as u32], vec![0.5, -1.25 + i as f32 / 7.0])),
                ("sparse_name".to_string(), sparse(vec![7], vec![1.0 / (i + 1) as f32])),
            ]);
            let payload = HashMap::from([
                ("entity_name".to_string(), Value::from(format!("ENTITY-{i}"))),
                ("content".to_string(), Value::from(format!("Entity {i} «content» with\nnewline"))),
                ("entity_type".to_string(), Value::from(["PERSON", "ORGANIZATION", "GEO"][i as usize % 3])),
                ("rank".to_string(), Value::from(i as i64)),
                ("score".to_string(), Value::from(i as f64 / 2.0)),
                // 53 random bits, as Python's random.random(): many need all 17 digits to round-trip.
                ("weight".to_string(), Value::from(random_unit(i))),
                (
                    "weights".to_string(),
                    Value::from(vec![Value::from(random_unit(i + n)), Value::from(-random_unit(i + 2 * n) * 1e-300)]),
                ),
            ]);
            PointStruct {
                id: Some(id),
                payload,
                vectors: Some(Vectors {
                    vectors_options: Some(vectors::VectorsOptions::Vectors(NamedVectors { vectors: named })),
                }),
            }
        })
        .collect();
    for chunk in points.chunks(100) {
        client
            .upsert_points(UpsertPoints {
                collection_name: name.into(),
                wait: Some(true),
                points: chunk.to_vec(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

/// A float in [0, 1) from 53 pseudo-random bits of `seed` (SplitMix64).
fn random_unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Every point of a collection, by id: vectors and payload.
async fn points(client: &Qdrant, name: &str) -> BTreeMap<PointKey, PointRecord> {
    let mut out = BTreeMap::new();
    let mut offset = None;
    loop {
        let page = client
            .scroll(ScrollPoints {
                collection_name: name.into(),
                limit: Some(64),
                offset: offset.take(),
                with_payload: Some(true.into()),
                with_vectors: Some(true.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        for p in &page.result {
            let r = record_of(p).unwrap();
            out.insert(r.id.clone(), r);
        }
        match page.next_page_offset {
            Some(next) => offset = Some(next),
            None => return out,
        }
    }
}

/// Backs `name` up into a fresh directory store; returns the directory (kept alive), the store
/// and the backup id.
async fn backed_up(qd: &Server, name: &str, mode: CaptureMode) -> (tempfile::TempDir, Arc<dyn ObjectStore>, BackupId) {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let exporter = QdrantExporter::new(qd.settings(name, mode));
    let summary = run_backup(store.clone(), vec![Box::new(exporter)], BackupOptions::default()).await.unwrap();
    (dir, store, summary.backup_id)
}

async fn restore(
    store: &Arc<dyn ObjectStore>,
    id: &BackupId,
    settings: QdrantSettings,
) -> anyhow::Result<RestoreReport> {
    run_restore(store.as_ref(), id, vec![Box::new(QdrantRestorer::new(settings))], &RestoreOptions::default()).await
}

async fn drop_collection(client: &Qdrant, name: &str) {
    client.delete_collection(DeleteCollection { collection_name: name.into(), ..Default::default() }).await.unwrap();
}

async fn round_trip(mode: CaptureMode) {
    let qd = server("1.15.4").await;
    let client = qd.client();
    let name = format!("entities_{}", unique());
    seed(&client, &name, 300).await;
    let before = points(&client, &name).await;
    assert_eq!(before.len(), 300);

    let bucket = new_bucket().await;
    let store = s3_store(&bucket, "vectors").await;
    let exporter = QdrantExporter::new(qd.settings(&name, mode));
    let summary = run_backup(
        store.clone(),
        vec![Box::new(exporter)],
        BackupOptions { part_bytes: 64 << 10, ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!(summary.backends["qdrant"].stats["vectors"], 300);
    if let Some(double) = &qd.double {
        assert!(double.snapshots(&name).is_empty(), "a server-side snapshot was left behind");
    }

    drop_collection(&client, &name).await;
    let restorer = QdrantRestorer::new(qd.settings(&name, mode));
    let report = run_restore(store.as_ref(), &summary.backup_id, vec![Box::new(restorer)], &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(report.backends["qdrant"].restored["vectors"], 300);
    let after = points(&client, &name).await;
    assert_eq!(after.len(), before.len());
    for (id, p) in &before {
        assert_eq!(after.get(id), Some(p), "point {id:?} differs");
    }
    let info = client.collection_info(&name).await.unwrap().result.unwrap();
    assert!(info.payload_schema.contains_key("entity_name"), "the payload index was not recreated");
    let sparse = info.config.unwrap().params.unwrap().sparse_vectors_config.unwrap();
    assert!(sparse.map.contains_key("sparse") && sparse.map.contains_key("sparse_name"));
}

#[tokio::test]
async fn a_hybrid_collection_round_trips_in_points_mode() {
    round_trip(CaptureMode::Points).await;
}

#[tokio::test]
async fn a_hybrid_collection_round_trips_in_snapshot_mode() {
    round_trip(CaptureMode::Snapshot).await;
}

#[tokio::test]
async fn a_failed_snapshot_download_fails_the_backup_and_still_deletes_the_snapshot() {
    let qd = server("1.15.4").await;
    let Some(double) = &qd.double else { return eprintln!("NOTE: fault injection needs the Qdrant test double") };
    let name = format!("entities_{}", unique());
    seed(&qd.client(), &name, 200).await;
    double.set_faults(Faults { cut_download_after: Some(1000), ..Default::default() });
    let bucket = new_bucket().await;
    let exporter = QdrantExporter::new(qd.settings(&name, CaptureMode::Snapshot));
    let err =
        run_backup(s3_store(&bucket, "v").await, vec![Box::new(exporter)], BackupOptions::default()).await.unwrap_err();
    assert!(format!("{err:#}").contains("no archive was stored"), "{err:#}");
    assert!(double.snapshots(&name).is_empty(), "the snapshot stayed on the server after a failed download");
    assert!(bucket_keys(&bucket).await.is_empty() && pending_uploads(&bucket).await.is_empty());
}

#[tokio::test]
async fn a_wrong_api_key_fails_with_a_clear_error() {
    let qd = server("1.15.4").await;
    let name = format!("entities_{}", unique());
    seed(&qd.client(), &name, 10).await;
    for mode in [CaptureMode::Snapshot, CaptureMode::Points] {
        let mut settings = qd.settings(&name, mode);
        settings.api_key = Some("wrong-key".into());
        let dir = tempfile::tempdir().unwrap();
        let err = run_backup(
            local_store(dir.path()),
            vec![Box::new(QdrantExporter::new(settings))],
            BackupOptions::default(),
        )
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("401") && text.contains("API key"), "{text}");
    }
}

#[tokio::test]
async fn restore_as_leaves_the_live_collection_untouched_and_can_switch_an_alias() {
    let qd = server("1.15.4").await;
    let client = qd.client();
    let name = format!("entities_{}", unique());
    seed(&client, &name, 120).await;
    let (_dir, store, id) = backed_up(&qd, &name, CaptureMode::Points).await;
    // The live collection moves on after the backup.
    seed(&client, &format!("{name}_other"), 1).await;
    client
        .upsert_points(UpsertPoints {
            collection_name: name.clone(),
            wait: Some(true),
            points: vec![PointStruct {
                id: Some(PointId { point_id_options: Some(point_id::PointIdOptions::Num(100_000)) }),
                payload: HashMap::from([("entity_name".to_string(), Value::from("NEW"))]),
                vectors: Some(Vectors {
                    vectors_options: Some(vectors::VectorsOptions::Vectors(NamedVectors {
                        vectors: HashMap::from([("dense".to_string(), dense(vec![0.0; 8]))]),
                    })),
                }),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let live = points(&client, &name).await;

    let alias = format!("{name}_live");
    let mut settings = qd.settings(&name, CaptureMode::Points);
    settings.restore_as = Some(format!("{name}_restored"));
    settings.switch_alias = Some(alias.clone());
    restore(&store, &id, settings).await.unwrap();
    assert_eq!(points(&client, &name).await, live, "the live collection changed");
    assert_eq!(points(&client, &format!("{name}_restored")).await.len(), 120);
    if let Some(double) = &qd.double {
        assert_eq!(double.alias(&alias), Some(format!("{name}_restored")));
    }
}

#[tokio::test]
async fn a_corrupted_vector_entry_is_refused_before_qdrant_is_touched() {
    let qd = server("1.15.4").await;
    let client = qd.client();
    let name = format!("entities_{}", unique());
    seed(&client, &name, 100).await;
    let (dir, store, id) = backed_up(&qd, &name, CaptureMode::Points).await;
    drop_collection(&client, &name).await;
    let path = dir.path().join(id.archive_key());
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() * 2 / 3;
    bytes[at] ^= 0x04;
    std::fs::write(&path, bytes).unwrap();
    let err = restore(&store, &id, qd.settings(&name, CaptureMode::Points)).await.unwrap_err();
    assert!(format!("{err:#}").contains("does not match its sidecar"), "{err:#}");
    let exists = client.collection_exists(&name).await.unwrap();
    assert!(!exists, "the collection was created from a corrupted archive");
}

#[tokio::test]
async fn snapshots_are_refused_by_an_older_server_and_a_refused_upload_fails_clearly() {
    let source = server("1.15.4").await;
    if source.double.is_none() {
        return eprintln!("NOTE: version and upload faults need the Qdrant test double");
    }
    let name = format!("entities_{}", unique());
    seed(&source.client(), &name, 50).await;
    let (_dir, store, id) = backed_up(&source, &name, CaptureMode::Snapshot).await;

    let older = server("1.12.0").await;
    let err = restore(&store, &id, older.settings(&name, CaptureMode::Snapshot)).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("Qdrant 1.15.4 snapshots") && text.contains("--qdrant-mode points"), "{text}");

    let newer = server("1.16.0").await;
    newer.double.as_ref().unwrap().set_faults(Faults { refuse_upload: true, ..Default::default() });
    let err = restore(&store, &id, newer.settings(&name, CaptureMode::Snapshot)).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("snapshot upload into collection") && text.contains("500"), "{text}");
    assert!(newer.double.as_ref().unwrap().snapshots(&name).is_empty(), "a failed upload left its file behind");

    newer.double.as_ref().unwrap().set_faults(Faults::default());
    restore(&store, &id, newer.settings(&name, CaptureMode::Snapshot)).await.unwrap();
    assert_eq!(points(&newer.client(), &name).await, points(&source.client(), &name).await);
    assert!(newer.double.as_ref().unwrap().snapshots(&name).is_empty(), "the uploaded snapshot was left behind");

    // A snapshot replaces a collection: merging one into a live collection is refused up front.
    let mut merge = newer.settings(&name, CaptureMode::Snapshot);
    merge.restore_mode = RestoreMode::Merge;
    let err = restore(&store, &id, merge).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("replaces a collection") && text.contains("--vector-mode replace"), "{text}");
    assert_eq!(points(&newer.client(), &name).await, points(&source.client(), &name).await);
}
