//! Errors of the appliance crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ApplianceError {
    #[error("{0}")]
    Usage(String),
    /// Another writer holds the data directory's lock.
    #[error("data directory busy: {holder} (waited {}s; retry later or pass a longer --wait)", waited.as_secs())]
    Busy {
        holder: String,
        waited: std::time::Duration,
    },
    #[error("{path}: {op}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Trust {
        what: String,
        #[source]
        source: airlock_trust::TrustError,
    },
    #[error(transparent)]
    Keys(#[from] airlock_trust::TrustError),
    #[error(transparent)]
    Store(#[from] airlock_store::StoreError),
    #[error(transparent)]
    Catalog(#[from] airlock_catalog::CatalogError),
    #[error(transparent)]
    Policy(#[from] airlock_policy::PolicyError),
    #[error(transparent)]
    Bundle(#[from] airlock_bundle::BundleError),
}
