//! Creating an ed25519 key pair inside a token (CKM_EC_EDWARDS_KEY_PAIR_GEN).
//!
//! The private key is created sensitive and non-extractable, so it can sign but never be
//! read out; the public key object carries the same label and CKA_ID, so the same URI finds
//! both. An existing key with the label is never replaced.

use airlock_trust::PublicKey;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};

use crate::token::{self, Token};
use crate::uri::Pkcs11Uri;
use crate::KeyError;

/// CKA_EC_PARAMS for Ed25519: the DER of OID 1.3.101.112 (id-Ed25519, RFC 8410).
pub const ED25519_OID_DER: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// Length of the random CKA_ID given to a new key pair when the URI names no `id=`.
const ID_LEN: usize = 16;

/// Generates a key pair labelled `label` in the token `uri` names; returns its public key.
pub fn generate(uri: &Pkcs11Uri, label: &str) -> Result<PublicKey, KeyError> {
    let token = token::open(uri, true)?;
    let mut named = uri.clone();
    named.object = Some(label.to_string());
    named.id = None;
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
        if token::find_key(&token, &named, class)?.is_some() {
            return Err(token.bad(&format!(
                "a key labelled {label:?} exists; keys are never overwritten"
            )));
        }
    }
    let id = match &uri.id {
        Some(id) => id.clone(),
        None => random_id(&token)?,
    };
    let (public, _private) = token
        .session
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &public_template(label, &id),
            &private_template(label, &id),
        )
        .map_err(|e| token.err("generating an ed25519 key pair", &e))?;
    token::public_key(&token, public)
}

fn public_template(label: &str, id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(ED25519_OID_DER.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

fn private_template(label: &str, id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

fn random_id(token: &Token) -> Result<Vec<u8>, KeyError> {
    token
        .session
        .generate_random_vec(ID_LEN as u32)
        .map_err(|e| token.err("generating a key id", &e))
}
