//! SPDX 2.3 JSON for a list of packages, for sites whose tooling reads SPDX rather than
//! CycloneDX.
//!
//! The same packages and package URLs as the CycloneDX output ([`crate::cyclonedx::purl`]):
//! one SPDX package per component, with `externalRefs` holding the purl, `supplier` from the
//! maintainer (`Person: NAME (EMAIL)`; `NOASSERTION` when the package names none), the
//! declared licence, `sourceInfo` naming the source
//! package and a `comment` with the file and layer it came from. The subject (the image or
//! directory) is a package of its own; the document `DESCRIBES` it and it `CONTAINS` every
//! package.
//!
//! Licences: an SPDX expression is kept when it is made only of the characters an expression
//! can hold; licence names that are not expressions (DEP-5 short names such as `GPL-2+`, free
//! `License:` text) become `LicenseRef-` identifiers defined in `hasExtractedLicensingInfos`
//! with the name as their text, so nothing declared is lost and nothing is guessed.
//!
//! SPDX makes `creationInfo.created` mandatory. The caller passes it (the command uses
//! `SOURCE_DATE_EPOCH` when set, the current time otherwise). `documentNamespace` is derived
//! from the SHA-256 of the document without its time, so the same content keeps its name.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use crate::cyclonedx::{purl, Subject, Tool};
use crate::{Distro, Licenses, Package};

/// Namespace URIs are built under this prefix; SPDX asks only that they be unique URIs, not
/// that they resolve.
pub const NAMESPACE_BASE: &str = "https://spdx.airlock.invalid/";

/// Is `s` usable as an SPDX licence expression as written (identifiers, `LicenseRef-`,
/// `AND`/`OR`/`WITH`, parentheses, `+`)? Only the character set is checked: a wrong licence id
/// is the supplier's statement, kept as made.
fn expression_ok(s: &str) -> bool {
    !s.trim().is_empty()
        && s.len() <= 512
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" .-+():".contains(&b))
        && s.split([' ', '(', ')']).filter(|w| !w.is_empty()).all(|w| {
            matches!(w, "AND" | "OR" | "WITH")
                || w.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        })
}

/// The `LicenseRef-` identifier of a licence name: letters, digits, `.` and `-`, with a short
/// hash of the name when anything had to be replaced (so two names never share one).
fn license_ref(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if clean == name {
        format!("LicenseRef-{clean}")
    } else {
        let h = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
        format!("LicenseRef-{}-{h}", clean.trim_matches('-'))
    }
}

/// `Person: NAME (EMAIL)` from `NAME <EMAIL>`, or the text as an organisation when it is not
/// in that form.
fn supplier(s: &str) -> String {
    let s: String = s
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .replace(['(', ')'], "");
    match s.split_once('<') {
        Some((name, rest)) if rest.ends_with('>') && !name.trim().is_empty() => format!(
            "Person: {} ({})",
            name.trim(),
            rest.trim_end_matches('>').trim()
        ),
        _ => format!("Organization: {}", s.trim()),
    }
}

/// The declared licence of `l` as an expression, recording the `LicenseRef-`s it needs.
fn declared(l: &Licenses, refs: &mut BTreeMap<String, String>) -> String {
    let mut as_ref = |n: &str| {
        let id = license_ref(n);
        refs.insert(id.clone(), n.to_string());
        id
    };
    match l {
        Licenses::None => "NOASSERTION".into(),
        Licenses::Expression(e) if expression_ok(e) => e.trim().to_string(),
        Licenses::Expression(e) => as_ref(e),
        Licenses::Names(names) => {
            let ids: Vec<String> = names.iter().map(|n| as_ref(n)).collect();
            match ids.len() {
                0 => "NOASSERTION".into(),
                1 => ids[0].clone(),
                _ => ids.join(" AND "),
            }
        }
    }
}

