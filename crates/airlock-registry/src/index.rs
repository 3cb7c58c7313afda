//! The served view of the catalog: an immutable [`Snapshot`] built from the catalog's visible
//! artifacts and the manifests in the store, swapped atomically when the catalog changes.
//!
//! Only artifacts whose `visible` flag is set (their whole closure of blobs is present and
//! verified) contribute. A repository serves exactly the manifests and blobs reachable from
//! its visible artifacts (every version still visible, so digest-pinned pulls of an older
//! version keep working) plus the closures of artifacts whose `subject` points into it
//! (referrers). A blob present in the store but not reachable from a visible artifact of that
//! repository is `BLOB_UNKNOWN` there. Models are repositories too, named `models/ID` in lower
//! case ([`oci_model_name`]), besides their Hugging Face view ([`Snapshot::models`]).
//!
//! Manifests are at most [`MAX_MANIFEST`] bytes, re-verified against their digest when the
//! snapshot is built, and then served from memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use airlock_catalog::{ArtifactRow, Catalog};
use airlock_core::reference::ImageRef;
use airlock_core::{media, Digest};
use airlock_store::BlobStore;
use bytes::Bytes;
use serde_json::Value;

use crate::RegistryError;

/// Largest manifest or index the server reads into memory.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Files at least this large are LFS files on the Hugging Face endpoint (the Hub's rule for
/// files it refuses to store in git); smaller files are LFS only when their extension is one
/// the Hub's default `.gitattributes` tracks with LFS.
pub const LFS_THRESHOLD: u64 = 10 << 20;

/// A manifest or index held in memory.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Bytes,
}

/// One OCI repository (`HOST/PATH`).
#[derive(Debug, Default)]
pub struct Repo {
    /// tag → manifest digest (from the catalog's `names`).
    pub tags: BTreeMap<String, Digest>,
    pub manifests: HashMap<Digest, Manifest>,
    /// Non-manifest blobs reachable here, with their descriptor size.
    pub blobs: HashMap<Digest, u64>,
    /// subject digest → referrer descriptors (JSON objects), sorted by digest.
    pub referrers: HashMap<Digest, Vec<Value>>,
    /// A model served as an OCI repository (`models/…`, [`oci_model_name`]): answered only
    /// to clients the `hf` credentials admit as well.
    pub model: bool,
}

/// One file of a model.
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub path: String,
    pub digest: Digest,
    pub size: u64,
    pub lfs: bool,
    /// The git blob id (SHA-1 of `blob <size>\0<content>`), computed for non-LFS files.
    pub git_oid: Option<String>,
}

/// One revision of a model (one visible model artifact).
#[derive(Debug)]
pub struct ModelRevision {
    pub manifest: Digest,
    /// 40 hex: the upstream Hub commit (`dev.airlock.hf.commit`) when the model was mirrored
    /// from the Hub, else the first 160 bits of the manifest digest.
    pub sha: String,
    /// Sorted by path.
    pub files: Vec<ModelFile>,
}

/// A model repository: its current revision (`main`) and every visible revision by sha.
#[derive(Debug, Default)]
pub struct Model {
    pub main: Option<String>,
    pub revisions: BTreeMap<String, Arc<ModelRevision>>,
}

/// Everything the server answers from, built once per catalog change.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Full name (`registry.example/acme/hello`) → repository.
    pub repos: BTreeMap<String, Repo>,
    /// Path without the host (`acme/hello`) → full names having it.
    pub by_path: HashMap<String, Vec<String>>,
    pub models: BTreeMap<String, Model>,
    /// The apt repository over `.deb` file artifacts (when a signing key is configured).
    pub apt: Option<Arc<crate::apt::AptRepo>>,
}

/// What snapshot builds remember between catalog changes (by blob digest).
#[derive(Default)]
pub struct Caches {
    /// git blob ids of small model files.
    pub sha1: HashMap<Digest, String>,
    /// `control` paragraphs of `.deb` files, or why a file is not a usable `.deb`.
    pub control: HashMap<Digest, Result<String, String>>,
}

/// The first path component of every model repository under `/v2`. Image repositories are
/// stored under full names whose first component is a registry host (`docker.io`,
/// `registry.example`), which `models` never is, so the two cannot share a name.
pub const MODEL_NAMESPACE: &str = "models";

