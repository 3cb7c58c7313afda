//! Node.js packages installed by npm (or yarn, pnpm): the `package.json` of each package
//! directory under a `node_modules/` directory, `…/node_modules/NAME/package.json` and, for a
//! scoped package, `…/node_modules/@SCOPE/NAME/package.json`.
//!
//! Only installed packages count. A project's own `package.json` (not under `node_modules/`)
//! describes the software being built, not something installed, and a lock file lists what
//! would be installed; neither is read. Other `package.json` files inside a package (`lib/`,
//! `esm/` markers) are not packages either.
//!
//! Fields used: `name`, `version`, the licence (`license` as a string or the legacy
//! `{"type": …}` object, else the legacy `licenses` array of either form) and the author
//! (`"Name <email> (url)"` string or `{name, email}` object) as the supplier. A file that is
//! not a JSON object is an error naming it; one without a name or version is skipped with a
//! warning, as npm itself leaves such directories behind (an interrupted install).

use serde_json::Value;

use crate::cyclonedx::purl_with;
use crate::files::Files;
use crate::{Ecosystem, Licenses, Package, SbomError};

/// Longest value kept (names and versions longer than this are an error, other values are
/// clipped).
const MAX_VALUE: usize = 512;

/// Most licence entries kept from one package.
const MAX_LICENSES: usize = 32;

/// Is `path` the `package.json` of a package directory directly under `node_modules/`?
pub fn is_package_json(path: &str) -> bool {
    if !path.ends_with("/package.json") {
        return false;
    }
    // The last four components at most; the first part may hold the rest of the path.
    let mut parts: Vec<&str> = path.rsplitn(5, '/').collect();
    parts.reverse();
    let n = parts.len();
    if n < 3 {
        return false;
    }
    let name = parts[n - 2];
    if name.is_empty() || name.starts_with('.') || name.starts_with('@') {
        return false;
    }
    if parts[n - 3] == "node_modules" {
        return true;
    }
    n >= 4
        && parts[n - 4] == "node_modules"
        && parts[n - 3].len() > 1
        && parts[n - 3].starts_with('@')
}

/// The npm packages among `files`.
pub fn catalog(files: &Files) -> Result<Vec<Package>, SbomError> {
    let mut out = Vec::new();
    for (path, file) in files.iter() {
        if !is_package_json(path) {
            continue;
        }
        if let Some(mut p) = parse(path, &file.data)? {
            p.layer = file.layer.clone();
            out.push(p);
        }
    }
    Ok(out)
}

/// One `package.json`: `Ok(None)` when it names no package (no `name` or `version`).
pub fn parse(path: &str, data: &[u8]) -> Result<Option<Package>, SbomError> {
    let v: Value = serde_json::from_slice(data)
        .map_err(|e| SbomError::Invalid(format!("{path}: not valid JSON: {e}")))?;
    let Value::Object(o) = v else {
        return Err(SbomError::Invalid(format!("{path}: not a JSON object")));
    };
    let field = |k: &str| -> Result<Option<String>, SbomError> {
        match o.get(k) {
            Some(Value::String(s)) if s.len() > MAX_VALUE => Err(SbomError::Invalid(format!(
                "{path}: {k} is longer than {MAX_VALUE} bytes"
            ))),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            _ => Ok(None),
        }
    };
    let (Some(name), Some(version)) = (field("name")?, field("version")?) else {
        tracing::warn!("{path}: no name or version; not counted as a package");
        return Ok(None);
    };
    let mut names = Vec::new();
    match o.get("license") {
        Some(l @ (Value::String(_) | Value::Object(_))) => names.extend(license(l)),
        _ => {
            if let Some(Value::Array(ls)) = o.get("licenses") {
                names.extend(ls.iter().take(MAX_LICENSES).filter_map(license));
            } else if let Some(l @ Value::String(_)) = o.get("licenses") {
                names.extend(license(l));
            }
        }
    }
    let licenses = if names.is_empty() {
        Licenses::None
    } else {
        Licenses::Names(names)
    };
    Ok(Some(Package {
        ecosystem: Ecosystem::Npm,
        name,
        version,
        arch: None,
        source_package: None,
        supplier: o.get("author").and_then(person),
        licenses,
        location: path.to_string(),
        layer: None,
    }))
}

fn clip(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.chars().take(MAX_VALUE).collect())
}

/// A licence as a string or a legacy `{"type": …, "url": …}` object.
fn license(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => clip(s),
        Value::Object(o) => o.get("type").and_then(Value::as_str).and_then(clip),
        _ => None,
    }
}

