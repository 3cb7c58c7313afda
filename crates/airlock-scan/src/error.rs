//! The crate's error type. Malformed *content* is never an error: it becomes a
//! [`Finding`](crate::Finding) (usually `Invalid` or `Suspicious`). Errors are reserved for what
//! stops a scan from happening at all: a path that cannot be opened or read.

use std::path::PathBuf;

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A file or directory could not be opened, listed or read.
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