/// The OCI repository name a model is served under: `models/` and the repository id in lower
/// case (`BAAI/bge-small` → `models/baai/bge-small`), or `None` when the id is not a valid
/// OCI name even so (a part starting with `-` or `_`, `..`, `_-`).
pub fn oci_model_name(model: &str) -> Option<String> {
    let name = format!("{MODEL_NAMESPACE}/{}", model.to_ascii_lowercase());
    crate::oci::name_ok(&name).then_some(name)
}

/// The 40-hex revision id of a model manifest: stable (a pure function of the digest, which
/// is itself a pure function of the files) and unique in practice.
pub fn revision_of(d: &Digest) -> String {
    d.hex()[..40].to_string()
}

impl Snapshot {
    /// Finds the repository for a request path, applying the `ns` rule of docs/serving.md.
    pub fn repo(&self, path: &str, ns: Option<&str>) -> Option<&Repo> {
        if let Some(ns) = ns {
            let ns = if ns == airlock_core::reference::DOCKER_HUB_API {
                airlock_core::reference::DOCKER_HUB
            } else {
                ns
            };
            if let Some(r) = self.repos.get(&format!("{ns}/{path}")) {
                return Some(r);
            }
        }
        if let Some(r) = self.repos.get(path) {
            return Some(r);
        }
        match self.by_path.get(path).map(|v| v.as_slice()) {
            Some([only]) => self.repos.get(only),
            _ => None,
        }
    }

    /// Builds a snapshot from the catalog and the store. Problems with single artifacts are
    /// logged and the artifact left out, so one damaged manifest does not take the server down.
    pub fn build(
        catalog: &Catalog,
        store: &BlobStore,
        caches: &mut Caches,
        apt_key: Option<&crate::apt::AptKey>,
    ) -> Result<Snapshot, RegistryError> {
        Self::from_rows(
            catalog.names()?,
            &catalog.artifacts()?,
            store,
            caches,
            apt_key,
        )
    }

