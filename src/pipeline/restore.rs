//! Verify and restore.
//!
//! A restore reads the archive twice: a first full pass proves it matches its sidecar (size,
//! SHA-256, every entry) before any backend is touched; the second pass, pinned to the same
//! object version, streams the entries into the backends. Nothing is staged on disk.

use crate::archive::reader::{read_archive, CheckOnly, EntryVisitor, ReadReport};
use crate::archive::{ContentDigest, EntryRecord, Sidecar};
use crate::id::BackupId;
use crate::pipeline::backup::{run_backup, BackupOptions};
use crate::sources::Restorer;
use crate::stop::or_stop;
use crate::store::{get_bytes, ObjectStore};
use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncRead;

/// Reads and parses the sidecar of a backup.
pub async fn load_sidecar(store: &dyn ObjectStore, id: &BackupId) -> Result<Sidecar> {
    let bytes = match get_bytes(store, &id.sidecar_key()).await {
        Ok(b) => b,
        Err(e) => {
            if store.head(&id.sidecar_key()).await.ok().flatten().is_some() {
                return Err(e.context(format!("reading the sidecar of backup {id}")));
            }
            if store.head(&id.archive_key()).await.ok().flatten().is_some() {
                bail!(
                    "no sidecar: backup {id} has an archive in {} but no sidecar {} (uploaded by hand, or a \
                     backup that did not finish). Nothing was restored. Run `ngbak --store {} import {id}` to \
                     verify the archive against its own manifest and write its sidecar, then restore (or tag) it again",
                    store.url(),
                    id.sidecar_key(),
                    store.url()
                );
            }
            bail!("no backup {id} in {} (run `ngbak list` to see the backups there)", store.url());
        }
    };
    let sidecar: Sidecar = serde_json::from_slice(&bytes)
        .with_context(|| format!("the sidecar {} is not a valid ngbak manifest", id.sidecar_key()))?;
    if &sidecar.manifest.backup_id != id || sidecar.archive.key != id.archive_key() {
        bail!("the sidecar {} describes backup {}, not {id}", id.sidecar_key(), sidecar.manifest.backup_id);
    }
    Ok(sidecar)
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub backup_id: BackupId,
    pub ok: bool,
    pub entries: usize,
    pub archive_bytes: u64,
    pub archive_sha256: String,
    /// The version (ETag) that was read.
    #[serde(skip)]
    pub etag: Option<String>,
}

/// Reads the whole archive and checks it against its sidecar, entry by entry and as a whole.
pub async fn verify(store: &dyn ObjectStore, id: &BackupId) -> Result<(Sidecar, VerifyReport)> {
    let sidecar = load_sidecar(store, id).await?;
    let object = store.get(&id.archive_key(), None).await?;
    let etag = object.meta.etag.clone();
    let ReadReport { entries, archive_bytes, archive_sha256 } =
        read_archive(object.body, &sidecar, &mut CheckOnly).await?;
    let report = VerifyReport { backup_id: id.clone(), ok: true, entries, archive_bytes, archive_sha256, etag };
    Ok((sidecar, report))
}

#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Restore only these backends (names as in the manifest); all when empty.
    pub only: BTreeSet<String>,
    /// Verify and report what would be written; write nothing.
    pub dry_run: bool,
    /// Skip reading the restored state back to prove it equals the archive (`--no-verify-restored`).
    pub skip_verify_restored: bool,
    /// Back up what the restore will overwrite, before it writes (the rollback point).
    pub safety_backup: Option<SafetyBackup>,
}

/// Where the safety backup goes (the CLI and the functions use the restore's own store).
#[derive(Clone)]
pub struct SafetyBackup {
    pub store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for SafetyBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SafetyBackup({})", self.store.url())
    }
}

/// What a restore did, backend by backend.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub backup_id: BackupId,
    pub dry_run: bool,
    pub verified: bool,
    pub archive_sha256: String,
    pub backends: BTreeMap<String, BackendReport>,
    /// Backends in the archive that were not restored, and why.
    pub skipped: BTreeMap<String, String>,
    pub seconds: f64,
    /// Seconds spent reading the restored state back (part of `seconds`).
    pub verify_restored_seconds: f64,
    /// The backup of what this restore overwrote, taken before it wrote: `ngbak restore <it>`
    /// with `replace` modes rolls the restore back.
    pub safety_backup: Option<BackupId>,
    /// Seconds the safety backup took (part of `seconds`).
    pub safety_backup_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct BackendReport {
    pub target: String,
    /// The manifest's statistics for this backend.
    pub expected: BTreeMap<String, u64>,
    /// What was written (empty in a dry run).
    pub restored: BTreeMap<String, u64>,
    /// Whether the restored state was read back and found equal to the archive: `None` when it
    /// was not checked (dry run, `--no-verify-restored`, or a backend that cannot read back).
    pub verified: Option<bool>,
    /// The content digest of the archived records, and of what was read back.
    pub digest_expected: Option<ContentDigest>,
    pub digest_found: Option<ContentDigest>,
}

