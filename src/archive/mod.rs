//! The `.ngbak` archive: its format, compression, the streaming writer and the verifying reader.

pub mod compress;
pub mod digest;
pub mod format;
pub mod hashing;
pub mod reader;
pub mod writer;

pub use digest::ContentDigest;
pub use format::{
    ArchiveDigest, ArchiveHeader, BackendManifest, ConsistencySummary, EncryptionInfo, EntryRecord, Manifest,
    RuleCounts, SealedSidecar, Sidecar, StoredSidecar, ENCRYPTED_FORMAT_VERSION,
};
pub use writer::{ArchiveWriter, EntryBody, PendingEntry};
