//! Rust crates from the dependency list that `cargo auditable` embeds in executables.
//!
//! `cargo auditable build` adds an ELF section `.dep-v0` holding zlib-compressed JSON:
//! `{"packages": [{"name", "version", "source", "kind", "dependencies", "root"}]}`, where
//! `source` is `crates.io`, `local`, `git`, `registry` or `other`, `kind` is `runtime`
//! (the default, then omitted) or `build` (build scripts and proc-macros, which run at build
//! time and are not part of the executable), `dependencies` are indexes into `packages` and
//! `root` marks the crate the executable was built from.
//!
//! The packages reported are the runtime ones, the root crate included, as
//! `pkg:cargo/NAME@VERSION`. That is the code the executable contains and what RustSec
//! advisories are matched against; build-time crates are left out.
//!
//! Everything is untrusted: the decompressed JSON and the number of packages are bounded, a
//! dependency index must point into the list, and malformed data is an error message, never
//! a panic.

use std::io::Read;

use serde_json::Value;

use crate::files::Files;
use crate::{Ecosystem, Licenses, Package};

/// The ELF section `cargo auditable` writes.
pub const SECTION: &str = ".dep-v0";
/// Most bytes the JSON may decompress to.
pub const MAX_JSON: u64 = 16 << 20;
/// Most packages in one list.
pub const MAX_PACKAGES: usize = 50_000;
/// Longest name, version or source kept.
const MAX_FIELD: usize = 512;

/// One crate of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// `crates.io`, `local`, `git`, `registry` or `other`.
    pub source: String,
    /// Compiled into the executable (`runtime`) rather than run while building it (`build`).
    pub runtime: bool,
    /// The crate the executable was built from.
    pub root: bool,
}

/// The crate list in a `.dep-v0` section's contents (zlib-compressed JSON).
pub fn parse_section(section: &[u8]) -> Result<Vec<Crate>, String> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(section)
        .take(MAX_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!("{SECTION}: not zlib data: {e}"))?;
    if json.len() as u64 > MAX_JSON {
        return Err(format!(
            "{SECTION}: decompresses to more than {MAX_JSON} bytes"
        ));
    }
    parse_json(&json)
}

/// The crate list in the decompressed JSON.
pub fn parse_json(json: &[u8]) -> Result<Vec<Crate>, String> {
    let v: Value = serde_json::from_slice(json).map_err(|e| format!("{SECTION}: not JSON: {e}"))?;
    let Some(list) = v.get("packages").and_then(Value::as_array) else {
        return Err(format!("{SECTION}: no \"packages\" list"));
    };
    if list.len() > MAX_PACKAGES {
        return Err(format!(
            "{SECTION}: {} packages, more than {MAX_PACKAGES}",
            list.len()
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let field = |k: &str, required: bool| -> Result<Option<String>, String> {
            match p.get(k) {
                None | Some(Value::Null) if !required => Ok(None),
                Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_FIELD => {
                    Ok(Some(s.clone()))
                }
                _ => Err(format!(
                    "{SECTION}: package {i}: missing, empty, over-long or non-string {k:?}"
                )),
            }
        };
        let name = field("name", true)?.unwrap_or_default();
        let version = field("version", true)?.unwrap_or_default();
        let source = field("source", false)?.unwrap_or_default();
        let runtime = match p.get("kind") {
            None | Some(Value::Null) => true,
            Some(Value::String(k)) if k == "runtime" => true,
            Some(Value::String(k)) if k == "build" => false,
            Some(k) => return Err(format!("{SECTION}: package {i}: unknown kind {k}")),
        };
        let root = match p.get("root") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(r) => return Err(format!("{SECTION}: package {i}: root is {r}")),
        };
        match p.get("dependencies") {
            None | Some(Value::Null) => {}
            Some(Value::Array(deps)) => {
                for d in deps {
                    let ok = d.as_u64().is_some_and(|d| d < list.len() as u64);
                    if !ok {
                        return Err(format!(
                            "{SECTION}: package {i} ({name}): dependency index {d} is not \
                             one of the {} packages",
                            list.len()
                        ));
                    }
                }
            }
            Some(d) => {
                return Err(format!(
                    "{SECTION}: package {i} ({name}): dependencies is {d}"
                ))
            }
        }
        out.push(Crate {
            name,
            version,
            source,
            runtime,
            root,
        });
    }
    Ok(out)
}

/// The runtime crates of every `cargo auditable` executable among `files`.
pub fn catalog(files: &Files) -> Vec<Package> {
    let mut out = Vec::new();
    for (path, bin) in files.binaries() {
        for c in bin.info.crates.iter().filter(|c| c.runtime) {
            out.push(Package {
                ecosystem: Ecosystem::Cargo,
                name: c.name.clone(),
                version: c.version.clone(),
                arch: None,
                source_package: None,
                supplier: None,
                licenses: Licenses::None,
                location: path.to_string(),
                layer: bin.layer.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn runtime_and_build_crates_are_told_apart() {
        let json = br#"{"packages":[
            {"name":"app","version":"1.0.0","source":"local","dependencies":[1,2],"root":true},
            {"name":"helper","version":"0.3.1","source":"local"},
            {"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"}]}"#;
        let c = parse_section(&zlib(json)).unwrap();
        assert_eq!(c.len(), 3);
        assert!(c[0].root && c[0].runtime);
        assert!(c[1].runtime && !c[1].root);
        assert!(!c[2].runtime);
    }

    #[test]
    fn data_that_is_not_zlib_is_an_error() {
        let e = parse_section(b"{\"packages\":[]}").unwrap_err();
        assert!(e.contains("not zlib"), "{e}");
    }

    #[test]
    fn a_zlib_bomb_stops_at_the_bound() {
        // 17 MiB of spaces compress to about 17 KiB.
        let bomb = zlib(&vec![b' '; (MAX_JSON + (1 << 20)) as usize]);
        assert!(bomb.len() < 100_000);
        let e = parse_section(&bomb).unwrap_err();
        assert!(e.contains("decompresses to more than"), "{e}");
    }

    #[test]
    fn bad_dependency_indexes_are_errors() {
        for deps in ["[5]", "[-1]", "[\"x\"]", "[1.5]", "7"] {
            let json =
                format!(r#"{{"packages":[{{"name":"a","version":"1","dependencies":{deps}}}]}}"#);
            let e = parse_section(&zlib(json.as_bytes())).unwrap_err();
            assert!(e.contains("package 0 (a): dependenc"), "{deps}: {e}");
        }
    }

    #[test]
    fn missing_fields_and_unknown_kinds_are_errors() {
        for json in [
            r#"{"packages":[{"version":"1"}]}"#,
            r#"{"packages":[{"name":"a","version":""}]}"#,
            r#"{"packages":[{"name":"a","version":"1","kind":"dev"}]}"#,
            r#"{"pkgs":[]}"#,
            "[",
        ] {
            assert!(parse_json(json.as_bytes()).is_err(), "{json}");
        }
    }
}
