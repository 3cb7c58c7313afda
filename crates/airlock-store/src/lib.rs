//! airlock-store: content-addressed blob storage behind one seam, and verified reads of any OCI
//! image layout.
//!
//! * [`BlobBackend`] — the seam: what a place that keeps blobs by digest must do (size, ranged
//!   reads, verified puts, listing, removal). Everything else in the workspace reaches blobs
//!   through [`BlobStore`], a cheap-to-clone handle on a backend, never through blob paths.
//! * [`dir::DirStore`] — the default backend, an OCI image layout directory
//!   (`ROOT/blobs/sha256/<hex>`): staged in a temp file, fsynced, renamed to the digest only
//!   after digest and size matched.
//! * [`memory::MemoryStore`] — blobs in memory, for tests of the registry and the importer.
//!   S3-compatible object storage is a third backend, in the `airlock-s3` crate (this one stays
//!   free of HTTP clients); [`conformance`] is the behaviour all of them share, run by each
//!   backend's tests.
//! * [`writeback`] — starting write-back early, so that closing fsyncs of large files are short.
//! * [`layout::OciLayout`] — read-only access to any OCI image layout directory, with bounded,
//!   verified reads of its JSON blobs.
//!
//! Both sides use it: `airlock sync`, `pack` and `unpack` on the connected side, `airlockd
//! import` and `serve` on the disconnected side.

#[doc(hidden)]
pub mod conformance;
pub mod dir;
pub mod error;
pub mod layout;
pub mod memory;
pub mod writeback;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use airlock_core::{Digest, Sha256};
use rayon::prelude::*;

pub use dir::DirStore;
pub use error::StoreError;
pub use memory::MemoryStore;

