//! The read side of Redis: a connection whose reads survive a lost connection, and the parallel
//! read-back after a restore.
//!
//! Every read ngbak makes (SCAN cursors, TYPE/PTTL/GET pipelines, HSCAN/LRANGE pages) is
//! idempotent, so a read that fails on a connection error or a timeout is sent again on a new
//! connection, a bounded number of times with exponential backoff (`NGBAK_MAX_ATTEMPTS`).
//! Writes are not retried here: a restore's pipelines are not all safe to repeat.
//!
//! A backup and the read-back after a restore read over several connections at once: one
//! connection walks the key space with SCAN and hands out batches of keys; [`READ_LANES`] lanes
//! read them and put their records in canonical form (a backup's lanes also write the archive
//! lines). The digest is a sum, so the order in which the lanes finish does not matter. Queues
//! are short, so memory holds a few batches whatever the number of keys.

use super::ndjson::write_line;
use super::redis::{count_key, read_keys, CanonicalLines, KeyHashes, LargeKey, Pager, Scanner, FOLDER};
use crate::archive::ContentDigest;
use crate::net::clients::{redis_target, RedisTarget};
use crate::net::timeouts::{backoff, FIRST_BACKOFF};
use crate::net::{policy, scrub};
use crate::sources::RecordSink;
use anyhow::{anyhow, Result};
use backon::Retryable;
use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, RedisError};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Connections reading at once during the read-back (as many as the writers use: Redis answers
/// one command at a time, but several connections keep it busy while ngbak parses and hashes).
pub const READ_LANES: usize = 4;
/// Batches of keys waiting for a lane, and blocks of lines waiting to be hashed.
const QUEUE: usize = 2;
/// Canonical lines per block handed to the caller: memory holds a few blocks, whatever the size
/// of a batch of keys.
const BLOCK_BYTES: usize = 256 << 10;

/// True for the failures another connection may not have: the connection was refused, dropped
/// or reset, an answer did not come in time, or an answer broke off (a connection cut in the
/// middle of a reply reaches us as a parse error, "Unexpected end of input"). A server's error
/// reply (wrong password, wrong type, out of memory) or a certificate that is not trusted would
/// fail again: no retry.
pub fn is_transient(e: &RedisError) -> bool {
    e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() || e.kind() == redis::ErrorKind::Parse
}

/// A Redis connection for reads that retries each read on a new connection when the old one
/// fails (see the module's documentation). Opens its connection on first use.
pub struct ReadConnection {
    target: Arc<RedisTarget>,
    con: Mutex<Option<MultiplexedConnection>>,
}

impl ReadConnection {
    pub fn new(url: &str) -> Result<Self> {
        Ok(Self::on(Arc::new(redis_target(url)?)))
    }

    fn on(target: Arc<RedisTarget>) -> Self {
        ReadConnection { target, con: Mutex::new(None) }
    }

    /// Connects now (with the same retries), so that an unreachable server fails before any work.
    pub async fn open(url: &str) -> Result<Self> {
        let rc = Self::new(url)?;
        rc.run("connecting", |_| async { Ok(()) }).await?;
        Ok(rc)
    }

    /// Runs one command, retrying as described above. `what` names it in the error.
    pub async fn cmd<T: FromRedisValue>(&self, what: &str, cmd: &redis::Cmd) -> Result<T> {
        self.run(what, |mut con| async move { cmd.query_async(&mut con).await }).await
    }

    /// Runs one pipeline, retrying it whole as described above.
    pub async fn pipe<T: FromRedisValue>(&self, what: &str, pipe: &redis::Pipeline) -> Result<T> {
        self.run(what, |mut con| async move { pipe.query_async(&mut con).await }).await
    }

    /// Runs one command once, without retries (for writes, such as the UNLINK of a replace).
    pub async fn once<T: FromRedisValue>(&self, what: &str, cmd: &redis::Cmd) -> Result<T> {
        let mut con = self.connection().await.map_err(|e| self.target.cannot_connect(&e))?;
        cmd.query_async(&mut con)
            .await
            .map_err(|e| anyhow!("{what} on Redis at {} failed: {}", self.target.addr, scrub(&e.to_string())))
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        if let Some(con) = self.con.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(con);
        }
        let con = self.target.connect_once().await?;
        *self.con.lock().unwrap_or_else(|e| e.into_inner()) = Some(con.clone());
        Ok(con)
    }

    async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempts = policy().max_attempts.max(1);
        let started = Instant::now();
        let tries = std::sync::atomic::AtomicU32::new(0);
        let (op, tries_ref) = (&op, &tries);
        let attempt = move || async move {
            tries_ref.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let con = self.connection().await.map_err(|e| (true, e))?;
            match op(con).await {
                Ok(v) => Ok(v),
                Err(e) => {
                    if is_transient(&e) {
                        // The connection is lost or stuck: the next attempt opens another.
                        *self.con.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    }
                    Err((false, e))
                }
            }
        };
        let backoff = backoff(attempts);
        let result = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|(_, e)| is_transient(e))
            .notify(|(_, e), pause| {
                tracing::warn!(
                    addr = %self.target.addr,
                    what,
                    error = %scrub(&e.to_string()),
                    retry_in_ms = pause.as_millis() as u64,
                    "Redis read failed; retrying on a new connection"
                )
            })
            .await;
        result.map_err(|(connecting, e)| {
            let tried = tries.load(std::sync::atomic::Ordering::Relaxed);
            // A reply's error stays in the chain (callers look for WRONGTYPE in it); a connection's
            // error is told in words, scrubbed of anything that looks like a password.
            let cause = if connecting { self.target.cannot_connect(&e) } else { anyhow::Error::new(e.clone()) };
            if !is_transient(&e) {
                return cause.context(format!("{what} on Redis at {}", self.target.addr));
            }
            cause.context(format!(
                "{what} on Redis at {} ({}) failed {tried} time(s) in {:.1} s: each attempt on a new connection, \
                 with backoff from {} ms between attempts, for connection errors and timeouts \
                 (NGBAK_MAX_ATTEMPTS={attempts}, NGBAK_REQUEST_TIMEOUT={} s)",
                self.target.addr,
                self.target.shown,
                started.elapsed().as_secs_f64(),
                FIRST_BACKOFF.as_millis(),
                policy().request.as_secs()
            ))
        })
    }
}

