//! The compression layer of a `.ngbak` archive: gzip (default, any `tar -xzf` reads it) or zstd
//! (faster and smaller), both multi-threaded when written; readers tell them apart by their
//! magic bytes, so `verify` and `restore` take either without being told.

mod blocks;
mod exhaustive;
mod pgzip;
mod zstd_mt;

pub use pgzip::{parallel_gzip, ParallelGzipEncoder, BLOCK_BYTES as GZIP_BLOCK_BYTES};
pub use zstd_mt::{zstd_encoder, ZstdEncoder};

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};

/// How an archive is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// One gzip member (RFC 1952): what plain `tar -xzf`, `gunzip` and Python's `tarfile` read.
    #[default]
    Gzip,
    /// One Zstandard frame (RFC 8878): read by `tar --zstd`, `zstd -d` and ngbak.
    Zstd,
}

impl Codec {
    /// The level used when none is given. gzip 2: with zlib-rs level 1 is a third bigger than
    /// GNU `gzip -1`, level 2 is smaller than it (README, benchmark). zstd 3: zstd's own default.
    pub fn default_level(self) -> u32 {
        match self {
            Codec::Gzip => 2,
            Codec::Zstd => 3,
        }
    }

    pub fn max_level(self) -> u32 {
        match self {
            Codec::Gzip => 9,
            Codec::Zstd => 19,
        }
    }

    /// The codec whose magic number starts `bytes`, if any.
    pub fn detect(bytes: &[u8]) -> Option<Codec> {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            Some(Codec::Gzip)
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Codec::Zstd)
        } else {
            None
        }
    }
}

/// How to compress: codec, level (None: the codec's default) and threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    pub codec: Codec,
    pub level: Option<u32>,
    /// Compressing threads; 0 means one per core this process may use.
    pub threads: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Compression { codec: Codec::Gzip, level: None, threads: 0 }
    }
}

impl Compression {
    pub fn level(&self) -> u32 {
        self.level.unwrap_or_else(|| self.codec.default_level())
    }

    /// The threads to use: as asked, else the cores available to the process (cgroup quotas
    /// and CPU affinity included; on Lambda this follows the memory setting).
    pub fn threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }
    }
}

/// A compressing writer for either codec.
pub enum Encoder<W: AsyncWrite + Unpin> {
    Gzip(ParallelGzipEncoder<W>),
    Zstd(ZstdEncoder<W>),
}

impl<W: AsyncWrite + Unpin> Encoder<W> {
    pub fn new(inner: W, settings: &Compression) -> anyhow::Result<Self> {
        let (codec, level, threads) = (settings.codec, settings.level(), settings.threads());
        if level < 1 || level > codec.max_level() {
            anyhow::bail!(
                "compression level {level} is out of range for {codec:?}: use 1 to {} (or leave it unset)",
                codec.max_level()
            );
        }
        Ok(match codec {
            Codec::Gzip => Encoder::Gzip(parallel_gzip(inner, level, threads)?),
            Codec::Zstd => Encoder::Zstd(zstd_encoder(inner, level as i32, threads)?),
        })
    }

    pub fn into_inner(self) -> W {
        match self {
            Encoder::Gzip(e) => e.into_inner(),
            Encoder::Zstd(e) => e.into_inner(),
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Encoder<W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Encoder::Gzip(e) => Pin::new(e).poll_write(cx, buf),
            Encoder::Zstd(e) => Pin::new(e).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Encoder::Gzip(e) => Pin::new(e).poll_flush(cx),
            Encoder::Zstd(e) => Pin::new(e).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Encoder::Gzip(e) => Pin::new(e).poll_shutdown(cx),
            Encoder::Zstd(e) => Pin::new(e).poll_shutdown(cx),
        }
    }
}

/// A decompressing reader for whichever codec the stream starts with, decrypting it first when
/// it is an age file (with one of `identities`). Decompression runs on its own task, a few chunks
/// ahead of the reader, so it overlaps with tar parsing, hashing and the backend writes that
/// consume the output (on another core when there is one).
pub async fn decoder<R: AsyncBufRead + Send + Unpin + 'static>(
    mut compressed: R,
    identities: &crate::encryption::Identities,
) -> anyhow::Result<Box<dyn AsyncRead + Send + Unpin>> {
    let magic = first_bytes(&mut compressed).await?;
    let stream = BufReader::with_capacity(64 << 10, std::io::Cursor::new(magic.clone()).chain(compressed));
    if magic[..] == crate::encryption::AGE_MAGIC[..4] {
        let plain = crate::encryption::decrypting(stream, identities).await?;
        let mut plain = BufReader::with_capacity(64 << 10, plain);
        let magic = first_bytes(&mut plain).await?;
        return decompressing(
            &magic,
            BufReader::with_capacity(64 << 10, std::io::Cursor::new(magic.clone()).chain(plain)),
        );
    }
    decompressing(&magic, stream)
}

