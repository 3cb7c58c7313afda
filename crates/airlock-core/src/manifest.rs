//! The input manifest: what an operator asks `airlock` to carry across the gap.
//!
//! ```yaml
//! apiVersion: airlock/v1
//! kind: Bundle
//! metadata: {name: demo, version: "1.0.0", channel: stable}
//! spec:
//!   images:
//!     - ref: oci:./layouts/hello:v1
//!       name: registry.example/acme/hello:v1
//!   models:
//!     - name: acme/tiny-model
//!       source: dir:./models/tiny
//!   files:
//!     - name: k3s
//!       path: ./bin/k3s
//!       sha256: "<hex>"
//!     - name: k3s-airgap-images-amd64.tar.zst
//!       url: https://downloads.example/k3s-airgap-images-amd64.tar.zst
//!       sha256: "<hex>"          # required with url:
//!   debs:
//!     - name: gpu-stack          # the apt suite it is served under on the appliance
//!       arch: amd64
//!       sources:
//!         - {uri: http://mirror.example/debian, suite: bookworm, components: [main], keyring: ./archive.gpg}
//!       packages: [nvidia-driver, "nvidia-container-toolkit=1.17.8-1"]
//! ```
//!
//! Parsing is strict: an unknown key anywhere is an error naming the key and its line, so a typo
//! (`platfroms:`) never silently drops a constraint. Source strings are parsed into typed
//! [`ImageSource`]/[`ModelSource`] values here, once, so the rest of the code never re-parses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{CoreError, Digest};

pub const API_VERSION: &str = "airlock/v1";
pub const KIND: &str = "Bundle";

/// Upper bound on the size of a manifest file (it is operator-written YAML, not data).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InputManifest {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: Spec,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    #[serde(default = "default_channel")]
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn default_channel() -> String {
    "stable".to_string()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub images: Vec<ImageSpec>,
    #[serde(default)]
    pub models: Vec<ModelSpec>,
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// Debian package closures (`airlock sync` resolves and downloads them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub debs: Vec<DebsSpec>,
    /// Signed waivers for suspicious scan findings (carried into the bundle manifest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<crate::bundle::Waiver>,
    /// k3s GPU serving node profiles (`airlockd node render`); see [`crate::node`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<crate::node::NodeProfile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Where the image comes from: `oci:PATH[:TAG]`, `oci-archive:PATH[:TAG]`, or a registry
    /// reference `HOST[:PORT]/REPO[:TAG][@sha256:HEX]` (mirrored by `airlock sync`).
    #[serde(rename = "ref")]
    pub reference: String,
    /// The fully qualified name it is served and imported under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Keep only these platforms (`os/arch[/variant]`) of a multi-platform index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The repository id it is served under (`org/name`); for `hf:` and `hf-cache:` sources it
    /// defaults to the upstream repository id, so clients use the same id as online.
    #[serde(default)]
    pub name: String,
    /// `dir:PATH`, `hf:ORG/NAME[@REVISION]` or `hf-cache:PATH/models--ORG--NAME[@REVISION]`.
    pub source: String,
    /// Only files matching one of these globs (`*`, `?`, `**`); default: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Leave out files matching any of these globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// SPDX license id; overrides what the model card says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Where the model came from: datasets, code, hyperparameters, parent model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
}

/// Model lineage, carried signed into the bundle and queried with `airlockd lineage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// Datasets the model was trained or fine-tuned on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<DatasetRef>,
    /// The training code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeRef>,
    /// Free map of training hyperparameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hyperparameters: BTreeMap<String, serde_json::Value>,
    /// The model this one was derived from (a repository id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRef {
    /// Git repository URL or path.
    pub repository: String,
    pub commit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub name: String,
    /// A local file (relative to the manifest's directory). Exactly one of `path` and `url`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// An `http(s)://` URL `airlock sync` downloads into the store; `sha256` is then required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Expected SHA-256 (hex); packing fails when the file differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Largest number of requested packages, sources or components in one closure (operator
/// input, but bounded like everything else).
pub const MAX_DEBS_LIST: usize = 4096;

