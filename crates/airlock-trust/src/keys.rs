//! ed25519 keys on disk and the [`Signer`] abstraction.
//!
//! Files: `NAME.key` is PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), created with mode 0600;
//! `NAME.pub` is SPKI PEM (`-----BEGIN PUBLIC KEY-----`). Both are what `openssl pkey` reads.
//!
//! Key ids are securesystemslib's default: the hex SHA-256 of the canonical JSON
//! `{"keytype":"ed25519","keyval":{"public":"<hex>"},"scheme":"ed25519"}`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use airlock_core::Sha256;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::TrustError;

/// Key files are a few hundred bytes; anything larger is not a key.
const MAX_KEY_FILE: u64 = 16 * 1024;

/// Something that produces ed25519 signatures: a key in memory ([`KeyPair`]) or a key that
/// never leaves a hardware security module. Signing can fail (a token removed, a session
/// closed, a device error), so `sign` returns a `Result`; an implementation that cannot
/// produce a signature returns [`TrustError::Sign`] and never a made-up one.
pub trait Signer: Send + Sync {
    fn public_key(&self) -> PublicKey;
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], TrustError>;
}

/// An ed25519 public key with its securesystemslib key id.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

/// The JSON form of a public key inside signed documents (securesystemslib's key format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyMeta {
    pub keytype: String,
    pub scheme: String,
    pub keyval: KeyVal,
    /// Who holds the key (a person or service), for reports; not part of the key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The holder's role (for example "release manager"), for reports; not part of the key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyVal {
    pub public: String,
}

impl PublicKey {
    pub fn from_bytes(b: &[u8; 32]) -> Result<Self, String> {
        VerifyingKey::from_bytes(b)
            .map(PublicKey)
            .map_err(|e| e.to_string())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    pub fn meta(&self) -> KeyMeta {
        KeyMeta {
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
            keyval: KeyVal {
                public: self.to_hex(),
            },
            name: None,
            role: None,
        }
    }

    /// securesystemslib's default key id.
    pub fn keyid(&self) -> String {
        let canon = crate::canonical::to_vec(&self.meta()).expect("key meta serializes");
        Sha256::digest(&canon).hex()
    }

    pub fn from_meta(m: &KeyMeta) -> Result<Self, String> {
        if m.keytype != "ed25519" || m.scheme != "ed25519" {
            return Err(format!(
                "key type {}/{} is not ed25519/ed25519",
                m.keytype, m.scheme
            ));
        }
        let mut b = [0u8; 32];
        hex::decode_to_slice(&m.keyval.public, &mut b)
            .map_err(|_| "public key is not 64 hex characters".to_string())?;
        PublicKey::from_bytes(&b)
    }

    /// Strict verification (rejects small-order keys and malleable signatures).
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.0.verify_strict(message, &sig).is_ok() && self.0.verify(message, &sig).is_ok()
    }

    /// Verifies many `(message, signature)` pairs by this key at once with ed25519 batch
    /// verification (nonces derived from the inputs, so no randomness is involved), about
    /// twice as fast per signature as one by one. `true` only when every signature verifies
    /// and none could fail [`PublicKey::verify`]'s strict checks; on `false`, check them one by
    /// one with [`PublicKey::verify`] to find which.
    pub fn verify_all(&self, items: &[(&[u8], &[u8])]) -> bool {
        if self.0.is_weak() {
            return false;
        }
        let mut messages = Vec::with_capacity(items.len());
        let mut sigs = Vec::with_capacity(items.len());
        for (m, s) in items {
            let Ok(sig) = Signature::from_slice(s) else {
                return false;
            };
            // verify_strict also refuses a small-order R; the batch equation does not.
            let r = curve25519_dalek::edwards::CompressedEdwardsY(*sig.r_bytes());
            match r.decompress() {
                Some(p) if !p.is_small_order() => {}
                _ => return false,
            }
            messages.push(*m);
            sigs.push(sig);
        }
        let keys = vec![self.0; items.len()];
        ed25519_dalek::verify_batch(&messages, &sigs, &keys).is_ok()
    }

    pub fn to_pem(&self) -> String {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .expect("ed25519 SPKI encodes")
    }

    /// Reads an SPKI PEM public key file.
    pub fn load(path: &Path) -> Result<Self, TrustError> {
        let text = read_bounded(path)?;
        VerifyingKey::from_public_key_pem(text.trim())
            .map(PublicKey)
            .map_err(|e| TrustError::KeyFormat {
                path: path.to_path_buf(),
                what: "public key (SPKI)",
                reason: e.to_string(),
            })
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", &self.keyid()[..16])
    }
}

/// A private key held in memory.
pub struct KeyPair(SigningKey);