/// The SPDX 2.3 document for `packages` (sorted or not), created at `created` (RFC 3339),
/// pretty-printed with a final newline.
pub fn render(
    packages: &[Package],
    distro: &Distro,
    subject: &Subject,
    tool: &Tool,
    created: &str,
) -> Vec<u8> {
    let mut rows: Vec<(String, &Package)> = packages.iter().map(|p| (purl(p, distro), p)).collect();
    rows.sort_by(|a, b| (&a.0, &a.1.location, a.1).cmp(&(&b.0, &b.1.location, b.1)));
    let mut refs: BTreeMap<String, String> = BTreeMap::new();
    let mut spdx_packages = Vec::with_capacity(rows.len() + 1);
    let mut relationships = Vec::with_capacity(rows.len() + 1);

    let mut s = Map::new();
    s.insert("SPDXID".into(), json!("SPDXRef-Subject"));
    s.insert("name".into(), json!(subject.name));
    // A directory has no version; NOASSERTION says so rather than leaving it out, as the
    // NTIA minimum elements ask for a version and a supplier of every component.
    s.insert(
        "versionInfo".into(),
        json!(subject.version.as_deref().unwrap_or("NOASSERTION")),
    );
    s.insert(
        "supplier".into(),
        json!(subject
            .supplier
            .as_deref()
            .map_or("NOASSERTION".into(), supplier)),
    );
    s.insert("downloadLocation".into(), json!("NOASSERTION"));
    s.insert("filesAnalyzed".into(), json!(false));
    s.insert(
        "primaryPackagePurpose".into(),
        json!(if subject.kind == "container" {
            "CONTAINER"
        } else {
            "FILE"
        }),
    );
    spdx_packages.push(Value::Object(s));
    relationships.push(json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Subject",
    }));

    for (i, (purl, p)) in rows.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}", i + 1);
        let mut c = Map::new();
        c.insert("SPDXID".into(), json!(id));
        c.insert("name".into(), json!(p.name));
        c.insert("versionInfo".into(), json!(p.version));
        c.insert(
            "supplier".into(),
            json!(p.supplier.as_deref().map_or("NOASSERTION".into(), supplier)),
        );
        c.insert("downloadLocation".into(), json!("NOASSERTION"));
        c.insert("filesAnalyzed".into(), json!(false));
        c.insert("licenseConcluded".into(), json!("NOASSERTION"));
        c.insert(
            "licenseDeclared".into(),
            json!(declared(&p.licenses, &mut refs)),
        );
        c.insert("copyrightText".into(), json!("NOASSERTION"));
        if let Some(src) = &p.source_package {
            c.insert(
                "sourceInfo".into(),
                json!(format!("built from source package {src}")),
            );
        }
        let mut comment = format!("found in {}", p.location);
        if let Some(l) = &p.layer {
            comment.push_str(&format!(" of layer {l}"));
        }
        c.insert("comment".into(), json!(comment));
        c.insert(
            "externalRefs".into(),
            json!([{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }]),
        );
        c.insert("primaryPackagePurpose".into(), json!("LIBRARY"));
        spdx_packages.push(Value::Object(c));
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Subject",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }

    let mut doc = Map::new();
    doc.insert("spdxVersion".into(), json!("SPDX-2.3"));
    doc.insert("dataLicense".into(), json!("CC0-1.0"));
    doc.insert("SPDXID".into(), json!("SPDXRef-DOCUMENT"));
    doc.insert("name".into(), json!(subject.name));
    doc.insert("packages".into(), Value::Array(spdx_packages));
    doc.insert("relationships".into(), Value::Array(relationships));
    if !refs.is_empty() {
        doc.insert(
            "hasExtractedLicensingInfos".into(),
            Value::Array(
                refs.iter()
                    .map(|(id, name)| json!({"licenseId": id, "name": name, "extractedText": name}))
                    .collect(),
            ),
        );
    }
    let body = serde_json::to_vec(&doc).expect("JSON values serialise");
    let h = hex::encode(&Sha256::digest(&body)[..16]);
    doc.insert(
        "documentNamespace".into(),
        json!(format!("{NAMESPACE_BASE}{h}")),
    );
    doc.insert(
        "creationInfo".into(),
        json!({
            "created": created,
            "creators": [format!("Tool: {}-{}", tool.name, tool.version)],
        }),
    );
    let mut out = serde_json::to_vec_pretty(&Value::Object(doc)).expect("JSON values serialise");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ecosystem;

    fn pkg(name: &str, licenses: Licenses) -> Package {
        Package {
            ecosystem: Ecosystem::Deb,
            name: name.into(),
            version: "1.0-1".into(),
            arch: Some("amd64".into()),
            source_package: Some("src".into()),
            supplier: Some("Jane Doe <jane@example.org>".into()),
            licenses,
            location: "var/lib/dpkg/status".into(),
            layer: Some("sha256:ab".into()),
        }
    }

    fn doc(pkgs: &[Package], created: &str) -> Value {
        let subject = Subject {
            kind: "container",
            name: "oci:layout:v1".into(),
            version: Some("sha256:cd".into()),
            supplier: None,
        };
        let tool = Tool {
            name: "airlock".into(),
            version: "0.1.0".into(),
        };
        serde_json::from_slice(&render(pkgs, &Distro::default(), &subject, &tool, created)).unwrap()
    }

    #[test]
    fn licence_names_become_defined_license_refs_and_expressions_stay() {
        let pkgs = vec![
            pkg(
                "a",
                Licenses::Names(vec!["GPL-2+".into(), "public domain".into()]),
            ),
            pkg("b", Licenses::Expression("MIT OR Apache-2.0".into())),
            pkg("c", Licenses::Expression("see LICENSE; BSD".into())),
            pkg("d", Licenses::None),
        ];
        let d = doc(&pkgs, "2026-12-01T00:00:00Z");
        let p = d["packages"].as_array().unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!(p[0]["SPDXID"], "SPDXRef-Subject");
        assert_eq!(p[0]["primaryPackagePurpose"], "CONTAINER");
        let by_name = |n: &str| p.iter().find(|x| x["name"] == n).unwrap().clone();
        assert_eq!(
            by_name("a")["licenseDeclared"],
            format!(
                "{} AND {}",
                license_ref("GPL-2+"),
                license_ref("public domain")
            )
        );
        assert!(license_ref("GPL-2+").starts_with("LicenseRef-GPL-2-"));
        assert_ne!(license_ref("GPL-2+"), license_ref("GPL-2-"));
        assert_eq!(license_ref("Artistic-1.0"), "LicenseRef-Artistic-1.0");
        assert_eq!(by_name("b")["licenseDeclared"], "MIT OR Apache-2.0");
        assert!(by_name("c")["licenseDeclared"]
            .as_str()
            .unwrap()
            .starts_with("LicenseRef-see-LICENSE--BSD-"));
        assert_eq!(by_name("d")["licenseDeclared"], "NOASSERTION");
        assert_eq!(
            by_name("a")["supplier"],
            "Person: Jane Doe (jane@example.org)"
        );
        assert_eq!(
            by_name("a")["externalRefs"][0]["referenceLocator"],
            "pkg:deb/debian/a@1.0-1?arch=amd64&upstream=src"
        );
        let infos = d["hasExtractedLicensingInfos"].as_array().unwrap();
        assert_eq!(infos.len(), 3);
        for i in infos {
            let id = i["licenseId"].as_str().unwrap();
            assert!(id.starts_with("LicenseRef-"), "{id}");
            assert!(id[11..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
        }
        let rel = d["relationships"].as_array().unwrap();
        assert_eq!(rel.len(), 5);
        assert_eq!(rel[0]["relationshipType"], "DESCRIBES");
    }

    #[test]
    fn namespace_follows_content_not_time() {
        let a = doc(&[pkg("a", Licenses::None)], "2026-12-01T00:00:00Z");
        let b = doc(&[pkg("a", Licenses::None)], "2027-01-01T00:00:00Z");
        let c = doc(&[pkg("b", Licenses::None)], "2026-12-01T00:00:00Z");
        assert_eq!(a["documentNamespace"], b["documentNamespace"]);
        assert_ne!(a["documentNamespace"], c["documentNamespace"]);
        assert_eq!(a["creationInfo"]["created"], "2026-12-01T00:00:00Z");
    }

    #[test]
    fn suppliers_and_expressions_are_checked() {
        assert_eq!(supplier("ACME Corp"), "Organization: ACME Corp");
        assert_eq!(supplier("X (Y) <x@y>"), "Person: X Y (x@y)");
        assert!(expression_ok(
            "GPL-2.0-or-later WITH Classpath-exception-2.0"
        ));
        assert!(expression_ok("(MIT OR BSD-3-Clause) AND Zlib"));
        assert!(!expression_ok("MIT, BSD"));
        assert!(!expression_ok(""));
        assert!(!expression_ok("AND -x"));
    }
}
