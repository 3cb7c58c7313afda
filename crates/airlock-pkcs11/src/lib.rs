//! airlock-pkcs11: signing keys named by a path or a `pkcs11:` URI.
//!
//! [`load_signer`] is the one way the connected side loads a private key: a path is a PKCS#8
//! PEM file ([`airlock_trust::KeyPair`]); a `pkcs11:` URI (RFC 7512, see [`uri`]) is an
//! ed25519 key inside a PKCS#11 token such as a hardware security module
//! ([`Pkcs11Signer`]), which signs without the key ever leaving the token. [`generate`]
//! creates such a key in a token.
//!
//! Its own crate so that only the binaries that sign link a PKCS#11 loader; the module
//! (`libsofthsm2.so`, a vendor's HSM library) is loaded at run time, never at link time.

pub mod generate;
pub mod signer;
pub mod token;
pub mod uri;

use std::path::{Path, PathBuf};

use airlock_trust::{KeyPair, Signer, TrustError};

pub use generate::generate;
pub use signer::Pkcs11Signer;
pub use uri::{is_pkcs11_uri, Pkcs11Uri};

/// Why a key could not be loaded or generated. Messages name the token and key, never a PIN.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    File(#[from] TrustError),
    #[error("invalid pkcs11 URI: {0}")]
    Uri(String),
    #[error("cannot read the PIN file {path}")]
    PinFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load PKCS#11 module {path}: {reason}")]
    Module { path: PathBuf, reason: String },
    #[error("no PKCS#11 token {token:?} in module {module}")]
    NoToken { token: String, module: PathBuf },
    #[error("PKCS#11 token {token:?}: login failed: {reason}")]
    Login { token: String, reason: String },
    #[error("PKCS#11 token {token:?}: no ed25519 {class} key {key}")]
    NoKey {
        token: String,
        class: String,
        key: String,
    },
    #[error("PKCS#11 token {token:?}: {what}")]
    Token { token: String, what: String },
}

/// Loads the signing key `spec` names: a `pkcs11:` URI, or else the path of a PKCS#8 PEM file.
pub fn load_signer(spec: &Path) -> Result<Box<dyn Signer>, KeyError> {
    match spec.to_str().filter(|s| is_pkcs11_uri(s)) {
        Some(uri) => Ok(Box::new(Pkcs11Signer::open(&Pkcs11Uri::parse(uri)?)?)),
        None => Ok(Box::new(KeyPair::load(spec)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_loads_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let k = KeyPair::generate();
        let (key, _) = k.write_files(dir.path(), "s").unwrap();
        let s = load_signer(&key).unwrap();
        assert_eq!(s.public_key(), k.public_key());
        let sig = s.sign(b"m").unwrap();
        assert!(k.public_key().verify(b"m", &sig));
    }

    #[test]
    fn a_missing_module_is_a_clear_error() {
        let e = load_signer(Path::new(
            "pkcs11:token=t;object=k?pin-value=1&module-path=/nonexistent/p11.so",
        ))
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("/nonexistent/p11.so"), "{e}");
    }
}
