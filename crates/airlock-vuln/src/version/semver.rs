//! Semantic Versioning 2.0.0 precedence, the order of npm, crates.io and Go module versions.
//!
//! `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`, optionally preceded by `v` as Go writes module
//! versions (`v1.2.3`; a pseudo-version such as `v0.0.0-20210101000000-abcdef123456` is an
//! ordinary pre-release). Numeric parts have no leading zeros and are compared as numbers of
//! any length, without overflow. A release is greater than its pre-releases; pre-release
//! identifiers are compared left to right, numeric ones as numbers and below alphanumeric
//! ones, which are compared in ASCII order; more identifiers win when all shared ones are
//! equal. Build metadata is validated but takes no part in the order.

use std::cmp::Ordering;

use super::{cmp_digits, MAX_LEN};

/// A parsed semantic version; the strings borrow from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version<'a> {
    pub major: &'a str,
    pub minor: &'a str,
    pub patch: &'a str,
    /// Pre-release identifiers, empty for a release.
    pub pre: Vec<&'a str>,
    /// Build metadata identifiers (ignored by the order).
    pub build: Vec<&'a str>,
}

fn numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// A numeric identifier without a leading zero (`0` itself is fine).
fn number(s: &str) -> bool {
    numeric(s) && (s == "0" || !s.starts_with('0'))
}

fn identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// `s` as a semantic version, `None` when it is not one (or is longer than [`MAX_LEN`]).
pub fn parse(s: &str) -> Option<Version<'_>> {
    if s.len() > MAX_LEN {
        return None;
    }
    let s = s.strip_prefix('v').unwrap_or(s);
    let (rest, build) = match s.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let mut parts = core.split('.');
    let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || ![major, minor, patch].iter().all(|p| number(p)) {
        return None;
    }
    let pre: Vec<&str> = match pre {
        Some(pre) => pre.split('.').collect(),
        None => Vec::new(),
    };
    if !pre
        .iter()
        .all(|id| identifier(id) && (!numeric(id) || number(id)))
    {
        return None;
    }
    let build: Vec<&str> = match build {
        Some(build) => build.split('.').collect(),
        None => Vec::new(),
    };
    if !build.iter().all(|id| identifier(id)) {
        return None;
    }
    Some(Version {
        major,
        minor,
        patch,
        pre,
        build,
    })
}

fn cmp_identifier(a: &str, b: &str) -> Ordering {
    match (numeric(a), numeric(b)) {
        (true, true) => cmp_digits(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl Version<'_> {
    /// SemVer precedence (build metadata ignored).
    pub fn precedence(&self, other: &Version<'_>) -> Ordering {
        cmp_digits(self.major, other.major)
            .then_with(|| cmp_digits(self.minor, other.minor))
            .then_with(|| cmp_digits(self.patch, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let o = cmp_identifier(a, b);
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

/// `a` against `b`; `None` when either is not a valid version.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse(a)?.precedence(&parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn spec_examples_are_in_order() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for w in chain.windows(2) {
            assert_eq!(compare(w[0], w[1]), Some(Less), "{} < {}", w[0], w[1]);
            assert_eq!(compare(w[1], w[0]), Some(Greater));
        }
    }

    #[test]
    fn go_forms_build_metadata_and_big_numbers() {
        assert_eq!(
            compare("v0.0.0-20210101000000-abcdef123456", "v0.0.1"),
            Some(Less)
        );
        assert_eq!(compare("v1.2.3", "1.2.3"), Some(Equal));
        assert_eq!(compare("1.2.3+build.5", "1.2.3+other"), Some(Equal));
        assert_eq!(
            compare(
                "1.0.0-99999999999999999999999",
                "1.0.0-100000000000000000000000"
            ),
            Some(Less)
        );
        assert_eq!(
            compare(
                "99999999999999999999999.0.0",
                "100000000000000000000000.0.0"
            ),
            Some(Less)
        );
    }

    #[test]
    fn invalid_versions_are_none() {
        for bad in [
            "",
            "v",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.3-01",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-a..b",
            "1.2.3-a_b",
            "V1.2.3",
            "vv1.2.3",
            " 1.2.3",
            "1.2.3 ",
            "1.-2.3",
        ] {
            assert_eq!(compare(bad, "1.0.0"), None, "{bad:?}");
        }
        let long = format!("1.0.0-{}", "a".repeat(MAX_LEN));
        assert_eq!(compare(&long, "1.0.0"), None);
    }
}