/// A Debian package closure: the requested packages and everything they need, resolved against
/// the given signed sources.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebsSpec {
    /// `[a-z0-9.-]`: the apt suite the closure is served under on the appliance.
    pub name: String,
    /// The target's native architecture (`amd64`); `all` packages are always considered.
    pub arch: String,
    pub sources: Vec<DebSource>,
    /// `name` or `name=version`.
    pub packages: Vec<String>,
    /// Follow `Recommends` as apt does by default (default: false, as `--no-install-recommends`).
    #[serde(default)]
    pub recommends: bool,
    /// A dpkg `status` file of the target OS: what it has installed is not carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

/// One apt source of a closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebSource {
    /// `http://`, `https://` or `file://`.
    pub uri: String,
    /// The distribution (`bookworm`); absent for a flat repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    /// A flat repository (`deb URI /`): `Release` and `Packages` sit at the URI itself.
    #[serde(default)]
    pub flat: bool,
    /// OpenPGP key(s) of this source, binary or armored: only these count.
    pub keyring: String,
}

impl DebsSpec {
    /// Checks names, sources and package requests (their syntax; versions are checked by the
    /// resolver).
    pub fn check(&self) -> Result<(), String> {
        check_suite_name(&self.name)?;
        let a = &self.arch;
        if a.is_empty()
            || a.len() > 32
            || a == "all"
            || !a
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        {
            return Err(format!("arch {a:?} is not a Debian architecture name"));
        }
        if self.sources.is_empty() || self.sources.len() > MAX_DEBS_LIST {
            return Err("sources: between 1 and 4096 sources".into());
        }
        if self.packages.is_empty() || self.packages.len() > MAX_DEBS_LIST {
            return Err("packages: between 1 and 4096 packages".into());
        }
        for (i, s) in self.sources.iter().enumerate() {
            s.check().map_err(|e| format!("sources[{i}]: {e}"))?;
        }
        for p in &self.packages {
            let (name, version) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p.as_str(), None),
            };
            let ok_name = name.len() >= 2
                && name.len() <= 128
                && name.as_bytes()[0].is_ascii_alphanumeric()
                && name
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(&c));
            let ok_version = version.is_none_or(|v| {
                !v.is_empty()
                    && v.len() <= 256
                    && v.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b".+-~:".contains(&c))
            });
            if !ok_name || !ok_version {
                return Err(format!(
                    "packages: {p:?} is not NAME or NAME=VERSION (Debian package name and version syntax)"
                ));
            }
        }
        Ok(())
    }
}

impl DebSource {
    fn check(&self) -> Result<(), String> {
        let u = &self.uri;
        if !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with("file://"))
            || u.len() > 2048
            || u.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "uri {u:?} must be an http://, https:// or file:// URI"
            ));
        }
        let word = |w: &str| {
            !w.is_empty()
                && w.len() <= 128
                && !w.starts_with('.')
                && !w.split('/').any(|c| c.is_empty() || c == "." || c == "..")
                && w.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"._+-/".contains(&c))
        };
        match (&self.suite, self.flat) {
            (Some(_), true) => return Err("a flat source has no suite".into()),
            (None, false) => return Err("suite is required (or flat: true)".into()),
            (Some(s), false) if !word(s) => return Err(format!("suite {s:?} is not valid")),
            _ => {}
        }
        if self.flat && !self.components.is_empty() {
            return Err("a flat source has no components".into());
        }
        if !self.flat && (self.components.is_empty() || self.components.len() > 64) {
            return Err("components: between 1 and 64 components".into());
        }
        for c in &self.components {
            if !word(c) {
                return Err(format!("component {c:?} is not valid"));
            }
        }
        if self.keyring.is_empty() {
            return Err(
                "keyring is required: a source's packages count only when signed by its own key"
                    .into(),
            );
        }
        Ok(())
    }
}

/// A closure name, which becomes an apt suite (`dists/NAME/`) on the appliance.
pub fn check_suite_name(n: &str) -> Result<(), String> {
    if n.is_empty()
        || n.len() > 64
        || !n
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        || n.starts_with(['.', '-'])
        || n == "airlock"
    {
        return Err(format!(
            "name {n:?} must be 1-64 characters of [a-z0-9.-], not starting with '.' or '-', and not \"airlock\" (the suite of single .deb files)"
        ));
    }
    Ok(())
}

/// Checks a `files:` URL: `http(s)://`, no whitespace, bounded.
pub fn check_url(u: &str) -> Result<(), String> {
    if !(u.starts_with("http://") || u.starts_with("https://"))
        || u.len() > 2048
        || u.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("url {u:?} must be an http:// or https:// URL"));
    }
    Ok(())
}

