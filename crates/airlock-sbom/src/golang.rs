//! Go modules from the build information the Go toolchain embeds in every executable.
//!
//! Go 1.18 and later put a blob in the ELF section `.go.buildinfo`: the 14-byte magic
//! `\xff Go buildinf:`, a pointer-size byte and a flags byte. With flag bit 2 set ("inline
//! strings") the Go version and the module information follow at offset 32 as strings
//! prefixed by their length in unsigned LEB128 (Go's `uvarint`). The module information is
//! text between two 16-byte sentinels with tab-separated lines:
//!
//! - `path\tIMPORT PATH` of the main package,
//! - `mod\tPATH\tVERSION\tSUM` for the main module (`(devel)` when built from a checkout),
//! - `dep\tPATH\tVERSION\tSUM` for each module linked in,
//! - `=>\tPATH\tVERSION\tSUM`, replacing the module on the line before (a `replace`
//!   directive; a local directory replacement has a path such as `../lib` and version
//!   `(devel)`),
//! - `build\tKEY=VALUE` build settings (not reported).
//!
//! The packages reported are the main module, every dependency with its replacement applied,
//! and the Go standard library as `stdlib` with the toolchain's version (`go1.22.1`), which is
//! what vulnerability databases key Go advisories on. Older executables keep pointers into
//! the data segment instead of inline strings; they are reported as unsupported (a warning),
//! not read.
//!
//! Everything is untrusted: each length is checked against the blob and against fixed
//! bounds, and a malformed blob is an error message, never a panic.

use crate::files::Files;
use crate::{Ecosystem, Licenses, Package};

/// The magic that starts the build information blob.
pub const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// Longest Go version string read.
const MAX_VERSION: u64 = 256;
/// Longest module information text read.
const MAX_MODINFO: u64 = 4 << 20;
/// Most modules (main, dependencies) kept from one executable.
const MAX_MODULES: usize = 20_000;
/// Longest path, version or sum kept.
const MAX_FIELD: usize = 1024;

/// One module as the build information names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Module {
    pub path: String,
    pub version: String,
    pub sum: String,
}

/// What a Go executable says about how it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The toolchain version, as `go1.22.1` (the first word of what the binary carries).
    pub go_version: String,
    /// The main module (`mod` line), if the module information names one.
    pub main: Option<Module>,
    /// The dependencies, each already replaced by its `=>` line when it has one.
    pub deps: Vec<Module>,
}

/// Reads the build information blob starting at `blob` (the section's contents). `Ok(None)`
/// when the section carries no magic (not a Go executable after all).
pub fn parse_section(section: &[u8]) -> Result<Option<BuildInfo>, String> {
    // The toolchain aligns the blob to 16 bytes within the section.
    let mut at = None;
    let mut off = 0usize;
    while off + MAGIC.len() <= section.len() {
        if &section[off..off + MAGIC.len()] == MAGIC {
            at = Some(off);
            break;
        }
        off += 16;
    }
    match at {
        None => Ok(None),
        Some(off) => parse_blob(&section[off..]).map(Some),
    }
}

/// Reads a build information blob that starts with [`MAGIC`].
pub fn parse_blob(blob: &[u8]) -> Result<BuildInfo, String> {
    if blob.len() < 32 || !blob.starts_with(MAGIC) {
        return Err("Go build info: truncated header".into());
    }
    let flags = blob[15];
    if flags & 2 == 0 {
        return Err(
            "Go build info in the pointer format of Go before 1.18 is not supported".into(),
        );
    }
    let mut rest = &blob[32..];
    let version = read_string(&mut rest, MAX_VERSION, "Go version")?;
    let modinfo = read_string(&mut rest, MAX_MODINFO, "module information")?;
    let go_version = String::from_utf8_lossy(version)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    if go_version.is_empty() {
        return Err("Go build info: empty Go version".into());
    }
    // Go strips the sentinels only when both are there (the text ends with a newline
    // followed by the closing sentinel).
    let text = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        &[][..]
    };
    let text = std::str::from_utf8(text)
        .map_err(|e| format!("Go build info: module information is not UTF-8: {e}"))?;
    let (main, deps) = parse_modinfo(text)?;
    Ok(BuildInfo {
        go_version,
        main,
        deps,
    })
}

