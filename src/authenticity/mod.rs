//! Who wrote a backup (README, "Authenticity"; FORMAT.md, "Signature").
//!
//! Every sidecar ngbak writes is signed with Ed25519 in minisign's format when a signing key is
//! configured, and checked against the operator's trusted public keys before a restore, a verify
//! or an import reads the archive. One signature covers the whole backup: it is over the
//! sidecar's exact bytes, and the sidecar holds the archive's size and SHA-256 and every entry's.
//!
//! `keys` reads and makes keys, `kms` signs with a key kept in AWS KMS, `signature` signs and
//! judges one sidecar, `stored` keeps the signature beside the sidecar in a store, `config` is
//! the flags and variables.

mod config;
mod keys;
mod kms;
mod signature;
mod stored;

pub use config::{AuthArgs, Keys};
pub use keys::{generate, key_id, GeneratedKeys, SigningKey, TrustedKeys};
pub use kms::KmsKey;
pub use signature::{sign, Provenance, Trust};
pub use stored::{put_sidecar, read_signature, write_signature, MAX_SIGNATURE_BYTES};
