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
/// only live outside the archive it describes. An encrypted archive's is stored sealed
/// ([`SealedSidecar`]) unless its counts are kept readable.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Sidecar {
    #[serde(flatten)]
    pub manifest: Manifest,
    pub archive: ArchiveDigest,
    /// Set when the archive is encrypted: to whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionInfo>,
    /// The identities that open the archive, when it is encrypted (never stored).
    #[serde(skip)]
    pub opener: crate::encryption::Identities,
}

/// Version of the objects of an encrypted backup (the tar stream inside is version 1's).
pub const ENCRYPTED_FORMAT_VERSION: u32 = 2;

/// To whom an archive is encrypted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EncryptionInfo {
    /// `age` (X25519 recipients, STREAM payload).
    pub scheme: String,
    /// The recipients' public keys (`age1…`): public, and what a safety backup is encrypted to.
    pub recipients: Vec<String>,
    /// The manifest is kept readable in the sidecar (`--plain-sidecar-counts`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counts_readable: bool,
}

/// The sidecar of an encrypted archive as stored: what a listing needs, and the manifest sealed
/// to the archive's recipients (no counts, no names of keys or entities).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SealedSidecar {
    pub format: String,
    pub format_version: u32,
    pub backup_id: BackupId,
    pub created_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub tool_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub encryption: EncryptionInfo,
    /// The manifest (JSON), as a small age file to the same recipients, base64.
    pub sealed_manifest: String,
    pub archive: ArchiveDigest,
}

/// A sidecar as read: open, or sealed (its manifest needs an identity).
#[derive(Clone, Debug)]
pub enum StoredSidecar {
    Open(Box<Sidecar>),
    Sealed(Box<SealedSidecar>),
}

impl StoredSidecar {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_slice(bytes)?;
        Ok(match value.get("sealed_manifest") {
            Some(_) => StoredSidecar::Sealed(Box::new(serde_json::from_value(value)?)),
            None => StoredSidecar::Open(Box::new(serde_json::from_value(value)?)),
        })
    }

    pub fn backup_id(&self) -> &BackupId {
        match self {
            StoredSidecar::Open(s) => &s.manifest.backup_id,
            StoredSidecar::Sealed(s) => &s.backup_id,
        }
    }

    pub fn archive(&self) -> &ArchiveDigest {
        match self {
            StoredSidecar::Open(s) => &s.archive,
            StoredSidecar::Sealed(s) => &s.archive,
        }
    }

    /// Whether the archive it describes is encrypted.
    pub fn is_encrypted(&self) -> bool {
        match self {
            StoredSidecar::Open(s) => s.encryption.is_some(),
            StoredSidecar::Sealed(_) => true,
        }
    }

    /// When the backup started and completed.
    pub fn times(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            StoredSidecar::Open(s) => (s.manifest.created_at, s.manifest.completed_at),
            StoredSidecar::Sealed(s) => (s.created_at, s.completed_at),
        }
    }

    /// The whole sidecar: a sealed one opened with `identities` (an error naming the recipients
    /// when none of them opens it).
    pub fn open(self, identities: &crate::encryption::Identities) -> Result<Sidecar> {
        match self {
            StoredSidecar::Open(mut s) => {
                s.opener = identities.clone();
                Ok(*s)
            }
            StoredSidecar::Sealed(s) => {
                let what = format!("backup {}", s.backup_id);
                if identities.is_empty() {
                    bail!(
                        "backup {} is encrypted (to {}): pass --identity FILE (or NGBAK_IDENTITY, \
                         NGBAK_IDENTITY_SECRET_ARN) with one of its recipients' identities",
                        s.backup_id,
                        s.encryption.recipients.join(", ")
                    );
                }
                let manifest: Manifest =
                    serde_json::from_slice(&crate::encryption::unseal(&s.sealed_manifest, identities, &what)?)?;
                if manifest.backup_id != s.backup_id {
                    bail!("the sealed manifest of backup {} names backup {}", s.backup_id, manifest.backup_id);
                }
                Ok(Sidecar { manifest, archive: s.archive, encryption: Some(s.encryption), opener: identities.clone() })
            }
        }
    }
}

impl Sidecar {
    /// The bytes stored: sealed when the archive is encrypted and its counts are not kept
    /// readable.
    pub fn stored_bytes(&self) -> Result<Vec<u8>> {
        let Some(encryption) = self.encryption.as_ref().filter(|e| !e.counts_readable) else {
            return Ok(serde_json::to_vec_pretty(self)?);
        };
        let recipients = crate::encryption::Recipients::named(&encryption.recipients, &self.opener)?;
        let m = &self.manifest;
        let sealed = SealedSidecar {
            format: m.format.clone(),
            format_version: ENCRYPTED_FORMAT_VERSION,
            backup_id: m.backup_id.clone(),
            created_at: m.created_at,
            completed_at: m.completed_at,
            tool_version: m.tool_version.clone(),
            reason: m.reason.clone(),
            encryption: encryption.clone(),
            sealed_manifest: crate::encryption::seal(&serde_json::to_vec(m)?, &recipients)?,
            archive: self.archive.clone(),
        };
        Ok(serde_json::to_vec_pretty(&sealed)?)
    }
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
