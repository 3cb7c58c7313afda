//! Models from the Hugging Face Hub (`hf:ORG/NAME[@REVISION]`) and from a local Hugging Face
//! cache (`hf-cache:PATH/models--ORG--NAME[@REVISION]`).
//!
//! Hub protocol (what `huggingface_hub` itself uses; the endpoint is `HF_ENDPOINT` or
//! `https://huggingface.co`, the token `HF_TOKEN` or `$HF_HOME/token`):
//! 1. `GET /api/models/{repo}/revision/{rev}` → the 40-hex commit `sha` the revision points to
//!    now; everything after is pinned to it.
//! 2. `GET /api/models/{repo}/tree/{sha}?recursive=true&expand=false`, following
//!    `Link: <…>; rel="next"`, for paths, sizes and LFS sha256s (falling back to `siblings`).
//! 3. `GET /{repo}/resolve/{sha}/{path}` per selected file, in parallel, resumed with `Range`
//!    from the bytes already on disk, verified against the LFS sha256 and the listed size.
//!
//! Downloaded files become blobs of the connected-side store; a record per commit
//! (`STORE/hf/models--ORG--NAME/{commit}.json`, plus `refs/{revision}`) lists them, so a second
//! sync downloads nothing and `airlock pack` builds the model artifact from the store.
//!
//! Everything from the hub is bounded (JSON sizes, entry counts, path rules) and verified.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_bundle::Progress;
use airlock_core::{Digest, Sha256};
use airlock_store::BlobStore;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::glob::Filter;
use crate::model::ModelFile;
use crate::partial::Partial;
use crate::MirrorError;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
const MAX_JSON: u64 = 16 << 20;
const MAX_ENTRIES: usize = 100_000;

/// A file of the upstream tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreeFile {
    pub path: String,
    pub size: u64,
    /// sha256 of LFS files (the hub stores large files in LFS and lists their hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs_sha256: Option<String>,
    /// git blob id (sha1) of non-LFS files, as the tree lists it; checked after download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_oid: Option<String>,
}

/// A file downloaded into the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredFile {
    pub path: String,
    pub digest: Digest,
    pub size: u64,
}

/// What the store holds of one repository at one commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelRecord {
    pub repo: String,
    pub revision: String,
    pub commit: String,
    pub endpoint: String,
    pub retrieved: String,
    pub tree: Vec<TreeFile>,
    pub files: Vec<StoredFile>,
}

/// Is `p` a safe relative path inside a repository? ([`airlock_core::bounded::safe_rel_path`])
pub fn safe_path(p: &str) -> bool {
    airlock_core::bounded::safe_rel_path(p)
}

fn is_commit(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

fn record_dir(store: &Path, repo: &str) -> PathBuf {
    store
        .join("hf")
        .join(format!("models--{}", repo.replace('/', "--")))
}

/// The record for `repo` at `revision` (a branch/tag resolved through `refs/`, or a commit).
pub fn load_record(
    store: &Path,
    repo: &str,
    revision: &str,
) -> Result<Option<ModelRecord>, MirrorError> {
    let dir = record_dir(store, repo);
    let commit = if is_commit(revision) {
        revision.to_string()
    } else {
        match fs::read_to_string(dir.join("refs").join(revision)) {
            Ok(c) if is_commit(c.trim()) => c.trim().to_string(),
            Ok(_) => {
                return Err(MirrorError::Invalid(format!(
                    "{}: corrupt ref {revision}",
                    dir.display()
                )))
            }
            Err(_) => return Ok(None),
        }
    };
    let p = dir.join(format!("{commit}.json"));
    match fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| MirrorError::Invalid(format!("{}: {e}", p.display()))),
        Err(_) => Ok(None),
    }
}

fn save_record(store: &Path, rec: &ModelRecord) -> Result<(), MirrorError> {
    let dir = record_dir(store, &rec.repo);
    fs::create_dir_all(dir.join("refs"))
        .map_err(MirrorError::io(&dir, "create record directory"))?;
    let json = serde_json::to_vec_pretty(rec).expect("record serializes");
    airlock_store::write_atomic(&dir.join(format!("{}.json", rec.commit)), &json).map_err(
        |source| MirrorError::Store {
            what: format!("model record {}", rec.repo),
            source,
        },
    )?;
    if !is_commit(&rec.revision) {
        airlock_store::write_atomic(&dir.join("refs").join(&rec.revision), rec.commit.as_bytes())
            .map_err(|source| MirrorError::Store {
            what: format!("model ref {}@{}", rec.repo, rec.revision),
            source,
        })?;
    }
    Ok(())
}

