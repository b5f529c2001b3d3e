//! Archive format v1: the header, the manifest, the sidecar and the rules every entry name obeys.
//! FORMAT.md at the project root is the human-readable specification of the same thing.

use crate::id::BackupId;
use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const FORMAT_NAME: &str = "ngbak";
pub const FORMAT_VERSION: u32 = 1;
/// First entry of every archive.
pub const HEADER_PATH: &str = "ngbak.json";
/// Last entry of every archive.
pub const MANIFEST_PATH: &str = "manifest.json";
/// Top-level folders that backend data may live under.
pub const DATA_PREFIXES: [&str; 4] = ["kv/", "graph/", "vector/", "config/"];

/// The small first entry: enough to recognise an archive and what it holds without reading on.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ArchiveHeader {
    pub format: String,
    pub format_version: u32,
    pub backup_id: BackupId,
    pub created_at: DateTime<Utc>,
    pub tool_version: String,
    /// Names of the backends in this archive (`redis`, `jsonkv`, `neo4j`, `qdrant`).
    pub backends: Vec<String>,
}

/// The last entry, and (with [`ArchiveDigest`]) the sidecar object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub backup_id: BackupId,
    pub created_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub tool_version: String,
    pub backends: BTreeMap<String, BackendManifest>,
    pub entries: Vec<EntryRecord>,
    /// The configuration the backup ran with, secrets redacted.
    pub config: serde_json::Value,
    /// Why the backup was taken when not on schedule or by hand (e.g. the safety backup before a
    /// restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether the stores held still while they were read, and whether they link up (absent in
    /// archives of older ngbak versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencySummary>,
}

/// What a backup knows of the deployment's consistency (FORMAT.md, "Consistency"): counts only,
/// never the ids of broken links (those are the report of `ngbak consistency`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ConsistencySummary {
    /// The stores held still from the export's start to its end and every checked link holds.
    pub consistent: bool,
    /// What moved while the export ran, per backend (empty when every marked backend held still).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub moved: BTreeMap<String, Vec<String>>,
    /// Backends whose state could not be marked, and why (their writes would go unseen).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unmarked: BTreeMap<String, String>,
    /// Exports it took (`--consistent` exports again until the stores hold still).
    pub attempts: u32,
    /// The link rules' counts over the stores as the export left them; empty when not checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleCounts>,
    /// Why the links were not checked, when they were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links_not_checked: Option<String>,
}

/// One link rule's counts.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RuleCounts {
    pub rule: String,
    pub checked: bool,
    pub holds: u64,
    pub broken: u64,
}

impl ConsistencySummary {
    /// One line for `list` and `inspect`: `consistent`, or what is wrong.
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        for (backend, moved) in &self.moved {
            parts.push(format!("{backend} moved during the backup ({})", moved.join(", ")));
        }
        let broken: Vec<String> =
            self.rules.iter().filter(|r| r.broken > 0).map(|r| format!("{} {} broken", r.rule, r.broken)).collect();
        if !broken.is_empty() {
            parts.push(format!("links broken: {}", broken.join(", ")));
        }
        let checked = self.rules.iter().filter(|r| r.checked).count();
        if parts.is_empty() {
            match (checked, &self.links_not_checked) {
                (0, Some(why)) => format!("held still; links not checked ({why})"),
                (0, None) => "held still; no link rule could be checked".into(),
                (n, _) => format!("consistent (held still, {n} link rules hold)"),
            }
        } else {
            format!("INCONSISTENT: {}", parts.join("; "))
        }
    }
}

/// What one backend put into the archive.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BackendManifest {
    /// `kv`, `graph` or `vector`.
    pub kind: String,
    /// Counts such as `keys`, `documents`, `chunks`, `entities`, `vectors`.
    pub stats: BTreeMap<String, u64>,
    /// Backend-specific facts a restore needs (server version, collection configs, ...).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
    /// Things the operator should know about this backend's export.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Order-independent digest of every exported record in canonical form (FORMAT.md), which a
    /// restore recomputes from what it reads back. Absent in archives of older ngbak versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<super::ContentDigest>,
}

/// One payload entry of the archive.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EntryRecord {
    pub path: String,
    /// Name of the backend that wrote it, and that restores it.
    pub backend: String,
    pub size: u64,
    pub sha256: String,
    /// Records (lines, keys, points, ...) in the entry; 0 for opaque files.
    pub records: u64,
}

/// Size and SHA-256 of the whole compressed archive, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ArchiveDigest {
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

/// The sidecar object `<id>.manifest.json`: the manifest plus the whole-archive digest, which can
/// only live outside the archive it describes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Sidecar {
    #[serde(flatten)]
    pub manifest: Manifest,
    pub archive: ArchiveDigest,
}

impl Manifest {
    /// Sum of a statistic over every backend.
    pub fn total(&self, stat: &str) -> u64 {
        self.backends.values().filter_map(|b| b.stats.get(stat)).sum()
    }

    pub fn entry(&self, path: &str) -> Option<&EntryRecord> {
        self.entries.iter().find(|e| e.path == path)
    }
}

/// Refuses any entry name that could escape a directory or that this format does not define:
/// absolute paths, `..`, empty or odd components, and names outside the known folders.
pub fn check_entry_path(path: &str) -> Result<()> {
    if path == HEADER_PATH || path == MANIFEST_PATH {
        return Ok(());
    }
    let clean = |c: &str| {
        !c.is_empty() && c != "." && c != ".." && c.chars().all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
    };
    if path.starts_with('/') || path.len() > 1024 || !path.split('/').all(clean) {
        bail!("unsafe entry name {path:?}: only relative names of [A-Za-z0-9._-] parts are allowed");
    }
    if !DATA_PREFIXES.iter().any(|p| path.starts_with(p)) || path.split('/').count() < 2 {
        bail!("unknown entry {path:?}: data must live under {}", DATA_PREFIXES.join(", "));
    }
    Ok(())
}

/// A path component for an archive entry made from a name that came from a backend (a Redis
/// pattern, a collection or file name): anything outside `[A-Za-z0-9._-]` becomes `_`.
pub fn safe_component(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    match s.as_str() {
        "" | "." | ".." => format!("_{s}"),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_checked() {
        for ok in ["kv/redis/000001.ndjson", "graph/nodes/000002.ndjson", HEADER_PATH, MANIFEST_PATH] {
            check_entry_path(ok).unwrap();
        }
        for bad in ["../x", "/etc/x", "kv/../../x", "kv//x", "kv/./x", "other/x", "kv", "kv/a b", "kv/x\\..\\y", ""] {
            assert!(check_entry_path(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn safe_components_never_escape() {
        assert_eq!(safe_component("nano_graphrag:*"), "nano_graphrag__");
        assert_eq!(safe_component(".."), "_..");
        assert_eq!(safe_component("a/b"), "a_b");
    }
}
