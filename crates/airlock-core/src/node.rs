//! Node profiles: what turns an appliance into a k3s GPU serving node, written in the input
//! manifest and signed into the bundle manifest, so the rack installs exactly what was approved.
//!
//! ```yaml
//! nodes:
//!   - name: gpu-node
//!     arch: amd64
//!     k3s:
//!       binary: k3s                    # `files:` entries
//!       airgapImages: k3s-airgap-images
//!       installer: k3s-install
//!       version: v1.31.4+k3s1          # the Kubernetes version manifests are rendered for
//!       config: {disable: [traefik]}   # merged into /etc/rancher/k3s/config.yaml
//!     gpu:
//!       vendor: nvidia
//!       debs: gpu-stack                # a `debs:` closure (driver and container toolkit)
//!       devicePlugin: nvcr.io/nvidia/k8s-device-plugin:v0.17.1   # an `images:` entry
//!     workloads:
//!       - name: chat
//!         runtime: vllm                # vllm | triton | custom
//!         image: docker.io/vllm/vllm-openai:v0.9.1
//!         model: acme/tiny-model       # a `models:` entry
//!         gpus: 1
//!         port: 8000
//! ```
//!
//! Every reference must resolve inside the same manifest: [`check`] names the dangling one.
//! The disconnected side resolves the same names against what it serves when it renders the
//! node, so a profile can only ever name content that crossed the gap signed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::manifest::{check_label, Spec};
use crate::reference::ImageRef;

/// The Kubernetes version manifests are checked against when a profile names no k3s version.
pub const DEFAULT_KUBERNETES: &str = "1.31.0";
/// Most profiles, workloads per profile, env entries or args (operator input, bounded anyway).
pub const MAX_LIST: usize = 256;

/// One node profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeProfile {
    /// `[a-z0-9-]`: selects the profile (`airlockd node render --profile NAME`).
    pub name: String,
    /// The node's architecture (`amd64`, `arm64`): image archives carry this platform only.
    #[serde(default = "default_arch")]
    pub arch: String,
    pub k3s: K3sProfile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuProfile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<Workload>,
    /// Serve the appliance itself from the cluster: stateless `airlockd serve --replica` pods
    /// reading an object store (see docs/scale.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appliance: Option<ApplianceReplicas>,
}

/// The appliance as a `Deployment` of replicas behind a `Service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApplianceReplicas {
    /// How many replicas (1-64).
    pub replicas: u32,
    /// An `images:` entry whose image runs `airlockd` (its entrypoint or on `PATH`).
    pub image: String,
    /// The object store the writer keeps blobs and catalog snapshots in (`s3://BUCKET/PREFIX`).
    pub store: String,
    pub s3_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_region: Option<String>,
    /// The Service and container port (default 5000).
    #[serde(default = "default_appliance_port")]
    pub port: u16,
}

fn default_appliance_port() -> u16 {
    5000
}

fn default_arch() -> String {
    "amd64".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct K3sProfile {
    /// A `files:` entry: the k3s binary.
    pub binary: String,
    /// A `files:` entry: k3s's air-gap images tarball (`.tar`, `.tar.gz` or `.tar.zst`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub airgap_images: Option<String>,
    /// A `files:` entry: k3s's `install.sh`, run with `INSTALL_K3S_SKIP_DOWNLOAD=true`.
    pub installer: String,
    /// The k3s release (`v1.31.4+k3s1`); its Kubernetes version decides the API versions of
    /// the rendered manifests' checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Extra keys merged into `/etc/rancher/k3s/config.yaml` (a profile key wins).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, serde_json::Value>,
    /// Turn on k3s's embedded registry mirror so nodes share image layers peer to peer
    /// (default: true).
    #[serde(default = "yes")]
    pub embedded_registry: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GpuProfile {
    /// Only `nvidia`.
    pub vendor: String,
    /// A `debs:` closure holding the driver and the container toolkit.
    pub debs: String,
    /// An `images:` entry: the NVIDIA device plugin.
    pub device_plugin: String,
}

/// What serves the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Vllm,
    Triton,
    Custom,
}

/// How the model reaches the pod; never by a download from outside the rack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ModelDelivery {
    /// Files staged on the node's disk by `node render` and mounted read-only (default).
    #[default]
    HostPath,
    /// Fetched from the appliance's Hugging Face endpoint by an init container.
    Endpoint,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    /// RFC 1123 label: the Deployment and Service name.
    pub name: String,
    pub runtime: Runtime,
    /// An `images:` entry.
    pub image: String,
    /// A `models:` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub model_delivery: ModelDelivery,
    /// `nvidia.com/gpu` limit (0 for a CPU workload).
    #[serde(default)]
    pub gpus: u32,
    pub port: u16,
    #[serde(default = "one")]
    pub replicas: u32,
    /// `custom` only: the container's command, args and environment, given in full.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// HTTP path of the readiness probe (default: the runtime's health path; `/` for custom).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_path: Option<String>,
}

