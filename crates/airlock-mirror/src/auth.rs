//! Registry credentials and the challenge parsing of the distribution auth flow.
//!
//! * [`Credentials`] — user and password for one registry, from `--creds`, or from the files
//!   every container tool reads: `$REGISTRY_AUTH_FILE`, containers' `auth.json`
//!   (`$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`) and Docker's
//!   `~/.docker/config.json` (`$DOCKER_CONFIG/config.json`), first match wins, as podman does.
//! * [`Challenge`] — a parsed `WWW-Authenticate` header: `Basic realm=...` or
//!   `Bearer realm=...,service=...,scope=...`, which tells the client where to get a token.
//!
//! Credential helpers (`credsStore`) are not run: on a mirroring host they would be an
//! unaudited program; a registry that needs them is given `--creds` instead.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;

/// User name and password (or identity token as password) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// `USER:PASSWORD` as given on the command line.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err("expected USER:PASSWORD".to_string()),
        }
    }

    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Auth files in the order they are consulted.
pub fn auth_files(explicit: Option<&std::path::Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = explicit {
        out.push(p.to_path_buf());
        return out;
    }
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        out.push(PathBuf::from(p));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        out.push(PathBuf::from(d).join("containers/auth.json"));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if let Some(h) = &home {
        out.push(h.join(".config/containers/auth.json"));
    }
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => out.push(PathBuf::from(d).join("config.json")),
        None => {
            if let Some(h) = &home {
                out.push(h.join(".docker/config.json"));
            }
        }
    }
    out
}

/// Looks `registry` (`HOST[:PORT]`) up in the auth files; the first file naming it wins.
/// Unreadable or malformed files are skipped with a warning, never fatal: they belong to
/// other tools.
pub fn lookup(files: &[PathBuf], registry: &str) -> Option<Credentials> {
    for f in files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        if bytes.len() > 4 << 20 {
            tracing::warn!(file = %f.display(), "auth file larger than 4 MiB, skipped");
            continue;
        }
        match credentials_from(&bytes, registry) {
            Ok(Some(c)) => {
                tracing::debug!(file = %f.display(), registry, "credentials found");
                return Some(c);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(file = %f.display(), "auth file skipped: {e}"),
        }
    }
    None
}

#[derive(serde::Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// Credentials for `registry` in one auth file's bytes (Docker and containers formats agree).
pub fn credentials_from(bytes: &[u8], registry: &str) -> Result<Option<Credentials>, String> {
    let f: AuthFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let wanted: Vec<String> = if registry == airlock_core::reference::DOCKER_HUB {
        vec![
            "docker.io".into(),
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "registry-1.docker.io".into(),
        ]
    } else {
        vec![registry.to_string()]
    };
    for (key, e) in &f.auths {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        if !(wanted.iter().any(|w| w == key || w == host)) {
            continue;
        }
        if let (Some(u), Some(p)) = (&e.username, &e.password) {
            return Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }));
        }
        if let Some(a) = &e.auth {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|e| format!("auths[{key:?}].auth: {e}"))?;
            let raw =
                String::from_utf8(raw).map_err(|_| format!("auths[{key:?}].auth: not UTF-8"))?;
            let c = Credentials::parse(&raw).map_err(|e| format!("auths[{key:?}].auth: {e}"))?;
            return Ok(Some(c));
        }
        if let Some(t) = &e.identity_token {
            return Ok(Some(Credentials {
                username: "<token>".into(),
                password: t.clone(),
            }));
        }
    }
    Ok(None)
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`.
    pub fn parse(h: &str) -> Option<Challenge> {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `k="v", k2=v2` (quoted values may hold commas).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            val.push(n)
                        }
                    }
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            val = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), val.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        assert_eq!(
            Challenge::parse("Basic realm=\"r\""),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    /// A cheap stand-in for a fuzzer: random and mutated inputs never panic the parsers of
    /// registry-controlled (challenges) and file-controlled (auth files, references) text.
    #[test]
    fn parsers_never_panic_on_garbage() {
        let seeds: [&[u8]; 4] = [
            br#"Bearer realm="https://a/t",service="s",scope="repository:a:pull""#,
            br#"{"auths":{"h:1":{"auth":"YWxpY2U6czNjcjN0"}}}"#,
            b"reg.example:5000/a/b:v1@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            b"Basic realm=\"\\\"x",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let seed = seeds[(next() % 4) as usize];
            let mut v = seed.to_vec();
            for _ in 0..(next() % 8) {
                let i = (next() as usize) % (v.len() + 1);
                match next() % 3 {
                    0 if i < v.len() => v[i] = next() as u8,
                    1 => v.insert(i, b"\",=:/@ \\"[(next() % 8) as usize]),
                    _ if i < v.len() => {
                        v.remove(i);
                    }
                    _ => {}
                }
            }
            let text = String::from_utf8_lossy(&v);
            let _ = Challenge::parse(&text);
            let _ = credentials_from(&v, "h:1");
            let _ = text.parse::<airlock_core::reference::ImageRef>();
        }
    }

    #[test]
    fn reads_docker_and_containers_auth_files() {
        let f = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},
                     "127.0.0.1:5000":{"auth":"YWxpY2U6czNjcjN0"}}}"#;
        let c = credentials_from(f, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cr3t")
        );
        let c = credentials_from(f, "docker.io").unwrap().unwrap();
        assert_eq!(c.username, "u");
        assert!(credentials_from(f, "other:1").unwrap().is_none());
    }
}
