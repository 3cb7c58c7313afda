//! Errors of the mirror crate; each names the manifest entry and the file at fault.

use std::path::PathBuf;

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
}
