//! airlock-trust: who may sign what, and how a signature is checked.
//!
//! * [`keys`] — ed25519 key pairs stored as PKCS#8 (private, mode 0600) and SPKI (public) PEM,
//!   readable by OpenSSL; key ids follow securesystemslib's default rule so that
//!   securesystemslib/in-toto verify airlock signatures from the raw public key alone.
//! * [`dsse`] — DSSE envelopes (sign, and verify against a threshold of distinct keys).
//! * [`canonical`] — the canonical JSON that signed documents are hashed and signed in.
//! * [`root`] — the trust root (`root.json`): keys, role thresholds, expiry, revocation and
//!   version-chained rotation.
//!
//! Verification never panics on hostile input and always says which key, threshold or date
//! made it fail.

pub mod canonical;
pub mod dsse;
pub mod error;
pub mod keys;
pub mod root;
pub mod threshold;

pub use dsse::Envelope;
pub use error::TrustError;
pub use keys::{KeyPair, PublicKey, Signer};
pub use root::{KeyLabel, Role, RootMeta, TrustRoot};
