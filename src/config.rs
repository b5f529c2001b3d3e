//! Configuration shared by the CLI and the Lambda functions: every flag has an environment
//! variable, so a Lambda reads the same settings from its environment.

use crate::archive::compress::{Codec, Compression};
use crate::pipeline::backup::BackupOptions;
use crate::pipeline::restore::RestoreOptions;
use crate::sources::jsonkv::{WorkdirExporter, WorkdirRestorer};
use crate::sources::neo4j::{Neo4jExporter, Neo4jRestorer, Neo4jSettings};
use crate::sources::qdrant::{collection_list, CaptureMode, QdrantExporter, QdrantRestorer, QdrantSettings};
use crate::sources::redis::{RedisExporter, RedisRestorer};
use crate::sources::{redact_url, Exporter, RestoreMode, Restorer};
use crate::store::{self, ObjectStore, S3Options};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

/// Treats an empty variable (as templates write for "not configured") like an absent one.
pub(crate) fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[derive(Args, Clone, Debug, Default)]
pub struct StoreArgs {
    /// Where backups live: s3://bucket/prefix, file:///dir, or a directory path.
    #[arg(long, env = "NGBAK_STORE", global = true)]
    pub store: Option<String>,
    /// SSE-KMS key id or ARN for archives written to S3 (default: the bucket's encryption).
    #[arg(long, env = "NGBAK_KMS_KEY_ID", global = true)]
    pub kms_key_id: Option<String>,
}

impl StoreArgs {
    pub async fn open(&self) -> Result<Arc<dyn ObjectStore>> {
        let Some(url) = set(&self.store) else {
            bail!("no store given: pass --store s3://bucket/prefix or a directory (or set NGBAK_STORE)");
        };
        store::open(url, &S3Options { kms_key_id: set(&self.kms_key_id).map(str::to_string), endpoint: None }).await
    }
}

/// `Debug` prints the redacted settings (see below): these hold passwords and API keys.
#[derive(Args, Clone, Default)]
pub struct BackendArgs {
    /// Redis to back up / restore into, e.g. redis://:password@host:6379/0 or
    /// rediss://user:password@host:6380/0 (TLS).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Secrets Manager secret holding the Redis URL (plain, or JSON {"url": …}); read when
    /// --redis-url is unset.
    #[arg(long, env = "REDIS_URL_SECRET_ARN")]
    pub redis_url_secret_arn: Option<String>,
    /// Key patterns to include (repeatable, or comma-separated in the variable).
    #[arg(
        long = "redis-pattern",
        env = "NGBAK_REDIS_PATTERNS",
        value_delimiter = ',',
        default_value = "nano_graphrag:*"
    )]
    pub redis_patterns: Vec<String>,
    /// nano-graphrag working directory (kv_store_*.json, *.graphml, vdb_*.json).
    #[arg(long, env = "NGBAK_KV_DIR")]
    pub kv_dir: Option<PathBuf>,
    /// Neo4j (or another Bolt graph database), e.g. bolt://graph:7687 or neo4j+s://….
    #[arg(long, env = "NEO4J_URI", hide_env_values = true)]
    pub neo4j_uri: Option<String>,
    #[arg(long, env = "NEO4J_USERNAME", default_value = "neo4j")]
    pub neo4j_user: String,
    #[arg(long, env = "NEO4J_PASSWORD", hide_env_values = true)]
    pub neo4j_password: Option<String>,
    /// Secrets Manager secret holding the Neo4j password (plain, or JSON {"password": …}); read
    /// when --neo4j-password is unset.
    #[arg(long, env = "NEO4J_PASSWORD_SECRET_ARN")]
    pub neo4j_password_secret_arn: Option<String>,
    #[arg(long, env = "NEO4J_DATABASE", default_value = "neo4j")]
    pub neo4j_database: String,
    /// The namespace label that scopes the graph backup (nano-graphrag: GraphRAG_<namespace>);
    /// unset means the whole database.
    #[arg(long, env = "NEO4J_GRAPH_NAMESPACE")]
    pub neo4j_label: Option<String>,
    /// Rows per batched graph write (one transaction each).
    #[arg(long, env = "NGBAK_GRAPH_BATCH_SIZE", default_value_t = 1000)]
    pub graph_batch_size: usize,
    /// The unique node property that `--graph-mode merge` matches on.
    #[arg(long, env = "NGBAK_GRAPH_MERGE_KEY", default_value = "id")]
    pub graph_merge_key: String,
    /// Qdrant REST URL, e.g. http://qdrant:6333.
    #[arg(long, env = "QDRANT_URL", hide_env_values = true)]
    pub qdrant_url: Option<String>,
    /// Qdrant gRPC URL (points mode); default: the REST host on port 6334.
    #[arg(long, env = "QDRANT_GRPC_URL", hide_env_values = true)]
    pub qdrant_grpc_url: Option<String>,
    #[arg(long, env = "QDRANT_API_KEY", hide_env_values = true)]
    pub qdrant_api_key: Option<String>,
    /// Secrets Manager secret holding the Qdrant API key (plain, or JSON {"api_key": …}); read
    /// when --qdrant-api-key is unset.
    #[arg(long, env = "QDRANT_API_KEY_SECRET_ARN")]
    pub qdrant_api_key_secret_arn: Option<String>,
    /// Collections to back up (repeatable, or comma-separated); default all.
    #[arg(long = "qdrant-collection", env = "NGBAK_QDRANT_COLLECTIONS", value_delimiter = ',')]
    pub qdrant_collections: Vec<String>,
    /// snapshot (server snapshots, exact, fastest) or points (portable across versions).
    #[arg(long, env = "NGBAK_QDRANT_MODE", value_enum, default_value_t = CaptureMode::Snapshot)]
    pub qdrant_mode: CaptureMode,
    /// The settings that were read from Secrets Manager (their flags), to read again on rotation.
    #[arg(skip)]
    pub read_from_secrets: Vec<&'static str>,
}

