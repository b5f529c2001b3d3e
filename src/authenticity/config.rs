//! The flags and variables of signing and trust: the same for the CLI and the functions.

use super::keys::{SigningKey, TrustedKeys};
use super::kms::KmsKey;
use super::signature::Trust;
use crate::failure::FailureKind;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Clone, Default)]
pub struct AuthArgs {
    /// Sign every backup this run writes with this minisign secret key file (`ngbak keygen`
    /// makes one).
    #[arg(long, env = "NGBAK_SIGNING_KEY_FILE", global = true)]
    pub signing_key: Option<PathBuf>,
    /// The signing key's text itself (from the environment only: never put a key on a command line).
    #[arg(long = "signing-key-text", env = "NGBAK_SIGNING_KEY", hide = true, hide_env_values = true, global = true)]
    pub signing_key_text: Option<String>,
    /// The signing key from AWS Secrets Manager (a plain secret, or JSON with a `signing_key` field).
    #[arg(long, env = "NGBAK_SIGNING_KEY_SECRET_ARN", global = true)]
    pub signing_key_secret_arn: Option<String>,
    /// Sign with this AWS KMS key (key spec ECC_NIST_EDWARDS25519): the private key never leaves
    /// KMS. Wins over the other signing keys.
    #[arg(long, env = "NGBAK_KMS_SIGNING_KEY", global = true)]
    pub kms_signing_key: Option<String>,
    /// The password of a protected signing key (from the environment only).
    #[arg(
        long = "signing-key-password",
        env = "NGBAK_SIGNING_KEY_PASSWORD",
        hide = true,
        hide_env_values = true,
        global = true
    )]
    pub signing_key_password: Option<String>,
    /// Public keys whose signatures are trusted (a minisign public key, or a .pub file; several
    /// for a rotation). When any is given, verify, restore and import refuse a backup no trusted
    /// key signed.
    #[arg(long = "trusted-key", env = "NGBAK_TRUSTED_KEYS", value_delimiter = ',', global = true)]
    pub trusted_keys: Vec<String>,
    /// Trust the public half of these AWS KMS keys too (read with kms:GetPublicKey).
    #[arg(long = "trusted-kms-key", env = "NGBAK_TRUSTED_KMS_KEYS", value_delimiter = ',', global = true)]
    pub trusted_kms_keys: Vec<String>,
    /// Take a backup that no trusted key signed (an older or foreign archive), on purpose; the
    /// report says so.
    #[arg(long, env = "NGBAK_ALLOW_UNSIGNED", global = true)]
    pub allow_unsigned: bool,
    /// Encryption: recipients to encrypt to, identities to open with.
    #[command(flatten)]
    pub encryption: crate::encryption::EncryptionArgs,
}

impl std::fmt::Debug for AuthArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthArgs")
            .field("signing_key", &self.signing_key)
            .field("signing_key_text", &self.signing_key_text.as_ref().map(|_| "***"))
            .field("signing_key_secret_arn", &self.signing_key_secret_arn)
            .field("signing_key_password", &self.signing_key_password.as_ref().map(|_| "***"))
            .field("trusted_keys", &self.trusted_keys)
            .field("kms_signing_key", &self.kms_signing_key)
            .field("trusted_kms_keys", &self.trusted_kms_keys)
            .field("allow_unsigned", &self.allow_unsigned)
            .field("encryption", &self.encryption)
            .finish()
    }
}

/// What a job signs with, encrypts to, and trusts and opens with, read once at its start.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    pub trust: Trust,
    pub signing_key: Option<Arc<SigningKey>>,
    pub encryption: crate::encryption::Encryption,
}

impl AuthArgs {
    /// The trust and the signing key; a key that cannot be read fails the job before it starts.
    pub async fn keys(&self) -> Result<Keys> {
        let encryption = self.encryption.resolve().await?;
        Ok(Keys { trust: self.trust_with(&encryption).await?, signing_key: self.signing_key().await?, encryption })
    }

    /// The trusted keys (with the KMS keys' public halves) and the policy; a list that does not
    /// parse, or a KMS key that cannot be read, is a configuration error.
    pub async fn trust(&self) -> Result<Trust> {
        let encryption = self.encryption.resolve().await?;
        self.trust_with(&encryption).await
    }

    async fn trust_with(&self, encryption: &crate::encryption::Encryption) -> Result<Trust> {
        let mut keys = TrustedKeys::parse(&self.trusted_keys)
            .map_err(|e| FailureKind::ConfigurationError.marked(format!("{e:#}")))?;
        for key in self.trusted_kms_keys.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
            let kms =
                KmsKey::connect(key).await.map_err(|e| FailureKind::ConfigurationError.marked(format!("{e:#}")))?;
            keys.add(kms.public_key());
        }
        Ok(Trust {
            keys,
            allow_unsigned: self.allow_unsigned,
            identities: encryption.identities.clone(),
            require_encrypted: encryption.require_encrypted,
        })
    }

    /// The signing key, from the first of: the variable's text, the file, Secrets Manager; `None`
    /// when none is configured.
    pub async fn signing_key(&self) -> Result<Option<Arc<SigningKey>>> {
        if let Some(key) = given(&self.kms_signing_key) {
            let kms =
                KmsKey::connect(key).await.map_err(|e| FailureKind::ConfigurationError.marked(format!("{e:#}")))?;
            return Ok(Some(Arc::new(SigningKey::Kms(kms))));
        }
        let password = given(&self.signing_key_password);
        if let Some(p) = password {
            crate::net::redact::remember(p);
        }
        let key = if let Some(text) = given(&self.signing_key_text) {
            crate::net::redact::remember(text);
            SigningKey::parse(text, password, "NGBAK_SIGNING_KEY")
        } else if let Some(path) = &self.signing_key {
            SigningKey::from_file(path, password)
        } else if let Some(arn) = given(&self.signing_key_secret_arn) {
            let text = crate::net::secret_value::read(arn, "signing_key", "NGBAK_SIGNING_KEY_SECRET_ARN").await?;
            crate::net::redact::remember(&text);
            SigningKey::parse(&text, password, &format!("secret {arn}"))
        } else {
            return Ok(None);
        };
        let key = key.map_err(|e| FailureKind::ConfigurationError.marked(format!("{e:#}")))?;
        Ok(Some(Arc::new(key)))
    }
}

/// A setting's value, unless it is unset or empty (as every setting is read).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}
