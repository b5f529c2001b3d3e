//! Which backends a restore writes, and the check of each target before the archive is read.

use crate::archive::Manifest;
use crate::backends::Restorer;
use crate::failure::FailureKind;
use crate::id::BackupId;
use crate::stop::or_stop;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};

/// Keeps the restorers of the backends to restore (`only`, or all the archive holds); returns
/// the archive's other backends with why they are skipped. A backend the archive holds and that
/// is wanted but has no configured target fails the restore, naming the setting to give.
pub(super) fn select(
    id: &BackupId,
    manifest: &Manifest,
    only: &BTreeSet<String>,
    restorers: &mut Vec<Box<dyn Restorer>>,
) -> Result<BTreeMap<String, String>> {
    for name in only {
        if !manifest.backends.contains_key(name) {
            let held = manifest.backends.keys().cloned().collect::<Vec<_>>().join(", ");
            let message = format!("backup {id} holds no backend {name:?}; it holds: {held}");
            return Err(FailureKind::ConfigurationError.marked(message).into());
        }
    }
    let mut skipped = BTreeMap::new();
    let mut selected = BTreeSet::new();
    for name in manifest.backends.keys() {
        let wanted = only.is_empty() || only.contains(name);
        let has_target = restorers.iter().any(|r| r.name() == name);
        match (wanted, has_target) {
            (false, _) => {
                skipped.insert(name.clone(), "not selected".into());
            }
            (true, false) => {
                let message = format!(
                    "backup {id} holds backend {name:?} but no target for it is configured: {} — or restore a \
                     subset with --only",
                    target_hint(name)
                );
                return Err(FailureKind::ConfigurationError.marked(message).into());
            }
            (true, true) => {
                selected.insert(name.clone());
            }
        }
    }
    restorers.retain(|r| selected.contains(r.name()));
    Ok(skipped)
}

/// Every target is reached and checked against the archive before the archive is even read.
pub(super) async fn preflight(manifest: &Manifest, restorers: &mut [Box<dyn Restorer>]) -> Result<()> {
    for r in restorers.iter_mut() {
        let name = r.name();
        let target = r.target();
        or_stop(r.preflight(&manifest.backends[name])).await.with_context(|| {
            FailureKind::BackendUnavailable.marked(format!("checking the {name} target {target} (nothing was written)"))
        })?;
    }
    Ok(())
}

fn target_hint(backend: &str) -> String {
    match crate::backends::describe(backend) {
        Some(d) => d.how_to_configure(),
        None => "this ngbak does not know that backend; use a newer ngbak".into(),
    }
}
