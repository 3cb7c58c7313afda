//! The apk version order of Alpine (and Wolfi) packages, as apk-tools defines it.
//!
//! A version is `N{.N}[letter]{_suffix[N]}[~hash][-rN]`: an initial number, more numbers
//! after dots, at most one lowercase letter, any number of suffixes (`_alpha`, `_beta`,
//! `_pre`, `_rc` mark pre-releases; `_cvs`, `_svn`, `_git`, `_hg`, `_p` come after the
//! release), each with an optional number, an optional commit hash in lowercase hex and an
//! optional package revision. Anything else is refused.
//!
//! Two versions are read token by token while the tokens are of the same kind and equal:
//! numbers compare as numbers, except a dotted number that starts with `0` on either side,
//! where the digit strings compare as strings (so `1.01 < 1.1` and `1.01 < 1.010`); letters
//! and suffixes compare in the orders above and hashes as strings. When one side runs out
//! or the kinds differ, a pre-release suffix is lower than anything; otherwise the side
//! whose next token comes earlier in the version's grammar is greater (`1.0 < 1.0.1`,
//! `1.0a < 1.0.1`, `1.0 < 1.0-r0`, `1.0_p_p > 1.0_p1`), and a side with nothing left is
//! lowest (`1.0 < 1.0a`, `1.0_alpha < 1.0_alpha0`).
//!
//! Numbers may be of any length and compare by value (apk-tools reads them as 64-bit
//! integers, which no real version reaches).

use std::cmp::Ordering;

use super::{cmp_digits, MAX_LEN};

/// Token kinds in grammar order; the order decides between tokens of different kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Initial,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    Hash,
    Revision,
    End,
}

/// Suffix ranks; those below `NONE` are pre-releases.
const SUFFIXES: [(&str, u8); 9] = [
    ("alpha", 1),
    ("beta", 2),
    ("pre", 3),
    ("rc", 4),
    ("cvs", 6),
    ("svn", 7),
    ("git", 8),
    ("hg", 9),
    ("p", 10),
];
const NONE: u8 = 5;

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    suffix: u8,
}

fn span(s: &str, pred: impl Fn(u8) -> bool) -> usize {
    s.bytes().position(|c| !pred(c)).unwrap_or(s.len())
}

/// The tokens of `s`, ending with an `End` token; `None` when `s` is not a valid version.
fn tokens(s: &str) -> Option<Vec<Token<'_>>> {
    if s.len() > MAX_LEN {
        return None;
    }
    let digit = |c: u8| c.is_ascii_digit();
    let n = span(s, digit);
    if n == 0 {
        return None;
    }
    let mut out = vec![Token {
        kind: Kind::Initial,
        text: &s[..n],
        suffix: 0,
    }];
    let mut rest = &s[n..];
    let mut prev = Kind::Initial;
    while let Some(&c) = rest.as_bytes().first() {
        let (kind, text, suffix, used) = match c {
            b'a'..=b'z' if prev <= Kind::Digit => (Kind::Letter, &rest[..1], 0, 1),
            b'.' if prev <= Kind::Digit => {
                let n = span(&rest[1..], digit);
                if n == 0 {
                    return None;
                }
                (Kind::Digit, &rest[1..1 + n], 0, 1 + n)
            }
            b'0'..=b'9' if prev == Kind::Suffix => {
                let n = span(rest, digit);
                (Kind::SuffixNo, &rest[..n], 0, n)
            }
            b'_' if prev <= Kind::SuffixNo => {
                let n = span(&rest[1..], |c| c.is_ascii_lowercase());
                let name = &rest[1..1 + n];
                let rank = SUFFIXES.iter().find(|(s, _)| *s == name)?.1;
                (Kind::Suffix, name, rank, 1 + n)
            }
            b'~' if prev < Kind::Hash => {
                let n = span(&rest[1..], |c| {
                    c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
                });
                if n == 0 {
                    return None;
                }
                (Kind::Hash, &rest[1..1 + n], 0, 1 + n)
            }
            b'-' if prev < Kind::Revision && rest[1..].starts_with('r') => {
                let n = span(&rest[2..], digit);
                if n == 0 {
                    return None;
                }
                (Kind::Revision, &rest[2..2 + n], 0, 2 + n)
            }
            _ => return None,
        };
        out.push(Token { kind, text, suffix });
        prev = kind;
        rest = &rest[used..];
    }
    out.push(Token {
        kind: Kind::End,
        text: "",
        suffix: 0,
    });
    Some(out)
}

