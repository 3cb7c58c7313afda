//! CycloneDX 1.6 JSON for a list of packages, byte-for-byte deterministic.
//!
//! Components are sorted; each carries `type: library`, name, version, a package URL
//! (`pkg:deb/<distro id>/NAME@VERSION?arch=..&distro=..&upstream=..`, `pkg:pypi/NAME@VERSION`
//! with the PEP 503 name, `pkg:npm/%40SCOPE/NAME@VERSION`, `pkg:apk/<distro id>/…`,
//! `pkg:rpm/<distro id>/NAME@VERSION-RELEASE?arch=..&epoch=..`,
//! `pkg:golang/MODULE/PATH@VERSION`, `pkg:cargo/NAME@VERSION`), `supplier.name` (dpkg
//! `Maintainer`, Python maintainer or author, npm author, apk maintainer, rpm vendor; the
//! NTIA minimum elements ask for a supplier), licences, and properties
//! `airlock:source-package`, `airlock:location` and, for images, `airlock:layer`. The
//! `bom-ref` is the package URL, with a suffix derived from the file it was found in when
//! two components share one. The serial number is a UUID (version nibble 5, as for a
//! name-based UUID) taken from the SHA-256 of the document rendered without it, so it
//! changes exactly when the content does. `metadata.timestamp` appears only when the caller
//! passes one (the command takes it from `SOURCE_DATE_EPOCH`); the schema makes it optional.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use crate::{Distro, Ecosystem, Licenses, Package};

/// What the SBOM describes (its `metadata.component`).
#[derive(Debug, Clone)]
pub struct Subject {
    /// `container` for an image, `file` for a directory.
    pub kind: &'static str,
    /// The source as the operator named it (`dir:/`, `oci:layout:tag`).
    pub name: String,
    /// The image manifest digest.
    pub version: Option<String>,
    /// Who supplies what is described (an organisation, or `NAME <EMAIL>`), as the operator
    /// states it: nothing in an image or a directory says so, and the NTIA minimum elements
    /// ask for a supplier of every component, the described one included.
    pub supplier: Option<String>,
}

/// The tool that wrote the SBOM.
#[derive(Debug, Clone)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// Percent-encodes a package URL segment or qualifier value: everything but ASCII letters,
/// digits and `.-_~`.
pub fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b".-_~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The package URL of `p`.
pub fn purl(p: &Package, distro: &Distro) -> String {
    match p.ecosystem {
        Ecosystem::Deb => {
            let ns = distro.id.as_deref().unwrap_or("debian");
            let mut q: BTreeMap<&str, String> = BTreeMap::new();
            if let Some(a) = &p.arch {
                q.insert("arch", a.clone());
            }
            if let (Some(id), Some(v)) = (&distro.id, &distro.version_id) {
                q.insert("distro", format!("{id}-{v}"));
            }
            if let Some(s) = &p.source_package {
                q.insert("upstream", s.clone());
            }
            let mut s = format!(
                "pkg:deb/{}/{}@{}",
                purl_encode(ns),
                purl_encode(&p.name),
                purl_encode(&p.version)
            );
            for (i, (k, v)) in q.iter().enumerate() {
                s.push(if i == 0 { '?' } else { '&' });
                s.push_str(k);
                s.push('=');
                s.push_str(&purl_encode(v));
            }
            s
        }
        Ecosystem::Python => format!(
            "pkg:pypi/{}@{}",
            purl_encode(&airlock_core::text::pep503(&p.name)),
            purl_encode(&p.version)
        ),
        Ecosystem::Npm => crate::npm::purl(p),
        Ecosystem::Apk => crate::apk::purl(p, distro),
        Ecosystem::Rpm => crate::rpm::purl(p, distro),
        Ecosystem::Go => {
            // The module path is the namespace and name, each segment encoded on its own.
            // A local directory replacement (`../lib`, `/src/lib`) is not a module path;
            // it is written as one encoded segment so that the purl stays well-formed.
            let name = if p.name.starts_with(['.', '/']) {
                purl_encode(&p.name)
            } else {
                p.name
                    .split('/')
                    .map(purl_encode)
                    .collect::<Vec<_>>()
                    .join("/")
            };
            // The standard library's version is the toolchain's without the `go` prefix.
            let version = match (p.name.as_str(), p.version.strip_prefix("go")) {
                ("stdlib", Some(v)) => v,
                _ => p.version.as_str(),
            };
            format!("pkg:golang/{name}@{}", purl_encode(version))
        }
        Ecosystem::Cargo => format!(
            "pkg:cargo/{}@{}",
            purl_encode(&p.name),
            purl_encode(&p.version)
        ),
    }
}

