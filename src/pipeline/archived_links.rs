//! A stored backup as a GraphRAG deployment, for the consistency check of an archive and the
//! prediction of a restore: each walk reads the archive once from the store, streaming, and
//! proves it intact on the way (the whole-archive SHA-256 against the sidecar, every entry's
//! hash), while each backend's reader ([`ArchivedFacts`]) turns its entries into facts on a
//! blocking thread. Nothing is restored, nothing is kept but the check's hash sets.

use crate::archive::reader::{read_archive, EntryVisitor};
use crate::archive::{EntryRecord, Sidecar};
use crate::consistency::{ArchivedFacts, Deployment, FactSink, OwnedFact, Store, Want};
use crate::id::BackupId;
use crate::store::ObjectStore;
use anyhow::{Context, Result};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// Facts sent from the parsing thread at once.
const BATCH: usize = 512;

pub struct ArchiveDeployment<'a> {
    store: &'a dyn ObjectStore,
    id: BackupId,
    sidecar: Sidecar,
    /// Each archived backend's reader, by its name in the archive.
    readers: BTreeMap<String, Box<dyn ArchivedFacts>>,
}

impl<'a> ArchiveDeployment<'a> {
    /// The backup that `sidecar` describes in `store`, read by `readers` (the backends not among
    /// them are left out).
    pub fn new(
        store: &'a dyn ObjectStore,
        sidecar: Sidecar,
        readers: Vec<(&'static str, Box<dyn ArchivedFacts>)>,
    ) -> Self {
        let readers = readers
            .into_iter()
            .filter(|(name, _)| sidecar.manifest.backends.contains_key(*name))
            .map(|(name, reader)| (name.to_string(), reader))
            .collect();
        ArchiveDeployment { store, id: sidecar.manifest.backup_id.clone(), sidecar, readers }
    }
}

#[async_trait::async_trait]
impl Deployment for ArchiveDeployment<'_> {
    async fn stores(&mut self) -> Result<BTreeSet<Store>> {
        let mut stores = BTreeSet::new();
        for entry in &self.sidecar.manifest.entries {
            if let Some(reader) = self.readers.get(&entry.backend) {
                stores.extend(reader.stores_of(&entry.path));
            }
        }
        Ok(stores)
    }

    async fn walk(&mut self, want: &Want, each: &mut FactSink<'_>) -> Result<()> {
        let object = self.store.get(&self.id.archive_key(), None).await?;
        let mut visitor = FactVisitor { readers: &mut self.readers, want, each };
        read_archive(object.body, &self.sidecar, &mut visitor)
            .await
            .with_context(|| format!("reading backup {} for its links", self.id))?;
        Ok(())
    }
}

struct FactVisitor<'v, 's> {
    readers: &'v mut BTreeMap<String, Box<dyn ArchivedFacts>>,
    want: &'v Want,
    each: &'v mut FactSink<'s>,
}

#[async_trait::async_trait]
impl EntryVisitor for FactVisitor<'_, '_> {
    async fn visit(&mut self, record: &EntryRecord, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<()> {
        let wanted = self.readers.get(&record.backend).is_some_and(|r| !r.stores_of(&record.path).is_empty());
        if !wanted {
            return Ok(());
        }
        let Some(mut reader) = self.readers.remove(&record.backend) else { return Ok(()) };
        let (bytes_tx, bytes_rx) = mpsc::channel::<Bytes>(4);
        let (facts_tx, mut facts_rx) = mpsc::channel::<Vec<OwnedFact>>(4);
        let (path, want) = (record.path.clone(), self.want.clone());
        let parser = tokio::task::spawn_blocking(move || {
            let mut input = ChannelReader { rx: bytes_rx, chunk: Bytes::new() };
            let mut batch = Vec::with_capacity(BATCH);
            let parsed = reader.entry(&path, &mut input, &want, &mut |fact| {
                batch.push(OwnedFact::from(fact));
                if batch.len() == BATCH {
                    // A closed channel means the walk stopped; the parse ends with the input.
                    let _ = facts_tx.blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                }
            });
            if !batch.is_empty() {
                let _ = facts_tx.blocking_send(batch);
            }
            (reader, parsed)
        });
        let pump = async {
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = body.read(&mut buf).await?;
                // A parser that is done (or failed) has dropped its input: the rest is the caller's.
                if n == 0 || bytes_tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    break;
                }
            }
            drop(bytes_tx);
            anyhow::Ok(())
        };
        let each = &mut *self.each;
        let drain = async {
            while let Some(batch) = facts_rx.recv().await {
                for fact in &batch {
                    each(fact.as_fact());
                }
            }
        };
        let (pumped, ()) = tokio::join!(pump, drain);
        let (reader, parsed) = parser.await.context("the archive's parsing thread failed")?;
        self.readers.insert(record.backend.clone(), reader);
        pumped?;
        parsed.with_context(|| format!("reading the links in {}", record.path))
    }
}

/// The entry's bytes, as they arrive from the archive, as a blocking reader.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
