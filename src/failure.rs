//! The kinds of failure a job can meet: stable names an operator, a dead-letter queue or a retry
//! policy can match on (the functions' `errorType`, and the same names wherever ngbak reports a
//! failure). The README lists them with what to do about each.
//!
//! A kind travels in the error's chain as a context ([`Marked`]) that prints as the message it
//! was given, so marking a failure changes no text an operator reads; types that already say
//! what happened (a stop, a partial restore, an existing backup) count as their kind unmarked
//! (`crate::pipeline::failure_kind` knows them).

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum FailureKind {
    /// The event or request could not be read (not JSON, a bad id, a field of the wrong type).
    MalformedEvent,
    /// What the job needs is not configured (no backend, no target for a backend in the archive).
    ConfigurationError,
    /// A backup with this id already exists.
    BackupExists,
    /// No backup with this id (or no sidecar for its archive) is in the store.
    BackupNotFound,
    /// The archive is not what its sidecar describes (corrupt, truncated, tampered): nothing was
    /// written.
    IntegrityError,
    /// No trusted key vouches for the backup (unsigned, signed by another key, or changed after
    /// it was signed): nothing was read from the archive, nothing written.
    Unauthenticated,
    /// A backend or the store did not answer, or refused the credentials: nothing was written.
    BackendUnavailable,
    /// Another run holds the lock of this backup or of the store's restores.
    LockHeld,
    /// The job was stopped (a signal, its time limit, a lock taken over) before it wrote anything.
    Stopped,
    /// A restore failed after it began writing: the report says what was written and how to roll
    /// back.
    PartialRestore,
    /// The restored state was read back and differs from the archive.
    ReadBackMismatch,
    /// The stores did not hold still over any of the backup's tries (`--consistent`): no archive
    /// was stored.
    StoresMoving,
    /// The deployment's stores do not link up (`--require-consistent`): the report names the
    /// broken links.
    Inconsistent,
    /// Anything else (a store error, a bug): the message says what.
    Internal,
}

impl FailureKind {
    pub const ALL: [FailureKind; 14] = [
        FailureKind::MalformedEvent,
        FailureKind::ConfigurationError,
        FailureKind::BackupExists,
        FailureKind::BackupNotFound,
        FailureKind::IntegrityError,
        FailureKind::Unauthenticated,
        FailureKind::BackendUnavailable,
        FailureKind::LockHeld,
        FailureKind::Stopped,
        FailureKind::PartialRestore,
        FailureKind::ReadBackMismatch,
        FailureKind::StoresMoving,
        FailureKind::Inconsistent,
        FailureKind::Internal,
    ];

    /// The stable name (the variant's).
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::MalformedEvent => "MalformedEvent",
            FailureKind::ConfigurationError => "ConfigurationError",
            FailureKind::BackupExists => "BackupExists",
            FailureKind::BackupNotFound => "BackupNotFound",
            FailureKind::IntegrityError => "IntegrityError",
            FailureKind::Unauthenticated => "Unauthenticated",
            FailureKind::BackendUnavailable => "BackendUnavailable",
            FailureKind::LockHeld => "LockHeld",
            FailureKind::Stopped => "Stopped",
            FailureKind::PartialRestore => "PartialRestore",
            FailureKind::ReadBackMismatch => "ReadBackMismatch",
            FailureKind::StoresMoving => "StoresMoving",
            FailureKind::Inconsistent => "Inconsistent",
            FailureKind::Internal => "Internal",
        }
    }

    /// Marks `message` as a failure of this kind, to be used as an error or a context.
    pub fn marked(self, message: impl Into<String>) -> Marked {
        Marked { kind: self, message: message.into() }
    }
}

/// A failure's kind in its chain of context; prints as its message alone.
#[derive(Debug)]
pub struct Marked {
    pub kind: FailureKind,
    message: String,
}

impl std::fmt::Display for Marked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Marked {}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_mark_is_found_under_later_context_and_changes_no_text() {
        let e = anyhow::Error::new(FailureKind::BackupNotFound.marked("no backup x in s3://b/"))
            .context("restore of x failed");
        assert_eq!(e.downcast_ref::<Marked>().map(|m| m.kind), Some(FailureKind::BackupNotFound));
        assert_eq!(format!("{e:#}"), "restore of x failed: no backup x in s3://b/");
        let inner: anyhow::Result<()> = Err(anyhow::anyhow!("connection refused"));
        let e = inner.context(FailureKind::BackendUnavailable.marked("preflight failed")).unwrap_err();
        assert_eq!(e.downcast_ref::<Marked>().map(|m| m.kind), Some(FailureKind::BackendUnavailable));
        assert_eq!(format!("{e:#}"), "preflight failed: connection refused");
    }

    #[test]
    fn names_are_the_variants() {
        for kind in FailureKind::ALL {
            assert_eq!(format!("{kind:?}"), kind.name());
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.name()));
        }
    }
}
