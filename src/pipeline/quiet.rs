//! Did the deployment hold still, and does it link up, while a backup read it? Each backend's
//! state is marked before the export and after it (and after the link check, which reads the
//! stores again, so the check describes the state that was archived); what moved and the link
//! rules' counts go into the manifest. `--consistent` makes a moved state a failed try.

use crate::archive::{ConsistencySummary, RuleCounts};
use crate::backends::{BackendArgs, Exporter};
use crate::consistency::state::StateMark;
use crate::consistency::{Combined, ConsistencyReport, Deployment};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// `--consistent`: how hard to try for an export during which the stores held still.
#[derive(Clone, Debug)]
pub struct QuietPolicy {
    /// Fail a try whose stores moved (otherwise the backup is stored, marked inconsistent).
    pub required: bool,
    pub tries: u32,
    /// Wait before the second try; doubled for each next one, at most five minutes.
    pub pause: Duration,
}

impl Default for QuietPolicy {
    fn default() -> Self {
        QuietPolicy { required: false, tries: 1, pause: Duration::from_secs(5) }
    }
}

impl QuietPolicy {
    pub fn pause_before(&self, attempt: u32) -> Duration {
        (self.pause * 2u32.saturating_pow(attempt.saturating_sub(2))).min(Duration::from_secs(300))
    }
}

/// The link check a backup runs over the stores it exported, after the export, and a restore
/// over the deployment it leaves (or, in a dry run, would leave).
#[derive(Clone)]
pub struct LinkCheck {
    /// The configured backends, whose live stores and archive readers the check uses.
    backends: Arc<BackendArgs>,
    /// Backends a restore replaces (their live state is not part of what it leaves).
    pub replaced: Vec<&'static str>,
    /// Check after a restore even when it restored every configured backend (`--check-links`).
    pub after_whole_restore: bool,
}

impl LinkCheck {
    /// Over what the configured `backends` hold.
    pub fn of(backends: &BackendArgs) -> Self {
        LinkCheck { backends: Arc::new(backends.clone()), replaced: Vec::new(), after_whole_restore: false }
    }

    /// The configured backends that hold a part of the deployment.
    pub fn configured(&self) -> Vec<&'static str> {
        let layout = &self.backends.layout;
        self.backends.configured().filter(|b| b.deployment(layout).is_some()).map(|b| b.descriptor().name).collect()
    }

    /// What a restore of `restored` from the backup of `sidecar` would leave: those backends as
    /// the archive holds them (and, unless replaced, as they are now: a merge keeps what it does
    /// not overwrite), beside every other configured backend as it is now.
    pub async fn predict(
        &self,
        store: &dyn crate::store::ObjectStore,
        sidecar: &crate::archive::Sidecar,
        restored: &[&str],
    ) -> Result<ConsistencyReport, String> {
        let fail = |e: anyhow::Error| format!("{e:#}");
        let archive = super::archived_links::ArchiveDeployment::new(
            store,
            sidecar.clone(),
            self.backends.archived_facts(restored),
        );
        let mut parts: Vec<Box<dyn Deployment + '_>> = vec![Box::new(archive)];
        let live: Vec<&str> = crate::backends::descriptors()
            .iter()
            .map(|d| d.name)
            .filter(|name| !restored.contains(name) || !self.replaced.contains(name))
            .collect();
        parts.extend(self.backends.deployments(&live));
        crate::consistency::check(&mut Combined(parts), &self.backends.layout).await.map_err(fail)
    }

    /// The rules' counts, or why they could not be had (a failed check never fails the backup).
    async fn run(&self, exported: &[&str]) -> Result<Vec<RuleCounts>, String> {
        Ok(self.report(exported).await?.counts())
    }

    /// The whole report over the backends named in `only` (all configured when empty), or why
    /// there is none.
    pub async fn report(&self, only: &[&str]) -> Result<ConsistencyReport, String> {
        let parts = self.backends.deployments(only);
        if parts.is_empty() {
            return Err("no backend holds a part of a GraphRAG deployment".into());
        }
        crate::consistency::check(&mut Combined(parts), &self.backends.layout).await.map_err(|e| format!("{e:#}"))
    }
}

impl std::fmt::Debug for LinkCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkCheck").field("layout", &self.backends.layout).finish_non_exhaustive()
    }
}

/// Every backend's mark, or why it has none.
pub(super) type Marks = BTreeMap<String, Result<StateMark, String>>;

/// The marks before the export: a backend that cannot be reached fails the backup here, before
/// anything is exported (its export would fail the same way).
pub(super) async fn marks_before(exporters: &mut [Box<dyn Exporter>]) -> anyhow::Result<Marks> {
    let mut marks = BTreeMap::new();
    for exporter in exporters.iter_mut() {
        let name = exporter.name();
        let mark = exporter.state_mark().await.map_err(|e| e.context(format!("{name} export failed")))?;
        marks.insert(name.to_string(), mark.ok_or_else(|| CANNOT.to_string()));
    }
    Ok(marks)
}

const CANNOT: &str = "it cannot say whether it moved";

/// The marks after the export (a failure here only leaves the backend unmarked).
async fn marks_after(exporters: &mut [Box<dyn Exporter>]) -> Marks {
    let mut marks = BTreeMap::new();
    for exporter in exporters.iter_mut() {
        let mark = match exporter.state_mark().await {
            Ok(Some(mark)) => Ok(mark),
            Ok(None) => Err(CANNOT.to_string()),
            Err(e) => Err(format!("marking its state after the export failed: {e:#}")),
        };
        marks.insert(exporter.name().to_string(), mark);
    }
    marks
}

/// After the export: the link check, then the second marks, compared with the first.
pub(super) async fn summarise(
    exporters: &mut [Box<dyn Exporter>],
    before: Marks,
    links: Option<&LinkCheck>,
    attempts: u32,
) -> ConsistencySummary {
    let names: Vec<&str> = exporters.iter().map(|e| e.name()).collect();
    let (rules, links_not_checked) = match links {
        None => (Vec::new(), Some("not asked for (--no-link-check, or a safety backup)".to_string())),
        Some(check) => match check.run(&names).await {
            Ok(rules) => (rules, None),
            Err(why) => (Vec::new(), Some(why)),
        },
    };
    let after = marks_after(exporters).await;
    let mut summary = ConsistencySummary { attempts, rules, links_not_checked, ..Default::default() };
    for (name, first) in before {
        match (first, after.get(&name)) {
            (Ok(first), Some(Ok(second))) => {
                let moved = first.moved(second);
                if !moved.is_empty() {
                    summary.moved.insert(name, moved);
                }
            }
            (Err(why), _) => {
                summary.unmarked.insert(name, why);
            }
            (_, Some(Err(why))) => {
                summary.unmarked.insert(name, why.clone());
            }
            (Ok(_), None) => {}
        }
    }
    summary.consistent = summary.moved.is_empty() && summary.rules.iter().all(|r| r.broken == 0);
    summary
}

/// A try whose stores moved, under `--consistent`.
#[derive(Debug, thiserror::Error)]
#[error("the stores moved while the backup read them ({})", describe(.0))]
pub struct Moved(pub BTreeMap<String, Vec<String>>);

pub fn describe(moved: &BTreeMap<String, Vec<String>>) -> String {
    moved.iter().map(|(name, what)| format!("{name}: {}", what.join(", "))).collect::<Vec<_>>().join("; ")
}
