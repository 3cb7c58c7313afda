//! Opening a PKCS#11 module, finding the token a URI names, logging in, finding keys.
//!
//! A module is loaded and `C_Initialize`d once per process and shared: PKCS#11 allows only
//! one initialisation per library, and login state belongs to the application, so two keys
//! in the same token (two root keys, say) share one context, and a second login reports
//! "already logged in", which is success here.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use airlock_trust::PublicKey;
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;

use crate::uri::{Pin, Pkcs11Uri};
use crate::KeyError;

/// The module used when neither `module-path=` nor `AIRLOCK_PKCS11_MODULE` names one.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// PIN files hold one short line.
const MAX_PIN_FILE: u64 = 4096;

/// An open, logged-in session on the token a URI names.
pub struct Token {
    pub session: Session,
    /// The token's label, for messages.
    pub label: String,
}

/// The module path: the URI's `module-path=`, else `AIRLOCK_PKCS11_MODULE`, else SoftHSM2.
pub fn module_path(uri: &Pkcs11Uri) -> PathBuf {
    uri.module_path
        .clone()
        .or_else(|| std::env::var_os(airlock_core::env::AIRLOCK_PKCS11_MODULE).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODULE))
}

/// The process-wide, initialised context of the module at `path`.
fn context(path: &Path) -> Result<Pkcs11, KeyError> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(ctx) = loaded.get(path) {
        return Ok(ctx.clone());
    }
    let module_err = |e: CkError| KeyError::Module {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let ctx = Pkcs11::new(path).map_err(module_err)?;
    ctx.initialize(CInitializeArgs::OsThreads)
        .map_err(module_err)?;
    loaded.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// Opens a session on the token `uri` names and logs the user in.
pub fn open(uri: &Pkcs11Uri, read_write: bool) -> Result<Token, KeyError> {
    let module = module_path(uri);
    let ctx = context(&module)?;
    let (slot, info) = find_slot(&ctx, uri, &module)?;
    let label = info.label().trim_end().to_string();
    let call = |what: &'static str| {
        let label = label.clone();
        move |e: CkError| KeyError::Token {
            token: label,
            what: format!("{what}: {}", describe(&e)),
        }
    };
    let session = if read_write {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(call("opening a session"))?;
    login(&session, &info, &uri.pin, &label)?;
    Ok(Token { session, label })
}

/// The one initialised token that matches every token attribute of `uri`.
fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri, module: &Path) -> Result<(Slot, TokenInfo), KeyError> {
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| KeyError::Module {
            path: module.to_path_buf(),
            reason: describe(&e),
        })?;
    let mut found = Vec::new();
    for slot in slots {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        if token_matches(uri, &info) {
            found.push((slot, info));
        }
    }
    let wanted = || {
        uri.token
            .clone()
            .or(uri.serial.clone())
            .unwrap_or_else(|| "(any)".into())
    };
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(KeyError::NoToken {
            token: wanted(),
            module: module.to_path_buf(),
        }),
        n => Err(KeyError::Token {
            token: wanted(),
            what: format!("{n} tokens match; name one with token= or serial="),
        }),
    }
}

fn token_matches(uri: &Pkcs11Uri, info: &TokenInfo) -> bool {
    let eq =
        |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have.trim_end());
    eq(&uri.token, info.label())
        && eq(&uri.serial, info.serial_number())
        && eq(&uri.manufacturer, info.manufacturer_id())
        && eq(&uri.model, info.model())
}

/// Logs the user in with the URI's PIN, or through the token's PIN pad when it has one.
fn login(session: &Session, info: &TokenInfo, pin: &Pin, token: &str) -> Result<(), KeyError> {
    let pin = match pin {
        Pin::Value(v) => Some(AuthPin::new(v.clone())),
        Pin::File(path) => Some(AuthPin::new(read_pin(path)?)),
        Pin::None if info.protected_authentication_path() => None,
        Pin::None => {
            return Err(KeyError::Login {
                token: token.into(),
                reason: "no PIN given: add ?pin-source=file:PATH (or pin-value=) to the URI".into(),
            })
        }
    };
    match session.login(UserType::User, pin.as_ref()) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(KeyError::Login {
            token: token.into(),
            reason: describe(&e),
        }),
    }
}

/// The first line of a PIN file.
fn read_pin(path: &Path) -> Result<String, KeyError> {
    let io = |source| KeyError::PinFile {
        path: path.to_path_buf(),
        source,
    };
    let mut s = String::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_PIN_FILE).read_to_string(&mut s))
        .map_err(io)?;
    Ok(s.lines().next().unwrap_or("").to_string())
}

/// The one ed25519 key of `class` that the URI's `object=` and `id=` name.
pub fn find_key(
    token: &Token,
    uri: &Pkcs11Uri,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>, KeyError> {
    let mut template = vec![
        Attribute::Class(class),
        Attribute::KeyType(KeyType::EC_EDWARDS),
    ];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    let found = token
        .session
        .find_objects(&template)
        .map_err(|e| token.err("searching for the key", &e))?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(Some(found[0])),
        n => Err(KeyError::Token {
            token: token.label.clone(),
            what: format!("{n} keys match {}; add id= to choose one", uri.key_name()),
        }),
    }
}

/// The ed25519 public key of a public-key object, from its CKA_EC_POINT.
pub fn public_key(token: &Token, handle: ObjectHandle) -> Result<PublicKey, KeyError> {
    let attrs = token
        .session
        .get_attributes(handle, &[AttributeType::EcPoint])
        .map_err(|e| token.err("reading CKA_EC_POINT", &e))?;
    let point = attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p),
            _ => None,
        })
        .ok_or_else(|| token.bad("the public key has no CKA_EC_POINT"))?;
    let raw = ec_point_bytes(&point).ok_or_else(|| {
        token.bad(&format!(
            "CKA_EC_POINT is {} bytes, not an ed25519 key",
            point.len()
        ))
    })?;
    PublicKey::from_bytes(&raw).map_err(|e| token.bad(&format!("CKA_EC_POINT: {e}")))
}

/// The 32 key bytes of a CKA_EC_POINT: a DER OCTET STRING (`04 20` + key, as PKCS#11 3.0
/// and SoftHSM write it) or the bare key (as some modules do).
pub fn ec_point_bytes(point: &[u8]) -> Option<[u8; 32]> {
    match point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest.try_into().ok(),
        raw if raw.len() == 32 => raw.try_into().ok(),
        _ => None,
    }
}

/// A PKCS#11 error in words: the return value's name (`PinIncorrect`, `DeviceRemoved`...)
/// rather than the specification's paragraph.
pub fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(RvError::PinIncorrect, _) => "the PIN is incorrect".into(),
        CkError::Pkcs11(RvError::PinLocked, _) => "the PIN is locked".into(),
        CkError::Pkcs11(rv, f) => format!("{f} returned {rv:?}"),
        other => other.to_string(),
    }
}

impl Token {
    pub fn err(&self, what: &str, e: &CkError) -> KeyError {
        self.bad(&format!("{what}: {}", describe(e)))
    }

    pub fn bad(&self, what: &str) -> KeyError {
        KeyError::Token {
            token: self.label.clone(),
            what: what.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_forms() {
        let key = [7u8; 32];
        let mut der = vec![0x04, 0x20];
        der.extend_from_slice(&key);
        assert_eq!(ec_point_bytes(&der), Some(key));
        assert_eq!(ec_point_bytes(&key), Some(key));
        assert_eq!(ec_point_bytes(&der[..33]), None);
        assert_eq!(ec_point_bytes(&[0x04, 0x39, 1, 2]), None);
    }
}
