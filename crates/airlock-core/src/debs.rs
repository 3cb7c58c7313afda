//! The record of a resolved Debian package closure.
//!
//! `airlock sync` resolves each `spec.debs` entry against its signed sources and keeps this
//! record in the store; `airlock pack` makes it the config of the closure's artifact, whose
//! layers are the `.deb` files. Bound by digest into the signed bundle manifest, it says for
//! every package where it came from (the source, the digest of the signed `Release` and the
//! key that signed it) and why it is there (the chain from a requested package), so an auditor
//! on the disconnected side can answer both without the network.

use serde::{Deserialize, Serialize};

/// One resolved closure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClosureRecord {
    /// The closure's name: the apt suite it is served under.
    pub name: String,
    /// The target's native architecture.
    pub arch: String,
    pub recommends: bool,
    /// The packages asked for, as written (`name` or `name=version`).
    pub requested: Vec<String>,
    /// SHA-256 of the baseline dpkg `status` file, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// RFC 3339 time of the resolution.
    pub resolved: String,
    pub sources: Vec<SourceRecord>,
    /// Sorted by name.
    pub packages: Vec<PackageRecord>,
}

/// One signed source as it was when the closure was resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceRecord {
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flat: bool,
    /// `InRelease` or `Release` (with `Release.gpg`).
    pub release_file: String,
    /// SHA-256 of that file as fetched.
    pub release_sha256: String,
    /// Fingerprint of the key that signed it.
    pub signer: String,
    /// Fingerprints of every key the source's keyring held.
    pub keyring: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// The `Packages` indexes read: path below the `Release`, SHA-256, size.
    pub indexes: Vec<IndexRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IndexRecord {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// One package of the closure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PackageRecord {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Index into [`ClosureRecord::sources`].
    pub source: u32,
    /// `Filename` in the source's `Packages` index.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// Requested package → … → this package.
    pub chain: Vec<String>,
    /// The package's paragraph from the source's `Packages` index.
    pub stanza: String,
}

impl PackageRecord {
    /// The file name the package is published under: `NAME_VERSION_ARCH.deb` with the epoch
    /// left out, as in Debian's pool.
    pub fn file_name(&self) -> String {
        let version = self
            .version
            .split_once(':')
            .map_or(self.version.as_str(), |(_, v)| v);
        format!("{}_{version}_{}.deb", self.name, self.architecture)
    }
}
