//! age X25519 recipients (`age1…`, public) and identities (`AGE-SECRET-KEY-1…`, secret).

use age::secrecy::SecretString;
use anyhow::{anyhow, Result};
use std::sync::Arc;

/// The first bytes of every age file: how a reader tells an encrypted archive from gzip or zstd.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// Recipients from the items given (`age1…` each, or the path of a recipients file: one per line,
/// `#` comments). An item that is neither is an error naming it (recipients are public).
pub fn parse_recipients(items: &[String]) -> Result<Vec<age::x25519::Recipient>> {
    let mut out: Vec<age::x25519::Recipient> = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        let lines: Vec<String> = if item.starts_with("age1") {
            vec![item.to_string()]
        } else {
            let text = std::fs::read_to_string(item).map_err(|e| {
                anyhow!(
                    "the recipient {item:?} is neither an age recipient (age1…) nor a readable recipients file ({e})"
                )
            })?;
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect()
        };
        for line in lines {
            let recipient: age::x25519::Recipient = line.parse().map_err(|e| {
                let shown: String = line.chars().take(70).collect();
                anyhow!("{shown:?} is not an age X25519 recipient ({e}); make one with `age-keygen` (its public key)")
            })?;
            if !out.contains(&recipient) {
                out.push(recipient);
            }
        }
    }
    Ok(out)
}

/// What opens an encrypted archive: age X25519 identities, and the passphrase of one encrypted
/// with a passphrase. `Debug` shows how many, never a key; equal whatever they hold (they are not
/// part of what a sidecar says).
#[derive(Clone, Default)]
pub struct Identities {
    pub keys: Arc<Vec<age::x25519::Identity>>,
    pub passphrase: Option<Arc<Passphrase>>,
}

/// A passphrase, as age's scrypt identity and as the secret to encrypt to.
pub struct Passphrase {
    pub secret: SecretString,
    identity: age::scrypt::Identity,
}

impl Passphrase {
    pub fn new(secret: &str) -> Self {
        crate::net::redact::remember(secret);
        Passphrase {
            secret: SecretString::from(secret.to_string()),
            identity: age::scrypt::Identity::new(SecretString::from(secret.to_string())),
        }
    }
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({}{})", self.keys.len(), if self.passphrase.is_some() { " and a passphrase" } else { "" })
    }
}

impl PartialEq for Identities {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Identities {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.passphrase.is_none()
    }

    /// As age wants them.
    pub fn as_dyn(&self) -> impl Iterator<Item = &dyn age::Identity> {
        let keys = self.keys.iter().map(|i| i as &dyn age::Identity);
        keys.chain(self.passphrase.iter().map(|p| &p.identity as &dyn age::Identity))
    }

    /// The public recipients of these identities (to tell which one a file was encrypted to);
    /// a passphrase is named `scrypt`, as its age stanza is.
    pub fn recipients(&self) -> Vec<String> {
        let mut names: Vec<String> = self.keys.iter().map(|i| i.to_public().to_string()).collect();
        if self.passphrase.is_some() {
            names.push(PASSPHRASE.into());
        }
        names
    }
}

/// How a passphrase recipient is named in a sidecar (age's stanza name for it).
pub const PASSPHRASE: &str = "scrypt";

/// To whom an archive is encrypted: age X25519 recipients, or one passphrase (age allows a
/// passphrase only alone), for an archive kept by hand.
#[derive(Clone, Default)]
pub struct Recipients {
    pub keys: Vec<age::x25519::Recipient>,
    pub passphrase: Option<Arc<Passphrase>>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipients({})", self.names().join(", "))
    }
}

impl Recipients {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.passphrase.is_none()
    }

    /// As a sidecar names them: the `age1…` keys, or `scrypt` for a passphrase.
    pub fn names(&self) -> Vec<String> {
        match &self.passphrase {
            Some(_) => vec![PASSPHRASE.into()],
            None => self.keys.iter().map(|r| r.to_string()).collect(),
        }
    }

    /// An age encryptor to these recipients.
    pub fn encryptor(&self) -> Result<age::Encryptor> {
        if let Some(p) = &self.passphrase {
            return Ok(age::Encryptor::with_user_passphrase(p.secret.clone()));
        }
        age::Encryptor::with_recipients(self.keys.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| anyhow!("encrypting to {}: {e}", self.names().join(", ")))
    }

    /// The recipients a sidecar names, the passphrase (`scrypt`) taken from `identities`.
    pub fn named(names: &[String], identities: &Identities) -> Result<Self> {
        if names.iter().any(|n| n == PASSPHRASE) {
            let passphrase = identities.passphrase.clone().ok_or_else(|| {
                anyhow!("the archive is encrypted with a passphrase: set NGBAK_PASSPHRASE to write what goes with it")
            })?;
            return Ok(Recipients { keys: Vec::new(), passphrase: Some(passphrase) });
        }
        Ok(Recipients { keys: parse_recipients(names)?, passphrase: None })
    }
}

/// Identities from the text of an age identity file (`AGE-SECRET-KEY-1…` lines, `#` comments).
/// `from` names the source for messages; the text never appears in one.
pub fn parse_identities(text: &str, from: &str) -> Result<Vec<age::x25519::Identity>> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let identity: age::x25519::Identity = line.parse().map_err(|_| {
            anyhow!(
                "the identity from {from} is not an age X25519 identity (a line AGE-SECRET-KEY-1…, as `age-keygen` \
                 writes); only X25519 identities are supported"
            )
        })?;
        crate::net::redact::remember(line);
        out.push(identity);
    }
    if out.is_empty() {
        return Err(anyhow!("the identity from {from} holds no AGE-SECRET-KEY-1… line"));
    }
    Ok(out)
}
