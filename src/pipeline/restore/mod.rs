//! Verify and restore.
//!
//! A restore reads the archive twice: a first full pass proves it matches its sidecar (size,
//! SHA-256, every entry) before any backend is touched; the second pass, pinned to the same
//! object version, streams the entries into the backends. Nothing is staged on disk.
//!
//! The steps, one room each: `plan` (which backends, each target checked), `verify` (the
//! verification pass), `safety` (the rollback point), `write` (the writing pass), `readback`
//! (the proof that the restored state equals the archive) and `report` (what the restore tells,
//! also after a failure).

mod links;
mod plan;
mod readback;
mod report;
mod safety;
mod verify;
mod write;

pub use links::RestoredInconsistent;
pub use report::{outcome_document, rollback_command, BackendReport, PartialRestore, RestoreReport, WrittenSoFar};
pub use verify::{load_sidecar, load_trusted, verify, VerifyReport};

use crate::backends::Restorer;
use crate::id::BackupId;
use crate::store::ObjectStore;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;
use verify::Verified;

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
    /// The link check over the deployment after the restore (and, in a dry run, before it).
    pub links: Option<crate::pipeline::quiet::LinkCheck>,
    /// Fail when the links do not hold after the restore (`--require-consistent`).
    pub require_consistent: bool,
    /// Whose signatures are trusted: a backup they do not vouch for is refused before any read.
    pub trust: crate::authenticity::Trust,
    /// Signs the safety backup (it is a backup like any other).
    pub signing_key: Option<Arc<crate::authenticity::SigningKey>>,
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

/// Verifies the archive, then restores it into `restorers`, then reads the restored state back.
pub async fn run_restore(
    store: &dyn ObjectStore,
    id: &BackupId,
    mut restorers: Vec<Box<dyn Restorer>>,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let (sidecar, signature) = load_trusted(store, id, &options.trust).await?;
    let manifest = &sidecar.manifest;
    let skipped = plan::select(id, manifest, &options.only, &mut restorers)?;
    plan::preflight(manifest, &mut restorers).await?;
    let verification_started = Instant::now();
    crate::progress::phase("verifying");
    let (checked, etag, expected_digests) = verify::verification_pass(store, id, &sidecar, &mut restorers).await?;
    let verification_seconds = verification_started.elapsed().as_secs_f64();

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
        (Some(safety), false) => {
            crate::progress::phase("safety backup");
            // The rollback point is no plaintext leak: encrypted to the restored archive's recipients.
            let encrypt_to = match &sidecar.encryption {
                Some(e) => crate::encryption::Recipients::named(&e.recipients, &sidecar.opener)?,
                None => Default::default(),
            };
            safety::take_safety_backup(safety, id, &mut restorers, options.signing_key.clone(), encrypt_to).await?
        }
        _ => None,
    };
    let safety_seconds = safety_started.elapsed().as_secs_f64();
    if !options.dry_run {
        crate::progress::phase("writing");
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
    let restored: Vec<&str> = restorers.iter().map(|r| r.name()).collect();
    let consistency = match &options.links {
        Some(check) => links::after_restore(check, &verified, &restored, &skipped, options.dry_run).await,
        None => None,
    };
    let report = RestoreReport {
        backup_id: id.clone(),
        dry_run: options.dry_run,
        verified: true,
        archive_sha256: checked.archive_sha256,
        signature: Some(signature),
        backends,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
        verify_restored_seconds: verify_seconds,
        verification_pass_seconds: verification_seconds,
        safety_backup: safety,
        safety_backup_seconds: safety_seconds,
        consistency,
    };
    links::require(report, options.require_consistent)
}

/// The write pass and the read-back check; returns the seconds the check took.
async fn write_and_check(
    verified: &Verified<'_>,
    restorers: &mut [Box<dyn Restorer>],
    backends: &mut BTreeMap<String, BackendReport>,
    options: &RestoreOptions,
    safety: Option<&BackupId>,
) -> Result<f64> {
    write::write_pass(verified, restorers, backends, safety).await?;
    crate::progress::phase("reading back");
    if options.skip_verify_restored {
        return Ok(0.0);
    }
    readback::check_restored(verified, restorers, backends, safety).await
}