impl BackendArgs {
    fn patterns(&self) -> Vec<String> {
        let p: Vec<String> =
            self.redis_patterns.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
        if p.is_empty() {
            vec!["nano_graphrag:*".into()]
        } else {
            p
        }
    }

    /// The graph settings, when a graph is configured.
    pub fn neo4j(&self, mode: RestoreMode) -> Option<Neo4jSettings> {
        Some(Neo4jSettings {
            uri: set(&self.neo4j_uri)?.to_string(),
            user: self.neo4j_user.clone(),
            password: set(&self.neo4j_password).unwrap_or_default().to_string(),
            database: self.neo4j_database.clone(),
            label: set(&self.neo4j_label).map(str::to_string),
            batch_size: self.graph_batch_size,
            mode,
            merge_key: self.graph_merge_key.clone(),
        })
    }

    /// The Qdrant settings, when Qdrant is configured.
    pub fn qdrant(&self, restore: Option<&RestoreArgs>) -> Option<QdrantSettings> {
        Some(QdrantSettings {
            url: set(&self.qdrant_url)?.to_string(),
            grpc_url: set(&self.qdrant_grpc_url).map(str::to_string),
            api_key: set(&self.qdrant_api_key).map(str::to_string),
            collections: collection_list(&self.qdrant_collections),
            mode: self.qdrant_mode,
            restore_as: restore.and_then(|r| set(&r.restore_as)).map(str::to_string),
            switch_alias: restore.and_then(|r| set(&r.qdrant_switch_alias)).map(str::to_string),
            restore_mode: restore.map(|r| r.vector_mode).unwrap_or_default(),
        })
    }

    fn kv_dir(&self) -> Option<&PathBuf> {
        self.kv_dir.as_ref().filter(|d| !d.as_os_str().is_empty())
    }

    /// An exporter for every configured backend, optionally limited to `only`.
    pub fn exporters(&self, only: &[String]) -> Result<Vec<Box<dyn Exporter>>> {
        let mut out: Vec<Box<dyn Exporter>> = Vec::new();
        if let Some(url) = set(&self.redis_url) {
            out.push(Box::new(RedisExporter::new(url, &self.patterns())));
        }
        if let Some(dir) = self.kv_dir() {
            out.push(Box::new(WorkdirExporter::new(dir)));
        }
        if let Some(graph) = self.neo4j(RestoreMode::Merge) {
            out.push(Box::new(Neo4jExporter::new(graph)));
        }
        if let Some(vectors) = self.qdrant(None) {
            out.push(Box::new(QdrantExporter::new(vectors)));
        }
        if !only.is_empty() {
            for name in only {
                if !out.iter().any(|e| e.name() == name) {
                    bail!("backend {name:?} was asked for but is not configured");
                }
            }
            out.retain(|e| only.iter().any(|n| n == e.name()));
        }
        Ok(out)
    }

    /// A restorer for every configured backend.
    pub fn restorers(&self, modes: &RestoreArgs) -> Vec<Box<dyn Restorer>> {
        let mut out: Vec<Box<dyn Restorer>> = Vec::new();
        if let Some(url) = set(&self.redis_url) {
            out.push(Box::new(RedisRestorer::new(url, &self.patterns(), modes.kv_mode)));
        }
        if let Some(dir) = self.kv_dir() {
            out.push(Box::new(WorkdirRestorer::new(dir, modes.kv_mode)));
        }
        if let Some(graph) = self.neo4j(modes.graph_mode) {
            out.push(Box::new(Neo4jRestorer::new(graph)));
        }
        if let Some(vectors) = self.qdrant(Some(modes)) {
            out.push(Box::new(QdrantRestorer::new(vectors)));
        }
        out
    }

    /// Registers every secret setting with [`crate::net::scrub`], so that no error or log line
    /// that quotes one (whichever library wrote it) leaves the process with it.
    pub fn remember_secrets(&self) {
        for url in [&self.redis_url, &self.neo4j_uri, &self.qdrant_url, &self.qdrant_grpc_url] {
            if let Some(u) = set(url) {
                crate::net::redact::remember_url(u);
            }
        }
        for secret in [&self.neo4j_password, &self.qdrant_api_key] {
            if let Some(s) = set(secret) {
                crate::net::redact::remember(s);
            }
        }
    }

