//! The directory backend: an OCI image layout, `ROOT/oci-layout` and `ROOT/blobs/sha256/<hex>`.
//!
//! A blob is staged in a temp file in the blob directory, fsynced and renamed to its digest; a
//! crash leaves at most a temp file, which [`BlobBackend::clean_temp`] removes on the next
//! start. Blobs are real files, so [`BlobBackend::local_path`] answers and the registry sends
//! them with `sendfile`.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use airlock_core::Digest;

use crate::{temp_name, BlobBackend, StagedBlob, StoreError, TEMP_PREFIX};

/// Blobs as files of an OCI image layout directory.
#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
    blobs: PathBuf,
}

impl DirStore {
    /// Opens the layout at `root`, creating `blobs/sha256/` and `oci-layout` if missing.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(StoreError::io(&blobs, "create blob directory"))?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            crate::write_atomic(&layout, b"{\"imageLayoutVersion\":\"1.0.0\"}")?;
        }
        Ok(DirStore {
            root: root.to_path_buf(),
            blobs,
        })
    }

    /// Opens an existing layout without creating anything (readers without write access).
    pub fn open_existing(root: &Path) -> Result<Self, StoreError> {
        let blobs = root.join("blobs").join("sha256");
        fs::metadata(&blobs).map_err(StoreError::io(&blobs, "open blob directory"))?;
        Ok(DirStore {
            root: root.to_path_buf(),
            blobs,
        })
    }

    fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    fn names(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).map_err(StoreError::io(&self.blobs, "list blobs"))? {
            let e = e.map_err(StoreError::io(&self.blobs, "list blobs"))?;
            out.push(e.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }
}

impl BlobBackend for DirStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn locate(&self, d: &Digest) -> PathBuf {
        self.path(d)
    }

    fn size(&self, d: &Digest) -> Option<u64> {
        fs::metadata(self.path(d))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    fn open_at(
        &self,
        d: &Digest,
        offset: u64,
    ) -> Result<Box<dyn std::io::Read + Send>, StoreError> {
        let path = self.path(d);
        let mut f = File::open(&path).map_err(StoreError::io(&path, "open blob"))?;
        if offset > 0 {
            f.seek(SeekFrom::Start(offset))
                .map_err(StoreError::io(&path, "seek blob"))?;
        }
        Ok(Box::new(f))
    }

    fn stage(&self) -> Result<Box<dyn StagedBlob>, StoreError> {
        let tmp = self.blobs.join(temp_name());
        let file = File::create(&tmp).map_err(StoreError::io(&tmp, "create temp blob"))?;
        Ok(Box::new(DirStaged {
            file: Some(file),
            writeback: crate::writeback::Writeback::new(),
            tmp,
            blobs: self.blobs.clone(),
        }))
    }

    fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out: Vec<Digest> = self
            .names()?
            .iter()
            .filter_map(|n| Digest::from_hex(n).ok())
            .collect();
        out.sort();
        Ok(out)
    }

    fn remove(&self, d: &Digest) -> Result<(), StoreError> {
        let path = self.path(d);
        fs::remove_file(&path).map_err(StoreError::io(&path, "remove blob"))
    }

    fn local_path(&self, d: &Digest) -> Option<PathBuf> {
        Some(self.path(d))
    }

    fn rename_in(&self, file: &Path, d: &Digest) -> Result<bool, StoreError> {
        let dest = self.path(d);
        fs::rename(file, &dest).map_err(StoreError::io(&dest, "move blob into the store"))?;
        Ok(true)
    }

    fn strays(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .names()?
            .into_iter()
            .filter_map(|name| {
                if name.starts_with(TEMP_PREFIX) {
                    Some(format!("{name}: leftover temp file"))
                } else if Digest::from_hex(&name).is_err() {
                    Some(format!("{name}: not a sha256 digest"))
                } else {
                    None
                }
            })
            .collect())
    }

    fn clean_temp(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for name in self.names()? {
            if name.starts_with(TEMP_PREFIX) {
                let p = self.blobs.join(&name);
                fs::remove_file(&p).map_err(StoreError::io(&p, "remove temp blob"))?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn sync(&self) -> Result<(), StoreError> {
        File::open(&self.blobs)
            .and_then(|d| d.sync_all())
            .map_err(StoreError::io(&self.blobs, "sync blob directory"))
    }

    fn root(&self) -> Option<&Path> {
        Some(&self.root)
    }
}

/// A temp file in the blob directory; removed when dropped unpersisted.
struct DirStaged {
    file: Option<File>,
    writeback: crate::writeback::Writeback,
    tmp: PathBuf,
    blobs: PathBuf,
}

impl Write for DirStaged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let file = self.file.as_mut().expect("open until persisted");
        let n = file.write(buf)?;
        self.writeback.wrote(file, n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("open until persisted").flush()
    }
}

impl StagedBlob for DirStaged {
    fn persist(mut self: Box<Self>, d: &Digest) -> Result<(), StoreError> {
        let file = self.file.take().expect("open until persisted");
        let r = file
            .sync_data()
            .map_err(StoreError::io(&self.tmp, "sync blob"));
        drop(file);
        if let Err(e) = r {
            let _ = fs::remove_file(&self.tmp);
            return Err(e);
        }
        let dest = self.blobs.join(d.hex());
        fs::rename(&self.tmp, &dest).map_err(|e| {
            let _ = fs::remove_file(&self.tmp);
            StoreError::io(&dest, "rename blob into place")(e)
        })
    }
}

impl Drop for DirStaged {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
