//! A blocking OCI distribution API client (`/v2/`), the connected side's only way to talk to
//! registries.
//!
//! * [`Client`] — one `ureq` agent (rustls, connection pool) shared by every download thread,
//!   with per-registry auth: anonymous, basic, and the bearer-token flow driven by the
//!   registry's `WWW-Authenticate` challenge (tokens cached per registry and repository).
//! * [`Client::manifest`] — a manifest or index by tag or digest, with `Accept` negotiation for
//!   OCI and Docker schema 2 types; at most [`MAX_MANIFEST_BYTES`] read, and its digest checked
//!   against the digest asked for or the registry's `Docker-Content-Digest`.
//! * [`Client::blob_to`] — a blob streamed into a partial file while hashed, resuming with
//!   `Range` from the bytes already there and fsynced; the caller moves it into the store only
//!   when size and digest matched. Damaged bytes are deleted, never stored.
//! * [`Client::tags`], [`Client::referrers`] — the tags list and the OCI 1.1 referrers API.
//!
//! Plain HTTP is used only for registries named in [`ClientOptions::insecure`]; everything else
//! is HTTPS with the Mozilla roots or the CA of `--ca-file`. Redirects (blob storage on another
//! host) are followed without the `Authorization` header.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use airlock_bundle::Progress;
use airlock_core::media;
use airlock_core::oci::{Descriptor, Index, Probe};
use airlock_core::reference::ImageRef;
use airlock_core::{Digest, Sha256};
use ureq::http::Response;
use ureq::Body;

use crate::auth::{self, Challenge, Credentials};
use crate::partial::Partial;
use crate::MirrorError;

pub use airlock_core::oci::MAX_MANIFEST_BYTES;

/// `Accept` for manifests: every manifest and index type airlock understands.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Token responses and tag lists are small; anything larger is refused.
const MAX_SMALL_JSON: u64 = 4 << 20;

/// How the client connects and authenticates.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// `HOST:PORT` of registries that may be reached over plain HTTP.
    pub insecure: Vec<String>,
    /// PEM file of CA certificates that replace the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Credentials for every registry of this run (`--creds`); else the auth files are read.
    pub credentials: Option<Credentials>,
    /// Auth file to read instead of the standard locations.
    pub auth_file: Option<PathBuf>,
    /// Extra tries after a transient failure (0 = no retry).
    pub retries: u32,
}

/// A manifest or index as fetched: verified bytes and what they are.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
}

impl Fetched {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest,
            size: self.bytes.len() as u64,
            artifact_type: None,
            platform: None,
            annotations: Default::default(),
        }
    }
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Head,
}

/// Per-registry auth state.
#[derive(Default)]
struct AuthState {
    /// The registry asked for basic auth.
    basic: bool,
    /// Bearer tokens by scope.
    tokens: HashMap<String, String>,
}

