//! RFC 7512 `pkcs11:` URIs, the subset that names one signing key.
//!
//! `pkcs11:token=airlock;object=signer?pin-source=file:/etc/airlock/pin`
//!
//! Path attributes (`;`-separated): `token`, `serial`, `manufacturer`, `model` select the
//! token; `object` (the key's label), `id` (its CKA_ID, percent-encoded bytes) and `type`
//! (only `private`) select the key. Query attributes (`&`-separated): `pin-value`,
//! `pin-source` (`file:PATH` or a plain path), `module-path` (the PKCS#11 library).
//! Values are percent-decoded. Unknown or repeated attributes are refused rather than
//! ignored: ignoring one that narrows the selection could pick a different key.
//!
//! The PIN never appears in `Debug`, `Display` or error messages.

use std::fmt;
use std::path::PathBuf;

use crate::KeyError;

/// Where the user PIN comes from.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Pin {
    /// No PIN in the URI: only a token with a protected authentication path (PIN pad) logs in.
    #[default]
    None,
    /// `pin-value=`.
    Value(String),
    /// `pin-source=`: a file whose first line is the PIN.
    File(PathBuf),
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pin::None => f.write_str("Pin::None"),
            Pin::Value(_) => f.write_str("Pin::Value(<redacted>)"),
            Pin::File(p) => write!(f, "Pin::File({})", p.display()),
        }
    }
}

/// A parsed `pkcs11:` URI.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub pin: Pin,
    pub module_path: Option<PathBuf>,
}

/// The URI scheme prefix.
pub const SCHEME: &str = "pkcs11:";

/// True when `s` is a `pkcs11:` URI rather than a file path.
pub fn is_pkcs11_uri(s: &str) -> bool {
    s.get(..SCHEME.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(SCHEME))
}

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI that names one key (`object=` or `id=`).
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let uri = Self::parse_token(s)?;
        if uri.object.is_none() && uri.id.is_none() {
            return Err(uri_err("name the key with object= or id="));
        }
        Ok(uri)
    }

    /// Parses a `pkcs11:` URI that may name only a token (where a key is to be created).
    pub fn parse_token(s: &str) -> Result<Self, KeyError> {
        if !is_pkcs11_uri(s) {
            return Err(uri_err("it does not start with \"pkcs11:\""));
        }
        let rest = &s[SCHEME.len()..];
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            uri.set_path_attr(attr)?;
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            uri.set_query_attr(attr)?;
        }
        Ok(uri)
    }

    fn set_path_attr(&mut self, attr: &str) -> Result<(), KeyError> {
        let (name, value) = split_attr(attr)?;
        match name {
            "token" => set_once(&mut self.token, name, text(value, name)?),
            "serial" => set_once(&mut self.serial, name, text(value, name)?),
            "manufacturer" => set_once(&mut self.manufacturer, name, text(value, name)?),
            "model" => set_once(&mut self.model, name, text(value, name)?),
            "object" => set_once(&mut self.object, name, text(value, name)?),
            "id" => set_once(&mut self.id, name, pct_decode(value, name)?),
            "type" if value == "private" => Ok(()),
            "type" => Err(uri_err(
                "type= must be \"private\": a signing key is a private key",
            )),
            other => Err(uri_err(&format!("unsupported path attribute {other:?}"))),
        }
    }

    fn set_query_attr(&mut self, attr: &str) -> Result<(), KeyError> {
        let (name, value) = split_attr(attr)?;
        match name {
            "pin-value" | "pin-source" if self.pin != Pin::None => {
                Err(uri_err("give only one of pin-value= and pin-source="))
            }
            "pin-value" => {
                self.pin = Pin::Value(text(value, name)?);
                Ok(())
            }
            "pin-source" => {
                let v = text(value, name)?;
                let path = v.strip_prefix("file:").unwrap_or(&v);
                if path.is_empty() || v.starts_with('|') {
                    return Err(uri_err("pin-source= must be file:PATH"));
                }
                self.pin = Pin::File(PathBuf::from(path));
                Ok(())
            }
            "module-path" => {
                let v = text(value, name)?;
                set_once(&mut self.module_path, name, PathBuf::from(v))
            }
            other => Err(uri_err(&format!("unsupported query attribute {other:?}"))),
        }
    }

    /// What the key is called in messages: token and object, never the PIN.
    pub fn key_name(&self) -> String {
        let mut s = String::from(SCHEME);
        let mut sep = "";
        let mut push = |k: &str, v: &str| {
            s.push_str(&format!("{sep}{k}={v}"));
            sep = ";";
        };
        if let Some(t) = &self.token {
            push("token", t);
        }
        if let Some(sn) = &self.serial {
            push("serial", sn);
        }
        if let Some(o) = &self.object {
            push("object", o);
        }
        if let Some(id) = &self.id {
            push("id", &pct_encode(id));
        }
        s
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key_name())
    }
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkcs11Uri({})", self.key_name())
    }
}