/// The files of a record that `filter` selects, as model files whose bytes are store blobs.
/// Errors when a selected file was never downloaded (sync with these patterns first).
pub fn record_files(
    store: &BlobStore,
    rec: &ModelRecord,
    filter: &Filter,
) -> Result<Vec<ModelFile>, MirrorError> {
    let stored: BTreeMap<&str, &StoredFile> =
        rec.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut out = Vec::new();
    for t in rec.tree.iter().filter(|t| filter.keeps(&t.path)) {
        let f = stored
            .get(t.path.as_str())
            .filter(|f| store.contains(&f.digest, f.size))
            .ok_or_else(|| {
                MirrorError::Invalid(format!(
                    "{}@{}: {} is not in the store; run `airlock sync` with these include/exclude patterns",
                    rec.repo, rec.commit, t.path
                ))
            })?;
        out.push(ModelFile {
            rel: f.path.clone(),
            digest: f.digest,
            size: f.size,
            data: crate::store_blob(store, &f.digest, f.size)?,
        });
    }
    if out.is_empty() {
        return Err(MirrorError::Invalid(format!(
            "{}@{}: no file matches the include/exclude patterns",
            rec.repo, rec.commit
        )));
    }
    Ok(out)
}

/// A Hugging Face cache snapshot: its directory and commit.
pub fn cache_snapshot(path: &Path, revision: &str) -> Result<(PathBuf, String), MirrorError> {
    let err = |detail: String| MirrorError::Source {
        what: "Hugging Face cache".into(),
        path: path.to_path_buf(),
        detail,
    };
    let commit = if is_commit(revision) {
        revision.to_string()
    } else {
        let r = path.join("refs").join(revision);
        let text = crate::local::read_small_file(&r, 128)
            .map_err(|e| err(format!("no ref {revision:?} ({e})")))?;
        let c = String::from_utf8_lossy(&text).trim().to_string();
        if !is_commit(&c) {
            return Err(err(format!("refs/{revision} does not hold a commit id")));
        }
        c
    };
    let dir = path.join("snapshots").join(&commit);
    if !dir.is_dir() {
        return Err(err(format!("no snapshot for commit {commit}")));
    }
    Ok((dir, commit))
}

/// Options of the hub client.
#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// `HF_ENDPOINT` when not given.
    pub endpoint: Option<String>,
    pub token: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// Parallel downloads (default 8).
    pub workers: usize,
    pub retries: u32,
}

pub struct Hub {
    agent: ureq::Agent,
    endpoint: String,
    token: Option<String>,
    workers: usize,
    retries: u32,
}

fn default_token() -> Option<String> {
    if let Ok(t) = std::env::var("HF_TOKEN") {
        if !t.trim().is_empty() {
            return Some(t.trim().to_string());
        }
    }
    let home = std::env::var_os("HF_HOME").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface"))
    })?;
    let t = crate::local::read_small_file(&home.join("token"), 4096).ok()?;
    let t = String::from_utf8(t).ok()?.trim().to_string();
    (!t.is_empty()).then_some(t)
}

