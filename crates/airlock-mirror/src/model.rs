//! Model directories and plain files as OCI artifacts.
//!
//! A model becomes one manifest with `artifactType` = ModelPack's
//! `application/vnd.cncf.model.manifest.v1+json`, a ModelPack config, and one layer per file
//! (raw bytes; `org.opencontainers.image.title` and ModelPack's `org.cncf.model.filepath` = the
//! path inside the repository), in path order. Nothing time-dependent goes into these JSON
//! documents and the config is canonical JSON (keys sorted by this crate, not by serde_json's
//! map type), so the same files always give the same digests.
//!
//! A file becomes a one-layer artifact with `artifactType` `application/vnd.airlock.file.v1`
//! and the empty config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlock_bundle::writer::{BlobData, FileStamp, PlannedBlob};
use airlock_bundle::Progress;
use airlock_core::media;
use airlock_core::oci::{Descriptor, Manifest};
use airlock_core::{Digest, Sha256};
use rayon::prelude::*;
use serde_json::json;

use crate::MirrorError;

/// A file hashed once, with the stamp that lets `pack` skip hashing it again.
#[derive(Debug, Clone)]
pub struct HashedFile {
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
    pub stamp: FileStamp,
    /// The digest was computed from the bytes now; `false` when it came from the digest cache,
    /// and the volume writer must hash the bytes as it writes them.
    pub verified: bool,
}

/// How source files are hashed: where progress goes, and the digest cache, if any.
pub struct Hashing<'a> {
    pub progress: &'a dyn Progress,
    pub cache: Option<&'a crate::digest_cache::DigestCache>,
}

impl<'a> Hashing<'a> {
    /// Hashing every file, without a cache.
    pub fn new(progress: &'a dyn Progress) -> Self {
        Hashing {
            progress,
            cache: None,
        }
    }

    /// The digest of `path`: from the cache when it holds one for the file as it is now
    /// (unverified), else hashed (and stored in the cache).
    pub fn file(&self, path: &Path) -> Result<HashedFile, MirrorError> {
        if let Some(cache) = self.cache {
            if let Ok(meta) = std::fs::metadata(path) {
                let stamp = FileStamp::of(&meta);
                if meta.is_file() {
                    if let Some(digest) = cache.get(path, &stamp) {
                        self.progress.advance(stamp.size);
                        return Ok(HashedFile {
                            path: path.to_path_buf(),
                            digest,
                            size: stamp.size,
                            stamp,
                            verified: false,
                        });
                    }
                }
            }
        }
        self.hash_and_store(path)
    }

    /// Hashes `path` whatever the cache holds, and stores the digest in it.
    pub fn rehash(&self, path: &Path) -> Result<HashedFile, MirrorError> {
        if let Some(cache) = self.cache {
            cache.rehashed(path);
        }
        self.hash_and_store(path)
    }

    fn hash_and_store(&self, path: &Path) -> Result<HashedFile, MirrorError> {
        let h = hash_file(path, self.progress)?;
        if let Some(cache) = self.cache {
            cache.put(path, &h.stamp, &h.digest);
        }
        Ok(h)
    }
}

/// Hashes a file, refusing one that changes while being read.
pub fn hash_file(path: &Path, progress: &dyn Progress) -> Result<HashedFile, MirrorError> {
    use std::io::Read;
    let err = |detail: String| MirrorError::Source {
        what: "file".into(),
        path: path.to_path_buf(),
        detail,
    };
    let mut f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let before = f.metadata().map_err(|e| err(e.to_string()))?;
    if !before.is_file() {
        return Err(err("not a regular file".into()));
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| err(e.to_string()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
        progress.advance(n as u64);
    }
    let stamp = FileStamp::of(&before);
    let after = FileStamp::of(&f.metadata().map_err(|e| err(e.to_string()))?);
    if after != stamp || size != stamp.size {
        return Err(err("file changed while it was being hashed".into()));
    }
    Ok(HashedFile {
        path: path.to_path_buf(),
        digest: h.finish(),
        size,
        stamp,
        verified: true,
    })
}

/// The files of a model directory: regular files (symlinks followed), hidden entries skipped,
/// sorted by path. Returns (path in repo, file path).
pub fn list_model_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>, MirrorError> {
    list_model_dir_within(dir, None)
}

/// [`list_model_dir`], refusing any file whose real path (symlinks resolved) lies outside
/// `within`: a Hugging Face cache's snapshot links must point into its own `blobs/`.
pub fn list_model_dir_within(
    dir: &Path,
    within: Option<&Path>,
) -> Result<Vec<(String, PathBuf)>, MirrorError> {
    let within = match within {
        Some(w) => Some(std::fs::canonicalize(w).map_err(MirrorError::io(w, "resolve"))?),
        None => None,
    };
    let err = |path: &Path, detail: String| MirrorError::Source {
        what: "model directory".into(),
        path: path.to_path_buf(),
        detail,
    };
    if !dir.is_dir() {
        return Err(err(dir, "is not a directory".into()));
    }
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for e in walker {
        let e = e.map_err(|e| err(dir, e.to_string()))?;
        if e.file_type().is_dir() {
            continue;
        }
        if !e.file_type().is_file() {
            return Err(err(
                e.path(),
                "is neither a regular file nor a directory".into(),
            ));
        }
        if let Some(w) = &within {
            let real =
                std::fs::canonicalize(e.path()).map_err(MirrorError::io(e.path(), "resolve"))?;
            if !real.starts_with(w) {
                return Err(err(
                    e.path(),
                    format!(
                        "links outside {} (to {}); refused",
                        w.display(),
                        real.display()
                    ),
                ));
            }
        }
        let rel = e.path().strip_prefix(dir).expect("under dir");
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| err(e.path(), "file name is not UTF-8".into()))?;
        out.push((rel.join("/"), e.path().to_path_buf()));
    }
    if out.is_empty() {
        return Err(err(dir, "holds no files".into()));
    }
    Ok(out)
}