/// A person as npm writes one: `"Name <email> (url)"` or `{name, email, url}`; the URL is
/// dropped.
fn person(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let s = match s.find(" (") {
                Some(i) if s.trim_end().ends_with(')') => &s[..i],
                _ => s.as_str(),
            };
            clip(s)
        }
        Value::Object(o) => {
            let get = |k: &str| o.get(k).and_then(Value::as_str).and_then(clip);
            match (get("name"), get("email")) {
                (Some(n), Some(e)) => clip(&format!("{n} <{e}>")),
                (Some(n), None) => Some(n),
                (None, Some(e)) => Some(e),
                (None, None) => None,
            }
        }
        _ => None,
    }
}

/// `pkg:npm/%40SCOPE/NAME@VERSION` (the scope, with its `@`, is the namespace), or
/// `pkg:npm/NAME@VERSION`.
pub fn purl(p: &Package) -> String {
    let (ns, name) = match p.name.split_once('/') {
        Some((scope, name)) if scope.starts_with('@') => (Some(scope), name),
        _ => (None, p.name.as_str()),
    };
    purl_with("npm", ns, name, &p.version, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{File, Limits};

    #[test]
    fn only_package_directories_under_node_modules_are_wanted() {
        assert!(is_package_json("app/node_modules/left-pad/package.json"));
        assert!(is_package_json("node_modules/@types/node/package.json"));
        assert!(is_package_json(
            "usr/lib/node_modules/npm/node_modules/semver/package.json"
        ));
        assert!(
            !is_package_json("app/package.json"),
            "a project, not a package"
        );
        assert!(!is_package_json("node_modules/left-pad/lib/package.json"));
        assert!(!is_package_json("node_modules/@types/package.json"));
        assert!(!is_package_json("node_modules/.bin/package.json"));
        assert!(!is_package_json("node_modules/@/x/package.json"));
        assert!(!is_package_json("node_modules/package.json"));
    }

    #[test]
    fn fields_licences_and_authors_in_their_several_forms() {
        let p = parse(
            "node_modules/@s/a/package.json",
            br#"{"name":"@s/a","version":"1.0.0","license":{"type":"ISC","url":"x"},
                "author":{"name":"A. Person","email":"a@example.org","url":"https://x"}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.licenses, Licenses::Names(vec!["ISC".into()]));
        assert_eq!(p.supplier.as_deref(), Some("A. Person <a@example.org>"));
        assert_eq!(purl(&p), "pkg:npm/%40s/a@1.0.0");
        let p = parse(
            "node_modules/b/package.json",
            br#"{"name":"b","version":"2.0.0-rc.1","licenses":[{"type":"MIT"},"Apache-2.0"],
                "author":"B <b@example.org> (https://b.example.org)"}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            p.licenses,
            Licenses::Names(vec!["MIT".into(), "Apache-2.0".into()])
        );
        assert_eq!(p.supplier.as_deref(), Some("B <b@example.org>"));
        assert_eq!(purl(&p), "pkg:npm/b@2.0.0-rc.1");
        let p = parse(
            "node_modules/c/package.json",
            br#"{"name":"c","version":"1","license":"MIT OR ISC","author":7}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.licenses, Licenses::Names(vec!["MIT OR ISC".into()]));
        assert_eq!(p.supplier, None);
    }

    #[test]
    fn bad_json_and_oversized_values_are_errors_naming_the_file() {
        for (data, want) in [
            (&b"{\"name\": \"x\""[..], "not valid JSON"),
            (b"[1, 2]", "not a JSON object"),
            (b"\xff\xfe", "not valid JSON"),
        ] {
            let e = parse("node_modules/x/package.json", data).unwrap_err();
            let e = e.to_string();
            assert!(e.starts_with("node_modules/x/package.json: "), "{e}");
            assert!(e.contains(want), "{e}");
        }
        let long = format!(
            r#"{{"name":"x","version":"{}"}}"#,
            "1".repeat(MAX_VALUE + 1)
        );
        let e = parse("node_modules/x/package.json", long.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("version is longer than 512"), "{e}");
        let big_author = format!(
            r#"{{"name":"x","version":"1","author":"{}","license":"{}"}}"#,
            "a".repeat(10_000),
            "b".repeat(10_000)
        );
        let p = parse("node_modules/x/package.json", big_author.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(p.supplier.unwrap().len(), MAX_VALUE, "clipped");
        // Deeply nested JSON is refused by serde_json's recursion limit, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse("node_modules/x/package.json", deep.as_bytes()).is_err());
    }

    #[test]
    fn a_directory_without_name_or_version_is_skipped() {
        let mut f = Files::default();
        for (p, d) in [
            ("node_modules/x/package.json", r#"{"name":"x"}"#),
            (
                "node_modules/y/package.json",
                r#"{"name":"y","version":"1.0.0"}"#,
            ),
            ("package.json", r#"{"name":"app","version":"1.0.0"}"#),
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
        let got: Vec<String> = catalog(&f).unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(got, ["y"]);
    }
}
