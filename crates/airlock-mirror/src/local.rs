//! Local image sources: OCI image layout directories and OCI archive tarballs.
//!
//! Both are read through [`LayoutSource`], which yields verified JSON for manifests and indexes
//! and a [`BlobData`] location for every other blob. An archive is never extracted: its tar
//! headers are indexed once and blobs are packed straight from their byte ranges.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_bundle::writer::{BlobData, PlannedBlob};
use airlock_core::media;
use airlock_core::oci::{Descriptor, Index, Manifest, Probe, MAX_MANIFEST_BYTES};
use airlock_core::{Digest, Sha256};
use airlock_store::layout::{parse_index, OciLayout};

use crate::MirrorError;

/// Read access to an OCI image layout, wherever it lives.
pub trait LayoutSource {
    fn index(&self) -> &Index;
    /// Reads a manifest or index blob (bounded, digest-checked).
    fn read_json(&self, desc: &Descriptor) -> Result<Vec<u8>, MirrorError>;
    /// Where the bytes of any blob are; checks presence and size, not content (that is
    /// hashed while packing).
    fn locate(&self, desc: &Descriptor) -> Result<BlobData, MirrorError>;
    fn describe(&self) -> String;
}

pub struct DirSource {
    layout: OciLayout,
    root: PathBuf,
}

impl DirSource {
    pub fn open(root: &Path) -> Result<Self, MirrorError> {
        let layout = OciLayout::open(root).map_err(|source| MirrorError::Store {
            what: format!("OCI layout {}", root.display()),
            source,
        })?;
        Ok(DirSource {
            layout,
            root: root.to_path_buf(),
        })
    }
}

impl LayoutSource for DirSource {
    fn index(&self) -> &Index {
        &self.layout.index
    }
    fn read_json(&self, desc: &Descriptor) -> Result<Vec<u8>, MirrorError> {
        self.layout
            .read_blob(desc)
            .map_err(|source| MirrorError::Store {
                what: format!("OCI layout {}", self.root.display()),
                source,
            })
    }
    fn locate(&self, desc: &Descriptor) -> Result<BlobData, MirrorError> {
        let path = self.layout.blob_path(&desc.digest);
        let meta = std::fs::metadata(&path).map_err(|e| MirrorError::Source {
            what: format!("blob {}", desc.digest),
            path: path.clone(),
            detail: format!("missing from the layout ({e})"),
        })?;
        if !meta.is_file() || meta.len() != desc.size {
            return Err(MirrorError::Source {
                what: format!("blob {}", desc.digest),
                path,
                detail: format!("{} bytes, the manifest says {}", meta.len(), desc.size),
            });
        }
        Ok(BlobData::File {
            path,
            offset: 0,
            stamp: None,
        })
    }
    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// An OCI layout inside an uncompressed tar file (`skopeo copy ... oci-archive:F`).
pub struct ArchiveSource {
    path: PathBuf,
    entries: BTreeMap<String, (u64, u64)>,
    index: Index,
}

impl ArchiveSource {
    pub fn open(path: &Path) -> Result<Self, MirrorError> {
        let err = |detail: String| MirrorError::Source {
            what: "OCI archive".into(),
            path: path.to_path_buf(),
            detail,
        };
        let f = File::open(path).map_err(|e| err(e.to_string()))?;
        let mut ar = tar::Archive::new(f);
        let mut entries = BTreeMap::new();
        for e in ar.entries().map_err(|e| err(e.to_string()))? {
            let e = e.map_err(|e| err(format!("reading tar: {e}")))?;
            if e.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = e.path().map_err(|e| err(e.to_string()))?;
            let name = name.to_string_lossy();
            let name = name.trim_start_matches("./").to_string();
            let keep = name == "oci-layout"
                || name == "index.json"
                || name
                    .strip_prefix("blobs/sha256/")
                    .is_some_and(|h| Digest::from_hex(h).is_ok());
            if keep
                && entries
                    .insert(name.clone(), (e.raw_file_position(), e.size()))
                    .is_some()
            {
                return Err(err(format!("entry {name:?} appears twice")));
            }
        }
        let read_small = |name: &str| -> Result<Vec<u8>, MirrorError> {
            let (off, size) = *entries
                .get(name)
                .ok_or_else(|| err(format!("no {name} entry; is this an OCI archive?")))?;
            if size > MAX_MANIFEST_BYTES {
                return Err(err(format!(
                    "{name} is larger than {MAX_MANIFEST_BYTES} bytes"
                )));
            }
            read_range(path, off, size).map_err(|e| err(e.to_string()))
        };
        read_small("oci-layout")?;
        let index =
            parse_index(&read_small("index.json")?).map_err(|e| err(format!("index.json: {e}")))?;
        Ok(ArchiveSource {
            path: path.to_path_buf(),
            entries,
            index,
        })
    }

