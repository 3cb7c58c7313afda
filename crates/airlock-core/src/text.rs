//! Text that came from untrusted input, made safe to store and to show.
//!
//! * [`escape`] — control characters (CR, LF, ESC, …) as `\u{..}` escapes, so a name or a reason
//!   from a bundle can neither forge a line in a log or a listing nor move a terminal's cursor.
//! * [`bound`] — at most [`MAX_REASON_BYTES`] of a reason, with a count of what was cut, so that
//!   a crafted volume cannot grow the audit log, the catalog or a reason file without bound.

/// The most bytes of a rejection reason stored anywhere (audit log, catalog, reason file).
pub const MAX_REASON_BYTES: usize = 4096;

/// `s` with every control character written as a `\u{XX}` escape (and `\` as `\\`).
pub fn escape(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` cut to at most [`MAX_REASON_BYTES`] bytes (at a character boundary), followed by
/// `… (N more bytes)` when anything was cut.
pub fn bound(s: &str) -> String {
    bound_to(s, MAX_REASON_BYTES)
}

/// [`bound`] with an explicit limit.
pub fn bound_to(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} more bytes)", &s[..cut], s.len() - cut)
}

/// A Python package name normalised per PEP 503: lower case, and each run of `-`, `_` and `.`
/// as one `-` (`Zope.Interface` is `zope-interface`). SBOM purls and vulnerability matching
/// both compare names this way.
pub fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("plain name"), "plain name");
        assert_eq!(escape("a\nFAKE line"), "a\\u{a}FAKE line");
        assert_eq!(escape("\x1b[2J"), "\\u{1b}[2J");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
    }

    #[test]
    fn long_reasons_are_cut_with_a_count() {
        let s = "é".repeat(5000); // 10,000 bytes
        let b = bound(&s);
        assert!(b.len() < MAX_REASON_BYTES + 40);
        assert!(b.ends_with("(5904 more bytes)"), "{}", &b[b.len() - 30..]);
        assert_eq!(bound("short"), "short");
    }
}
