//! Snapshot mode: the server's own collection snapshot, streamed out of Qdrant into one tar
//! entry and back into `POST /collections/{c}/snapshots/upload`. Apart from the points code
//! because it is opaque to ngbak (no records, no digest) and all REST, and because both
//! directions must clean up server-side files whatever happens.

use super::rest::Rest;
use super::NAME;
use crate::archive::format::safe_component;
use crate::archive::{EntryBody, EntryRecord};
use crate::backends::EntrySender;
use anyhow::{anyhow, Result};
use futures::TryStreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::oneshot;

/// A reader that tells, when dropped, that the archive writer is done with it (fully read, or
/// abandoned because the backup failed), so the server-side snapshot can be deleted then.
struct DoneOnDrop<R> {
    inner: R,
    _done: oneshot::Sender<()>,
}

impl<R: AsyncRead + Unpin> AsyncRead for DoneOnDrop<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// Has the server write a snapshot of `c`, streams it into the archive, and deletes it on the
/// server (also when the download fails).
pub(super) async fn export(rest: &Rest, c: &str, out: &EntrySender) -> Result<Value> {
    let what = |op: &str| format!("{op} of collection {c}");
    let path = format!("/collections/{c}/snapshots");
    let created =
        rest.result(rest.request(Method::POST, &path).query(&[("wait", "true")]), &what("snapshot creation")).await?;
    let name = created["name"].as_str().ok_or_else(|| anyhow!("Qdrant named no snapshot for {c}"))?.to_string();
    let downloaded = stream(rest, c, &name, out).await;
    // Always remove the server-side snapshot, whether the download worked or not.
    let deleted = rest.send(rest.request(Method::DELETE, &format!("{path}/{name}")), &what("snapshot deletion")).await;
    let size = downloaded?;
    deleted?;
    Ok(json!({ "mode": "snapshot", "snapshot": name, "bytes": size }))
}

async fn stream(rest: &Rest, c: &str, name: &str, out: &EntrySender) -> Result<u64> {
    let req = rest.request(Method::GET, &format!("/collections/{c}/snapshots/{name}"));
    let resp = rest.send(req, &format!("snapshot download of collection {c}")).await?;
    let size = resp.content_length().ok_or_else(|| anyhow!("Qdrant sent snapshot {name} without a length"))?;
    let (done_tx, done_rx) = oneshot::channel();
    let body = tokio_util::io::StreamReader::new(resp.bytes_stream().map_err(std::io::Error::other));
    let reader = DoneOnDrop { inner: body, _done: done_tx };
    let entry = format!("vector/{}/{}", safe_component(c), safe_component(name));
    out.send(entry, 0, EntryBody::Stream { size, reader: Box::new(reader) }).await?;
    // The writer drops the reader when it has read it (or given up): only then is the snapshot free.
    let _ = done_rx.await;
    Ok(size)
}

/// Streams an archived snapshot into `target` and recovers the collection from it; the uploaded
/// file is deleted afterwards, whether recovery worked or not.
pub(super) async fn upload(
    rest: &Rest,
    target: &str,
    entry: &EntryRecord,
    body: &mut (dyn AsyncRead + Send + Unpin),
) -> Result<()> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), entry.size)
        .file_name(format!("{target}.snapshot"))
        .mime_str("application/octet-stream")?;
    let form = reqwest::multipart::Form::new().part("snapshot", part);
    let req = rest
        .request(Method::POST, &format!("/collections/{target}/snapshots/upload"))
        .query(&[("priority", "snapshot"), ("wait", "true")])
        .multipart(form);
    let pump = async move {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = body.read(&mut buf).await?;
            if n == 0 {
                return anyhow::Ok(());
            }
            if tx.send(Ok(bytes::Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                return Ok(()); // the upload ended early; its error explains why
            }
        }
    };
    let what = format!("snapshot upload into collection {target}");
    let upload = rest.send(req, &what);
    let (pumped, uploaded) = tokio::join!(pump, upload);
    // Qdrant keeps the uploaded file among the collection's snapshots, as large as the
    // collection, whether recovery worked or not: delete it either way.
    let file = format!("/collections/{target}/snapshots/{target}.snapshot");
    let removed = rest.send(rest.request(Method::DELETE, &file), &format!("deleting the uploaded {file}")).await;
    uploaded?;
    pumped?;
    if let Err(e) = removed {
        let text = format!("{e:#}");
        if !text.contains("404") && !text.contains("not found") && !text.contains("Not found") {
            tracing::warn!(
                backend = NAME,
                "the uploaded snapshot {file} could not be deleted: {text}; delete it by hand"
            );
        }
    }
    Ok(())
}
