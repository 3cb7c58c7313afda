//! `airlockd node render`: every file a k3s GPU node needs, written under a root directory as if
//! it were `/`, from one node profile and the content the appliance serves.
//!
//! | path on the node | from |
//! |---|---|
//! | `/usr/local/bin/k3s` (0755), `/usr/local/bin/k3s-install.sh` (0755) | the profile's `files:` entries |
//! | `/var/lib/rancher/k3s/agent/images/` | k3s's air-gap tarball as carried, and one single-platform archive per image the node runs ([`crate::archive`]) |
//! | `/etc/rancher/k3s/registries.yaml`, `airlock-ca.pem`, `config.yaml` | [`crate::k8s`] |
//! | `/var/lib/rancher/k3s/server/manifests/airlock-*.yaml` | [`crate::k8s::manifests`] (server only) |
//! | `/var/lib/airlock/models/<name>/<revision>/` | the model files, hard links into the store or copies, verified |
//! | `/etc/apt/sources.list.d/airlock.list`, `/etc/apt/keyrings/airlock.asc` | the GPU closure's suite and the appliance's apt key |
//! | `/etc/systemd/system/airlockd.service` | the appliance's server, with TLS (server only) |
//!
//! Rendering is deterministic: each file is produced in full (into a temporary file beside its
//! target when it is large), compared with what is there, and only a file whose bytes or mode
//! differ is replaced, by rename. A second render over the same root changes nothing and says so.
//! Every byte taken from the store is hashed on the way and checked against its digest.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use airlock_core::node::NodeProfile;
use airlock_core::reference::ImageRef;
use airlock_core::{Digest, Hashing, Sha256};
use airlock_registry::index::Snapshot;
use airlock_store::BlobStore;
use serde::Serialize;

use crate::archive;
use crate::k8s::{self, Endpoint, Role};
use crate::NodeError;

/// Where apt's keyring for the appliance suite is written.
pub const APT_KEYRING: &str = "/etc/apt/keyrings/airlock.asc";
/// Where the installer is written.
pub const INSTALLER: &str = "/usr/local/bin/k3s-install.sh";
/// Where the apt source list is written.
pub const APT_LIST: &str = "/etc/apt/sources.list.d/airlock.list";
/// Largest file artifact manifest or closure record read into memory.
const MAX_RECORD: u64 = 64 << 20;

/// What the appliance serves, as render needs it.
pub struct Content<'a> {
    pub store: &'a BlobStore,
    /// The served name table: (kind, name, root digest).
    pub names: &'a [(String, String, String)],
    /// The served view (models and their files).
    pub snapshot: &'a Snapshot,
    /// The appliance CA certificate (PEM), for registries.yaml.
    pub ca_pem: Option<Vec<u8>>,
    /// The appliance's apt signing key, armored.
    pub apt_key: Option<String>,
    /// The appliance's public key (PEM), for a profile that runs the appliance as replicas.
    pub appliance_pub: Option<String>,
}

/// How to render.
pub struct Options {
    pub root: PathBuf,
    pub endpoint: Endpoint,
    pub role: Role,
    /// The appliance data directory on the node (for the airlockd unit).
    pub data_dir: String,
    /// The address the airlockd unit listens on.
    pub listen: String,
}

/// One file written (or found up to date).
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    /// The path on the node (`/etc/rancher/k3s/config.yaml`).
    pub path: String,
    pub size: u64,
    pub mode: String,
    pub sha256: String,
    /// Replaced or created by this render.
    pub changed: bool,
    /// Where the bytes came from (`file k3s`, `image …`, `model …`, `generated`).
    pub from: String,
}

/// The outcome of a render.
#[derive(Debug, Clone, Serialize)]
pub struct Rendered {
    pub profile: String,
    pub role: String,
    pub root: String,
    /// The Kubernetes version the manifests target.
    pub kubernetes: String,
    pub files: Vec<FileResult>,
    pub changed: usize,
    /// The GPU closure's requested packages (what `node install` asks apt for).
    pub packages: Vec<String>,
    /// The GPU closure's suite, when the profile has one.
    pub suite: Option<String>,
}