/// Canonical lines of several records in one buffer (one allocation per batch, not per line).
#[derive(Default)]
pub struct Lines {
    pub buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Lines {
    fn for_block(buffers: &LineBuffers) -> Self {
        Lines { buf: buffers.take(), ends: Vec::new() }
    }

    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.buf);
        self.ends.push(self.buf.len());
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(a, b)| &self.buf[a..b])
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }
}

/// Walks the keys under `patterns` (only those in `only`, when given) with SCAN on one
/// connection and hands each batch of keys to `lane`, which runs on [`READ_LANES`] more
/// connections at once and sends what it makes of the batch into the returned channel. The
/// channel ends when every key was read; an error ends it early. Dropping the returned tasks
/// stops the lanes.
async fn in_lanes<T, F, Fut>(
    url: &str,
    patterns: &[String],
    keys: usize,
    only: Option<KeyHashes>,
    lane: F,
) -> Result<(JoinSet<()>, mpsc::Receiver<Result<T>>)>
where
    T: Send + 'static,
    F: Fn(Arc<ReadConnection>, Vec<Vec<u8>>, mpsc::Sender<Result<T>>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let target = Arc::new(redis_target(url)?);
    let scan = ReadConnection::on(target.clone());
    scan.run("connecting", |_| async { Ok(()) }).await?;
    let (keys_tx, keys_rx) = mpsc::channel::<Vec<Vec<u8>>>(QUEUE);
    let keys_rx = Arc::new(tokio::sync::Mutex::new(keys_rx));
    let (out_tx, out_rx) = mpsc::channel::<Result<T>>(QUEUE);
    let mut tasks = JoinSet::new();

    let (patterns, tx) = (patterns.to_vec(), out_tx.clone());
    tasks.spawn(async move {
        let mut scanner = Scanner::sized(&patterns, keys);
        scanner.only = only;
        loop {
            match scanner.next_batch(&scan).await {
                Ok(Some(keys)) if keys.is_empty() => continue,
                Ok(Some(keys)) => {
                    if keys_tx.send(keys).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    for _ in 0..READ_LANES {
        let (rc, rx, tx, lane) =
            (Arc::new(ReadConnection::on(target.clone())), keys_rx.clone(), out_tx.clone(), lane.clone());
        tasks.spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(keys) = next else { return };
                if let Err(e) = lane(rc.clone(), keys, tx.clone()).await {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        });
    }
    Ok((tasks, out_rx))
}

/// Waits for the lanes of [`in_lanes`] once their channel has ended.
async fn finish_lanes(mut tasks: JoinSet<()>, what: &str) -> Result<()> {
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| anyhow!("a Redis {what} lane failed: {e}"))?;
    }
    Ok(())
}

/// Reads every key under `patterns` (only those in `only`, when given) over [`READ_LANES`]
/// connections plus one for SCAN, and hands each record's canonical lines to `each`.
pub async fn read_back(
    url: &str,
    patterns: &[String],
    keys: usize,
    only: Option<KeyHashes>,
    each: &mut RecordSink<'_>,
) -> Result<()> {
    let buffers = LineBuffers::default();
    let pool = buffers.clone();
    let lane = move |rc: Arc<ReadConnection>, keys, out: mpsc::Sender<Result<Lines>>| {
        let pool = pool.clone();
        async move { read_batch(&rc, keys, &out, &pool).await }
    };
    let (tasks, mut blocks) = in_lanes(url, patterns, keys, only, lane).await?;
    while let Some(lines) = blocks.recv().await {
        let lines = lines?;
        for line in lines.iter() {
            each(line);
        }
        buffers.give(lines.buf);
    }
    finish_lanes(tasks, "read-back").await
}

/// Reads one batch of keys: small keys whole, then each large key page by page.
async fn read_batch(
    rc: &ReadConnection,
    keys: Vec<Vec<u8>>,
    out: &mpsc::Sender<Result<Lines>>,
    buffers: &LineBuffers,
) -> Result<()> {
    let (small, large) = read_keys(rc, keys).await?;
    let mut canonical = CanonicalLines::default();
    let mut lines = Lines::for_block(buffers);
    // Each record is dropped once written, and full blocks go out as they fill.
    for record in small {
        canonical.write(&record, &mut lines);
        if lines.buf.len() >= BLOCK_BYTES {
            send(out, std::mem::replace(&mut lines, Lines::for_block(buffers))).await?;
        }
    }
    send(out, lines).await?;
    for key in large {
        let mut pager = Pager::new(key);
        while let Some(record) = pager.next(rc).await? {
            let mut lines = Lines::default();
            canonical.write(&record, &mut lines);
            send(out, lines).await?;
        }
    }
    Ok(())
}

/// What a backup lane made of (part of) a batch of keys: the small keys' archive lines, their
/// digest and statistics, and the large keys, which the exporter pages itself so that each
/// one's records stay together in the archive.
#[derive(Default)]
pub struct ExportBlock {
    /// NDJSON lines, one per key.
    pub ndjson: Vec<u8>,
    pub keys: u64,
    pub digest: ContentDigest,
    pub stats: BTreeMap<String, u64>,
    pub large: Vec<LargeKey>,
}

/// The lanes' buffers for lines, handed back once used (by a backup's exporter once it copied
/// them into a part, by the read-back once it hashed them), so the same few buffers go round
/// instead of a fresh one per block, allocated on a lane and freed on another thread (freed
/// memory the allocator holds on to is peak RSS too, and memory it returns at once must be
/// faulted in again, see `crate::alloc`).
#[derive(Clone, Default)]
pub struct LineBuffers(Arc<Mutex<Vec<Vec<u8>>>>);

impl LineBuffers {
    fn take(&self) -> Vec<u8> {
        let reused = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.unwrap_or_else(|| Vec::with_capacity(BLOCK_BYTES + BLOCK_BYTES / 4))
    }

    /// Takes a buffer back (one grown far past a block by a long line is let go).
    pub fn give(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if buffer.capacity() <= 2 * BLOCK_BYTES && pool.len() < READ_LANES + QUEUE {
            pool.push(buffer);
        }
    }
}

/// A backup's reads: every key under `patterns`, over [`READ_LANES`] connections plus one for
/// SCAN; the lanes also serialise and digest the records, so that work is spread over the cores.
/// Hand each block's `ndjson` back to the returned [`LineBuffers`] once it is copied.
pub async fn export_blocks(
    url: &str,
    patterns: &[String],
) -> Result<(JoinSet<()>, mpsc::Receiver<Result<ExportBlock>>, LineBuffers)> {
    let buffers = LineBuffers::default();
    let pool = buffers.clone();
    let lane = move |rc: Arc<ReadConnection>, keys, out: mpsc::Sender<Result<ExportBlock>>| {
        let pool = pool.clone();
        async move { export_batch(&rc, keys, &out, &pool).await }
    };
    let (tasks, blocks) = in_lanes(url, patterns, 0, None, lane).await?;
    Ok((tasks, blocks, buffers))
}

/// Finishes [`export_blocks`] once its channel has ended.
pub async fn finish_export(tasks: JoinSet<()>) -> Result<()> {
    finish_lanes(tasks, "backup").await
}

async fn export_batch(
    rc: &ReadConnection,
    keys: Vec<Vec<u8>>,
    out: &mpsc::Sender<Result<ExportBlock>>,
    buffers: &LineBuffers,
) -> Result<()> {
    let (small, large) = read_keys(rc, keys).await?;
    let mut block = ExportBlock { ndjson: buffers.take(), ..Default::default() };
    let mut canonical = CanonicalLines::default();
    let mut lines = Lines::default();
    for record in small {
        write_line(&mut block.ndjson, &record, FOLDER)?;
        canonical.write(&record, &mut lines);
        for line in lines.iter() {
            block.digest.add(line);
        }
        lines.clear();
        count_key(&mut block.stats, &record.key);
        block.keys += 1;
        if block.ndjson.len() >= BLOCK_BYTES {
            let full = std::mem::replace(&mut block, ExportBlock { ndjson: buffers.take(), ..Default::default() });
            out.send(Ok(full)).await.map_err(|_| anyhow!("the Redis backup stopped"))?;
        }
    }
    block.large = large;
    out.send(Ok(block)).await.map_err(|_| anyhow!("the Redis backup stopped"))
}

async fn send(out: &mpsc::Sender<Result<Lines>>, lines: Lines) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    out.send(Ok(lines)).await.map_err(|_| anyhow!("the Redis read-back stopped"))
}

#[cfg(test)]
mod tests {
    use super::is_transient;

    #[test]
    fn an_answer_cut_short_is_retried_and_an_error_reply_is_not() {
        // What redis-rs returns when the connection closes in the middle of a reply.
        let cut = redis::RedisError::from(redis::ParsingError::from("Parse error at 3\nUnexpected end of input"));
        assert!(is_transient(&cut));
        let refused = redis::RedisError::from((redis::ErrorKind::Io, "connection reset"));
        assert!(is_transient(&refused));
        let reply = redis::RedisError::from((redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError), "OOM"));
        assert!(!is_transient(&reply));
    }
}
