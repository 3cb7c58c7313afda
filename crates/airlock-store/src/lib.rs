//! airlock-store: a content-addressed blob store in OCI image layout form.
//!
//! * [`BlobStore`] — `ROOT/oci-layout`, `ROOT/blobs/sha256/<hex>`. Blobs are written through a
//!   [`BlobWriter`] into a temp file in the same directory while being hashed, fsynced, and
//!   renamed to their digest only after digest and size matched (`commit`). A crash leaves at
//!   most a temp file, which [`BlobStore::clean_temp`] removes on the next start.
//! * [`layout::OciLayout`] — read-only access to any OCI image layout directory, with bounded,
//!   verified reads of its JSON blobs.
//!
//! Both sides use it: `airlock unpack` (and later `airlock sync`) on the connected side,
//! `airlockd import` on the disconnected side.

pub mod error;
pub mod layout;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use airlock_core::{Digest, Sha256};
use rayon::prelude::*;

pub use error::StoreError;

const TEMP_PREFIX: &str = ".tmp-";
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A content-addressed store rooted at an OCI image layout directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    blobs: PathBuf,
}

impl BlobStore {
    /// Opens the store at `root`, creating `blobs/sha256/` and `oci-layout` if missing.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(StoreError::io(&blobs, "create blob directory"))?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, b"{\"imageLayoutVersion\":\"1.0.0\"}")?;
        }
        Ok(BlobStore {
            root: root.to_path_buf(),
            blobs,
        })
    }

    /// Opens an existing store without creating anything (readers without write access).
    pub fn open_existing(root: &Path) -> Result<Self, StoreError> {
        let blobs = root.join("blobs").join("sha256");
        fs::metadata(&blobs).map_err(StoreError::io(&blobs, "open blob directory"))?;
        Ok(BlobStore {
            root: root.to_path_buf(),
            blobs,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where blob `d` lives (whether or not it is present).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    /// Is blob `d` present with the expected size? (Its content was verified when written.)
    pub fn contains(&self, d: &Digest, size: u64) -> bool {
        fs::metadata(self.path(d))
            .map(|m| m.is_file() && m.len() == size)
            .unwrap_or(false)
    }

    /// Starts writing a blob.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let tmp = self.blobs.join(format!(
            "{TEMP_PREFIX}{}-{}",
            std::process::id(),
            TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&tmp).map_err(StoreError::io(&tmp, "create temp blob"))?;
        Ok(BlobWriter {
            file: Some(file),
            tmp,
            blobs: self.blobs.clone(),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Removes temp files left by an interrupted writer. Returns how many were removed.
    pub fn clean_temp(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for e in fs::read_dir(&self.blobs).map_err(StoreError::io(&self.blobs, "list blobs"))? {
            let e = e.map_err(StoreError::io(&self.blobs, "list blobs"))?;
            if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                fs::remove_file(e.path()).map_err(StoreError::io(e.path(), "remove temp blob"))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Flushes directory entries (renames) to disk.
    pub fn sync(&self) -> Result<(), StoreError> {
        File::open(&self.blobs)
            .and_then(|d| d.sync_all())
            .map_err(StoreError::io(&self.blobs, "sync blob directory"))
    }

    /// Moves a verified blob from another store on the same file system (a staging store) into
    /// this one. Content was verified when it was committed there.
    pub fn adopt(&self, from: &BlobStore, d: &Digest) -> Result<(), StoreError> {
        let dest = self.path(d);
        fs::rename(from.path(d), &dest).map_err(StoreError::io(&dest, "move blob into the store"))
    }

    /// Every blob digest present (names that are not digests are reported by [`Self::fsck`]).
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).map_err(StoreError::io(&self.blobs, "list blobs"))? {
            let e = e.map_err(StoreError::io(&self.blobs, "list blobs"))?;
            if let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Re-hashes every blob; returns the problems found (empty when clean).
    pub fn fsck(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for e in fs::read_dir(&self.blobs).map_err(StoreError::io(&self.blobs, "list blobs"))? {
            names.push(
                e.map_err(StoreError::io(&self.blobs, "list blobs"))?
                    .file_name(),
            );
        }
        let mut problems: Vec<String> = names
            .par_iter()
            .filter_map(|name| {
                let name = name.to_string_lossy();
                if name.starts_with(TEMP_PREFIX) {
                    return Some(format!("{name}: leftover temp file"));
                }
                let Ok(d) = Digest::from_hex(&name) else {
                    return Some(format!("{name}: not a sha256 digest"));
                };
                match hash_file(&self.path(&d)) {
                    Ok((found, _)) if found == d => None,
                    Ok((found, _)) => Some(format!("{d}: content hashes to {found}")),
                    Err(e) => Some(format!("{d}: {e}")),
                }
            })
            .collect();
        problems.sort();
        Ok(problems)
    }

    /// Blobs whose content does not hash to their name (bit rot, or a planted file), found by
    /// re-hashing every blob in parallel.
    pub fn damaged(&self) -> Result<Vec<Digest>, StoreError> {
        let mut bad: Vec<Digest> = self
            .list()?
            .par_iter()
            .filter(|d| !matches!(hash_file(&self.path(d)), Ok((found, _)) if found == **d))
            .copied()
            .collect();
        bad.sort();
        Ok(bad)
    }

    /// Moves blob `d` out of the store into `dir` (created if needed), returning its new path.
    pub fn set_aside(&self, d: &Digest, dir: &Path) -> Result<PathBuf, StoreError> {
        fs::create_dir_all(dir).map_err(StoreError::io(dir, "create directory"))?;
        let dest = dir.join(d.hex());
        fs::rename(self.path(d), &dest).map_err(StoreError::io(&dest, "move blob aside"))?;
        self.sync()?;
        Ok(dest)
    }

    /// Reads a small blob whole, checking its size bound and digest.
    pub fn read_verified(&self, d: &Digest, max: u64) -> Result<Vec<u8>, StoreError> {
        read_verified(&self.path(d), d, max)
    }
}

/// Reads `path` (at most `max` bytes) and checks it hashes to `d`.
pub fn read_verified(path: &Path, d: &Digest, max: u64) -> Result<Vec<u8>, StoreError> {
    let f = File::open(path).map_err(StoreError::io(path, "open blob"))?;
    let buf = match airlock_core::bounded::read_at_most(f, max) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            return Err(StoreError::TooLarge {
                path: path.to_path_buf(),
                max,
            })
        }
        Err(e) => return Err(StoreError::io(path, "read blob")(e)),
    };
    let found = Sha256::digest(&buf);
    if found != *d {
        return Err(StoreError::DigestMismatch {
            path: path.to_path_buf(),
            expected: *d,
            found,
        });
    }
    Ok(buf)
}

/// SHA-256 and length of a file, streamed.
pub fn hash_file(path: &Path) -> Result<(Digest, u64), StoreError> {
    let mut f = File::open(path).map_err(StoreError::io(path, "open"))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(StoreError::io(path, "read"))?;
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
    let tmp = dir.join(format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
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

/// A blob being written. Dropping it without [`BlobWriter::commit`] deletes the temp file.
pub struct BlobWriter {
    file: Option<File>,
    tmp: PathBuf,
    blobs: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.as_mut().expect("open until commit").write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("open until commit").flush()
    }
}

impl BlobWriter {
    /// Checks digest (and size, when given), fsyncs and renames into place.
    pub fn commit(mut self, expected: &Digest, size: Option<u64>) -> Result<PathBuf, StoreError> {
        let found = std::mem::take(&mut self.hasher).finish();
        if found != *expected {
            return Err(StoreError::DigestMismatch {
                path: self.tmp.clone(),
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
        let file = self.file.take().expect("open until commit");
        file.sync_data()
            .map_err(StoreError::io(&self.tmp, "sync blob"))?;
        drop(file);
        let dest = self.blobs.join(expected.hex());
        fs::rename(&self.tmp, &dest).map_err(StoreError::io(&dest, "rename blob into place"))?;
        Ok(dest)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_verifies_and_drop_cleans() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let d = Sha256::digest(b"hello");
        let mut w = s.writer().unwrap();
        w.write_all(b"hello").unwrap();
        w.commit(&d, Some(5)).unwrap();
        assert!(s.contains(&d, 5));
        let mut w = s.writer().unwrap();
        w.write_all(b"hellO").unwrap();
        assert!(matches!(
            w.commit(&d, None),
            Err(StoreError::DigestMismatch { .. })
        ));
        let w = s.writer().unwrap();
        drop(w);
        assert_eq!(s.list().unwrap(), vec![d]);
        assert!(s.fsck().unwrap().is_empty());
        std::fs::write(s.path(&d), b"jello").unwrap();
        assert_eq!(s.fsck().unwrap().len(), 1);
    }
}
