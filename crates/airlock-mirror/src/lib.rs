//! airlock-mirror: where bundle content comes from, on the connected side.
//!
//! [`plan::plan`] reads an input manifest and resolves every image, model and file into
//! * the [`airlock_core::bundle::Artifact`] records of the bundle manifest (with provenance),
//! * the deduplicated list of blobs and where their bytes are ([`airlock_bundle::writer::PlannedBlob`]),
//! * the bundle's `index.json`, naming every artifact so containerd, skopeo and umoci find it.
//!
//! Local sources ([`local`]): OCI image layouts (`oci:`), OCI archives (`oci-archive:`), model
//! directories (`dir:`) and plain files. Registry images (`HOST/REPO:TAG`, `@sha256:`) are
//! mirrored first by [`sync`] (`airlock sync`) into the local store through the distribution
//! client [`registry`] (auth in [`auth`]), and planned from that store. This is the only crate
//! of the workspace that links an HTTP client (ureq).
//!
//! Debian package closures ([`debs`]) come from signed apt repositories, and `url:` files
//! from plain HTTP(S) servers, both through [`fetch`]. Vulnerability data (osv.dev's exports,
//! CISA's known-exploited catalog) comes through [`osv`].
//!
//! Everything read from a source is bounded and verified: JSON blobs are size-capped and
//! hashed before parsing, layer blobs are hashed again while `airlock pack` writes them.

pub mod auth;
pub mod debs;
pub mod digest_cache;
pub mod error;
pub mod fetch;
pub mod glob;
pub mod hf;
pub mod local;
pub mod model;
pub mod osv;
mod partial;
pub mod plan;
pub mod registry;
pub mod sync;

pub use error::MirrorError;

/// The connected-side store's directory: image and model records and partial downloads live
/// beside its blobs, so a store without one cannot be synced into or packed from.
pub(crate) fn store_dir(store: &airlock_store::BlobStore) -> Result<&std::path::Path, MirrorError> {
    store.root().ok_or_else(|| {
        MirrorError::Invalid(format!(
            "store {}: sync records need a store directory",
            store.describe()
        ))
    })
}

/// Where `airlock pack` gets store blob `d` (of `size` bytes): its file when the store keeps
/// one (hashed again while packing), else its bytes, read and verified now.
pub(crate) fn store_blob(
    store: &airlock_store::BlobStore,
    d: &airlock_core::Digest,
    size: u64,
) -> Result<airlock_bundle::writer::BlobData, MirrorError> {
    use airlock_bundle::writer::BlobData;
    if let Some(path) = store.local_path(d) {
        return Ok(BlobData::File {
            path,
            offset: 0,
            stamp: None,
        });
    }
    let bytes = store
        .read_verified(d, size)
        .map_err(|source| MirrorError::Store {
            what: format!("blob {d}"),
            source,
        })?;
    Ok(BlobData::Bytes(bytes.into()))
}

/// Runs `f`, and again after a transient failure (with exponential backoff from 200 ms), at
/// most `retries` more times. Shared by the registry client, the Hub client and the fetcher.
pub(crate) fn with_retries<T>(
    retries: u32,
    what: &str,
    mut f: impl FnMut() -> Result<T, MirrorError>,
) -> Result<T, MirrorError> {
    let mut attempt = 0;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && attempt < retries => {
                let wait = std::time::Duration::from_millis(200u64 << attempt.min(6));
                tracing::warn!("{what}: {e}; retrying in {wait:?}");
                std::thread::sleep(wait);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// An HTTP(S) agent for static files and APIs: statuses returned (not errors), 30 s to
/// connect, 120 s for a response to start, the built-in roots or the CA certificates of
/// `ca_file` (PEM).
pub(crate) fn http_agent(ca_file: Option<&std::path::Path>) -> Result<ureq::Agent, MirrorError> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(ca) = ca_file {
        let pem = airlock_core::bounded::read_file_at_most(ca, 4 << 20)
            .map_err(MirrorError::io(ca, "read CA file"))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls.build())
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_recv_response(Some(std::time::Duration::from_secs(120)))
        .max_idle_connections_per_host(32)
        .user_agent(format!("airlock/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent())
}
