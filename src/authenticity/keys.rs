//! Keys in minisign's formats: the secret key that signs, the public keys a restore trusts.

use anyhow::{anyhow, bail, Context, Result};
use minisign::{KeyPair, PublicKey, PublicKeyBox, SecretKey, SecretKeyBox};
use std::path::Path;

/// Largest key file read (a minisign key file is about 200 bytes).
const MAX_KEY_FILE: u64 = 16 << 10;

/// A key id as minisign prints it: the 8 id bytes, little-endian, as 16 hex digits.
pub fn key_id(keynum: &[u8]) -> String {
    let mut n = [0u8; 8];
    let len = keynum.len().min(8);
    n[..len].copy_from_slice(&keynum[..len]);
    format!("{:016X}", u64::from_le_bytes(n))
}

/// The key that signs backups: a minisign secret key, or a KMS key that never leaves KMS. Its
/// `Debug` shows the key id only.
pub enum SigningKey {
    File { secret: Box<SecretKey>, public: PublicKey },
    Kms(super::kms::KmsKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id())
    }
}

impl SigningKey {
    /// From the text of a minisign secret-key file; `password` opens a protected one. `from`
    /// names where the text came from, for messages (never the text itself).
    pub fn parse(text: &str, password: Option<&str>, from: &str) -> Result<Self> {
        let not_a_key = || {
            anyhow!(
                "the signing key from {from} is not a minisign secret key (two lines: a comment, then the key); \
                 make one with `ngbak keygen`"
            )
        };
        let text = text.trim();
        if !text.starts_with("untrusted comment:") || text.lines().count() < 2 {
            return Err(not_a_key());
        }
        let boxed = SecretKeyBox::from_string(text).map_err(|_| not_a_key())?;
        let secret = match password {
            Some(password) => SecretKey::from_box(boxed, Some(password.to_string())).map_err(|_| {
                anyhow!(
                    "the signing key from {from} could not be opened with NGBAK_SIGNING_KEY_PASSWORD: a wrong \
                     password, or not a password-protected minisign key"
                )
            })?,
            None => boxed.into_unencrypted_secret_key().map_err(|_| {
                anyhow!(
                    "the signing key from {from} is protected by a password (or is not a minisign secret key): set \
                     NGBAK_SIGNING_KEY_PASSWORD"
                )
            })?,
        };
        let public = PublicKey::from_secret_key(&secret).map_err(|_| not_a_key())?;
        Ok(SigningKey::File { secret: Box::new(secret), public })
    }

    /// Reads a key file (bounded), then as [`SigningKey::parse`].
    pub fn from_file(path: &Path, password: Option<&str>) -> Result<Self> {
        let text = read_small(path).with_context(|| format!("reading the signing key {}", path.display()))?;
        SigningKey::parse(&text, password, &path.display().to_string())
    }

    /// The key id (as `minisign` prints it).
    pub fn id(&self) -> String {
        match self {
            SigningKey::File { public, .. } => key_id(public.keynum()),
            SigningKey::Kms(kms) => key_id(kms.keynum()),
        }
    }

    /// The public key, one base64 line (what `--trusted-key` and `minisign -P` take).
    pub fn public_base64(&self) -> String {
        match self {
            SigningKey::File { public, .. } => public.to_base64(),
            SigningKey::Kms(kms) => kms.public_base64(),
        }
    }
}

/// The public keys whose signatures a restore accepts (several at once: a rotation).
#[derive(Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl std::fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedKeys({})", self.ids().join(", "))
    }
}

