//! One sidecar's signature: made in minisign's format with a trusted comment that names the
//! backup, and judged against the trusted keys.

use super::keys::{key_id, SigningKey, TrustedKeys};
use crate::failure::FailureKind;
use crate::id::BackupId;
use anyhow::{anyhow, Result};
use minisign::SignatureBox;
use serde::Serialize;
use std::io::Cursor;

/// The trusted comment's words (signed with the signature, shown by `minisign -V`): the backup's
/// id and its archive's SHA-256, so that a signature made for one backup never passes for another.
fn trusted_comment(id: &BackupId, archive_sha256: &str) -> String {
    format!("ngbak-backup:{id} archive-sha256:{archive_sha256} signed:{}", chrono::Utc::now().timestamp())
}

/// Signs the exact bytes of backup `id`'s sidecar; returns the `.minisig` file's text.
pub async fn sign(key: &SigningKey, sidecar: &[u8], id: &BackupId, archive_sha256: &str) -> Result<String> {
    let comment = trusted_comment(id, archive_sha256);
    let untrusted = format!("signature of the sidecar of ngbak backup {id}, key {}", key.id());
    match key {
        SigningKey::File { secret, public } => {
            let signature =
                minisign::sign(Some(public), secret, Cursor::new(sidecar), Some(&comment), Some(&untrusted))
                    .map_err(|e| anyhow!("signing the sidecar of backup {id} failed: {e}"))?;
            Ok(signature.into_string())
        }
        SigningKey::Kms(kms) => {
            let text = kms.minisig(sidecar, &comment, &untrusted).await?;
            // What KMS signed is checked before it is stored: a wrong key or algorithm shows here,
            // not at the next restore.
            let parsed = SignatureBox::from_string(&text).map_err(|e| anyhow!("{e}"))?;
            minisign::verify(&kms.public_key(), &parsed, Cursor::new(sidecar), true, false, false).map_err(|e| {
                anyhow!("the signature KMS made for backup {id} does not verify with the key's public half: {e}")
            })?;
            Ok(text)
        }
    }
}

/// Who wrote a backup, as far as the trusted keys tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Provenance {
    /// Signed by a trusted key, and the signature holds.
    Verified { key_id: String },
    /// Signed, but no trusted key is configured to check it with.
    NotChecked { key_id: String },
    /// No signature, and none is required (no trusted key is configured).
    Unsigned,
    /// Not signed by a trusted key, for the reason given (listing and inspecting only: a job
    /// refuses such a backup, or takes it as [`Provenance::AllowedUnsigned`]).
    Refused { reason: String },
    /// Not signed by a trusted key, taken on purpose (`--allow-unsigned`).
    AllowedUnsigned { reason: String },
}

impl Provenance {
    /// One phrase for `list`, `inspect` and reports.
    pub fn line(&self) -> String {
        match self {
            Provenance::Verified { key_id } => format!("signed by {key_id} (trusted)"),
            Provenance::NotChecked { key_id } => format!("signed by {key_id} (not checked: no trusted key configured)"),
            Provenance::Unsigned => "unsigned".into(),
            Provenance::Refused { reason } => format!("REFUSED: {reason}"),
            Provenance::AllowedUnsigned { reason } => {
                format!("not trusted, taken on purpose (--allow-unsigned): {reason}")
            }
        }
    }
}

/// What a job accepts: the trusted keys (none: no check), whether an archive they do not vouch
/// for is taken anyway; and what opens an encrypted one, and whether a plain one is refused.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    pub keys: TrustedKeys,
    pub allow_unsigned: bool,
    pub identities: crate::encryption::Identities,
    pub require_encrypted: bool,
}

