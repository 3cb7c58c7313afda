//! [`Pkcs11Signer`]: an ed25519 key inside a PKCS#11 token, signing with CKM_EDDSA.
//!
//! The private key never leaves the token. Every signature the token returns is verified
//! against the key's public half before it is used, so a token that answers with the
//! wrong key or a damaged signature fails the signing instead of producing a bundle that
//! no verifier accepts.

use std::sync::Mutex;

use airlock_trust::{PublicKey, Signer, TrustError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{ObjectClass, ObjectHandle};

use crate::token::{self, Token};
use crate::uri::Pkcs11Uri;
use crate::KeyError;

/// A logged-in session on a token and the handle of one ed25519 private key in it.
pub struct Pkcs11Signer {
    /// A PKCS#11 session serves one thread at a time.
    token: Mutex<Token>,
    key: ObjectHandle,
    public: PublicKey,
    /// The URI without its PIN, for messages.
    name: String,
}

impl Pkcs11Signer {
    /// Logs in to the token `uri` names and finds its private key and public key objects.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, KeyError> {
        let token = token::open(uri, false)?;
        let missing = |class: &str| KeyError::NoKey {
            token: token.label.clone(),
            class: class.to_string(),
            key: uri.key_name(),
        };
        let key = token::find_key(&token, uri, ObjectClass::PRIVATE_KEY)?
            .ok_or_else(|| missing("private"))?;
        let public_handle = token::find_key(&token, uri, ObjectClass::PUBLIC_KEY)?
            .ok_or_else(|| missing("public"))?;
        let public = token::public_key(&token, public_handle)?;
        Ok(Pkcs11Signer {
            token: Mutex::new(token),
            key,
            public,
            name: uri.key_name(),
        })
    }

    fn sign_err(&self, reason: String) -> TrustError {
        TrustError::Sign {
            key: self.name.clone(),
            reason,
        }
    }
}

impl Signer for Pkcs11Signer {
    fn public_key(&self) -> PublicKey {
        self.public
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], TrustError> {
        let token = self.token.lock().unwrap_or_else(|p| p.into_inner());
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let sig = token
            .session
            .sign(&mechanism, self.key, message)
            .map_err(|e| self.sign_err(token::describe(&e)))?;
        let sig: [u8; 64] = sig.as_slice().try_into().map_err(|_| {
            self.sign_err(format!("the token returned {} bytes, not 64", sig.len()))
        })?;
        if !self.public.verify(message, &sig) {
            return Err(
                self.sign_err("the token's signature does not verify under its public key".into())
            );
        }
        Ok(sig)
    }
}