    /// [`Snapshot::build`] from the catalog's rows: `names` as (kind, name, digest), and the
    /// artifacts.
    pub fn from_rows(
        names: Vec<(String, String, String)>,
        artifacts: &[ArtifactRow],
        store: &BlobStore,
        caches: &mut Caches,
        apt_key: Option<&crate::apt::AptKey>,
    ) -> Result<Snapshot, RegistryError> {
        let sha1_cache = &mut caches.sha1;
        let mut debs = Vec::new();
        let mut closures: HashMap<Digest, Vec<crate::apt::Deb>> = HashMap::new();
        let mut snap = Snapshot::default();
        let mut reader = Reader {
            store,
            cache: HashMap::new(),
        };
        // Referrer candidates: every visible artifact whose root manifest has a subject.
        let mut subjects: Vec<(Digest, Digest)> = Vec::new();
        // Every served model revision: (model name, manifest digest, media type).
        let mut model_roots: Vec<(String, Digest, String)> = Vec::new();
        for a in artifacts.iter().filter(|a| a.visible) {
            let Ok(d) = a.digest.parse::<Digest>() else {
                tracing::warn!(artifact = %a.name, digest = %a.digest, "catalog digest unparsable; not served");
                continue;
            };
            let root = match reader.manifest(&d, &a.media_type) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(artifact = %a.name, error = %e, "manifest unreadable; not served");
                    continue;
                }
            };
            if let Some(s) = subject_of(&root.1) {
                subjects.push((d, s));
            }
            match a.kind.as_str() {
                "image" => {
                    let Ok(r) = a.name.parse::<ImageRef>() else {
                        tracing::warn!(artifact = %a.name, "not an image reference; not served");
                        continue;
                    };
                    let full = r.name();
                    let repo = snap.repos.entry(full.clone()).or_default();
                    if let Err(e) = reader.closure(&d, &a.media_type, repo) {
                        tracing::warn!(artifact = %a.name, error = %e, "closure unreadable; not served");
                    }
                }
                "model" => match model_revision(&d, &root.1, store, sha1_cache) {
                    Ok(rev) => {
                        model_roots.push((a.name.clone(), d, a.media_type.clone()));
                        let m = snap.models.entry(a.name.clone()).or_default();
                        m.revisions.insert(rev.sha.clone(), Arc::new(rev));
                    }
                    Err(e) => {
                        tracing::warn!(artifact = %a.name, error = %e, "model not served")
                    }
                },
                "debs" => {
                    // One layer per .deb, titled with its pool file name; served below as
                    // the suite the name table points at.
                    let debs: Vec<crate::apt::Deb> = root.1["layers"]
                        .as_array()
                        .map(|ls| ls.iter().filter_map(|l| deb_of_layer(l, "")).collect())
                        .unwrap_or_default();
                    closures.insert(d, debs);
                }
                "file" => {
                    // One layer; its title (or the artifact name) is the file name.
                    debs.extend(deb_of_layer(&root.1["layers"][0], &a.name));
                }
                _ => {}
            }
        }
        if let Some(key) = apt_key {
            let now = airlock_core::time::now();
            let mut suites = vec![crate::apt::Suite {
                name: crate::apt::SUITE.to_string(),
                debs,
            }];
            for (kind, name, digest) in &names {
                if kind != "debs" {
                    continue;
                }
                let closure = digest
                    .parse::<Digest>()
                    .ok()
                    .and_then(|d| closures.remove(&d));
                if let Some(debs) = closure {
                    suites.push(crate::apt::Suite {
                        name: name.clone(),
                        debs,
                    });
                }
            }
            snap.apt = Some(Arc::new(crate::apt::build(
                &suites,
                store,
                key,
                now,
                &mut caches.control,
            )?));
        }
        for (kind, name, digest) in names {
            let Ok(d) = digest.parse::<Digest>() else {
                continue;
            };
            match kind.as_str() {
                "image" => {
                    let Ok(r) = name.parse::<ImageRef>() else {
                        continue;
                    };
                    if let (Some(repo), Some(tag)) = (snap.repos.get_mut(&r.name()), r.tag) {
                        if repo.manifests.contains_key(&d) {
                            repo.tags.insert(tag, d);
                        }
                    }
                }
                "model" => {
                    if let Some(m) = snap.models.get_mut(&name) {
                        let sha = m
                            .revisions
                            .values()
                            .find(|r| r.manifest == d)
                            .map(|r| r.sha.clone());
                        if let Some(sha) = sha {
                            m.main = Some(sha);
                        }
                    }
                }
                _ => {}
            }
        }
        snap.add_model_repos(&model_roots, &mut reader);
        // Referrers: attach each to every repository holding its subject, with its closure.
        subjects.sort();
        for (d, subject) in subjects {
            let Some(m) = reader.cache.get(&d).cloned() else {
                continue;
            };
            let desc = referrer_descriptor(&d, &m);
            for repo in snap.repos.values_mut() {
                if repo.manifests.contains_key(&subject) {
                    if let Err(e) = reader.closure(&d, &m.0.media_type, repo) {
                        tracing::warn!(digest = %d, error = %e, "referrer closure unreadable");
                        continue;
                    }
                    repo.referrers
                        .entry(subject)
                        .or_default()
                        .push(desc.clone());
                }
            }
        }
        for (full, _) in snap.repos.iter().filter(|(_, r)| !r.model) {
            if let Ok(r) = format!("{full}:x").parse::<ImageRef>() {
                snap.by_path
                    .entry(r.repository.clone())
                    .or_default()
                    .push(full.clone());
            }
        }
        Ok(snap)
    }
}

impl Snapshot {
    /// Serves every model as an OCI repository ([`oci_model_name`]): each visible revision's
    /// closure, tagged with its revision id, and `latest` and `main` for the current revision.
    /// Two models whose ids differ only in case would share a name: neither is served under
    /// `/v2` (logged), as with an ambiguous short image name.
    fn add_model_repos(&mut self, roots: &[(String, Digest, String)], reader: &mut Reader) {
        let mut names: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for model in self.models.keys() {
            match oci_model_name(model) {
                Some(n) => names.entry(n).or_default().push(model),
                None => {
                    tracing::warn!(model = %model, "id is not a valid OCI name; not served under /v2")
                }
            }
        }
        for (oci, models) in names {
            let [model] = models.as_slice() else {
                tracing::warn!(repository = %oci, models = ?models, "model ids differ only in case; not served under /v2");
                continue;
            };
            let m = &self.models[*model];
            let mut repo = Repo {
                model: true,
                ..Repo::default()
            };
            for (_, d, media_type) in roots.iter().filter(|(n, _, _)| n == model) {
                if let Err(e) = reader.closure(d, media_type, &mut repo) {
                    tracing::warn!(model = %model, error = %e, "closure unreadable; not served under /v2");
                    repo.manifests.clear();
                    break;
                }
            }
            if repo.manifests.is_empty() {
                continue;
            }
            for (sha, rev) in &m.revisions {
                repo.tags.insert(sha.clone(), rev.manifest);
            }
            if let Some(rev) = m.main.as_ref().and_then(|s| m.revisions.get(s)) {
                repo.tags.insert("latest".into(), rev.manifest);
                repo.tags.insert("main".into(), rev.manifest);
            }
            self.repos.insert(oci, repo);
        }
    }
}