pub(crate) const TEMP_PREFIX: &str = ".tmp-";
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh temp file name, unique in this process and across processes.
pub(crate) fn temp_name() -> String {
    format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Where blobs live, addressed by their SHA-256 digest.
///
/// A backend stores bytes; it does not check them. Verification is the same for every backend
/// because puts go through [`BlobWriter`], which hashes while writing and calls
/// [`StagedBlob::persist`] only when digest and size matched, so a backend never holds a blob
/// under a name its content does not hash to (short of damage after the fact, which
/// [`BlobStore::fsck`] finds by re-hashing through [`BlobBackend::open_at`]).
///
/// [`BlobBackend::local_path`] exists for the few consumers that need a real file rather than a
/// byte stream: the registry sends blob files with `sendfile(2)` (no copy through user space),
/// and `airlock pack` hands blob files to the bundle writer by path. Each of them falls back to
/// [`BlobBackend::open_at`] when it is `None`, as it is for any backend without local files.
///
/// The methods with default bodies only mean something for a directory (temp files, fsync of
/// directory entries, names that are not digests, moves by rename); other backends keep the
/// defaults.
pub trait BlobBackend: Send + Sync + std::fmt::Debug {
    /// What this store is, for messages (a directory's path; `memory`).
    fn describe(&self) -> String;
    /// Where blob `d` is or would be, for messages.
    fn locate(&self, d: &Digest) -> PathBuf;
    /// Blob `d`'s size, if present.
    fn size(&self, d: &Digest) -> Option<u64>;
    /// Blob `d`'s bytes from `offset` to its end.
    fn open_at(&self, d: &Digest, offset: u64) -> Result<Box<dyn Read + Send>, StoreError>;
    /// Starts a put; only [`BlobWriter`] calls this.
    fn stage(&self) -> Result<Box<dyn StagedBlob>, StoreError>;
    /// Every blob digest present, sorted.
    fn list(&self) -> Result<Vec<Digest>, StoreError>;
    /// Removes blob `d`.
    fn remove(&self, d: &Digest) -> Result<(), StoreError>;
    /// Blob `d` as a file on this machine, for zero-copy serving and path-based packing; `None`
    /// when the backend keeps no local files.
    fn local_path(&self, _d: &Digest) -> Option<PathBuf> {
        None
    }
    /// Moves `file`, whose content the caller verified hashes to `d`, into the store by
    /// renaming it. `Ok(false)`: this backend cannot (the caller copies it through a writer).
    fn rename_in(&self, _file: &Path, _d: &Digest) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Entries that are not blobs (leftover temp files, foreign names), for fsck.
    fn strays(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    /// Removes what interrupted puts left behind. Returns how many were removed.
    fn clean_temp(&self) -> Result<usize, StoreError> {
        Ok(0)
    }
    /// Makes completed puts durable (fsync of the directory's entries).
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The layout directory, for stores that are one (the connected side keeps its records
    /// beside the blobs).
    fn root(&self) -> Option<&Path> {
        None
    }
}

/// A put in progress, made visible under a digest by [`StagedBlob::persist`]; dropping it
/// discards what was written.
pub trait StagedBlob: Write + Send {
    /// Stores the bytes written as blob `d`. Called by [`BlobWriter::commit`] after it
    /// checked digest and size.
    fn persist(self: Box<Self>, d: &Digest) -> Result<(), StoreError>;
}

/// A content-addressed blob store: a cheap-to-clone handle on a [`BlobBackend`].
#[derive(Debug, Clone)]
pub struct BlobStore {
    backend: Arc<dyn BlobBackend>,
}

impl BlobStore {
    /// Opens the directory store at `root`, creating `blobs/sha256/` and `oci-layout` if missing.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        Ok(Self::with_backend(Arc::new(DirStore::open(root)?)))
    }

    /// Opens an existing directory store without creating anything (readers without write
    /// access).
    pub fn open_existing(root: &Path) -> Result<Self, StoreError> {
        Ok(Self::with_backend(Arc::new(DirStore::open_existing(root)?)))
    }

    /// A new, empty in-memory store.
    pub fn memory() -> Self {
        Self::with_backend(Arc::new(MemoryStore::new()))
    }

    pub fn with_backend(backend: Arc<dyn BlobBackend>) -> Self {
        BlobStore { backend }
    }

    pub fn backend(&self) -> &dyn BlobBackend {
        &*self.backend
    }

    /// See [`BlobBackend::describe`].
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// See [`BlobBackend::root`].
    pub fn root(&self) -> Option<&Path> {
        self.backend.root()
    }

    /// Is blob `d` present with the expected size? (Its content was verified when written.)
    pub fn contains(&self, d: &Digest, size: u64) -> bool {
        self.backend.size(d) == Some(size)
    }

    /// Blob `d`'s size, if present.
    pub fn size(&self, d: &Digest) -> Option<u64> {
        self.backend.size(d)
    }

    /// Blob `d`'s bytes.
    pub fn read(&self, d: &Digest) -> Result<Box<dyn Read + Send>, StoreError> {
        self.backend.open_at(d, 0)
    }

    /// Blob `d`'s bytes from `offset`.
    pub fn open_at(&self, d: &Digest, offset: u64) -> Result<Box<dyn Read + Send>, StoreError> {
        self.backend.open_at(d, offset)
    }

    /// See [`BlobBackend::local_path`].
    pub fn local_path(&self, d: &Digest) -> Option<PathBuf> {
        self.backend.local_path(d)
    }

    /// Starts writing a blob.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        Ok(BlobWriter {
            staged: Some(self.backend.stage()?),
            backend: self.backend.clone(),
            hasher: Some(Sha256::new()),
            size: 0,
        })
    }

    /// Starts writing a blob whose bytes the caller hashes itself, as a bundle reader does
    /// while it checks each entry against the signed manifest: the writer does not hash them a
    /// second time, and the caller finishes it with [`BlobWriter::commit_hashed`], passing the
    /// digest it computed over exactly the bytes it wrote. Hashing is the largest CPU cost of
    /// an import, so this halves it.
    pub fn writer_hashed_by_caller(&self) -> Result<BlobWriter, StoreError> {
        Ok(BlobWriter {
            staged: Some(self.backend.stage()?),
            backend: self.backend.clone(),
            hasher: None,
            size: 0,
        })
    }

    /// Every blob digest present, sorted (entries that are not blobs are reported by
    /// [`Self::fsck`]).
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        self.backend.list()
    }

    /// Removes blob `d`.
    pub fn remove(&self, d: &Digest) -> Result<(), StoreError> {
        self.backend.remove(d)
    }

    /// Removes what interrupted writers left. Returns how many were removed.
    pub fn clean_temp(&self) -> Result<usize, StoreError> {
        self.backend.clean_temp()
    }

    /// Makes completed writes durable.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.backend.sync()
    }

    /// Moves blob `d` from another store (a staging store) into this one: a rename when both
    /// keep files on the same file system (its content was verified when it was committed
    /// there), else a copy through a verifying writer and a removal from `from`.
    pub fn adopt(&self, from: &BlobStore, d: &Digest) -> Result<(), StoreError> {
        if let Some(src) = from.local_path(d) {
            return self.adopt_file(&src, d);
        }
        self.copy_in(from.read(d)?, d)?;
        from.remove(d)
    }

    /// Moves `file`, already verified by the caller to hash to `d`, into the store: renamed
    /// where the backend keeps files, else copied through a verifying writer and removed.
    pub fn adopt_file(&self, file: &Path, d: &Digest) -> Result<(), StoreError> {
        if self.backend.rename_in(file, d)? {
            return Ok(());
        }
        let f = File::open(file).map_err(StoreError::io(file, "open"))?;
        self.copy_in(Box::new(f), d)?;
        fs::remove_file(file).map_err(StoreError::io(file, "remove"))
    }

    fn copy_in(&self, mut r: Box<dyn Read + Send>, d: &Digest) -> Result<(), StoreError> {
        let mut w = self.writer()?;
        std::io::copy(&mut r, &mut w).map_err(StoreError::io(self.backend.locate(d), "copy"))?;
        w.commit(d, None)
    }

    /// SHA-256 and length of blob `d` as stored now.
    pub fn rehash(&self, d: &Digest) -> Result<(Digest, u64), StoreError> {
        hash_reader(self.read(d)?).map_err(StoreError::io(self.backend.locate(d), "read"))
    }

    /// Re-hashes every blob; returns the problems found (empty when clean).
    pub fn fsck(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = self.backend.strays()?;
        problems.extend(
            self.list()?
                .par_iter()
                .filter_map(|d| match self.rehash(d) {
                    Ok((found, _)) if found == *d => None,
                    Ok((found, _)) => Some(format!("{d}: content hashes to {found}")),
                    Err(e) => Some(format!("{d}: {e}")),
                })
                .collect::<Vec<_>>(),
        );
        problems.sort();
        Ok(problems)
    }

    /// Blobs whose content does not hash to their name (bit rot, or a planted file), found by
    /// re-hashing every blob in parallel.
    pub fn damaged(&self) -> Result<Vec<Digest>, StoreError> {
        let mut bad: Vec<Digest> = self
            .list()?
            .par_iter()
            .filter(|d| !matches!(self.rehash(d), Ok((found, _)) if found == **d))
            .copied()
            .collect();
        bad.sort();
        Ok(bad)
    }

    /// Moves blob `d` out of the store into the directory `dir` (created if needed), returning
    /// its new path.
    pub fn set_aside(&self, d: &Digest, dir: &Path) -> Result<PathBuf, StoreError> {
        fs::create_dir_all(dir).map_err(StoreError::io(dir, "create directory"))?;
        let dest = dir.join(d.hex());
        match self.local_path(d) {
            Some(src) => {
                fs::rename(src, &dest).map_err(StoreError::io(&dest, "move blob aside"))?
            }
            None => {
                let mut f = File::create(&dest).map_err(StoreError::io(&dest, "create"))?;
                std::io::copy(&mut self.read(d)?, &mut f)
                    .and_then(|_| f.sync_all())
                    .map_err(StoreError::io(&dest, "copy blob aside"))?;
                self.remove(d)?;
            }
        }
        self.sync()?;
        Ok(dest)
    }

    /// Reads a small blob whole, checking its size bound and digest.
    pub fn read_verified(&self, d: &Digest, max: u64) -> Result<Vec<u8>, StoreError> {
        verify_read(self.read(d)?, &self.backend.locate(d), d, max)
    }
}

