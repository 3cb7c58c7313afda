//! OCI Distribution, pull side (distribution-spec v1.1): `/v2/`, manifests, blobs, tags,
//! `_catalog`, referrers. Every write method answers `405 UNSUPPORTED`: content arrives only
//! through signed bundles.
//!
//! Repository names in paths are checked against the spec's grammar before any lookup (so
//! `..`, `%2e%2e` and absolute paths are `NAME_INVALID`), and nothing in a path is ever joined
//! to a file-system path: blobs are opened only by a digest the snapshot holds.

use std::fs::File;

use airlock_core::Digest;
use airlock_store::BlobStore;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde_json::json;

use crate::body::{if_range_matches, parse_range, Body, Range};
use crate::index::{Repo, Snapshot};
use crate::{header_str, query_param, Ctx};

/// Spec error codes (distribution-spec "Error Codes").
pub fn error(status: StatusCode, code: &str, message: &str, head: bool) -> Response<Body> {
    let body = json!({"errors": [{"code": code, "message": message, "detail": null}]}).to_string();
    let len = body.len();
    let mut r = Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .header("Docker-Distribution-API-Version", "registry/2.0")
        .header("Content-Length", len)
        .body(if head {
            Body::empty()
        } else {
            Body::bytes(body)
        })
        .unwrap_or_else(crate::bad_request);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        r.headers_mut()
            .insert("Allow", HeaderValue::from_static("GET, HEAD"));
    }
    r
}

/// A path component of a repository name (spec: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`).
fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || b.len() > 255 {
        return false;
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator: '.', '_', '__', or one or more '-'
        let start = i;
        if b[i] == b'-' {
            while i < b.len() && b[i] == b'-' {
                i += 1;
            }
        } else if b[i] == b'.' {
            i += 1;
        } else if b[i] == b'_' {
            i += 1;
            if i < b.len() && b[i] == b'_' {
                i += 1;
            }
        } else {
            return false;
        }
        if i >= b.len() || !alnum(b[i]) || i == start {
            return false;
        }
    }
    true
}

/// A repository name: components by the spec's grammar; the first may also be a registry host
/// with a port (`registry.example:5000/...`), the form airlock stores names in.
pub fn name_ok(name: &str) -> bool {
    if name.is_empty() || name.len() > 512 {
        return false;
    }
    name.split('/').enumerate().all(|(i, c)| {
        component_ok(c)
            || (i == 0
                && name.contains('/')
                && c.split_once(':').is_some_and(|(h, p)| {
                    component_ok(h)
                        && !p.is_empty()
                        && p.len() <= 5
                        && p.bytes().all(|x| x.is_ascii_digit())
                }))
    })
}

fn tag_ok(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

/// Dispatches a `/v2` request. `rest` is the path after `/v2`.
pub fn handle(ctx: &Ctx, snap: &Snapshot, rest: &str) -> Response<Body> {
    let head = ctx.method == Method::HEAD;
    if ctx.method != Method::GET && ctx.method != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "this registry is read-only: content arrives through signed airlock bundles",
            false,
        );
    }
    if rest.is_empty() || rest == "/" {
        let mut r = json_response(StatusCode::OK, "{}".into(), head);
        if !ctx.models_allowed {
            // Credentials would open the models (RFC 9110 §11.6.1 allows the challenge on any
            // response): clients that authenticate only after a challenge at `/v2/`, as
            // containers/image (skopeo, podman) does, then send theirs.
            r.headers_mut().insert(
                "WWW-Authenticate",
                HeaderValue::from_static("Basic realm=\"airlock\""),
            );
        }
        return r;
    }
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest == "_catalog" {
        return catalog(ctx, snap, head);
    }
    // NAME/(manifests|blobs|referrers)/REF or NAME/tags/list: split at the last marker.
    let (name, kind, reference) = if let Some(name) = rest.strip_suffix("/tags/list") {
        (name, "tags", "")
    } else {
        let mut parts = rest.rsplitn(3, '/');
        let reference = parts.next().unwrap_or("");
        let kind = parts.next().unwrap_or("");
        let name = parts.next().unwrap_or("");
        (name, kind, reference)
    };
    if !matches!(kind, "manifests" | "blobs" | "referrers" | "tags") {
        // uploads and anything else
        if rest.contains("/blobs/uploads") {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                "this registry is read-only",
                head,
            );
        }
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint", head);
    }
    if !name_ok(name) {
        return error(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "invalid repository name",
            head,
        );
    }
    let ns = query_param(ctx.query, "ns");
    let Some(repo) = snap.repo(name, ns.as_deref()) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
            head,
        );
    };
    if repo.model && !ctx.models_allowed {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "models need the credentials of the hf group",
            head,
        );
        r.headers_mut().insert(
            "WWW-Authenticate",
            HeaderValue::from_static("Basic realm=\"airlock\""),
        );
        return r;
    }
    match kind {
        "manifests" => manifest(ctx, repo, reference, head),
        "blobs" => blob(ctx, repo, reference, head),
        "referrers" => referrers(ctx, repo, reference, head),
        _ => tags(ctx, name, repo, head),
    }
}

