//! SBOMs of what `airlock pack` carries, made while packing and signed with the bundle: of
//! images (below), of Debian package closures (from the signed resolution record), of files
//! (the build information of executables) and ML-BOMs of models (from their files, card,
//! config and lineage).
//!
//! For every image artifact of the plan, and for every platform of a multi-platform index, the
//! layers are read in order (from where the plan reads them: a store blob, a source file, a
//! range of an archive) and catalogued by airlock-sbom, exactly as `airlock sbom` does. Each
//! SBOM becomes an OCI artifact whose `subject` is the image manifest it describes
//! (artifactType `application/vnd.cyclonedx+json`, and `application/spdx+json` with
//! `--sbom-spdx`), added to the plan as an `attestation` artifact named `sbom:IMAGE` (or
//! `spdx:IMAGE`; `IMAGE@OS/ARCH` per platform of an index). The bundle manifest lists it, so
//! it is signed with everything else, and the appliance serves it through the referrers API of
//! the image it describes.
//!
//! Signatures, attestations and SBOMs that came along with an image (a manifest with a
//! `subject`, a cosign `sha256-HEX.sig` tag, layers that are not tars) get none.
//!
//! An image whose layers are not all in the plan (a foreign layer, or a layer left home by a
//! differential bundle's plan) gets no SBOM, with a warning: a partial SBOM would claim less
//! than the image holds. A layer that cannot be catalogued (not a tar, a malformed dpkg
//! status) fails the pack, naming the image and the layer; `--no-sbom` packs without SBOMs.
//! The components of each CycloneDX SBOM (purl and source package) also go into the signed
//! bundle manifest (`sboms`), so that the appliance's import policy can match them against its
//! vulnerability database before any blob is written.
//!
//! The CycloneDX document carries no timestamp, and the SPDX one the pack time, so the same
//! sources give the same SBOM digests.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use airlock_bundle::writer::{BlobData, PlannedBlob};
use airlock_core::bundle::{ArtifactKind, SbomComponent, SbomRecord};
use airlock_core::oci::{Descriptor, Index, Manifest};
use airlock_core::{media, Digest};
use airlock_mirror::plan::Plan;
use airlock_sbom::cyclonedx::{Subject, Tool};
use airlock_sbom::{Distro, Files, Limits};
use anyhow::{bail, Context, Result};

/// artifactType (and layer media type) of a CycloneDX JSON SBOM.
pub const CYCLONEDX_TYPE: &str = "application/vnd.cyclonedx+json";
/// artifactType (and layer media type) of an SPDX JSON SBOM.
pub const SPDX_TYPE: &str = "application/spdx+json";

/// The config media type of Docker schema 2 images.
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// One image manifest to describe: its descriptor, the manifest, and a name suffix
/// (`@os/arch` for a platform of an index, empty otherwise).
struct Target {
    desc: Descriptor,
    manifest: Manifest,
    suffix: String,
}

fn bytes_of<'a>(blobs: &'a BTreeMap<Digest, &PlannedBlob>, d: &Digest) -> Option<&'a [u8]> {
    match &blobs.get(d)?.data {
        BlobData::Bytes(b) => Some(b),
        BlobData::File { .. } => None,
    }
}

/// Is `m` a container filesystem: every layer a tar layer, and not attached to another manifest
/// (a signature, attestation or SBOM that came along with an image has a `subject`, or is
/// tagged `sha256-HEX.sig`/`.att`/`.sbom`)?
fn is_filesystem(m: &Manifest) -> bool {
    m.subject.is_none()
        && !m.layers.is_empty()
        && m.layers
            .iter()
            .all(|l| airlock_scan::Compression::of_media_type(&l.media_type).is_some())
}

/// Is `name` a tag cosign's tag scheme gives signatures, attestations and SBOMs?
fn cosign_tag(name: &str) -> bool {
    let Some((_, tag)) = name.rsplit_once(':') else {
        return false;
    };
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let Some((hex, ext)) = rest.split_once('.') else {
        return false;
    };
    hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && matches!(ext, "sig" | "att" | "sbom")
}

