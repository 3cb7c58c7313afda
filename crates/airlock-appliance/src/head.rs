//! `DATA/audit.head`: the newest audit entry's sequence number and hash, signed by the appliance
//! key, so that deleting the newest entries from the database is detectable.
//!
//! The head is a DSSE envelope (payload type [`PAYLOAD_TYPE`], payload `{"seq": N, "hash":
//! "…"}`), like every other document airlock signs. Heads written by older builds — a JSON
//! object `{"seq", "hash", "sig"}` whose `sig` is the hex ed25519 signature over
//! `airlock-audit-head SEQ HASH` — still verify.

use std::collections::BTreeMap;

use airlock_trust::{Envelope, PublicKey, Signer};
use serde::{Deserialize, Serialize};

/// DSSE payload type of the audit head.
pub const PAYLOAD_TYPE: &str = "application/vnd.airlock.audit-head.v1+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    seq: u64,
    hash: String,
}

/// The signed head naming entry `seq` with `hash`.
pub fn sign(seq: u64, hash: &str, key: &dyn Signer) -> Result<Vec<u8>, airlock_trust::TrustError> {
    let payload = serde_json::to_vec(&Head {
        seq,
        hash: hash.to_string(),
    })
    .expect("head serializes");
    Ok(Envelope::sign(PAYLOAD_TYPE, &payload, &[key])?.to_json())
}

/// The entry a head names, once its signature by `key` verified; a message saying what is
/// wrong otherwise.
pub fn verify(bytes: &[u8], key: &PublicKey) -> Result<(u64, String), String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|_| "audit.head is malformed".to_string())?;
    if v.get("payloadType").is_some() {
        let env = Envelope::parse(bytes).map_err(|e| format!("audit.head: {e}"))?;
        let keys = BTreeMap::from([(key.keyid(), *key)]);
        let ok = env
            .verify(PAYLOAD_TYPE, &keys, 1, "audit head")
            .map_err(|_| "audit.head signature does not verify".to_string())?;
        let h: Head = serde_json::from_slice(&ok.payload)
            .map_err(|_| "audit.head is malformed".to_string())?;
        return Ok((h.seq, h.hash));
    }
    // The form older builds wrote.
    let (Some(seq), Some(hash), Some(sig)) =
        (v["seq"].as_u64(), v["hash"].as_str(), v["sig"].as_str())
    else {
        return Err("audit.head is malformed".into());
    };
    let msg = format!("airlock-audit-head {seq} {hash}");
    let sig_ok = hex::decode(sig).is_ok_and(|s| key.verify(msg.as_bytes(), &s));
    if !sig_ok {
        return Err("audit.head signature does not verify".into());
    }
    Ok((seq, hash.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_trust::KeyPair;

    #[test]
    fn heads_verify_and_tampering_is_named() {
        let k = KeyPair::generate();
        let doc = sign(7, "abc", &k).unwrap();
        assert_eq!(verify(&doc, &k.public_key()).unwrap(), (7, "abc".into()));
        let other = KeyPair::generate();
        assert!(verify(&doc, &other.public_key())
            .unwrap_err()
            .contains("does not verify"));
        let forged = String::from_utf8(doc).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&forged).unwrap();
        v["payload"] = serde_json::json!("eyJzZXEiOjgsImhhc2giOiJhYmMifQ==");
        assert!(verify(v.to_string().as_bytes(), &k.public_key()).is_err());
        assert!(verify(b"{}", &k.public_key()).is_err());
    }

    #[test]
    fn heads_of_older_builds_still_verify() {
        let k = KeyPair::generate();
        let sig = k.sign(b"airlock-audit-head 3 deadbeef").unwrap();
        let old = serde_json::json!({"seq": 3, "hash": "deadbeef", "sig": hex::encode(sig)});
        assert_eq!(
            verify(old.to_string().as_bytes(), &k.public_key()).unwrap(),
            (3, "deadbeef".into())
        );
        let bad = serde_json::json!({"seq": 4, "hash": "deadbeef", "sig": hex::encode(sig)});
        assert!(verify(bad.to_string().as_bytes(), &k.public_key()).is_err());
    }
}
