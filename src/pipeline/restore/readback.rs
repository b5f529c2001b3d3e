//! The read-back check after the writing pass: each restorer reads back what it wrote and the
//! content digest must equal the archive's; on a difference, up to ten records on each side are
//! named.

use super::report::{rollback_command, BackendReport};
use super::verify::Verified;
use crate::archive::reader::{read_archive, EntryVisitor};
use crate::archive::{ContentDigest, EntryRecord};
use crate::backends::Restorer;
use crate::failure::FailureKind;
use crate::id::BackupId;
use crate::stop::or_stop;
use anyhow::{Context, Result};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;
use tokio::io::AsyncRead;

/// Reads back each restored backend and compares; returns the seconds the check took.
pub(super) async fn check_restored(
    verified: &Verified<'_>,
    restorers: &mut [Box<dyn Restorer>],
    backends: &mut BTreeMap<String, BackendReport>,
    safety: Option<&BackupId>,
) -> Result<f64> {
    let id = verified.id;
    let rollback = match safety {
        Some(s) => format!(", or roll back to the state before the restore with `{}`", rollback_command(s)),
        None => String::new(),
    };
    let started = Instant::now();
    for r in restorers.iter_mut() {
        let report = backends.get_mut(r.name()).expect("inserted above");
        let Some(expected) = report.digest_expected else { continue };
        let mut found = ContentDigest::default();
        if !or_stop(r.read_back(&mut |record: &[u8]| found.add(record)))
            .await
            .with_context(|| format!("reading back what was restored into {} (the data was written)", r.name()))?
        {
            continue;
        }
        report.digest_found = Some(found);
        report.verified = Some(found == expected);
        if found != expected {
            let detail = differences(verified, r.as_mut()).await;
            let message = format!(
                "the restored {} differs from backup {id}: it holds {} records where the archive has {} \
                 (digest {} where {} was expected).{detail} The data was written but is not what was \
                 backed up: stop writers to the target and restore again (with --{}-mode replace to \
                 remove what the archive does not hold){rollback}",
                r.name(),
                found.records,
                expected.records,
                found.hex(),
                expected.hex(),
                mode_flag(r.name())
            );
            return Err(FailureKind::ReadBackMismatch.marked(message).into());
        }
        tracing::info!(backend = r.name(), records = found.records, "restored state read back: equal to the archive");
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The kind whose `--<kind>-mode` flag applies to `backend`.
fn mode_flag(backend: &str) -> &'static str {
    crate::backends::describe(backend).map(|d| d.kind).unwrap_or("kv")
}

/// Up to ten records on each side that the other lacks, found by reading the target back and the
/// archive again (only when the digests differ, so the cost is paid only then).
async fn differences(verified: &Verified<'_>, restorer: &mut dyn Restorer) -> String {
    let Verified { store, id, sidecar, etag } = *verified;
    let mut found: HashMap<[u8; 32], u32> = HashMap::new();
    let read =
        restorer.read_back(&mut |record: &[u8]| *found.entry(Sha256::digest(record).into()).or_default() += 1).await;
    if let Err(e) = read {
        return format!(" (the differing records could not be listed: {e:#})");
    }
    let mut missing = Vec::new();
    let name = restorer.name().to_string();
    let again = match store.get(&id.archive_key(), etag).await {
        Ok(o) => o,
        Err(e) => return format!(" (the differing records could not be listed: {e:#})"),
    };
    let mut listing = Listing { restorer: &mut *restorer, backend: name, found: &mut found, missing: &mut missing };
    if let Err(e) = read_archive(again.body, sidecar, &mut listing).await {
        return format!(" (the differing records could not be listed: {e:#})");
    }
    let mut extra = Vec::new();
    let _ = restorer
        .read_back(&mut |record: &[u8]| {
            if let Some(n) = found.get_mut(&<[u8; 32]>::from(Sha256::digest(record))) {
                if *n > 0 {
                    *n -= 1;
                    if extra.len() < 10 {
                        extra.push(String::from_utf8_lossy(record).into_owned());
                    }
                }
            }
        })
        .await;
    let mut out = String::new();
    if !missing.is_empty() {
        out.push_str(&format!("\n  archived but not found as archived (first {}):", missing.len()));
        for m in &missing {
            out.push_str(&format!("\n    {}", shorten(m)));
        }
    }
    if !extra.is_empty() {
        out.push_str(&format!("\n  found but not in the archive (first {}):", extra.len()));
        for m in &extra {
            out.push_str(&format!("\n    {}", shorten(m)));
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn shorten(record: &str) -> String {
    match record.char_indices().nth(400) {
        Some((i, _)) => format!("{}…", &record[..i]),
        None => record.to_string(),
    }
}

/// Lists archived records of one backend that the read-back did not find (see [`differences`]).
struct Listing<'a> {
    restorer: &'a mut dyn Restorer,
    backend: String,
    found: &'a mut HashMap<[u8; 32], u32>,
    missing: &'a mut Vec<String>,
}

#[async_trait]
impl EntryVisitor for Listing<'_> {
    async fn visit(&mut self, record: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        if record.backend != self.backend {
            return Ok(());
        }
        let (found, missing) = (&mut *self.found, &mut *self.missing);
        self.restorer
            .check_entry(record, body, &mut |canonical: &[u8]| match found
                .get_mut(&<[u8; 32]>::from(Sha256::digest(canonical)))
            {
                Some(n) if *n > 0 => *n -= 1,
                _ if missing.len() < 10 => missing.push(String::from_utf8_lossy(canonical).into_owned()),
                _ => {}
            })
            .await
    }
}