    fn entry(&self, d: &Digest) -> Result<(u64, u64), MirrorError> {
        self.entries
            .get(&d.layout_path())
            .copied()
            .ok_or_else(|| MirrorError::Source {
                what: format!("blob {d}"),
                path: self.path.clone(),
                detail: "missing from the archive".into(),
            })
    }
}

fn read_range(path: &Path, off: u64, size: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = File::open(path)?;
    let mut buf = vec![0u8; size as usize];
    f.read_exact_at(&mut buf, off)?;
    Ok(buf)
}

impl LayoutSource for ArchiveSource {
    fn index(&self) -> &Index {
        &self.index
    }
    fn read_json(&self, desc: &Descriptor) -> Result<Vec<u8>, MirrorError> {
        let (off, size) = self.entry(&desc.digest)?;
        let err = |detail: String| MirrorError::Source {
            what: format!("blob {}", desc.digest),
            path: self.path.clone(),
            detail,
        };
        if size != desc.size || size > MAX_MANIFEST_BYTES {
            return Err(err(format!(
                "{size} bytes, the descriptor says {}",
                desc.size
            )));
        }
        let b = read_range(&self.path, off, size).map_err(|e| err(e.to_string()))?;
        let found = Sha256::digest(&b);
        if found != desc.digest {
            return Err(err(format!("content hashes to {found}")));
        }
        Ok(b)
    }
    fn locate(&self, desc: &Descriptor) -> Result<BlobData, MirrorError> {
        let (off, size) = self.entry(&desc.digest)?;
        if size != desc.size {
            return Err(MirrorError::Source {
                what: format!("blob {}", desc.digest),
                path: self.path.clone(),
                detail: format!("{size} bytes, the descriptor says {}", desc.size),
            });
        }
        Ok(BlobData::File {
            path: self.path.clone(),
            offset: off,
            stamp: None,
        })
    }
    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// The result of resolving one image.
pub struct ResolvedImage {
    pub root: Descriptor,
    pub blobs: Vec<PlannedBlob>,
    pub platforms_omitted: Vec<String>,
}

/// Picks the image named `tag` (or the only image) from a layout's index.
pub fn select(src: &dyn LayoutSource, tag: Option<&str>) -> Result<Descriptor, MirrorError> {
    let ix = src.index();
    let names: Vec<String> = ix
        .manifests
        .iter()
        .filter_map(|d| d.annotations.get(media::ANNOTATION_REF_NAME).cloned())
        .collect();
    let found: Vec<&Descriptor> = match tag {
        Some(t) => ix
            .manifests
            .iter()
            .filter(|d| {
                d.annotations
                    .get(media::ANNOTATION_REF_NAME)
                    .is_some_and(|n| {
                        n == t
                            || n.rsplit_once(':')
                                .is_some_and(|(_, nt)| nt == t && !nt.contains('/'))
                    })
            })
            .collect(),
        None => ix.manifests.iter().collect(),
    };
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(MirrorError::Invalid(format!(
            "{}: no image named {:?} (names in index.json: {})",
            src.describe(),
            tag.unwrap_or(""),
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        ))),
        _ => Err(MirrorError::Invalid(format!(
            "{}: {} images match; name one with :TAG (names: {})",
            src.describe(),
            found.len(),
            names.join(", ")
        ))),
    }
}

/// Walks the closure of `root`: index → manifests → config and layers. With `platforms`,
/// children of an index for other platforms are left out (the index itself is kept unchanged
/// so its digest still resolves) and recorded in `platforms_omitted`.
pub fn resolve(
    src: &dyn LayoutSource,
    root: Descriptor,
    platforms: Option<&[String]>,
) -> Result<ResolvedImage, MirrorError> {
    let mut out = ResolvedImage {
        root: root.clone(),
        blobs: Vec::new(),
        platforms_omitted: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    walk(src, &root, platforms, &mut out, &mut seen, 0)?;
    if let Some(p) = platforms {
        if !media::is_index(&root.media_type) {
            tracing::debug!(
                "platform filter {p:?} ignored: {} is not an index",
                root.digest
            );
        }
    }
    Ok(out)
}

fn walk(
    src: &dyn LayoutSource,
    desc: &Descriptor,
    platforms: Option<&[String]>,
    out: &mut ResolvedImage,
    seen: &mut BTreeSet<Digest>,
    depth: u32,
) -> Result<(), MirrorError> {
    if depth > 4 {
        return Err(MirrorError::Invalid(format!(
            "{}: indexes nested too deeply at {}",
            src.describe(),
            desc.digest
        )));
    }
    if !seen.insert(desc.digest) {
        return Ok(());
    }
    let bytes = src.read_json(desc)?;
    let bad = |detail: String| {
        MirrorError::Invalid(format!("{}: {} {detail}", src.describe(), desc.digest))
    };
    let probe: Probe =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("is not JSON: {e}")))?;
    let kind = probe.kind().unwrap_or("").to_string();
    if kind != desc.media_type {
        return Err(bad(format!(
            "says it is {kind:?} but its descriptor says {:?}",
            desc.media_type
        )));
    }
    out.blobs.push(PlannedBlob {
        digest: desc.digest,
        size: desc.size,
        data: BlobData::Bytes(Arc::from(bytes.as_slice())),
    });
    if media::is_index(&kind) {
        let ix: Index = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("is not a valid index: {e}")))?;
        for child in &ix.manifests {
            if let (Some(want), Some(p)) = (platforms, &child.platform) {
                if !want.iter().any(|w| platform_matches(w, &p.key())) {
                    out.platforms_omitted.push(p.key());
                    continue;
                }
            }
            walk(src, child, platforms, out, seen, depth + 1)?;
        }
    } else if media::is_manifest(&kind) {
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("is not a valid manifest: {e}")))?;
        for d in std::iter::once(&m.config).chain(m.layers.iter()) {
            if seen.insert(d.digest) {
                out.blobs.push(PlannedBlob {
                    digest: d.digest,
                    size: d.size,
                    data: src.locate(d)?,
                });
            }
        }
    } else {
        return Err(bad(format!("has unsupported media type {kind:?}")));
    }
    Ok(())
}

/// `linux/arm64` matches `linux/arm64` and `linux/arm64/v8`.
pub(crate) fn platform_matches(want: &str, have: &str) -> bool {
    want == have || have.strip_prefix(want).is_some_and(|r| r.starts_with('/'))
}

/// Reads at most the first `max` bytes of a file (model cards: the license is near the top,
/// so a longer card is read only in part rather than refused).
pub fn read_small_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    File::open(path)?.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}
