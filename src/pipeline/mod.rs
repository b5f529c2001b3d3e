//! The jobs, wiring backends, the archive and a store together.

pub mod archived_links;
pub mod backup;
pub mod catalog;
pub mod cleanup;
pub mod empty;
pub mod import;
pub mod quiet;
pub mod rekey;
pub mod restore;
pub mod retention;

use crate::failure::{FailureKind, Marked};

/// Version stamped into archives.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The kind of `error`: a partial restore first (data was written, whatever else happened), then
/// a stop, then the first mark found from the outermost context in.
pub fn failure_kind(error: &anyhow::Error) -> FailureKind {
    if error.downcast_ref::<restore::PartialRestore>().is_some_and(|p| !p.written.is_empty()) {
        return FailureKind::PartialRestore;
    }
    if error.downcast_ref::<crate::stop::Stopped>().is_some() {
        return FailureKind::Stopped;
    }
    if error.downcast_ref::<backup::AlreadyExists>().is_some() {
        return FailureKind::BackupExists;
    }
    if error.downcast_ref::<restore::RestoredInconsistent>().is_some()
        || error.downcast_ref::<crate::consistency::Inconsistent>().is_some()
    {
        return FailureKind::Inconsistent;
    }
    if error.downcast_ref::<quiet::Moved>().is_some() {
        return FailureKind::StoresMoving;
    }
    if let Some(marked) = error.downcast_ref::<Marked>() {
        return marked.kind;
    }
    FailureKind::Internal
}

/// The lock a backup with this id takes, for a job that writes a backup's objects besides the
/// backup itself (import, rekey): two such jobs never write one id at once.
async fn writing_lock(
    store: &std::sync::Arc<dyn crate::store::ObjectStore>,
    id: &crate::id::BackupId,
    holder: &str,
) -> anyhow::Result<crate::store::lock::Lock> {
    use crate::store::lock::{acquire, LEASE};
    match acquire(store.clone(), &id.lock_key("backup"), holder, LEASE).await? {
        Ok(lock) => Ok(lock),
        Err(held) => {
            anyhow::bail!("backup {id} is being written by another run ({}); try again when it is done", held.holder)
        }
    }
}