struct Reader<'a> {
    store: &'a BlobStore,
    cache: HashMap<Digest, (Manifest, Value)>,
}

impl Reader<'_> {
    fn manifest(&mut self, d: &Digest, hint: &str) -> Result<(Manifest, Value), RegistryError> {
        if let Some(m) = self.cache.get(d) {
            return Ok(m.clone());
        }
        let bytes = self.store.read_verified(d, MAX_MANIFEST)?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadBlob {
            digest: d.to_string(),
            reason: format!("not JSON: {e}"),
        })?;
        let media_type = v["mediaType"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                if !hint.is_empty() && (media::is_index(hint) || media::is_manifest(hint)) {
                    hint.to_string()
                } else if v.get("manifests").is_some() {
                    media::OCI_INDEX.to_string()
                } else {
                    media::OCI_MANIFEST.to_string()
                }
            });
        let m = (
            Manifest {
                media_type,
                bytes: Bytes::from(bytes),
            },
            v,
        );
        self.cache.insert(*d, m.clone());
        Ok(m)
    }

    /// Adds `d` and everything it references (children present in the store) to `repo`.
    fn closure(&mut self, d: &Digest, hint: &str, repo: &mut Repo) -> Result<(), RegistryError> {
        let mut stack = vec![(*d, hint.to_string())];
        while let Some((d, hint)) = stack.pop() {
            if repo.manifests.contains_key(&d) {
                continue;
            }
            let (m, v) = self.manifest(&d, &hint)?;
            repo.manifests.insert(d, m);
            for child in v["manifests"].as_array().into_iter().flatten() {
                let Some(cd) = child["digest"]
                    .as_str()
                    .and_then(|s| s.parse::<Digest>().ok())
                else {
                    continue;
                };
                let size = child["size"].as_u64().unwrap_or(0);
                // Platforms filtered out when packing are absent; the index still names them.
                if self.store.contains(&cd, size) {
                    let mt = child["mediaType"].as_str().unwrap_or("").to_string();
                    stack.push((cd, mt));
                }
            }
            let config = v.get("config").into_iter();
            let layers = v["layers"].as_array().into_iter().flatten();
            let blobs = v["blobs"].as_array().into_iter().flatten();
            for b in config.chain(layers).chain(blobs) {
                if let Some(bd) = b["digest"].as_str().and_then(|s| s.parse::<Digest>().ok()) {
                    repo.blobs.insert(bd, b["size"].as_u64().unwrap_or(0));
                }
            }
        }
        Ok(())
    }
}

fn subject_of(v: &Value) -> Option<Digest> {
    v.get("subject")?.get("digest")?.as_str()?.parse().ok()
}

/// The descriptor the referrers API lists for a referrer manifest.
fn referrer_descriptor(d: &Digest, m: &(Manifest, Value)) -> Value {
    let (man, v) = m;
    let artifact_type = v["artifactType"]
        .as_str()
        .or_else(|| v["config"]["mediaType"].as_str())
        .unwrap_or("");
    let mut desc = serde_json::json!({
        "mediaType": man.media_type,
        "digest": d.to_string(),
        "size": man.bytes.len(),
        "artifactType": artifact_type,
    });
    if let Some(a) = v.get("annotations") {
        desc["annotations"] = a.clone();
    }
    desc
}

/// Hub default `.gitattributes` extensions tracked by LFS regardless of size.
const LFS_EXTENSIONS: &[&str] = &[
    "7z",
    "arrow",
    "bin",
    "bz2",
    "ckpt",
    "ftz",
    "gguf",
    "gz",
    "h5",
    "joblib",
    "mlmodel",
    "model",
    "msgpack",
    "npy",
    "npz",
    "onnx",
    "ot",
    "parquet",
    "pb",
    "pickle",
    "pkl",
    "pt",
    "pth",
    "rar",
    "safetensors",
    "tar",
    "tflite",
    "tgz",
    "wasm",
    "xz",
    "zip",
    "zst",
];

