//! Errors of the registry crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{op} {path}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog")]
    Catalog(#[from] airlock_catalog::CatalogError),
    #[error("store")]
    Store(#[from] airlock_store::StoreError),
    #[error("blob {digest}: {reason}")]
    BadBlob { digest: String, reason: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("auth file {path}: {reason}")]
    Auth { path: PathBuf, reason: String },
    #[error("catalog snapshot: {0}")]
    Snapshot(String),
    #[error("bind {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        op: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| RegistryError::Io { path, op, source }
    }
}
