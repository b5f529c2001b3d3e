//! A zstd writer: one Zstandard frame (with its content checksum) made by libzstd's
//! multi-threaded mode, fed in 1 MiB blocks from a thread of its own.
//!
//! async-compression's encoder drove the same library from the async task through an 8 KiB
//! output buffer: every few kilobytes the task and zstd's workers woke each other, and a zstd
//! backup ran slower than a gzip one. Here the task only queues blocks ([`BlockWriter`]); the
//! thread feeds them to libzstd, which compresses on `threads` workers, and hands back
//! whatever output is ready, in order.

use super::blocks::{BlockCodec, BlockWriter, Boundary, Pending};
use std::io;
use std::sync::mpsc;
use tokio::sync::oneshot;
use zstd_safe::zstd_sys::ZSTD_EndDirective;
use zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer};

/// Input handed to the thread at a time.
pub const BLOCK_BYTES: usize = 1 << 20;
/// Blocks queued or compressing at most: the writer waits beyond that (back-pressure).
const MAX_IN_FLIGHT: usize = 4;
/// Input per zstd job (libzstd's default at level 3 is 8 MiB, held per worker with its output).
const JOB_BYTES: u32 = 2 << 20;
/// Free output space kept for each call into libzstd (about `ZSTD_CStreamOutSize`).
const OUT_ROOM: usize = 128 << 10;

/// A zstd stream written by [`BlockWriter`] with [`ZstdBlocks`].
pub type ZstdEncoder<W> = BlockWriter<W, ZstdBlocks>;

struct Job {
    input: Vec<u8>,
    boundary: Boundary,
    reply: oneshot::Sender<io::Result<Vec<u8>>>,
}

/// The queue into the thread that owns the compression context.
pub struct ZstdBlocks {
    jobs: mpsc::Sender<Job>,
}

impl BlockCodec for ZstdBlocks {
    type Block = Vec<u8>;

    fn submit(&mut self, input: Vec<u8>, boundary: Boundary) -> io::Result<Pending<Vec<u8>>> {
        let (reply, result) = oneshot::channel();
        self.jobs
            .send(Job { input, boundary, reply })
            .map_err(|_| io::Error::other("the zstd compression thread stopped"))?;
        Ok(result)
    }

    fn output(&mut self, block: Vec<u8>) -> Vec<u8> {
        block
    }

    fn trailer(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// A zstd writer into `inner` at `level` (1–19) with `threads` (≥ 1) compressing workers.
pub fn zstd_encoder<W: tokio::io::AsyncWrite + Unpin>(
    inner: W,
    level: i32,
    threads: usize,
) -> io::Result<ZstdEncoder<W>> {
    let mut cctx = CCtx::create();
    for parameter in [
        CParameter::CompressionLevel(level),
        CParameter::ChecksumFlag(true),
        CParameter::NbWorkers(threads.max(1) as u32),
        CParameter::JobSize(JOB_BYTES),
    ] {
        cctx.set_parameter(parameter).map_err(zstd_error)?;
    }
    let (jobs, queue) = mpsc::channel::<Job>();
    std::thread::Builder::new().name("ngbak-zstd".into()).spawn(move || {
        // Ends when the writer (the sender) is dropped.
        while let Ok(job) = queue.recv() {
            let _ = job.reply.send(compress(&mut cctx, &job.input, job.boundary));
        }
    })?;
    Ok(BlockWriter::new(inner, ZstdBlocks { jobs }, Vec::new(), BLOCK_BYTES, MAX_IN_FLIGHT))
}

/// Feeds one block into the frame; returns the output libzstd has ready (with a flush or the
/// end of the frame, everything up to there).
fn compress(cctx: &mut CCtx<'static>, input: &[u8], boundary: Boundary) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 2 + OUT_ROOM);
    let mut source = InBuffer::around(input);
    while source.pos() < input.len() {
        let mut sink = room(&mut out);
        cctx.compress_stream2(&mut sink, &mut source, ZSTD_EndDirective::ZSTD_e_continue).map_err(zstd_error)?;
    }
    if boundary != Boundary::Continue {
        loop {
            let mut sink = room(&mut out);
            let left = match boundary {
                Boundary::End => cctx.end_stream(&mut sink),
                _ => cctx.flush_stream(&mut sink),
            }
            .map_err(zstd_error)?;
            if left == 0 {
                break;
            }
        }
    }
    Ok(out)
}

/// An output buffer appending to `out`, with at least [`OUT_ROOM`] bytes free.
fn room(out: &mut Vec<u8>) -> OutBuffer<'_, Vec<u8>> {
    if out.capacity() - out.len() < OUT_ROOM {
        out.reserve(OUT_ROOM.max(out.len() / 2));
    }
    let pos = out.len();
    OutBuffer::around_pos(out, pos)
}

fn zstd_error(code: usize) -> io::Error {
    io::Error::other(format!("zstd: {}", zstd_safe::get_error_name(code)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| b"graph entity community report "[i % 30] ^ ((i / 977) as u8 & 3)).collect()
    }

    /// libzstd's own decoder, which checks the frame's checksum at its end.
    fn decompress(zst: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        let mut dctx = zstd_safe::DCtx::create();
        let mut source = InBuffer::around(zst);
        while source.pos() < zst.len() {
            back.reserve(OUT_ROOM);
            let pos = back.len();
            dctx.decompress_stream(&mut OutBuffer::around_pos(&mut back, pos), &mut source).unwrap();
        }
        back
    }

    #[tokio::test]
    async fn one_frame_with_its_checksum_decodes_exactly_for_any_threads_and_write_sizes() {
        for len in [0, 1, BLOCK_BYTES - 1, BLOCK_BYTES, 5 * BLOCK_BYTES + 77] {
            let data = sample(len);
            for (threads, chunk) in [(1, 8192), (2, 1 << 20), (4, 999)] {
                let mut enc = zstd_encoder(Vec::new(), 3, threads).unwrap();
                for piece in data.chunks(chunk) {
                    enc.write_all(piece).await.unwrap();
                }
                enc.shutdown().await.unwrap();
                let zst = enc.into_inner();
                // Frame header descriptor: bit 2 set = a content checksum ends the frame.
                assert!(zst[4] & 0b100 != 0, "the frame carries its checksum");
                assert!(decompress(&zst) == data, "len {len}, threads {threads}, writes of {chunk}");
            }
        }
    }

    #[tokio::test]
    async fn a_flush_writes_out_everything_so_far_and_the_frame_goes_on() {
        let mut enc = zstd_encoder(Vec::new(), 3, 2).unwrap();
        enc.write_all(&sample(10_000)).await.unwrap();
        enc.flush().await.unwrap();
        enc.write_all(&sample(10_000)).await.unwrap();
        enc.shutdown().await.unwrap();
        assert!(decompress(&enc.into_inner()) == [sample(10_000), sample(10_000)].concat());
    }
}
