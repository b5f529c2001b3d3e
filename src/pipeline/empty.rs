//! Empty backups are loud: a backend whose export held nothing (a pattern that matches no key, a
//! directory without nano-graphrag's files, a label without nodes, a collection without points)
//! is almost always a wrong setting, found otherwise only at the restore that needed it.

use crate::archive::BackendManifest;
use crate::backends::Exporter;
use crate::failure::FailureKind;
use anyhow::Result;
use std::collections::BTreeMap;

/// What to do with a backend that exported nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmptyPolicy {
    /// Store the backup; say so on stderr and in the backend's manifest warnings.
    #[default]
    Warn,
    /// Fail the backup (`--fail-if-empty`, the scheduled function's default): nothing is stored.
    Fail,
    /// An empty deployment on purpose (`--allow-empty`): store it, say nothing.
    Allow,
}

/// Asks every exporter whether it held nothing, and applies `policy`.
pub(super) async fn check(
    exporters: &mut [Box<dyn Exporter>],
    backends: &mut BTreeMap<String, BackendManifest>,
    policy: EmptyPolicy,
) -> Result<()> {
    if policy == EmptyPolicy::Allow {
        return Ok(());
    }
    let mut empty = Vec::new();
    for exporter in exporters.iter_mut() {
        let name = exporter.name();
        let Some(exported) = backends.get_mut(name) else { continue };
        let found = exporter.emptiness(exported).await;
        let why = match found {
            Ok(Some(why)) => why,
            Ok(None) => continue,
            // The export itself succeeded: a failed look at what else is there only loses detail.
            Err(e) => format!("it exported nothing (and looking at what it holds failed: {e:#})"),
        };
        let warning = format!("empty backup of {name}: {why}");
        exported.warnings.push(warning.clone());
        empty.push(warning);
    }
    if empty.is_empty() {
        return Ok(());
    }
    let all = empty.join("; ");
    if policy == EmptyPolicy::Fail {
        let message = format!(
            "{all}. No archive was stored (--fail-if-empty). Fix the setting, or pass --allow-empty \\
             (NGBAK_ALLOW_EMPTY=true) for a deployment that is empty on purpose"
        );
        return Err(FailureKind::ConfigurationError.marked(message).into());
    }
    tracing::warn!("{all} (the backup is stored; --fail-if-empty makes this an error, --allow-empty silences it)");
    Ok(())
}