/// One uvarint-prefixed string from the front of `rest`, at most `max` bytes.
fn read_string<'a>(rest: &mut &'a [u8], max: u64, what: &str) -> Result<&'a [u8], String> {
    let mut len: u64 = 0;
    let mut shift = 0u32;
    let mut i = 0usize;
    loop {
        let Some(&b) = rest.get(i) else {
            return Err(format!("Go build info: {what}: truncated length"));
        };
        i += 1;
        if shift == 63 && b > 1 {
            return Err(format!("Go build info: {what}: length overflows"));
        }
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return Err(format!("Go build info: {what}: length overflows"));
        }
    }
    if len > max {
        return Err(format!(
            "Go build info: {what}: {len} bytes, more than {max}"
        ));
    }
    let body = &rest[i..];
    if len > body.len() as u64 {
        return Err(format!(
            "Go build info: {what}: {len} bytes but only {} left",
            body.len()
        ));
    }
    let (s, tail) = body.split_at(len as usize);
    *rest = tail;
    Ok(s)
}

/// The main module and the dependencies (replacements applied) of module information text.
pub fn parse_modinfo(text: &str) -> Result<(Option<Module>, Vec<Module>), String> {
    let mut main: Option<Module> = None;
    let mut deps: Vec<Module> = Vec::new();
    // Which module the previous line named: None, the main module, or the last dependency,
    // and whether it was already replaced.
    #[derive(PartialEq)]
    enum Last {
        None,
        Main,
        Dep,
    }
    let mut last = Last::None;
    let mut replaced = false;
    for (n, line) in text.split('\n').enumerate() {
        let n = n + 1;
        if let Some(rest) = line.strip_prefix("mod\t") {
            if main.is_some() {
                return Err(format!("Go build info: line {n}: a second mod line"));
            }
            main = Some(module_line(rest, n)?);
            last = Last::Main;
            replaced = false;
        } else if let Some(rest) = line.strip_prefix("dep\t") {
            if deps.len() >= MAX_MODULES {
                return Err(format!(
                    "Go build info: more than {MAX_MODULES} dependencies"
                ));
            }
            deps.push(module_line(rest, n)?);
            last = Last::Dep;
            replaced = false;
        } else if let Some(rest) = line.strip_prefix("=>\t") {
            let m = module_line(rest, n)?;
            if replaced {
                return Err(format!(
                    "Go build info: line {n}: a second replacement of one module"
                ));
            }
            match last {
                Last::Main => main = Some(m),
                Last::Dep => {
                    if let Some(d) = deps.last_mut() {
                        *d = m;
                    }
                }
                Last::None => {
                    return Err(format!(
                        "Go build info: line {n}: a replacement with no module before it"
                    ))
                }
            }
            replaced = true;
        }
        // `path`, `build` and lines of later formats carry no module.
    }
    Ok((main, deps))
}

fn module_line(rest: &str, n: usize) -> Result<Module, String> {
    let f: Vec<&str> = rest.split('\t').collect();
    if f.len() != 2 && f.len() != 3 {
        return Err(format!(
            "Go build info: line {n}: expected 2 or 3 columns, got {}",
            f.len()
        ));
    }
    if f[0].is_empty() {
        return Err(format!("Go build info: line {n}: empty module path"));
    }
    if f.iter().any(|s| s.len() > MAX_FIELD) {
        return Err(format!(
            "Go build info: line {n}: a field longer than {MAX_FIELD} bytes"
        ));
    }
    Ok(Module {
        path: f[0].to_string(),
        version: f[1].to_string(),
        sum: f.get(2).copied().unwrap_or("").to_string(),
    })
}