/// A parsed image source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An OCI image layout directory, optionally selecting one `ref.name` of its index.
    Layout { path: PathBuf, tag: Option<String> },
    /// An OCI image layout inside a (plain, uncompressed) tar file.
    Archive { path: PathBuf, tag: Option<String> },
    /// An image in an OCI distribution registry, mirrored into the local store by `airlock sync`.
    Registry(crate::reference::ImageRef),
}

/// A parsed model source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A directory; every regular file becomes one layer.
    Dir { path: PathBuf },
    /// A repository on a Hugging Face Hub (`HF_ENDPOINT`), pinned to the commit `revision`
    /// resolves to when `airlock sync` runs (default `main`).
    Hf { repo: String, revision: String },
    /// A local Hugging Face cache directory `models--ORG--NAME` (`blobs/`, `snapshots/`,
    /// `refs/`); `revision` is a branch in `refs/` or a 40-hex commit (default `main`).
    HfCache { path: PathBuf, revision: String },
}

impl InputManifest {
    /// Parses and validates manifest text. `file` names the source in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Self, CoreError> {
        let err = |message: String| CoreError::Manifest {
            file: file.to_string(),
            message,
        };
        let mut m: InputManifest = serde_norway::from_str(text).map_err(|e| err(e.to_string()))?;
        if m.api_version != API_VERSION {
            return Err(err(format!(
                "apiVersion is {:?}, expected {API_VERSION:?}",
                m.api_version
            )));
        }
        if m.kind != KIND {
            return Err(err(format!("kind is {:?}, expected {KIND:?}", m.kind)));
        }
        check_label("metadata.name", &m.metadata.name).map_err(err)?;
        check_label("metadata.channel", &m.metadata.channel).map_err(err)?;
        check_version("metadata.version", &m.metadata.version).map_err(err)?;
        let mut names = std::collections::BTreeSet::new();
        for (i, img) in m.spec.images.iter().enumerate() {
            img.source(Path::new("."))
                .map_err(|e| err(format!("spec.images[{i}].ref: {e}")))?;
            if let Some(n) = &img.name {
                check_reference(n).map_err(|e| err(format!("spec.images[{i}].name: {e}")))?;
            }
        }
        for (i, model) in m.spec.models.iter_mut().enumerate() {
            model
                .source(Path::new("."))
                .map_err(|e| err(format!("spec.models[{i}].source: {e}")))?;
            if model.name.is_empty() {
                model.name = model.upstream_repo().ok_or_else(|| {
                    err(format!(
                        "spec.models[{i}].name is required for dir: sources"
                    ))
                })?;
            }
            for g in model.include.iter().chain(&model.exclude) {
                if g.is_empty() || g.len() > 256 {
                    return Err(err(format!(
                        "spec.models[{i}]: glob {g:?} is empty or too long"
                    )));
                }
            }
            check_repo_id(&model.name).map_err(|e| err(format!("spec.models[{i}].name: {e}")))?;
            if !names.insert(format!("model:{}", model.name)) {
                return Err(err(format!(
                    "spec.models[{i}].name {:?} repeats",
                    model.name
                )));
            }
        }
        for (i, f) in m.spec.files.iter().enumerate() {
            check_label(&format!("spec.files[{i}].name"), &f.name).map_err(err)?;
            match (&f.url, f.path.is_empty()) {
                (Some(_), false) => {
                    return Err(err(format!(
                        "spec.files[{i}]: give either path or url, not both"
                    )))
                }
                (None, true) => {
                    return Err(err(format!("spec.files[{i}]: path or url is required")))
                }
                (Some(u), true) => {
                    check_url(u).map_err(|e| err(format!("spec.files[{i}].{e}")))?;
                    if f.sha256.is_none() {
                        return Err(err(format!(
                            "spec.files[{i}].sha256 is required with url: a download is pinned by its digest"
                        )));
                    }
                }
                (None, false) => {}
            }
            if let Some(h) = &f.sha256 {
                Digest::from_hex(h).map_err(|e| err(format!("spec.files[{i}].sha256: {e}")))?;
            }
            if !names.insert(format!("file:{}", f.name)) {
                return Err(err(format!("spec.files[{i}].name {:?} repeats", f.name)));
            }
        }
        for (i, d) in m.spec.debs.iter().enumerate() {
            d.check()
                .map_err(|e| err(format!("spec.debs[{i}] ({}): {e}", d.name)))?;
            if !names.insert(format!("debs:{}", d.name)) {
                return Err(err(format!("spec.debs[{i}].name {:?} repeats", d.name)));
            }
        }
        crate::node::check(&m.spec).map_err(err)?;
        Ok(m)
    }
}