/// Reads `path` (at most `max` bytes) and checks it hashes to `d`.
pub fn read_verified(path: &Path, d: &Digest, max: u64) -> Result<Vec<u8>, StoreError> {
    let f = File::open(path).map_err(StoreError::io(path, "open blob"))?;
    verify_read(f, path, d, max)
}

/// Reads `r` (at most `max` bytes; `name` for messages) and checks it hashes to `d`.
fn verify_read(r: impl Read, name: &Path, d: &Digest, max: u64) -> Result<Vec<u8>, StoreError> {
    let buf = match airlock_core::bounded::read_at_most(r, max) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            return Err(StoreError::TooLarge {
                path: name.to_path_buf(),
                max,
            })
        }
        Err(e) => return Err(StoreError::io(name, "read blob")(e)),
    };
    let found = Sha256::digest(&buf);
    if found != *d {
        return Err(StoreError::DigestMismatch {
            path: name.to_path_buf(),
            expected: *d,
            found,
        });
    }
    Ok(buf)
}

/// SHA-256 and length of a file, streamed.
pub fn hash_file(path: &Path) -> Result<(Digest, u64), StoreError> {
    let f = File::open(path).map_err(StoreError::io(path, "open"))?;
    hash_reader(f).map_err(StoreError::io(path, "read"))
}