/// Percent-encodes each segment of a repository path for a URL.
fn encode_path(p: &str) -> String {
    p.split('/')
        .map(|seg| {
            seg.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl Hub {
    pub fn new(opts: &HubOptions) -> Result<Self, MirrorError> {
        let endpoint = opts
            .endpoint
            .clone()
            .or_else(|| std::env::var("HF_ENDPOINT").ok())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim_end_matches('/')
            .to_string();
        let agent = crate::http_agent(opts.ca_file.as_deref())?;
        Ok(Hub {
            agent,
            endpoint,
            token: opts.token.clone().or_else(default_token),
            workers: if opts.workers == 0 { 8 } else { opts.workers },
            retries: opts.retries.max(1),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn get(
        &self,
        url: &str,
        range_from: Option<u64>,
    ) -> Result<ureq::http::Response<ureq::Body>, MirrorError> {
        let mut req = self.agent.get(url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(n) = range_from {
            req = req.header("Range", format!("bytes={n}-"));
        }
        req.call().map_err(|e| MirrorError::Transport {
            url: url.to_string(),
            detail: e.to_string(),
        })
    }

    /// Maps hub errors to messages naming the repository and the hub's `X-Error-Code`.
    fn check(
        &self,
        resp: &ureq::http::Response<ureq::Body>,
        url: &str,
        what: &str,
    ) -> Result<(), MirrorError> {
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let code = resp
            .headers()
            .get("x-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let detail = match (status, code.as_str()) {
            (401 | 403, _) | (_, "GatedRepo") => format!(
                "{what}: access denied{} (gated or private repository: accept its terms and set HF_TOKEN)",
                if code.is_empty() { String::new() } else { format!(" ({code})") }
            ),
            (404, "") => format!("{what}: not found"),
            (404, c) => format!("{what}: not found ({c})"),
            _ => format!("{what}{}", if code.is_empty() { String::new() } else { format!(" ({code})") }),
        };
        Err(MirrorError::Status {
            url: url.to_string(),
            status,
            detail,
        })
    }

    fn json(
        &self,
        url: &str,
        what: &str,
    ) -> Result<(serde_json::Value, Option<String>), MirrorError> {
        let resp = self.get(url, None)?;
        self.check(&resp, url, what)?;
        let next = resp
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let buf = crate::registry::read_bounded(resp, MAX_JSON, url)?;
        let v = serde_json::from_slice(&buf)
            .map_err(|e| MirrorError::Invalid(format!("{url}: not JSON: {e}")))?;
        Ok((v, next))
    }

    /// Resolves `revision` to its commit; also returns the `siblings` names (fallback listing).
    pub fn resolve(
        &self,
        repo: &str,
        revision: &str,
    ) -> Result<(String, Vec<String>), MirrorError> {
        let url = format!(
            "{}/api/models/{}/revision/{}",
            self.endpoint,
            repo,
            encode_path(revision)
        );
        let (v, _) = self.json(&url, &format!("model {repo} revision {revision}"))?;
        let sha = v["sha"].as_str().unwrap_or("").to_string();
        if !is_commit(&sha) {
            return Err(MirrorError::Invalid(format!(
                "{url}: `sha` is not a 40-hex commit id"
            )));
        }
        let siblings = v["siblings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["rfilename"].as_str().map(str::to_string))
            .collect();
        Ok((sha, siblings))
    }

    /// The recursive tree at `commit`, following pagination.
    pub fn tree(&self, repo: &str, commit: &str) -> Result<Option<Vec<TreeFile>>, MirrorError> {
        let mut url = format!(
            "{}/api/models/{repo}/tree/{commit}?recursive=true&expand=false",
            self.endpoint
        );
        let mut out = Vec::new();
        loop {
            let resp = self.get(&url, None)?;
            if resp.status().as_u16() == 404
                && out.is_empty()
                && resp.headers().get("x-error-code").is_none()
            {
                return Ok(None); // an old hub without the tree API
            }
            drop(resp);
            let (v, next) = self.json(&url, &format!("model {repo} tree at {commit}"))?;
            for e in v
                .as_array()
                .ok_or_else(|| MirrorError::Invalid(format!("{url}: tree is not a list")))?
            {
                if e["type"] != "file" {
                    continue;
                }
                let path = e["path"].as_str().unwrap_or("");
                if !safe_path(path) {
                    return Err(MirrorError::Invalid(format!(
                        "model {repo}: the tree lists an unsafe path {path:?} (absolute, `..`, or control characters); refused"
                    )));
                }
                let lfs = e["lfs"]["oid"].as_str().map(str::to_string);
                if let Some(h) = &lfs {
                    Digest::from_hex(h).map_err(|err| {
                        MirrorError::Invalid(format!("model {repo}: {path}: LFS oid {err}"))
                    })?;
                }
                out.push(TreeFile {
                    path: path.to_string(),
                    size: e["lfs"]["size"]
                        .as_u64()
                        .or_else(|| e["size"].as_u64())
                        .unwrap_or(0),
                    git_oid: match (&lfs, e["oid"].as_str()) {
                        (None, Some(o)) if is_commit(o) => Some(o.to_string()),
                        _ => None,
                    },
                    lfs_sha256: lfs,
                });
                if out.len() > MAX_ENTRIES {
                    return Err(MirrorError::Invalid(format!(
                        "model {repo}: more than {MAX_ENTRIES} files"
                    )));
                }
            }
            match next {
                Some(n) => {
                    url = if n.starts_with("http://") || n.starts_with("https://") {
                        n
                    } else {
                        format!("{}{n}", self.endpoint)
                    }
                }
                None => break,
            }
        }
        Ok(Some(out))
    }

    /// Downloads one file into the store (via `partial`, resuming), verifying size and, for
    /// LFS files, sha256. Returns its digest.
    fn download(
        &self,
        repo: &str,
        commit: &str,
        t: &TreeFile,
        store: &BlobStore,
        partial: &Path,
        progress: &dyn Progress,
    ) -> Result<Digest, MirrorError> {
        let url = format!(
            "{}/{repo}/resolve/{commit}/{}",
            self.endpoint,
            encode_path(&t.path)
        );
        let mut last = None;
        for attempt in 0..self.retries {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 << attempt.min(5)));
            }
            match self.download_once(&url, t, store, partial, progress) {
                Ok(d) => return Ok(d),
                Err(e) if e.is_transient() => {
                    tracing::warn!(file = %t.path, attempt = attempt + 1, "{e}; retrying");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn download_once(
        &self,
        url: &str,
        t: &TreeFile,
        store: &BlobStore,
        partial: &Path,
        progress: &dyn Progress,
    ) -> Result<Digest, MirrorError> {
        // Small (non-LFS) files are checked against the git blob id the tree lists.
        let git_oid = t
            .lfs_sha256
            .is_none()
            .then_some(t.git_oid.as_deref())
            .flatten();
        let mut p = Partial::open(partial, t.size, git_oid.is_some(), progress)?;
        if p.have() < t.size || t.size == 0 {
            let resume = (p.have() > 0).then_some(p.have());
            if let Some(at) = resume {
                tracing::info!(file = %t.path, offset = at, "resuming download");
            }
            let resp = self.get(url, resume)?;
            self.check(&resp, url, &t.path)?;
            let status = resp.status().as_u16();
            let cr = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            p.accept(status, cr.as_deref(), url)?;
            p.fill(resp.into_body().into_reader(), url, progress)?;
        }
        // No fsync per file: the connected-side store is a cache, and `airlock pack` hashes
        // every store blob it packs, so a file damaged by a crash is caught there, never
        // shipped. (The appliance's import does fsync: there the store is the record.)
        let (digest, git, f) = p.finish();
        drop(f);
        // Damaged bytes are never kept: the next attempt starts from zero.
        let refuse = |expected: String, found: String| {
            let _ = fs::remove_file(partial);
            MirrorError::Invalid(format!(
                "{} ({url}): content hashes to {found}, the tree lists {expected}",
                t.path
            ))
        };
        if let Some(want) = &t.lfs_sha256 {
            let want = Digest::from_hex(want).expect("checked when listed");
            if want != digest {
                let _ = fs::remove_file(partial);
                return Err(MirrorError::DigestMismatch {
                    what: format!("{} ({url})", t.path),
                    expected: want,
                    found: digest,
                });
            }
        } else if let (Some(want), Some(found)) = (git_oid, git) {
            if want != found {
                return Err(refuse(
                    format!("git blob {want}"),
                    format!("git blob {found}"),
                ));
            }
        }
        store
            .adopt_file(partial, &digest)
            .map_err(|source| MirrorError::Store {
                what: format!("{} ({url})", t.path),
                source,
            })?;
        Ok(digest)
    }

    /// Mirrors `repo` at `revision` into `store`: only the files `filter` keeps and the store
    /// lacks are downloaded. Returns the record and how many bytes were transferred.
    pub fn sync(
        &self,
        store: &BlobStore,
        repo: &str,
        revision: &str,
        filter: &Filter,
        retrieved: &str,
        progress: &dyn Progress,
    ) -> Result<(ModelRecord, u64), MirrorError> {
        let (commit, siblings) = self.resolve(repo, revision)?;
        let tree = match self.tree(repo, &commit)? {
            Some(t) => t,
            None => {
                // No tree API: list from siblings; sizes come from the download itself.
                let mut out = Vec::new();
                for s in siblings {
                    if !safe_path(&s) {
                        return Err(MirrorError::Invalid(format!(
                            "model {repo}: unsafe sibling path {s:?}; refused"
                        )));
                    }
                    let size = self.head_size(repo, &commit, &s)?;
                    out.push(TreeFile {
                        path: s,
                        size,
                        lfs_sha256: None,
                        git_oid: None,
                    });
                }
                out
            }
        };
        let dir = crate::store_dir(store)?;
        let previous = load_record(dir, repo, &commit)?;
        let known: BTreeMap<String, StoredFile> = previous
            .map(|r| r.files.into_iter().map(|f| (f.path.clone(), f)).collect())
            .unwrap_or_default();
        let wanted: Vec<&TreeFile> = tree.iter().filter(|t| filter.keeps(&t.path)).collect();
        if wanted.is_empty() {
            return Err(MirrorError::Invalid(format!(
                "model {repo}@{commit}: no file matches the include/exclude patterns"
            )));
        }
        let todo: Vec<&TreeFile> = wanted
            .iter()
            .copied()
            .filter(|t| {
                !known
                    .get(&t.path)
                    .is_some_and(|f| f.size == t.size && store.contains(&f.digest, f.size))
            })
            .collect();
        let partial_dir = dir.join("hf").join("partial");
        fs::create_dir_all(&partial_dir)
            .map_err(MirrorError::io(&partial_dir, "create partial directory"))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.workers)
            .build()
            .map_err(|e| MirrorError::Invalid(format!("thread pool: {e}")))?;
        let fetched: Vec<Result<StoredFile, MirrorError>> = pool.install(|| {
            todo.par_iter()
                .map(|t| {
                    let key =
                        Sha256::digest(format!("{repo}\0{commit}\0{}", t.path).as_bytes()).hex();
                    let digest =
                        self.download(repo, &commit, t, store, &partial_dir.join(key), progress)?;
                    Ok(StoredFile {
                        path: t.path.clone(),
                        digest,
                        size: t.size,
                    })
                })
                .collect()
        });
        let transferred: u64 = todo.iter().map(|t| t.size).sum();
        let mut files = known;
        let mut first_err = None;
        for r in fetched {
            match r {
                Ok(f) => {
                    files.insert(f.path.clone(), f);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        store.sync().map_err(|source| MirrorError::Store {
            what: "store".into(),
            source,
        })?;
        let rec = ModelRecord {
            repo: repo.to_string(),
            revision: revision.to_string(),
            commit: commit.clone(),
            endpoint: self.endpoint.clone(),
            retrieved: retrieved.to_string(),
            tree,
            files: files.into_values().collect(),
        };
        // Record what did arrive even when something failed, so a retry downloads only the rest.
        save_record(dir, &rec)?;
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok((rec, transferred))
    }

    fn head_size(&self, repo: &str, commit: &str, path: &str) -> Result<u64, MirrorError> {
        let url = format!(
            "{}/{repo}/resolve/{commit}/{}",
            self.endpoint,
            encode_path(path)
        );
        let mut req = self.agent.head(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req.call().map_err(|e| MirrorError::Transport {
            url: url.clone(),
            detail: e.to_string(),
        })?;
        self.check(&resp, &url, path)?;
        let h = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        h("x-linked-size")
            .or_else(|| h("content-length"))
            .ok_or_else(|| MirrorError::Invalid(format!("{url}: no size header")))
    }
}

/// `<url>; rel="next"` from a Link header.
fn next_link(h: &str) -> Option<String> {
    h.split(',').find_map(|part| {
        let (u, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            u.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_links() {
        assert!(
            safe_path("a/b.bin")
                && !safe_path("../x")
                && !safe_path("/etc/passwd")
                && !safe_path("a//b")
        );
        assert_eq!(
            next_link("<https://h/api/models/x/tree/abc?cursor=2>; rel=\"next\"").as_deref(),
            Some("https://h/api/models/x/tree/abc?cursor=2")
        );
        assert_eq!(encode_path("dir/my file.bin"), "dir/my%20file.bin");
    }
}