impl ImageSpec {
    /// Parses `ref`, resolving relative paths against `base` (the manifest's directory).
    pub fn source(&self, base: &Path) -> Result<ImageSource, String> {
        let r = self.reference.as_str();
        let (kind, rest) = if let Some(rest) = r.strip_prefix("oci-archive:") {
            ("archive", rest)
        } else if let Some(rest) = r.strip_prefix("oci:") {
            ("layout", rest)
        } else {
            return r
                .parse::<crate::reference::ImageRef>()
                .map(ImageSource::Registry)
                .map_err(|e| {
                    format!(
                        "{e} (expected HOST/REPO[:TAG][@sha256:HEX], oci:PATH[:TAG] or oci-archive:PATH[:TAG])"
                    )
                });
        };
        let (path, tag) = split_tag(rest);
        if path.is_empty() {
            return Err(format!("{r:?}: empty path"));
        }
        let path = base.join(path);
        Ok(match kind {
            "archive" => ImageSource::Archive { path, tag },
            _ => ImageSource::Layout { path, tag },
        })
    }
}

impl ModelSpec {
    pub fn source(&self, base: &Path) -> Result<ModelSource, String> {
        let split_rev = |s: &str| -> (String, String) {
            match s.rsplit_once('@') {
                Some((a, r)) if !r.is_empty() => (a.to_string(), r.to_string()),
                _ => (s.to_string(), "main".to_string()),
            }
        };
        let check_rev = |r: &str| -> Result<(), String> {
            if r.is_empty()
                || r.len() > 256
                || r.starts_with('/')
                || r.split('/').any(|c| c.is_empty() || c == "." || c == "..")
                || !r
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"._-/".contains(&c))
            {
                return Err(format!(
                    "revision {r:?} is not a valid branch, tag or commit"
                ));
            }
            Ok(())
        };
        if let Some(p) = self.source.strip_prefix("dir:").filter(|p| !p.is_empty()) {
            return Ok(ModelSource::Dir { path: base.join(p) });
        }
        if let Some(rest) = self.source.strip_prefix("hf:") {
            let (repo, revision) = split_rev(rest);
            check_repo_id(&repo)?;
            check_rev(&revision)?;
            return Ok(ModelSource::Hf { repo, revision });
        }
        if let Some(rest) = self
            .source
            .strip_prefix("hf-cache:")
            .filter(|p| !p.is_empty())
        {
            let (path, revision) = split_rev(rest);
            check_rev(&revision)?;
            return Ok(ModelSource::HfCache {
                path: base.join(path),
                revision,
            });
        }
        Err(format!(
            "{:?}: unsupported model source (expected dir:PATH, hf:ORG/NAME[@REV] or hf-cache:PATH[@REV])",
            self.source
        ))
    }

    /// The repository id an `hf:` or `hf-cache:` source names (`models--ORG--NAME` → `ORG/NAME`).
    pub fn upstream_repo(&self) -> Option<String> {
        match self.source(Path::new(".")).ok()? {
            ModelSource::Hf { repo, .. } => Some(repo),
            ModelSource::HfCache { path, .. } => {
                let dir = path.file_name()?.to_str()?;
                let rest = dir.strip_prefix("models--")?;
                Some(rest.replacen("--", "/", 1))
            }
            ModelSource::Dir { .. } => None,
        }
    }
}

/// `PATH:TAG` → (PATH, Some(TAG)) when the part after the last `:` looks like a tag.
fn split_tag(s: &str) -> (&str, Option<String>) {
    match s.rsplit_once(':') {
        Some((p, t)) if !t.is_empty() && !t.contains('/') && !p.is_empty() => {
            (p, Some(t.to_string()))
        }
        _ => (s, None),
    }
}

pub fn check_label(field: &str, v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && !v.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} {v:?} must be 1-128 characters of [A-Za-z0-9._-], not starting with '.'"
        ))
    }
}