/// Up to the first four bytes of a stream (fewer only when it ends sooner).
async fn first_bytes<R: AsyncRead + Unpin>(input: &mut R) -> io::Result<Vec<u8>> {
    let mut magic = [0u8; 4];
    let mut have = 0;
    while have < magic.len() {
        let n = input.read(&mut magic[have..]).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok(magic[..have].to_vec())
}

/// The decoder of the codec whose first bytes are `magic` (`stream` starts with them).
fn decompressing<R: AsyncBufRead + Send + Unpin + 'static>(
    magic: &[u8],
    stream: R,
) -> anyhow::Result<Box<dyn AsyncRead + Send + Unpin>> {
    let Some(codec) = Codec::detect(magic) else {
        anyhow::bail!(
            "the archive is neither gzip nor zstd (it starts with bytes {}); it is not an ngbak archive",
            hex::encode(magic)
        );
    };
    let decoded: Box<dyn AsyncRead + Send + Unpin> = match codec {
        Codec::Gzip => Box::new(exhaustive::Exhaustive::new(GzipDecoder::new(stream), GzipDecoder::get_mut)),
        Codec::Zstd => Box::new(exhaustive::Exhaustive::new(ZstdDecoder::new(stream), ZstdDecoder::get_mut)),
    };
    Ok(Box::new(read_ahead(decoded)))
}

/// Reads `source` on a task of its own, at most four 256 KiB chunks ahead of the consumer; stops
/// when the consumer goes away. Errors reach the consumer in order.
fn read_ahead(mut source: Box<dyn AsyncRead + Send + Unpin>) -> impl AsyncRead + Send + Unpin {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<bytes::Bytes>>(4);
    tokio::spawn(async move {
        loop {
            let mut buf = bytes::BytesMut::with_capacity(256 << 10);
            let chunk = match source.read_buf(&mut buf).await {
                Ok(0) => return,
                Ok(_) => Ok(buf.freeze()),
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    tokio_util::io::StreamReader::new(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn either_codec_is_read_back_by_magic_bytes() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for codec in [Codec::Gzip, Codec::Zstd] {
            let mut enc = Encoder::new(Vec::new(), &Compression { codec, level: None, threads: 2 }).unwrap();
            enc.write_all(&data).await.unwrap();
            enc.shutdown().await.unwrap();
            let compressed = enc.into_inner();
            assert_eq!(Codec::detect(&compressed), Some(codec));
            let mut back = Vec::new();
            decoder(std::io::Cursor::new(compressed), &Default::default())
                .await
                .unwrap()
                .read_to_end(&mut back)
                .await
                .unwrap();
            assert_eq!(back, data, "{codec:?}");
        }
    }

    #[tokio::test]
    async fn anything_after_the_member_or_frame_is_refused() {
        let data = b"the archive's own bytes".repeat(1000);
        for codec in [Codec::Gzip, Codec::Zstd] {
            let compress = |bytes: &[u8]| {
                let bytes = bytes.to_vec();
                async move {
                    let mut enc = Encoder::new(Vec::new(), &Compression { codec, level: None, threads: 1 }).unwrap();
                    enc.write_all(&bytes).await.unwrap();
                    enc.shutdown().await.unwrap();
                    enc.into_inner()
                }
            };
            let one = compress(&data).await;
            let second_member = [one.clone(), compress(b"appended").await].concat();
            let appended = [one.clone(), b"x".to_vec()].concat();
            let zeros = [one.clone(), vec![0u8; 512]].concat();
            for (what, bytes) in [("second member", second_member), ("one byte", appended), ("zeros", zeros)] {
                let mut back = Vec::new();
                let err = decoder(std::io::Cursor::new(bytes), &Default::default())
                    .await
                    .unwrap()
                    .read_to_end(&mut back)
                    .await
                    .unwrap_err();
                assert!(err.to_string().contains("data follows the end"), "{codec:?} {what}: {err}");
            }
            let mut back = Vec::new();
            decoder(std::io::Cursor::new(one), &Default::default())
                .await
                .unwrap()
                .read_to_end(&mut back)
                .await
                .unwrap();
            assert_eq!(back, data);
        }
    }

    #[tokio::test]
    async fn other_bytes_are_refused_with_what_they_are() {
        let err = decoder(std::io::Cursor::new(b"PK\x03\x04rest".to_vec()), &Default::default())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("neither gzip nor zstd") && err.contains("504b0304"), "{err}");
    }

    #[test]
    fn levels_out_of_range_are_refused() {
        let err =
            Encoder::new(Vec::new(), &Compression { codec: Codec::Gzip, level: Some(12), threads: 1 }).err().unwrap();
        assert!(err.to_string().contains("1 to 9"), "{err}");
    }
}
