//! The verification pass's check of Redis records, on a thread of its own: while the reader
//! decompresses and hashes the next entry, this thread parses the one before (the same parse the
//! write pass uses), refuses a DUMP the target could not load, and adds each record's canonical
//! lines (FORMAT.md) to the content digest. Reading and checking then take both cores, where
//! they took turns on one before.

use super::record::{records, CanonicalLines, KeyRecord, KeyValue, Lines};
use crate::archive::ContentDigest;
use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::mpsc;

/// Entries waiting for the check: one, so memory holds at most three parts (the one being read,
/// the one waiting, the one being checked).
const WAITING: usize = 1;

/// The checking thread and the queue to it.
pub struct Checker {
    jobs: Option<mpsc::Sender<(Vec<u8>, String)>>,
    thread: Option<std::thread::JoinHandle<Result<ContentDigest>>>,
}

impl Checker {
    /// Starts the thread; `server_rdb` is the target's `DUMP` version, when known.
    pub fn start(server_rdb: Option<u16>) -> Result<Checker> {
        let (jobs, mut queue) = mpsc::channel::<(Vec<u8>, String)>(WAITING);
        let thread = std::thread::Builder::new()
            .name("ngbak-redis-check".into())
            .spawn(move || {
                let mut check = RecordCheck::new(server_rdb);
                let mut digest = ContentDigest::default();
                while let Some((bytes, path)) = queue.blocking_recv() {
                    check
                        .entry(&bytes, &path, &mut |line| digest.add(line))
                        .with_context(|| format!("{path} holds a record that cannot be restored"))?;
                }
                Ok(digest)
            })
            .context("starting the Redis record check thread")?;
        Ok(Checker { jobs: Some(jobs), thread: Some(thread) })
    }

    /// Queues one entry (waits while the thread is busy with the one before). Once the thread
    /// has stopped on a bad record, entries are let go: [`Checker::finish`] reports that record,
    /// and the reader goes on to prove the rest of the archive meanwhile.
    pub async fn check(&mut self, bytes: Vec<u8>, path: String) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send((bytes, path)).await;
        }
    }

    /// Waits for the check of every queued entry; the digest of all their records.
    pub async fn finish(&mut self) -> Result<ContentDigest> {
        self.jobs = None;
        let thread = self.thread.take().ok_or_else(|| anyhow!("the Redis record check already ended"))?;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .context("waiting for the Redis record check")?
            .map_err(|_| anyhow!("the Redis record check thread panicked"))?
    }
}

/// What the check does to each record: the DUMP version checked against the target's, the
/// canonical lines handed on (a list's position spans its pages, and its pages may span
/// entries, so one `RecordCheck` sees every entry in order).
pub struct RecordCheck {
    server_rdb: Option<u16>,
    canonical: CanonicalLines,
    lines: Lines,
}

impl RecordCheck {
    pub fn new(server_rdb: Option<u16>) -> Self {
        RecordCheck { server_rdb, canonical: CanonicalLines::default(), lines: Lines::default() }
    }

    /// Checks every record (one NDJSON line each) of the entry `path`, handing each canonical
    /// line to `each`.
    pub fn entry(&mut self, bytes: &[u8], path: &str, each: &mut dyn FnMut(&[u8])) -> Result<()> {
        for record in records(bytes, path) {
            let record = record?;
            check_dump_version(&record, self.server_rdb)?;
            self.lines = Lines::with_buffer(std::mem::take(&mut self.lines.buf));
            self.canonical.write(&record, &mut self.lines);
            self.lines.iter().for_each(&mut *each);
        }
        Ok(())
    }
}

/// Refuses a key archived as a `DUMP` of a newer RDB version than the target's (`server`), which
/// it could not load.
fn check_dump_version(record: &KeyRecord, server: Option<u16>) -> Result<()> {
    if let (KeyValue::Dump(payload), Some(server)) = (&record.value, server) {
        let version = rdb_version(&payload.bytes()?);
        if version.is_some_and(|v| v > server) {
            bail!(
                "key {:?} is archived as a DUMP of RDB version {}, which the target Redis (RDB version \
                 {server}) cannot load: restore into a Redis at least as new as the one backed up",
                record.key,
                version.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// The RDB version in a `DUMP` payload's footer (two little-endian bytes before the CRC-64).
pub(super) fn rdb_version(dump: &[u8]) -> Option<u16> {
    let n = dump.len();
    (n >= 10).then(|| u16::from_le_bytes([dump[n - 10], dump[n - 9]]))
}
