//! The write side of a Redis restore: an entry's records are parsed on a thread of their own into
//! pipelines cut by bytes, which go over several connections at once while the next entry is
//! read, decompressed and hashed. Keys are spread over the connections by hash, and each
//! connection applies its pipelines in order, so the records of one key are applied in archive
//! order. Errors surface at the next entry or at `finish`.
//!
//! An entry's records are written only once the reader has moved on to the next entry (or
//! finished), that is after the reader checked the entry's size and SHA-256 against the
//! manifest: a damaged entry is never applied, even in part.

use super::client::connect;
use super::record::{key_hash, records, Blob, KeyHashes, KeyRecord, KeyValue};
use crate::backends::redact_url;
use anyhow::{anyhow, Context, Result};
use redis::aio::MultiplexedConnection;
use std::collections::BTreeMap;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// Connections written on concurrently: Redis executes one command at a time, but several
/// connections keep it busy while the client parses and the network carries the next pipeline.
pub const CONNECTIONS: usize = 4;
/// Payload bytes per pipeline: big enough to amortise round trips, small enough to keep every
/// connection busy and memory flat whatever the value sizes.
pub const PIPELINE_BYTES: usize = 1 << 20;
/// Pipelines queued per connection: bounds memory to about `CONNECTIONS × LANE_DEPTH` MiB.
const LANE_DEPTH: usize = 2;
/// Members per HSET / RPUSH / SADD / ZADD command.
const MEMBERS_PER_COMMAND: usize = 500;

/// Counts a key into the restore statistics (the exporter's namespace counting).
pub type CountKey = fn(&mut BTreeMap<String, u64>, &Blob);

/// What the records of one entry became.
#[derive(Default)]
pub struct Tally {
    pub keys: u64,
    pub stats: BTreeMap<String, u64>,
    /// Hashes of the keys written (see `redis::key_hash`), for the check after a merge restore.
    pub written: KeyHashes,
}

/// One pipeline's worth of keys. Strings are one `SET … [PX]` each, atomic on their own; keys of
/// other types take several commands, so they go into a MULTI/EXEC pipeline, and no reader sees
/// such a key half written.
#[derive(Default)]
struct Batch {
    plain: redis::Pipeline,
    plain_commands: usize,
    atomic: redis::Pipeline,
    atomic_commands: usize,
    bytes: usize,
}

impl Batch {
    fn add(&mut self, record: KeyRecord) -> Result<()> {
        let key = record.key.into_bytes()?;
        self.bytes += key.len() + 16;
        if let KeyValue::String(value) = record.value {
            let value = value.into_bytes()?;
            self.bytes += value.len();
            let cmd = self.plain.cmd("SET").arg(&key).arg(value);
            if let Some(ms) = record.pttl {
                cmd.arg("PX").arg(ms.max(1));
            }
            cmd.ignore();
            self.plain_commands += 1;
            return Ok(());
        }
        if self.atomic_commands == 0 {
            self.atomic.atomic();
        }
        let pipe = &mut self.atomic;
        // A page of a large key (`more`) appends to what the records before it wrote.
        let mut commands = 0;
        if !record.more {
            pipe.cmd("DEL").arg(&key).ignore();
            commands += 1;
        }
        let mut bytes = 0;
        let mut blob = |b: Blob| -> Result<Vec<u8>> {
            let v = b.into_bytes()?;
            bytes += v.len() + 8;
            Ok(v)
        };
        match record.value {
            KeyValue::String(_) => unreachable!("handled above"),
            KeyValue::Hash(fields) => {
                for chunk in chunks(fields) {
                    let c = pipe.cmd("HSET").arg(&key);
                    for (f, v) in chunk {
                        c.arg(blob(f)?).arg(blob(v)?);
                    }
                    c.ignore();
                    commands += 1;
                }
            }
            KeyValue::List(items) => commands += push(pipe, "RPUSH", &key, items, &mut blob)?,
            KeyValue::Set(items) => commands += push(pipe, "SADD", &key, items, &mut blob)?,
            KeyValue::Zset(members) => {
                for chunk in chunks(members) {
                    let c = pipe.cmd("ZADD").arg(&key);
                    for (m, s) in chunk {
                        c.arg(s).arg(blob(m)?);
                    }
                    c.ignore();
                    commands += 1;
                }
            }
            KeyValue::Dump(payload) => {
                pipe.cmd("RESTORE").arg(&key).arg(0).arg(blob(payload)?).arg("REPLACE").ignore();
                commands += 1;
            }
        }
        if let Some(ms) = record.pttl {
            pipe.cmd("PEXPIRE").arg(&key).arg(ms.max(1)).ignore();
            commands += 1;
        }
        self.atomic_commands += commands;
        self.bytes += bytes;
        Ok(())
    }

