//! Configuration shared by the CLI and the Lambda functions: every flag has an environment
//! variable, so a Lambda reads the same settings from its environment.

use crate::archive::compress::{Codec, Compression};
use crate::backends::{Backend, BackendRestoreArgs, Exporter, RestoreMode, Restorer};
use crate::pipeline::backup::{BackupOptions, EmptyPolicy, LinkCheck, QuietPolicy};
use crate::pipeline::restore::RestoreOptions;
use crate::store::{self, ObjectStore, S3Options};
use anyhow::Result;
use clap::Args;
use std::sync::Arc;

pub(crate) use crate::backends::set;

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
            let message = "no store given: pass --store s3://bucket/prefix or a directory (or set NGBAK_STORE)";
            return Err(crate::failure::FailureKind::ConfigurationError.marked(message).into());
        };
        store::open(url, &S3Options { kms_key_id: set(&self.kms_key_id).map(str::to_string), endpoint: None }).await
    }
}

/// Every backend's settings: each backend's own group, registered in `crate::backends`.
/// `Debug` prints the redacted settings (see below): these hold passwords and API keys.
pub use crate::backends::BackendArgs;

impl BackendArgs {
    /// The configured backends, in registration order.
    pub fn configured(&self) -> impl Iterator<Item = &dyn Backend> {
        self.all().into_iter().filter(|b| b.is_configured())
    }

    /// What the configured backends named in `only` (all when empty) hold of the GraphRAG
    /// deployment, for the consistency check ([`crate::consistency`]).
    pub fn deployments(&self, only: &[&str]) -> Vec<Box<dyn crate::consistency::Deployment>> {
        self.configured()
            .filter(|b| only.is_empty() || only.contains(&b.descriptor().name))
            .filter_map(|b| b.deployment(&self.layout))
            .collect()
    }

    /// The readers of the archive entries of every registered backend named in `only` (all when
    /// empty), by their names in the archive.
    pub fn archived_facts(&self, only: &[&str]) -> Vec<(&'static str, Box<dyn crate::consistency::ArchivedFacts>)> {
        self.all()
            .into_iter()
            .filter(|b| only.is_empty() || only.contains(&b.descriptor().name))
            .filter_map(|b| Some((b.descriptor().name, b.archived(&self.layout)?)))
            .collect()
    }

    /// An exporter for every configured backend, optionally limited to `only`.
    pub fn exporters(&self, only: &[String]) -> Result<Vec<Box<dyn Exporter>>> {
        let mut out: Vec<Box<dyn Exporter>> = self.configured().map(|b| b.exporter()).collect();
        if !only.is_empty() {
            for name in only {
                if !out.iter().any(|e| e.name() == name) {
                    let message = format!("backend {name:?} was asked for but is not configured");
                    return Err(crate::failure::FailureKind::ConfigurationError.marked(message).into());
                }
            }
            out.retain(|e| only.iter().any(|n| n == e.name()));
        }
        Ok(out)
    }

    /// A restorer for every configured backend, each in the mode its kind's flag chose.
    pub fn restorers(&self, modes: &RestoreArgs) -> Vec<Box<dyn Restorer>> {
        self.configured().map(|b| b.restorer(modes.mode_for(b.descriptor().kind), &modes.backends)).collect()
    }

    /// Registers every secret setting with [`crate::net::scrub`], so that no error or log line
    /// that quotes one (whichever library wrote it) leaves the process with it.
    pub fn remember_secrets(&self) {
        for backend in self.all() {
            backend.remember_secrets();
        }
    }

