//! Read-only access to an OCI image layout directory written by any tool (umoci, skopeo,
//! `airlock unpack`). Every JSON blob is read with a size bound and checked against its digest.

use std::path::{Path, PathBuf};

use airlock_core::oci::{Descriptor, Index, MAX_MANIFEST_BYTES};
use airlock_core::Digest;

use crate::StoreError;

pub struct OciLayout {
    root: PathBuf,
    pub index: Index,
}

impl OciLayout {
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let bad = |detail: String| StoreError::Layout {
            path: root.to_path_buf(),
            detail,
        };
        // The `oci-layout` file is a few dozen bytes; at most 4 KiB of it is read.
        let layout = airlock_core::bounded::read_file_at_most(&root.join("oci-layout"), 4096)
            .map_err(|e| bad(format!("oci-layout: {e}; is this an OCI image layout?")))?;
        let v: serde_json::Value =
            serde_json::from_slice(&layout).map_err(|e| bad(format!("oci-layout: {e}")))?;
        if v.get("imageLayoutVersion").and_then(|x| x.as_str()) != Some("1.0.0") {
            return Err(bad("oci-layout: imageLayoutVersion is not 1.0.0".into()));
        }
        let index = read_index_json(&root.join("index.json"))?;
        Ok(OciLayout {
            root: root.to_path_buf(),
            index,
        })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join(d.layout_path())
    }

    /// Reads a JSON blob named by `desc`, verifying size and digest.
    pub fn read_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, StoreError> {
        if desc.size > MAX_MANIFEST_BYTES {
            return Err(StoreError::TooLarge {
                path: self.blob_path(&desc.digest),
                max: MAX_MANIFEST_BYTES,
            });
        }
        let b = crate::read_verified(&self.blob_path(&desc.digest), &desc.digest, desc.size)?;
        if b.len() as u64 != desc.size {
            return Err(StoreError::SizeMismatch {
                digest: desc.digest,
                expected: desc.size,
                found: b.len() as u64,
            });
        }
        Ok(b)
    }
}

/// Reads and parses an `index.json` with a size bound.
pub fn read_index_json(path: &Path) -> Result<Index, StoreError> {
    let f = std::fs::File::open(path).map_err(StoreError::io(path, "open index.json"))?;
    let buf = match airlock_core::bounded::read_at_most(f, MAX_MANIFEST_BYTES) {
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            return Err(StoreError::Layout {
                path: path.to_path_buf(),
                detail: format!("index.json is larger than {MAX_MANIFEST_BYTES} bytes"),
            })
        }
        r => r.map_err(StoreError::io(path, "read index.json"))?,
    };
    parse_index(&buf).map_err(|detail| StoreError::Layout {
        path: path.to_path_buf(),
        detail,
    })
}

/// Parses `index.json` bytes (bounded by the caller).
pub fn parse_index(buf: &[u8]) -> Result<Index, String> {
    if buf.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!("larger than {MAX_MANIFEST_BYTES} bytes"));
    }
    let ix: Index = serde_json::from_slice(buf).map_err(|e| e.to_string())?;
    if ix.schema_version != 2 {
        return Err(format!("schemaVersion {} is not 2", ix.schema_version));
    }
    Ok(ix)
}