/// `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`: each part percent-encoded, qualifiers with
/// a value in key order, the namespace left out when there is none.
pub fn purl_with(
    ty: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, Option<String>)],
) -> String {
    let mut s = format!("pkg:{ty}/");
    if let Some(ns) = namespace {
        s.push_str(&purl_encode(ns));
        s.push('/');
    }
    s.push_str(&purl_encode(name));
    s.push('@');
    s.push_str(&purl_encode(version));
    let q: BTreeMap<&str, &String> = qualifiers
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
        .collect();
    for (i, (k, v)) in q.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&purl_encode(v));
    }
    s
}

fn licenses(l: &Licenses) -> Option<Value> {
    match l {
        Licenses::None => None,
        Licenses::Expression(e) => Some(json!([{ "expression": e }])),
        Licenses::Names(n) => Some(Value::Array(
            n.iter()
                .map(|n| json!({ "license": { "name": n } }))
                .collect(),
        )),
    }
}

/// The CycloneDX document for `packages` (sorted or not), pretty-printed with a final
/// newline.
pub fn render(
    packages: &[Package],
    distro: &Distro,
    subject: &Subject,
    tool: &Tool,
    timestamp: Option<&str>,
) -> Vec<u8> {
    let mut rows: Vec<(String, &Package)> = packages.iter().map(|p| (purl(p, distro), p)).collect();
    rows.sort_by(|a, b| (&a.0, &a.1.location, a.1).cmp(&(&b.0, &b.1.location, b.1)));
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (purl, _) in &rows {
        *seen.entry(purl.clone()).or_default() += 1;
    }
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    let mut components = Vec::with_capacity(rows.len());
    for (purl, p) in &rows {
        let bom_ref = if seen[purl] > 1 {
            let h = hex::encode(&Sha256::digest(p.location.as_bytes())[..6]);
            let n = used.entry(format!("{purl}#{h}")).or_default();
            *n += 1;
            if *n > 1 {
                format!("{purl}#{h}-{n}")
            } else {
                format!("{purl}#{h}")
            }
        } else {
            purl.clone()
        };
        let mut c = Map::new();
        c.insert("type".into(), json!("library"));
        c.insert("bom-ref".into(), json!(bom_ref));
        c.insert("name".into(), json!(p.name));
        c.insert("version".into(), json!(p.version));
        if let Some(s) = &p.supplier {
            c.insert("supplier".into(), json!({ "name": s }));
        }
        if let Some(l) = licenses(&p.licenses) {
            c.insert("licenses".into(), l);
        }
        c.insert("purl".into(), json!(purl));
        let mut props = Vec::new();
        if let Some(l) = &p.layer {
            props.push(json!({ "name": "airlock:layer", "value": l }));
        }
        props.push(json!({ "name": "airlock:location", "value": p.location }));
        if let Some(s) = &p.source_package {
            props.push(json!({ "name": "airlock:source-package", "value": s }));
        }
        c.insert("properties".into(), Value::Array(props));
        components.push(Value::Object(c));
    }
    let mut subject_c = Map::new();
    subject_c.insert("type".into(), json!(subject.kind));
    subject_c.insert("bom-ref".into(), json!("airlock:subject"));
    subject_c.insert("name".into(), json!(subject.name));
    if let Some(v) = &subject.version {
        subject_c.insert("version".into(), json!(v));
    }
    if let Some(s) = &subject.supplier {
        subject_c.insert("supplier".into(), json!({ "name": s }));
    }
    let mut metadata = Map::new();
    if let Some(t) = timestamp {
        metadata.insert("timestamp".into(), json!(t));
    }
    metadata.insert("tools".into(), tools(tool));
    metadata.insert("component".into(), Value::Object(subject_c));
    document(metadata, components)
}

/// `metadata.tools` naming `tool`.
pub(crate) fn tools(tool: &Tool) -> Value {
    json!({ "components": [{ "type": "application", "name": tool.name, "version": tool.version }] })
}

/// The whole document around `metadata` and `components`: format, version, and the serial
/// number derived from the rest; pretty-printed with a final newline.
pub(crate) fn document(metadata: Map<String, Value>, components: Vec<Value>) -> Vec<u8> {
    let mut doc = Map::new();
    doc.insert("bomFormat".into(), json!("CycloneDX"));
    doc.insert("specVersion".into(), json!("1.6"));
    doc.insert("version".into(), json!(1));
    doc.insert("metadata".into(), Value::Object(metadata));
    doc.insert("components".into(), Value::Array(components));
    let body = serde_json::to_vec(&doc).expect("JSON values serialise");
    doc.insert("serialNumber".into(), json!(serial(&body)));
    let mut out = serde_json::to_vec_pretty(&ordered(doc)).expect("JSON values serialise");
    out.push(b'\n');
    out
}