    async fn write(self, con: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        if self.plain_commands > 0 {
            let () = self.plain.query_async(con).await?;
        }
        if self.atomic_commands > 0 {
            let () = self.atomic.query_async(con).await?;
        }
        Ok(())
    }
}

/// `verb key member…` in commands of at most [`MEMBERS_PER_COMMAND`] members; returns how many.
fn push(
    pipe: &mut redis::Pipeline,
    verb: &str,
    key: &[u8],
    items: Vec<Blob>,
    blob: &mut impl FnMut(Blob) -> Result<Vec<u8>>,
) -> Result<usize> {
    let mut commands = 0;
    for chunk in chunks(items) {
        let c = pipe.cmd(verb).arg(key);
        for item in chunk {
            c.arg(blob(item)?);
        }
        c.ignore();
        commands += 1;
    }
    Ok(commands)
}

/// Splits owned members into groups of [`MEMBERS_PER_COMMAND`].
fn chunks<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(MEMBERS_PER_COMMAND).collect());
    }
    out
}

/// Parses the NDJSON records of one entry into pipelines of about [`PIPELINE_BYTES`] each, one
/// list per lane: a key always falls into the same lane, so its records are applied in order.
fn plan(body: &[u8], path: &str, count: CountKey, lanes: usize) -> Parsed {
    let mut batches: Vec<Vec<Batch>> = (0..lanes).map(|_| Vec::new()).collect();
    let mut open: Vec<Batch> = (0..lanes).map(|_| Batch::default()).collect();
    let mut tally = Tally::default();
    for record in records(body, path) {
        let record = record?;
        if !record.more {
            count(&mut tally.stats, &record.key);
            tally.keys += 1;
            tally.written.insert(key_hash(&record.key.bytes()?));
        }
        let lane = lane_of(&record.key, lanes);
        open[lane].add(record)?;
        if open[lane].bytes >= PIPELINE_BYTES {
            batches[lane].push(std::mem::take(&mut open[lane]));
        }
    }
    for (lane, batch) in open.into_iter().enumerate() {
        if batch.plain_commands + batch.atomic_commands > 0 {
            batches[lane].push(batch);
        }
    }
    Ok((batches, tally))
}

fn lane_of(key: &Blob, lanes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match key {
        Blob::Text(t) => t.hash(&mut h),
        Blob::Binary { b64 } => b64.hash(&mut h),
    }
    (h.finish() % lanes as u64) as usize
}

/// One thread parses every entry, in order: a steady thread keeps the allocator's memory in
/// one place (with a fresh blocking thread per entry, peak RSS grew by tens of MiB).
struct Parser {
    jobs: std::sync::mpsc::Sender<ParseJob>,
}

/// Pipelines per lane, and what they hold.
type Parsed = Result<(Vec<Vec<Batch>>, Tally)>;

struct ParseJob {
    body: Vec<u8>,
    path: String,
    count: CountKey,
    reply: oneshot::Sender<Parsed>,
}