    /// The settings as recorded in the manifest: no passwords.
    pub fn redacted(&self) -> serde_json::Value {
        serde_json::json!({
            "redis_url": set(&self.redis_url).map(redact_url),
            "redis_patterns": self.patterns(),
            "kv_dir": self.kv_dir(),
            "neo4j": self.neo4j(RestoreMode::Merge).map(|g| serde_json::json!({
                "uri": redact_url(&g.uri), "user": g.user, "database": g.database, "label": g.label,
            })),
            "qdrant": self.qdrant(None).map(|q| serde_json::json!({
                "url": redact_url(&q.url), "collections": q.collections, "mode": q.mode,
            })),
        })
    }
}

#[derive(Args, Clone, Debug, Default)]
pub struct TuningArgs {
    /// Archive compression: gzip (default; plain `tar -xzf` reads it) or zstd (faster, smaller).
    #[arg(long, env = "NGBAK_COMPRESSION", value_enum, default_value_t = Codec::Gzip)]
    pub compression: Codec,
    /// Compression level: gzip 1–9 (default 2), zstd 1–19 (default 3).
    #[arg(long, env = "NGBAK_COMPRESSION_LEVEL", value_parser = clap::value_parser!(u32).range(1..=19))]
    pub compression_level: Option<u32>,
    /// Compressing threads (default: the cores this process may use).
    #[arg(long, env = "NGBAK_THREADS", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
    /// Size of one NDJSON part in MiB (memory per backend in flight).
    #[arg(long, env = "NGBAK_PART_MIB", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub part_mib: u32,
}

impl TuningArgs {
    pub fn backup_options(&self, backends: &BackendArgs, store_url: &str) -> BackupOptions {
        BackupOptions {
            id: None,
            compression: Compression {
                codec: self.compression,
                level: self.compression_level,
                threads: self.threads.unwrap_or(0) as usize,
            },
            part_bytes: (self.part_mib as usize) << 20,
            config: serde_json::json!({ "store": store_url, "backends": backends.redacted() }),
            progress: false,
            reason: None,
        }
    }
}

#[derive(Args, Clone, Debug, Default)]
pub struct RestoreArgs {
    /// Key-value restore mode: merge (upsert) or replace (also delete what the archive lacks).
    #[arg(long, env = "NGBAK_KV_MODE", value_enum, default_value_t = RestoreMode::Merge)]
    pub kv_mode: RestoreMode,
    /// Graph restore mode: merge (idempotent, on --graph-merge-key) or replace (clear the scope first).
    #[arg(long, env = "NGBAK_GRAPH_MODE", value_enum, default_value_t = RestoreMode::Merge)]
    pub graph_mode: RestoreMode,
    /// Vector restore mode: merge (upsert into an existing collection) or replace (recreate it).
    #[arg(long, env = "NGBAK_VECTOR_MODE", value_enum, default_value_t = RestoreMode::Merge)]
    pub vector_mode: RestoreMode,
    /// Restore the archive's (single) Qdrant collection under this name, beside the live one.
    #[arg(long, env = "NGBAK_RESTORE_AS")]
    pub restore_as: Option<String>,
    /// After restoring, point this Qdrant alias at the restored collection (atomically).
    #[arg(long, env = "NGBAK_QDRANT_SWITCH_ALIAS")]
    pub qdrant_switch_alias: Option<String>,
    /// Restore only these backends (comma-separated: redis, jsonkv, neo4j, qdrant).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Verify the archive and report what would be written, without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not read the restored state back to prove it equals the archive (on by default).
    #[arg(long, env = "NGBAK_NO_VERIFY_RESTORED")]
    pub no_verify_restored: bool,
    /// Do not back up what the restore will overwrite before writing (on by default).
    #[arg(long)]
    pub no_safety_backup: bool,
    /// Take over the store's restore lock even when another restore holds it (for a lock left by
    /// a run that was killed: check that no restore is running first).
    #[arg(long)]
    pub force: bool,
    /// `false` turns the safety backup off (for the functions); `--no-safety-backup` wins.
    #[arg(long, env = "NGBAK_SAFETY_BACKUP", hide = true, default_value_t = true, action = clap::ArgAction::Set)]
    pub safety_backup: bool,
}

impl RestoreArgs {
    /// The restore's options; the safety backup, when on, goes into `store`.
    pub fn options(&self, store: &std::sync::Arc<dyn crate::store::ObjectStore>) -> RestoreOptions {
        let safety = self.safety_backup && !self.no_safety_backup;
        RestoreOptions {
            only: self.only.iter().cloned().collect(),
            dry_run: self.dry_run,
            skip_verify_restored: self.no_verify_restored,
            safety_backup: safety.then(|| crate::pipeline::restore::SafetyBackup { store: store.clone() }),
        }
    }
}

impl std::fmt::Debug for BackendArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackendArgs({})", self.redacted())
    }
}