impl TrustedKeys {
    /// Each item is a public key (the base64 line of a minisign `.pub` file, or the whole file's
    /// text) or the path of a `.pub` file. Any item that is none of these is an error naming it.
    pub fn parse(items: &[String]) -> Result<Self> {
        let mut keys: Vec<PublicKey> = Vec::new();
        for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            let key = parse_public(item)
                .or_else(|| {
                    let path = Path::new(item);
                    path.is_file().then(|| read_small(path).ok().and_then(|t| parse_public(&t))).flatten()
                })
                .ok_or_else(|| {
                    let shown: String = item.chars().take(60).collect();
                    anyhow!(
                        "the trusted key {shown:?} (from --trusted-key or NGBAK_TRUSTED_KEYS) is neither a minisign \
                         public key (a line starting RW, 56 characters) nor a readable .pub file holding one; fix \
                         the list (keys are separated by commas)"
                    )
                })?;
            if !keys.iter().any(|k| k.keynum() == key.keynum()) {
                keys.push(key);
            }
        }
        Ok(TrustedKeys { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted key ids, for messages.
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| key_id(k.keynum())).collect()
    }

    /// Trusts `key` too (e.g. a KMS key's public half).
    pub fn add(&mut self, key: PublicKey) {
        if self.find(key.keynum()).is_none() {
            self.keys.push(key);
        }
    }

    /// The trusted key with this key id, if any.
    pub(super) fn find(&self, keynum: &[u8]) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.keynum() == keynum)
    }
}

/// A public key from a base64 line or a `.pub` file's text (its last line holds the key).
fn parse_public(text: &str) -> Option<PublicKey> {
    let text = text.trim();
    if text.starts_with("untrusted comment:") {
        return PublicKeyBox::from_string(text).ok()?.into_public_key().ok();
    }
    if text.len() != 56 || !text.starts_with("RW") {
        return None;
    }
    PublicKey::from_base64(text).ok()
}

fn read_small(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?.take(MAX_KEY_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_KEY_FILE {
        bail!("{} is larger than a key file ({} KiB at most)", path.display(), MAX_KEY_FILE >> 10);
    }
    Ok(text)
}

/// A new key pair, as the texts of minisign's two files.
pub struct GeneratedKeys {
    pub secret_file: String,
    pub public_file: String,
    pub public_base64: String,
    pub id: String,
}

impl std::fmt::Debug for GeneratedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GeneratedKeys({})", self.id)
    }
}

/// Makes a new key pair; with `password`, the secret key is protected by it (minisign's scrypt).
pub fn generate(password: Option<&str>) -> Result<GeneratedKeys> {
    let pair = match password {
        Some(p) => KeyPair::generate_encrypted_keypair(Some(p.to_string())),
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| anyhow!("generating a key pair failed: {e}"))?;
    let id = key_id(pair.pk.keynum());
    let secret_file = pair
        .sk
        .to_box(Some(&format!("ngbak signing key {id}")))
        .map_err(|e| anyhow!("encoding the secret key failed: {e}"))?
        .into_string();
    let public_box = pair.pk.to_box().map_err(|e| anyhow!("encoding the public key failed: {e}"))?;
    Ok(GeneratedKeys { secret_file, public_file: public_box.into_string(), public_base64: pair.pk.to_base64(), id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_read_back_with_their_id() {
        let made = generate(None).unwrap();
        let key = SigningKey::parse(&made.secret_file, None, "test").unwrap();
        assert_eq!(key.id(), made.id);
        assert_eq!(key.public_base64(), made.public_base64);
        let trusted = TrustedKeys::parse(&[made.public_base64.clone(), made.public_file.clone()]).unwrap();
        assert_eq!(trusted.ids(), vec![made.id.clone()], "the same key twice is one trusted key");
        assert!(!format!("{key:?}").contains(&made.secret_file[40..60]));
    }

    #[test]
    fn bad_keys_are_named() {
        let err = TrustedKeys::parse(&["RWQnot-a-key".into()]).unwrap_err().to_string();
        assert!(err.contains("RWQnot-a-key") && err.contains("neither"), "{err}");
        let made = generate(None).unwrap();
        let err = SigningKey::parse(&made.public_file, None, "the test").unwrap_err().to_string();
        assert!(err.contains("not a minisign secret key"), "{err}");
    }
}