/// The image manifests of an image artifact whose root is `root`.
fn targets(
    root_desc: Descriptor,
    root: &[u8],
    blobs: &BTreeMap<Digest, &PlannedBlob>,
) -> Result<Vec<Target>> {
    if !media::is_index(&root_desc.media_type) {
        let manifest: Manifest = serde_json::from_slice(root).context("image manifest")?;
        if !is_filesystem(&manifest) {
            return Ok(vec![]);
        }
        return Ok(vec![Target {
            desc: root_desc,
            manifest,
            suffix: String::new(),
        }]);
    }
    let index: Index = serde_json::from_slice(root).context("image index")?;
    let mut out = Vec::new();
    for d in index.manifests {
        if media::is_index(&d.media_type) {
            continue; // nested indexes are not platform images
        }
        let Some(bytes) = bytes_of(blobs, &d.digest) else {
            continue; // a platform the bundle leaves out
        };
        let manifest: Manifest = serde_json::from_slice(bytes).context("image manifest")?;
        if !is_filesystem(&manifest)
            || !matches!(
                manifest.config.media_type.as_str(),
                media::OCI_CONFIG | DOCKER_CONFIG
            )
        {
            continue; // not an image (an attestation manifest in a BuildKit index)
        }
        let suffix = match &d.platform {
            Some(p) => format!("@{}", p.key()),
            None => format!("@{}", d.digest),
        };
        out.push(Target {
            desc: d,
            manifest,
            suffix,
        });
    }
    Ok(out)
}

/// A reader of a planned blob's bytes.
fn open(b: &PlannedBlob) -> Result<Box<dyn Read>> {
    Ok(match &b.data {
        BlobData::Bytes(bytes) => Box::new(std::io::Cursor::new(bytes.clone())),
        BlobData::File { path, offset, .. } => {
            let mut f =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            f.seek(SeekFrom::Start(*offset))
                .with_context(|| format!("seeking in {}", path.display()))?;
            Box::new(f.take(b.size))
        }
    })
}

/// The catalogued files of `m`'s layers, or `None` when a layer is not in the plan.
fn files_of(
    m: &Manifest,
    blobs: &BTreeMap<Digest, &PlannedBlob>,
    limits: &Limits,
) -> Result<Option<Files>> {
    if m.layers.len() > limits.max_layers {
        bail!("{} layers, more than {}", m.layers.len(), limits.max_layers);
    }
    let mut files = Files::default();
    for l in &m.layers {
        let Some(b) = blobs.get(&l.digest) else {
            return Ok(None);
        };
        let digest = l.digest.to_string();
        let Some(compression) = airlock_scan::Compression::of_media_type(&l.media_type) else {
            bail!(
                "layer {digest}: media type {:?} is not a tar layer",
                l.media_type
            );
        };
        let stream = airlock_scan::layer::tar_stream(
            std::io::BufReader::with_capacity(1 << 20, open(b)?),
            compression,
            limits.max_layer_unpacked,
        )
        .with_context(|| format!("layer {digest}"))?;
        airlock_sbom::files::apply_layer(&mut files, stream, &digest, limits)?;
    }
    Ok(Some(files))
}

