//! The in-memory backend: blobs in a map behind a lock, for tests of everything above the store
//! (the registry's handlers, the importer) without a file system, and as the proof that callers
//! only use the [`BlobBackend`] seam.
//!
//! Puts go through the same [`crate::BlobWriter`] as the directory backend, so a blob is stored
//! only after its digest and size matched. Nothing is a file: [`BlobBackend::local_path`] is
//! `None` and callers stream through [`BlobBackend::open_at`].

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use airlock_core::Digest;

use crate::{BlobBackend, StagedBlob, StoreError};

type Map = HashMap<Digest, Arc<[u8]>>;

/// Blobs held in memory. Cloning shares the map.
#[derive(Default, Clone)]
pub struct MemoryStore {
    blobs: Arc<RwLock<Map>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, d: &Digest) -> Option<Arc<[u8]>> {
        self.blobs.read().expect("blob map").get(d).cloned()
    }

    /// Changes blob `d`'s bytes in place, bypassing verification (tests of bit-rot detection).
    pub fn corrupt(&self, d: &Digest, bytes: &[u8]) {
        self.blobs
            .write()
            .expect("blob map")
            .insert(*d, Arc::from(bytes));
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.blobs.read().map_or(0, |m| m.len());
        f.debug_struct("MemoryStore").field("blobs", &n).finish()
    }
}

fn missing(d: &Digest) -> StoreError {
    StoreError::Io {
        path: memory_name(d),
        op: "open blob",
        source: std::io::ErrorKind::NotFound.into(),
    }
}

fn memory_name(d: &Digest) -> PathBuf {
    PathBuf::from(format!("memory/{d}"))
}

impl BlobBackend for MemoryStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn locate(&self, d: &Digest) -> PathBuf {
        memory_name(d)
    }

    fn size(&self, d: &Digest) -> Option<u64> {
        self.get(d).map(|b| b.len() as u64)
    }

    fn open_at(
        &self,
        d: &Digest,
        offset: u64,
    ) -> Result<Box<dyn std::io::Read + Send>, StoreError> {
        let b = self.get(d).ok_or_else(|| missing(d))?;
        let mut c = Cursor::new(b);
        c.set_position(offset);
        Ok(Box::new(c))
    }

    fn stage(&self) -> Result<Box<dyn StagedBlob>, StoreError> {
        Ok(Box::new(MemoryStaged {
            buf: Vec::new(),
            blobs: self.blobs.clone(),
        }))
    }

    fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out: Vec<Digest> = self
            .blobs
            .read()
            .expect("blob map")
            .keys()
            .copied()
            .collect();
        out.sort();
        Ok(out)
    }

    fn remove(&self, d: &Digest) -> Result<(), StoreError> {
        self.blobs
            .write()
            .expect("blob map")
            .remove(d)
            .map(|_| ())
            .ok_or_else(|| missing(d))
    }
}

/// Bytes being put; inserted into the map only when persisted.
struct MemoryStaged {
    buf: Vec<u8>,
    blobs: Arc<RwLock<Map>>,
}

impl Write for MemoryStaged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl StagedBlob for MemoryStaged {
    fn persist(self: Box<Self>, d: &Digest) -> Result<(), StoreError> {
        let MemoryStaged { buf, blobs } = *self;
        blobs.write().expect("blob map").insert(*d, Arc::from(buf));
        Ok(())
    }
}
