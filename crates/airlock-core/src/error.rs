//! Errors of the core crate: malformed digests and manifests.

/// Everything that can be wrong with a digest or a manifest handed to this crate.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("invalid digest {value:?}: {reason}")]
    InvalidDigest { value: String, reason: &'static str },
    #[error("{file}: {message}")]
    Manifest { file: String, message: String },
    #[error("invalid bundle manifest: {0}")]
    BundleManifest(String),
    #[error("invalid time {value:?}: {reason}")]
    InvalidTime { value: String, reason: String },
}