impl Trust {
    /// Whether signatures are checked at all.
    pub fn is_required(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Who signed backup `id`, whose sidecar is `sidecar` (its exact bytes) naming an archive of
    /// `archive_sha256`; `signature` is the `.minisig` text, if there is one. Never fails: a
    /// signature that does not hold is [`Provenance::Refused`] with the reason.
    pub fn examine(&self, id: &BackupId, sidecar: &[u8], archive_sha256: &str, signature: Option<&[u8]>) -> Provenance {
        let parsed = signature.map(|bytes| {
            std::str::from_utf8(bytes)
                .map_err(|_| anyhow!("is not text"))
                .and_then(|text| SignatureBox::from_string(text).map_err(|e| anyhow!("{e}")))
        });
        if self.keys.is_empty() {
            return match parsed {
                Some(Ok(signature)) => Provenance::NotChecked { key_id: key_id(signature.keynum()) },
                _ => Provenance::Unsigned,
            };
        }
        let trusted = self.keys.ids().join(", ");
        let refused = |reason: String| Provenance::Refused { reason };
        let signature = match parsed {
            None => {
                return refused(format!(
                    "backup {id} is not signed ({}.minisig is missing); trusted keys: {trusted}",
                    id.sidecar_key()
                ))
            }
            Some(Err(e)) => {
                return refused(format!("the signature {}.minisig of backup {id} is malformed ({e})", id.sidecar_key()))
            }
            Some(Ok(s)) => s,
        };
        let signer = key_id(signature.keynum());
        let Some(key) = self.keys.find(signature.keynum()) else {
            return refused(format!(
                "backup {id} is signed by key {signer}, which is not trusted (trusted keys: {trusted})"
            ));
        };
        if minisign::verify(key, &signature, Cursor::new(sidecar), true, false, false).is_err() {
            return refused(format!(
                "the signature of backup {id} by key {signer} does not match its sidecar: the sidecar was changed \
                 after it was signed, or the signature was made for another backup"
            ));
        }
        // The trusted comment is authentic now (minisign checked its own signature over it).
        let comment = signature.trusted_comment().unwrap_or_default();
        let named = comment.split_whitespace().find_map(|w| w.strip_prefix("ngbak-backup:")).unwrap_or("");
        let digest = comment.split_whitespace().find_map(|w| w.strip_prefix("archive-sha256:")).unwrap_or("");
        if named != id.as_str() || digest != archive_sha256 {
            return refused(format!(
                "the signature by key {signer} was made for backup {named:?} (archive SHA-256 {digest:?}), not for \
                 backup {id}: a signature copied from another backup"
            ));
        }
        Provenance::Verified { key_id: signer }
    }

    /// As [`Trust::examine`], for a job that reads the archive: a backup the trusted keys do not
    /// vouch for is an error (kind `Unauthenticated`), unless `--allow-unsigned` takes it.
    pub fn judge(
        &self,
        id: &BackupId,
        sidecar: &[u8],
        archive_sha256: &str,
        signature: Option<&[u8]>,
    ) -> Result<Provenance> {
        match self.examine(id, sidecar, archive_sha256, signature) {
            Provenance::Refused { reason } => self.refuse(id, reason),
            other => Ok(other),
        }
    }

    /// A backup no trusted key vouches for, for `reason`: an error (kind `Unauthenticated`), or
    /// taken on purpose under `--allow-unsigned`.
    pub fn refuse(&self, id: &BackupId, reason: String) -> Result<Provenance> {
        if self.allow_unsigned {
            tracing::warn!(backup_id = %id, "{reason}; taken anyway (--allow-unsigned)");
            return Ok(Provenance::AllowedUnsigned { reason });
        }
        Err(FailureKind::Unauthenticated
            .marked(format!(
                "{reason}. Nothing was read from the archive and nothing was written. Restore a backup signed by a \
                 trusted key and find out who can write to the store; if you know where this archive came from (an \
                 older or foreign backup), take it on purpose with --allow-unsigned"
            ))
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authenticity::keys::generate;

    fn key() -> (SigningKey, TrustedKeys) {
        let made = generate(None).unwrap();
        (
            SigningKey::parse(&made.secret_file, None, "test").unwrap(),
            TrustedKeys::parse(&[made.public_base64]).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_signature_holds_for_its_own_sidecar_only() {
        let (signer, trusted) = key();
        let trust = Trust { keys: trusted, allow_unsigned: false, ..Default::default() };
        let id: BackupId = "b1".parse().unwrap();
        let other: BackupId = "b2".parse().unwrap();
        let sig = sign(&signer, b"{\"sidecar\": 1}", &id, "aa").await.unwrap();
        let verified = trust.examine(&id, b"{\"sidecar\": 1}", "aa", Some(sig.as_bytes()));
        assert_eq!(verified, Provenance::Verified { key_id: signer.id() });
        for (id, bytes, sha) in [
            (&id, &b"{\"sidecar\": 2}"[..], "aa"),
            (&other, &b"{\"sidecar\": 1}"[..], "aa"),
            (&id, &b"{\"sidecar\": 1}"[..], "bb"),
        ] {
            let got = trust.examine(id, bytes, sha, Some(sig.as_bytes()));
            assert!(matches!(got, Provenance::Refused { .. }), "{got:?}");
        }
        assert!(matches!(trust.examine(&id, b"x", "aa", None), Provenance::Refused { .. }));
        assert!(matches!(trust.examine(&id, b"x", "aa", Some(b"garbage")), Provenance::Refused { .. }));
        let (stranger, _) = key();
        let foreign = sign(&stranger, b"{\"sidecar\": 1}", &id, "aa").await.unwrap();
        let Provenance::Refused { reason } = trust.examine(&id, b"{\"sidecar\": 1}", "aa", Some(foreign.as_bytes()))
        else {
            panic!("a stranger's signature was accepted")
        };
        assert!(reason.contains(&stranger.id()) && reason.contains(&signer.id()), "{reason}");
    }

    #[tokio::test]
    async fn without_trusted_keys_nothing_is_refused_and_allow_unsigned_takes_what_is_refused() {
        let (signer, trusted) = key();
        let id: BackupId = "b1".parse().unwrap();
        let sig = sign(&signer, b"s", &id, "aa").await.unwrap();
        let none = Trust::default();
        assert_eq!(
            none.judge(&id, b"s", "aa", Some(sig.as_bytes())).unwrap(),
            Provenance::NotChecked { key_id: signer.id() }
        );
        assert_eq!(none.judge(&id, b"s", "aa", None).unwrap(), Provenance::Unsigned);
        let strict = Trust { keys: trusted.clone(), allow_unsigned: false, ..Default::default() };
        let err = strict.judge(&id, b"s", "aa", None).unwrap_err();
        assert_eq!(err.downcast_ref::<crate::failure::Marked>().map(|m| m.kind), Some(FailureKind::Unauthenticated));
        let lenient = Trust { keys: trusted, allow_unsigned: true, ..Default::default() };
        assert!(matches!(lenient.judge(&id, b"s", "aa", None).unwrap(), Provenance::AllowedUnsigned { .. }));
    }
}
