//! airlock-core: the vocabulary both sides of the air gap share.
//!
//! * [`Digest`] — a validated `sha256:<64 hex>` content address, and [`Sha256`] to make one.
//! * [`media`] — OCI and airlock media types and annotation keys.
//! * [`manifest`] — the *input* manifest an operator writes (`manifests/*.yaml`).
//! * [`bundle`] — the *bundle* manifest that `airlock pack` signs and `airlockd` trusts.
//! * [`env`] — every environment variable airlock reads, in one place.
//!
//! This crate does no IO: it parses and validates bytes handed to it, so both binaries (and
//! the fuzz targets) share one definition of every on-disk structure.

pub mod bounded;
pub mod bundle;
pub mod debs;
pub mod digest;
pub mod env;
pub mod error;
pub mod inventory;
pub mod manifest;
pub mod media;
pub mod node;
pub mod oci;
pub mod reference;
pub mod text;
pub mod time;

pub use digest::{Digest, Hashing, Sha256};
pub use error::CoreError;
