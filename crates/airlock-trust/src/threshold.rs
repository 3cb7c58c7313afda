//! The one place signatures are counted against a threshold, for trust roots and DSSE
//! envelopes alike.
//!
//! Only *distinct* trusted key ids with a valid signature count, so listing one key twice never
//! meets a threshold of two. The work an attacker can cause is bounded: a document carrying more
//! than [`MAX_SIGNATURES`] signatures is refused before any is checked, each key id is tried at
//! most once, and the explanation of what did not count is cut to a few lines.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::dsse::EnvelopeSignature;
use crate::keys::PublicKey;
use crate::TrustError;

/// The most signatures a signed document may carry. Real roots and bundles carry a handful;
/// the limit keeps a crafted envelope from costing more than a few milliseconds.
pub const MAX_SIGNATURES: usize = 64;

/// How many notes about signatures that did not count are kept in an error.
const MAX_NOTES: usize = 8;

/// Checks `signatures` over `message` against `keys` (key id → key) and requires `threshold`
/// distinct valid signers for `role`. Returns the signers' key ids, sorted.
pub fn require(
    message: &[u8],
    signatures: &[EnvelopeSignature],
    keys: &BTreeMap<String, PublicKey>,
    threshold: u32,
    role: &str,
) -> Result<Vec<String>, TrustError> {
    if signatures.len() > MAX_SIGNATURES {
        return Err(TrustError::TooManySignatures {
            role: role.into(),
            found: signatures.len(),
            max: MAX_SIGNATURES,
        });
    }
    let mut tried = BTreeSet::new();
    let mut good = BTreeSet::new();
    let mut notes = Vec::new();
    for s in signatures {
        let short = s.keyid.get(..16).unwrap_or(&s.keyid);
        if !tried.insert(s.keyid.as_str()) {
            notes.push(format!("key {short}… signed more than once"));
            continue;
        }
        match keys.get(&s.keyid) {
            None => notes.push(format!("key {short}… is not trusted for {role}")),
            Some(k) => match B64.decode(&s.sig).map(|sig| k.verify(message, &sig)) {
                Ok(true) => {
                    good.insert(s.keyid.clone());
                }
                _ => notes.push(format!("key {short}…: signature does not verify")),
            },
        }
    }
    if threshold == 0 || (good.len() as u64) < threshold as u64 {
        let detail = if notes.is_empty() {
            String::new()
        } else if notes.len() > MAX_NOTES {
            let more = notes.len() - MAX_NOTES;
            notes.truncate(MAX_NOTES);
            format!(" ({}; and {more} more)", notes.join("; "))
        } else {
            format!(" ({})", notes.join("; "))
        };
        return Err(TrustError::Threshold {
            role: role.into(),
            valid: good.len(),
            threshold,
            detail,
        });
    }
    Ok(good.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyPair, Signer};

    fn sig(k: &KeyPair, msg: &[u8]) -> EnvelopeSignature {
        EnvelopeSignature {
            keyid: k.public_key().keyid(),
            sig: B64.encode(k.sign(msg).unwrap()),
        }
    }

    #[test]
    fn distinct_valid_trusted_keys_count() {
        let (a, b) = (KeyPair::generate(), KeyPair::generate());
        let keys: BTreeMap<_, _> = [&a, &b]
            .iter()
            .map(|k| (k.public_key().keyid(), k.public_key()))
            .collect();
        let msg = b"m";
        assert_eq!(
            require(msg, &[sig(&a, msg), sig(&b, msg)], &keys, 2, "bundle")
                .unwrap()
                .len(),
            2
        );
        let e = require(msg, &[sig(&a, msg), sig(&a, msg)], &keys, 2, "bundle").unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
    }

    #[test]
    fn a_flood_of_signatures_is_refused_before_any_is_checked() {
        let a = KeyPair::generate();
        let keys: BTreeMap<_, _> = [(a.public_key().keyid(), a.public_key())].into();
        let bogus = EnvelopeSignature {
            keyid: a.public_key().keyid(),
            sig: B64.encode([0u8; 64]),
        };
        let flood = vec![bogus.clone(); 300_000];
        let t = std::time::Instant::now();
        let e = require(b"m", &flood, &keys, 1, "bundle").unwrap_err();
        assert!(t.elapsed() < std::time::Duration::from_millis(100));
        assert!(e.to_string().contains("300000 signatures"), "{e}");
        // Within the limit, one key id is verified once and the explanation stays short.
        let some = vec![bogus; MAX_SIGNATURES];
        let e = require(b"m", &some, &keys, 1, "bundle")
            .unwrap_err()
            .to_string();
        assert!(e.len() < 1024, "{} bytes", e.len());
        assert!(e.contains("more"), "{e}");
    }
}
