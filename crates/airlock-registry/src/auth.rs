//! Optional client authentication per route group (`oci`, `hf`, `apt`, `metrics`).
//!
//! A credentials file has one entry per line (blank lines and `#` comments ignored):
//! a bare token (accepted as `Authorization: Bearer TOKEN`, or as the password of HTTP basic
//! auth with any user name, which is how docker-style clients send a token), or an
//! htpasswd-style `user:$2y$…` bcrypt entry (basic auth). Groups without a file are open.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use http::HeaderMap;
use subtle::ConstantTimeEq as _;

use crate::RegistryError;

/// Route groups that can require credentials.
pub const GROUPS: &[&str] = &["oci", "hf", "apt", "metrics"];

#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// SHA-256 of each accepted token: compared in constant time at a fixed length.
    tokens: Vec<[u8; 32]>,
    users: HashMap<String, String>,
}

impl Credentials {
    /// Reads a credentials file (see the module docs).
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path)
            .map_err(RegistryError::io(path, "read credentials file"))?;
        let mut c = Credentials::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some((user, hash)) if hash.starts_with("$2") => {
                    c.users.insert(user.to_string(), hash.to_string());
                }
                Some(_) => {
                    return Err(RegistryError::Auth {
                        path: path.to_path_buf(),
                        reason: format!(
                        "line {}: only bare tokens and bcrypt `user:$2y$…` entries are supported",
                        i + 1
                    ),
                    })
                }
                None if line.len() >= 8 => c.tokens.push(token_digest(line)),
                None => {
                    return Err(RegistryError::Auth {
                        path: path.to_path_buf(),
                        reason: format!("line {}: tokens must be at least 8 characters", i + 1),
                    })
                }
            }
        }
        if c.tokens.is_empty() && c.users.is_empty() {
            return Err(RegistryError::Auth {
                path: path.to_path_buf(),
                reason: "no credentials in file (it would lock every client out)".into(),
            });
        }
        Ok(c)
    }

    /// Is `t` one of the tokens? Compares the SHA-256 digests (fixed length, so neither the
    /// length nor a matching prefix of a token shows in the timing) with `subtle`, and every
    /// token in full, so timing does not reveal which one nearly matched.
    fn token_ok(&self, t: &str) -> bool {
        let d = token_digest(t);
        let hit = self
            .tokens
            .iter()
            .fold(subtle::Choice::from(0), |acc, k| acc | k.ct_eq(&d));
        hit.into()
    }

    /// Does the request carry acceptable credentials?
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let (scheme, value) = v.split_once(' ').unwrap_or((v, ""));
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.token_ok(value);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(value) else {
                return false;
            };
            let Ok(raw) = String::from_utf8(raw) else {
                return false;
            };
            let Some((user, pass)) = raw.split_once(':') else {
                return false;
            };
            if let Some(hash) = self.users.get(user) {
                return bcrypt::verify(pass, hash).unwrap_or(false);
            }
            return self.token_ok(pass);
        }
        false
    }
}

fn token_digest(t: &str) -> [u8; 32] {
    *airlock_core::Sha256::digest(t.as_bytes()).bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_basic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        let hash = bcrypt::hash("s3cret-pw", 4).unwrap();
        std::fs::write(&p, format!("# ops\nsecret-token-1\nalice:{hash}\n")).unwrap();
        let c = Credentials::load(&p).unwrap();
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert("authorization", v.parse().unwrap());
            m
        };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(c.allows(&h("Bearer secret-token-1")));
        assert!(!c.allows(&h("Bearer secret-token-2")));
        assert!(!c.allows(&h("Bearer secret-token-1x")));
        assert!(!c.allows(&h("Bearer secret")));
        assert!(c.allows(&h(&format!("Basic {}", b64("x:secret-token-1")))));
        assert!(c.allows(&h(&format!("Basic {}", b64("alice:s3cret-pw")))));
        assert!(!c.allows(&h(&format!("Basic {}", b64("alice:wrong")))));
        assert!(!c.allows(&HeaderMap::new()));
    }
}
