//! Retention: which backups `ngbak prune` keeps, by calendar buckets in UTC as restic's `forget`.
//!
//! Policies are applied to complete backups (archive and sidecar), newest first; a backup is kept
//! when any policy keeps it. On top of the policies, prune never deletes the newest backup that
//! verifies, nor one under an S3 Object Lock, and never touches incomplete backups.

use super::catalog::{delete_backup, list_backups, BackupListing};
use super::restore::verify;
use crate::authenticity::Trust;
use crate::id::BackupId;
use crate::store::ObjectStore;
use anyhow::{bail, Result};
use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// The calendar bucket a backup time falls in (a day, an ISO week, a month).
type BucketOf = fn(&DateTime<Utc>) -> String;

#[derive(Clone, Debug, Default, PartialEq, clap::Args)]
pub struct KeepPolicy {
    /// Keep the N most recent backups.
    #[arg(long, env = "NGBAK_KEEP_LAST")]
    pub keep_last: Option<usize>,
    /// Keep the most recent backup of each of the last N days that have one.
    #[arg(long, env = "NGBAK_KEEP_DAILY")]
    pub keep_daily: Option<usize>,
    /// Keep the most recent backup of each of the last N ISO weeks that have one.
    #[arg(long, env = "NGBAK_KEEP_WEEKLY")]
    pub keep_weekly: Option<usize>,
    /// Keep the most recent backup of each of the last N months that have one.
    #[arg(long, env = "NGBAK_KEEP_MONTHLY")]
    pub keep_monthly: Option<usize>,
    /// Keep the N most recent safety backups (`pre-restore_…`, taken before each restore); they
    /// do not count for the other rules. Default 3.
    #[arg(long, env = "NGBAK_KEEP_SAFETY")]
    pub keep_safety: Option<usize>,
}

impl KeepPolicy {
    pub fn is_empty(&self) -> bool {
        [self.keep_last, self.keep_daily, self.keep_weekly, self.keep_monthly].iter().all(|k| k.unwrap_or(0) == 0)
    }

    /// For backups sorted newest first: the reasons each one is kept (empty: not kept).
    pub fn apply(&self, times: &[DateTime<Utc>]) -> Vec<Vec<String>> {
        let mut reasons = vec![Vec::new(); times.len()];
        if let Some(n) = self.keep_last {
            for r in reasons.iter_mut().take(n) {
                r.push("last".to_string());
            }
        }
        let buckets: [(&str, Option<usize>, BucketOf); 3] = [
            ("daily", self.keep_daily, |t| t.format("%Y-%m-%d").to_string()),
            ("weekly", self.keep_weekly, |t| format!("{}-W{:02}", t.iso_week().year(), t.iso_week().week())),
            ("monthly", self.keep_monthly, |t| t.format("%Y-%m").to_string()),
        ];
        for (name, keep, bucket_of) in buckets {
            let Some(mut left) = keep else { continue };
            let mut last_bucket = None;
            for (i, t) in times.iter().enumerate() {
                if left == 0 {
                    break;
                }
                let bucket = bucket_of(t);
                if last_bucket.as_ref() != Some(&bucket) {
                    reasons[i].push(format!("{name} {bucket}"));
                    last_bucket = Some(bucket);
                    left -= 1;
                }
            }
        }
        reasons
    }
}

/// What prune decided for one backup.
#[derive(Debug, Serialize)]
pub struct Decision {
    pub backup_id: BackupId,
    pub created_at: Option<DateTime<Utc>>,
    pub keep: bool,
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub decisions: Vec<Decision>,
    pub deleted: usize,
}

