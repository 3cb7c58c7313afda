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
//! from plain HTTP(S) servers, both through [`fetch`].
//!
//! Everything read from a source is bounded and verified: JSON blobs are size-capped and
//! hashed before parsing, layer blobs are hashed again while `airlock pack` writes them.

pub mod auth;
pub mod debs;
pub mod error;
pub mod fetch;
pub mod glob;
pub mod hf;
pub mod local;
pub mod model;
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