fn one() -> u32 {
    1
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl NodeProfile {
    /// The Kubernetes version (`1.31.4`) of the profile's k3s release.
    pub fn kubernetes_version(&self) -> String {
        self.k3s
            .version
            .as_deref()
            .and_then(kubernetes_of_k3s)
            .unwrap_or_else(|| DEFAULT_KUBERNETES.to_string())
    }

    /// Image references (as written) the node needs archives of: the device plugin, every
    /// workload image and the appliance image, without repeats, in profile order.
    pub fn images(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.gpu
            .iter()
            .map(|g| g.device_plugin.as_str())
            .chain(self.workloads.iter().map(|w| w.image.as_str()))
            .chain(self.appliance.iter().map(|a| a.image.as_str()))
            .filter(|i| seen.insert(*i))
            .collect()
    }
}

/// `v1.31.4+k3s1` → `1.31.4`.
pub fn kubernetes_of_k3s(v: &str) -> Option<String> {
    let core = v.strip_prefix('v').unwrap_or(v);
    let core = core.split(['+', '-']).next()?;
    let parts: Vec<&str> = core.split('.').collect();
    (parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    .then(|| core.to_string())
}

/// An RFC 1123 DNS label: what Kubernetes object names and manifest file names use here.
pub fn check_dns_label(field: &str, v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} {v:?} is not an RFC 1123 label (a-z, 0-9 and '-', at most 63, no '-' at either end)"
        ))
    }
}

/// Normalises an image reference the way the served name table does (`ubuntu:24.04` is
/// `docker.io/library/ubuntu:24.04`).
pub fn image_key(r: &str) -> Option<String> {
    r.parse::<ImageRef>().ok().map(|r| r.to_string())
}

/// What a profile may refer to: the names of one manifest's entries, by kind (images
/// normalised with [`image_key`]).
#[derive(Debug, Default)]
pub struct Names {
    pub files: BTreeSet<String>,
    pub debs: BTreeSet<String>,
    pub models: BTreeSet<String>,
    pub images: BTreeSet<String>,
}

impl Names {
    /// The entries of an input manifest.
    pub fn of_spec(spec: &Spec) -> Names {
        Names {
            files: spec.files.iter().map(|f| f.name.clone()).collect(),
            debs: spec.debs.iter().map(|d| d.name.clone()).collect(),
            models: spec.models.iter().map(|m| m.name.clone()).collect(),
            images: spec
                .images
                .iter()
                .filter_map(|i| image_key(i.name.as_deref().unwrap_or(&i.reference)))
                .collect(),
        }
    }

    /// The artifacts of a bundle manifest.
    pub fn of_artifacts(artifacts: &[crate::bundle::Artifact]) -> Names {
        use crate::bundle::ArtifactKind;
        let mut n = Names::default();
        for a in artifacts {
            match a.kind {
                ArtifactKind::File => n.files.insert(a.name.clone()),
                ArtifactKind::Debs => n.debs.insert(a.name.clone()),
                ArtifactKind::Model => n.models.insert(a.name.clone()),
                ArtifactKind::Image => image_key(&a.name).is_some_and(|k| n.images.insert(k)),
                ArtifactKind::Attestation => false,
            };
        }
        n
    }
}

