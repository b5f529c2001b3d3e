//! A gzip writer that deflates independent blocks on a pool of threads and joins them in order,
//! the way pigz does, so a backup uses every core and still writes one standard gzip member.
//!
//! Each block is primed with the last 32 KiB of the input before it (the deflate window), so the
//! ratio stays close to a single-threaded stream, and ends with a sync flush (byte-aligned, not
//! final); the last block ends the deflate stream. CRC-32s of the blocks are combined in order.
//! At most `2 × threads` blocks are in flight ([`BlockWriter`]), so memory stays at about
//! `2 × threads × block` bytes whatever the data size.

use super::blocks::{BlockCodec, BlockWriter, Boundary, Pending};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use std::io;
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;

/// Input bytes per block (pigz's default): small enough to keep every thread busy, large
/// enough that the per-block flush costs well under 0.1% of the output.
pub const BLOCK_BYTES: usize = 128 << 10;
/// The deflate window: how much of the previous block primes the next one.
const WINDOW: usize = 32 << 10;

/// A gzip stream written by [`BlockWriter`] with [`GzipBlocks`].
pub type ParallelGzipEncoder<W> = BlockWriter<W, GzipBlocks>;

/// One block's compressed bytes and the CRC-32 of its input.
pub struct Deflated {
    data: Vec<u8>,
    crc: Crc,
}

struct Job {
    dictionary: Vec<u8>,
    input: Vec<u8>,
    last: bool,
    reply: oneshot::Sender<io::Result<Deflated>>,
}

/// Compressing threads fed by one queue; they end when the writer (the sender) is dropped.
struct Pool {
    jobs: mpsc::Sender<Job>,
}

impl Pool {
    fn start(threads: usize, level: u32) -> io::Result<Pool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new().name(format!("ngbak-gzip-{n}")).spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => match queue.recv() {
                            Ok(job) => job,
                            Err(_) => return, // the writer is gone
                        },
                        Err(_) => return,
                    };
                    // A fresh state per block: a reset one keeps some history in zlib-rs, which
                    // made the output depend on how blocks fell to threads.
                    let mut deflate = Compress::new(Compression::new(level), false);
                    let result = deflate_block(&mut deflate, &job.dictionary, &job.input, job.last);
                    let _ = job.reply.send(result);
                }
            })?;
        }
        Ok(Pool { jobs })
    }
}

