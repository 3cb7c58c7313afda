//! airlock-vuln: which components of an SBOM are affected by which known vulnerabilities.
//!
//! - [`version`]: each ecosystem's own version order (dpkg, apk, PEP 440, semver), because
//!   OSV ranges are only meaningful in the order of the ecosystem that published them.
//! - [`cvss`]: CVSS base scores computed from the vector, not copied from a record's text.
//! - [`osv`]: OSV records (the schema osv.dev exports) read as untrusted input, bounded, and
//!   normalised into what matching needs.
//! - [`matching`]: OSV's matching algorithm: a package version is affected when it is listed
//!   in `versions`, or when it falls in a range of `introduced`/`fixed`/`last_affected`
//!   events evaluated in the ecosystem's order.
//! - [`kev`]: CISA's known-exploited catalog; an advisory whose id or alias it lists is
//!   reported as known-exploited.

pub mod cvss;
pub mod db;
pub mod kev;
pub mod matching;
pub mod osv;
pub mod version;
