//! The signature in a store: `<id>.manifest.json.minisig`, beside the sidecar it signs, written
//! before the sidecar (whose presence marks a backup complete) and read with a bound.

use crate::id::BackupId;
use crate::store::{get_within, ObjectStore};
use anyhow::Result;
use bytes::Bytes;

/// Largest signature object read (minisign's are about 300 bytes); a larger one is refused
/// unread past this bound.
pub const MAX_SIGNATURE_BYTES: u64 = 8 << 10;

/// The signature of backup `id`, when there is one.
pub async fn read_signature(store: &dyn ObjectStore, id: &BackupId) -> Result<Option<Vec<u8>>> {
    let key = id.signature_key();
    if store.head(&key).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(get_within(store, &key, MAX_SIGNATURE_BYTES).await?.1))
}

/// Keeps `signature` (a `.minisig` text) as backup `id`'s signature.
pub async fn write_signature(store: &dyn ObjectStore, id: &BackupId, signature: String) -> Result<()> {
    store.put(&id.signature_key(), Bytes::from(signature)).await
}

/// Writes a sidecar, signed with `key` when there is one: the signature first, so that a sidecar
/// (whose presence marks a backup complete) is never seen without the signature meant for it.
/// With `if_absent`, `false` when a sidecar is there already (nothing is written then). On a
/// failure, neither is left behind.
pub async fn put_sidecar(
    store: &dyn ObjectStore,
    sidecar: &crate::archive::Sidecar,
    key: Option<&super::SigningKey>,
    if_absent: bool,
) -> Result<bool> {
    let id = &sidecar.manifest.backup_id;
    let bytes = sidecar.stored_bytes()?;
    if let Some(key) = key {
        if if_absent && store.head(&id.sidecar_key()).await?.is_some() {
            return Ok(false);
        }
        let signature = super::sign(key, &bytes, id, &sidecar.archive.sha256).await?;
        write_signature(store, id, signature).await?;
    }
    let written = if if_absent {
        store.put_if_absent(&id.sidecar_key(), Bytes::from(bytes)).await
    } else {
        store.put(&id.sidecar_key(), Bytes::from(bytes)).await.map(|()| true)
    };
    if key.is_some() && !matches!(written, Ok(true)) {
        store.delete(&id.signature_key()).await.ok();
    }
    written
}
