//! Version orders of the ecosystems OSV publishes ranges for.
//!
//! A range's events are compared in the order of the ecosystem that published them: dpkg's for
//! Debian and Ubuntu (epochs, `~` before everything), apk's for Alpine, PEP 440's for PyPI and
//! semantic versioning for npm, crates.io and Go modules. A version that does not parse in its
//! ecosystem's scheme compares as `None`; matching then treats the range as not decidable and
//! says so, rather than guessing.

use std::cmp::Ordering;

pub mod apk;
pub mod pep440;
pub mod semver;

/// A version ordering scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    Dpkg,
    Apk,
    Pep440,
    Semver,
}

impl Scheme {
    /// The scheme of an OSV ecosystem name (`Debian:12`, `Alpine:v3.20`, `PyPI`, `npm`,
    /// `crates.io`, `Go`), `None` for ecosystems airlock does not order.
    pub fn of_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        match base {
            "Debian" | "Ubuntu" => Some(Scheme::Dpkg),
            "Alpine" => Some(Scheme::Apk),
            "PyPI" => Some(Scheme::Pep440),
            "npm" | "crates.io" | "Go" => Some(Scheme::Semver),
            _ => None,
        }
    }
}

/// `a` against `b` in `scheme`'s order; `None` when either does not parse in it.
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Option<Ordering> {
    match scheme {
        Scheme::Dpkg => dpkg(a, b),
        Scheme::Apk => apk::compare(a, b),
        Scheme::Pep440 => pep440::compare(a, b),
        Scheme::Semver => semver::compare(a, b),
    }
}

/// The longest version string any scheme accepts: versions come from untrusted records.
pub const MAX_LEN: usize = 256;

/// Two runs of ASCII digits compared as the numbers they spell, of any length: leading zeros
/// are insignificant, and a longer significant run is the larger number.
pub(crate) fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// dpkg's order (airlock-deb's implementation, property-tested against `dpkg
/// --compare-versions`), for versions that are valid Debian versions.
fn dpkg(a: &str, b: &str) -> Option<Ordering> {
    let valid = |v: &str| {
        !v.is_empty()
            && v.len() <= MAX_LEN
            && v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".+-~:".contains(&c))
            && v.bytes().next().is_some_and(|c| c.is_ascii_digit())
    };
    (valid(a) && valid(b)).then(|| airlock_deb::version::compare(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystems_map_to_schemes() {
        assert_eq!(Scheme::of_ecosystem("Debian:12"), Some(Scheme::Dpkg));
        assert_eq!(Scheme::of_ecosystem("Alpine:v3.20"), Some(Scheme::Apk));
        assert_eq!(Scheme::of_ecosystem("PyPI"), Some(Scheme::Pep440));
        assert_eq!(Scheme::of_ecosystem("Go"), Some(Scheme::Semver));
        assert_eq!(Scheme::of_ecosystem("Maven"), None);
    }

    #[test]
    fn dpkg_order_has_epochs_and_tilde() {
        assert_eq!(
            compare(Scheme::Dpkg, "1:1.0", "2.0"),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare(Scheme::Dpkg, "1.0~rc1", "1.0"),
            Some(Ordering::Less)
        );
        assert_eq!(compare(Scheme::Dpkg, "", "1.0"), None);
    }
}