    /// The settings as recorded in the manifest: no passwords.
    pub fn redacted(&self) -> serde_json::Value {
        let mut config = serde_json::Map::new();
        for backend in self.all() {
            backend.echo(&mut config);
        }
        serde_json::Value::Object(config)
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
    /// Store the backup only when the stores held still from the export's start to its end:
    /// otherwise export again (see --consistent-tries), or fail saying what moved.
    #[arg(long, env = "NGBAK_CONSISTENT")]
    pub consistent: bool,
    /// With --consistent: how many exports to try.
    #[arg(long, env = "NGBAK_CONSISTENT_TRIES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub consistent_tries: u32,
    /// With --consistent: seconds to wait before the next try (doubled each time, at most 5 minutes).
    #[arg(long, env = "NGBAK_CONSISTENT_PAUSE", default_value_t = 5)]
    pub consistent_pause: u64,
    /// Fail (store nothing) when a backend exports nothing while it holds data elsewhere (a
    /// pattern matching no key, a directory without nano-graphrag files, a label without nodes).
    #[arg(long, env = "NGBAK_FAIL_IF_EMPTY")]
    pub fail_if_empty: bool,
    /// An empty backup is meant (a new deployment): no warning, no failure (wins over
    /// --fail-if-empty).
    #[arg(long, env = "NGBAK_ALLOW_EMPTY")]
    pub allow_empty: bool,
}

impl TuningArgs {
    pub fn backup_options(
        &self,
        backends: &BackendArgs,
        store_url: &str,
        keys: &crate::authenticity::Keys,
    ) -> BackupOptions {
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
            quiet: QuietPolicy {
                required: self.consistent,
                tries: self.consistent_tries.max(1),
                pause: std::time::Duration::from_secs(self.consistent_pause),
            },
            links: (!backends.layout.no_link_check).then(|| LinkCheck::of(backends)),
            empty: match (self.allow_empty, self.fail_if_empty) {
                (true, _) => EmptyPolicy::Allow,
                (false, true) => EmptyPolicy::Fail,
                (false, false) => EmptyPolicy::Warn,
            },
            signing_key: keys.signing_key.clone(),
            encrypt_to: keys.encryption.recipients.clone(),
            plain_sidecar_counts: keys.encryption.plain_sidecar_counts,
            require_encrypted: keys.encryption.require_encrypted,
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
    /// Each backend's restore-only settings.
    #[command(flatten)]
    pub backends: BackendRestoreArgs,
    /// Restore only these backends (comma-separated names, as `ngbak inspect` shows them).
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
    /// Fail (exit 3, kind Inconsistent) when the deployment's links do not hold after the restore;
    /// without it, the report warns.
    #[arg(long, env = "NGBAK_REQUIRE_CONSISTENT")]
    pub require_consistent: bool,
    /// Check the links over the live stores after a restore of every configured backend too (by
    /// default only a restore that leaves some backend as it was is checked: a whole restore
    /// reproduces the backup, whose links its manifest records).
    #[arg(long, env = "NGBAK_CHECK_LINKS")]
    pub check_links: bool,
}

impl RestoreArgs {
    /// The restore mode for a backend of `kind` (`kv`, `graph` or `vector`).
    pub fn mode_for(&self, kind: &str) -> RestoreMode {
        match kind {
            "graph" => self.graph_mode,
            "vector" => self.vector_mode,
            _ => self.kv_mode,
        }
    }

    /// The restore's options; the safety backup, when on, goes into `store`.
    /// The link check runs over every configured backend, restored or not.
    pub fn options(
        &self,
        store: &std::sync::Arc<dyn crate::store::ObjectStore>,
        backends: &BackendArgs,
        keys: &crate::authenticity::Keys,
    ) -> RestoreOptions {
        let safety = self.safety_backup && !self.no_safety_backup;
        RestoreOptions {
            only: self.only.iter().cloned().collect(),
            dry_run: self.dry_run,
            skip_verify_restored: self.no_verify_restored,
            safety_backup: safety.then(|| crate::pipeline::restore::SafetyBackup { store: store.clone() }),
            links: (!backends.layout.no_link_check).then(|| {
                let mut check = LinkCheck::of(backends);
                check.replaced = crate::backends::descriptors()
                    .iter()
                    .filter(|d| self.mode_for(d.kind) == RestoreMode::Replace)
                    .map(|d| d.name)
                    .collect();
                check.after_whole_restore = self.check_links;
                check
            }),
            require_consistent: self.require_consistent,
            trust: keys.trust.clone(),
            signing_key: keys.signing_key.clone(),
        }
    }
}

impl std::fmt::Debug for BackendArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackendArgs({})", self.redacted())
    }
}