impl Parser {
    fn start() -> Result<Parser> {
        let (jobs, queue) = std::sync::mpsc::channel::<ParseJob>();
        std::thread::Builder::new()
            .name("ngbak-redis-parse".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    let parsed = plan(&job.body, &job.path, job.count, CONNECTIONS);
                    drop(job.body);
                    let _ = job.reply.send(parsed);
                }
            })
            .context("starting the Redis record parser thread")?;
        Ok(Parser { jobs })
    }

    fn parse(&self, body: Vec<u8>, path: String, count: CountKey) -> oneshot::Receiver<Parsed> {
        let (reply, parsed) = oneshot::channel();
        // A send error drops `reply`, which the receiver reports.
        let _ = self.jobs.send(ParseJob { body, path, count, reply });
        parsed
    }
}

/// One writer task per connection ("lane"), each applying its pipelines strictly in order.
/// Entries are parsed one after another and handed to the lanes only once checked.
pub struct Writers {
    parser: Parser,
    lanes: Vec<mpsc::Sender<Batch>>,
    lane_tasks: JoinSet<Result<()>>,
    /// The entry parsed last, waiting until the reader has checked it.
    pending: Option<oneshot::Receiver<Parsed>>,
    done: Tally,
}

impl Writers {
    pub async fn connect(url: &str) -> Result<Self> {
        let mut lanes = Vec::with_capacity(CONNECTIONS);
        let mut lane_tasks = JoinSet::new();
        for _ in 0..CONNECTIONS {
            let mut con = connect(url).await?;
            let (tx, mut rx) = mpsc::channel::<Batch>(LANE_DEPTH);
            let url = redact_url(url);
            lane_tasks.spawn(async move {
                while let Some(batch) = rx.recv().await {
                    batch
                        .write(&mut con)
                        .await
                        .with_context(|| format!("writing a batch of keys to Redis at {url}"))?;
                }
                Ok(())
            });
            lanes.push(tx);
        }
        Ok(Writers { parser: Parser::start()?, lanes, lane_tasks, pending: None, done: Tally::default() })
    }

    /// Hands the entry parsed last to the lanes: call it when the reader has moved past that
    /// entry (it checked its size and SHA-256). Waits while the lanes are full (back-pressure).
    pub async fn release(&mut self) -> Result<()> {
        let Some(parsed) = self.pending.take() else { return Ok(()) };
        let (batches, tally) = parsed.await.context("the Redis record parser thread stopped")??;
        for (lane, batches) in batches.into_iter().enumerate() {
            for batch in batches {
                if self.lanes[lane].send(batch).await.is_err() {
                    return Err(self.lane_error().await);
                }
            }
        }
        self.done.keys += tally.keys;
        self.done.written.extend(tally.written);
        for (name, n) in tally.stats {
            *self.done.stats.entry(name).or_default() += n;
        }
        Ok(())
    }

    /// Starts parsing one entry (after [`Writers::release`] of the one before).
    pub fn parse(&mut self, body: Vec<u8>, path: String, count: CountKey) {
        debug_assert!(self.pending.is_none(), "release the previous entry first");
        self.pending = Some(self.parser.parse(body, path, count));
    }

    /// Releases the last entry (the whole archive was read and checked), waits until every lane
    /// has written everything, and returns what was written in all.
    pub async fn finish(&mut self) -> Result<Tally> {
        self.release().await?;
        self.lanes.clear();
        while let Some(joined) = self.lane_tasks.join_next().await {
            joined.map_err(|e| anyhow!("a Redis writer task failed: {e}"))??;
        }
        Ok(std::mem::take(&mut self.done))
    }

    /// The error that stopped a lane.
    async fn lane_error(&mut self) -> anyhow::Error {
        while let Some(joined) = self.lane_tasks.join_next().await {
            match joined {
                Ok(Err(e)) => return e,
                Err(e) => return anyhow!("a Redis writer task failed: {e}"),
                Ok(Ok(())) => {}
            }
        }
        anyhow!("the Redis writers stopped")
    }
}