/// Checks every profile of `spec`: names, values, and that each reference resolves to an entry
/// of the same manifest. Errors name the field, e.g. `spec.nodes[0].gpu.debs: "gpu-stak" is not
/// a debs: entry of this manifest`.
pub fn check(spec: &Spec) -> Result<(), String> {
    check_profiles(&spec.nodes, &Names::of_spec(spec))
}

/// [`check`] for profiles and the names they may refer to: the input manifest's on the
/// connected side, a signed bundle manifest's artifacts on the appliance (a profile read from
/// an imported bundle is checked again before anything is rendered from it).
pub fn check_profiles(nodes: &[NodeProfile], refs: &Names) -> Result<(), String> {
    if nodes.len() > MAX_LIST {
        return Err(format!("spec.nodes: at most {MAX_LIST} profiles"));
    }
    let (files, debs, models, images) = (&refs.files, &refs.debs, &refs.models, &refs.images);
    let mut names = BTreeSet::new();
    for (i, p) in nodes.iter().enumerate() {
        let at = format!("spec.nodes[{i}]");
        check_dns_label(&format!("{at}.name"), &p.name)?;
        if !names.insert(p.name.as_str()) {
            return Err(format!("{at}.name {:?} repeats", p.name));
        }
        check_label(&format!("{at}.arch"), &p.arch)?;
        let file = |field: &str, v: &str| {
            if files.contains(v) {
                Ok(())
            } else {
                Err(format!(
                    "{at}.{field}: {v:?} is not a files: entry of this manifest"
                ))
            }
        };
        file("k3s.binary", &p.k3s.binary)?;
        file("k3s.installer", &p.k3s.installer)?;
        if let Some(a) = &p.k3s.airgap_images {
            file("k3s.airgapImages", a)?;
        }
        if let Some(v) = &p.k3s.version {
            kubernetes_of_k3s(v).ok_or_else(|| {
                format!("{at}.k3s.version {v:?} is not a k3s release such as v1.31.4+k3s1")
            })?;
        }
        for k in p.k3s.config.keys() {
            if k.is_empty()
                || k.len() > 64
                || !k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            {
                return Err(format!(
                    "{at}.k3s.config: key {k:?} is not a k3s option name"
                ));
            }
        }
        let image = |field: &str, v: &str| match image_key(v) {
            Some(k) if images.contains(&k) => Ok(()),
            Some(_) => Err(format!(
                "{at}.{field}: {v:?} is not an images: entry of this manifest"
            )),
            None => Err(format!("{at}.{field}: {v:?} is not an image reference")),
        };
        if let Some(g) = &p.gpu {
            if g.vendor != "nvidia" {
                return Err(format!(
                    "{at}.gpu.vendor {:?}: only nvidia is supported",
                    g.vendor
                ));
            }
            crate::manifest::check_suite_name(&g.debs)
                .map_err(|e| format!("{at}.gpu.debs: {e}"))?;
            if !debs.contains(g.debs.as_str()) {
                return Err(format!(
                    "{at}.gpu.debs: {:?} is not a debs: entry of this manifest",
                    g.debs
                ));
            }
            image("gpu.devicePlugin", &g.device_plugin)?;
        }
        if let Some(a) = &p.appliance {
            image("appliance.image", &a.image)?;
            if a.replicas == 0 || a.replicas > 64 {
                return Err(format!("{at}.appliance.replicas must be 1-64"));
            }
            if !a.store.starts_with("s3://") || a.store.len() <= 5 {
                return Err(format!(
                    "{at}.appliance.store {:?} is not s3://BUCKET[/PREFIX]",
                    a.store
                ));
            }
            if !(a.s3_endpoint.starts_with("http://") || a.s3_endpoint.starts_with("https://")) {
                return Err(format!(
                    "{at}.appliance.s3Endpoint {:?} is not an http(s) URL",
                    a.s3_endpoint
                ));
            }
            for v in [&a.store, &a.s3_endpoint]
                .into_iter()
                .chain(a.s3_region.as_ref())
            {
                if v.len() > 512 || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    return Err(format!(
                        "{at}.appliance: {v:?} holds spaces or control characters"
                    ));
                }
            }
            if a.port == 0 {
                return Err(format!("{at}.appliance.port must be 1-65535"));
            }
        }
        if p.workloads.len() > MAX_LIST {
            return Err(format!("{at}.workloads: at most {MAX_LIST}"));
        }
        let mut wnames = BTreeSet::new();
        for (j, w) in p.workloads.iter().enumerate() {
            let wat = format!("workloads[{j}]");
            check_dns_label(&format!("{at}.{wat}.name"), &w.name)?;
            if !wnames.insert(w.name.as_str()) {
                return Err(format!("{at}.{wat}.name {:?} repeats", w.name));
            }
            image(&format!("{wat}.image"), &w.image)?;
            if let Some(m) = &w.model {
                if !models.contains(m.as_str()) {
                    return Err(format!(
                        "{at}.{wat}.model: {m:?} is not a models: entry of this manifest"
                    ));
                }
                // The name becomes a directory on the node.
                crate::manifest::check_repo_id(m).map_err(|e| format!("{at}.{wat}.model: {e}"))?;
            }
            if w.port == 0 {
                return Err(format!("{at}.{wat}.port must be 1-65535"));
            }
            if w.gpus > 0 && p.gpu.is_none() {
                return Err(format!(
                    "{at}.{wat}.gpus is {} but the profile has no gpu: section",
                    w.gpus
                ));
            }
            if w.replicas == 0 || w.replicas > 64 {
                return Err(format!("{at}.{wat}.replicas must be 1-64"));
            }
            match w.runtime {
                Runtime::Custom => {
                    if w.command.is_empty() {
                        return Err(format!(
                            "{at}.{wat}: a custom runtime gives its command in full"
                        ));
                    }
                }
                Runtime::Vllm | Runtime::Triton => {
                    if w.model.is_none() {
                        return Err(format!("{at}.{wat}: runtime {:?} needs a model", w.runtime));
                    }
                    if !w.command.is_empty() {
                        return Err(format!("{at}.{wat}.command is only for the custom runtime"));
                    }
                }
            }
            if w.args.len() > MAX_LIST || w.env.len() > MAX_LIST || w.command.len() > MAX_LIST {
                return Err(format!(
                    "{at}.{wat}: at most {MAX_LIST} command, args or env entries"
                ));
            }
            for k in w.env.keys() {
                let ok = !k.is_empty()
                    && k.len() <= 128
                    && !k.as_bytes()[0].is_ascii_digit()
                    && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
                if !ok {
                    return Err(format!("{at}.{wat}.env: {k:?} is not a variable name"));
                }
            }
            for s in w.command.iter().chain(&w.args).chain(w.env.values()) {
                if s.len() > 4096 || s.chars().any(|c| c.is_control()) {
                    return Err(format!(
                        "{at}.{wat}: command, args and env values are at most 4096 characters without control characters"
                    ));
                }
            }
            if let Some(r) = &w.ready_path {
                if !r.starts_with('/')
                    || r.len() > 256
                    || r.chars().any(|c| c.is_control() || c == ' ')
                {
                    return Err(format!("{at}.{wat}.readyPath {r:?} is not an HTTP path"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::InputManifest;

    const BASE: &str = r#"
apiVersion: airlock/v1
kind: Bundle
metadata: {name: node, version: "1.0.0"}
spec:
  images:
    - {ref: "oci:./plugin", name: "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"}
    - {ref: "docker.io/vllm/vllm-openai:v0.9.1"}
  models:
    - {name: acme/tiny-model, source: "dir:./tiny"}
  files:
    - {name: k3s, path: ./k3s}
    - {name: k3s-install, path: ./install.sh}
    - {name: k3s-airgap-images, path: ./images.tar.zst}
  debs:
    - name: gpu-stack
      arch: amd64
      sources: [{uri: "file:///r", suite: bookworm, components: [main], keyring: k.gpg}]
      packages: [nvidia-driver]
  nodes:
    - name: gpu-node
      k3s: {binary: k3s, airgapImages: k3s-airgap-images, installer: k3s-install, version: v1.31.4+k3s1, config: {disable: [traefik]}}
      gpu: {vendor: nvidia, debs: gpu-stack, devicePlugin: "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"}
      workloads:
        - {name: chat, runtime: vllm, image: "vllm/vllm-openai:v0.9.1", model: acme/tiny-model, gpus: 1, port: 8000}
"#;

    #[test]
    fn the_documented_profile_parses_and_resolves() {
        let m = InputManifest::parse(BASE, "m.yaml").unwrap();
        let p = &m.spec.nodes[0];
        assert_eq!(p.kubernetes_version(), "1.31.4");
        assert_eq!(p.arch, "amd64");
        assert!(p.k3s.embedded_registry);
        assert_eq!(
            p.images(),
            [
                "nvcr.io/nvidia/k8s-device-plugin:v0.17.1",
                "vllm/vllm-openai:v0.9.1"
            ]
        );
    }

    #[test]
    fn a_dangling_reference_is_an_error_naming_it() {
        for (from, to, want) in [
            (
                "debs: gpu-stack, devicePlugin",
                "debs: gpu-stak, devicePlugin",
                "spec.nodes[0].gpu.debs: \"gpu-stak\" is not a debs: entry",
            ),
            (
                "model: acme/tiny-model",
                "model: acme/other",
                "workloads[0].model: \"acme/other\"",
            ),
            (
                "image: \"vllm/vllm-openai:v0.9.1\"",
                "image: \"vllm/vllm-openai:v0.9.2\"",
                "workloads[0].image: \"vllm/vllm-openai:v0.9.2\" is not an images: entry",
            ),
            (
                "binary: k3s,",
                "binary: k3s-bin,",
                "k3s.binary: \"k3s-bin\" is not a files: entry",
            ),
            (
                "version: v1.31.4+k3s1",
                "version: latest",
                "k3s.version \"latest\"",
            ),
            ("name: chat", "name: Chat", "is not an RFC 1123 label"),
            (
                "runtime: vllm",
                "runtime: custom",
                "custom runtime gives its command",
            ),
            ("vendor: nvidia", "vendor: amd", "only nvidia"),
        ] {
            let text = BASE.replace(from, to);
            assert_ne!(text, BASE, "{from}");
            let e = InputManifest::parse(&text, "m.yaml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{to}: {e}");
        }
    }

    #[test]
    fn a_bundles_profiles_are_checked_against_its_artifacts() {
        use crate::bundle::{Artifact, ArtifactKind};
        let m = InputManifest::parse(BASE, "m.yaml").unwrap();
        let artifact = |kind, name: &str| Artifact {
            kind,
            name: name.into(),
            digest: crate::Sha256::digest(name.as_bytes()),
            media_type: String::new(),
            size: 0,
            provenance: Default::default(),
            platforms_omitted: vec![],
        };
        let artifacts = vec![
            artifact(ArtifactKind::File, "k3s"),
            artifact(ArtifactKind::File, "k3s-install"),
            artifact(ArtifactKind::File, "k3s-airgap-images"),
            artifact(ArtifactKind::Debs, "gpu-stack"),
            artifact(ArtifactKind::Model, "acme/tiny-model"),
            artifact(
                ArtifactKind::Image,
                "nvcr.io/nvidia/k8s-device-plugin:v0.17.1",
            ),
            artifact(ArtifactKind::Image, "docker.io/vllm/vllm-openai:v0.9.1"),
        ];
        let names = Names::of_artifacts(&artifacts);
        check_profiles(&m.spec.nodes, &names).unwrap();
        // A signed profile whose names would leave the directories they become is refused.
        let mut bad = m.spec.nodes.clone();
        bad[0].workloads[0].name = "../../etc".into();
        let e = check_profiles(&bad, &names).unwrap_err();
        assert!(e.contains("is not an RFC 1123 label"), "{e}");
        // So is one naming what the bundle does not carry.
        let e = check_profiles(&m.spec.nodes, &Names::of_artifacts(&artifacts[1..])).unwrap_err();
        assert!(e.contains("\"k3s\" is not a files: entry"), "{e}");
    }

    #[test]
    fn unknown_profile_keys_are_refused() {
        let text = BASE.replace("gpus: 1", "gpus: 1, gpu: 1");
        let e = InputManifest::parse(&text, "m.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `gpu`"), "{e}");
    }
}
