//! `rekey`: an age file's file key re-wrapped to new recipients, its body untouched.
//!
//! An age v1 header is text: the version line, one stanza per recipient (`-> X25519 <share>`, then
//! the wrapped file key), then `--- <MAC>`. The binary body that follows (a 16-byte nonce, then
//! the STREAM chunks) is encrypted under a key derived from the file key and that nonce alone, so
//! a new header carrying the same file key leaves every byte of the body valid. The age crate
//! keeps the file key to itself, so the X25519 stanza (C2SP age spec) is written out here; the
//! age crate then reads the result like any age file (the tests decrypt with it).

use super::Identities;
use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

const VERSION_LINE: &str = "age-encryption.org/v1";
const X25519_INFO: &[u8] = b"age-encryption.org/v1/X25519";
/// The largest header read (a few hundred bytes per recipient).
pub const MAX_HEADER: usize = 64 << 10;

/// A new header for the same body.
pub struct Rewrapped {
    /// The new header's bytes, through the MAC line's newline.
    pub header: Vec<u8>,
    /// Where the body (nonce and chunks) starts in the old file.
    pub body_offset: usize,
}

struct Stanza {
    args: Vec<String>,
    body: Vec<u8>,
}

/// Re-wraps the file key of the age file that starts with `head` (which must hold its whole
/// header), opened with one of `identities`, to `recipients`; the old header's MAC is checked
/// first, so a header changed since it was written is refused.
pub fn rewrap(head: &[u8], identities: &Identities, recipients: &[age::x25519::Recipient]) -> Result<Rewrapped> {
    if recipients.is_empty() {
        bail!("no recipient to re-wrap the archive's key to: pass --encrypt-to age1… (one or more)");
    }
    let (stanzas, mac_covers, mac, body_offset) = parse(head)?;
    let secrets: Vec<StaticSecret> =
        identities.keys.iter().map(secret_of).collect::<Result<_>>().context("reading the identities")?;
    let file_key = stanzas
        .iter()
        .filter(|s| s.args.first().map(String::as_str) == Some("X25519"))
        .find_map(|s| secrets.iter().find_map(|secret| unwrap_x25519(secret, s)))
        .ok_or_else(|| {
            anyhow!(
                "none of the identities given (theirs: {}) is a recipient of this archive",
                identities.recipients().join(", ")
            )
        })?;
    let mut check = <Hmac<Sha256> as Mac>::new_from_slice(&header_key(&file_key)).expect("any key length");
    check.update(&head[..mac_covers]);
    check
        .verify_slice(&mac)
        .map_err(|_| anyhow!("the archive's age header was changed since it was written (its MAC does not hold)"))?;

    let mut text = format!("{VERSION_LINE}\n");
    for recipient in recipients {
        text += &wrap_x25519(recipient, &file_key)?;
    }
    text += "---";
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&header_key(&file_key)).expect("any key length");
    mac.update(text.as_bytes());
    text += &format!(" {}\n", STANDARD_NO_PAD.encode(mac.finalize().into_bytes()));
    Ok(Rewrapped { header: text.into_bytes(), body_offset })
}

/// The stanzas, how many bytes the MAC covers (through `---`), the MAC, and where the body starts.
fn parse(head: &[u8]) -> Result<(Vec<Stanza>, usize, Vec<u8>, usize)> {
    let invalid = |why: &str| anyhow!("the archive's age header is invalid: {why}");
    let mut at = 0;
    let mut line = || -> Result<(usize, String)> {
        let start = at;
        let end = head[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|n| at + n)
            .ok_or_else(|| invalid("it does not end within 64 KiB"))?;
        at = end + 1;
        let text = std::str::from_utf8(&head[start..end]).map_err(|_| invalid("not text"))?;
        Ok((start, text.to_string()))
    };
    if line()?.1 != VERSION_LINE {
        bail!(invalid("not an age v1 file"));
    }
    let mut stanzas = Vec::new();
    loop {
        let (start, text) = line()?;
        if let Some(mac) = text.strip_prefix("--- ") {
            let mac = STANDARD_NO_PAD.decode(mac).map_err(|_| invalid("its MAC is not base64"))?;
            return Ok((stanzas, start + 3, mac, at));
        }
        let Some(args) = text.strip_prefix("-> ") else {
            bail!(invalid("a line that is neither a stanza nor the MAC"))
        };
        let args: Vec<String> = args.split(' ').map(str::to_string).collect();
        let mut body = Vec::new();
        loop {
            let (_, chunk) = line()?;
            body.extend(STANDARD_NO_PAD.decode(&chunk).map_err(|_| invalid("a stanza body is not base64"))?);
            if chunk.len() < 64 {
                break;
            }
        }
        stanzas.push(Stanza { args, body });
    }
}

fn header_key(file_key: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&[]), file_key).expand(b"header", &mut key).expect("32 bytes is a valid length");
    key
}

fn wrap_key(shared: &[u8], ephemeral_share: &[u8; 32], recipient: &[u8; 32]) -> [u8; 32] {
    let salt = [&ephemeral_share[..], &recipient[..]].concat();
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&salt), shared).expand(X25519_INFO, &mut key).expect("32 bytes is a valid length");
    key
}

fn unwrap_x25519(secret: &StaticSecret, stanza: &Stanza) -> Option<Vec<u8>> {
    let share: [u8; 32] = STANDARD_NO_PAD.decode(stanza.args.get(1)?).ok()?.try_into().ok()?;
    let shared = secret.diffie_hellman(&PublicKey::from(share));
    if !shared.was_contributory() {
        return None;
    }
    let ours = PublicKey::from(secret).to_bytes();
    let key = wrap_key(shared.as_bytes(), &share, &ours);
    let file_key =
        ChaCha20Poly1305::new(Key::from_slice(&key)).decrypt(Nonce::from_slice(&[0; 12]), &stanza.body[..]).ok()?;
    (file_key.len() == 16).then_some(file_key)
}

fn wrap_x25519(recipient: &age::x25519::Recipient, file_key: &[u8]) -> Result<String> {
    let theirs = bech32_bytes(&recipient.to_string())?;
    let mut seed = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
        .map_err(|_| anyhow!("the system's random source failed"))?;
    let ephemeral = StaticSecret::from(seed);
    let share = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(theirs));
    if !shared.was_contributory() {
        bail!("recipient {recipient} is not a valid X25519 key");
    }
    let key = wrap_key(shared.as_bytes(), &share, &theirs);
    let body = ChaCha20Poly1305::new(Key::from_slice(&key))
        .encrypt(Nonce::from_slice(&[0; 12]), file_key)
        .map_err(|_| anyhow!("wrapping the file key failed"))?;
    Ok(format!("-> X25519 {}\n{}\n", STANDARD_NO_PAD.encode(share), STANDARD_NO_PAD.encode(body)))
}

fn secret_of(identity: &age::x25519::Identity) -> Result<StaticSecret> {
    use age::secrecy::ExposeSecret;
    Ok(StaticSecret::from(bech32_bytes(identity.to_string().expose_secret())?))
}

fn bech32_bytes(text: &str) -> Result<[u8; 32]> {
    let (_, bytes) = bech32::decode(text).map_err(|_| anyhow!("not a bech32 key"))?;
    bytes.try_into().map_err(|_| anyhow!("not a 32-byte key"))
}
