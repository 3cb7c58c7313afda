//! The packages of a Debian package closure (`spec.debs`), from its resolution record.
//!
//! The record is the closure artifact's config, bound by digest into the signed bundle
//! manifest; each package's paragraph from the signed source's `Packages` index is in it. So
//! the SBOM of a closure is built from those paragraphs without opening a `.deb`: name,
//! version, architecture, source package (`Source`, first word) and supplier (`Maintainer`).
//! Licences are not listed: the index carries none, and reading them would mean unpacking each
//! `.deb`'s data archive for a copyright file that is often free-form.
//!
//! The package URLs name the release the closure was resolved for, taken from the suites of
//! its sources (`bookworm`, `bookworm-security` → `debian-12`; `noble-updates` →
//! `ubuntu-24.04`), so that the appliance matches them against that release's advisories.
//! When the suites name no release airlock knows, or name two, the URLs carry no `distro`
//! qualifier and the appliance counts the packages as not matchable rather than guess.

use airlock_core::debs::ClosureRecord;
use airlock_deb::control::paragraphs;

use crate::{Distro, Ecosystem, Licenses, Package, SbomError};

/// Debian and Ubuntu code names and their release numbers. Rolling names (`stable`,
/// `testing`, `sid`) are left out: their release changes under them.
const RELEASES: &[(&str, &str, &str)] = &[
    ("jessie", "debian", "8"),
    ("stretch", "debian", "9"),
    ("buster", "debian", "10"),
    ("bullseye", "debian", "11"),
    ("bookworm", "debian", "12"),
    ("trixie", "debian", "13"),
    ("forky", "debian", "14"),
    ("bionic", "ubuntu", "18.04"),
    ("focal", "ubuntu", "20.04"),
    ("jammy", "ubuntu", "22.04"),
    ("noble", "ubuntu", "24.04"),
];

/// The release a suite name belongs to: `bookworm`, `bookworm-updates`, `bookworm-security`,
/// `bookworm/updates` → Debian 12.
pub fn release_of_suite(suite: &str) -> Option<Distro> {
    let code = suite.split(['-', '/']).next()?;
    RELEASES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, id, v)| Distro {
            id: Some(id.to_string()),
            version_id: Some(v.to_string()),
        })
}

/// The release the closure's sources agree on (flat repositories, which name no suite, do
/// not count), or a distro with neither id nor version.
pub fn distro_of(rec: &ClosureRecord) -> Distro {
    let mut found: Option<Distro> = None;
    for s in rec.sources.iter().filter(|s| !s.flat) {
        let Some(d) = s.suite.as_deref().and_then(release_of_suite) else {
            continue;
        };
        match &found {
            None => found = Some(d),
            Some(f) if *f == d => {}
            Some(_) => return Distro::default(),
        }
    }
    found.unwrap_or_default()
}