/// SHA-256 and length of an open file, read with positioned reads from offset 0: the handle's
/// own position is neither used nor moved, so another reader may share it. `progress` is told
/// the length of each piece read.
pub fn hash_open_file(f: &File, mut progress: impl FnMut(u64)) -> std::io::Result<(Digest, u64)> {
    use std::os::unix::fs::FileExt;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let k = match f.read_at(&mut buf, off) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        off += k as u64;
        progress(k as u64);
    }
    Ok((h.finish(), off))
}

/// SHA-256 and length of a byte stream.
fn hash_reader(mut r: impl Read) -> std::io::Result<(Digest, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((h.finish(), n))
}

/// Writes `data` to `path` atomically: temp file beside it, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(temp_name());
    let r = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r.map_err(StoreError::io(path, "write"))
}

/// A blob being written, hashed as it goes (unless the caller hashes it, see
/// [`BlobStore::writer_hashed_by_caller`]). Dropping it without a commit discards it.
pub struct BlobWriter {
    staged: Option<Box<dyn StagedBlob>>,
    backend: Arc<dyn BlobBackend>,
    hasher: Option<Sha256>,
    size: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self
            .staged
            .as_mut()
            .expect("open until commit")
            .write(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.staged.as_mut().expect("open until commit").flush()
    }
}

impl BlobWriter {
    /// Checks digest (and size, when given), then makes the blob durable under its digest.
    ///
    /// # Panics
    /// On a writer from [`BlobStore::writer_hashed_by_caller`], which has no digest of its
    /// own: use [`Self::commit_hashed`].
    pub fn commit(mut self, expected: &Digest, size: Option<u64>) -> Result<(), StoreError> {
        let found = self
            .hasher
            .take()
            .expect("a writer hashed by its caller is finished with commit_hashed")
            .finish();
        self.finish(found, expected, size)
    }

    /// Like [`Self::commit`], with `found` the digest the caller computed over exactly the
    /// bytes it wrote (a writer from [`BlobStore::writer_hashed_by_caller`]). A writer that
    /// hashed the bytes itself checks its own digest as well.
    pub fn commit_hashed(
        mut self,
        found: &Digest,
        expected: &Digest,
        size: Option<u64>,
    ) -> Result<(), StoreError> {
        if let Some(h) = self.hasher.take() {
            let own = h.finish();
            if own != *found {
                return Err(StoreError::DigestMismatch {
                    path: self.backend.locate(expected),
                    expected: *found,
                    found: own,
                });
            }
        }
        self.finish(*found, expected, size)
    }

