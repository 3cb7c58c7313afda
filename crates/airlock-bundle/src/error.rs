//! Errors of the bundle crate. Each names the volume (file) and, where there is one, the tar
//! entry or blob at fault, so an operator knows which disk or file to replace.

use std::path::PathBuf;

use airlock_core::Digest;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {op}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{volume}: not an airlock bundle volume: {detail}")]
    NotAVolume { volume: PathBuf, detail: String },
    #[error("{volume}: entry {entry:?}: {detail}")]
    Entry {
        volume: PathBuf,
        entry: String,
        detail: String,
    },
    #[error("{volume}: blob {digest}: content hashes to {found}")]
    DigestMismatch {
        volume: PathBuf,
        digest: Digest,
        found: Digest,
    },
    #[error("{volume}: blob {digest} part {part} of {parts}: content hashes to {found}, not the part's signed digest")]
    PartDigestMismatch {
        volume: PathBuf,
        digest: Digest,
        part: u32,
        parts: u32,
        found: Digest,
    },
    #[error("{volume}: truncated or damaged volume: {detail}")]
    Truncated { volume: PathBuf, detail: String },
    #[error("signing the bundle manifest")]
    Sign(#[source] airlock_trust::TrustError),
    #[error("{volume}: signed manifest rejected")]
    Untrusted {
        volume: PathBuf,
        #[source]
        source: airlock_trust::TrustError,
    },
    #[error("{volume}: bundle manifest is invalid")]
    Manifest {
        volume: PathBuf,
        #[source]
        source: airlock_core::CoreError,
    },
    #[error("{volume}: bundle expired at {expires}")]
    Expired { volume: PathBuf, expires: String },
    #[error("{volume}: belongs to bundle {found}, not {expected} like the first volume given")]
    MixedBundles {
        volume: PathBuf,
        expected: Digest,
        found: Digest,
    },
    #[error("{volume}: volume {number} was given twice")]
    DuplicateVolume { volume: PathBuf, number: u32 },
    #[error("source {path}: {detail}")]
    Source { path: PathBuf, detail: String },
    #[error("{0}")]
    Plan(String),
    #[error("blob sink refused {digest}")]
    Sink {
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
}

impl BundleError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        op: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BundleError::Io { path, op, source }
    }
}