/// Renders profile `p` under `o.root`.
pub fn render(p: &NodeProfile, c: &Content<'_>, o: &Options) -> Result<Rendered, NodeError> {
    let mut w = Writer {
        root: o.root.clone(),
        out: Vec::new(),
    };
    let names: BTreeMap<(&str, &str), Digest> = c
        .names
        .iter()
        .filter_map(|(k, n, d)| Some(((k.as_str(), n.as_str()), d.parse().ok()?)))
        .collect();
    let served = |kind: &str, name: &str| {
        names.get(&(kind, name)).copied().ok_or_else(|| {
            NodeError::Invalid(format!(
                "profile {}: the appliance serves no {kind} named {name:?}; import the bundle that carries it",
                p.name
            ))
        })
    };
    let file_blob = |name: &str| -> Result<(Digest, u64), NodeError> {
        let root = served("file", name)?;
        let m: airlock_core::oci::Manifest = serde_json::from_slice(
            &c.store
                .read_verified(&root, MAX_RECORD)
                .map_err(|e| NodeError::Invalid(format!("file {name}: {e}")))?,
        )
        .map_err(|e| NodeError::Invalid(format!("file {name}: manifest: {e}")))?;
        let l = m
            .layers
            .first()
            .filter(|_| m.layers.len() == 1)
            .ok_or_else(|| {
                NodeError::Invalid(format!("file {name}: not a one-layer file artifact"))
            })?;
        Ok((l.digest, l.size))
    };

    // k3s itself.
    let (d, size) = file_blob(&p.k3s.binary)?;
    w.blob(
        c.store,
        "/usr/local/bin/k3s",
        0o755,
        d,
        size,
        false,
        &format!("file {}", p.k3s.binary),
    )?;
    let (d, size) = file_blob(&p.k3s.installer)?;
    w.blob(
        c.store,
        INSTALLER,
        0o755,
        d,
        size,
        false,
        &format!("file {}", p.k3s.installer),
    )?;
    let images_dir = "/var/lib/rancher/k3s/agent/images";
    if let Some(a) = &p.k3s.airgap_images {
        let (d, size) = file_blob(a)?;
        let mut f = c
            .store
            .read(&d)
            .map_err(|e| NodeError::Invalid(format!("file {a}: {e}")))?;
        let mut head = [0u8; 4];
        let n = read_up_to(&mut f, &mut head).map_err(NodeError::io(format!("read file {a}")))?;
        drop(f);
        let ext = match &head[..n] {
            [0x28, 0xb5, 0x2f, 0xfd] => ".tar.zst",
            [0x1f, 0x8b, ..] => ".tar.gz",
            _ => ".tar",
        };
        let base = a
            .trim_end_matches(".zst")
            .trim_end_matches(".gz")
            .trim_end_matches(".tar");
        let node_path = format!("{images_dir}/{base}{ext}");
        let from = format!("file {a}");
        if ext != ".tar.zst" {
            w.blob(c.store, &node_path, 0o644, d, size, false, &from)?;
        } else if let Some(local) = c.store.local_path(&d) {
            check_k3s_window(a, &local)?;
            w.blob(c.store, &node_path, 0o644, d, size, false, &from)?;
        } else {
            // An object store keeps no local file: check the copy just written, and take it
            // back when k3s could not read it.
            w.blob(c.store, &node_path, 0o644, d, size, false, &from)?;
            let host = w.host(&node_path);
            if let Err(e) = check_k3s_window(a, &host) {
                let _ = std::fs::remove_file(&host);
                w.out.pop();
                return Err(e);
            }
        }
    }
    for img in p.images() {
        let full = k8s::image_name(img);
        let root = served("image", &full)?;
        let (desc, m) = archive::select_platform(c.store, &root, &p.arch)?;
        let file = format!("{images_dir}/airlock-{}.tar", file_label(&full));
        w.stream(&file, 0o644, &format!("image {full}"), |out| {
            archive::write_image_archive(c.store, &full, &desc, &m, out).map(|_| ())
        })?;
    }

    // Registries, CA, config.
    let upstreams: BTreeSet<String> = c
        .names
        .iter()
        .filter(|(k, _, _)| k == "image")
        .filter_map(|(_, n, _)| n.parse::<ImageRef>().ok())
        .map(|r| r.registry)
        .collect();
    w.bytes(
        "/etc/rancher/k3s/registries.yaml",
        0o600,
        k8s::registries_yaml(&upstreams, &o.endpoint).as_bytes(),
        "generated",
    )?;
    if o.endpoint.url.starts_with("https://") {
        let ca = c.ca_pem.as_deref().ok_or_else(|| {
            NodeError::Invalid("the appliance has no CA (DATA/tls/ca.pem); run `airlockd init` with TLS or give an http:// endpoint".into())
        })?;
        w.bytes(k8s::CA_FILE, 0o644, ca, "appliance tls/ca.pem")?;
    }
    w.bytes(
        "/etc/rancher/k3s/config.yaml",
        0o600,
        k8s::config_yaml(p, &o.role).as_bytes(),
        "generated",
    )?;

    // Models staged on the node.
    let mut revisions = BTreeMap::new();
    for wl in &p.workloads {
        let Some(model) = &wl.model else { continue };
        let m = c.snapshot.models.get(model).ok_or_else(|| {
            NodeError::Invalid(format!(
                "profile {}: workload {}: the appliance serves no model named {model:?}",
                p.name, wl.name
            ))
        })?;
        let rev = m
            .main
            .as_ref()
            .and_then(|s| m.revisions.get(s))
            .ok_or_else(|| NodeError::Invalid(format!("model {model}: no current revision")))?;
        revisions.insert(model.clone(), rev.sha.clone());
        if wl.model_delivery != airlock_core::node::ModelDelivery::HostPath {
            continue;
        }
        for f in &rev.files {
            check_rel(&f.path).map_err(|e| {
                NodeError::Invalid(format!("model {model}: file {:?}: {e}", f.path))
            })?;
            let path = format!("{}/{model}/{}/{}", k8s::MODELS_DIR, rev.sha, f.path);
            w.blob(
                c.store,
                &path,
                0o444,
                f.digest,
                f.size,
                true,
                &format!("model {model}"),
            )?;
        }
    }

    // The GPU stack's apt suite.
    let mut packages = Vec::new();
    let mut suite = None;
    if let Some(g) = &p.gpu {
        let rec = closure_record(c.store, c.names, &g.debs)?;
        packages = rec.requested.clone();
        suite = Some(g.debs.clone());
        let key = c.apt_key.as_deref().ok_or_else(|| {
            NodeError::Invalid(
                "the appliance has no apt signing key (DATA/keys/apt-signing.pub.asc)".into(),
            )
        })?;
        w.bytes(APT_KEYRING, 0o644, key.as_bytes(), "appliance apt key")?;
        w.bytes(
            APT_LIST,
            0o644,
            k8s::apt_list(&o.endpoint, &g.debs, APT_KEYRING).as_bytes(),
            "generated",
        )?;
    }

    if o.role == Role::Server {
        if p.appliance.is_some() && c.appliance_pub.is_none() {
            return Err(NodeError::Invalid(
                "the profile runs appliance replicas but the appliance public key is unreadable"
                    .into(),
            ));
        }
        for (name, text) in k8s::manifests(p, &o.endpoint, &revisions, c.appliance_pub.as_deref()) {
            w.bytes(
                &format!("/var/lib/rancher/k3s/server/manifests/{name}"),
                0o600,
                text.as_bytes(),
                "generated",
            )?;
        }
        w.bytes(
            "/etc/systemd/system/airlockd.service",
            0o644,
            k8s::airlockd_unit(&o.data_dir, &o.listen).as_bytes(),
            "generated",
        )?;
    }

    let mut files = w.out;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Rendered {
        profile: p.name.clone(),
        role: match &o.role {
            Role::Server => "server".into(),
            Role::Agent { .. } => "agent".into(),
        },
        root: o.root.display().to_string(),
        kubernetes: p.kubernetes_version(),
        changed: files.iter().filter(|f| f.changed).count(),
        files,
        packages,
        suite,
    })
}

