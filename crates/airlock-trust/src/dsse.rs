//! DSSE (Dead Simple Signing Envelope) v1.
//!
//! A signature covers `PAE(payloadType, payload)` =
//! `"DSSEv1" SP len(type) SP type SP len(body) SP body`, so the payload type cannot be swapped.
//! Verification counts *distinct* trusted key ids with a valid signature: listing one key twice
//! never meets a threshold of two.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::keys::{PublicKey, Signer};
use crate::TrustError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: String,
}

/// The outcome of a successful verification.
#[derive(Debug, Clone)]
pub struct Verified {
    pub payload: Vec<u8>,
    /// Key ids whose signatures were valid and trusted, sorted.
    pub signers: Vec<String>,
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// Signs `payload` with every signer given; the first signer that fails fails it all.
    pub fn sign(
        payload_type: &str,
        payload: &[u8],
        signers: &[&dyn Signer],
    ) -> Result<Self, TrustError> {
        let msg = pae(payload_type, payload);
        let signatures = signers
            .iter()
            .map(|s| {
                Ok(EnvelopeSignature {
                    keyid: s.public_key().keyid(),
                    sig: B64.encode(s.sign(&msg)?),
                })
            })
            .collect::<Result<_, TrustError>>()?;
        Ok(Envelope {
            payload: B64.encode(payload),
            payload_type: payload_type.to_string(),
            signatures,
        })
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, TrustError> {
        serde_json::from_slice(bytes).map_err(|e| TrustError::Envelope(e.to_string()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("envelope serializes")
    }

    /// The decoded payload, *unverified*. Only for display of untrusted bundles.
    pub fn payload_unverified(&self) -> Result<Vec<u8>, TrustError> {
        B64.decode(&self.payload)
            .map_err(|e| TrustError::Envelope(format!("payload is not base64: {e}")))
    }

    /// Verifies against `keys` (key id → key) and requires `threshold` distinct valid signers.
    pub fn verify(
        &self,
        expected_type: &str,
        keys: &BTreeMap<String, PublicKey>,
        threshold: u32,
        role: &str,
    ) -> Result<Verified, TrustError> {
        if self.payload_type != expected_type {
            return Err(TrustError::PayloadType {
                expected: expected_type.into(),
                found: self.payload_type.clone(),
            });
        }
        let payload = self.payload_unverified()?;
        let msg = pae(&self.payload_type, &payload);
        let signers = crate::threshold::require(&msg, &self.signatures, keys, threshold, role)?;
        Ok(Verified { payload, signers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyPair;

    fn keyset(ks: &[&KeyPair]) -> BTreeMap<String, PublicKey> {
        ks.iter()
            .map(|k| (k.public_key().keyid(), k.public_key()))
            .collect()
    }

    #[test]
    fn threshold_counts_distinct_keys() {
        let (a, b) = (KeyPair::generate(), KeyPair::generate());
        let env = Envelope::sign("t", b"hi", &[&a, &a]).unwrap();
        let e = env
            .verify("t", &keyset(&[&a, &b]), 2, "bundle")
            .unwrap_err();
        assert!(e.to_string().contains("1 valid"), "{e}");
        let env = Envelope::sign("t", b"hi", &[&a, &b]).unwrap();
        let v = env.verify("t", &keyset(&[&a, &b]), 2, "bundle").unwrap();
        assert_eq!(v.payload, b"hi");
        assert_eq!(v.signers.len(), 2);
    }

    /// A signer whose device has gone away.
    struct Broken(PublicKey);

    impl Signer for Broken {
        fn public_key(&self) -> PublicKey {
            self.0
        }
        fn sign(&self, _: &[u8]) -> Result<[u8; 64], TrustError> {
            Err(TrustError::Sign {
                key: "broken".into(),
                reason: "token removed".into(),
            })
        }
    }

    #[test]
    fn a_failing_signer_fails_the_envelope() {
        let a = KeyPair::generate();
        let broken = Broken(KeyPair::generate().public_key());
        let e = Envelope::sign("t", b"hi", &[&a, &broken]).unwrap_err();
        assert_eq!(e.to_string(), "signing with broken failed: token removed");
    }

    #[test]
    fn tampering_is_detected() {
        let a = KeyPair::generate();
        let mut env = Envelope::sign("t", b"hi", &[&a]).unwrap();
        env.payload = B64.encode(b"ho");
        assert!(env.verify("t", &keyset(&[&a]), 1, "bundle").is_err());
        let env = Envelope::sign("t", b"hi", &[&a]).unwrap();
        assert!(env.verify("u", &keyset(&[&a]), 1, "bundle").is_err());
        let other = KeyPair::generate();
        assert!(env.verify("t", &keyset(&[&other]), 1, "bundle").is_err());
    }
}