pub struct Client {
    agent: ureq::Agent,
    opts: ClientOptions,
    auth_files: Vec<PathBuf>,
    state: Mutex<HashMap<String, AuthState>>,
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Self, MirrorError> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &opts.ca_file {
            let pem = std::fs::read(ca).map_err(MirrorError::io(ca, "read CA file"))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(MirrorError::Invalid(format!(
                    "{}: no PEM certificate in the CA file",
                    ca.display()
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.build())
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // A stalled body fails the read (and the download resumes on retry) instead of
            // hanging the sync; no total body timeout, layers may be many GiB.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(60)))
            .max_idle_connections_per_host(32)
            .user_agent(format!("airlock/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let auth_files = auth::auth_files(opts.auth_file.as_deref());
        Ok(Client {
            agent,
            opts,
            auth_files,
            state: Mutex::new(HashMap::new()),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    fn base(&self, r: &ImageRef) -> String {
        let host = r.api_host();
        let scheme = if self
            .opts
            .insecure
            .iter()
            .any(|h| h == host || h == &r.registry)
        {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}")
    }

    fn credentials(&self, registry: &str) -> Option<Credentials> {
        self.opts
            .credentials
            .clone()
            .or_else(|| auth::lookup(&self.auth_files, registry))
    }

    fn raw(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<Response<Body>, MirrorError> {
        let mut req = match method {
            Method::Get => self.agent.get(url),
            Method::Head => self.agent.head(url),
        };
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.call().map_err(|e| MirrorError::Transport {
            url: url.to_string(),
            detail: e.to_string(),
        })
    }

    /// Sends a request to `r`'s registry at `path`, answering one auth challenge.
    fn send(
        &self,
        r: &ImageRef,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<Response<Body>, MirrorError> {
        let url = format!("{}{}", self.base(r), path);
        let scope = format!("repository:{}:pull", r.repository);
        for attempt in 0..2 {
            let mut hs: Vec<(&str, String)> = headers.to_vec();
            let sent = self.auth_header(r, &scope);
            if let Some(a) = &sent {
                hs.push(("Authorization", a.clone()));
            }
            let resp = self.raw(method, &url, &hs)?;
            if resp.status().as_u16() != 401 {
                return Ok(resp);
            }
            if attempt == 1 {
                return Err(MirrorError::Auth {
                    registry: r.registry.clone(),
                    detail: format!("{url}: credentials refused (HTTP 401 after authenticating)"),
                });
            }
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .and_then(Challenge::parse)
                .ok_or_else(|| MirrorError::Auth {
                    registry: r.registry.clone(),
                    detail: format!("{url}: 401 without a usable WWW-Authenticate challenge"),
                })?;
            self.answer(r, &scope, challenge, sent.as_deref())?;
        }
        unreachable!("loop returns on the second attempt")
    }

    fn auth_header(&self, r: &ImageRef, scope: &str) -> Option<String> {
        let st = self.state.lock().expect("auth state");
        let s = st.get(&r.registry)?;
        if let Some(t) = s.tokens.get(scope) {
            return Some(format!("Bearer {t}"));
        }
        if s.basic {
            return self.credentials(&r.registry).map(|c| c.basic_header());
        }
        None
    }

    /// Answers a challenge to a request that carried `sent` as its `Authorization`. Only a
    /// credential that was itself refused counts as refused: another thread may have replaced
    /// an expired token in the meantime, and the same new token is then simply used.
    fn answer(
        &self,
        r: &ImageRef,
        scope: &str,
        c: Challenge,
        sent: Option<&str>,
    ) -> Result<(), MirrorError> {
        let creds = self.credentials(&r.registry);
        match c {
            Challenge::Basic => {
                if creds.is_none() {
                    return Err(MirrorError::Auth {
                        registry: r.registry.clone(),
                        detail: "the registry asks for a user name and password; give --creds or log in (docker/podman login)".into(),
                    });
                }
                let mut st = self.state.lock().expect("auth state");
                let s = st.entry(r.registry.clone()).or_default();
                if sent.is_some_and(|h| h.starts_with("Basic ")) {
                    return Err(MirrorError::Auth {
                        registry: r.registry.clone(),
                        detail: "credentials refused".into(),
                    });
                }
                s.basic = true;
                Ok(())
            }
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                let scope_q = asked.unwrap_or_else(|| scope.to_string());
                let mut url = format!("{realm}?scope={}", urlenc(&scope_q));
                if let Some(s) = &service {
                    url.push_str(&format!("&service={}", urlenc(s)));
                }
                let mut hs = Vec::new();
                if let Some(c) = &creds {
                    hs.push(("Authorization", c.basic_header()));
                }
                let resp = self.raw(Method::Get, &url, &hs)?;
                let status = resp.status().as_u16();
                if status != 200 {
                    return Err(MirrorError::Auth {
                        registry: r.registry.clone(),
                        detail: format!(
                            "token server {realm} answered HTTP {status}{}",
                            if creds.is_none() {
                                " (no credentials were sent)"
                            } else {
                                ""
                            }
                        ),
                    });
                }
                let body = read_bounded(resp, MAX_SMALL_JSON, &url)?;
                #[derive(serde::Deserialize)]
                struct Tok {
                    #[serde(default)]
                    token: Option<String>,
                    #[serde(default)]
                    access_token: Option<String>,
                }
                let t: Tok = serde_json::from_slice(&body).map_err(|e| MirrorError::Auth {
                    registry: r.registry.clone(),
                    detail: format!("token server {realm}: not a token response: {e}"),
                })?;
                let token = t
                    .token
                    .or(t.access_token)
                    .ok_or_else(|| MirrorError::Auth {
                        registry: r.registry.clone(),
                        detail: format!("token server {realm}: no token in the response"),
                    })?;
                let mut st = self.state.lock().expect("auth state");
                let s = st.entry(r.registry.clone()).or_default();
                if sent == Some(format!("Bearer {token}").as_str()) {
                    return Err(MirrorError::Auth {
                        registry: r.registry.clone(),
                        detail: "token refused".into(),
                    });
                }
                s.tokens.insert(scope.to_string(), token);
                Ok(())
            }
        }
    }

    /// Runs `f` again after transient failures, with exponential backoff.
    pub fn retry<T>(
        &self,
        what: &str,
        f: impl FnMut() -> Result<T, MirrorError>,
    ) -> Result<T, MirrorError> {
        crate::with_retries(self.opts.retries, what, f)
    }

    /// `GET /v2/`: is the registry there and do we get in?
    pub fn ping(&self, r: &ImageRef) -> Result<(), MirrorError> {
        let resp = self.send(r, Method::Get, "/v2/", &[])?;
        check_status(resp, &format!("{}/v2/", self.base(r)), &[200]).map(|_| ())
    }

    /// The digest a tag or digest resolves to, from a `HEAD` (no body), when the registry says.
    pub fn head_manifest(
        &self,
        r: &ImageRef,
        reference: &str,
    ) -> Result<Option<Digest>, MirrorError> {
        let path = format!("/v2/{}/manifests/{reference}", r.repository);
        let resp = self.send(
            r,
            Method::Head,
            &path,
            &[("Accept", MANIFEST_ACCEPT.to_string())],
        )?;
        let url = format!("{}{path}", self.base(r));
        let resp = check_status(resp, &url, &[200])?;
        Ok(resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }

    /// Fetches a manifest or index by tag or digest; bounded and digest-checked.
    pub fn manifest(&self, r: &ImageRef, reference: &str) -> Result<Fetched, MirrorError> {
        let path = format!("/v2/{}/manifests/{reference}", r.repository);
        let url = format!("{}{path}", self.base(r));
        let resp = self.send(
            r,
            Method::Get,
            &path,
            &[("Accept", MANIFEST_ACCEPT.to_string())],
        )?;
        let resp = check_status(resp, &url, &[200])?;
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
        let bytes = read_bounded(resp, MAX_MANIFEST_BYTES, &url)?;
        let digest = Sha256::digest(&bytes);
        let expected = reference.parse::<Digest>().ok().or(header_digest);
        if let Some(e) = expected {
            if e != digest {
                return Err(MirrorError::DigestMismatch {
                    what: format!("manifest {url}"),
                    expected: e,
                    found: digest,
                });
            }
        }
        let probe: Probe = serde_json::from_slice(&bytes).map_err(|e| {
            MirrorError::Invalid(format!("manifest {url} ({digest}) is not JSON: {e}"))
        })?;
        let media_type = match (probe.media_type.clone(), content_type) {
            (Some(m), _) => m,
            (None, Some(c)) if media::is_index(&c) || media::is_manifest(&c) => c,
            _ => probe.kind().unwrap_or("").to_string(),
        };
        if !(media::is_index(&media_type) || media::is_manifest(&media_type)) {
            return Err(MirrorError::Invalid(format!(
                "manifest {url} ({digest}) has unsupported media type {media_type:?} (OCI and Docker schema 2 are supported)"
            )));
        }
        Ok(Fetched {
            bytes,
            digest,
            media_type,
        })
    }

    /// All tags of the repository (following `Link` pagination, at most 100 pages).
    pub fn tags(&self, r: &ImageRef) -> Result<Vec<String>, MirrorError> {
        let mut out = Vec::new();
        let mut path = format!("/v2/{}/tags/list?n=1000", r.repository);
        for _ in 0..100 {
            let url = format!("{}{path}", self.base(r));
            let resp = self.send(r, Method::Get, &path, &[])?;
            let resp = check_status(resp, &url, &[200])?;
            let next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split_once('<').and_then(|(_, x)| x.split_once('>')))
                .map(|(p, _)| p.to_string());
            #[derive(serde::Deserialize)]
            struct Tags {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let body = read_bounded(resp, MAX_SMALL_JSON, &url)?;
            let t: Tags = serde_json::from_slice(&body)
                .map_err(|e| MirrorError::Invalid(format!("{url}: not a tag list: {e}")))?;
            out.extend(t.tags.unwrap_or_default());
            match next {
                Some(n) if n.starts_with("/v2/") => path = n,
                _ => break,
            }
        }
        Ok(out)
    }

    /// The referrers of `digest` through the OCI 1.1 API; `None` when the registry lacks it.
    pub fn referrers(&self, r: &ImageRef, digest: &Digest) -> Result<Option<Index>, MirrorError> {
        let path = format!("/v2/{}/referrers/{digest}", r.repository);
        let url = format!("{}{path}", self.base(r));
        let resp = self.send(
            r,
            Method::Get,
            &path,
            &[("Accept", media::OCI_INDEX.to_string())],
        )?;
        let status = resp.status().as_u16();
        if status == 404 || status == 405 || status == 400 {
            return Ok(None);
        }
        let resp = check_status(resp, &url, &[200])?;
        let is_index = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with(media::OCI_INDEX));
        if !is_index {
            return Ok(None);
        }
        let body = read_bounded(resp, MAX_MANIFEST_BYTES, &url)?;
        let ix: Index = serde_json::from_slice(&body)
            .map_err(|e| MirrorError::Invalid(format!("{url}: not a referrers index: {e}")))?;
        Ok(Some(ix))
    }

    /// Downloads blob `desc` of `r` into `partial`, resuming from the bytes already there;
    /// returns the bytes transferred once size and digest matched and the file was fsynced
    /// (the caller moves it into the store).
    pub fn blob_to(
        &self,
        r: &ImageRef,
        desc: &Descriptor,
        partial: &Path,
        progress: &dyn Progress,
    ) -> Result<u64, MirrorError> {
        let mut p = Partial::open(partial, desc.size, false, progress)?;
        let mut transferred = 0u64;
        let path = format!("/v2/{}/blobs/{}", r.repository, desc.digest);
        let url = format!("{}{path}", self.base(r));
        if p.have() < desc.size {
            let mut hs = Vec::new();
            if p.have() > 0 {
                hs.push(("Range", format!("bytes={}-", p.have())));
                tracing::info!(blob = %desc.digest, offset = p.have(), "resuming download");
            }
            let resp = self.send(r, Method::Get, &path, &hs)?;
            let status = resp.status().as_u16();
            let resp = check_status(resp, &url, &[200, 206])?;
            let cr = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            p.accept(status, cr.as_deref(), &url)?;
            transferred = p.fill(resp.into_body().into_reader(), &url, progress)?;
        }
        let (found, _, f) = p.finish();
        if found != desc.digest {
            drop(f);
            let _ = std::fs::remove_file(partial);
            return Err(MirrorError::DigestMismatch {
                what: format!("blob {url}"),
                expected: desc.digest,
                found,
            });
        }
        f.sync_data()
            .map_err(MirrorError::io(partial, "sync blob"))?;
        Ok(transferred)
    }
}

/// Turns a non-expected status into an error carrying the registry's error message.
fn check_status(
    resp: Response<Body>,
    url: &str,
    ok: &[u16],
) -> Result<Response<Body>, MirrorError> {
    let status = resp.status().as_u16();
    if ok.contains(&status) {
        return Ok(resp);
    }
    let body = read_bounded(resp, 64 << 10, url).unwrap_or_default();
    let detail = registry_message(&body);
    Err(MirrorError::Status {
        url: url.to_string(),
        status,
        detail,
    })
}

/// The `errors[].code: message` of a distribution error body.
fn registry_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<E>,
    }
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errs>(body) {
        Ok(e) => e
            .errors
            .iter()
            .map(|e| format!("{} {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string(),
    }
}

/// Reads at most `max` bytes of a body; more is an error.
pub(crate) fn read_bounded(
    resp: Response<Body>,
    max: u64,
    url: &str,
) -> Result<Vec<u8>, MirrorError> {
    airlock_core::bounded::read_at_most(resp.into_body().into_reader(), max).map_err(|e| {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            MirrorError::Invalid(format!("{url}: response larger than {max} bytes"))
        } else {
            MirrorError::Transport {
                url: url.to_string(),
                detail: e.to_string(),
            }
        }
    })
}

fn urlenc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_read_as_code_and_message() {
        let b =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(registry_message(b), "MANIFEST_UNKNOWN manifest unknown");
        assert_eq!(registry_message(b"  plain text\n"), "plain text");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            urlenc("repository:acme/hello:pull"),
            "repository%3Aacme%2Fhello%3Apull"
        );
    }

    #[test]
    fn plain_http_only_for_named_registries() {
        let c = Client::new(ClientOptions {
            insecure: vec!["127.0.0.1:5000".into()],
            ..Default::default()
        })
        .unwrap();
        let local: ImageRef = "127.0.0.1:5000/a/b:v1".parse().unwrap();
        let other: ImageRef = "127.0.0.1:5001/a/b:v1".parse().unwrap();
        let hub: ImageRef = "ubuntu:24.04".parse().unwrap();
        assert_eq!(c.base(&local), "http://127.0.0.1:5000");
        assert_eq!(c.base(&other), "https://127.0.0.1:5001");
        assert_eq!(c.base(&hub), "https://registry-1.docker.io");
    }
}