fn json_response(status: StatusCode, body: String, head: bool) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .header("Docker-Distribution-API-Version", "registry/2.0")
        .header("Content-Length", body.len())
        .body(if head {
            Body::empty()
        } else {
            Body::bytes(body)
        })
        .unwrap_or_else(crate::bad_request)
}

/// Does the request's `Accept` allow `media_type`? No `Accept` (or `*/*`) allows everything.
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    let mut any = false;
    for v in headers.get_all("accept") {
        let Ok(v) = v.to_str() else { continue };
        for item in v.split(',') {
            let t = item.split(';').next().unwrap_or("").trim();
            if t.is_empty() {
                continue;
            }
            any = true;
            if t == "*/*" || t == "application/*" || t.eq_ignore_ascii_case(media_type) {
                return true;
            }
        }
    }
    !any
}

fn manifest(ctx: &Ctx, repo: &Repo, reference: &str, head: bool) -> Response<Body> {
    let digest = if reference.starts_with("sha256:") {
        match reference.parse::<Digest>() {
            Ok(d) => d,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "DIGEST_INVALID",
                    "invalid digest",
                    head,
                )
            }
        }
    } else if reference.contains(':') {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "only sha256 digests are supported",
            head,
        );
    } else if !tag_ok(reference) {
        return error(StatusCode::BAD_REQUEST, "TAG_INVALID", "invalid tag", head);
    } else {
        match repo.tags.get(reference) {
            Some(d) => *d,
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown",
                    head,
                )
            }
        }
    };
    let Some(m) = repo.manifests.get(&digest) else {
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
            head,
        );
    };
    if !accepts(ctx.headers, &m.media_type) {
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            &format!(
                "the manifest is {}, which the request's Accept header does not list",
                m.media_type
            ),
            head,
        );
    }
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", &m.media_type)
        .header("Docker-Content-Digest", digest.to_string())
        .header("Docker-Distribution-API-Version", "registry/2.0")
        .header("ETag", format!("\"{digest}\""))
        .header("Content-Length", m.bytes.len())
        .body(if head {
            Body::empty()
        } else {
            Body::bytes(m.bytes.clone())
        })
        .unwrap_or_else(crate::bad_request)
}

fn blob(ctx: &Ctx, repo: &Repo, reference: &str, head: bool) -> Response<Body> {
    let Ok(digest) = reference.parse::<Digest>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "invalid digest",
            head,
        );
    };
    let known = repo.blobs.contains_key(&digest) || repo.manifests.contains_key(&digest);
    if !known {
        return error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown", head);
    }
    let (src, len) = match open_blob(ctx.store, &digest) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(%digest, error = %e, "blob listed by a visible artifact is missing from the store");
            return error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown", head);
        }
    };
    file_response(
        src,
        len,
        ctx.headers,
        head,
        "application/octet-stream",
        Some(&format!("\"{digest}\"")),
        |b| {
            b.header("Docker-Content-Digest", digest.to_string())
                .header("Docker-Distribution-API-Version", "registry/2.0")
        },
    )
}

/// A blob's bytes for a response: its file when the store keeps one (sent with `sendfile` on
/// plain HTTP), else a stream from the store.
pub enum Source {
    File(File),
    Store(BlobStore, Digest),
}

impl Source {
    fn body(self, offset: u64, len: u64) -> Body {
        match self {
            Source::File(f) => Body::file(f, offset, len),
            Source::Store(store, d) => Body::stream(
                Box::new(move || store.open_at(&d, offset).map_err(std::io::Error::other)),
                len,
            ),
        }
    }
}

/// Blob `d` of `store` and its length, ready for [`file_response`].
pub fn open_blob(store: &BlobStore, d: &Digest) -> std::io::Result<(Source, u64)> {
    match store.local_path(d) {
        Some(path) => {
            let f = File::open(path)?;
            let len = f.metadata()?.len();
            Ok((Source::File(f), len))
        }
        None => {
            let len = store
                .size(d)
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
            Ok((Source::Store(store.clone(), *d), len))
        }
    }
}

/// A blob response honouring `Range` and `If-Range`, shared with the Hugging Face and apt
/// routes. `etag` (quoted, strong) is sent as `ETag` and is what `If-Range` must name for the
/// range to apply; otherwise the whole blob is sent with `200`.
pub fn file_response(
    src: Source,
    len: u64,
    headers: &HeaderMap,
    head: bool,
    content_type: &str,
    etag: Option<&str>,
    extra: impl FnOnce(http::response::Builder) -> http::response::Builder,
) -> Response<Body> {
    let mut b = Response::builder()
        .header("Content-Type", content_type)
        .header("Accept-Ranges", "bytes");
    if let Some(e) = etag {
        b = b.header("ETag", e);
    }
    let b = extra(b);
    let range = if if_range_matches(header_str(headers, "if-range"), etag) {
        header_str(headers, "range")
    } else {
        None
    };
    match parse_range(range, len) {
        Range::Full => b
            .status(StatusCode::OK)
            .header("Content-Length", len)
            .body(if head {
                Body::empty()
            } else {
                src.body(0, len)
            }),
        Range::Part { start, end } => b
            .status(StatusCode::PARTIAL_CONTENT)
            .header("Content-Length", end - start + 1)
            .header("Content-Range", format!("bytes {start}-{end}/{len}"))
            .body(if head {
                Body::empty()
            } else {
                src.body(start, end - start + 1)
            }),
        Range::Unsatisfiable => b
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header("Content-Range", format!("bytes */{len}"))
            .header("Content-Length", 0)
            .body(Body::empty()),
    }
    .unwrap_or_else(crate::bad_request)
}

