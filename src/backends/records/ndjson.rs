//! Cuts a stream of records into NDJSON parts of bounded size: `<folder>/000001.ndjson`, …
//!
//! The format never needs a length before it has the bytes, and memory holds at most one part.

use crate::archive::EntryBody;
use crate::backends::EntrySender;
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
        self.reserve_part();
        write_line(&mut self.buf, record, &self.folder)?;
        self.added(1).await
    }

    /// Adds lines that [`write_line`] wrote elsewhere (on another task, say), cutting parts
    /// between lines as [`Self::push`] does. (A serialised record holds no raw newline: JSON
    /// escapes it inside strings.)
    pub async fn push_lines(&mut self, mut lines: &[u8]) -> Result<()> {
        while !lines.is_empty() {
            self.reserve_part();
            // Whole lines up to the part size, and at least one.
            let room = self.out.part_bytes.saturating_sub(self.buf.len()).max(1);
            let end = match lines.get(room - 1..) {
                Some(after) => after.iter().position(|b| *b == b'\n').map_or(lines.len(), |at| room + at),
                None => lines.len(),
            };
            let (now, rest) = lines.split_at(end);
            self.buf.extend_from_slice(now);
            self.added(now.iter().filter(|b| **b == b'\n').count() as u64).await?;
            lines = rest;
        }
        Ok(())
    }

    /// A new part gets its whole size at once: grown by doubling, each part left a trail of
    /// freed buffers (256 KiB … 4 MiB) that the allocator kept committed for a while.
    fn reserve_part(&mut self) {
        if self.buf.capacity() == 0 {
            self.buf.reserve(self.out.part_bytes + self.out.part_bytes / 8);
        }
    }

    async fn added(&mut self, records: u64) -> Result<()> {
        self.in_part += records;
        self.total += records;
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

/// Appends `record` to `buf` as one NDJSON line, refusing one longer than [`MAX_LINE`] (it is
/// taken out again); `folder` names the records in the error.
pub fn write_line<T: Serialize + ?Sized>(buf: &mut Vec<u8>, record: &T, folder: &str) -> Result<()> {
    let start = buf.len();
    serde_json::to_writer(&mut *buf, record)?;
    if buf.len() - start > MAX_LINE {
        buf.truncate(start);
        anyhow::bail!(
            "a record of {} is larger than {} MiB, the most one archive record may hold (FORMAT.md)",
            folder.trim_end_matches('/'),
            MAX_LINE >> 20
        );
    }
    buf.push(b'\n');
    Ok(())
}

/// Longest record line accepted, written or read (FORMAT.md): a record is held whole in memory
/// while it is parsed, so an archive must not be able to make a restore allocate without bound.
pub const MAX_LINE: usize = 64 << 20;

/// Reads an NDJSON entry one line at a time, never holding more than one line of at most
/// [`MAX_LINE`] bytes; a longer line is an error, not an allocation.
pub struct LineReader<'a, R: tokio::io::AsyncRead + Unpin + ?Sized> {
    reader: tokio::io::BufReader<&'a mut R>,
    line: Vec<u8>,
    /// 1-based number of the line last returned, for error messages.
    pub number: u64,
}

impl<'a, R: tokio::io::AsyncRead + Unpin + ?Sized> LineReader<'a, R> {
    pub fn new(body: &'a mut R) -> Self {
        LineReader { reader: tokio::io::BufReader::with_capacity(1 << 20, body), line: Vec::new(), number: 0 }
    }

    /// The next non-empty line without its newline; `None` at the end of the entry.
    pub async fn next_line(&mut self) -> Result<Option<&[u8]>> {
        use tokio::io::AsyncBufReadExt;
        loop {
            self.line.clear();
            let mut complete = false;
            while !complete {
                let available = self.reader.fill_buf().await?;
                if available.is_empty() {
                    break;
                }
                let (take, found) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (available.len(), false),
                };
                if self.line.len() + take > MAX_LINE + 1 {
                    anyhow::bail!(
                        "line {} is longer than {} MiB, the most a record may take (FORMAT.md); the archive \
                         was not written by ngbak or is damaged",
                        self.number + 1,
                        MAX_LINE >> 20
                    );
                }
                self.line.extend_from_slice(&available[..take]);
                self.reader.consume(take);
                complete = found;
            }
            if self.line.is_empty() {
                return Ok(None);
            }
            self.number += 1;
            if self.line.ends_with(b"\n") {
                self.line.pop();
            }
            if !self.line.is_empty() {
                return Ok(Some(&self.line));
            }
        }
    }
}

/// Splits an NDJSON entry read from the archive back into records, one line at a time.
pub async fn for_each_line<R, F>(body: &mut R, mut each: F) -> Result<u64>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
    F: FnMut(&[u8]) -> Result<()>,
{
    let mut lines = LineReader::new(body);
    let mut n = 0;
    while let Some(line) = lines.next_line().await? {
        each(line)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::PendingEntry;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn lines_written_elsewhere_are_cut_into_parts_between_lines() {
        let (tx, mut rx) = mpsc::channel::<PendingEntry>(100);
        let out = EntrySender::new(tx, "test", 100);
        let mut parts = out.ndjson("kv/test/");
        let mut block = Vec::new();
        for i in 0..50 {
            write_line(&mut block, &serde_json::json!({ "i": i, "pad": "x".repeat(i % 7 * 9) }), "kv/test").unwrap();
        }
        let longest = block.split(|b| *b == b'\n').map(<[u8]>::len).max().unwrap() + 1;
        // Two blocks, the second starting mid-part.
        let half = block.iter().position(|b| *b == b'\n').unwrap() + 1;
        parts.push_lines(&block[..half]).await.unwrap();
        parts.push_lines(&block[half..]).await.unwrap();
        assert_eq!(parts.finish().await.unwrap(), 50);
        drop(out);
        let mut joined = Vec::new();
        let mut records = 0;
        while let Some(entry) = rx.recv().await {
            let EntryBody::Bytes(bytes) = entry.body else { panic!("parts are in memory") };
            assert!(bytes.ends_with(b"\n") && bytes.len() < 100 + longest, "part of {} bytes", bytes.len());
            assert_eq!(entry.records, bytes.iter().filter(|b| **b == b'\n').count() as u64);
            records += entry.records;
            joined.extend_from_slice(&bytes);
        }
        assert_eq!((records, joined), (50, block));
    }

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

    #[tokio::test]
    async fn an_overlong_line_is_an_error_not_an_allocation() {
        let mut body = vec![b'x'; MAX_LINE + 10];
        body.push(b'\n');
        let err = for_each_line(&mut &body[..], |_| Ok(())).await.unwrap_err();
        assert!(err.to_string().contains("longer than 64 MiB"), "{err}");
        let ok = [b"a\n\nb".as_slice()].concat();
        let mut seen = Vec::new();
        for_each_line(&mut &ok[..], |l| {
            seen.push(l.to_vec());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(seen, vec![b"a".to_vec(), b"b".to_vec()]);
    }
}
