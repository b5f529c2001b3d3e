//! The manifest sealed into the sidecar: a small age file (to the archive's recipients), base64.

use super::Identities;
use anyhow::{anyhow, Context, Result};
use base64::Engine;
use std::io::{Read, Write};

/// `plaintext` encrypted to `recipients`, as base64 of the age file.
pub fn seal(plaintext: &[u8], recipients: &super::Recipients) -> Result<String> {
    let encryptor = recipients.encryptor().context("sealing the manifest")?;
    let mut sealed = Vec::with_capacity(plaintext.len() + 256);
    let mut writer = encryptor.wrap_output(&mut sealed)?;
    writer.write_all(plaintext)?;
    writer.finish()?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

/// The plaintext of a sealed text, opened with one of `identities`; `what` names it in messages.
pub fn unseal(sealed: &str, identities: &Identities, what: &str) -> Result<Vec<u8>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed.trim())
        .with_context(|| format!("the sealed manifest of {what} is not base64"))?;
    let decryptor =
        age::Decryptor::new_buffered(&bytes[..]).map_err(|e| anyhow!("the sealed manifest of {what}: {e}"))?;
    let mut reader = decryptor.decrypt(identities.as_dyn()).map_err(|e| {
        anyhow!("the identities given ({}) cannot open {what}: {e}", identities.recipients().join(", "))
    })?;
    let mut plaintext = Vec::new();
    reader.read_to_end(&mut plaintext).with_context(|| format!("the sealed manifest of {what} is damaged"))?;
    Ok(plaintext)
}