/// The `license:` of a Hugging Face model card's YAML front matter, if any.
pub fn card_license(readme: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(readme).ok()?;
    let rest = text.strip_prefix("---")?;
    let end = rest.find("\n---")?;
    rest[..end].lines().find_map(|l| {
        let v = l
            .strip_prefix("license:")?
            .trim()
            .trim_matches('"')
            .trim_matches('\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// An artifact built from files: the manifest bytes, its descriptor, and every blob.
pub struct BuiltArtifact {
    pub root: Descriptor,
    pub blobs: Vec<PlannedBlob>,
}

fn json_blob(v: &impl serde::Serialize) -> (Vec<u8>, Digest) {
    let bytes = serde_json::to_vec(v).expect("JSON serializes");
    let d = Sha256::digest(&bytes);
    (bytes, d)
}

fn file_blob(f: &HashedFile) -> PlannedBlob {
    PlannedBlob {
        digest: f.digest,
        size: f.size,
        data: BlobData::File {
            path: f.path.clone(),
            offset: 0,
            stamp: f.verified.then_some(f.stamp),
        },
    }
}

fn finish(
    artifact_type: &str,
    config_type: &str,
    config: Vec<u8>,
    layers: Vec<(Descriptor, PlannedBlob)>,
    annotations: BTreeMap<String, String>,
) -> BuiltArtifact {
    let config_digest = Sha256::digest(&config);
    let config_desc = Descriptor {
        media_type: config_type.into(),
        digest: config_digest,
        size: config.len() as u64,
        artifact_type: None,
        platform: None,
        annotations: BTreeMap::new(),
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: config_desc,
        layers: layers.iter().map(|(d, _)| d.clone()).collect(),
        subject: None,
        annotations,
    };
    let (mbytes, mdigest) = json_blob(&manifest);
    let root = Descriptor {
        media_type: media::OCI_MANIFEST.into(),
        digest: mdigest,
        size: mbytes.len() as u64,
        artifact_type: Some(artifact_type.into()),
        platform: None,
        annotations: BTreeMap::new(),
    };
    let mut blobs = vec![
        PlannedBlob {
            digest: mdigest,
            size: mbytes.len() as u64,
            data: BlobData::Bytes(Arc::from(mbytes.as_slice())),
        },
        PlannedBlob {
            digest: config_digest,
            size: config.len() as u64,
            data: BlobData::Bytes(Arc::from(config.as_slice())),
        },
    ];
    blobs.extend(layers.into_iter().map(|(_, b)| b));
    BuiltArtifact { root, blobs }
}

/// One file of a model repository and where its bytes are.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// Path inside the repository (`/`-separated).
    pub rel: String,
    pub digest: Digest,
    pub size: u64,
    pub data: BlobData,
}

/// Annotation keys on a model manifest that record the upstream Hugging Face repository and
/// commit (content-determined, so reproducible); the appliance's HF endpoint serves the model
/// under that commit id so pinned clients keep working offline.
pub const ANNOTATION_HF_REPO: &str = "dev.airlock.hf.repo";
pub const ANNOTATION_HF_COMMIT: &str = "dev.airlock.hf.commit";

/// Builds the ModelPack artifact of `files` (sorted by path here).
pub fn model_artifact(
    name: &str,
    mut files: Vec<ModelFile>,
    license: Option<&str>,
    annotations: BTreeMap<String, String>,
) -> BuiltArtifact {
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    let layers: Vec<(Descriptor, PlannedBlob)> = files
        .iter()
        .map(|f| {
            (
                Descriptor {
                    media_type: media::model_layer_type(&f.rel).into(),
                    digest: f.digest,
                    size: f.size,
                    artifact_type: None,
                    platform: None,
                    annotations: BTreeMap::from([
                        (media::ANNOTATION_TITLE.to_string(), f.rel.clone()),
                        (media::ANNOTATION_MODEL_FILEPATH.to_string(), f.rel.clone()),
                    ]),
                },
                PlannedBlob {
                    digest: f.digest,
                    size: f.size,
                    data: f.data.clone(),
                },
            )
        })
        .collect();
    // ModelPack config: descriptor, config, modelfs. Raw layers: diffIds are the layer digests.
    let config = json!({
        "descriptor": {
            "name": name,
            "licenses": license.iter().collect::<Vec<_>>(),
        },
        "config": {},
        "modelfs": {
            "type": "layers",
            "diffIds": files.iter().map(|f| f.digest.to_string()).collect::<Vec<_>>(),
        },
    });
    // Canonical JSON: the digest must not depend on whether some dependency turns on
    // serde_json's `preserve_order` (insertion-ordered maps).
    let cbytes = airlock_trust::canonical::to_vec(&config).expect("JSON serializes");
    finish(
        media::MODEL_ARTIFACT,
        media::MODEL_CONFIG,
        cbytes,
        layers,
        annotations,
    )
}

/// Builds the artifact of a Debian package closure: config = the resolution record (canonical
/// JSON), one layer per `.deb` in the store, titled with its pool file name, in name order.
pub fn debs_artifact(
    rec: &airlock_core::debs::ClosureRecord,
    store: &airlock_store::BlobStore,
) -> Result<BuiltArtifact, MirrorError> {
    let mut layers = Vec::new();
    for p in &rec.packages {
        let digest = Digest::from_hex(&p.sha256)
            .map_err(|e| MirrorError::Invalid(format!("debs {}: {}: {e}", rec.name, p.name)))?;
        if !store.contains(&digest, p.size) {
            return Err(MirrorError::Invalid(format!(
                "debs {}: {} {} is not in the store; run `airlock sync`",
                rec.name, p.name, p.version
            )));
        }
        layers.push((
            Descriptor {
                media_type: media::DEB_LAYER.into(),
                digest,
                size: p.size,
                artifact_type: None,
                platform: None,
                annotations: BTreeMap::from([(media::ANNOTATION_TITLE.to_string(), p.file_name())]),
            },
            PlannedBlob {
                digest,
                size: p.size,
                data: crate::store_blob(store, &digest, p.size)?,
            },
        ));
    }
    let config =
        airlock_trust::canonical::to_vec(&serde_json::to_value(rec).expect("record serializes"))
            .expect("JSON serializes");
    Ok(finish(
        media::DEBS_ARTIFACT,
        media::DEBS_CONFIG,
        config,
        layers,
        BTreeMap::new(),
    ))
}

/// Builds a model artifact from a directory (only files `filter` keeps; symlinks must stay
/// within `within` when given). Returns the artifact and the license found.
pub fn model_from_dir(
    name: &str,
    dir: &Path,
    license_override: Option<&str>,
    filter: &crate::glob::Filter,
    within: Option<&Path>,
    annotations: BTreeMap<String, String>,
    hashing: &Hashing<'_>,
) -> Result<(BuiltArtifact, Option<String>), MirrorError> {
    let files: Vec<(String, PathBuf)> = list_model_dir_within(dir, within)?
        .into_iter()
        .filter(|(rel, _)| filter.keeps(rel))
        .collect();
    if files.is_empty() {
        return Err(MirrorError::Source {
            what: format!("model {name}"),
            path: dir.to_path_buf(),
            detail: "no file matches the include/exclude patterns".into(),
        });
    }
    let hashed: Vec<HashedFile> = files
        .par_iter()
        .map(|(_, p)| hashing.file(p))
        .collect::<Result<_, _>>()?;
    let license = license_override.map(str::to_string).or_else(|| {
        files
            .iter()
            .find(|(rel, _)| rel.eq_ignore_ascii_case("README.md"))
            .and_then(|(_, p)| crate::local::read_small_file(p, 1 << 20).ok())
            .and_then(|b| card_license(&b))
    });
    let mfiles = files
        .iter()
        .zip(&hashed)
        .map(|((rel, _), h)| ModelFile {
            rel: rel.clone(),
            digest: h.digest,
            size: h.size,
            data: file_blob(h).data,
        })
        .collect();
    Ok((
        model_artifact(name, mfiles, license.as_deref(), annotations),
        license,
    ))
}

/// Builds a one-layer file artifact, checking `expected` when given.
pub fn file_artifact(
    name: &str,
    path: &Path,
    expected: Option<&Digest>,
    hashing: &Hashing<'_>,
) -> Result<BuiltArtifact, MirrorError> {
    let mut h = hashing.file(path)?;
    if expected.is_some_and(|want| *want != h.digest) && !h.verified {
        // The cached digest is not the pinned one: the entry may be stale, so hash the file.
        h = hashing.rehash(path)?;
    }
    if let Some(want) = expected {
        if *want != h.digest {
            return Err(MirrorError::Source {
                what: format!("file {name:?}"),
                path: path.to_path_buf(),
                detail: format!(
                    "sha256 is {}, the manifest requires {}",
                    h.digest.hex(),
                    want.hex()
                ),
            });
        }
    }
    let layer = Descriptor {
        media_type: media::FILE_LAYER.into(),
        digest: h.digest,
        size: h.size,
        artifact_type: None,
        platform: None,
        annotations: BTreeMap::from([(media::ANNOTATION_TITLE.to_string(), name.to_string())]),
    };
    Ok(finish(
        media::FILE_ARTIFACT,
        media::OCI_EMPTY,
        media::EMPTY_JSON.to_vec(),
        vec![(layer, file_blob(&h))],
        BTreeMap::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_leaving_a_model_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let model = d.path().join("model");
        std::fs::create_dir(&model).unwrap();
        std::fs::write(model.join("config.json"), b"{}").unwrap();
        std::fs::write(d.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink("config.json", model.join("inside.json")).unwrap();
        assert_eq!(
            list_model_dir_within(&model, Some(&model)).unwrap().len(),
            2
        );
        std::os::unix::fs::symlink(d.path().join("secret"), model.join("leak.bin")).unwrap();
        let e = list_model_dir_within(&model, Some(&model))
            .unwrap_err()
            .to_string();
        assert!(e.contains("leak.bin"), "{e}");
    }

    #[test]
    fn license_from_front_matter() {
        assert_eq!(
            card_license(b"---\nlicense: apache-2.0\ntags: [x]\n---\n# Model"),
            Some("apache-2.0".into())
        );
        assert_eq!(card_license(b"# no front matter\nlicense: mit"), None);
    }

    #[test]
    fn model_digests_are_reproducible() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("config.json"), b"{}").unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/w.safetensors"), b"weights").unwrap();
        std::fs::write(d.path().join(".hidden"), b"x").unwrap();
        let (a, _) = model_from_dir(
            "m",
            d.path(),
            None,
            &crate::glob::Filter::default(),
            None,
            BTreeMap::new(),
            &Hashing::new(&airlock_bundle::NoProgress),
        )
        .unwrap();
        let (b, _) = model_from_dir(
            "m",
            d.path(),
            None,
            &crate::glob::Filter::default(),
            None,
            BTreeMap::new(),
            &Hashing::new(&airlock_bundle::NoProgress),
        )
        .unwrap();
        assert_eq!(a.root.digest, b.root.digest);
        assert_eq!(a.blobs.len(), 4); // manifest, config, 2 layers (hidden file skipped)
    }

    fn blob_bytes(b: &PlannedBlob) -> &[u8] {
        match &b.data {
            BlobData::Bytes(d) => d,
            BlobData::File { .. } => panic!("not in memory"),
        }
    }

    #[test]
    fn config_is_canonical_and_layers_carry_modelpack_filepath() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/w.safetensors"), b"weights").unwrap();
        let (a, _) = model_from_dir(
            "org/m",
            d.path(),
            Some("mit"),
            &crate::glob::Filter::default(),
            None,
            BTreeMap::new(),
            &Hashing::new(&airlock_bundle::NoProgress),
        )
        .unwrap();
        let config = blob_bytes(&a.blobs[1]);
        let wdigest = Sha256::digest(b"weights");
        assert_eq!(
            std::str::from_utf8(config).unwrap(),
            format!(
                r#"{{"config":{{}},"descriptor":{{"licenses":["mit"],"name":"org/m"}},"modelfs":{{"diffIds":["{wdigest}"],"type":"layers"}}}}"#
            )
        );
        let m: serde_json::Value = serde_json::from_slice(blob_bytes(&a.blobs[0])).unwrap();
        let ann = &m["layers"][0]["annotations"];
        assert_eq!(ann[media::ANNOTATION_TITLE], "sub/w.safetensors");
        assert_eq!(ann["org.cncf.model.filepath"], "sub/w.safetensors");
        assert_eq!(m["config"]["digest"], Sha256::digest(config).to_string());
    }
}