/// Refuses a zstd file (the air-gap tarball `name`, at `path`) whose window k3s cannot decode.
fn check_k3s_window(name: &str, path: &Path) -> Result<(), NodeError> {
    let f = File::open(path).map_err(NodeError::io(format!("open {}", path.display())))?;
    let window = archive::zstd_max_window(std::io::BufReader::new(f))
        .map_err(|e| NodeError::Invalid(format!("file {name}: not a readable zstd file: {e}")))?
        .unwrap_or(0);
    if window > archive::K3S_MAX_ZSTD_WINDOW {
        return Err(NodeError::Invalid(format!(
            "file {name}: its zstd window is {} MiB, k3s reads at most {} MiB (\"window size exceeded\"); recompress it without --long (e.g. `zstd -d | zstd -T0 -19`) and carry it again",
            window >> 20,
            archive::K3S_MAX_ZSTD_WINDOW >> 20
        )));
    }
    Ok(())
}

/// The resolution record of the served Debian closure `name` (its requested packages, and every
/// package with its version).
pub fn closure_record(
    store: &BlobStore,
    names: &[(String, String, String)],
    name: &str,
) -> Result<airlock_core::debs::ClosureRecord, NodeError> {
    let root: Digest = names
        .iter()
        .find(|(k, n, _)| k == "debs" && n == name)
        .and_then(|(_, _, d)| d.parse().ok())
        .ok_or_else(|| {
            NodeError::Invalid(format!(
                "the appliance serves no debs closure named {name:?}; import the bundle that carries it"
            ))
        })?;
    let m: airlock_core::oci::Manifest = serde_json::from_slice(
        &store
            .read_verified(&root, MAX_RECORD)
            .map_err(|e| NodeError::Invalid(format!("debs {name}: {e}")))?,
    )
    .map_err(|e| NodeError::Invalid(format!("debs {name}: manifest: {e}")))?;
    serde_json::from_slice(
        &store
            .read_verified(&m.config.digest, MAX_RECORD)
            .map_err(|e| NodeError::Invalid(format!("debs {name}: record: {e}")))?,
    )
    .map_err(|e| NodeError::Invalid(format!("debs {name}: record: {e}")))
}