impl KeyPair {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).expect("OS random source");
        KeyPair(SigningKey::from_bytes(&seed))
    }

    /// Reads a PKCS#8 PEM private key file.
    pub fn load(path: &Path) -> Result<Self, TrustError> {
        let text = read_bounded(path)?;
        SigningKey::from_pkcs8_pem(text.trim())
            .map(KeyPair)
            .map_err(|e| TrustError::KeyFormat {
                path: path.to_path_buf(),
                what: "private key (PKCS#8)",
                reason: e.to_string(),
            })
    }

    /// PKCS#8 v1 (RFC 8410 `PrivateKeyInfo` without the optional public key): OpenSSL 3.0
    /// and Python's `cryptography` refuse the v2 form that carries the public key too.
    pub fn to_pkcs8_pem(&self) -> String {
        ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.0.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .expect("ed25519 PKCS#8 encodes")
        .to_string()
    }

    /// Writes `DIR/NAME.key` (mode 0600, never overwriting) and `DIR/NAME.pub`.
    pub fn write_files(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), TrustError> {
        let key_path = dir.join(format!("{name}.key"));
        let pub_path = dir.join(format!("{name}.pub"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TrustError::KeyIo { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        for p in [&key_path, &pub_path] {
            if p.exists() {
                return Err(TrustError::KeyIo {
                    path: p.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "exists; keys are never overwritten",
                    ),
                });
            }
        }
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&key_path).map_err(io(&key_path))?;
        f.write_all(self.to_pkcs8_pem().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io(&key_path))?;
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        let mut f = opts.open(&pub_path).map_err(io(&pub_path))?;
        f.write_all(self.public_key().to_pem().as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io(&pub_path))?;
        Ok((key_path, pub_path))
    }
}

impl Signer for KeyPair {
    fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], TrustError> {
        Ok(ed25519_dalek::Signer::sign(&self.0, message).to_bytes())
    }
}

fn read_bounded(path: &Path) -> Result<String, TrustError> {
    let io = |source| TrustError::KeyIo {
        path: path.to_path_buf(),
        source,
    };
    let f = fs::File::open(path).map_err(io)?;
    let bytes = match airlock_core::bounded::read_at_most(f, MAX_KEY_FILE) {
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            return Err(TrustError::KeyFormat {
                path: path.to_path_buf(),
                what: "key",
                reason: format!("file is larger than {MAX_KEY_FILE} bytes"),
            })
        }
        r => r.map_err(io)?,
    };
    String::from_utf8(bytes).map_err(|_| TrustError::KeyFormat {
        path: path.to_path_buf(),
        what: "key",
        reason: "not UTF-8 text".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let k = KeyPair::generate();
        let (kp, pp) = k.write_files(dir.path(), "a").unwrap();
        let k2 = KeyPair::load(&kp).unwrap();
        assert_eq!(k2.public_key(), k.public_key());
        assert_eq!(PublicKey::load(&pp).unwrap(), k.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&kp).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // never overwrites
        assert!(k.write_files(dir.path(), "a").is_err());
    }

    #[test]
    fn keyid_matches_securesystemslib_rule() {
        // The key id is sha256 over the sorted, space-free JSON key description.
        let k = KeyPair::generate().public_key();
        let json = format!(
            r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
            k.to_hex()
        );
        assert_eq!(k.keyid(), Sha256::digest(json.as_bytes()).hex());
    }

    #[test]
    fn batch_verification_agrees_with_one_by_one() {
        let k = KeyPair::generate();
        let pk = k.public_key();
        let msgs: Vec<Vec<u8>> = (0..50).map(|i| format!("entry {i}").into_bytes()).collect();
        let sigs: Vec<Vec<u8>> = msgs.iter().map(|m| k.sign(m).unwrap().to_vec()).collect();
        let items: Vec<(&[u8], &[u8])> = msgs
            .iter()
            .zip(&sigs)
            .map(|(m, s)| (m.as_slice(), s.as_slice()))
            .collect();
        assert!(pk.verify_all(&items));
        assert!(pk.verify_all(&[]));
        // One wrong message, one flipped signature byte, a signature by another key, a
        // small-order R (the identity point) with any s: each fails the whole batch.
        let other = KeyPair::generate().sign(&msgs[3]).unwrap().to_vec();
        let mut flipped = sigs[5].clone();
        flipped[40] ^= 1;
        let mut small_r = vec![0u8; 64];
        small_r[0] = 1;
        for (i, bad) in [
            (2usize, (b"edited".as_slice(), sigs[2].as_slice())),
            (5, (msgs[5].as_slice(), flipped.as_slice())),
            (3, (msgs[3].as_slice(), other.as_slice())),
            (7, (msgs[7].as_slice(), small_r.as_slice())),
        ] {
            let mut v = items.clone();
            v[i] = bad;
            assert!(!pk.verify_all(&v), "case {i}");
            assert!(!pk.verify(bad.0, bad.1));
        }
    }

    #[test]
    fn garbage_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.key");
        fs::write(&p, "not a key").unwrap();
        let e = KeyPair::load(&p).err().unwrap().to_string();
        assert!(e.contains("x.key") && e.contains("PKCS#8"), "{e}");
    }
}
