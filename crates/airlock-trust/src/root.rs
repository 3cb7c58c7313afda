//! The trust root (`root.json`): which keys may sign what, how many must agree, until when.
//!
//! ```json
//! {"signed": {"_type": "airlock-root", "specVersion": 1, "version": 1,
//!             "expires": "2027-11-27T00:00:00Z",
//!             "keys": {"<keyid>": {"keytype": "ed25519", "scheme": "ed25519",
//!                                  "keyval": {"public": "<hex>"},
//!                                  "name": "Alice Example", "role": "release manager"}},
//!             "roles": {"root":   {"keyids": ["<keyid>"], "threshold": 1},
//!                       "bundle": {"keyids": ["<keyid>", "<keyid>"], "threshold": 2}},
//!             "revoked": []},
//!  "signatures": [{"keyid": "<keyid>", "sig": "<base64 ed25519 over canonical(signed)>"}]}
//! ```
//!
//! The shape follows TUF's root metadata so that rotation works the TUF way: version `n+1` is
//! accepted only when signed by a threshold of version `n`'s root keys *and* a threshold of its
//! own root keys. Revoked key ids never count towards any threshold.
//!
//! A key may carry an optional `name` and `role` of its holder (at most [`MAX_LABEL`] bytes,
//! no control characters), so that reports say who signed and not only a key id. They are
//! signed with the rest of the root but are not part of the key id, which stays
//! securesystemslib's hash of the key alone.

use std::collections::{BTreeMap, BTreeSet};

use airlock_core::time::{format_rfc3339, parse_rfc3339, UnixTime};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::dsse::{Envelope, EnvelopeSignature, Verified};
use crate::keys::{KeyMeta, PublicKey, Signer};
use crate::TrustError;

pub const ROOT_TYPE: &str = "airlock-root";
pub const SPEC_VERSION: u32 = 1;
pub const ROLE_ROOT: &str = "root";
pub const ROLE_BUNDLE: &str = "bundle";
/// A trust root is a few KiB; refuse anything absurdly large before parsing.
pub const MAX_ROOT_BYTES: usize = 1 << 20;
/// Longest `name` or `role` of a key holder, in bytes.
pub const MAX_LABEL: usize = 200;

/// Who holds a key: an optional name and role, shown in reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLabel {
    pub name: Option<String>,
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub keyids: Vec<String>,
    pub threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RootMeta {
    #[serde(rename = "_type")]
    pub type_: String,
    pub spec_version: u32,
    pub version: u64,
    pub expires: String,
    pub keys: BTreeMap<String, KeyMeta>,
    pub roles: BTreeMap<String, Role>,
    #[serde(default)]
    pub revoked: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedDoc {
    signed: serde_json::Value,
    signatures: Vec<EnvelopeSignature>,
}

/// A verified trust root.
#[derive(Debug, Clone)]
pub struct TrustRoot {
    pub meta: RootMeta,
    keys: BTreeMap<String, PublicKey>,
    raw: Vec<u8>,
}

/// Parameters of a new root.
pub struct RootSpec<'a> {
    pub version: u64,
    pub expires: UnixTime,
    pub root_keys: Vec<PublicKey>,
    pub root_threshold: u32,
    pub bundle_keys: Vec<PublicKey>,
    pub bundle_threshold: u32,
    pub revoked: Vec<String>,
    /// Names and roles of key holders, by key id (keys of either role).
    pub labels: BTreeMap<String, KeyLabel>,
    /// Keys that sign the document: the new root keys, plus the previous root's for rotation.
    pub signers: Vec<&'a dyn Signer>,
}

