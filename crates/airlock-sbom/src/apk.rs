//! Alpine packages from apk's database, `lib/apk/db/installed`: one record per installed
//! package, records separated by blank lines, each line `K:value` with a one-letter key.
//!
//! Keys used: `P` name, `V` version, `A` architecture, `L` licence (as written, one name),
//! `m` maintainer (the supplier), `o` origin (the source package, reported when it differs
//! from the name). The many other keys (`F`/`R` file lists, `Z` checksums, `D` dependencies)
//! are skipped. A record without `P` or `V`, a line without a key, or a value longer than
//! [`MAX_VALUE`] is an error naming the file and record.

use crate::cyclonedx::purl_with;
use crate::files::Files;
use crate::{Distro, Ecosystem, Licenses, Package, SbomError};

/// Where apk keeps its database, relative to the root.
pub const INSTALLED: &str = "lib/apk/db/installed";

/// Longest value of a used key.
pub const MAX_VALUE: usize = 4096;

/// The Alpine packages among `files`.
pub fn catalog(files: &Files) -> Result<Vec<Package>, SbomError> {
    let Some(file) = files.get(INSTALLED) else {
        return Ok(Vec::new());
    };
    let mut out = parse(INSTALLED, &file.data)?;
    for p in &mut out {
        p.layer = file.layer.clone();
    }
    Ok(out)
}

/// Every record of an `installed` file found at `path`.
pub fn parse(path: &str, data: &[u8]) -> Result<Vec<Package>, SbomError> {
    let text = std::str::from_utf8(data)
        .map_err(|e| SbomError::Invalid(format!("{path}: not UTF-8: {e}")))?;
    let mut out = Vec::new();
    let mut rec = Record::default();
    let mut number = 1usize;
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            if let Some(p) = rec.finish(path, number)? {
                out.push(p);
                number += 1;
            }
            rec = Record::default();
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(SbomError::Invalid(format!(
                "{path}: record {number}, line {}: not KEY:value",
                i + 1
            )));
        };
        let slot = match k {
            "P" => &mut rec.name,
            "V" => &mut rec.version,
            "A" => &mut rec.arch,
            "L" => &mut rec.license,
            "m" => &mut rec.maintainer,
            "o" => &mut rec.origin,
            _ if k.len() == 1 => continue,
            _ => {
                return Err(SbomError::Invalid(format!(
                    "{path}: record {number}, line {}: key {:?} is not one letter",
                    i + 1,
                    k.chars().take(16).collect::<String>()
                )))
            }
        };
        if v.len() > MAX_VALUE {
            return Err(SbomError::Invalid(format!(
                "{path}: record {number}, line {}: {k} is longer than {MAX_VALUE} bytes",
                i + 1
            )));
        }
        let v = v.trim();
        if !v.is_empty() {
            *slot = Some(v.to_string());
        }
        rec.any = true;
    }
    if let Some(p) = rec.finish(path, number)? {
        out.push(p);
    }
    Ok(out)
}

#[derive(Default)]
struct Record {
    any: bool,
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    license: Option<String>,
    maintainer: Option<String>,
    origin: Option<String>,
}

impl Record {
    /// The package, `None` for a record of skipped keys only (or none at all).
    fn finish(self, path: &str, number: usize) -> Result<Option<Package>, SbomError> {
        if !self.any {
            return Ok(None);
        }
        let (Some(name), Some(version)) = (self.name, self.version) else {
            return Err(SbomError::Invalid(format!(
                "{path}: record {number}: no P (name) or no V (version)"
            )));
        };
        let source_package = self.origin.filter(|o| *o != name);
        Ok(Some(Package {
            ecosystem: Ecosystem::Apk,
            name,
            version,
            arch: self.arch,
            source_package,
            supplier: self.maintainer,
            licenses: match self.license {
                Some(l) => Licenses::Names(vec![l]),
                None => Licenses::None,
            },
            location: path.to_string(),
            layer: None,
        }))
    }
}

/// `pkg:apk/ID/NAME@VERSION?arch=…&distro=ID-VERSION_ID&upstream=ORIGIN` (`ID` from
/// os-release, `alpine` when there is none; `distro` only when os-release says both).
pub fn purl(p: &Package, distro: &Distro) -> String {
    let ns = distro.id.as_deref().unwrap_or("alpine");
    let d = match (&distro.id, &distro.version_id) {
        (Some(id), Some(v)) => Some(format!("{id}-{v}")),
        _ => None,
    };
    purl_with(
        "apk",
        Some(ns),
        &p.name,
        &p.version,
        &[
            ("arch", p.arch.clone()),
            ("distro", d),
            ("upstream", p.source_package.clone()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DB: &str = "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:403000\nI:700000\n\
T:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\n\
m:Natanael Copa <ncopa@alpinelinux.org>\nt:1715000000\nc:abc\nF:lib\nR:libc.musl-x86_64.so.1\n\
a:0:0:777\nZ:Q1xyz=\n\n\
C:Q1def=\nP:libcrypto3\nV:3.3.1-r0\nA:x86_64\nL:Apache-2.0\no:openssl\n\
m:Ariadne Conill <ariadne@dereferenced.org>\nD:so:libc.musl-x86_64.so.1\n\n";

    #[test]
    fn records_give_name_version_arch_licence_origin_and_maintainer() {
        let p = parse(INSTALLED, DB.as_bytes()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("musl", "1.2.5-r0")
        );
        assert_eq!(p[0].source_package, None, "origin equals the name");
        assert_eq!(
            p[0].supplier.as_deref(),
            Some("Natanael Copa <ncopa@alpinelinux.org>")
        );
        assert_eq!(p[1].source_package.as_deref(), Some("openssl"));
        assert_eq!(p[1].licenses, Licenses::Names(vec!["Apache-2.0".into()]));
        let d = Distro {
            id: Some("alpine".into()),
            version_id: Some("3.20.0".into()),
        };
        assert_eq!(
            purl(&p[1], &d),
            "pkg:apk/alpine/libcrypto3@3.3.1-r0?arch=x86_64&distro=alpine-3.20.0&upstream=openssl"
        );
    }

    #[test]
    fn malformed_records_are_errors_naming_file_and_record() {
        for (db, want) in [
            ("P:a\nV:1\n\nP:b\n", "record 2: no P (name) or no V"),
            ("P:a\nV:1\n\ngarbage\n", "record 2, line 4: not KEY:value"),
            (
                "P:a\nVV:1\n",
                "record 1, line 2: key \"VV\" is not one letter",
            ),
        ] {
            let e = parse(INSTALLED, db.as_bytes()).unwrap_err().to_string();
            assert!(e.starts_with("lib/apk/db/installed: "), "{e}");
            assert!(e.contains(want), "{db:?}: {e}");
        }
        let long = format!("P:a\nV:1\nL:{}\n", "x".repeat(MAX_VALUE + 1));
        let e = parse(INSTALLED, long.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("L is longer than 4096"), "{e}");
        let e = parse(INSTALLED, b"P:\xff\n").unwrap_err().to_string();
        assert!(e.contains("not UTF-8"), "{e}");
        assert!(parse(INSTALLED, b"\n\n\n").unwrap().is_empty());
    }
}
