//! airlock-deb: Debian binary packages (`.deb`) read as untrusted input.
//!
//! A `.deb` is an `ar` archive holding `debian-binary`, `control.tar[.gz|.xz|.zst]` and
//! `data.tar.*`. airlock needs only the control paragraph: the appliance publishes it in the
//! apt `Packages` index, and `airlock pack` refuses a package whose control file apt and dpkg
//! would read differently.
//!
//! * [`control_of`] — the `control` file of a `.deb`, read through the `ar` and `tar` crates
//!   with every size bounded ([`MAX_CONTROL_MEMBER`], [`MAX_CONTROL_TAR`],
//!   [`MAX_CONTROL_FILE`]); `data.tar` is skipped, never decompressed.
//! * [`check_control`] — is it exactly one deb822 paragraph? A blank line followed by more
//!   fields starts a second paragraph, which apt reads as another package or as duplicate fields
//!   of this one (a parser differential between dpkg and apt).
//! * [`field`] — one field's value.
//!
//! It also resolves dependencies, purely (no network, no files), so that the connected side
//! can gather the closure of packages that `apt-get install` on an air-gapped target would
//! accept:
//!
//! * [`version`] — dpkg version comparison;
//! * [`control`] — deb822 paragraphs of whole `Packages` and `status` files;
//! * [`relation`] — relationship fields (`Depends`, `Provides`, …);
//! * [`index`] — [`Index`], the packages of one or more `Packages` files;
//! * [`status`] — [`Baseline`], the installed packages of a dpkg `status` file;
//! * [`resolve`](mod@resolve) — [`resolve()`], the closure of a list of [`Request`]s.

pub mod release;

use std::io::{Read, Write};

pub mod control;
pub mod index;
pub mod relation;
pub mod resolve;
pub mod status;
pub mod version;

pub use index::{Index, MultiArch, Package, PkgId};
pub use relation::{Op, Relation};
pub use resolve::{resolve, Chosen, Options, Request, Resolution, ResolveError};
pub use status::{Baseline, Installed};

/// Largest compressed `control.tar.*` member read.
pub const MAX_CONTROL_MEMBER: u64 = 16 << 20;
/// Largest decompressed `control.tar` accepted.
pub const MAX_CONTROL_TAR: u64 = 64 << 20;
/// Largest `control` file accepted.
pub const MAX_CONTROL_FILE: u64 = 1 << 20;
/// At most this many `ar` members are looked at before `control.tar` must have appeared.
const MAX_MEMBERS: usize = 8;

/// What is wrong with a `.deb`, in words that name the part at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebError(pub String);

impl std::fmt::Display for DebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DebError {}

fn bad(s: impl Into<String>) -> DebError {
    DebError(s.into())
}

/// Does `head` (the first bytes of a file) look like a `.deb`?
pub fn is_deb(head: &[u8]) -> bool {
    head.starts_with(b"!<arch>\ndebian-binary")
}

/// The `control` file of the `.deb` read from `r` (not yet checked: see [`check_control`]).
pub fn control_of(r: impl Read) -> Result<String, DebError> {
    let mut archive = ar::Archive::new(r);
    for _ in 0..MAX_MEMBERS {
        let Some(entry) = archive.next_entry() else {
            break;
        };
        let mut entry = entry.map_err(|e| bad(format!("not a .deb (ar archive): {e}")))?;
        let name = String::from_utf8_lossy(entry.header().identifier()).to_string();
        let name = name.trim_end_matches('/');
        let Some(comp) = name.strip_prefix("control.tar") else {
            continue;
        };
        let size = entry.header().size();
        if size > MAX_CONTROL_MEMBER {
            return Err(bad(format!(
                "{name}: {size} bytes, more than {MAX_CONTROL_MEMBER}"
            )));
        }
        let mut member = Vec::new();
        (&mut entry)
            .take(size)
            .read_to_end(&mut member)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        let tar = decompress(comp, &member)?;
        return control_from_tar(&tar);
    }
    Err(bad("no control.tar member"))
}

fn decompress(comp: &str, data: &[u8]) -> Result<Vec<u8>, DebError> {
    let mut out = BoundedVec(Vec::new());
    let r = match comp {
        "" => out.write_all(data).map_err(|e| e.to_string()),
        ".gz" => std::io::copy(&mut flate2::read::GzDecoder::new(data), &mut out)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        ".xz" => lzma_rs::xz_decompress(&mut std::io::BufReader::new(data), &mut out)
            .map_err(|e| format!("{e:?}")),
        ".zst" => zstd::stream::read::Decoder::new(data)
            .and_then(|mut d| std::io::copy(&mut d, &mut out))
            .map(|_| ())
            .map_err(|e| e.to_string()),
        other => return Err(bad(format!("control.tar{other}: unsupported compression"))),
    };
    r.map_err(|e| bad(format!("control.tar{comp}: {e}")))?;
    Ok(out.0)
}