/// Verifies the archive, then restores it into `restorers`, then reads the restored state back.
pub async fn run_restore(
    store: &dyn ObjectStore,
    id: &BackupId,
    mut restorers: Vec<Box<dyn Restorer>>,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let sidecar = load_sidecar(store, id).await?;
    let manifest = &sidecar.manifest;
    for name in &options.only {
        if !manifest.backends.contains_key(name) {
            bail!(
                "backup {id} holds no backend {name:?}; it holds: {}",
                manifest.backends.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let mut skipped = BTreeMap::new();
    let mut selected = BTreeSet::new();
    for name in manifest.backends.keys() {
        let wanted = options.only.is_empty() || options.only.contains(name);
        let has_target = restorers.iter().any(|r| r.name() == name);
        match (wanted, has_target) {
            (false, _) => {
                skipped.insert(name.clone(), "not selected".into());
            }
            (true, false) => bail!(
                "backup {id} holds backend {name:?} but no target for it is configured: {} — or restore a \
                 subset with --only",
                target_hint(name)
            ),
            (true, true) => {
                selected.insert(name.clone());
            }
        }
    }
    restorers.retain(|r| selected.contains(r.name()));

    // Every target is reached and checked before the archive is even read.
    for r in restorers.iter_mut() {
        let name = r.name();
        let target = r.target();
        or_stop(r.preflight(&manifest.backends[name]))
            .await
            .with_context(|| format!("checking the {name} target {target} (nothing was written)"))?;
    }

    tracing::info!(backup_id = %id, "verifying the archive and every record before touching any backend");
    let object = store.get(&id.archive_key(), None).await?;
    let etag = object.meta.etag.clone();
    let mut checking = Checking { restorers: &mut restorers, digests: BTreeMap::new() };
    let checked = or_stop(read_archive(object.body, &sidecar, &mut checking))
        .await
        .context("verifying the archive (nothing was written)")?;
    let parsed = std::mem::take(&mut checking.digests);
    let mut expected_digests = BTreeMap::new();
    for r in &restorers {
        let name = r.name();
        let from_records = parsed.get(name).copied().unwrap_or_default();
        let expected = match manifest.backends[name].content_digest {
            Some(recorded) if recorded.records > 0 || from_records.records > 0 => {
                if from_records != recorded {
                    bail!(
                        "the {name} records of backup {id} read back as {from_records:?}, but the backup \
                         recorded {recorded:?}: this ngbak would not restore them exactly. Nothing was \
                         restored; report this as a bug, and restore with the ngbak version that made the backup"
                    );
                }
                Some(recorded)
            }
            Some(recorded) => Some(recorded),
            // An archive of an older ngbak: what its records parse to is what must come back.
            None => (from_records.records > 0).then_some(from_records),
        };
        expected_digests.insert(name.to_string(), expected);
    }
    tracing::info!(backup_id = %id, entries = checked.entries, sha256 = %checked.archive_sha256, "archive verified");

    let mut backends = BTreeMap::new();
    for r in &restorers {
        let expected = manifest.backends[r.name()].stats.clone();
        let report = BackendReport {
            target: r.target(),
            expected,
            restored: BTreeMap::new(),
            verified: None,
            digest_expected: expected_digests[r.name()],
            digest_found: None,
        };
        backends.insert(r.name().to_string(), report);
    }
    let verified = Verified { store, id, sidecar: &sidecar, etag: etag.as_deref() };
    let mut verify_seconds = 0.0;
    let safety_started = Instant::now();
    let safety = match (&options.safety_backup, options.dry_run) {
        (Some(safety), false) => take_safety_backup(safety, id, &mut restorers).await?,
        _ => None,
    };
    let safety_seconds = safety_started.elapsed().as_secs_f64();
    if !options.dry_run {
        let written = write_and_check(&verified, &mut restorers, &mut backends, options, safety.as_ref()).await;
        let mut cleanup_errors = Vec::new();
        for r in restorers.iter_mut() {
            if let Err(e) = r.cleanup().await {
                cleanup_errors.push(format!("{}: {e:#}", r.name()));
            }
        }
        verify_seconds = written?;
        if !cleanup_errors.is_empty() {
            bail!(
                "the restore was written and verified, but removing its temporary data failed: {}. \
                 Run the restore again to remove it",
                cleanup_errors.join("; ")
            );
        }
    }
    Ok(RestoreReport {
        backup_id: id.clone(),
        dry_run: options.dry_run,
        verified: true,
        archive_sha256: checked.archive_sha256,
        backends,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
        verify_restored_seconds: verify_seconds,
        safety_backup: safety,
        safety_backup_seconds: safety_seconds,
    })
}

/// Backs up exactly what the restore may overwrite (each restorer's target and scope) as an
/// ordinary backup `pre-restore_<id>_<time>`. If it fails, the restore does not start.
async fn take_safety_backup(
    safety: &SafetyBackup,
    id: &BackupId,
    restorers: &mut [Box<dyn Restorer>],
) -> Result<Option<BackupId>> {
    let mut exporters = Vec::new();
    for r in restorers.iter_mut() {
        let name = r.name();
        if let Some(e) = r.safety_exporter().await.with_context(|| format!("preparing the safety backup of {name}"))? {
            exporters.push(e);
        }
    }
    if exporters.is_empty() {
        tracing::info!(backup_id = %id, "no safety backup: the targets hold nothing yet");
        return Ok(None);
    }
    let mut safety_id = BackupId::safety_for(id, chrono::Utc::now());
    while store_has(safety.store.as_ref(), &safety_id).await? {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        safety_id = BackupId::safety_for(id, chrono::Utc::now());
    }
    tracing::info!(backup_id = %id, safety_backup = %safety_id, "backing up what the restore will overwrite");
    let options = BackupOptions {
        id: Some(safety_id.clone()),
        reason: Some(format!("safety backup taken before restoring {id}")),
        config: serde_json::json!({ "safety_backup_before_restoring": id }),
        ..Default::default()
    };
    run_backup(safety.store.clone(), exporters, options).await.with_context(|| {
        format!(
            "the safety backup before restoring {id} failed, so the restore did not start and nothing was written. \
             Fix the cause, or restore without a rollback point with --no-safety-backup"
        )
    })?;
    Ok(Some(safety_id))
}

/// The archive as verified: where it is, and the version (ETag) every later read is pinned to.
#[derive(Clone, Copy)]
struct Verified<'a> {
    store: &'a dyn ObjectStore,
    id: &'a BackupId,
    sidecar: &'a Sidecar,
    etag: Option<&'a str>,
}

async fn store_has(store: &dyn ObjectStore, id: &BackupId) -> Result<bool> {
    Ok(store.head(&id.sidecar_key()).await?.is_some() || store.head(&id.archive_key()).await?.is_some())
}

/// The write pass and the read-back check; returns the seconds the check took. An error says
/// which backends had been written to, since the targets are then partly restored.
async fn write_and_check(
    verified: &Verified<'_>,
    restorers: &mut [Box<dyn Restorer>],
    backends: &mut BTreeMap<String, BackendReport>,
    options: &RestoreOptions,
    safety: Option<&BackupId>,
) -> Result<f64> {
    let Verified { store, id, sidecar, etag } = *verified;
    let manifest = &sidecar.manifest;
    let object = match or_stop(store.get(&id.archive_key(), etag)).await {
        Ok(o) => o,
        Err(e) => return Err(e.context("re-reading the verified archive; nothing was written")),
    };
    let mut dispatch = Dispatch { restorers: &mut *restorers, manifest, progress: BTreeMap::new() };
    let mut written = or_stop(read_archive(object.body, sidecar, &mut dispatch)).await.map(|_| ());
    if written.is_ok() {
        written = or_stop(dispatch.prepare_rest()).await;
    }
    let progress = std::mem::take(&mut dispatch.progress);
    let targets: Vec<(&'static str, String)> = restorers.iter().map(|r| (r.name(), r.target())).collect();
    let partial = |e: anyhow::Error| e.context(PartialRestore::new(id, manifest, &targets, &progress, safety));
    if let Err(e) = written {
        return Err(partial(e));
    }
    for r in restorers.iter_mut() {
        let name = r.name();
        let restored = match or_stop(r.finish()).await {
            Ok(s) => s,
            Err(e) => return Err(partial(e.context(format!("finishing the {name} restore")))),
        };
        tracing::info!(backend = name, ?restored, "backend restored");
        backends.get_mut(name).expect("inserted above").restored = restored;
    }
    let rollback = match safety {
        Some(s) => format!(", or roll back to the state before the restore with `{}`", rollback_command(s)),
        None => String::new(),
    };
    let started = Instant::now();
    if !options.skip_verify_restored {
        for r in restorers.iter_mut() {
            let report = backends.get_mut(r.name()).expect("inserted above");
            let Some(expected) = report.digest_expected else { continue };
            let mut found = ContentDigest::default();
            if !or_stop(r.read_back(&mut |record: &[u8]| found.add(record)))
                .await
                .with_context(|| format!("reading back what was restored into {} (the data was written)", r.name()))?
            {
                continue;
            }
            report.digest_found = Some(found);
            report.verified = Some(found == expected);
            if found != expected {
                let detail = differences(verified, r.as_mut()).await;
                bail!(
                    "the restored {} differs from backup {id}: it holds {} records where the archive has {} \
                     (digest {} where {} was expected).{detail} The data was written but is not what was \
                     backed up: stop writers to the target and restore again (with --{}-mode replace to \
                     remove what the archive does not hold){rollback}",
                    r.name(),
                    found.records,
                    expected.records,
                    found.hex(),
                    expected.hex(),
                    mode_flag(r.name())
                );
            }
            tracing::info!(
                backend = r.name(),
                records = found.records,
                "restored state read back: equal to the archive"
            );
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

fn mode_flag(backend: &str) -> &'static str {
    match backend {
        "neo4j" => "graph",
        "qdrant" => "vector",
        _ => "kv",
    }
}

/// Up to ten records on each side that the other lacks, found by reading the target back and the
/// archive again (only when the digests differ, so the cost is paid only then).
async fn differences(verified: &Verified<'_>, restorer: &mut dyn Restorer) -> String {
    let Verified { store, id, sidecar, etag } = *verified;
    let mut found: HashMap<[u8; 32], u32> = HashMap::new();
    let read =
        restorer.read_back(&mut |record: &[u8]| *found.entry(Sha256::digest(record).into()).or_default() += 1).await;
    if let Err(e) = read {
        return format!(" (the differing records could not be listed: {e:#})");
    }
    let mut missing = Vec::new();
    let name = restorer.name().to_string();
    let again = match store.get(&id.archive_key(), etag).await {
        Ok(o) => o,
        Err(e) => return format!(" (the differing records could not be listed: {e:#})"),
    };
    let mut listing = Listing { restorer: &mut *restorer, backend: name, found: &mut found, missing: &mut missing };
    if let Err(e) = read_archive(again.body, sidecar, &mut listing).await {
        return format!(" (the differing records could not be listed: {e:#})");
    }
    let mut extra = Vec::new();
    let _ = restorer
        .read_back(&mut |record: &[u8]| {
            if let Some(n) = found.get_mut(&<[u8; 32]>::from(Sha256::digest(record))) {
                if *n > 0 {
                    *n -= 1;
                    if extra.len() < 10 {
                        extra.push(String::from_utf8_lossy(record).into_owned());
                    }
                }
            }
        })
        .await;
    let mut out = String::new();
    if !missing.is_empty() {
        out.push_str(&format!("\n  archived but not found as archived (first {}):", missing.len()));
        for m in &missing {
            out.push_str(&format!("\n    {}", shorten(m)));
        }
    }
    if !extra.is_empty() {
        out.push_str(&format!("\n  found but not in the archive (first {}):", extra.len()));
        for m in &extra {
            out.push_str(&format!("\n    {}", shorten(m)));
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn shorten(record: &str) -> String {
    match record.char_indices().nth(400) {
        Some((i, _)) => format!("{}…", &record[..i]),
        None => record.to_string(),
    }
}

fn target_hint(backend: &str) -> &'static str {
    match backend {
        "redis" => "pass --redis-url / REDIS_URL",
        "jsonkv" => "pass --kv-dir / NGBAK_KV_DIR",
        "neo4j" => "pass --neo4j-uri / NEO4J_URI",
        "qdrant" => "pass --qdrant-url / QDRANT_URL",
        _ => "this ngbak does not know that backend; use a newer ngbak",
    }
}

/// The verification pass: each selected backend's restorer parses its entries as the write pass
/// would, and the canonical records add up to that backend's content digest.
struct Checking<'a> {
    restorers: &'a mut Vec<Box<dyn Restorer>>,
    digests: BTreeMap<String, ContentDigest>,
}

#[async_trait]
impl EntryVisitor for Checking<'_> {
    async fn visit(&mut self, record: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        if let Some(r) = self.restorers.iter_mut().find(|r| r.name() == record.backend) {
            let digest = self.digests.entry(record.backend.clone()).or_default();
            r.check_entry(record, body, &mut |canonical: &[u8]| digest.add(canonical)).await.with_context(|| {
                format!("{} in backup holds a record that cannot be restored; nothing was restored", record.path)
            })?;
        }
        Ok(())
    }
}

/// Lists archived records of one backend that the read-back did not find (see [`differences`]).
struct Listing<'a> {
    restorer: &'a mut dyn Restorer,
    backend: String,
    found: &'a mut HashMap<[u8; 32], u32>,
    missing: &'a mut Vec<String>,
}

#[async_trait]
impl EntryVisitor for Listing<'_> {
    async fn visit(&mut self, record: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        if record.backend != self.backend {
            return Ok(());
        }
        let (found, missing) = (&mut *self.found, &mut *self.missing);
        self.restorer
            .check_entry(record, body, &mut |canonical: &[u8]| match found
                .get_mut(&<[u8; 32]>::from(Sha256::digest(canonical)))
            {
                Some(n) if *n > 0 => *n -= 1,
                _ if missing.len() < 10 => missing.push(String::from_utf8_lossy(canonical).into_owned()),
                _ => {}
            })
            .await
    }
}

/// Hands each entry to the restorer of its backend (entries of other backends are only read),
/// preparing a backend — clearing it, in `replace` mode — right before its first entry, so a
/// failure earlier in the archive leaves the backends after it untouched.
struct Dispatch<'a> {
    restorers: &'a mut [Box<dyn Restorer>],
    manifest: &'a crate::archive::Manifest,
    /// What each backend prepared so far has taken (it may hold part of the backup).
    progress: BTreeMap<&'static str, Applied>,
}

/// Entries and records a backend has applied.
#[derive(Clone, Copy, Debug, Default)]
struct Applied {
    entries: u64,
    records: u64,
}

impl Dispatch<'_> {
    async fn prepare(&mut self, index: usize) -> Result<()> {
        let name = self.restorers[index].name();
        if self.progress.contains_key(name) {
            return Ok(());
        }
        self.progress.insert(name, Applied::default());
        let backend = &self.manifest.backends[name];
        self.restorers[index].prepare(backend).await.with_context(|| format!("preparing {name} for restore"))
    }

    /// The restorer of the entry's backend, prepared; `None` for a backend not restored.
    async fn ready_for(&mut self, record: &EntryRecord) -> Result<Option<usize>> {
        let Some(i) = self.restorers.iter().position(|r| r.name() == record.backend) else { return Ok(None) };
        self.prepare(i).await?;
        Ok(Some(i))
    }

    /// Counts an entry handed to restorer `i`, or says which entry failed where.
    fn applied(&mut self, i: usize, record: &EntryRecord, written: Result<()>) -> Result<()> {
        let name = self.restorers[i].name();
        written.with_context(|| format!("restoring {} into {name}", record.path))?;
        let applied = self.progress.get_mut(name).expect("prepared before its first entry");
        applied.entries += 1;
        applied.records += record.records;
        Ok(())
    }

    /// Prepares the backends that had no entry (a `replace` restore of an empty backup still
    /// clears them).
    async fn prepare_rest(&mut self) -> Result<()> {
        for i in 0..self.restorers.len() {
            self.prepare(i).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl EntryVisitor for Dispatch<'_> {
    async fn visit(&mut self, record: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        let Some(i) = self.ready_for(record).await? else { return Ok(()) };
        let written = self.restorers[i].restore_entry(record, body).await;
        self.applied(i, record, written)
    }

    async fn visit_checked(&mut self, record: &EntryRecord, bytes: Vec<u8>) -> Result<()> {
        let Some(i) = self.ready_for(record).await? else { return Ok(()) };
        let written = self.restorers[i].restore_checked(record, bytes).await;
        self.applied(i, record, written)
    }

    fn checks_before_visit(&self) -> bool {
        true
    }
}

/// The report object `<id>.restore-report.json` that the restore function, the container task
/// and the CLI write after every restore: the report, or the error with what had been written
/// (`partial`) and why it stopped (`stopped`). Secrets are scrubbed.
pub fn outcome_document(
    id: &BackupId,
    result: &Result<RestoreReport>,
    started_at: chrono::DateTime<chrono::Utc>,
    trigger: &str,
) -> serde_json::Value {
    use serde_json::json;
    let mut doc = match result {
        Ok(report) => json!({ "status": "completed", "report": report }),
        Err(e) => {
            let mut doc = json!({ "status": "failed", "error": crate::net::scrub(&format!("{e:#}")) });
            if let Some(partial) = e.downcast_ref::<PartialRestore>() {
                doc["partial"] = json!(partial);
            }
            if let Some(stopped) = e.downcast_ref::<crate::stop::Stopped>() {
                doc["stopped"] = json!(stopped.reason);
            }
            doc
        }
    };
    doc["backup_id"] = json!(id);
    doc["started_at"] = json!(started_at);
    doc["finished_at"] = json!(chrono::Utc::now());
    doc["trigger"] = json!(trigger);
    doc
}

/// The command that rolls a restore back to its safety backup.
pub fn rollback_command(safety: &BackupId) -> String {
    format!("ngbak restore {safety} --kv-mode replace --graph-mode replace --vector-mode replace --no-safety-backup")
}

/// What a restore that failed after it began writing had written: per backend, how far it got.
/// Its message is the operator's account; the restore function puts it in its report object.
#[derive(Debug, Serialize)]
pub struct PartialRestore {
    pub backup_id: BackupId,
    /// Backends that were written to (and, in replace mode, cleared first), with how far each got.
    pub written: BTreeMap<String, WrittenSoFar>,
    /// Backends of the restore that were not touched.
    pub not_written: Vec<String>,
    pub safety_backup: Option<BackupId>,
    pub rollback_command: Option<String>,
}

/// How far one backend's restore got: the entries (and their records) handed to its writer.
/// Writers pipeline, so some of these may not have landed, and the entry in hand when the
/// restore stopped may have been written in part: the target holds an unknown mix.
#[derive(Debug, Serialize)]
pub struct WrittenSoFar {
    pub target: String,
    pub entries_sent: u64,
    pub entries_total: u64,
    pub records_sent: u64,
    pub records_total: u64,
}

impl PartialRestore {
    fn new(
        id: &BackupId,
        manifest: &crate::archive::Manifest,
        targets: &[(&'static str, String)],
        progress: &BTreeMap<&'static str, Applied>,
        safety: Option<&BackupId>,
    ) -> Self {
        let mut written = BTreeMap::new();
        let mut not_written = Vec::new();
        for (name, target) in targets {
            let Some(applied) = progress.get(name) else {
                not_written.push(name.to_string());
                continue;
            };
            let entries: Vec<_> = manifest.entries.iter().filter(|e| &e.backend == name).collect();
            written.insert(
                name.to_string(),
                WrittenSoFar {
                    target: target.clone(),
                    entries_sent: applied.entries,
                    entries_total: entries.len() as u64,
                    records_sent: applied.records,
                    records_total: entries.iter().map(|e| e.records).sum(),
                },
            );
        }
        PartialRestore {
            backup_id: id.clone(),
            written,
            not_written,
            safety_backup: safety.cloned(),
            rollback_command: safety.map(rollback_command),
        }
    }
}

impl std::fmt::Display for PartialRestore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.written.is_empty() {
            return write!(f, "nothing was written");
        }
        let id = &self.backup_id;
        write!(f, "PARTIAL RESTORE of backup {id}: the restore stopped after writing to ")?;
        let parts: Vec<String> = self
            .written
            .iter()
            .map(|(name, w)| {
                format!(
                    "{name} ({}: {} of {} entries, {} of {} records sent)",
                    w.target, w.entries_sent, w.entries_total, w.records_sent, w.records_total
                )
            })
            .collect();
        write!(f, "{}; those targets now hold part of the backup", parts.join(", "))?;
        if !self.not_written.is_empty() {
            write!(f, ", {} untouched", self.not_written.join(", "))?;
        }
        write!(f, ". Fix the cause and run the restore again")?;
        match &self.rollback_command {
            Some(cmd) => write!(f, ", or roll back to the state before the restore with `{cmd}`"),
            None => write!(f, " (no safety backup was taken)"),
        }
    }
}
