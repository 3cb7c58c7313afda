//! Errors of the catalog crate.

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database")]
    Sql(#[from] rusqlite::Error),
    #[error("catalog JSON")]
    Json(#[from] serde_json::Error),
    #[error("signing the audit entry")]
    Sign(#[from] airlock_trust::TrustError),
    #[error("catalog is corrupt: {0}")]
    Corrupt(String),
    #[error("catalog schema version {found} is newer than this airlockd understands ({known})")]
    TooNew { found: i64, known: i64 },
}