impl RootSpec<'_> {
    /// Builds and signs the root document; returns its JSON bytes.
    pub fn sign(&self) -> Result<Vec<u8>, TrustError> {
        let mut keys = BTreeMap::new();
        let mut role = |ks: &[PublicKey], threshold: u32| {
            let mut ids: Vec<String> = ks
                .iter()
                .map(|k| {
                    let mut meta = k.meta();
                    if let Some(l) = self.labels.get(&k.keyid()) {
                        meta.name = l.name.clone();
                        meta.role = l.role.clone();
                    }
                    keys.insert(k.keyid(), meta);
                    k.keyid()
                })
                .collect();
            ids.sort();
            ids.dedup();
            Role {
                keyids: ids,
                threshold,
            }
        };
        let roles = BTreeMap::from([
            (
                ROLE_ROOT.to_string(),
                role(&self.root_keys, self.root_threshold),
            ),
            (
                ROLE_BUNDLE.to_string(),
                role(&self.bundle_keys, self.bundle_threshold),
            ),
        ]);
        let meta = RootMeta {
            type_: ROOT_TYPE.into(),
            spec_version: SPEC_VERSION,
            version: self.version,
            expires: format_rfc3339(self.expires),
            keys,
            roles,
            revoked: self.revoked.clone(),
        };
        if let Some(id) = self.labels.keys().find(|id| !meta.keys.contains_key(*id)) {
            return Err(TrustError::RootFormat(format!(
                "a name or role is given for key {id}, which is neither a root nor a bundle key"
            )));
        }
        validate(&meta)?;
        let canon = crate::canonical::to_vec(&meta).expect("root serializes");
        let mut seen = BTreeSet::new();
        let signatures = self
            .signers
            .iter()
            .filter(|s| seen.insert(s.public_key().keyid()))
            .map(|s| {
                Ok(EnvelopeSignature {
                    keyid: s.public_key().keyid(),
                    sig: B64.encode(s.sign(&canon)?),
                })
            })
            .collect::<Result<_, TrustError>>()?;
        let doc = SignedDoc {
            signed: serde_json::to_value(&meta).expect("root serializes"),
            signatures,
        };
        Ok(serde_json::to_vec_pretty(&doc).expect("root serializes"))
    }
}

fn validate(m: &RootMeta) -> Result<(), TrustError> {
    let bad = |s: String| Err(TrustError::RootFormat(s));
    if m.type_ != ROOT_TYPE {
        return bad(format!("_type is {:?}, expected {ROOT_TYPE:?}", m.type_));
    }
    if m.spec_version != SPEC_VERSION {
        return bad(format!("specVersion {} is not supported", m.spec_version));
    }
    if m.version == 0 {
        return bad("version must be at least 1".into());
    }
    parse_rfc3339(&m.expires)?;
    for (id, meta) in &m.keys {
        let k = PublicKey::from_meta(meta)
            .map_err(|e| TrustError::RootFormat(format!("key {id}: {e}")))?;
        if &k.keyid() != id {
            return bad(format!(
                "key id {id} does not match its key (expected {})",
                k.keyid()
            ));
        }
        for (what, v) in [("name", &meta.name), ("role", &meta.role)] {
            if let Some(v) = v {
                if v.is_empty() || v.len() > MAX_LABEL || v.chars().any(char::is_control) {
                    return bad(format!(
                        "key {id}: {what} must be 1 to {MAX_LABEL} bytes without control characters"
                    ));
                }
            }
        }
    }
    for name in [ROLE_ROOT, ROLE_BUNDLE] {
        let Some(r) = m.roles.get(name) else {
            return bad(format!("role {name:?} is missing"));
        };
        let distinct: BTreeSet<&String> = r.keyids.iter().collect();
        if distinct.len() != r.keyids.len() {
            return bad(format!("role {name:?} lists a key twice"));
        }
        if r.threshold == 0 || r.threshold as usize > distinct.len() {
            return bad(format!(
                "role {name:?} threshold {} with {} keys",
                r.threshold,
                distinct.len()
            ));
        }
        for id in &r.keyids {
            if !m.keys.contains_key(id) {
                return bad(format!("role {name:?} names unknown key {id}"));
            }
        }
    }
    Ok(())
}

