//! The PEP 440 version order of Python packages (PyPI).
//!
//! `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, with the spec's normalisations: any case,
//! an optional leading `v`, surrounding whitespace, `.`, `-` or `_` (or nothing) between the
//! parts, the spellings `alpha`, `beta`, `c`, `pre` and `preview` for pre-releases, `rev` and
//! `r` for post-releases, `-N` as a post-release, and an implicit `0` where a pre-, post- or
//! dev-release has no number.
//!
//! The order: epoch; release segments with trailing zeros insignificant (`1.0 == 1.0.0`);
//! then a version's dev-releases before its pre-releases, before the release, before its
//! post-releases (`1.0.dev1 < 1.0a1.dev1 < 1.0a1 < 1.0 < 1.0.post1.dev1 < 1.0.post1`);
//! finally the local label, where no label sorts first and segments are compared one by
//! one, numeric segments as numbers and above alphanumeric ones (compared case-insensitively
//! as strings), and a label that extends an equal one is greater. Numbers may be of any
//! length.

use std::cmp::Ordering;

use super::{cmp_digits, MAX_LEN};

/// Pre-release phases, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Alpha,
    Beta,
    Rc,
}

/// A parsed PEP 440 version; numbers are digit strings without leading zeros (`"0"` for 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub epoch: String,
    pub release: Vec<String>,
    pub pre: Option<(Phase, String)>,
    pub post: Option<String>,
    pub dev: Option<String>,
    /// Local label segments, lowercase.
    pub local: Option<Vec<String>>,
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn digits(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        (self.i > start).then(|| {
            let d = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("0");
            let d = d.trim_start_matches('0');
            if d.is_empty() { "0" } else { d }.to_string()
        })
    }

    fn separator(&mut self) -> bool {
        if matches!(self.peek(), Some(b'.' | b'-' | b'_')) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// The longest of `words` at the cursor (input already lowercase), consumed.
    fn word(&mut self, words: &[&'static str]) -> Option<&'static str> {
        let rest = &self.s[self.i..];
        let w = words
            .iter()
            .filter(|w| rest.starts_with(w.as_bytes()))
            .max_by_key(|w| w.len())?;
        self.i += w.len();
        Some(w)
    }

    /// `[sep] word [sep] [N]`: a labelled part; the cursor is left unmoved when absent.
    fn labelled(&mut self, words: &[&'static str]) -> Option<(&'static str, String)> {
        let start = self.i;
        self.separator();
        let Some(w) = self.word(words) else {
            self.i = start;
            return None;
        };
        // A separator with no number after it is taken here: every later part may start
        // without one, and the grammar allows a trailing one (`1.0a.`).
        self.separator();
        Some((w, self.digits().unwrap_or_else(|| "0".to_string())))
    }
}

/// `s` as a PEP 440 version, `None` when it is not one (or is longer than [`MAX_LEN`]).
pub fn parse(s: &str) -> Option<Version> {
    if s.len() > MAX_LEN {
        return None;
    }
    let lower = s
        .trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b')
        .to_ascii_lowercase();
    let mut c = Cursor {
        s: lower.as_bytes(),
        i: 0,
    };
    if c.peek() == Some(b'v') {
        c.i += 1;
    }
    let mut epoch = "0".to_string();
    let mut release = vec![c.digits()?];
    if c.peek() == Some(b'!') {
        c.i += 1;
        epoch = release.pop().unwrap_or_default();
        release.push(c.digits()?);
    }
    while c.peek() == Some(b'.') && c.s.get(c.i + 1).is_some_and(|d| d.is_ascii_digit()) {
        c.i += 1;
        release.push(c.digits()?);
    }
    let pre = c
        .labelled(&["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"])
        .map(|(w, n)| {
            let phase = match w {
                "alpha" | "a" => Phase::Alpha,
                "beta" | "b" => Phase::Beta,
                _ => Phase::Rc,
            };
            (phase, n)
        });
    let post = if c.peek() == Some(b'-') && c.s.get(c.i + 1).is_some_and(|d| d.is_ascii_digit()) {
        c.i += 1;
        c.digits()
    } else {
        c.labelled(&["post", "rev", "r"]).map(|(_, n)| n)
    };
    let dev = c.labelled(&["dev"]).map(|(_, n)| n);
    let local = if c.peek() == Some(b'+') {
        c.i += 1;
        let rest = std::str::from_utf8(&c.s[c.i..]).ok()?;
        c.i = c.s.len();
        let parts: Vec<String> = rest.split(['.', '-', '_']).map(str::to_string).collect();
        if !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return None;
        }
        Some(parts)
    } else {
        None
    };
    if c.i != c.s.len() {
        return None;
    }
    Some(Version {
        epoch,
        release,
        pre,
        post,
        dev,
        local,
    })
}

/// A stage key: `Low` and `High` stand for the spec's negative and positive infinities.
#[derive(PartialEq, Eq)]
enum Key<'a> {
    Low,
    Mid(Option<Phase>, &'a str),
    High,
}

fn cmp_key(a: &Key<'_>, b: &Key<'_>) -> Ordering {
    let rank = |k: &Key<'_>| match k {
        Key::Low => 0,
        Key::Mid(..) => 1,
        Key::High => 2,
    };
    match (a, b) {
        (Key::Mid(pa, na), Key::Mid(pb, nb)) => pa.cmp(pb).then_with(|| cmp_digits(na, nb)),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn cmp_local_segment(a: &str, b: &str) -> Ordering {
    let num = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    match (num(a), num(b)) {
        (true, true) => cmp_digits(a, b),
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.cmp(b),
    }
}

impl Version {
    fn release_significant(&self) -> &[String] {
        let end = self
            .release
            .iter()
            .rposition(|r| r != "0")
            .map_or(0, |i| i + 1);
        &self.release[..end]
    }

    fn pre_key(&self) -> Key<'_> {
        match &self.pre {
            Some((phase, n)) => Key::Mid(Some(*phase), n),
            None if self.post.is_none() && self.dev.is_some() => Key::Low,
            None => Key::High,
        }
    }

    fn post_key(&self) -> Key<'_> {
        self.post.as_deref().map_or(Key::Low, |n| Key::Mid(None, n))
    }

    fn dev_key(&self) -> Key<'_> {
        self.dev.as_deref().map_or(Key::High, |n| Key::Mid(None, n))
    }

    /// The spec's order of `self` against `other`.
    pub fn order(&self, other: &Version) -> Ordering {
        let release = || {
            let (a, b) = (self.release_significant(), other.release_significant());
            for (x, y) in a.iter().zip(b) {
                let o = cmp_digits(x, y);
                if o != Ordering::Equal {
                    return o;
                }
            }
            a.len().cmp(&b.len())
        };
        let local = || match (&self.local, &other.local) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => {
                for (x, y) in a.iter().zip(b) {
                    let o = cmp_local_segment(x, y);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.len().cmp(&b.len())
            }
        };
        cmp_digits(&self.epoch, &other.epoch)
            .then_with(release)
            .then_with(|| cmp_key(&self.pre_key(), &other.pre_key()))
            .then_with(|| cmp_key(&self.post_key(), &other.post_key()))
            .then_with(|| cmp_key(&self.dev_key(), &other.dev_key()))
            .then_with(local)
    }
}

