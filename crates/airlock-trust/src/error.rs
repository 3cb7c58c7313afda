//! Errors of the trust crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read key file {path}")]
    KeyIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not an ed25519 {what} PEM: {reason}")]
    KeyFormat {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    /// A signer could not produce a signature; `key` names the key (path, URI without its
    /// PIN, or key id), never a secret.
    #[error("signing with {key} failed: {reason}")]
    Sign { key: String, reason: String },
    #[error("malformed DSSE envelope: {0}")]
    Envelope(String),
    #[error("payload type {found:?} is not the expected {expected:?}")]
    PayloadType { expected: String, found: String },
    #[error(
        "{role} signatures: {valid} valid from trusted keys, threshold is {threshold}{detail}"
    )]
    Threshold {
        role: String,
        valid: usize,
        threshold: u32,
        detail: String,
    },
    #[error("{role}: {found} signatures; at most {max} are accepted")]
    TooManySignatures {
        role: String,
        found: usize,
        max: usize,
    },
    #[error("malformed trust root: {0}")]
    RootFormat(String),
    #[error("trust root version {version} expired at {expires}")]
    RootExpired { version: u64, expires: String },
    #[error("trust root update from version {from} to {to} is not a successor (expected version {expected})")]
    RootVersion { from: u64, to: u64, expected: u64 },
    #[error(transparent)]
    Core(#[from] airlock_core::CoreError),
}
