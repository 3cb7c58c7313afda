//! `airlock sbom SOURCE`: a CycloneDX 1.6 (or, with `--format spdx-json`, SPDX 2.3) software
//! bill of materials of a root filesystem directory (`dir:PATH`) or an image in an OCI layout
//! (`oci:LAYOUT[:TAG]`), from airlock-sbom's catalogers. CycloneDX output is deterministic:
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

pub fn run(_cli: &Cli, a: &SbomArgs) -> Result<u8> {
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
        bail!(
            "source {:?}: expected dir:PATH or oci:LAYOUT[:TAG]",
            a.source
        );
    };
    for (path, size) in &files.skipped {
        tracing::warn!(
            "{path}: {size} bytes, over the limit ({} bytes, {} for executables); not catalogued",
            limits.max_file,
            limits.max_binary
        );
    }
    let packages = catalog(&files).with_context(|| format!("SBOM of {}", a.source))?;
    let tool = Tool {
        name: "airlock".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let distro = Distro::of(&files);
    let doc = match a.format {
        SbomFormat::CyclonedxJson => render(
            &packages,
            &distro,
            &subject,
            &tool,
            source_date()?.as_deref(),
        ),
        SbomFormat::SpdxJson => {
            let created = match source_date()? {
                Some(t) => t,
                None => airlock_core::time::format_rfc3339(airlock_core::time::now_checked()?),
            };
            airlock_sbom::spdx::render(&packages, &distro, &subject, &tool, &created)
        }
    };
    match &a.out {
        Some(p) => std::fs::write(p, &doc).with_context(|| format!("writing {}", p.display()))?,
        None => {
            use std::io::Write as _;
            std::io::stdout().lock().write_all(&doc)?;
        }
    }
    tracing::info!("{}: {} packages", a.source, packages.len());
    Ok(0)
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
