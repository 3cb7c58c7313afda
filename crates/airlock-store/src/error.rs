//! Errors of the store crate.

use std::path::PathBuf;

use airlock_core::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {op}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: content hashes to {found}, expected {expected}")]
    DigestMismatch {
        path: PathBuf,
        expected: Digest,
        found: Digest,
    },
    #[error("blob {digest}: {found} bytes, expected {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        found: u64,
    },
    #[error("{path}: larger than the {max}-byte limit")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{path}: {detail}")]
    Layout { path: PathBuf, detail: String },
}

impl StoreError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        op: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StoreError::Io { path, op, source }
    }
}
