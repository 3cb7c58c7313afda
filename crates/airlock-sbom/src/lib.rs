//! Software bills of materials: the packages installed in a root filesystem directory or an
//! OCI image, written as CycloneDX 1.6 JSON.
//!
//! Three steps, each its own module:
//! - [`files`] gathers only the files the catalogers read (dpkg status files, copyright files,
//!   Python package metadata, npm `package.json`, apk and rpm databases, `os-release`) into
//!   memory, from a directory tree or from an image's layers in order with whiteouts
//!   applied; every file, the file count and the total are bounded ([`Limits`]).
//!   Executables are not kept: each ELF file is read on its own and only what [`binary`]
//!   takes out of it (Go build information, `cargo auditable` crate lists) is.
//! - [`dpkg`], [`python`], [`npm`], [`apk`], [`rpm`], [`golang`] and [`rust`] turn those
//!   into [`Package`]s.
//! - [`cyclonedx`] renders the packages as a deterministic CycloneDX document: sorted
//!   components, a serial number derived from the content, no timestamp unless the caller
//!   passes one (`SOURCE_DATE_EPOCH`), so the same input gives the same bytes; [`spdx`]
//!   renders the same packages as SPDX 2.3.
//! - [`mlbom`] describes a model instead of a filesystem: a CycloneDX ML-BOM whose subject is
//!   a `machine-learning-model` with a model card taken from the model's own files.
//!
//! Everything read is untrusted (image layers, status files, METADATA): a malformed file is
//! an error that names it, never a panic, and nothing is executed. The one thing written to
//! disk is a private temporary copy of an rpm database, which SQLite reads read-only.

pub mod apk;
pub mod binary;
pub mod closure;
pub mod cyclonedx;
pub mod dpkg;
pub mod files;
pub mod golang;
pub mod mlbom;
pub mod npm;
pub mod python;
pub mod rpm;
pub mod rust;
pub mod spdx;

pub use files::{Files, Limits};

/// What went wrong, naming the file or layer.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Which ecosystem a package belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ecosystem {
    Deb,
    Python,
    Npm,
    Apk,
    Rpm,
    /// Go modules and the standard library, from an executable's build information.
    Go,
    /// Rust crates, from an executable's `cargo auditable` list.
    Cargo,
}

/// One package found in the source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    /// Architecture (`amd64`, `all`, `x86_64`, `noarch`); `None` for Python and npm packages.
    pub arch: Option<String>,
    /// The source package: Debian `Source` or apk origin when it differs from the binary
    /// package's name, the rpm `SOURCERPM` file name.
    pub source_package: Option<String>,
    /// Who supplies the package: dpkg `Maintainer`, Python `Maintainer` or `Author`, npm
    /// `author`, apk maintainer, rpm `VENDOR` or `PACKAGER`.
    pub supplier: Option<String>,
    /// Licences as declared: SPDX expression (Python `License-Expression`) or names.
    pub licenses: Licenses,
    /// The file the package was found in (relative to the root, `/`-separated): for Go
    /// modules and Rust crates, the executable.
    pub location: String,
    /// The digest of the image layer that file came from (images only).
    pub layer: Option<String>,
}

/// Declared licences of a package.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Licenses {
    #[default]
    None,
    /// One SPDX licence expression.
    Expression(String),
    /// Licence names as written (DEP-5 `License:` short names, Python `License:`).
    Names(Vec<String>),
}

/// The distribution of the root, from `etc/os-release` (or `usr/lib/os-release`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Distro {
    /// `ID` (`debian`, `ubuntu`).
    pub id: Option<String>,
    /// `VERSION_ID` (`12`, `24.04`).
    pub version_id: Option<String>,
}

impl Distro {
    /// Parses os-release text (`KEY=value`, values optionally quoted).
    pub fn parse(text: &str) -> Distro {
        let mut d = Distro::default();
        for line in text.lines().take(200) {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
            let ok = !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-~".contains(&b));
            if !ok {
                continue;
            }
            match k.trim() {
                "ID" => d.id = Some(v),
                "VERSION_ID" => d.version_id = Some(v),
                _ => {}
            }
        }
        d
    }

    /// The distribution of the gathered files, if they carry an os-release.
    pub fn of(files: &Files) -> Distro {
        for p in ["etc/os-release", "usr/lib/os-release"] {
            if let Some(f) = files.get(p) {
                return Distro::parse(&String::from_utf8_lossy(&f.data));
            }
        }
        Distro::default()
    }
}

/// Every package the catalogers find in `files`, sorted.
pub fn catalog(files: &Files) -> Result<Vec<Package>, SbomError> {
    let mut out = dpkg::catalog(files)?;
    out.extend(python::catalog(files)?);
    out.extend(npm::catalog(files)?);
    out.extend(apk::catalog(files)?);
    out.extend(rpm::catalog(files)?);
    out.extend(golang::catalog(files));
    out.extend(rust::catalog(files));
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_id_and_version_are_read_and_odd_values_ignored() {
        let d = Distro::parse("NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n");
        assert_eq!(d.id.as_deref(), Some("debian"));
        assert_eq!(d.version_id.as_deref(), Some("12"));
        let d = Distro::parse("ID=\"de bian&x\"\n");
        assert_eq!(d.id, None);
    }
}