/// A bundle version. It goes into volume file names (`NAME-VERSION.volNofM.tar.zst`), so it is
/// limited like a name, with `+` allowed for semantic-version build metadata.
pub fn check_version(field: &str, v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'+'))
        && !v.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} {v:?} must be 1-128 characters of [A-Za-z0-9._+-], not starting with '.'"
        ))
    }
}

/// A Hugging Face style repository id: `name` or `org/name`.
pub fn check_repo_id(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split('/').collect();
    if parts.is_empty() || parts.len() > 2 {
        return Err(format!("{v:?} must be NAME or ORG/NAME"));
    }
    for p in parts {
        check_label("repository id part", p)?;
    }
    Ok(())
}

/// A container image reference `[HOST[:PORT]/]PATH[:TAG][@sha256:HEX]`, checked loosely but
/// safely: no whitespace, no `..` components, lowercase path components.
pub fn check_reference(v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 512 {
        return Err(format!("{v:?}: reference must be 1-512 characters"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{v:?}: whitespace in reference"));
    }
    let (name, _digest) = match v.split_once('@') {
        Some((n, d)) => {
            d.parse::<Digest>().map_err(|e| e.to_string())?;
            (n, Some(d))
        }
        None => (v, None),
    };
    let repo = match name.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => {
            if tag.is_empty()
                || tag.len() > 128
                || !tag
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
            {
                return Err(format!("{v:?}: invalid tag {tag:?}"));
            }
            r
        }
        _ => name,
    };
    for (i, comp) in repo.split('/').enumerate() {
        if comp.is_empty() || comp == "." || comp == ".." {
            return Err(format!("{v:?}: invalid path component {comp:?}"));
        }
        let host_like = i == 0 && (comp.contains('.') || comp.contains(':') || comp == "localhost");
        if !host_like
            && !comp.bytes().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
            })
        {
            return Err(format!(
                "{v:?}: repository component {comp:?} must be lowercase [a-z0-9._-]"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: airlock/v1
kind: Bundle
metadata: {name: demo, version: "1.0.0", channel: stable}
spec:
  images:
    - ref: oci:./layouts/hello:v1
      name: registry.example/acme/hello:v1
  models:
    - name: acme/tiny-model
      source: dir:./models/tiny
  files:
    - name: k3s
      path: ./bin/k3s
"#;

    #[test]
    fn parses_the_documented_shape() {
        let m = InputManifest::parse(GOOD, "m.yaml").unwrap();
        assert_eq!(m.metadata.channel, "stable");
        let src = m.spec.images[0].source(Path::new("/base")).unwrap();
        assert_eq!(
            src,
            ImageSource::Layout {
                path: "/base/./layouts/hello".into(),
                tag: Some("v1".into())
            }
        );
    }

    #[test]
    fn unknown_field_names_field_and_line() {
        let bad = GOOD.replace("      name: registry", "      nmae: registry");
        let e = InputManifest::parse(&bad, "m.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nmae"), "{e}");
        assert!(e.contains("line 8"), "{e}");
    }

    #[test]
    fn version_is_safe_in_file_names() {
        for v in [
            "1.0.0",
            "1.0.0-rc.1+build.5",
            "2026_01",
            "v1",
            &"9".repeat(128),
        ] {
            check_version("metadata.version", v).unwrap();
        }
        for v in [
            "",
            " ",
            ".1",
            "..",
            "1.0/../../x",
            "1.0 0",
            "1:0",
            "1.0\n",
            "é",
            &"9".repeat(129),
        ] {
            assert!(check_version("metadata.version", v).is_err(), "{v:?}");
        }
        let bad = GOOD.replace("version: \"1.0.0\"", "version: \"../../etc\"");
        let e = InputManifest::parse(&bad, "m.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("metadata.version"), "{e}");
        let ok = GOOD.replace("version: \"1.0.0\"", "version: \"1.0.0+git.abc\"");
        InputManifest::parse(&ok, "m.yaml").unwrap();
    }

    #[test]
    fn rejects_bad_references() {
        for r in ["Registry/UPPER:v1", "a/../b", "a b", "x:"] {
            assert!(check_reference(r).is_err(), "{r}");
        }
        for r in ["registry.example/acme/hello:v1", "localhost:5000/x@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"] {
            check_reference(r).unwrap();
        }
    }
}