fn uri_err(reason: &str) -> KeyError {
    KeyError::Uri(reason.to_string())
}

fn split_attr(attr: &str) -> Result<(&str, &str), KeyError> {
    attr.split_once('=')
        .ok_or_else(|| uri_err(&format!("attribute {:?} has no '='", redact(attr))))
}

/// The attribute name only, so that a malformed `pin-value` is not echoed.
fn redact(attr: &str) -> &str {
    attr.split('=').next().unwrap_or("")
}

fn set_once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), KeyError> {
    if slot.is_some() {
        return Err(uri_err(&format!("attribute {name:?} is given twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn text(value: &str, name: &str) -> Result<String, KeyError> {
    String::from_utf8(pct_decode(value, name)?)
        .map_err(|_| uri_err(&format!("attribute {name:?} is not UTF-8")))
}

/// RFC 3986 percent-decoding.
fn pct_decode(value: &str, name: &str) -> Result<Vec<u8>, KeyError> {
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| uri_err(&format!("bad percent-encoding in attribute {name:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn pct_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_and_query_attributes() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=air%20lock;object=signer;id=%01%ff;type=private?pin-value=1234&module-path=/lib/p.so",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("air lock"));
        assert_eq!(u.object.as_deref(), Some("signer"));
        assert_eq!(u.id.as_deref(), Some(&[1u8, 0xff][..]));
        assert_eq!(u.pin, Pin::Value("1234".into()));
        assert_eq!(u.module_path, Some(PathBuf::from("/lib/p.so")));
        let shown = format!("{u} {u:?}");
        assert!(!shown.contains("1234"), "{shown}");
        assert_eq!(
            u.key_name(),
            "pkcs11:token=air lock;object=signer;id=%01%ff"
        );
    }

    #[test]
    fn pin_source_is_a_file() {
        let u = Pkcs11Uri::parse("pkcs11:object=k?pin-source=file:/run/pin").unwrap();
        assert_eq!(u.pin, Pin::File("/run/pin".into()));
        let u = Pkcs11Uri::parse("pkcs11:object=k?pin-source=/run/pin").unwrap();
        assert_eq!(u.pin, Pin::File("/run/pin".into()));
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for (uri, want) in [
            ("/tmp/k.key", "pkcs11:"),
            ("pkcs11:token=a", "object= or id="),
            ("pkcs11:object=a;slot-id=3", "slot-id"),
            ("pkcs11:object=a;object=b", "twice"),
            ("pkcs11:object=a;type=public", "private"),
            ("pkcs11:object=a?pin-value=1&pin-source=file:/p", "only one"),
            ("pkcs11:object=a?pin-source=|cat", "file:"),
            ("pkcs11:object=%zz", "percent"),
            ("pkcs11:object?pin-value=secret", "no '='"),
        ] {
            let e = Pkcs11Uri::parse(uri).unwrap_err().to_string();
            assert!(e.contains(want), "{uri}: {e}");
            assert!(!e.contains("secret"), "{uri}: {e}");
        }
    }

    #[test]
    fn scheme_is_case_insensitive() {
        assert!(is_pkcs11_uri("PKCS11:object=a"));
        assert!(!is_pkcs11_uri("keys/signer.key"));
    }
}