/// `a` against `b`; `None` when either is not a valid version.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse(a)?.order(&parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn spec_order() {
        let chain = [
            "1.0.dev456",
            "1.0a1.dev1",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
            "1!0.1",
        ];
        for w in chain.windows(2) {
            assert_eq!(compare(w[0], w[1]), Some(Less), "{} < {}", w[0], w[1]);
            assert_eq!(compare(w[1], w[0]), Some(Greater));
        }
    }

    #[test]
    fn normalisation() {
        for (a, b) in [
            ("1.0", "1.0.0"),
            ("v1.0", "1.0"),
            ("1.0ALPHA1", "1.0a1"),
            ("1.0-beta.2", "1.0b2"),
            ("1.0c1", "1.0rc1"),
            ("1.0preview", "1.0rc0"),
            ("1.0-1", "1.0.post1"),
            ("1.0rev2", "1.0.post2"),
            ("1.0_r", "1.0.post0"),
            ("1.0.dev", "1.0.dev0"),
            ("1.0+ABC", "1.0+abc"),
            ("1.0+1-2_3", "1.0+1.2.3"),
            (" 1.0\n", "1.0"),
            ("0!1.0", "1.0"),
            ("1.0+07", "1.0+7"),
        ] {
            assert_eq!(compare(a, b), Some(Equal), "{a} == {b}");
        }
    }

    #[test]
    fn invalid_versions_are_none() {
        for bad in [
            "",
            "v",
            "1.",
            "1..0",
            "1.0-",
            "1.0+",
            "1.0+a..b",
            "1.0a1.2",
            "!1",
            "1!",
            "1.0dev.post1",
            "1.0 a1",
            "1.0+a+b",
            "1.0+é",
            "a1",
        ] {
            assert_eq!(compare(bad, "1.0"), None, "{bad:?}");
        }
        assert_eq!(compare(&"1.".repeat(200), "1.0"), None);
    }
}
