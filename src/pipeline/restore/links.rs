//! After a restore: do the deployment's stores still link up? The same rules as
//! `ngbak consistency`, over every configured backend, restored or not: a restore with `--only`
//! can leave the graph of one backup beside the vectors of another, and this is where it shows.

use super::RestoreReport;
use crate::archive::Manifest;
use crate::consistency::ConsistencyReport;
use crate::pipeline::quiet::LinkCheck;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

/// The links after the restore (in a dry run: as the restore would leave them).
#[derive(Debug, Serialize)]
pub struct AfterRestore {
    /// Every checked link holds.
    pub consistent: bool,
    /// A dry run: the links predicted from the archive's entries for the backends it would
    /// restore and the live stores for the others (and for those it would merge into).
    pub predicted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<ConsistencyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_backup: Option<crate::archive::ConsistencySummary>,
}

pub(super) async fn after_restore(
    check: &LinkCheck,
    verified: &super::verify::Verified<'_>,
    restored: &[&str],
    skipped: &BTreeMap<String, String>,
    dry_run: bool,
) -> Option<AfterRestore> {
    let manifest: &Manifest = &verified.sidecar.manifest;
    let mut after = AfterRestore {
        consistent: true,
        predicted: dry_run,
        warning: None,
        report: None,
        not_checked: None,
        at_backup: manifest.consistency.clone(),
    };
    // A restore of every configured backend leaves the backup's own state: its links are what
    // the manifest recorded, and reading the stores again would cost the operator's wait.
    let whole = skipped.is_empty() && check.configured().iter().all(|name| restored.contains(name));
    if whole && !dry_run && !check.after_whole_restore {
        let recorded = manifest.consistency.as_ref().filter(|c| !c.rules.is_empty());
        after.consistent = recorded.is_none_or(|c| c.rules.iter().all(|r| r.broken == 0));
        after.not_checked = Some(
            match recorded {
                Some(_) => {
                    "a whole restore leaves the backup's state, whose links are at_backup (--check-links reads \
                            the restored stores again)"
                }
                None => {
                    "a whole restore leaves the backup's state; its manifest records no link check \
                         (--check-links reads the restored stores)"
                }
            }
            .into(),
        );
        if !after.consistent {
            after.warning = Some("the backup itself was inconsistent when it was taken (see at_backup)".into());
        }
        return Some(after);
    }
    let report = match dry_run {
        true => check.predict(verified.store, verified.sidecar, restored).await,
        false => check.report(&[]).await,
    };
    match report {
        Err(why) => after.not_checked = Some(why),
        Ok(report) => {
            after.consistent = report.consistent;
            if !report.consistent {
                let broken: Vec<String> =
                    report.rules.iter().filter(|r| r.broken > 0).map(|r| format!("{} {}", r.rule, r.broken)).collect();
                let when = if dry_run { "as this restore would leave it" } else { "after the restore" };
                let mut warning = format!("the deployment is inconsistent {when}: broken links {}", broken.join(", "));
                if !skipped.is_empty() {
                    let untouched: Vec<&str> = skipped.keys().map(String::as_str).collect();
                    warning += &format!(
                        "; this restore leaves {} as they were, which may hold another state: restore them from \
                         the same backup (without --only), or re-index",
                        untouched.join(", ")
                    );
                }
                tracing::warn!("{warning}");
                after.warning = Some(warning);
            }
            after.report = Some(report);
        }
    }
    Some(after)
}

/// A restore that wrote and read back its data, after which the links do not hold, under
/// `--require-consistent`: the report is kept whole, for the report object.
#[derive(Debug, thiserror::Error)]
#[error(
    "backup {} was restored (and read back), but the deployment is inconsistent: {}. Run `ngbak consistency` \
     for the broken links; restore the other backends from the same backup, re-index, or roll back{}",
    .0.backup_id,
    .0.consistency.as_ref().and_then(|c| c.warning.as_deref()).unwrap_or("broken links"),
    .0.safety_backup.as_ref().map(|s| format!(" with `{}`", super::rollback_command(s))).unwrap_or_default()
)]
pub struct RestoredInconsistent(pub Box<RestoreReport>);

/// The report, or under `--require-consistent` an error when the restored links do not hold.
pub(super) fn require(report: RestoreReport, required: bool) -> Result<RestoreReport> {
    let broken = report.consistency.as_ref().is_some_and(|c| !c.consistent);
    if required && broken && !report.dry_run {
        return Err(RestoredInconsistent(Box::new(report)).into());
    }
    Ok(report)
}