/// A writer that refuses to grow past [`MAX_CONTROL_TAR`] (decompression bombs).
struct BoundedVec(Vec<u8>);

impl Write for BoundedVec {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.0.len() + buf.len()) as u64 > MAX_CONTROL_TAR {
            return Err(std::io::Error::other(format!(
                "decompresses to more than {MAX_CONTROL_TAR} bytes"
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn control_from_tar(tar: &[u8]) -> Result<String, DebError> {
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("control.tar: {e}")))?;
    for e in entries {
        let mut e = e.map_err(|e| bad(format!("control.tar: {e}")))?;
        let path = e
            .path()
            .map_err(|e| bad(format!("control.tar: {e}")))?
            .to_string_lossy()
            .to_string();
        if path != "./control" && path != "control" {
            continue;
        }
        if !e.header().entry_type().is_file() {
            return Err(bad("control.tar: ./control is not a regular file"));
        }
        let size = e.size();
        if size > MAX_CONTROL_FILE {
            return Err(bad(format!(
                "control file of {size} bytes, more than {MAX_CONTROL_FILE}"
            )));
        }
        let mut text = Vec::new();
        (&mut e)
            .take(size)
            .read_to_end(&mut text)
            .map_err(|e| bad(format!("control.tar: {e}")))?;
        return String::from_utf8(text).map_err(|_| bad("control is not UTF-8"));
    }
    Err(bad("no ./control in control.tar"))
}

/// Is `control` one deb822 paragraph that `Packages` can carry as one stanza? A blank (or
/// whitespace-only) line followed by more fields would start a second paragraph, which apt
/// would read as another package, or as duplicate fields of this one; so would a field line
/// without `Name:`, a continuation line before any field, or a control character.
pub fn check_control(control: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(control).map_err(|_| "control is not UTF-8".to_string())?;
    let mut fields = 0usize;
    let mut blank_at = None;
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("control line {n}: control character"));
        }
        if line.trim().is_empty() {
            blank_at.get_or_insert(n);
            continue;
        }
        if let Some(b) = blank_at {
            return Err(format!(
                "control holds more than one paragraph (blank line {b}, then line {n})"
            ));
        }
        if line.starts_with([' ', '\t']) {
            if fields == 0 {
                return Err(format!("control line {n}: continuation before any field"));
            }
            continue;
        }
        let name = line.split_once(':').map(|(k, _)| k).unwrap_or("");
        let name_ok = !name.is_empty()
            && !name.starts_with(['#', '-'])
            && name.bytes().all(|c| c.is_ascii_graphic() && c != b':');
        if !name_ok {
            return Err(format!("control line {n}: not a `Name: value` field"));
        }
        fields += 1;
    }
    if fields == 0 {
        return Err("control holds no fields".into());
    }
    Ok(())
}

/// The value of field `name` of a control paragraph (first line only, trimmed).
pub fn field(control: &str, name: &str) -> Option<String> {
    control.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_with_a_second_paragraph_is_refused() {
        let one = b"Package: hello\nVersion: 1.0\nArchitecture: all\nDescription: hi\n there\n .\n more\n";
        assert_eq!(check_control(one), Ok(()));
        assert_eq!(check_control(b"Package: a\nVersion: 1\n\n\n"), Ok(()));
        let two =
            b"Package: hello\nVersion: 1.0\n\nPackage: evil\nVersion: 9\nFilename: pool/x.deb\n";
        let e = check_control(two).unwrap_err();
        assert!(e.contains("more than one paragraph"), "{e}");
        assert!(check_control(b"Package: a\n \t \nVersion: 2\n").is_err());
        assert!(check_control(b" continued\nPackage: a\n").is_err());
        assert!(check_control(b"Package: a\nnot a field\n").is_err());
        assert!(check_control(b"Package: a\rVersion: 2\n").is_err());
        assert!(check_control(b"").is_err());
        assert!(check_control(b"\xff").is_err());
    }

    #[test]
    fn fields() {
        let c = "Package: hello\nVersion: 1.0\nDescription: x\n";
        assert_eq!(field(c, "Version").as_deref(), Some("1.0"));
        assert_eq!(field(c, "Depends"), None);
    }

    #[test]
    fn not_a_deb_is_named() {
        assert!(control_of(&b"hello"[..]).is_err());
        assert!(!is_deb(b"hello"));
    }
}
