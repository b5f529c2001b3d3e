//! Client-side encryption (README, "Encryption"; FORMAT.md, "Encrypted archives").
//!
//! The compressed archive stream is encrypted with age (X25519 recipients) as it is written, in
//! age's STREAM format (64 KiB chunks, each authenticated), so memory stays bounded and a cut or
//! flipped byte is caught by the chunk it is in. The sidecar keeps readable only what a store
//! listing needs; the manifest (names and counts) is sealed to the same recipients.
//!
//! `keys` parses recipients and identities, `stream` encrypts and decrypts the archive as it
//! flows, `seal` the manifest in the sidecar, `header` re-wraps the file key for `rekey` without
//! touching the body, `config` is the flags and variables.

mod config;
mod header;
mod keys;
mod seal;
mod stream;

pub use config::{Encryption, EncryptionArgs};
pub use header::{rewrap, Rewrapped, MAX_HEADER};
pub use keys::{parse_identities, parse_recipients, Identities, Passphrase, Recipients, AGE_MAGIC, PASSPHRASE};
pub use seal::{seal, unseal};
pub use stream::{decrypting, encrypting};