/// Is `path` an LFS file on the Hub (by its default rules)?
pub fn is_lfs(path: &str, size: u64) -> bool {
    if size >= LFS_THRESHOLD {
        return true;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((_, ext)) => LFS_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()),
        None => false,
    }
}

/// A safe relative file path inside a model: `/`-separated, no empty, `.` or `..` parts, no
/// backslashes or control characters.
pub fn safe_rel_path(p: &str) -> bool {
    airlock_core::bounded::safe_rel_path(p)
}

fn model_revision(
    d: &Digest,
    v: &Value,
    store: &BlobStore,
    sha1_cache: &mut HashMap<Digest, String>,
) -> Result<ModelRevision, RegistryError> {
    let mut files = Vec::new();
    for l in v["layers"].as_array().into_iter().flatten() {
        let Some(path) = l["annotations"][media::ANNOTATION_TITLE].as_str() else {
            continue;
        };
        if !safe_rel_path(path) {
            return Err(RegistryError::BadBlob {
                digest: d.to_string(),
                reason: format!("layer title {path:?} is not a safe relative path"),
            });
        }
        let digest: Digest = l["digest"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| RegistryError::BadBlob {
                digest: d.to_string(),
                reason: format!("layer {path:?} has no valid digest"),
            })?;
        let size = l["size"].as_u64().unwrap_or(0);
        let lfs = is_lfs(path, size);
        let git_oid = if lfs {
            None
        } else if let Some(o) = sha1_cache.get(&digest) {
            Some(o.clone())
        } else {
            let o = git_blob_oid(store, &digest, size)?;
            sha1_cache.insert(digest, o.clone());
            Some(o)
        };
        files.push(ModelFile {
            path: path.to_string(),
            digest,
            size,
            lfs,
            git_oid,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    // A model mirrored from a Hugging Face Hub or cache is served under its upstream commit,
    // so clients pinned to that commit work offline unchanged.
    let upstream = v["annotations"]["dev.airlock.hf.commit"]
        .as_str()
        .filter(|c| {
            c.len() == 40
                && c.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    Ok(ModelRevision {
        manifest: *d,
        sha: upstream
            .map(str::to_string)
            .unwrap_or_else(|| revision_of(d)),
        files,
    })
}

/// git's blob id: SHA-1 over `blob <size>\0` and the content.
fn git_blob_oid(store: &BlobStore, d: &Digest, size: u64) -> Result<String, RegistryError> {
    use sha1::Digest as _;
    let bytes = store.read_verified(d, LFS_THRESHOLD)?;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {size}\0").as_bytes());
    h.update(&bytes);
    Ok(hex::encode(h.finalize()))
}

/// The `.deb` a layer names: its title (else `fallback`) must be a plain `.deb` file name.
fn deb_of_layer(layer: &serde_json::Value, fallback: &str) -> Option<crate::apt::Deb> {
    let title = layer["annotations"][media::ANNOTATION_TITLE]
        .as_str()
        .unwrap_or(fallback);
    let file_name = title.rsplit('/').next().unwrap_or(title);
    let ok_name = file_name.ends_with(".deb")
        && file_name.len() <= 255
        && !file_name.starts_with('.')
        && file_name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._+~-".contains(&c));
    let digest = layer["digest"].as_str()?.parse::<Digest>().ok()?;
    ok_name.then(|| crate::apt::Deb {
        file_name: file_name.to_string(),
        digest,
        size: layer["size"].as_u64().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfs_rule_and_safe_paths() {
        assert!(is_lfs("model.safetensors", 10));
        assert!(is_lfs("big.txt", LFS_THRESHOLD));
        assert!(!is_lfs("config.json", 1000));
        assert!(safe_rel_path("a/b.json"));
        for bad in ["", "/etc/passwd", "a/../b", "..", "a//b", "./a", "a\\b"] {
            assert!(!safe_rel_path(bad), "{bad}");
        }
    }

    #[test]
    fn model_ids_map_to_lower_case_oci_names_under_models() {
        assert_eq!(
            oci_model_name("BAAI/bge-small-en-v1.5").as_deref(),
            Some("models/baai/bge-small-en-v1.5")
        );
        assert_eq!(oci_model_name("gpt2").as_deref(), Some("models/gpt2"));
        for bad in ["-x/y", "acme/_m", "a..b", "a_-b", "acme/m."] {
            assert_eq!(oci_model_name(bad), None, "{bad}");
        }
    }
}
