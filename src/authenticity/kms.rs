//! Signing keys kept in AWS KMS (key spec ECC_NIST_EDWARDS25519, usage SIGN_VERIFY): the private
//! key never leaves KMS. A minisign signature is two Ed25519 signatures, one of the BLAKE2b-512
//! hash of the signed bytes and one of that signature followed by the trusted comment; KMS makes
//! both (algorithm ED25519_SHA_512 over the raw message: pure Ed25519), ngbak assembles them in
//! minisign's format, so `minisign -V` checks them like any other.

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, MessageType, SigningAlgorithmSpec};
use base64::Engine;
use minisign::PublicKey;
use sha2::Digest;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), as KMS's GetPublicKey returns it.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A KMS key that signs, with its public half as minisign knows it.
#[derive(Clone)]
pub struct KmsKey {
    client: aws_sdk_kms::Client,
    key: String,
    public: [u8; 32],
    keynum: [u8; 8],
}

impl std::fmt::Debug for KmsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KmsKey({}, {})", self.key, super::key_id(&self.keynum))
    }
}

impl KmsKey {
    /// Reads the public key of `key` (an id, ARN or alias) with the default AWS credentials.
    pub async fn connect(key: &str) -> Result<Self> {
        let config = crate::net::aws::loader().load().await;
        KmsKey::with_client(aws_sdk_kms::Client::new(&config), key).await
    }

    /// As [`KmsKey::connect`], with a given client (tests point it at an emulator).
    pub async fn with_client(client: aws_sdk_kms::Client, key: &str) -> Result<Self> {
        let out = client
            .get_public_key()
            .key_id(key)
            .send()
            .await
            .map_err(|e| anyhow!("{}", aws_sdk_kms::error::DisplayErrorContext(e)))
            .with_context(|| {
                format!(
                    "reading the public key of KMS key {key}: check the key id and that the role has kms:GetPublicKey"
                )
            })?;
        if out.key_spec() != Some(&KeySpec::EccNistEdwards25519) {
            bail!(
                "KMS key {key} is {}, not ECC_NIST_EDWARDS25519: ngbak signs in minisign's format, which is Ed25519; \
                 create an ECC_NIST_EDWARDS25519 key with usage SIGN_VERIFY",
                out.key_spec().map(|s| s.as_str()).unwrap_or("of an unknown key spec")
            );
        }
        let der = out.public_key().map(|b| b.as_ref()).unwrap_or_default();
        let public: [u8; 32] = der
            .strip_prefix(&ED25519_SPKI_PREFIX[..])
            .and_then(|pk| pk.try_into().ok())
            .with_context(|| format!("KMS key {key} answered with a public key that is not an Ed25519 one"))?;
        // minisign's key id is random at key generation; a KMS key's is taken from its public key,
        // so that it is the same wherever it is read.
        let mut keynum = [0u8; 8];
        keynum.copy_from_slice(&sha2::Sha256::digest(public)[..8]);
        Ok(KmsKey { client, key: key.to_string(), public, keynum })
    }

    pub fn keynum(&self) -> &[u8; 8] {
        &self.keynum
    }

    /// The public key as minisign holds it.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_bytes(&self.public_bytes()).expect("72 bytes make a minisign public key")
    }

    fn public_bytes(&self) -> Vec<u8> {
        [&b"Ed"[..], &self.keynum, &self.public].concat()
    }

    /// The public key, one base64 line (what `--trusted-key` and `minisign -P` take).
    pub fn public_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.public_bytes())
    }

    async fn ed25519(&self, message: &[u8]) -> Result<Vec<u8>> {
        let out = self
            .client
            .sign()
            .key_id(&self.key)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::Ed25519Sha512)
            .send()
            .await
            .map_err(|e| anyhow!("{}", aws_sdk_kms::error::DisplayErrorContext(e)))
            .with_context(|| format!("signing with KMS key {}: check that the role has kms:Sign on it", self.key))?;
        let signature = out.signature().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        if signature.len() != 64 {
            bail!("KMS key {} gave a {}-byte signature, not an Ed25519 one", self.key, signature.len());
        }
        Ok(signature)
    }

    /// A `.minisig` text for `data`: minisign's prehashed signature ("ED"), with its trusted
    /// comment signed too.
    pub async fn minisig(&self, data: &[u8], trusted_comment: &str, untrusted_comment: &str) -> Result<String> {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let prehash = blake2::Blake2b512::digest(data);
        let signature = self.ed25519(&prehash).await?;
        let global = self.ed25519(&[&signature[..], trusted_comment.as_bytes()].concat()).await?;
        let line = [&b"ED"[..], &self.keynum, &signature].concat();
        Ok(format!(
            "untrusted comment: {untrusted_comment}\n{}\ntrusted comment: {trusted_comment}\n{}\n",
            b64(&line),
            b64(&global)
        ))
    }
}