impl TrustRoot {
    /// Parses and verifies a root that is trusted on first use (the operator pins it): its own
    /// root role must sign it, and it must not have expired.
    pub fn load_initial(bytes: &[u8], now: UnixTime) -> Result<Self, TrustError> {
        let (root, doc) = Self::parse_unverified(bytes)?;
        root.check_signed_by(&doc, &root, "root")?;
        root.check_expiry(now)?;
        Ok(root)
    }

    /// Verifies `bytes` as the successor of `self`: version + 1, signed by a threshold of this
    /// root's root keys and of its own root keys, not expired.
    pub fn update(&self, bytes: &[u8], now: UnixTime) -> Result<Self, TrustError> {
        let (next, doc) = Self::parse_unverified(bytes)?;
        if next.meta.version != self.meta.version + 1 {
            return Err(TrustError::RootVersion {
                from: self.meta.version,
                to: next.meta.version,
                expected: self.meta.version + 1,
            });
        }
        self.check_signed_by(&doc, self, "root (previous version)")?;
        next.check_signed_by(&doc, &next, "root (new version)")?;
        next.check_expiry(now)?;
        Ok(next)
    }

    fn parse_unverified(bytes: &[u8]) -> Result<(Self, SignedDoc), TrustError> {
        if bytes.len() > MAX_ROOT_BYTES {
            return Err(TrustError::RootFormat(format!(
                "{} bytes exceeds the {MAX_ROOT_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let doc: SignedDoc =
            serde_json::from_slice(bytes).map_err(|e| TrustError::RootFormat(e.to_string()))?;
        let meta: RootMeta = serde_json::from_value(doc.signed.clone())
            .map_err(|e| TrustError::RootFormat(format!("signed: {e}")))?;
        validate(&meta)?;
        let keys = meta
            .keys
            .iter()
            .map(|(id, m)| (id.clone(), PublicKey::from_meta(m).expect("validated")))
            .collect();
        Ok((
            TrustRoot {
                meta,
                keys,
                raw: bytes.to_vec(),
            },
            doc,
        ))
    }

    fn check_signed_by(
        &self,
        doc: &SignedDoc,
        by: &TrustRoot,
        label: &str,
    ) -> Result<(), TrustError> {
        let canon = crate::canonical::to_vec(&doc.signed).expect("value serializes");
        let keys = by.role_keys(ROLE_ROOT);
        let threshold = by.meta.roles[ROLE_ROOT].threshold;
        crate::threshold::require(&canon, &doc.signatures, &keys, threshold, label)?;
        Ok(())
    }

    fn check_expiry(&self, now: UnixTime) -> Result<(), TrustError> {
        if parse_rfc3339(&self.meta.expires)? <= now {
            return Err(TrustError::RootExpired {
                version: self.meta.version,
                expires: self.meta.expires.clone(),
            });
        }
        Ok(())
    }

    /// Keys of a role, without revoked keys.
    pub fn role_keys(&self, role: &str) -> BTreeMap<String, PublicKey> {
        let Some(r) = self.meta.roles.get(role) else {
            return BTreeMap::new();
        };
        r.keyids
            .iter()
            .filter(|id| !self.meta.revoked.contains(id))
            .filter_map(|id| self.keys.get(id).map(|k| (id.clone(), *k)))
            .collect()
    }

    pub fn threshold(&self, role: &str) -> u32 {
        self.meta
            .roles
            .get(role)
            .map(|r| r.threshold)
            .unwrap_or(u32::MAX)
    }

    /// Verifies a DSSE envelope signed by the `bundle` role.
    pub fn verify_bundle(
        &self,
        env: &Envelope,
        payload_type: &str,
    ) -> Result<Verified, TrustError> {
        env.verify(
            payload_type,
            &self.role_keys(ROLE_BUNDLE),
            self.threshold(ROLE_BUNDLE),
            ROLE_BUNDLE,
        )
    }

    /// The exact bytes this root was loaded from (to pin or re-export it).
    /// The name and role the root gives the holder of key `keyid`, if any.
    pub fn label(&self, keyid: &str) -> KeyLabel {
        self.meta
            .keys
            .get(keyid)
            .map(|m| KeyLabel {
                name: m.name.clone(),
                role: m.role.clone(),
            })
            .unwrap_or_default()
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub fn expires(&self) -> UnixTime {
        parse_rfc3339(&self.meta.expires).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyPair;

    const NOW: UnixTime = 1_800_000_000;

    fn spec<'a>(
        version: u64,
        root: &'a KeyPair,
        signer: &KeyPair,
        signers: Vec<&'a dyn Signer>,
    ) -> RootSpec<'a> {
        RootSpec {
            version,
            expires: NOW + 86_400,
            root_keys: vec![root.public_key()],
            root_threshold: 1,
            bundle_keys: vec![signer.public_key()],
            bundle_threshold: 1,
            revoked: vec![],
            labels: Default::default(),
            signers,
        }
    }

    #[test]
    fn initial_root_verifies_and_detects_edits() {
        let (r, s) = (KeyPair::generate(), KeyPair::generate());
        let bytes = spec(1, &r, &s, vec![&r]).sign().unwrap();
        let root = TrustRoot::load_initial(&bytes, NOW).unwrap();
        assert_eq!(root.role_keys(ROLE_BUNDLE).len(), 1);
        let edited = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("\"version\": 1", "\"version\": 7");
        assert!(TrustRoot::load_initial(edited.as_bytes(), NOW).is_err());
        assert!(matches!(
            TrustRoot::load_initial(&bytes, NOW + 86_400 * 2),
            Err(TrustError::RootExpired { .. })
        ));
        // signed by a key that is not its root key
        let bytes = spec(1, &r, &s, vec![&s]).sign().unwrap();
        assert!(TrustRoot::load_initial(&bytes, NOW).is_err());
    }

    #[test]
    fn key_holders_are_named_without_changing_key_ids() {
        let (r, s) = (KeyPair::generate(), KeyPair::generate());
        let mut sp = spec(1, &r, &s, vec![&r]);
        sp.labels.insert(
            s.public_key().keyid(),
            KeyLabel {
                name: Some("Alice <alice@example.org>".into()),
                role: Some("release manager".into()),
            },
        );
        let root = TrustRoot::load_initial(&sp.sign().unwrap(), NOW).unwrap();
        let id = s.public_key().keyid();
        assert_eq!(
            root.label(&id).name.as_deref(),
            Some("Alice <alice@example.org>")
        );
        assert_eq!(root.label(&id).role.as_deref(), Some("release manager"));
        assert_eq!(root.label(&r.public_key().keyid()), KeyLabel::default());
        assert!(root.role_keys(ROLE_BUNDLE).contains_key(&id));

        sp.labels.insert(
            id.clone(),
            KeyLabel {
                name: Some("line\nbreak".into()),
                role: None,
            },
        );
        let err = sp.sign().unwrap_err().to_string();
        assert!(err.contains("without control characters"), "{err}");

        sp.labels.clear();
        sp.labels.insert(
            KeyPair::generate().public_key().keyid(),
            KeyLabel {
                name: Some("nobody".into()),
                role: None,
            },
        );
        let err = sp.sign().unwrap_err().to_string();
        assert!(err.contains("neither a root nor a bundle key"), "{err}");
    }

    #[test]
    fn rotation_needs_old_and_new_root_keys() {
        let (r1, r2, s) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let v1 =
            TrustRoot::load_initial(&spec(1, &r1, &s, vec![&r1]).sign().unwrap(), NOW).unwrap();
        let both = spec(2, &r2, &s, vec![&r1, &r2]).sign().unwrap();
        let v2 = v1.update(&both, NOW).unwrap();
        assert_eq!(v2.meta.version, 2);
        let only_new = spec(2, &r2, &s, vec![&r2]).sign().unwrap();
        assert!(v1.update(&only_new, NOW).is_err());
        let skip = spec(3, &r2, &s, vec![&r1, &r2]).sign().unwrap();
        assert!(matches!(
            v1.update(&skip, NOW),
            Err(TrustError::RootVersion { .. })
        ));
    }
}
