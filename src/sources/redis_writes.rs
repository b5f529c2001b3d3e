//! The write side of a Redis restore: an entry's records are parsed off the async runtime into
//! pipelines cut by bytes, which go over several connections at once, while the next entry is
//! already being read, decompressed and hashed. Errors surface at the next entry or at `finish`.
//!
//! An entry's records are written only once the reader has moved on to the next entry (or
//! finished), that is after the reader checked the entry's size and SHA-256 against the
//! manifest: a damaged entry is never applied, even in part.

use super::redact_url;
use super::redis::{Blob, KeyRecord, KeyValue};
use anyhow::{anyhow, Context, Result};
use futures::TryStreamExt;
use redis::aio::MultiplexedConnection;
use std::collections::BTreeMap;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// Connections written on concurrently: Redis executes one command at a time, but several
/// connections keep it busy while the client parses and the network carries the next pipeline.
pub const CONNECTIONS: usize = 4;
/// Payload bytes per pipeline: big enough to amortise round trips, small enough to keep every
/// connection busy and memory flat whatever the value sizes.
pub const PIPELINE_BYTES: usize = 1 << 20;
/// Entries parsed or written at the same time (each is at most one archive part, 8 MiB by default).
const ENTRIES_IN_FLIGHT: usize = 2;
/// Members per HSET / RPUSH / SADD / ZADD command.
const MEMBERS_PER_COMMAND: usize = 500;

/// Counts a key into the restore statistics (the exporter's namespace counting).
pub type CountKey = fn(&mut BTreeMap<String, u64>, &Blob);

/// What the records of one entry became.
#[derive(Default)]
pub struct Tally {
    pub keys: u64,
    pub stats: BTreeMap<String, u64>,
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
        pipe.cmd("DEL").arg(&key).ignore();
        let mut commands = 1;
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

/// Parses the NDJSON records of one entry into pipelines of about [`PIPELINE_BYTES`] each.
fn plan(body: &[u8], path: &str, count: CountKey) -> Result<(Vec<Batch>, Tally)> {
    let mut batches = Vec::new();
    let mut batch = Batch::default();
    let mut tally = Tally::default();
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let record: KeyRecord = serde_json::from_slice(line).with_context(|| format!("bad record in {path}"))?;
        count(&mut tally.stats, &record.key);
        tally.keys += 1;
        batch.add(record)?;
        if batch.bytes >= PIPELINE_BYTES {
            batches.push(std::mem::take(&mut batch));
        }
    }
    if batch.plain_commands + batch.atomic_commands > 0 {
        batches.push(batch);
    }
    Ok((batches, tally))
}

/// One thread parses every entry, in order: a steady thread keeps the allocator's memory in
/// one place (with a fresh blocking thread per entry, peak RSS grew by tens of MiB).
struct Parser {
    jobs: std::sync::mpsc::Sender<ParseJob>,
}

type Parsed = Result<(Vec<Batch>, Tally)>;

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
                    let parsed = plan(&job.body, &job.path, job.count);
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

/// Connections and the entries being written over them.
pub struct Writers {
    parser: Parser,
    connections: Vec<MultiplexedConnection>,
    url: String,
    in_flight: JoinSet<Result<Tally>>,
    /// Releases the writes of the last entry submitted, once its hash has been checked.
    checked: Option<oneshot::Sender<()>>,
    done: Tally,
}

impl Writers {
    pub async fn connect(url: &str) -> Result<Self> {
        let mut connections = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            connections.push(super::redis::connect(url).await?);
        }
        Ok(Writers {
            parser: Parser::start()?,
            connections,
            url: redact_url(url),
            in_flight: JoinSet::new(),
            checked: None,
            done: Tally::default(),
        })
    }

    /// Starts parsing one entry's records, and releases the writes of the entry before it (the
    /// reader checked that one before handing out this one). Waits while [`ENTRIES_IN_FLIGHT`]
    /// are under way.
    pub async fn submit(&mut self, body: Vec<u8>, path: String, count: CountKey) -> Result<()> {
        self.release();
        while self.in_flight.len() >= ENTRIES_IN_FLIGHT {
            self.join_one().await?;
        }
        let connections = self.connections.clone();
        let url = self.url.clone();
        let (checked, released) = oneshot::channel();
        self.checked = Some(checked);
        let parsed = self.parser.parse(body, path.clone(), count);
        self.in_flight.spawn(async move {
            let (batches, tally) = parsed.await.context("the Redis record parser thread stopped")??;
            released
                .await
                .map_err(|_| anyhow!("the restore stopped before {path} was checked; none of it was written"))?;
            futures::stream::iter(batches.into_iter().enumerate().map(Ok::<_, anyhow::Error>))
                .try_for_each_concurrent(connections.len(), |(i, batch)| {
                    let mut con = connections[i % connections.len()].clone();
                    let url = &url;
                    async move {
                        batch
                            .write(&mut con)
                            .await
                            .with_context(|| format!("writing a batch of keys to Redis at {url}"))
                    }
                })
                .await?;
            Ok(tally)
        });
        Ok(())
    }

    /// Releases the last entry (the whole archive was read and checked), waits for every entry
    /// under way, and returns what was written in all.
    pub async fn finish(&mut self) -> Result<Tally> {
        self.release();
        while !self.in_flight.is_empty() {
            self.join_one().await?;
        }
        Ok(std::mem::take(&mut self.done))
    }

    fn release(&mut self) {
        if let Some(checked) = self.checked.take() {
            let _ = checked.send(());
        }
    }

    async fn join_one(&mut self) -> Result<()> {
        let Some(joined) = self.in_flight.join_next().await else { return Ok(()) };
        let tally = joined.map_err(|e| anyhow!("a Redis restore task failed: {e}"))??;
        self.done.keys += tally.keys;
        for (name, n) in tally.stats {
            *self.done.stats.entry(name).or_default() += n;
        }
        Ok(())
    }
}
