//! What a restore tells: its report, and when it fails after writing, the account of what was
//! written (`PartialRestore`), both in the report object the functions and the CLI store.

use crate::archive::ContentDigest;
use crate::id::BackupId;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

/// What a restore did, backend by backend.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub backup_id: BackupId,
    pub dry_run: bool,
    pub verified: bool,
    pub archive_sha256: String,
    /// Who signed the backup, as the trusted keys tell (absent in reports of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::authenticity::Provenance>,
    pub backends: BTreeMap<String, BackendReport>,
    /// Backends in the archive that were not restored, and why.
    pub skipped: BTreeMap<String, String>,
    pub seconds: f64,
    /// Seconds spent reading the restored state back (part of `seconds`).
    pub verify_restored_seconds: f64,
    /// Seconds the verification pass took (the archive read and every record parsed, before
    /// anything is written; part of `seconds`).
    pub verification_pass_seconds: f64,
    /// The backup of what this restore overwrote, taken before it wrote: `ngbak restore <it>`
    /// with `replace` modes rolls the restore back.
    pub safety_backup: Option<BackupId>,
    /// Seconds the safety backup took (part of `seconds`).
    pub safety_backup_seconds: f64,
    /// The deployment's links after the restore (in a dry run: as the stores are now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<super::links::AfterRestore>,
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

/// Entries and records a backend has applied.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Applied {
    pub(super) entries: u64,
    pub(super) records: u64,
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
            let kind = crate::pipeline::failure_kind(e).name();
            let mut doc = json!({ "status": "failed", "kind": kind, "error": crate::net::scrub(&format!("{e:#}")) });
            if let Some(partial) = e.downcast_ref::<PartialRestore>() {
                doc["partial"] = json!(partial);
            }
            if let Some(inconsistent) = e.downcast_ref::<super::RestoredInconsistent>() {
                doc["report"] = json!(inconsistent.0);
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
    pub(super) fn new(
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