    fn finish(
        mut self,
        found: Digest,
        expected: &Digest,
        size: Option<u64>,
    ) -> Result<(), StoreError> {
        if found != *expected {
            return Err(StoreError::DigestMismatch {
                path: self.backend.locate(expected),
                expected: *expected,
                found,
            });
        }
        if let Some(s) = size {
            if s != self.size {
                return Err(StoreError::SizeMismatch {
                    digest: *expected,
                    expected: s,
                    found: self.size,
                });
            }
        }
        self.staged
            .take()
            .expect("open until commit")
            .persist(expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::exercise;

    #[test]
    fn directory_backend() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let blobs = dir.path().join("blobs/sha256");
        exercise(&s, |d, b| std::fs::write(blobs.join(d.hex()), b).unwrap());
        std::fs::write(blobs.join(".tmp-1-1"), b"x").unwrap();
        std::fs::write(blobs.join("README"), b"x").unwrap();
        assert_eq!(s.fsck().unwrap().len(), 2);
        assert_eq!(s.clean_temp().unwrap(), 1);
        assert_eq!(s.fsck().unwrap().len(), 1);
    }

    #[test]
    fn a_writer_hashed_by_its_caller_commits_only_the_digest_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let d = Sha256::digest(b"blob");
        let other = Sha256::digest(b"other");

        // The caller's digest is what is checked against the expected one, and the size too.
        let mut w = s.writer_hashed_by_caller().unwrap();
        w.write_all(b"blob").unwrap();
        assert!(matches!(
            w.commit_hashed(&other, &d, None),
            Err(StoreError::DigestMismatch { .. })
        ));
        let mut w = s.writer_hashed_by_caller().unwrap();
        w.write_all(b"blob").unwrap();
        assert!(matches!(
            w.commit_hashed(&d, &d, Some(5)),
            Err(StoreError::SizeMismatch { .. })
        ));
        assert!(!s.contains(&d, 4), "refused commits leave nothing behind");
        let mut w = s.writer_hashed_by_caller().unwrap();
        w.write_all(b"blob").unwrap();
        w.commit_hashed(&d, &d, Some(4)).unwrap();
        assert_eq!(s.read_verified(&d, 4).unwrap(), b"blob");

        // A writer that hashes for itself also checks the caller's digest against its own.
        let mut w = s.writer().unwrap();
        w.write_all(b"other").unwrap();
        assert!(matches!(
            w.commit_hashed(&d, &d, None),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!s.contains(&other, 5));
        assert_eq!(s.clean_temp().unwrap(), 0, "no temp file is left");
    }

    #[test]
    fn memory_backend() {
        let m = MemoryStore::new();
        let s = BlobStore::with_backend(Arc::new(m.clone()));
        exercise(&s, |d, b| m.corrupt(d, b));
        assert_eq!(s.local_path(&Sha256::digest(b"x")), None);
    }

    #[test]
    fn adopt_between_backends() {
        let dir = tempfile::tempdir().unwrap();
        let staging = BlobStore::open(&dir.path().join("staging")).unwrap();
        let d = Sha256::digest(b"blob");
        let mut w = staging.writer().unwrap();
        w.write_all(b"blob").unwrap();
        w.commit(&d, None).unwrap();
        // directory → memory copies through a verifying writer.
        let mem = BlobStore::memory();
        mem.adopt(&staging, &d).unwrap();
        assert!(mem.contains(&d, 4) && !staging.contains(&d, 4));
        // memory → directory likewise; directory → directory renames.
        let main = BlobStore::open(&dir.path().join("main")).unwrap();
        main.adopt(&mem, &d).unwrap();
        assert!(main.contains(&d, 4) && mem.list().unwrap().is_empty());
        staging.adopt(&main, &d).unwrap();
        assert!(staging.contains(&d, 4) && !main.contains(&d, 4));
        // A file claimed to be `d` that is not is refused by a backend that copies.
        let f = dir.path().join("claimed");
        std::fs::write(&f, b"not it").unwrap();
        assert!(matches!(
            mem.adopt_file(&f, &d),
            Err(StoreError::DigestMismatch { .. })
        ));
    }
}
