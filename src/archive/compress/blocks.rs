//! The async side of both compressors: input is cut into blocks, each block is handed to
//! compressing threads, and the compressed blocks are written into the inner writer in input
//! order. Compression never runs on the async task that writes, and at most `max_in_flight`
//! blocks wait or run at a time: a writer faster than the threads waits (back-pressure), so
//! memory stays at about `max_in_flight × block` bytes whatever the data size.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncWrite;
use tokio::sync::oneshot;

/// A block's compressed result, delivered when its thread is done with it.
pub type Pending<T> = oneshot::Receiver<io::Result<T>>;

/// How a block ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Boundary {
    /// More input follows.
    Continue,
    /// More input follows, but everything up to here must come out now (`flush`).
    Flush,
    /// The last block: the stream ends after it.
    End,
}

/// What differs between codecs: who compresses a block, and what frames the output.
pub trait BlockCodec {
    /// A compressed block, as the threads deliver it.
    type Block;
    /// Hands one block of input to the threads.
    fn submit(&mut self, input: Vec<u8>, boundary: Boundary) -> io::Result<Pending<Self::Block>>;
    /// Takes a finished block, in input order, and returns the bytes to write for it.
    fn output(&mut self, block: Self::Block) -> Vec<u8>;
    /// Bytes after the last block (gzip's trailer).
    fn trailer(&mut self) -> Vec<u8>;
}

/// Where the writer stands after `shutdown` began.
#[derive(PartialEq)]
enum Ending {
    Open,
    LastBlockSent,
    TrailerQueued,
}

/// Writes `codec`'s stream into `inner`.
pub struct BlockWriter<W, C: BlockCodec> {
    inner: W,
    codec: C,
    block_bytes: usize,
    max_in_flight: usize,
    block: Vec<u8>,
    /// Input was handed on since the last flush (a codec may still hold some of it).
    unflushed: bool,
    in_flight: VecDeque<Pending<C::Block>>,
    /// Compressed bytes on their way into `inner`.
    out: Bytes,
    ending: Ending,
}

impl<W: AsyncWrite + Unpin, C: BlockCodec + Unpin> BlockWriter<W, C> {
    /// `header` is written first; input goes to `codec` in blocks of `block_bytes`.
    pub fn new(inner: W, codec: C, header: Vec<u8>, block_bytes: usize, max_in_flight: usize) -> Self {
        BlockWriter {
            inner,
            codec,
            block_bytes,
            max_in_flight: max_in_flight.max(1),
            block: Vec::with_capacity(block_bytes),
            unflushed: false,
            in_flight: VecDeque::new(),
            out: Bytes::from(header),
            ending: Ending::Open,
        }
    }

    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Hands the current block to the codec (even an empty one, when it is the last).
    fn dispatch(&mut self, boundary: Boundary) -> io::Result<()> {
        let capacity = if boundary == Boundary::End { 0 } else { self.block_bytes };
        let input = std::mem::replace(&mut self.block, Vec::with_capacity(capacity));
        let pending = self.codec.submit(input, boundary)?;
        self.unflushed = boundary == Boundary::Continue;
        self.in_flight.push_back(pending);
        Ok(())
    }

    /// Writes finished blocks, in order, into `inner` until at most `keep` are in flight.
    fn poll_drain(&mut self, cx: &mut Context<'_>, keep: usize) -> Poll<io::Result<()>> {
        loop {
            while !self.out.is_empty() {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.out.advance(n);
            }
            if self.in_flight.len() <= keep {
                return Poll::Ready(Ok(()));
            }
            let front = self.in_flight.front_mut().expect("in flight");
            let block = match ready!(Pin::new(front).poll(cx)) {
                Ok(result) => result?,
                Err(_) => return Poll::Ready(Err(io::Error::other("a compression thread failed"))),
            };
            self.in_flight.pop_front();
            self.out = Bytes::from(self.codec.output(block));
        }
    }
}

impl<W: AsyncWrite + Unpin, C: BlockCodec + Unpin> AsyncWrite for BlockWriter<W, C> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ending != Ending::Open {
            return Poll::Ready(Err(io::Error::other("write after shutdown")));
        }
        if this.block.len() == this.block_bytes {
            ready!(this.poll_drain(cx, this.max_in_flight - 1))?;
            this.dispatch(Boundary::Continue)?;
        }
        let n = data.len().min(this.block_bytes - this.block.len());
        this.block.extend_from_slice(&data[..n]);
        if this.block.len() == this.block_bytes && this.in_flight.len() < this.max_in_flight {
            this.dispatch(Boundary::Continue)?;
        }
        Poll::Ready(Ok(n))
    }

    /// Compresses what is buffered and writes everything out; the stream goes on after it.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ending == Ending::Open && (this.unflushed || !this.block.is_empty()) {
            ready!(this.poll_drain(cx, this.max_in_flight - 1))?;
            this.dispatch(Boundary::Flush)?;
        }
        ready!(this.poll_drain(cx, 0))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    /// Ends the compressed stream, writes the trailer, shuts `inner`.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ending == Ending::Open {
            ready!(this.poll_drain(cx, this.max_in_flight - 1))?;
            this.dispatch(Boundary::End)?;
            this.ending = Ending::LastBlockSent;
        }
        if this.ending == Ending::LastBlockSent {
            ready!(this.poll_drain(cx, 0))?;
            this.out = Bytes::from(this.codec.trailer());
            this.ending = Ending::TrailerQueued;
        }
        ready!(this.poll_drain(cx, 0))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
