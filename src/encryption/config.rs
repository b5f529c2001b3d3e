//! The flags and variables of encryption: the same for the CLI and the functions.

use super::keys::{parse_identities, parse_recipients, Identities, Passphrase, Recipients};
use crate::failure::FailureKind;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Clone, Default)]
pub struct EncryptionArgs {
    /// Encrypt every backup this run writes to this age recipient (age1…; repeat for several, e.g.
    /// the restore role's key and an offline break-glass key), or to those of a recipients file.
    #[arg(long = "encrypt-to", env = "NGBAK_RECIPIENTS", value_delimiter = ',', global = true)]
    pub recipients: Vec<String>,
    /// An age identity file (AGE-SECRET-KEY-1… lines) that opens encrypted backups.
    #[arg(long = "identity", env = "NGBAK_IDENTITY_FILE", global = true)]
    pub identity_file: Option<PathBuf>,
    /// The identity's text itself (from the environment only).
    #[arg(long = "identity-text", env = "NGBAK_IDENTITY", hide = true, hide_env_values = true, global = true)]
    pub identity_text: Option<String>,
    /// The identity from AWS Secrets Manager (plain, or JSON with an `identity` field), kept
    /// encrypted there under the secret's KMS key.
    #[arg(long, env = "NGBAK_IDENTITY_SECRET_ARN", global = true)]
    pub identity_secret_arn: Option<String>,
    /// Encrypt with this passphrase instead of recipients, and open what it encrypted (from the
    /// environment only; for archives kept by hand: age allows a passphrase only alone).
    #[arg(long = "passphrase", env = "NGBAK_PASSPHRASE", hide = true, hide_env_values = true, global = true)]
    pub passphrase: Option<String>,
    /// Refuse to write a backup without recipients, and to verify, restore or import an archive
    /// that is not encrypted.
    #[arg(long, env = "NGBAK_REQUIRE_ENCRYPTED", global = true)]
    pub require_encrypted: bool,
    /// Keep an encrypted backup's counts and names readable in its sidecar (for `list` without an
    /// identity; they say what the knowledge base holds).
    #[arg(long, env = "NGBAK_PLAIN_SIDECAR_COUNTS", global = true)]
    pub plain_sidecar_counts: bool,
}

impl std::fmt::Debug for EncryptionArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionArgs")
            .field("recipients", &self.recipients)
            .field("identity_file", &self.identity_file)
            .field("identity_text", &self.identity_text.as_ref().map(|_| "***"))
            .field("identity_secret_arn", &self.identity_secret_arn)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "***"))
            .field("require_encrypted", &self.require_encrypted)
            .field("plain_sidecar_counts", &self.plain_sidecar_counts)
            .finish()
    }
}

/// What a job encrypts to and opens with, read once at its start.
#[derive(Clone, Default)]
pub struct Encryption {
    pub recipients: Recipients,
    pub identities: Identities,
    pub require_encrypted: bool,
    pub plain_sidecar_counts: bool,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encryption(to {:?}, {:?})", self.recipients, self.identities)
    }
}

impl EncryptionArgs {
    /// The recipients and identities; anything that does not parse is a configuration error
    /// naming its source (never a secret's text).
    pub async fn resolve(&self) -> Result<Encryption> {
        let configuration = |e: anyhow::Error| FailureKind::ConfigurationError.marked(format!("{e:#}"));
        let keys = parse_recipients(&self.recipients).map_err(configuration)?;
        let passphrase = given(&self.passphrase).map(|p| Arc::new(Passphrase::new(p)));
        if passphrase.is_some() && !keys.is_empty() {
            let message = "NGBAK_PASSPHRASE and --encrypt-to cannot be combined: age encrypts to a passphrase only \
                           alone; use recipients (age1…) for backups that several keys open";
            return Err(FailureKind::ConfigurationError.marked(message).into());
        }
        let recipients = Recipients { keys, passphrase: passphrase.clone() };
        let identities = if let Some(text) = given(&self.identity_text) {
            parse_identities(text, "NGBAK_IDENTITY")
        } else if let Some(path) = &self.identity_file {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the identity file {}", path.display()))
                .and_then(|text| parse_identities(&text, &path.display().to_string()))
        } else if let Some(arn) = given(&self.identity_secret_arn) {
            let text = crate::net::secret_value::read(arn, "identity", "NGBAK_IDENTITY_SECRET_ARN").await?;
            parse_identities(&text, &format!("secret {arn}"))
        } else {
            Ok(Vec::new())
        }
        .map_err(configuration)?;
        if self.require_encrypted && recipients.is_empty() && identities.is_empty() {
            let message = "--require-encrypted (NGBAK_REQUIRE_ENCRYPTED) is set but no recipient (--encrypt-to) or \
                           identity (--identity) is configured";
            return Err(FailureKind::ConfigurationError.marked(message).into());
        }
        Ok(Encryption {
            recipients,
            identities: Identities { keys: Arc::new(identities), passphrase },
            require_encrypted: self.require_encrypted,
            plain_sidecar_counts: self.plain_sidecar_counts,
        })
    }
}

/// A setting's value, unless it is unset or empty (as every setting is read).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}
