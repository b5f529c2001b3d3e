//! The proof that a Redis restore is equal to the archive: every key in scope (in merge mode,
//! the keys the restore wrote) read back on several lanes, as canonical lines.

use super::lanes::{block_lines, finish_lanes, in_lanes, LineBuffers, BLOCK_BYTES};
use super::client::ReadConnection;
use super::reads::{read_keys, Pager};
use super::record::{CanonicalLines, KeyHashes, Lines};
use crate::backends::RecordSink;
use anyhow::{anyhow, Result};
use std::sync::Arc;
use tokio::sync::mpsc;

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
    let mut lines = block_lines(buffers);
    // Each record is dropped once written, and full blocks go out as they fill.
    for record in small {
        canonical.write(&record, &mut lines);
        if lines.buf.len() >= BLOCK_BYTES {
            send(out, std::mem::replace(&mut lines, block_lines(buffers))).await?;
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

async fn send(out: &mpsc::Sender<Result<Lines>>, lines: Lines) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    out.send(Ok(lines)).await.map_err(|_| anyhow!("the Redis read-back stopped"))
}
