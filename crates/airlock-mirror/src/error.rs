//! Errors of the mirror crate; each names the manifest entry, file, registry URL or blob at fault.

use std::path::PathBuf;

use airlock_core::Digest;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("{what}: {path}: {detail}")]
    Source {
        what: String,
        path: PathBuf,
        detail: String,
    },
    #[error("{what}")]
    Store {
        what: String,
        #[source]
        source: airlock_store::StoreError,
    },
    #[error("{0}")]
    Invalid(String),
    /// The request never got an HTTP answer (DNS, connect, TLS, connection cut, timeout).
    #[error("{url}: {detail}")]
    Transport { url: String, detail: String },
    /// The registry answered with an unexpected status.
    #[error("{url}: HTTP {status}{}", if .detail.is_empty() { String::new() } else { format!(": {}", .detail) })]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{registry}: authentication failed: {detail}")]
    Auth { registry: String, detail: String },
    /// Content did not hash to the digest it was asked for by (never stored).
    #[error("{what}: content hashes to {found}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        found: Digest,
    },
    #[error("{path}: {op}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl MirrorError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        op: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| MirrorError::Io { path, op, source }
    }

    /// Worth another try: the network or the server had a moment, or bytes arrived damaged.
    pub fn is_transient(&self) -> bool {
        match self {
            MirrorError::Transport { .. } | MirrorError::DigestMismatch { .. } => true,
            MirrorError::Status { status, .. } => {
                *status == 429 || *status == 408 || *status >= 500
            }
            _ => false,
        }
    }
}
