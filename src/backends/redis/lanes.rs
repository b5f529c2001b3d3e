//! Reading over several connections at once: one connection walks the key space with SCAN and
//! hands out batches of keys; [`READ_LANES`] lanes read them and put their records in canonical
//! form (a backup's lanes also write the archive lines). The digest is a sum, so the order in
//! which the lanes finish does not matter. Queues are short, so memory holds a few batches
//! whatever the number of keys. Used by the export and by the read-back.

use super::client::{ReadConnection, Scanner};
use super::record::{KeyHashes, Lines};
use crate::net::clients::redis_target;
use anyhow::{anyhow, Result};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Connections reading at once during the read-back (as many as the writers use: Redis answers
/// one command at a time, but several connections keep it busy while ngbak parses and hashes).
pub const READ_LANES: usize = 4;
/// Batches of keys waiting for a lane, and blocks of lines waiting to be hashed.
pub(crate) const QUEUE: usize = 2;
/// Canonical lines per block handed to the caller: memory holds a few blocks, whatever the size
/// of a batch of keys.
pub(crate) const BLOCK_BYTES: usize = 256 << 10;

/// Walks the keys under `patterns` (only those in `only`, when given) with SCAN on one
/// connection and hands each batch of keys to `lane`, which runs on [`READ_LANES`] more
/// connections at once and sends what it makes of the batch into the returned channel. The
/// channel ends when every key was read; an error ends it early. Dropping the returned tasks
/// stops the lanes.
pub(crate) async fn in_lanes<T, F, Fut>(
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
pub(crate) async fn finish_lanes(mut tasks: JoinSet<()>, what: &str) -> Result<()> {
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| anyhow!("a Redis {what} lane failed: {e}"))?;
    }
    Ok(())
}

/// The lanes' buffers for lines, handed back once used (by a backup's exporter once it copied
/// them into a part, by the read-back once it hashed them), so the same few buffers go round
/// instead of a fresh one per block, allocated on a lane and freed on another thread (freed
/// memory the allocator holds on to is peak RSS too, and memory it returns at once must be
/// faulted in again, see `crate::alloc`).
#[derive(Clone, Default)]
pub struct LineBuffers(Arc<Mutex<Vec<Vec<u8>>>>);

impl LineBuffers {
    pub(crate) fn take(&self) -> Vec<u8> {
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

/// A block of lines in a buffer from the pool.
pub(crate) fn block_lines(buffers: &LineBuffers) -> Lines {
    Lines::with_buffer(buffers.take())
}
