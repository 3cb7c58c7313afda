//! The one bounded read and the one safe-path rule every crate uses for untrusted input.
//!
//! * [`read_at_most`] — all of a reader, refusing more than `max` bytes with an error of kind
//!   `FileTooLarge` instead of growing memory without bound (files on media, HTTP bodies,
//!   archive members). [`read_file_at_most`] opens a file first.
//! * [`safe_rel_path`] — a `/`-separated relative path that cannot leave the directory it is
//!   joined to: no empty, `.` or `..` component, no leading `/`, no backslash, no control
//!   character, at most 1024 bytes.
//!
//! These do no IO of their own beyond reading what they are handed, so the rest of this crate's
//! promise (types and pure functions) holds.

use std::io::Read;
use std::path::Path;

/// Reads all of `r`; more than `max` bytes is an error (`ErrorKind::FileTooLarge`).
pub fn read_at_most(r: impl Read, max: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(buf)
}

/// Reads the file at `path`, at most `max` bytes of it; the error names the path.
pub fn read_file_at_most(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let named =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let f = std::fs::File::open(path).map_err(named)?;
    read_at_most(f, max).map_err(named)
}

/// Is `p` a relative path that stays inside the directory it is joined to?
pub fn safe_rel_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 1024
        && !p.starts_with('/')
        && !p.contains('\\')
        && !p.chars().any(|c| c.is_control())
        && p.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        assert_eq!(read_at_most(&b"abc"[..], 3).unwrap(), b"abc");
        let e = read_at_most(&b"abcd"[..], 3).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("larger than 3 bytes"));
        let e = read_file_at_most(Path::new("/nonexistent/x"), 3).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x"), "{e}");
    }

    #[test]
    fn paths_stay_inside() {
        for ok in ["a", "a/b.json", "onnx/q/model.onnx", "a..b"] {
            assert!(safe_rel_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a\\b",
            "a\nb",
            "a/",
        ] {
            assert!(!safe_rel_path(bad), "{bad:?}");
        }
        assert!(!safe_rel_path(&"a".repeat(1025)));
    }
}
