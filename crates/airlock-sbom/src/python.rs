//! Python packages from their core metadata: `NAME-VERSION.dist-info/METADATA` (wheels,
//! pip installs) and `NAME.egg-info/PKG-INFO` (setuptools). Only the header block is read
//! (RFC 822 style, up to the first blank line; the description follows it).
//!
//! Fields used: `Name`, `Version`, `License-Expression` (an SPDX expression, core metadata
//! 2.4) or else `License` (free text; its first line, bounded), and `Maintainer` or else
//! `Author` (falling back to `Maintainer-email` / `Author-email`) as the supplier.

use crate::files::Files;
use crate::{Ecosystem, Licenses, Package, SbomError};

/// Longest header value kept.
const MAX_VALUE: usize = 512;

/// The Python packages among `files`.
pub fn catalog(files: &Files) -> Result<Vec<Package>, SbomError> {
    let mut out = Vec::new();
    for (path, file) in files.iter() {
        let is_meta =
            (path.ends_with(".dist-info/METADATA")) || (path.ends_with(".egg-info/PKG-INFO"));
        if !is_meta {
            continue;
        }
        let text = String::from_utf8_lossy(&file.data);
        let h = headers(&text);
        let get = |k: &str| {
            h.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("UNKNOWN"))
        };
        let (Some(name), Some(version)) = (get("Name"), get("Version")) else {
            return Err(SbomError::Invalid(format!(
                "{path}: no Name or no Version header"
            )));
        };
        let licenses = match (get("License-Expression"), get("License")) {
            (Some(e), _) => Licenses::Expression(e.to_string()),
            (None, Some(l)) => Licenses::Names(vec![l.to_string()]),
            (None, None) => Licenses::None,
        };
        let supplier = get("Maintainer")
            .or(get("Author"))
            .or(get("Maintainer-email"))
            .or(get("Author-email"))
            .map(str::to_string);
        out.push(Package {
            ecosystem: Ecosystem::Python,
            name: name.to_string(),
            version: version.to_string(),
            arch: None,
            source_package: None,
            supplier,
            licenses,
            location: path.to_string(),
            layer: file.layer.clone(),
        });
    }
    Ok(out)
}

/// The header fields before the first blank line: name and the first line of the value
/// (continuation lines dropped), each value clipped to [`MAX_VALUE`] characters; the first
/// occurrence of a name wins.
fn headers(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines().take(10_000) {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v: String = v.trim().chars().take(MAX_VALUE).collect();
        out.push((k.trim().to_string(), v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{File, Limits};

    #[test]
    fn pep_503_normalisation() {
        assert_eq!(airlock_core::text::pep503("Friendly-Bard"), "friendly-bard");
        assert_eq!(
            airlock_core::text::pep503("FRIENDLY._-BARD"),
            "friendly-bard"
        );
        assert_eq!(
            airlock_core::text::pep503("zope.interface"),
            "zope-interface"
        );
        assert_eq!(
            airlock_core::text::pep503("typing_extensions"),
            "typing-extensions"
        );
    }

    #[test]
    fn metadata_headers_give_name_version_licence_and_supplier() {
        let mut f = Files::default();
        let meta = "Metadata-Version: 2.4\nName: Foo_Bar\nVersion: 1.2.3\n\
License-Expression: MIT OR Apache-2.0\nLicense: ignored\nAuthor: A. Person\n\n\
License: in the description\n";
        let info = "Metadata-Version: 1.1\nName: old\nVersion: 0.1\nLicense: UNKNOWN\n";
        for (p, d) in [
            ("lib/Foo_Bar-1.2.3.dist-info/METADATA", meta),
            ("lib/old.egg-info/PKG-INFO", info),
        ] {
            f.insert(
                p.into(),
                File {
                    data: d.into(),
                    layer: None,
                },
                &Limits::default(),
                "t",
            )
            .unwrap();
        }
        let p = catalog(&f).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "Foo_Bar");
        assert_eq!(
            p[0].licenses,
            Licenses::Expression("MIT OR Apache-2.0".into())
        );
        assert_eq!(p[0].supplier.as_deref(), Some("A. Person"));
        assert_eq!(p[1].licenses, Licenses::None, "UNKNOWN is no licence");
    }

    #[test]
    fn metadata_without_a_version_is_an_error_naming_the_file() {
        let mut f = Files::default();
        f.insert(
            "x.dist-info/METADATA".into(),
            File {
                data: b"Name: x\n".to_vec(),
                layer: None,
            },
            &Limits::default(),
            "t",
        )
        .unwrap();
        let e = catalog(&f).unwrap_err().to_string();
        assert!(
            e.contains("x.dist-info/METADATA: no Name or no Version"),
            "{e}"
        );
    }
}