/// The packages of the closure, one per package record. `location` is the package's pool
/// file name and `layer` the `.deb`'s digest.
pub fn packages(rec: &ClosureRecord) -> Result<Vec<Package>, SbomError> {
    let mut out = Vec::with_capacity(rec.packages.len());
    for p in &rec.packages {
        let bad = |what: String| SbomError::Invalid(format!("closure package {}: {what}", p.name));
        let para = paragraphs(&p.stanza)
            .next()
            .ok_or_else(|| bad("empty index paragraph".into()))?
            .map_err(|e| bad(e.to_string()))?;
        if para.get("Package") != Some(p.name.as_str())
            || para.get("Version") != Some(p.version.as_str())
        {
            return Err(bad(
                "the index paragraph names another package or version".into()
            ));
        }
        if !airlock_deb::version::is_valid(&p.version) {
            return Err(bad(format!("bad version {:?}", p.version)));
        }
        let source = para
            .get("Source")
            .and_then(|s| s.split_whitespace().next())
            .filter(|s| *s != p.name)
            .map(str::to_string);
        out.push(Package {
            ecosystem: Ecosystem::Deb,
            name: p.name.clone(),
            version: p.version.clone(),
            arch: Some(p.architecture.clone()),
            source_package: source,
            supplier: para
                .get("Maintainer")
                .map(|m| m.lines().next().unwrap_or("").trim().to_string()),
            licenses: Licenses::None,
            location: p.filename.clone(),
            layer: Some(format!("sha256:{}", p.sha256)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::debs::{PackageRecord, SourceRecord};

    fn source(suite: Option<&str>, flat: bool) -> SourceRecord {
        SourceRecord {
            uri: "http://deb.example/debian".into(),
            suite: suite.map(str::to_string),
            components: vec![],
            flat,
            release_file: "InRelease".into(),
            release_sha256: "0".repeat(64),
            signer: "F".repeat(40),
            keyring: vec![],
            date: None,
            valid_until: None,
            indexes: vec![],
        }
    }

    fn package(name: &str, version: &str, stanza: &str) -> PackageRecord {
        PackageRecord {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            source: 0,
            filename: format!("pool/main/{name}_{version}_amd64.deb"),
            size: 1,
            sha256: "ab".repeat(32),
            chain: vec![name.into()],
            stanza: stanza.into(),
        }
    }

    fn record(sources: Vec<SourceRecord>, packages: Vec<PackageRecord>) -> ClosureRecord {
        ClosureRecord {
            name: "gpu".into(),
            arch: "amd64".into(),
            recommends: false,
            requested: vec![],
            baseline: None,
            resolved: "2026-12-01T00:00:00Z".into(),
            sources,
            packages,
        }
    }

    #[test]
    fn suites_name_their_release() {
        let d = release_of_suite("bookworm-security").unwrap();
        assert_eq!(d.id.as_deref(), Some("debian"));
        assert_eq!(d.version_id.as_deref(), Some("12"));
        assert_eq!(
            release_of_suite("noble-updates")
                .unwrap()
                .version_id
                .as_deref(),
            Some("24.04")
        );
        assert!(release_of_suite("stable").is_none());
        assert!(release_of_suite("sid").is_none());
    }

    #[test]
    fn the_release_is_the_one_every_suite_agrees_on() {
        let r = record(
            vec![
                source(Some("bookworm"), false),
                source(Some("bookworm-updates"), false),
                source(None, true),
            ],
            vec![],
        );
        assert_eq!(distro_of(&r).version_id.as_deref(), Some("12"));
        let r = record(
            vec![
                source(Some("bookworm"), false),
                source(Some("trixie"), false),
            ],
            vec![],
        );
        assert_eq!(distro_of(&r), Distro::default());
        let r = record(vec![source(Some("stable"), false)], vec![]);
        assert_eq!(distro_of(&r), Distro::default());
    }

    #[test]
    fn packages_come_from_the_index_paragraphs() {
        let r = record(
            vec![source(Some("bookworm"), false)],
            vec![
                package(
                    "libnvidia-ml1",
                    "535.216.01-1~deb12u1",
                    "Package: libnvidia-ml1\nSource: nvidia-graphics-drivers (535.216.01-1~deb12u1)\nVersion: 535.216.01-1~deb12u1\nMaintainer: Debian NVIDIA Maintainers <pkg-nvidia-devel@lists.alioth.debian.org>\nArchitecture: amd64\n",
                ),
                package("hello", "2.10-3", "Package: hello\nVersion: 2.10-3\n"),
            ],
        );
        let p = packages(&r).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].source_package.as_deref(),
            Some("nvidia-graphics-drivers")
        );
        assert_eq!(
            p[0].supplier.as_deref(),
            Some("Debian NVIDIA Maintainers <pkg-nvidia-devel@lists.alioth.debian.org>")
        );
        assert_eq!(
            p[0].layer.as_deref(),
            Some(&*format!("sha256:{}", "ab".repeat(32)))
        );
        assert_eq!(p[1].source_package, None);
        let purl = crate::cyclonedx::purl(&p[0], &distro_of(&r));
        assert_eq!(
            purl,
            "pkg:deb/debian/libnvidia-ml1@535.216.01-1~deb12u1?arch=amd64&distro=debian-12&upstream=nvidia-graphics-drivers"
        );
    }

    #[test]
    fn a_paragraph_that_disagrees_with_its_record_is_refused() {
        let r = record(vec![], vec![package("a", "1", "Package: b\nVersion: 1\n")]);
        let e = packages(&r).unwrap_err().to_string();
        assert!(e.contains("closure package a"), "{e}");
        let r = record(vec![], vec![package("a", "1", "")]);
        assert!(packages(&r).is_err());
    }
}