/// Deflates one block as raw deflate data ending on a byte boundary (sync flush), or ending
/// the stream when `last`.
fn deflate_block(deflate: &mut Compress, dictionary: &[u8], input: &[u8], last: bool) -> io::Result<Deflated> {
    if !dictionary.is_empty() {
        deflate.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut data = Vec::with_capacity(input.len() / 2 + 1024);
    loop {
        if data.len() == data.capacity() {
            data.reserve(data.capacity().max(16 << 10));
        }
        let before = deflate.total_in() as usize;
        let status = deflate.compress_vec(&input[before..], &mut data, flush).map_err(io::Error::other)?;
        let all_in = deflate.total_in() as usize == input.len();
        let done = if last { status == Status::StreamEnd } else { all_in && data.len() < data.capacity() };
        if done {
            break;
        }
    }
    let mut crc = Crc::new();
    crc.update(input);
    Ok(Deflated { data, crc })
}

/// Independent deflate blocks on a pool of threads, each primed with the 32 KiB before it,
/// joined into one gzip member: header, blocks, CRC-32 and length.
pub struct GzipBlocks {
    pool: Pool,
    /// The last [`WINDOW`] bytes of input already handed out, priming the next block.
    window: Vec<u8>,
    crc: Crc,
}

impl BlockCodec for GzipBlocks {
    type Block = Deflated;

    fn submit(&mut self, input: Vec<u8>, boundary: Boundary) -> io::Result<Pending<Deflated>> {
        let mut next_window = Vec::with_capacity(WINDOW);
        let from_old = WINDOW.saturating_sub(input.len()).min(self.window.len());
        next_window.extend_from_slice(&self.window[self.window.len() - from_old..]);
        next_window.extend_from_slice(&input[input.len() - (WINDOW - from_old).min(input.len())..]);
        let dictionary = std::mem::replace(&mut self.window, next_window);
        let (reply, result) = oneshot::channel();
        let last = boundary == Boundary::End;
        self.pool
            .jobs
            .send(Job { dictionary, input, last, reply })
            .map_err(|_| io::Error::other("the gzip compression threads stopped"))?;
        Ok(result)
    }

    fn output(&mut self, block: Deflated) -> Vec<u8> {
        self.crc.combine(&block.crc);
        block.data
    }

    /// RFC 1952: CRC-32 and input length mod 2^32, little-endian.
    fn trailer(&mut self) -> Vec<u8> {
        let mut trailer = Vec::with_capacity(8);
        trailer.extend_from_slice(&self.crc.sum().to_le_bytes());
        trailer.extend_from_slice(&self.crc.amount().to_le_bytes());
        trailer
    }
}

/// A gzip writer into `inner` at `level` (1–9) on `threads` (≥ 1) compressing threads, with at
/// most `2 × threads` blocks in flight.
pub fn parallel_gzip<W: tokio::io::AsyncWrite + Unpin>(
    inner: W,
    level: u32,
    threads: usize,
) -> io::Result<ParallelGzipEncoder<W>> {
    let threads = threads.max(1);
    let codec = GzipBlocks { pool: Pool::start(threads, level)?, window: Vec::new(), crc: Crc::new() };
    // RFC 1952 header: no name, no mtime (archives of the same data stay identical), OS unknown.
    let xfl = match level {
        1 => 4,
        9 => 2,
        _ => 0,
    };
    let header = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255];
    Ok(BlockWriter::new(inner, codec, header, BLOCK_BYTES, 2 * threads))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use tokio::io::AsyncWriteExt;

    async fn compress(data: &[u8], level: u32, threads: usize, chunk: usize) -> Vec<u8> {
        let mut enc = parallel_gzip(Vec::new(), level, threads).unwrap();
        for piece in data.chunks(chunk.max(1)) {
            enc.write_all(piece).await.unwrap();
        }
        enc.shutdown().await.unwrap();
        enc.into_inner()
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut state = 7u64;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if i % 3 == 0 {
                    b'a' + (state >> 60) as u8
                } else {
                    b"graph entity community "[i % 23]
                }
            })
            .collect()
    }

    #[tokio::test]
    async fn any_thread_count_writes_one_gzip_member_that_decodes_exactly() {
        for len in [0, 1, WINDOW - 1, BLOCK_BYTES, BLOCK_BYTES + 1, 5 * BLOCK_BYTES + 77] {
            let data = sample(len);
            for threads in [1, 2, 4] {
                let gz = compress(&data, 2, threads, 10_000).await;
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
                assert_eq!(back, data, "len {len}, threads {threads}");
                // One member: a multi-member reader would find nothing after it.
                let mut multi = Vec::new();
                flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut multi).unwrap();
                assert_eq!(multi.len(), len);
            }
        }
    }

    #[tokio::test]
    async fn the_output_does_not_depend_on_threads_or_write_sizes() {
        let data = sample(3 * BLOCK_BYTES + 5);
        let one = compress(&data, 2, 1, 1 << 20).await;
        assert_eq!(compress(&data, 2, 3, 999).await, one);
    }

    #[tokio::test]
    async fn priming_with_the_previous_block_keeps_the_ratio_of_one_stream() {
        let data = sample(8 * BLOCK_BYTES);
        let parallel = compress(&data, 6, 2, 1 << 16).await.len();
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        std::io::Write::write_all(&mut single, &data).unwrap();
        let single = single.finish().unwrap().len();
        assert!(parallel as f64 <= single as f64 * 1.01, "parallel {parallel} bytes, one stream {single}");
    }
}