/// `n`/`last` pagination shared by tags and `_catalog`; returns the page and whether more follow.
fn paginate<'a>(
    items: impl Iterator<Item = &'a String>,
    query: Option<&str>,
) -> Result<(Vec<&'a String>, Option<String>), ()> {
    let n = match query_param(query, "n") {
        Some(s) => Some(s.parse::<usize>().map_err(|_| ())?),
        None => None,
    };
    let last = query_param(query, "last");
    let mut page: Vec<&String> = items
        .filter(|x| last.as_deref().is_none_or(|l| x.as_str() > l))
        .collect();
    let mut next = None;
    if let Some(n) = n {
        if page.len() > n {
            page.truncate(n);
            next = page.last().map(|s| s.to_string());
        }
    }
    Ok((page, next))
}

fn link_header(path: &str, n: Option<String>, last: &str) -> String {
    let n = n.map(|n| format!("n={n}&")).unwrap_or_default();
    format!(
        "<{path}?{n}last={}>; rel=\"next\"",
        crate::percent_encode(last)
    )
}

fn tags(ctx: &Ctx, name: &str, repo: &Repo, head: bool) -> Response<Body> {
    let Ok((page, next)) = paginate(repo.tags.keys(), ctx.query) else {
        return error(
            StatusCode::BAD_REQUEST,
            "PAGINATION_NUMBER_INVALID",
            "invalid n",
            head,
        );
    };
    let body = json!({"name": name, "tags": page}).to_string();
    let mut r = json_response(StatusCode::OK, body, head);
    if let Some(last) = next {
        let l = link_header(
            &format!("/v2/{name}/tags/list"),
            query_param(ctx.query, "n"),
            &last,
        );
        if let Ok(v) = HeaderValue::from_str(&l) {
            r.headers_mut().insert("Link", v);
        }
    }
    r
}

fn catalog(ctx: &Ctx, snap: &Snapshot, head: bool) -> Response<Body> {
    let names = snap
        .repos
        .iter()
        .filter(|(_, r)| ctx.models_allowed || !r.model)
        .map(|(n, _)| n);
    let Ok((page, next)) = paginate(names, ctx.query) else {
        return error(
            StatusCode::BAD_REQUEST,
            "PAGINATION_NUMBER_INVALID",
            "invalid n",
            head,
        );
    };
    let body = json!({ "repositories": page }).to_string();
    let mut r = json_response(StatusCode::OK, body, head);
    if let Some(last) = next {
        let l = link_header("/v2/_catalog", query_param(ctx.query, "n"), &last);
        if let Ok(v) = HeaderValue::from_str(&l) {
            r.headers_mut().insert("Link", v);
        }
    }
    r
}

fn referrers(ctx: &Ctx, repo: &Repo, reference: &str, head: bool) -> Response<Body> {
    let Ok(digest) = reference.parse::<Digest>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "invalid digest",
            head,
        );
    };
    let filter = query_param(ctx.query, "artifactType");
    let all = repo.referrers.get(&digest).cloned().unwrap_or_default();
    let manifests: Vec<_> = all
        .into_iter()
        .filter(|d| {
            filter
                .as_deref()
                .is_none_or(|f| d["artifactType"].as_str() == Some(f))
        })
        .collect();
    let body = json!({
        "schemaVersion": 2,
        "mediaType": airlock_core::media::OCI_INDEX,
        "manifests": manifests,
    })
    .to_string();
    let mut r = Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", airlock_core::media::OCI_INDEX)
        .header("Docker-Distribution-API-Version", "registry/2.0")
        .header("Content-Length", body.len());
    if filter.is_some() {
        r = r.header("OCI-Filters-Applied", "artifactType");
    }
    r.body(if head {
        Body::empty()
    } else {
        Body::bytes(body)
    })
    .unwrap_or_else(crate::bad_request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "acme/hello",
            "registry.example/acme/hello",
            "registry.example:5000/acme/hello",
            "a",
            "a__b/c-d/e.f",
            "a---b",
        ] {
            assert!(name_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "acme/../etc",
            "%2e%2e/x",
            "/etc/passwd",
            "Acme/x",
            "a//b",
            "a/",
            "-a",
            "a.",
            "a..b",
            "a___b",
            "x:5000",
            "a/b:1",
        ] {
            assert!(!name_ok(bad), "{bad}");
        }
    }
}
