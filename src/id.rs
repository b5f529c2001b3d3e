//! Backup ids and the object keys derived from them.
//!
//! An id is the only piece of user input that becomes part of an object key or a file name, so it
//! is checked everywhere one comes in: `[A-Za-z0-9_-]`, 1 to 128 characters.

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

/// A validated backup id such as `snapshot_2026-11-23T03-00-00Z`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct BackupId(String);

/// Ids of the safety backups a restore takes before it writes start with this.
pub const SAFETY_PREFIX: &str = "pre-restore_";

impl BackupId {
    /// The default id for a backup taken at `time`.
    pub fn for_time(time: DateTime<Utc>) -> Self {
        BackupId(time.format("snapshot_%Y-%m-%dT%H-%M-%SZ").to_string())
    }

    /// The id of the safety backup taken at `time` before restoring `restored`.
    pub fn safety_for(restored: &BackupId, time: DateTime<Utc>) -> Self {
        let name: String = restored.0.chars().take(90).collect();
        // Milliseconds: two restores of one backup within a second each get their own.
        BackupId(format!("{SAFETY_PREFIX}{name}_{}", time.format("%Y-%m-%dT%H-%M-%S-%3fZ")))
    }

    /// Whether this is the id of a safety backup.
    pub fn is_safety(&self) -> bool {
        self.0.starts_with(SAFETY_PREFIX)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<id>.ngbak`: the archive.
    pub fn archive_key(&self) -> String {
        format!("{}{}", self.0, ARCHIVE_SUFFIX)
    }

    /// `<id>.manifest.json`: the sidecar, written only after the archive is complete.
    pub fn sidecar_key(&self) -> String {
        format!("{}{}", self.0, SIDECAR_SUFFIX)
    }

    /// `<id>.manifest.json.minisig`: the sidecar's signature (minisign's format).
    pub fn signature_key(&self) -> String {
        format!("{}{}.minisig", self.0, SIDECAR_SUFFIX)
    }

    /// `<id>.restore-report.json`: what the last restore of this archive did.
    pub fn report_key(&self) -> String {
        format!("{}.restore-report.json", self.0)
    }

    /// `<id>.<what>.lock`: a lock object taken with a conditional write.
    pub fn lock_key(&self, what: &str) -> String {
        format!("{}.{what}.lock", self.0)
    }

    /// The id of an archive key (`…/<id>.ngbak`), if it is one.
    pub fn from_archive_key(key: &str) -> Option<Self> {
        let name = key.rsplit('/').next()?;
        name.strip_suffix(ARCHIVE_SUFFIX)?.parse().ok()
    }
}

pub const ARCHIVE_SUFFIX: &str = ".ngbak";
pub const SIDECAR_SUFFIX: &str = ".manifest.json";

impl FromStr for BackupId {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if s.is_empty() || s.len() > 128 || !s.chars().all(ok_char) {
            bail!(
                "invalid backup id {s:?}: use 1 to 128 characters from [A-Za-z0-9_-] \
                 (for example snapshot_2026-11-23T03-00-00Z)"
            );
        }
        Ok(BackupId(s.to_string()))
    }
}

impl<'de> serde::Deserialize<'de> for BackupId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn default_id_follows_the_documented_shape() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 3, 4, 5).unwrap();
        assert_eq!(BackupId::for_time(t).as_str(), "snapshot_2026-11-23T03-04-05Z");
    }

    #[test]
    fn hostile_ids_are_refused() {
        for bad in ["", "../x", "a/b", "a b", "x.ngbak", "é", &"a".repeat(129)] {
            assert!(bad.parse::<BackupId>().is_err(), "{bad:?} was accepted");
        }
        assert!("nightly_2026-01-01".parse::<BackupId>().is_ok());
    }

    #[test]
    fn archive_keys_map_back_to_ids() {
        let id: BackupId = "snap_1".parse().unwrap();
        assert_eq!(BackupId::from_archive_key(&format!("p/q/{}", id.archive_key())), Some(id));
        assert_eq!(BackupId::from_archive_key("p/snap_1.manifest.json"), None);
        assert_eq!(BackupId::from_archive_key("p/bad id.ngbak"), None);
    }
}
