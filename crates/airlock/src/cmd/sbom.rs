//! `airlock sbom SOURCE`: a CycloneDX 1.6 (or, with `--format spdx-json`, SPDX 2.3) software
//! bill of materials of a root filesystem directory (`dir:PATH`) or an image in an OCI layout
//! (`oci:LAYOUT[:TAG]`), from airlock-sbom's catalogers; with `--model NAME` (or an
//! `hf-cache:` source), a CycloneDX ML-BOM of the model artifact `airlock pack` would make. CycloneDX output is deterministic:
//! `metadata.timestamp` comes from `SOURCE_DATE_EPOCH` when it is set and is left out
//! otherwise. SPDX requires a creation time: `SOURCE_DATE_EPOCH`, else the current time.

use std::path::Path;

use airlock_mirror::local::{select, DirSource};
use airlock_sbom::cyclonedx::{render, Subject, Tool};
use airlock_sbom::{catalog, Distro, Files, Limits};
use airlock_store::layout::OciLayout;
use anyhow::{bail, Context, Result};

use crate::cli::{Cli, SbomArgs, SbomFormat};

/// `oci:LAYOUT[:TAG]` split into the layout path and the tag (the text after the last `:`,
/// when it holds no `/`).
fn split_oci(rest: &str) -> (&str, Option<&str>) {
    match rest.rsplit_once(':') {
        Some((path, tag)) if !tag.is_empty() && !tag.contains('/') && !path.is_empty() => {
            (path, Some(tag))
        }
        _ => (rest, None),
    }
}

/// The RFC 3339 time of `SOURCE_DATE_EPOCH`, if set.
fn source_date() -> Result<Option<String>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => {
            let t: i64 = v
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH {v:?} is not a whole number"))?;
            Ok(Some(airlock_core::time::format_rfc3339(t)))
        }
        _ => Ok(None),
    }
}

/// Writes `doc` where `--out` says, else to stdout.
fn emit(a: &SbomArgs, doc: &[u8]) -> Result<()> {
    match &a.out {
        Some(p) => std::fs::write(p, doc).with_context(|| format!("writing {}", p.display())),
        None => {
            use std::io::Write as _;
            Ok(std::io::stdout().lock().write_all(doc)?)
        }
    }
}