/// The Go modules of every Go executable among `files`.
pub fn catalog(files: &Files) -> Vec<Package> {
    let mut out = Vec::new();
    for (path, bin) in files.binaries() {
        let Some(info) = &bin.info.go else {
            continue;
        };
        let pkg = |name: &str, version: &str| Package {
            ecosystem: Ecosystem::Go,
            name: name.to_string(),
            version: version.to_string(),
            arch: None,
            source_package: None,
            supplier: None,
            licenses: Licenses::None,
            location: path.to_string(),
            layer: bin.layer.clone(),
        };
        if let Some(m) = &info.main {
            out.push(pkg(&m.path, &m.version));
        }
        for d in &info.deps {
            out.push(pkg(&d.path, &d.version));
        }
        out.push(pkg("stdlib", &info.go_version));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob in the inline-strings format.
    pub(crate) fn blob(version: &str, modinfo: &str) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.push(8);
        b.push(2);
        b.resize(32, 0);
        let mut mi = vec![0x30u8; 16];
        mi.extend_from_slice(modinfo.as_bytes());
        mi.extend_from_slice(&[0xf9u8; 16]);
        for s in [version.as_bytes(), &mi[..]] {
            let mut n = s.len() as u64;
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    b.push(byte);
                    break;
                }
                b.push(byte | 0x80);
            }
            b.extend_from_slice(s);
        }
        b
    }

    const MODINFO: &str = "path\texample.com/hello\nmod\texample.com/hello\t(devel)\t\n\
dep\texample.com/dep\tv1.2.3\th1:abc=\ndep\texample.com/old\tv1.0.0\n\
=>\texample.com/new\tv1.1.0\th1:def=\nbuild\t-compiler=gc\n";

    #[test]
    fn modules_versions_and_replacements_are_read() {
        let info = parse_section(&blob("go1.22.1 X:boringcrypto", MODINFO))
            .unwrap()
            .unwrap();
        assert_eq!(info.go_version, "go1.22.1");
        assert_eq!(info.main.unwrap().version, "(devel)");
        let deps: Vec<(&str, &str)> = info
            .deps
            .iter()
            .map(|d| (d.path.as_str(), d.version.as_str()))
            .collect();
        assert_eq!(
            deps,
            [("example.com/dep", "v1.2.3"), ("example.com/new", "v1.1.0")]
        );
    }

    #[test]
    fn a_section_without_the_magic_is_not_go() {
        assert_eq!(parse_section(b"nothing here at all, nothing"), Ok(None));
    }

    #[test]
    fn truncated_blobs_are_errors() {
        let b = blob("go1.22.1", MODINFO);
        for cut in [14, 20, 33, 40, b.len() - 1] {
            let e = parse_section(&b[..cut]).unwrap_err();
            assert!(e.contains("Go build info"), "{cut}: {e}");
        }
    }

    #[test]
    fn huge_varint_lengths_are_errors() {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[8, 2]);
        b.resize(32, 0);
        // 2^63 and an over-long varint.
        for len in [
            &[0x80u8, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01][..],
            &[0xff; 11][..],
            &[0xff, 0xff, 0xff, 0x7f][..],
        ] {
            let mut x = b.clone();
            x.extend_from_slice(len);
            x.extend_from_slice(b"go1.22");
            let e = parse_blob(&x).unwrap_err();
            assert!(
                e.contains("more than") || e.contains("overflows") || e.contains("truncated"),
                "{e}"
            );
        }
    }

    #[test]
    fn old_pointer_format_is_unsupported() {
        let mut b = blob("go1.17", MODINFO);
        b[15] = 0;
        assert!(parse_blob(&b).unwrap_err().contains("not supported"));
    }

    #[test]
    fn bad_module_lines_are_errors() {
        for bad in [
            "=>\tx\tv1\n",
            "mod\ta\n",
            "dep\t\tv1\t\n",
            "dep\ta\tv1\n=>\tb\tv2\t\n=>\tc\tv3\t\n",
        ] {
            assert!(parse_modinfo(bad).is_err(), "{bad:?}");
        }
    }
}
