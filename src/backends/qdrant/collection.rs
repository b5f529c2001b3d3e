//! A collection's configuration in points mode: what `collection.json` holds, how it is read
//! back, and how the collection is created again from it (exactly, from the server's own
//! protobuf messages, so no setting is lost between client versions).

use super::grpc::Grpc;
use super::{b64, RestoreMode};
use crate::archive::EntryRecord;
use anyhow::{bail, Context, Result};
use base64::Engine;
use prost::Message;
use qdrant_client::qdrant::{
    CollectionConfig, CreateCollection, CreateFieldIndexCollection, DeleteCollection, PayloadSchemaInfo,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncReadExt};

/// `collection.json` of points mode: what is needed to create the collection again.
#[derive(Debug, Serialize, Deserialize)]
pub struct CollectionRecord {
    pub name: String,
    /// `CollectionConfig` as protobuf, base64: exact, and readable by any later client.
    pub config_pb: String,
    /// Payload indexes: field → `PayloadSchemaInfo` as protobuf, base64.
    #[serde(default)]
    pub payload_schema_pb: BTreeMap<String, String>,
    pub points_count: u64,
    /// A readable summary (vector names, sizes, distances) for people; not used to restore.
    pub summary: Value,
}

/// Creates `target` from an archived configuration (in replace mode dropping it first; in merge
/// mode keeping an existing one), then its payload indexes.
#[allow(deprecated)] // on_disk_payload: still what servers before 1.16 read
pub(super) async fn create(grpc: &Grpc, record: &CollectionRecord, target: &str, mode: RestoreMode) -> Result<()> {
    let target = target.to_string();
    let config = CollectionConfig::decode(b64().decode(&record.config_pb)?.as_slice())?;
    let exists = grpc.collection_exists(&target).await.with_context(|| format!("Qdrant gRPC: does {target} exist"))?;
    if exists && mode == RestoreMode::Replace {
        grpc.delete_collection(DeleteCollection { collection_name: target.clone(), ..Default::default() })
            .await
            .with_context(|| format!("Qdrant gRPC: deleting {target} before replace"))?;
    }
    if !exists || mode == RestoreMode::Replace {
        let params = config.params.unwrap_or_default();
        let create = CreateCollection {
            collection_name: target.clone(),
            vectors_config: params.vectors_config,
            sparse_vectors_config: params.sparse_vectors_config,
            shard_number: Some(params.shard_number),
            replication_factor: params.replication_factor,
            write_consistency_factor: params.write_consistency_factor,
            on_disk_payload: Some(params.on_disk_payload),
            payload: params.payload,
            sharding_method: params.sharding_method,
            hnsw_config: config.hnsw_config,
            wal_config: config.wal_config,
            optimizers_config: config.optimizer_config,
            quantization_config: config.quantization_config,
            strict_mode_config: config.strict_mode_config,
            metadata: config.metadata,
            ..Default::default()
        };
        grpc.create_collection(create).await.with_context(|| format!("Qdrant gRPC: creating collection {target}"))?;
    }
    for (field, schema) in &record.payload_schema_pb {
        let schema = PayloadSchemaInfo::decode(b64().decode(schema)?.as_slice())?;
        grpc.create_field_index(CreateFieldIndexCollection {
            collection_name: target.clone(),
            wait: Some(true),
            field_name: field.clone(),
            field_type: Some(schema.data_type),
            field_index_params: schema.params,
            ..Default::default()
        })
        .await
        .with_context(|| format!("Qdrant gRPC: creating the payload index {field} on {target}"))?;
    }
    Ok(())
}

/// Vector names, sizes and distances of a collection, for the manifest.
pub(super) fn summarize(config: &CollectionConfig) -> Value {
    use qdrant_client::qdrant::vectors_config::Config;
    let params = config.params.as_ref();
    let dense = match params.and_then(|p| p.vectors_config.as_ref()).and_then(|v| v.config.as_ref()) {
        Some(Config::Params(p)) => json!({ "": { "size": p.size, "distance": p.distance } }),
        Some(Config::ParamsMap(m)) => {
            json!(m
                .map
                .iter()
                .map(|(k, p)| (k.clone(), json!({ "size": p.size, "distance": p.distance })))
                .collect::<BTreeMap<_, _>>())
        }
        None => json!({}),
    };
    let sparse: Vec<&String> =
        params.and_then(|p| p.sparse_vectors_config.as_ref()).map(|s| s.map.keys().collect()).unwrap_or_default();
    json!({ "dense": dense, "sparse": sparse })
}

/// Largest `collection.json` read (a configuration and payload index list).
const MAX_COLLECTION_RECORD: u64 = 16 << 20;

pub(super) async fn read_collection_record(
    entry: &EntryRecord,
    body: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<CollectionRecord> {
    if entry.size > MAX_COLLECTION_RECORD {
        bail!("{} has {} bytes; a collection record may have at most 16 MiB", entry.path, entry.size);
    }
    let mut buf = Vec::with_capacity(entry.size as usize);
    body.read_to_end(&mut buf).await?;
    serde_json::from_slice(&buf).with_context(|| format!("{} is not a valid collection record", entry.path))
}