/// Two tokens of the same kind.
fn cmp_token(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        Kind::Digit if a.text.starts_with('0') || b.text.starts_with('0') => a.text.cmp(b.text),
        Kind::Initial | Kind::Digit | Kind::SuffixNo | Kind::Revision => cmp_digits(a.text, b.text),
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        Kind::Letter | Kind::Hash | Kind::End => a.text.cmp(b.text),
    }
}

/// Whether `s` is a valid apk version.
pub fn is_valid(s: &str) -> bool {
    tokens(s).is_some()
}

/// `a` against `b`; `None` when either is not a valid version.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (ta, tb) = (tokens(a)?, tokens(b)?);
    for (x, y) in ta.iter().zip(&tb) {
        if x.kind != y.kind {
            if x.kind == Kind::Suffix && x.suffix < NONE {
                return Some(Ordering::Less);
            }
            if y.kind == Kind::Suffix && y.suffix < NONE {
                return Some(Ordering::Greater);
            }
            return Some(y.kind.cmp(&x.kind));
        }
        let o = cmp_token(x, y);
        if o != Ordering::Equal || x.kind == Kind::End {
            return Some(o);
        }
    }
    // Both token lists end with `End`, so the loop returns before the shorter one runs out.
    Some(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn apk_order() {
        let chain = [
            "0.9",
            "1.0_alpha",
            "1.0_alpha0",
            "1.0_alpha1",
            "1.0_beta",
            "1.0_pre2",
            "1.0_rc1",
            "1.0",
            "1.0-r0",
            "1.0-r1",
            "1.0~abc-r1",
            "1.0_cvs",
            "1.0_svn",
            "1.0_git20200101",
            "1.0_hg",
            "1.0_p1",
            "1.0_p2_rc1",
            "1.0_p2",
            "1.0a",
            "1.0b-r5",
            "1.0.0",
            "1.01",
            "1.010",
            "1.1",
            "1.2.3",
            "1.10",
            "99999999999999999999999",
            "100000000000000000000000",
        ];
        for w in chain.windows(2) {
            assert_eq!(compare(w[0], w[1]), Some(Less), "{} < {}", w[0], w[1]);
            assert_eq!(compare(w[1], w[0]), Some(Greater), "{} > {}", w[1], w[0]);
        }
        assert_eq!(compare("1.0_p1", "1.0_p01"), Some(Equal));
        assert_eq!(compare("01.0", "1.0"), Some(Equal));
        assert_eq!(compare("1.0_p_p", "1.0_p1"), Some(Greater));
    }

    #[test]
    fn invalid_versions_are_none() {
        for bad in [
            "",
            "a",
            "1.",
            ".1",
            "1..2",
            "1.0A",
            "1.0ab",
            "1.0a.1",
            "1.0a1",
            "1.0_",
            "1.0_foo",
            "1.0_alphax",
            "1.0-",
            "1.0-r",
            "1.0-1",
            "1.0-r1-r2",
            "1.0-r1_p1",
            "1.0~",
            "1.0~XY",
            "1.0~ab~cd",
            "1.0_p1.2",
            " 1.0",
            "1.0 ",
            "v1.0",
        ] {
            assert_eq!(compare(bad, "1.0"), None, "{bad:?}");
        }
        assert_eq!(compare(&"1.".repeat(200), "1.0"), None);
    }
}