/// Kernel versions a closure carries headers for (`linux-headers-6.1.0-28-amd64` →
/// `6.1.0-28-amd64`); the `-common` and architecture meta packages are not kernels.
pub fn kernel_headers(rec: &airlock_core::debs::ClosureRecord) -> Vec<String> {
    rec.packages
        .iter()
        .filter_map(|p| p.name.strip_prefix("linux-headers-"))
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()) && !v.ends_with("-common"))
        .map(str::to_string)
        .collect()
}

/// `docker.io/vllm/vllm-openai:v0.9.1` → `docker.io-vllm-vllm-openai-v0.9.1`.
pub fn file_label(r: &str) -> String {
    let s: String = r
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    s.trim_matches('-').to_string()
}

/// A relative path of normal components only.
fn check_rel(p: &str) -> Result<(), String> {
    let path = Path::new(p);
    if p.is_empty() || p.len() > 1024 || p.contains('\0') {
        return Err("empty, too long or with NUL".into());
    }
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err("not a plain relative path".into());
    }
    Ok(())
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

struct Writer {
    root: PathBuf,
    out: Vec<FileResult>,
}

impl Writer {
    /// The host path of node path `p` (absolute, `/`-separated, no `..`).
    fn host(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn record(&mut self, p: &str, size: u64, mode: u32, sha: Digest, changed: bool, from: &str) {
        self.out.push(FileResult {
            path: p.to_string(),
            size,
            mode: format!("{mode:04o}"),
            sha256: sha.hex(),
            changed,
            from: from.to_string(),
        });
    }

    fn parent(&self, p: &str) -> Result<PathBuf, NodeError> {
        let host = self.host(p);
        let dir = host
            .parent()
            .expect("node paths have a parent")
            .to_path_buf();
        fs::create_dir_all(&dir).map_err(NodeError::io(format!("create {}", dir.display())))?;
        Ok(host)
    }

    /// Small generated content.
    fn bytes(&mut self, p: &str, mode: u32, data: &[u8], from: &str) -> Result<(), NodeError> {
        let host = self.parent(p)?;
        let same = match fs::symlink_metadata(&host) {
            Ok(md) if md.is_file() && md.len() == data.len() as u64 => {
                fs::read(&host).map(|b| b == data).unwrap_or(false) && md.mode() & 0o7777 == mode
            }
            _ => false,
        };
        if !same {
            let tmp = tmp_path(&host);
            let res = (|| {
                let mut f = File::create(&tmp)?;
                f.write_all(data)?;
                f.set_permissions(fs::Permissions::from_mode(mode))?;
                f.sync_all()?;
                fs::rename(&tmp, &host)
            })();
            if let Err(e) = res {
                let _ = fs::remove_file(&tmp);
                return Err(NodeError::io(format!("write {}", host.display()))(e));
            }
        }
        self.record(
            p,
            data.len() as u64,
            mode,
            Sha256::digest(data),
            !same,
            from,
        );
        Ok(())
    }

    /// A store blob, copied (or hard linked when `link` and the store is on the same
    /// filesystem), verified against its digest.
    #[allow(clippy::too_many_arguments)]
    fn blob(
        &mut self,
        store: &BlobStore,
        p: &str,
        mode: u32,
        d: Digest,
        size: u64,
        link: bool,
        from: &str,
    ) -> Result<(), NodeError> {
        let host = self.parent(p)?;
        let src = store.local_path(&d);
        if let Ok(md) = fs::symlink_metadata(&host) {
            if md.is_file() && md.len() == size && md.mode() & 0o7777 == mode {
                let linked = src
                    .as_ref()
                    .and_then(|s| fs::metadata(s).ok())
                    .is_some_and(|s| s.ino() == md.ino() && s.dev() == md.dev());
                if linked || file_digest(&host) == Some(d) {
                    self.record(p, size, mode, d, false, from);
                    return Ok(());
                }
            }
        }
        let tmp = tmp_path(&host);
        let _ = fs::remove_file(&tmp);
        let res = (|| -> Result<(), NodeError> {
            let linked = link
                && src.as_ref().is_some_and(|s| {
                    fs::hard_link(s, &tmp).is_ok()
                        && fs::metadata(&tmp).is_ok_and(|m| m.mode() & 0o7777 == mode)
                });
            if linked {
                // The store verified the blob when it was imported; check it again here, once,
                // because the node will read it without asking.
                let (got, _) = airlock_store::hash_file(&tmp)
                    .map_err(|e| NodeError::Invalid(e.to_string()))?;
                if got != d {
                    return Err(NodeError::Invalid(format!(
                        "blob {d} in the store reads as {got}; run `airlockd fsck`"
                    )));
                }
            } else {
                let _ = fs::remove_file(&tmp);
                let r = store
                    .read(&d)
                    .map_err(|e| NodeError::Invalid(format!("{from}: blob {d}: {e}")))?;
                let mut f = File::create(&tmp)
                    .map_err(NodeError::io(format!("create {}", tmp.display())))?;
                let mut h = Hashing::new(&mut f);
                std::io::copy(&mut r.take(size), &mut h)
                    .map_err(NodeError::io(format!("copy blob {d} to {}", tmp.display())))?;
                let (_, got, n) = h.finish();
                if got != d || n != size {
                    return Err(NodeError::Invalid(format!(
                        "{from}: blob {d} in the store reads as {got} ({n} bytes); run `airlockd fsck`"
                    )));
                }
                f.set_permissions(fs::Permissions::from_mode(mode))
                    .and_then(|_| f.sync_all())
                    .map_err(NodeError::io(format!("write {}", tmp.display())))?;
            }
            fs::rename(&tmp, &host).map_err(NodeError::io(format!("rename to {}", host.display())))
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.record(p, size, mode, d, true, from);
        Ok(())
    }

    /// Content produced by `make` into a temporary file, kept only when it differs.
    fn stream(
        &mut self,
        p: &str,
        mode: u32,
        from: &str,
        make: impl FnOnce(&mut dyn Write) -> Result<(), NodeError>,
    ) -> Result<(), NodeError> {
        let host = self.parent(p)?;
        let tmp = tmp_path(&host);
        let res = (|| -> Result<(Digest, u64), NodeError> {
            let f =
                File::create(&tmp).map_err(NodeError::io(format!("create {}", tmp.display())))?;
            let mut h = Hashing::new(std::io::BufWriter::with_capacity(1 << 20, f));
            make(&mut h)?;
            let (w, d, n) = h.finish();
            let f = w
                .into_inner()
                .map_err(|e| NodeError::io(format!("write {}", tmp.display()))(e.into_error()))?;
            f.set_permissions(fs::Permissions::from_mode(mode))
                .and_then(|_| f.sync_all())
                .map_err(NodeError::io(format!("write {}", tmp.display())))?;
            Ok((d, n))
        })();
        let (d, n) = match res {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let same = fs::symlink_metadata(&host)
            .is_ok_and(|md| md.is_file() && md.len() == n && md.mode() & 0o7777 == mode)
            && file_digest(&host) == Some(d);
        if same {
            let _ = fs::remove_file(&tmp);
        } else {
            fs::rename(&tmp, &host)
                .map_err(NodeError::io(format!("rename to {}", host.display())))?;
        }
        self.record(p, n, mode, d, !same, from);
        Ok(())
    }
}

fn tmp_path(host: &Path) -> PathBuf {
    let name = host
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    host.with_file_name(format!(".{name}.airlock-tmp"))
}

/// The digest of the file at `p`, if it can be read.
fn file_digest(p: &Path) -> Option<Digest> {
    airlock_store::hash_file(p).ok().map(|(d, _)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_file_labels_are_rfc1123_like() {
        assert_eq!(
            file_label("docker.io/vllm/vllm-openai:v0.9.1"),
            "docker.io-vllm-vllm-openai-v0.9.1"
        );
        assert_eq!(
            file_label("127.0.0.1:5000/A/b@sha256:ab"),
            "127.0.0.1-5000-a-b-sha256-ab"
        );
    }

    #[test]
    fn generated_files_are_rewritten_only_when_they_differ() {
        let d = tempfile::tempdir().unwrap();
        let mut w = Writer {
            root: d.path().to_path_buf(),
            out: Vec::new(),
        };
        w.bytes("/etc/x/a.yaml", 0o600, b"one", "generated")
            .unwrap();
        w.bytes("/etc/x/a.yaml", 0o600, b"one", "generated")
            .unwrap();
        w.bytes("/etc/x/a.yaml", 0o644, b"one", "generated")
            .unwrap();
        w.bytes("/etc/x/a.yaml", 0o644, b"two", "generated")
            .unwrap();
        let changed: Vec<bool> = w.out.iter().map(|f| f.changed).collect();
        assert_eq!(changed, [true, false, true, true]);
        let md = fs::metadata(d.path().join("etc/x/a.yaml")).unwrap();
        assert_eq!(md.mode() & 0o777, 0o644);
        w.stream("/var/a.tar", 0o644, "t", |o| {
            o.write_all(b"abc").map_err(NodeError::io("w"))
        })
        .unwrap();
        w.stream("/var/a.tar", 0o644, "t", |o| {
            o.write_all(b"abc").map_err(NodeError::io("w"))
        })
        .unwrap();
        assert!(w.out[4].changed && !w.out[5].changed);
        // A failing producer leaves the old file and no temporary.
        let e = w.stream("/var/a.tar", 0o644, "t", |_| {
            Err(NodeError::Invalid("boom".into()))
        });
        assert!(e.is_err());
        assert_eq!(fs::read(d.path().join("var/a.tar")).unwrap(), b"abc");
        assert_eq!(fs::read_dir(d.path().join("var")).unwrap().count(), 1);
    }

    #[test]
    fn model_paths_must_stay_inside() {
        for bad in ["../x", "/etc/passwd", "a/../../b", ""] {
            assert!(check_rel(bad).is_err(), "{bad}");
        }
        assert!(check_rel("sub/model.safetensors").is_ok());
    }
}
