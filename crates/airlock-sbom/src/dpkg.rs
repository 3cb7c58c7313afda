//! Debian packages from dpkg's database: `var/lib/dpkg/status` and the per-package files of
//! `var/lib/dpkg/status.d/` (distroless images), parsed with airlock-deb's bounded deb822
//! reader.
//!
//! A paragraph counts when its `Status` is `install ok installed` or `hold ok installed`;
//! files in `status.d/` often carry no `Status` and then count too. Licences come from
//! `usr/share/doc/PACKAGE/copyright` only when it is a machine-readable (DEP-5) file: the
//! first line of each `License:` field. A free-form copyright file names no licence that can
//! be read reliably, so none is reported.

use std::collections::BTreeSet;

use airlock_deb::control::paragraphs;

use crate::files::Files;
use crate::{Ecosystem, Licenses, Package, SbomError};

/// The installed Debian packages among `files`.
pub fn catalog(files: &Files) -> Result<Vec<Package>, SbomError> {
    let mut out = Vec::new();
    for (path, file) in files.iter() {
        let in_dir = path.starts_with("var/lib/dpkg/status.d/");
        if path != "var/lib/dpkg/status" && !in_dir {
            continue;
        }
        // status.d also holds `NAME.md5sums` files next to the paragraphs.
        if in_dir && path.ends_with(".md5sums") {
            continue;
        }
        let text = std::str::from_utf8(&file.data)
            .map_err(|e| SbomError::Invalid(format!("{path}: not UTF-8: {e}")))?;
        for p in paragraphs(text) {
            let p = p.map_err(|e| SbomError::Invalid(format!("{path}: {e}")))?;
            let n = p.number;
            let Some(name) = p.get("Package") else {
                return Err(SbomError::Invalid(format!(
                    "{path}: paragraph {n}: no Package field"
                )));
            };
            let status: Vec<&str> = p.get("Status").unwrap_or("").split_whitespace().collect();
            let installed = matches!(status.as_slice(), ["install" | "hold", "ok", "installed"])
                || (in_dir && status.is_empty());
            if !installed {
                continue;
            }
            let version = p.get("Version").unwrap_or("");
            if !airlock_deb::version::is_valid(version) {
                return Err(SbomError::Invalid(format!(
                    "{path}: paragraph {n} ({name}): bad Version {:?}",
                    clip(version)
                )));
            }
            // `Source: NAME (VERSION)` when the source version differs.
            let source = p
                .get("Source")
                .and_then(|s| s.split_whitespace().next())
                .filter(|s| *s != name)
                .map(str::to_string);
            let doc = format!("usr/share/doc/{name}/copyright");
            let licenses = files
                .get(&doc)
                .map(|f| dep5_licenses(&String::from_utf8_lossy(&f.data)))
                .unwrap_or_default();
            out.push(Package {
                ecosystem: Ecosystem::Deb,
                name: name.to_string(),
                version: version.to_string(),
                arch: p.get("Architecture").map(str::to_string),
                source_package: source,
                supplier: p.get("Maintainer").map(|m| one_line(m).to_string()),
                licenses,
                location: path.to_string(),
                layer: file.layer.clone(),
            });
        }
    }
    Ok(out)
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn one_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// The licence short names of a machine-readable copyright file (DEP-5), or none when the
/// file is free-form. Read line by line rather than as deb822 paragraphs: real copyright
/// files repeat fields and carry text deb822 readers reject.
pub fn dep5_licenses(text: &str) -> Licenses {
    let mut lines = text.lines().take(100_000);
    let first = lines.next().unwrap_or("");
    let is_dep5 = first
        .split_once(':')
        .is_some_and(|(k, v)| k.eq_ignore_ascii_case("Format") && v.contains("copyright-format"));
    if !is_dep5 {
        return Licenses::None;
    }
    let mut names = BTreeSet::new();
    for line in text.lines().take(100_000) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if !k.eq_ignore_ascii_case("License") {
            continue;
        }
        let v = v.trim();
        if !v.is_empty() && v.len() <= 200 && names.len() < 100 {
            names.insert(v.to_string());
        }
    }
    if names.is_empty() {
        Licenses::None
    } else {
        Licenses::Names(names.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{File, Limits};

    fn files(entries: &[(&str, &str)]) -> Files {
        let mut f = Files::default();
        for (p, d) in entries {
            f.insert(
                p.to_string(),
                File {
                    data: d.as_bytes().to_vec(),
                    layer: Some("sha256:aa".into()),
                },
                &Limits::default(),
                "test",
            )
            .unwrap();
        }
        f
    }

    const STATUS: &str = "Package: bash\nStatus: install ok installed\nArchitecture: amd64\n\
Source: bash (5.2-1)\nVersion: 5.2.15-2+b2\nMaintainer: Matthias Klose <doko@debian.org>\n\n\
Package: gone\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 1.0\n\n\
Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\n\
Version: 2.36-9\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n";

    #[test]
    fn installed_packages_with_source_maintainer_and_dep5_licences() {
        let f = files(&[
            ("var/lib/dpkg/status", STATUS),
            (
                "usr/share/doc/bash/copyright",
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n\
Files: *\nLicense: GPL-3+\n\nFiles: x\nLicense: BSD-4-clause\n text\n",
            ),
            (
                "usr/share/doc/libc6/copyright",
                "This is free-form.\nLicense: GPL\n",
            ),
        ]);
        let p = catalog(&f).unwrap();
        assert_eq!(p.len(), 2, "the config-files package is not installed");
        assert_eq!(p[0].name, "bash");
        assert_eq!(p[0].source_package, None, "same name as the binary");
        assert_eq!(
            p[0].supplier.as_deref(),
            Some("Matthias Klose <doko@debian.org>")
        );
        assert_eq!(
            p[0].licenses,
            Licenses::Names(vec!["BSD-4-clause".into(), "GPL-3+".into()])
        );
        assert_eq!(p[1].source_package.as_deref(), Some("glibc"));
        assert_eq!(p[1].licenses, Licenses::None, "free-form copyright");
        assert_eq!(p[1].layer.as_deref(), Some("sha256:aa"));
    }

    #[test]
    fn status_d_paragraphs_without_status_count_and_bad_versions_are_named() {
        let f = files(&[(
            "var/lib/dpkg/status.d/base",
            "Package: base-files\nVersion: 12.4\nArchitecture: amd64\n",
        )]);
        assert_eq!(catalog(&f).unwrap()[0].name, "base-files");
        let f = files(&[(
            "var/lib/dpkg/status",
            "Package: x\nStatus: install ok installed\nVersion: 1 2\n",
        )]);
        let e = catalog(&f).unwrap_err().to_string();
        assert!(
            e.contains("var/lib/dpkg/status: paragraph 1 (x): bad Version"),
            "{e}"
        );
    }
}
