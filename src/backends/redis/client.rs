//! The Redis wire for reads: a connection whose reads survive a lost connection, and the SCAN
//! walk over the key space.
//!
//! Every read ngbak makes (SCAN cursors, TYPE/PTTL/GET pipelines, HSCAN/LRANGE pages) is
//! idempotent, so a read that fails on a connection error or a timeout is sent again on a new
//! connection, a bounded number of times with exponential backoff (`NGBAK_MAX_ATTEMPTS`).
//! Writes are not retried here: a restore's pipelines are not all safe to repeat.

use super::record::{key_hash, KeyHashes};
use crate::net::clients::{redis_target, RedisTarget};
use crate::net::timeouts::{backoff, FIRST_BACKOFF};
use crate::net::{policy, scrub};
use anyhow::{anyhow, Result};
use backon::Retryable;
use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, RedisError};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Keys read or written per round trip.
pub(crate) const BATCH: usize = 500;

pub async fn connect(url: &str) -> Result<redis::aio::MultiplexedConnection> {
    crate::net::clients::redis(url).await
}

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

    pub(super) fn on(target: Arc<RedisTarget>) -> Self {
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

    pub(super) async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T>
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

/// Walks every key matching a list of patterns, one SCAN batch at a time, so memory holds one
/// batch whatever the number of keys. SCAN may return a key twice: each key is handed out once
/// (remembered as a 64-bit hash). A batch may come out empty when all its keys were seen.
pub(crate) struct Scanner {
    patterns: Vec<String>,
    current: usize,
    cursor: u64,
    seen: KeyHashes,
    /// When set, only these keys are handed out (a merge restore's check).
    pub only: Option<KeyHashes>,
}

impl Scanner {
    pub fn new(patterns: &[String]) -> Self {
        Scanner { patterns: patterns.to_vec(), current: 0, cursor: 0, seen: KeyHashes::default(), only: None }
    }

    /// As [`Scanner::new`], with room for `keys` keys from the start (growing a large set of
    /// seen keys step by step costs more than the set itself).
    pub fn sized(patterns: &[String], keys: usize) -> Self {
        Scanner { seen: KeyHashes::with_capacity_and_hasher(keys, Default::default()), ..Scanner::new(patterns) }
    }

    /// The next batch of keys not handed out before; `None` at the end.
    pub async fn next_batch(&mut self, rc: &ReadConnection) -> Result<Option<Vec<Vec<u8>>>> {
        let Some(keys) = self.next_raw(rc).await? else { return Ok(None) };
        Ok(Some(
            keys.into_iter()
                .filter(|k| {
                    let h = key_hash(k);
                    self.only.as_ref().is_none_or(|only| only.contains(&h)) && self.seen.insert(h)
                })
                .collect(),
        ))
    }

    /// The next SCAN batch as it comes (a cursor is the server's, so a retried SCAN on a new
    /// connection goes on where the lost one stopped).
    async fn next_raw(&mut self, rc: &ReadConnection) -> Result<Option<Vec<Vec<u8>>>> {
        while let Some(pattern) = self.patterns.get(self.current) {
            let scan = redis::cmd("SCAN").arg(self.cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(BATCH).clone();
            let (next, keys): (u64, Vec<Vec<u8>>) = rc.cmd(&format!("SCAN {pattern}"), &scan).await?;
            self.cursor = next;
            if next == 0 {
                self.current += 1;
            }
            if !keys.is_empty() {
                return Ok(Some(keys));
            }
        }
        Ok(None)
    }
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
