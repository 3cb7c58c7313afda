//! From input manifest to pack input: resolve every source, deduplicate blobs, build the
//! bundle's `index.json` and the artifact records.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use airlock_bundle::writer::PlannedBlob;
use airlock_bundle::Progress;
use airlock_core::bundle::{Artifact, ArtifactKind, Provenance};
use airlock_core::manifest::{ImageSource, InputManifest, ModelSource};
use airlock_core::media;
use airlock_core::oci::{Descriptor, Index};
use airlock_core::Digest;
use rayon::prelude::*;

use crate::local::{self, ArchiveSource, DirSource, LayoutSource};
use crate::model;
use crate::MirrorError;

/// Everything `airlock pack` needs besides keys and options.
pub struct Plan {
    pub artifacts: Vec<Artifact>,
    pub blobs: Vec<PlannedBlob>,
    pub index_json: Vec<u8>,
}

impl Plan {
    pub fn total_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

/// Resolves all sources of `m`; relative paths resolve against `base`. `retrieved` is the
/// RFC 3339 time recorded as provenance (kept out of OCI content).
pub fn plan(
    m: &InputManifest,
    base: &Path,
    retrieved: &str,
    progress: &dyn Progress,
) -> Result<Plan, MirrorError> {
    plan_with_store(m, base, retrieved, None, progress)
}

/// [`plan`], resolving registry references from the store `airlock sync` filled (`store`).
/// A registry image that was never synced, or whose closure is incomplete, is an error naming
/// it; `airlock pack` runs a sync first so this does not happen there.
pub fn plan_with_store(
    m: &InputManifest,
    base: &Path,
    retrieved: &str,
    store: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Plan, MirrorError> {
    plan_with_cache(m, base, retrieved, store, &model::Hashing::new(progress))
}

/// [`plan_with_store`], taking the digests of unchanged local files from a digest cache when
/// `hashing` has one (see [`crate::digest_cache`]): such blobs are planned unverified, and the
/// volume writer hashes them as it writes them.
pub fn plan_with_cache(
    m: &InputManifest,
    base: &Path,
    retrieved: &str,
    store: Option<&Path>,
    hashing: &model::Hashing<'_>,
) -> Result<Plan, MirrorError> {
    let mut artifacts = Vec::new();
    let mut blobs: Vec<PlannedBlob> = Vec::new();
    let mut seen: BTreeSet<Digest> = BTreeSet::new();
    let mut index_entries = Vec::new();
    let mut names = BTreeSet::new();
    let mut add_blobs = |bs: Vec<PlannedBlob>, blobs: &mut Vec<PlannedBlob>| {
        for b in bs {
            if seen.insert(b.digest) {
                blobs.push(b);
            }
        }
    };
    // The store, opened once for every source that reads from it.
    let opened: Option<(&Path, airlock_store::BlobStore)> = store
        .map(|dir| {
            airlock_store::BlobStore::open(dir)
                .map(|bs| (dir, bs))
                .map_err(|source| MirrorError::Store {
                    what: format!("store {}", dir.display()),
                    source,
                })
        })
        .transpose()?;
    let prov = |source: &str| Provenance {
        source: source.to_string(),
        retrieved: Some(retrieved.to_string()),
        ..Default::default()
    };

    for (i, img) in m.spec.images.iter().enumerate() {
        let what = format!("spec.images[{i}] ({})", img.reference);
        let src = img
            .source(base)
            .map_err(|e| MirrorError::Invalid(format!("{what}: {e}")))?;
        let name = match (&img.name, &src) {
            (Some(n), _) => n.clone(),
            (None, ImageSource::Registry(r)) => r.to_string(),
            (None, _) => return Err(MirrorError::Invalid(format!("{what}: `name` is required for local image sources (the reference it is served under)"))),
        };
        if !names.insert(("image", name.clone())) {
            return Err(MirrorError::Invalid(format!(
                "{what}: image name {name:?} repeats"
            )));
        }
        let (layout, tag): (Box<dyn LayoutSource>, Option<String>) = match src {
            ImageSource::Layout { path, tag } => (Box::new(DirSource::open(&path)?), tag),
            ImageSource::Archive { path, tag } => (Box::new(ArchiveSource::open(&path)?), tag),
            ImageSource::Registry(r) => {
                let store = store.ok_or_else(|| {
                    MirrorError::Invalid(format!(
                        "{what}: registry images need a store (--store or AIRLOCK_STORE)"
                    ))
                })?;
                let synced =
                    crate::sync::planned(store, &r, &name, img.platforms.as_deref(), retrieved)
                        .map_err(|e| MirrorError::Invalid(format!("{what}: {e}")))?;
                for (k, s) in synced.into_iter().enumerate() {
                    // The image's own name is taken above; a signature shared by two entries
                    // of the manifest is carried once.
                    if k > 0 && !names.insert(("image", s.artifact.name.clone())) {
                        continue;
                    }
                    index_entries.push(index_entry(&s.root, ArtifactKind::Image, &s.artifact.name));
                    artifacts.push(s.artifact);
                    add_blobs(s.blobs, &mut blobs);
                }
                continue;
            }
        };
        let root = local::select(layout.as_ref(), tag.as_deref())
            .map_err(|e| MirrorError::Invalid(format!("{what}: {e}")))?;
        let r = local::resolve(layout.as_ref(), root, img.platforms.as_deref())?;
        tracing::info!(image = %name, digest = %r.root.digest, blobs = r.blobs.len(), "resolved image");
        let mut p = prov(&img.reference);
        p.upstream_digest = Some(r.root.digest);
        artifacts.push(Artifact {
            kind: ArtifactKind::Image,
            name: name.clone(),
            digest: r.root.digest,
            media_type: r.root.media_type.clone(),
            size: r.root.size,
            provenance: p,
            platforms_omitted: r.platforms_omitted.clone(),
        });
        index_entries.push(index_entry(&r.root, ArtifactKind::Image, &name));
        add_blobs(r.blobs, &mut blobs);
    }

    // Hash every model file and plain file at once, on all cores: this is most of the time
    // `pack` spends before it can write the signed manifest.
    let (models, files) = rayon::join(
        || {
            m.spec
                .models
                .par_iter()
                .enumerate()
                .map(|(i, spec)| {
                    let what = format!("spec.models[{i}] ({})", spec.name);
                    let src = spec
                        .source(base)
                        .map_err(|e| MirrorError::Invalid(format!("{what}: {e}")))?;
                    resolve_model(spec, src, opened.as_ref(), hashing)
                        .map_err(|e| MirrorError::Invalid(format!("{what}: {e}")))
                })
                .collect::<Result<Vec<_>, MirrorError>>()
        },
        || {
            m.spec
                .files
                .par_iter()
                .map(|f| {
                    let expected = f
                        .sha256
                        .as_deref()
                        .map(Digest::from_hex)
                        .transpose()
                        .map_err(|e| MirrorError::Invalid(format!("file {:?}: {e}", f.name)))?;
                    let path = match (&f.url, expected) {
                        (Some(url), Some(d)) => {
                            url_file_path(opened.as_ref(), &d).map_err(|e| {
                                MirrorError::Invalid(format!("file {:?} ({url}): {e}", f.name))
                            })?
                        }
                        _ => base.join(&f.path),
                    };
                    model::file_artifact(&f.name, &path, expected.as_ref(), hashing)
                })
                .collect::<Result<Vec<_>, MirrorError>>()
        },
    );
    // Models, files and closures: one manifest each, named in index.json.
    let mut add_built = |kind: ArtifactKind,
                         name: &str,
                         built: model::BuiltArtifact,
                         provenance: Provenance,
                         extra: Option<(&str, String)>| {
        artifacts.push(Artifact {
            kind,
            name: name.to_string(),
            digest: built.root.digest,
            media_type: built.root.media_type.clone(),
            size: built.root.size,
            provenance,
            platforms_omitted: vec![],
        });
        let mut entry = index_entry(&built.root, kind, name);
        if let Some((k, v)) = extra {
            entry.annotations.insert(k.to_string(), v);
        }
        index_entries.push(entry);
        add_blobs(built.blobs, &mut blobs);
    };
    for (spec, (built, license, upstream)) in m.spec.models.iter().zip(models?) {
        tracing::info!(model = %spec.name, digest = %built.root.digest, files = built.blobs.len() - 2, "resolved model");
        let mut p = prov(&spec.source);
        p.license = license;
        p.lineage = spec
            .lineage
            .as_ref()
            .map(|l| serde_json::to_value(l).expect("lineage serializes"));
        if let Some(u) = upstream {
            p.revision = Some(u.revision);
            p.commit = Some(u.commit);
            p.registry = u.endpoint;
            if let Some(r) = u.retrieved {
                p.retrieved = Some(r);
            }
        }
        add_built(ArtifactKind::Model, &spec.name, built, p, None);
    }
    for (f, built) in m.spec.files.iter().zip(files?) {
        add_built(
            ArtifactKind::File,
            &f.name,
            built,
            prov(f.url.as_deref().unwrap_or(&f.path)),
            None,
        );
    }

    for (i, spec) in m.spec.debs.iter().enumerate() {
        let what = format!("spec.debs[{i}] ({})", spec.name);
        let (store_dir, bs) = opened.as_ref().ok_or_else(|| {
            MirrorError::Invalid(format!(
                "{what}: Debian closures need a store (--store or AIRLOCK_STORE)"
            ))
        })?;
        let rec = crate::debs::load_record(store_dir, &spec.name)?
            .filter(|r| crate::debs::record_matches(r, spec, base))
            .ok_or_else(|| {
                MirrorError::Invalid(format!(
                    "{what}: not resolved in the store {} for this manifest; run `airlock sync`",
                    store_dir.display()
                ))
            })?;
        let built = model::debs_artifact(&rec, bs)?;
        tracing::info!(debs = %spec.name, packages = rec.packages.len(), digest = %built.root.digest, "resolved closure");
        let mut p = prov(&format!("debs:{}", spec.name));
        p.retrieved = Some(rec.resolved.clone());
        add_built(
            ArtifactKind::Debs,
            &spec.name,
            built,
            p,
            Some((
                media::ANNOTATION_AIRLOCK_DEBS_PACKAGES,
                rec.packages.len().to_string(),
            )),
        );
    }

    let index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: index_entries,
        annotations: BTreeMap::new(),
    };
    let index_json = serde_json::to_vec(&index).expect("index serializes");
    Ok(Plan {
        artifacts,
        blobs,
        index_json,
    })
}

/// Where the store keeps the `url:` file with digest `d` (downloaded by `airlock sync`).
fn url_file_path(
    store: Option<&(&Path, airlock_store::BlobStore)>,
    d: &Digest,
) -> Result<std::path::PathBuf, String> {
    let (store, bs) = store.ok_or("url: files need a store (--store or AIRLOCK_STORE)")?;
    bs.local_path(d).filter(|p| p.is_file()).ok_or_else(|| {
        format!(
            "{d} is not in the store {}; run `airlock sync`",
            store.display()
        )
    })
}

/// Where a mirrored model came from upstream.
struct Upstream {
    revision: String,
    commit: String,
    endpoint: Option<String>,
    retrieved: Option<String>,
}

type ResolvedModel = (
    crate::model::BuiltArtifact,
    Option<String>,
    Option<Upstream>,
);

/// The artifact `pack` makes of one model of a manifest (`dir:` and `hf-cache:` sources; `hf:`
/// sources need the store `airlock sync` fills), so that what describes a model outside a
/// pack (`airlock sbom`) describes the very artifact a bundle would carry.
pub fn model_artifact_of(
    spec: &airlock_core::manifest::ModelSpec,
    base: &Path,
    progress: &dyn Progress,
) -> Result<model::BuiltArtifact, MirrorError> {
    let src = spec.source(base).map_err(MirrorError::Invalid)?;
    Ok(resolve_model(spec, src, None, &model::Hashing::new(progress))?.0)
}

/// Builds the artifact of one model source.
fn resolve_model(
    spec: &airlock_core::manifest::ModelSpec,
    src: ModelSource,
    store: Option<&(&Path, airlock_store::BlobStore)>,
    hashing: &model::Hashing<'_>,
) -> Result<ResolvedModel, MirrorError> {
    let filter = crate::glob::Filter::new(&spec.include, &spec.exclude);
    let hf_annotations = |repo: &str, commit: &str| {
        BTreeMap::from([
            (model::ANNOTATION_HF_REPO.to_string(), repo.to_string()),
            (model::ANNOTATION_HF_COMMIT.to_string(), commit.to_string()),
        ])
    };
    match src {
        ModelSource::Dir { path } => {
            // Symbolic links inside the directory are followed only while they stay in it: a
            // link to /etc or to another user's files is refused, as `airlock scan` does.
            let (built, license) = model::model_from_dir(
                &spec.name,
                &path,
                spec.license.as_deref(),
                &filter,
                Some(&path),
                BTreeMap::new(),
                hashing,
            )?;
            Ok((built, license, None))
        }
        ModelSource::HfCache { path, revision } => {
            let (dir, commit) = crate::hf::cache_snapshot(&path, &revision)?;
            let repo = spec.upstream_repo().unwrap_or_else(|| spec.name.clone());
            let (built, license) = model::model_from_dir(
                &spec.name,
                &dir,
                spec.license.as_deref(),
                &filter,
                Some(&path),
                hf_annotations(&repo, &commit),
                hashing,
            )?;
            Ok((
                built,
                license,
                Some(Upstream {
                    revision,
                    commit,
                    endpoint: None,
                    retrieved: None,
                }),
            ))
        }
        ModelSource::Hf { repo, revision } => {
            let (store_dir, bs) = store.ok_or_else(|| {
                MirrorError::Invalid("hf: models need a store (--store or AIRLOCK_STORE)".into())
            })?;
            let rec = crate::hf::load_record(store_dir, &repo, &revision)?.ok_or_else(|| {
                MirrorError::Invalid(format!(
                    "{repo}@{revision} is not in the store {}; run `airlock sync`",
                    store_dir.display()
                ))
            })?;
            let files = crate::hf::record_files(bs, &rec, &filter)?;
            let license = spec.license.clone().or_else(|| {
                files
                    .iter()
                    .find(|f| f.rel.eq_ignore_ascii_case("README.md"))
                    .and_then(|f| bs.read_verified(&f.digest, 1 << 20).ok())
                    .and_then(|b| model::card_license(&b))
            });
            let built = model::model_artifact(
                &spec.name,
                files,
                license.as_deref(),
                hf_annotations(&repo, &rec.commit),
            );
            Ok((
                built,
                license,
                Some(Upstream {
                    revision,
                    commit: rec.commit,
                    endpoint: Some(rec.endpoint),
                    retrieved: Some(rec.retrieved),
                }),
            ))
        }
    }
}

/// The `index.json` descriptor of an artifact. Images carry both the containerd name and the
/// OCI ref name (the full reference), so `ctr images import`, skopeo and umoci agree on it.
/// Models and files carry airlock's own annotations only, so containerd does not try to import
/// them as images.
fn index_entry(root: &Descriptor, kind: ArtifactKind, name: &str) -> Descriptor {
    let mut d = root.clone();
    d.platform = None;
    let mut ann = BTreeMap::new();
    ann.insert(media::ANNOTATION_AIRLOCK_KIND.to_string(), kind.to_string());
    match kind {
        ArtifactKind::Image => {
            ann.insert(
                media::ANNOTATION_CONTAINERD_NAME.to_string(),
                name.to_string(),
            );
            ann.insert(media::ANNOTATION_REF_NAME.to_string(), name.to_string());
        }
        _ => {
            ann.insert(media::ANNOTATION_AIRLOCK_NAME.to_string(), name.to_string());
        }
    }
    d.annotations = ann;
    d
}