/// Top-level keys in the order the specification lists them (readers do not care; people
/// reading the file do). serde_json may keep maps sorted, so this holds only where the
/// `preserve_order` feature is on; the bytes are deterministic either way.
fn ordered(mut doc: Map<String, Value>) -> Value {
    let mut out = Map::new();
    for k in [
        "bomFormat",
        "specVersion",
        "serialNumber",
        "version",
        "metadata",
        "components",
    ] {
        if let Some(v) = doc.remove(k) {
            out.insert(k.into(), v);
        }
    }
    Value::Object(out)
}

/// `urn:uuid:` from the SHA-256 of `body`, with version nibble 5 and the RFC 4122 variant.
pub fn serial(body: &[u8]) -> String {
    let h = Sha256::digest(body);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, version: &str) -> Package {
        Package {
            ecosystem: Ecosystem::Deb,
            name: name.into(),
            version: version.into(),
            arch: Some("amd64".into()),
            source_package: Some("glibc".into()),
            supplier: Some("M <m@example.org>".into()),
            licenses: Licenses::Names(vec!["GPL-2+".into()]),
            location: "var/lib/dpkg/status".into(),
            layer: Some("sha256:ab".into()),
        }
    }

    #[test]
    fn purls_encode_versions_and_qualifiers() {
        let d = Distro {
            id: Some("debian".into()),
            version_id: Some("12".into()),
        };
        assert_eq!(
            purl(&deb("libc6", "1:2.36-9+deb12u4"), &d),
            "pkg:deb/debian/libc6@1%3A2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
        );
        let mut p = deb("Zope.Interface", "6.0");
        p.ecosystem = Ecosystem::Python;
        assert_eq!(purl(&p, &d), "pkg:pypi/zope-interface@6.0");
        assert_eq!(purl_encode("a b/c@d"), "a%20b%2Fc%40d");
        let mut g = deb("github.com/x/y", "v1.2.3");
        g.ecosystem = Ecosystem::Go;
        assert_eq!(purl(&g, &d), "pkg:golang/github.com/x/y@v1.2.3");
        g.name = "stdlib".into();
        g.version = "go1.22.1".into();
        assert_eq!(purl(&g, &d), "pkg:golang/stdlib@1.22.1");
        g.name = "../lib".into();
        g.version = "(devel)".into();
        assert_eq!(purl(&g, &d), "pkg:golang/..%2Flib@%28devel%29");
        let mut c = deb("serde_json", "1.0.100");
        c.ecosystem = Ecosystem::Cargo;
        assert_eq!(purl(&c, &d), "pkg:cargo/serde_json@1.0.100");
    }

    #[test]
    fn output_is_deterministic_sorted_and_refs_unique() {
        let subject = Subject {
            kind: "file",
            name: "dir:/".into(),
            version: None,
            supplier: Some("ACME Platform Team".into()),
        };
        let tool = Tool {
            name: "airlock".into(),
            version: "0.1.0".into(),
        };
        let mut twin = deb("b", "1");
        twin.location = "var/lib/dpkg/status.d/b".into();
        let pkgs = vec![deb("b", "1"), deb("a", "2"), twin];
        let a = render(&pkgs, &Distro::default(), &subject, &tool, None);
        let mut rev = pkgs.clone();
        rev.reverse();
        let b = render(&rev, &Distro::default(), &subject, &tool, None);
        assert_eq!(a, b);
        let v: Value = serde_json::from_slice(&a).unwrap();
        assert!(v["metadata"].get("timestamp").is_none());
        let c = v["components"].as_array().unwrap();
        assert_eq!(c[0]["name"], "a");
        let refs: std::collections::BTreeSet<&str> =
            c.iter().map(|c| c["bom-ref"].as_str().unwrap()).collect();
        assert_eq!(refs.len(), 3);
        assert_eq!(c[0]["supplier"]["name"], "M <m@example.org>");
        assert_eq!(
            v["metadata"]["component"]["supplier"]["name"],
            "ACME Platform Team"
        );
        let serial = v["serialNumber"].as_str().unwrap();
        assert_eq!(&serial[23..24], "5");
        let t = render(
            &pkgs,
            &Distro::default(),
            &subject,
            &tool,
            Some("2024-01-01T00:00:00Z"),
        );
        let t: Value = serde_json::from_slice(&t).unwrap();
        assert_ne!(
            t["serialNumber"], v["serialNumber"],
            "content changed, serial changed"
        );
    }
}