/// Makes the SBOMs of the plan's images, Debian package closures and files, and the ML-BOMs of
/// its models, and adds them to the plan; returns the record of each CycloneDX one (its
/// components, for the signed manifest).
pub fn sbom_plan(
    plan: &mut Plan,
    retrieved: &str,
    spdx: bool,
    supplier: Option<&str>,
) -> Result<Vec<SbomRecord>> {
    let limits = Limits::default();
    let mut sink = Sink {
        tool: Tool {
            name: "airlock".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        retrieved,
        spdx,
        supplier,
        attachments: Vec::new(),
        records: Vec::new(),
    };
    {
        let blobs: BTreeMap<Digest, &PlannedBlob> =
            plan.blobs.iter().map(|b| (b.digest, b)).collect();
        for a in &plan.artifacts {
            match a.kind {
                ArtifactKind::Image if !cosign_tag(&a.name) => {
                    image_sboms(a, &blobs, &limits, &mut sink)?
                }
                ArtifactKind::Debs => closure_sbom(a, &blobs, &mut sink)?,
                ArtifactKind::File => file_sbom(a, &blobs, &limits, &mut sink)?,
                ArtifactKind::Model => model_sbom(a, &blobs, &mut sink)?,
                _ => {}
            }
        }
    }
    crate::scanning::add_to_plan(plan, sink.attachments)?;
    Ok(sink.records)
}

/// Where the SBOMs made for a plan go: the attachments to add to it, and the records of their
/// components for the signed manifest.
struct Sink<'a> {
    tool: Tool,
    retrieved: &'a str,
    spdx: bool,
    supplier: Option<&'a str>,
    attachments: Vec<airlock_attest::Attachment>,
    records: Vec<SbomRecord>,
}

impl Sink<'_> {
    /// Attaches the CycloneDX SBOM of `packages` (and the SPDX one with `--sbom-spdx`) to the
    /// manifest `desc` as `sbom:NAME` (`spdx:NAME`), describing a `kind` (`container`,
    /// `application`, `file`) at `version`, and records its components.
    fn attach(
        &mut self,
        desc: &Descriptor,
        name: &str,
        kind: &'static str,
        version: String,
        packages: &[airlock_sbom::Package],
        distro: &Distro,
    ) {
        let subject = Subject {
            kind,
            name: name.to_string(),
            version: Some(version),
            supplier: self.supplier.map(str::to_string),
        };
        let doc = airlock_sbom::cyclonedx::render(packages, distro, &subject, &self.tool, None);
        let mut components: Vec<SbomComponent> = packages
            .iter()
            .map(|p| SbomComponent {
                purl: airlock_sbom::cyclonedx::purl(p, distro),
                source_package: p.source_package.clone(),
            })
            .collect();
        components.sort();
        components.dedup();
        self.push(desc, name, CYCLONEDX_TYPE, doc, Some(components));
        if self.spdx {
            let doc =
                airlock_sbom::spdx::render(packages, distro, &subject, &self.tool, self.retrieved);
            self.push(desc, name, SPDX_TYPE, doc, None);
        }
        tracing::info!(artifact = %name, packages = packages.len(), "SBOM made");
    }

    /// Attaches `doc` (of type `artifact_type`) to `desc` as `sbom:NAME`, or `spdx:NAME` for
    /// SPDX; a CycloneDX document's `components` go into the signed manifest's records.
    fn push(
        &mut self,
        desc: &Descriptor,
        name: &str,
        artifact_type: &str,
        doc: Vec<u8>,
        components: Option<Vec<SbomComponent>>,
    ) {
        let prefix = if artifact_type == SPDX_TYPE {
            "spdx"
        } else {
            "sbom"
        };
        let attached = airlock_attest::attach(
            desc,
            format!("{prefix}:{name}"),
            artifact_type,
            doc,
            self.retrieved,
        );
        if let Some(components) = components {
            self.records.push(SbomRecord {
                artifact: name.to_string(),
                subject: desc.digest,
                sbom: attached.artifact.digest,
                components,
            });
        }
        self.attachments.push(attached);
    }
}

