//! The archive stream encrypted as it is written and decrypted as it is read: age's STREAM, in
//! 64 KiB chunks each authenticated, so memory stays bounded and a damaged byte is caught in
//! the chunk it is in.

use super::Identities;
use anyhow::{anyhow, Result};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite};
use tokio_util::compat::TokioAsyncWriteCompatExt;
use tokio_util::compat::{FuturesAsyncReadCompatExt, FuturesAsyncWriteCompatExt, TokioAsyncReadCompatExt};

/// A writer that encrypts everything written to it to `recipients` and writes the age file into
/// `out`; its shutdown writes the last chunk, then shuts `out` down.
pub async fn encrypting<W: AsyncWrite + Send + Unpin + 'static>(
    out: W,
    recipients: &super::Recipients,
) -> Result<Box<dyn AsyncWrite + Send + Unpin>> {
    let encryptor = recipients.encryptor()?;
    let writer = encryptor.wrap_async_output(out.compat_write()).await?;
    Ok(Box::new(writer.compat_write()))
}

/// The plaintext of the age file `input`, opened with one of `identities`. Fails at once when
/// none of them is a recipient (naming the identities' own recipients), before any plaintext.
pub async fn decrypting<R: AsyncBufRead + Send + Unpin + 'static>(
    input: R,
    identities: &Identities,
) -> Result<Box<dyn AsyncRead + Send + Unpin>> {
    if identities.is_empty() {
        return Err(anyhow!(
            "the archive is encrypted and no identity was given: pass --identity FILE (or NGBAK_IDENTITY, \
             NGBAK_IDENTITY_SECRET_ARN) with a key it was encrypted to"
        ));
    }
    let decryptor = age::Decryptor::new_async_buffered(input.compat())
        .await
        .map_err(|e| anyhow!("the archive's age header is invalid: {e}"))?;
    let reader = decryptor.decrypt_async(identities.as_dyn()).map_err(|e| {
        anyhow!(
            "the archive cannot be decrypted with the identities given (theirs: {}): {e}; it was encrypted to \
             other recipients (the sidecar's encryption.recipients names them)",
            identities.recipients().join(", ")
        )
    })?;
    Ok(Box::new(Authenticated { inner: reader.compat(), plaintext: 0 }))
}

/// age's reader, its errors said for an operator: every 64 KiB chunk is authenticated, so a
/// failure means the ciphertext was changed, cut short or added to.
struct Authenticated<R> {
    inner: R,
    plaintext: u64,
}

impl<R: AsyncRead + Unpin> AsyncRead for Authenticated<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match std::task::ready!(std::pin::Pin::new(&mut this.inner).poll_read(cx, buf)) {
            Ok(()) => {
                this.plaintext += (buf.filled().len() - before) as u64;
                std::task::Poll::Ready(Ok(()))
            }
            Err(e) => std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the encrypted archive does not authenticate after {} bytes of plaintext (age: {e}): a byte of \
                     it was changed, or it was cut short or added to",
                    this.plaintext
                ),
            ))),
        }
    }
}