/// Applies `policy` to the backups in `store`, deleting what it does not keep (unless `dry_run`).
/// The newest backup that verifies (and, with trusted keys, that one of them signed) is kept.
pub async fn prune(store: &dyn ObjectStore, policy: &KeepPolicy, dry_run: bool, trust: &Trust) -> Result<PruneReport> {
    if policy.is_empty() {
        bail!("prune needs at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly (greater than 0)");
    }
    let all = list_backups(store, trust).await?;
    let (complete, other): (Vec<BackupListing>, Vec<BackupListing>) =
        all.into_iter().partition(|b| b.status == "complete" && b.created_at.is_some());
    // Safety backups are kept by their own rule and do not push scheduled backups out.
    let (safety, complete): (Vec<BackupListing>, Vec<BackupListing>) =
        complete.into_iter().partition(|b| b.backup_id.is_safety());
    let times: Vec<DateTime<Utc>> = complete.iter().filter_map(|b| b.created_at).collect();
    let mut reasons = policy.apply(&times);
    let keep_safety = policy.keep_safety.unwrap_or(3);
    let safety_reasons: Vec<Vec<String>> = (0..safety.len())
        .map(|i| if i < keep_safety { vec![format!("one of the {keep_safety} newest safety backups")] } else { vec![] })
        .collect();

    // The newest backup that verifies is kept whatever the policy says.
    for (i, b) in complete.iter().enumerate() {
        match verify(store, &b.backup_id, trust).await {
            Ok(_) => {
                reasons[i].push("newest verified backup".into());
                break;
            }
            Err(e) => {
                tracing::warn!(backup_id = %b.backup_id, "does not verify, so it does not protect older backups: {e:#}")
            }
        }
    }
    let mut decisions = Vec::new();
    let mut deleted = 0;
    for (b, mut why) in complete.into_iter().zip(reasons).chain(safety.into_iter().zip(safety_reasons)) {
        if why.is_empty() && store.is_locked(&b.backup_id.archive_key()).await? {
            why.push("under S3 Object Lock".into());
        }
        let keep = !why.is_empty();
        if !keep && !dry_run {
            delete_backup(store, &b.backup_id).await?;
            deleted += 1;
        }
        decisions.push(Decision { backup_id: b.backup_id, created_at: b.created_at, keep, reasons: why });
    }
    for b in other {
        let reason = format!("not touched: {}", b.status);
        decisions.push(Decision {
            backup_id: b.backup_id,
            created_at: b.created_at,
            keep: true,
            reasons: vec![reason],
        });
    }
    Ok(PruneReport { dry_run, decisions, deleted })
}

/// Counts of kept and removed backups, for logs.
pub fn summary(report: &PruneReport) -> BTreeMap<&'static str, usize> {
    let kept = report.decisions.iter().filter(|d| d.keep).count();
    BTreeMap::from([("kept", kept), ("removed", report.decisions.len() - kept)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn kept(policy: &KeepPolicy, times: &[DateTime<Utc>]) -> Vec<usize> {
        policy.apply(times).iter().enumerate().filter(|(_, r)| !r.is_empty()).map(|(i, _)| i).collect()
    }

    #[test]
    fn calendar_buckets_keep_the_newest_of_each() {
        // Newest first: two on Monday Nov 23 (ISO week 48), Sunday Nov 22 and Monday Nov 16 (both
        // week 47), and one in October (week 44).
        let times =
            [at(2026, 11, 23, 15), at(2026, 11, 23, 3), at(2026, 11, 22, 3), at(2026, 11, 16, 3), at(2026, 10, 30, 3)];
        assert_eq!(kept(&KeepPolicy { keep_last: Some(2), ..Default::default() }, &times), vec![0, 1]);
        assert_eq!(kept(&KeepPolicy { keep_daily: Some(2), ..Default::default() }, &times), vec![0, 2]);
        assert_eq!(kept(&KeepPolicy { keep_weekly: Some(2), ..Default::default() }, &times), vec![0, 2]);
        assert_eq!(kept(&KeepPolicy { keep_weekly: Some(3), ..Default::default() }, &times), vec![0, 2, 4]);
        assert_eq!(kept(&KeepPolicy { keep_monthly: Some(5), ..Default::default() }, &times), vec![0, 4]);
        let mixed = KeepPolicy { keep_last: Some(1), keep_daily: Some(1), keep_monthly: Some(2), ..Default::default() };
        assert_eq!(kept(&mixed, &times), vec![0, 4]);
        assert!(KeepPolicy::default().is_empty() && KeepPolicy { keep_last: Some(0), ..Default::default() }.is_empty());
    }
}