/// The ML-BOM of a model source: the ModelPack artifact `pack` would make of it (same files,
/// same licence rule, same manifest digest), described as `pack` describes it.
fn model(a: &SbomArgs) -> Result<u8> {
    use airlock_core::manifest::{Lineage, ModelSpec};
    if a.format != SbomFormat::CyclonedxJson {
        bail!("an ML-BOM is written as CycloneDX JSON only");
    }
    if !(a.source.starts_with("dir:") || a.source.starts_with("hf-cache:")) {
        bail!(
            "model source {:?}: expected dir:PATH or hf-cache:PATH/models--ORG--NAME[@REV]",
            a.source
        );
    }
    let lineage: Option<Lineage> = match &a.lineage {
        Some(p) => {
            let text = airlock_mirror::local::read_small_file(p, 1 << 20)
                .with_context(|| format!("lineage {}", p.display()))?;
            let text = String::from_utf8(text)
                .with_context(|| format!("lineage {}: not UTF-8", p.display()))?;
            Some(
                serde_norway::from_str(&text)
                    .with_context(|| format!("lineage {}", p.display()))?,
            )
        }
        None => None,
    };
    let mut spec = ModelSpec {
        name: a.model.clone().unwrap_or_default(),
        source: a.source.clone(),
        include: vec![],
        exclude: vec![],
        license: a.license.clone(),
        lineage: lineage.clone(),
    };
    if spec.name.is_empty() {
        spec.name = spec
            .upstream_repo()
            .context("--model NAME is required for dir: sources")?;
    }
    airlock_core::manifest::check_repo_id(&spec.name).map_err(anyhow::Error::msg)?;
    let built =
        airlock_mirror::plan::model_artifact_of(&spec, Path::new("."), &airlock_bundle::NoProgress)
            .with_context(|| format!("model {}", a.source))?;
    let blobs = built.blobs.iter().map(|b| (b.digest, b)).collect();
    let model = crate::sboms::ml_model(&spec.name, &built.root, &blobs, lineage)?;
    let tool = Tool {
        name: "airlock".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let doc = airlock_sbom::mlbom::render(&model, &tool, source_date()?.as_deref());
    emit(a, &doc)?;
    tracing::info!(
        "{}: model {}, {} files",
        a.source,
        spec.name,
        model.files.len()
    );
    Ok(0)
}

/// The SBOM of an image named as a manifest names one (`oci-archive:FILE[:TAG]`, or a
/// registry reference read from the store), planned as `pack` plans it and catalogued from the
/// same blobs.
fn image(a: &SbomArgs) -> Result<u8> {
    let registry = !a.source.contains(':')
        || !a
            .source
            .split(':')
            .next()
            .is_some_and(|s| !s.contains('.') && !s.contains('/') && s != "localhost");
    if !(a.source.starts_with("oci-archive:") || registry) {
        bail!(
            "source {:?}: expected dir:PATH, oci:LAYOUT[:TAG], oci-archive:FILE[:TAG] or a registry reference HOST/REPO[:TAG]",
            a.source
        );
    }
    let entry = serde_json::json!({
        "ref": a.source,
        "name": if registry { a.source.clone() } else { "sbom.invalid/subject:latest".into() },
    });
    let text = serde_json::json!({
        "apiVersion": "airlock/v1",
        "kind": "Bundle",
        "metadata": {"name": "sbom", "version": "0"},
        "spec": {"images": [entry]},
    })
    .to_string();
    let m = airlock_core::manifest::InputManifest::parse(&text, &a.source)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = registry.then(|| super::sync::store_dir(a.store.as_ref()));
    let now = airlock_core::time::format_rfc3339(airlock_core::time::now_checked()?);
    let plan = airlock_mirror::plan::plan_with_store(
        &m,
        Path::new("."),
        &now,
        store.as_deref(),
        &airlock_bundle::NoProgress,
    )
    .with_context(|| format!("image {}", a.source))?;
    let blobs = plan.blobs.iter().map(|b| (b.digest, b)).collect();
    let artifact = plan
        .artifacts
        .iter()
        .find(|x| x.kind == airlock_core::bundle::ArtifactKind::Image)
        .context("the plan holds no image")?;
    let mut images = crate::sboms::image_packages(artifact, &blobs, &Limits::default())
        .with_context(|| format!("SBOM of {}", a.source))?;
    let platforms = images
        .iter()
        .map(|c| c.name.rsplit_once('@').map_or("?", |(_, p)| p).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(p) = &a.platform {
        images.retain(|c| c.name.ends_with(&format!("@{p}")));
        if images.is_empty() {
            bail!("{}: no platform {p} (the image has {platforms})", a.source);
        }
    }
    let c = match images.len() {
        1 => images.remove(0),
        0 => bail!(
            "{}: no image manifest with tar layers to describe",
            a.source
        ),
        n => bail!(
            "{}: an index of {n} platforms ({platforms}); name one with --platform OS/ARCH",
            a.source
        ),
    };
    let subject = Subject {
        kind: "container",
        name: a.source.clone(),
        version: Some(c.desc.digest.to_string()),
        supplier: a.supplier.clone(),
    };
    write(a, &c.packages, &c.distro, &subject)
}

/// Renders the SBOM of `packages` in the format asked for and writes it.
fn write(
    a: &SbomArgs,
    packages: &[airlock_sbom::Package],
    distro: &Distro,
    subject: &Subject,
) -> Result<u8> {
    let tool = Tool {
        name: "airlock".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let doc = match a.format {
        SbomFormat::CyclonedxJson => {
            render(packages, distro, subject, &tool, source_date()?.as_deref())
        }
        SbomFormat::SpdxJson => {
            let created = match source_date()? {
                Some(t) => t,
                None => airlock_core::time::format_rfc3339(airlock_core::time::now_checked()?),
            };
            airlock_sbom::spdx::render(packages, distro, subject, &tool, &created)
        }
    };
    emit(a, &doc)?;
    tracing::info!("{}: {} packages", a.source, packages.len());
    Ok(0)
}

pub fn run(_cli: &Cli, a: &SbomArgs) -> Result<u8> {
    if a.model.is_some() || a.source.starts_with("hf-cache:") {
        return model(a);
    }
    if a.license.is_some() || a.lineage.is_some() {
        bail!("--license and --lineage describe a model: use them with --model NAME");
    }
    let limits = Limits::default();
    let (files, subject) = if let Some(path) = a.source.strip_prefix("dir:") {
        let files = Files::from_dir(Path::new(path), &limits)
            .with_context(|| format!("SBOM of {}", a.source))?;
        let subject = Subject {
            kind: "file",
            name: a.source.clone(),
            version: None,
            supplier: a.supplier.clone(),
        };
        (files, subject)
    } else if let Some(rest) = a.source.strip_prefix("oci:") {
        let (path, tag) = split_oci(rest);
        let src = DirSource::open(Path::new(path))?;
        let desc = select(&src, tag)?;
        let layout =
            OciLayout::open(Path::new(path)).with_context(|| format!("OCI layout {path}"))?;
        let files = Files::from_image(&layout, &desc, &limits)
            .with_context(|| format!("SBOM of {}", a.source))?;
        let subject = Subject {
            kind: "container",
            name: a.source.clone(),
            version: Some(desc.digest.to_string()),
            supplier: a.supplier.clone(),
        };
        (files, subject)
    } else {
        return image(a);
    };
    for (path, size) in &files.skipped {
        tracing::warn!(
            "{path}: {size} bytes, over the limit ({} bytes, {} for executables); not catalogued",
            limits.max_file,
            limits.max_binary
        );
    }
    let packages = catalog(&files).with_context(|| format!("SBOM of {}", a.source))?;
    write(a, &packages, &Distro::of(&files), &subject)
}

#[cfg(test)]
mod tests {
    use super::split_oci;

    #[test]
    fn oci_sources_split_at_a_tag_without_slashes() {
        assert_eq!(split_oci("layouts/hello:v1"), ("layouts/hello", Some("v1")));
        assert_eq!(split_oci("layouts/hello"), ("layouts/hello", None));
        assert_eq!(split_oci("/a:b/layout"), ("/a:b/layout", None));
    }
}
