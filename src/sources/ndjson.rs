//! Cuts a stream of records into NDJSON parts of bounded size: `<folder>/000001.ndjson`, …
//!
//! The format never needs a length before it has the bytes, and memory holds at most one part.

use super::EntrySender;
use crate::archive::EntryBody;
use anyhow::Result;
use bytes::Bytes;
use serde::Serialize;

pub struct NdjsonParts<'a> {
    out: &'a EntrySender,
    folder: String,
    buf: Vec<u8>,
    in_part: u64,
    parts: u32,
    total: u64,
}

impl<'a> NdjsonParts<'a> {
    pub fn new(out: &'a EntrySender, folder: &str) -> Self {
        NdjsonParts {
            out,
            folder: folder.trim_end_matches('/').to_string(),
            buf: Vec::new(),
            in_part: 0,
            parts: 0,
            total: 0,
        }
    }

    /// Adds one record as one line; sends the part once it reaches the part size.
    pub async fn push<T: Serialize + ?Sized>(&mut self, record: &T) -> Result<()> {
        serde_json::to_writer(&mut self.buf, record)?;
        self.buf.push(b'\n');
        self.in_part += 1;
        self.total += 1;
        if self.buf.len() >= self.out.part_bytes {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends what is left; returns the number of records written.
    pub async fn finish(mut self) -> Result<u64> {
        self.flush().await?;
        Ok(self.total)
    }

    async fn flush(&mut self) -> Result<()> {
        if self.in_part == 0 {
            return Ok(());
        }
        self.parts += 1;
        let path = format!("{}/{:06}.ndjson", self.folder, self.parts);
        let body = Bytes::from(std::mem::take(&mut self.buf));
        self.out.send(path, std::mem::take(&mut self.in_part), EntryBody::Bytes(body)).await
    }
}

/// Splits an NDJSON entry read from the archive back into records, one line at a time.
pub async fn for_each_line<R, F>(body: &mut R, mut each: F) -> Result<u64>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
    F: FnMut(&[u8]) -> Result<()>,
{
    use tokio::io::AsyncBufReadExt;
    let mut reader = tokio::io::BufReader::with_capacity(1 << 20, body);
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(n);
        }
        let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
        if !trimmed.is_empty() {
            each(trimmed)?;
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::PendingEntry;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn parts_stay_near_the_part_size_and_lines_round_trip() {
        let (tx, mut rx) = mpsc::channel::<PendingEntry>(100);
        let out = EntrySender::new(tx, "test", 100);
        let mut parts = out.ndjson("kv/test/");
        for i in 0..50 {
            parts.push(&serde_json::json!({ "i": i, "pad": "xxxxxxxxxx" })).await.unwrap();
        }
        assert_eq!(parts.finish().await.unwrap(), 50);
        drop(out);
        let mut seen = Vec::new();
        let mut names = Vec::new();
        while let Some(entry) = rx.recv().await {
            let EntryBody::Bytes(bytes) = entry.body else { panic!("parts are in memory") };
            assert!(bytes.len() < 100 + 40, "part of {} bytes", bytes.len());
            let n = for_each_line(&mut &bytes[..], |l| {
                seen.push(serde_json::from_slice::<serde_json::Value>(l)?["i"].as_u64().unwrap());
                Ok(())
            })
            .await
            .unwrap();
            assert_eq!(n, entry.records);
            names.push(entry.path);
        }
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        assert_eq!(names[0], "kv/test/000001.ndjson");
        assert!(names.len() > 10);
    }
}