/// The descriptor of an artifact's root manifest.
fn root_descriptor(a: &airlock_core::bundle::Artifact) -> Descriptor {
    Descriptor {
        media_type: a.media_type.clone(),
        digest: a.digest,
        size: a.size,
        artifact_type: None,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

/// One image manifest of an image artifact, catalogued.
pub struct Catalogued {
    /// The artifact's name, with `@OS/ARCH` for one platform of an index.
    pub name: String,
    /// The image manifest.
    pub desc: Descriptor,
    pub packages: Vec<airlock_sbom::Package>,
    pub distro: Distro,
}

/// The packages of each image manifest of the image artifact `a` (each platform of an
/// index), read from the plan's blobs as `pack` reads them. An image manifest one of whose
/// layers is not in the plan is left out, with a warning.
pub fn image_packages(
    a: &airlock_core::bundle::Artifact,
    blobs: &BTreeMap<Digest, &PlannedBlob>,
    limits: &Limits,
) -> Result<Vec<Catalogued>> {
    let Some(root) = bytes_of(blobs, &a.digest) else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for t in
        targets(root_descriptor(a), root, blobs).with_context(|| format!("image {}", a.name))?
    {
        let name = format!("{}{}", a.name, t.suffix);
        let what = || format!("SBOM of image {name}");
        let Some(files) = files_of(&t.manifest, blobs, limits).with_context(what)? else {
            tracing::warn!(
                image = %name,
                "no SBOM: a layer of the image is not in this bundle"
            );
            continue;
        };
        for (path, size) in &files.skipped {
            tracing::warn!(image = %name, "{path}: {size} bytes, over the limit; not catalogued");
        }
        let packages = airlock_sbom::catalog(&files).with_context(what)?;
        out.push(Catalogued {
            name,
            desc: t.desc,
            packages,
            distro: Distro::of(&files),
        });
    }
    Ok(out)
}

/// The SBOMs of an image: one per image manifest (per platform of an index).
fn image_sboms(
    a: &airlock_core::bundle::Artifact,
    blobs: &BTreeMap<Digest, &PlannedBlob>,
    limits: &Limits,
    sink: &mut Sink,
) -> Result<()> {
    let images = image_packages(a, blobs, limits).context("--no-sbom packs without SBOMs")?;
    for c in images {
        let version = c.desc.digest.to_string();
        sink.attach(
            &c.desc,
            &c.name,
            "container",
            version,
            &c.packages,
            &c.distro,
        );
    }
    Ok(())
}

/// The SBOM of a Debian package closure: one component per package, from the resolution
/// record (the closure manifest's config), attached to the closure manifest.
fn closure_sbom(
    a: &airlock_core::bundle::Artifact,
    blobs: &BTreeMap<Digest, &PlannedBlob>,
    sink: &mut Sink,
) -> Result<()> {
    let what = || format!("SBOM of closure {} (--no-sbom packs without)", a.name);
    let Some(root) = bytes_of(blobs, &a.digest) else {
        return Ok(());
    };
    let manifest: Manifest = serde_json::from_slice(root).with_context(what)?;
    let config = bytes_of(blobs, &manifest.config.digest)
        .with_context(|| format!("{}: its resolution record is not in the plan", what()))?;
    let rec: airlock_core::debs::ClosureRecord =
        serde_json::from_slice(config).with_context(what)?;
    let packages = airlock_sbom::closure::packages(&rec).with_context(what)?;
    let distro = airlock_sbom::closure::distro_of(&rec);
    if distro.version_id.is_none() {
        tracing::warn!(
            closure = %a.name,
            "the sources' suites name no known Debian or Ubuntu release; package URLs carry no distro, and the appliance cannot match them against advisories"
        );
    }
    let version = a.digest.to_string();
    sink.attach(
        &root_descriptor(a),
        &a.name,
        "application",
        version,
        &packages,
        &distro,
    );
    Ok(())
}

/// The SBOM of a file (`spec.files`, `url:` files): the Go modules and Rust crates an
/// executable's build information lists (a k3s or containerd binary is a Go executable), read
/// from the same bytes that are packed, attached to the file's manifest. A file that is not an
/// ELF executable, or carries no build information, gets an SBOM without components, which
/// still records that it was looked at. Executables over [`Limits::max_binary`] are not read,
/// with a warning, as in images.
fn file_sbom(
    a: &airlock_core::bundle::Artifact,
    blobs: &BTreeMap<Digest, &PlannedBlob>,
    limits: &Limits,
    sink: &mut Sink,
) -> Result<()> {
    let what = || format!("SBOM of file {} (--no-sbom packs without)", a.name);
    let Some(root) = bytes_of(blobs, &a.digest) else {
        return Ok(());
    };
    let manifest: Manifest = serde_json::from_slice(root).with_context(what)?;
    let [layer] = manifest.layers.as_slice() else {
        return Ok(());
    };
    let Some(b) = blobs.get(&layer.digest) else {
        return Ok(()); // left home by a differential bundle
    };
    let mut files = Files::default();
    let mut head = Vec::with_capacity(4);
    let mut r = open(b).with_context(what)?;
    r.by_ref()
        .take(4)
        .read_to_end(&mut head)
        .with_context(what)?;
    if head == b"\x7fELF" {
        if b.size > limits.max_binary {
            tracing::warn!(file = %a.name, size = b.size, "executable over the limit; its build information is not read");
        } else {
            let mut data = Vec::with_capacity(b.size as usize);
            data.extend_from_slice(&head);
            r.read_to_end(&mut data).with_context(what)?;
            let info = airlock_sbom::binary::extract(&a.name, &data);
            for w in &info.warnings {
                tracing::warn!(file = %a.name, "{w}");
            }
            files
                .insert_binary(
                    a.name.clone(),
                    airlock_sbom::files::Binary { info, layer: None },
                    limits,
                    &a.name,
                )
                .with_context(what)?;
        }
    }
    let packages = airlock_sbom::catalog(&files).with_context(what)?;
    let version = layer.digest.to_string();
    sink.attach(
        &root_descriptor(a),
        &a.name,
        "file",
        version,
        &packages,
        &Distro::default(),
    );
    Ok(())
}

/// Reads a planned blob whole when it is at most `max` bytes; `Err` (inside) says why not.
fn read_bounded(b: &PlannedBlob, max: u64) -> Result<std::result::Result<Vec<u8>, String>> {
    if b.size > max {
        return Ok(Err(format!("{} bytes, over the bound of {max}", b.size)));
    }
    let mut out = Vec::with_capacity(b.size as usize);
    open(b)?
        .take(max)
        .read_to_end(&mut out)
        .context("reading a model file")?;
    Ok(Ok(out))
}

/// What the ML-BOM of a model artifact is made from: the ModelPack manifest `root`, its
/// config's licence, its layers (titled with their paths), its root `README.md` and
/// `config.json` (read from `blobs` within the ML-BOM's bounds), its Hugging Face annotations,
/// and `lineage`. `pack` and `airlock sbom` both call this, so they describe a model alike.
pub fn ml_model(
    name: &str,
    root: &Descriptor,
    blobs: &BTreeMap<Digest, &PlannedBlob>,
    lineage: Option<airlock_core::manifest::Lineage>,
) -> Result<airlock_sbom::mlbom::Model> {
    use airlock_sbom::mlbom;
    let bytes = bytes_of(blobs, &root.digest).context("model manifest is not in memory")?;
    let m: Manifest = serde_json::from_slice(bytes).context("model manifest")?;
    let license = bytes_of(blobs, &m.config.digest)
        .and_then(|c| serde_json::from_slice::<serde_json::Value>(c).ok())
        .and_then(|c| c["descriptor"]["licenses"][0].as_str().map(str::to_string));
    let mut model = mlbom::Model {
        name: name.to_string(),
        manifest: Some(root.digest.to_string()),
        license,
        lineage,
        ..Default::default()
    };
    let ann = |k: &str| m.annotations.get(k).cloned();
    if let (Some(repo), Some(commit)) = (
        ann(airlock_mirror::model::ANNOTATION_HF_REPO),
        ann(airlock_mirror::model::ANNOTATION_HF_COMMIT),
    ) {
        model.upstream = Some((repo, commit));
    }
    for l in &m.layers {
        let Some(path) = l.annotations.get(media::ANNOTATION_TITLE) else {
            continue;
        };
        model.files.push(mlbom::ModelFile {
            path: path.clone(),
            sha256: l.digest.hex(),
            size: l.size,
        });
        let slot = if path.eq_ignore_ascii_case("README.md") {
            (&mut model.card, mlbom::MAX_CARD)
        } else if path == "config.json" {
            (&mut model.config, mlbom::MAX_CONFIG)
        } else {
            continue;
        };
        *slot.0 = Some(match blobs.get(&l.digest) {
            Some(b) => read_bounded(b, slot.1).with_context(|| format!("model {name}: {path}"))?,
            None => Err("not in this bundle".into()),
        });
    }
    Ok(model)
}

/// The ML-BOM of a model, attached to its ModelPack manifest (its `sboms` record lists no
/// components: files and data sets have no package URLs).
fn model_sbom(
    a: &airlock_core::bundle::Artifact,
    blobs: &BTreeMap<Digest, &PlannedBlob>,
    sink: &mut Sink,
) -> Result<()> {
    let root = root_descriptor(a);
    let lineage = a
        .provenance
        .lineage
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .with_context(|| format!("model {}: lineage", a.name))?;
    let model = ml_model(&a.name, &root, blobs, lineage)
        .with_context(|| format!("ML-BOM of model {} (--no-sbom packs without)", a.name))?;
    let doc = airlock_sbom::mlbom::render(&model, &sink.tool, None);
    sink.push(&root, &a.name, CYCLONEDX_TYPE, doc, Some(vec![]));
    tracing::info!(model = %a.name, files = model.files.len(), "ML-BOM made");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(rel: &str, bytes: &[u8]) -> airlock_mirror::model::ModelFile {
        airlock_mirror::model::ModelFile {
            rel: rel.into(),
            digest: airlock_core::Sha256::digest(bytes),
            size: bytes.len() as u64,
            data: BlobData::Bytes(std::sync::Arc::from(bytes)),
        }
    }

    #[test]
    fn a_model_artifact_gives_its_files_licence_card_and_config_within_bounds() {
        let big = vec![b'#'; airlock_sbom::mlbom::MAX_CARD as usize + 1];
        let config = br#"{"architectures":["Tiny"]}"#;
        let built = airlock_mirror::model::model_artifact(
            "acme/m",
            vec![
                file("README.md", &big),
                file("config.json", config),
                file("sub/config.json", b"{}"),
            ],
            Some("mit"),
            BTreeMap::new(),
        );
        let blobs = built.blobs.iter().map(|b| (b.digest, b)).collect();
        let m = ml_model("acme/m", &built.root, &blobs, None).unwrap();
        assert_eq!(m.manifest, Some(built.root.digest.to_string()));
        assert_eq!(m.license.as_deref(), Some("mit"));
        let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["README.md", "config.json", "sub/config.json"]);
        assert!(matches!(&m.card, Some(Err(why)) if why.contains("over the bound")));
        assert_eq!(m.config, Some(Ok(config.to_vec())), "the root config.json");
        // A layer that is not in the bundle is noted, not an error.
        let mut partial = blobs;
        partial.retain(|d, _| *d != airlock_core::Sha256::digest(config));
        let m = ml_model("acme/m", &built.root, &partial, None).unwrap();
        assert_eq!(m.config, Some(Err("not in this bundle".into())));
    }

    #[test]
    fn cosign_tags_are_recognised() {
        let hex = "a".repeat(64);
        assert!(cosign_tag(&format!("reg.example/x:sha256-{hex}.sig")));
        assert!(cosign_tag(&format!("reg.example:5000/x:sha256-{hex}.att")));
        assert!(!cosign_tag("reg.example/x:v1"));
        assert!(!cosign_tag(&format!("reg.example/x:sha256-{hex}.tar")));
        assert!(!cosign_tag("reg.example/x:sha256-abc.sig"));
    }
}
