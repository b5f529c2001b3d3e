//! A decoder that ends only where its input ends. A gzip or zstd decoder stops at the end of its
//! member or frame and leaves whatever follows unread; an archive with a second member appended
//! (or any other bytes) would then read as intact while carrying data nobody checked. ngbak writes
//! one member or frame, so anything after it is an error.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

/// `decoder`, which reads from the `R` that `input` reaches inside it, refusing input left over
/// once the decoder has ended.
pub struct Exhaustive<D, R> {
    decoder: D,
    input: fn(&mut D) -> &mut R,
}

impl<D, R> Exhaustive<D, R> {
    pub fn new(decoder: D, input: fn(&mut D) -> &mut R) -> Self {
        Exhaustive { decoder, input }
    }
}

impl<D: AsyncRead + Unpin, R: AsyncBufRead + Unpin> AsyncRead for Exhaustive<D, R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.decoder).poll_read(cx, buf))?;
        if buf.filled().len() > before || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // The decoder has ended: its input must have ended with it.
        let rest = ready!(Pin::new((this.input)(&mut this.decoder)).poll_fill_buf(cx))?;
        if rest.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let starts: String = rest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "data follows the end of the compressed stream (starting {starts}: a second gzip member or zstd \
                 frame, or appended bytes); ngbak writes one, so these bytes were added to the archive"
            ),
        )))
    }
}
