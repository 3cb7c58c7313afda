//! A Hugging Face Hub-compatible endpoint for imported models (what `huggingface_hub` 0.x
//! and 2.x, transformers and vLLM use with `HF_ENDPOINT` pointed here):
//!
//! * `GET /api/models/{repo}` and `/api/models/{repo}/revision/{rev}` — `id`, `sha`, `siblings`.
//! * `GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=&cursor=&limit=` — entries,
//!   paginated with an absolute `Link: <…>; rel="next"`.
//! * `GET`/`HEAD /{repo}/resolve/{rev}/{path}` — the file, with `X-Repo-Commit`, `ETag`,
//!   `X-Linked-Size`/`X-Linked-Etag` for LFS files, `Range`.
//!
//! Revisions: `main` is the newest visible version of the model (the catalog's `names`); each
//! visible version is also reachable by its 40-hex `sha`: the upstream Hub commit for models
//! mirrored from the Hub, else the first 160 bits of its manifest digest. 404s carry `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`).
//! `X-Xet-Hash` is never sent.

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use serde_json::{json, Value};
use sha1::Digest as _;

use crate::body::Body;
use crate::index::{safe_rel_path, Model, ModelFile, ModelRevision, Snapshot};
use crate::{percent_decode, percent_encode_path, query_param, Ctx};

/// Default and largest page of the tree API (the Hub's page size for `expand=false`).
pub const TREE_PAGE: usize = 1000;

fn not_found(code: &str, message: &str, head: bool) -> Response<Body> {
    error(StatusCode::NOT_FOUND, code, message, head)
}

/// A Hub-style error: JSON `{"error": message}` plus `X-Error-Code`/`X-Error-Message`
/// (the message made header-safe by [`header_text`], since it may quote request data).
fn error(status: StatusCode, code: &str, message: &str, head: bool) -> Response<Body> {
    let body = json!({ "error": message }).to_string();
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .header("X-Error-Code", code)
        .header("X-Error-Message", header_text(message))
        .header("Content-Length", body.len())
        .body(if head {
            Body::empty()
        } else {
            Body::bytes(body)
        })
        .unwrap_or_else(crate::bad_request)
}

fn json_ok(v: Value, head: bool) -> Response<Body> {
    let body = v.to_string();
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .header("Content-Length", body.len())
        .body(if head {
            Body::empty()
        } else {
            Body::bytes(body)
        })
        .unwrap_or_else(crate::bad_request)
}

/// Splits `org/name/<marker>/rest` or `name/<marker>/rest` for one of `markers`.
fn split_repo<'a>(path: &'a str, markers: &[&str]) -> Option<(String, &'a str, &'a str)> {
    let segs: Vec<&str> = path.splitn(4, '/').collect();
    for n in [2usize, 1] {
        if segs.len() > n && markers.contains(&segs[n]) {
            let repo = segs[..n].join("/");
            let marker = segs[n];
            let prefix_len = repo.len() + 1 + marker.len();
            let rest = path.get(prefix_len..).unwrap_or("");
            let rest = rest.strip_prefix('/').unwrap_or(rest);
            return Some((repo, marker, rest));
        }
    }
    None
}

fn repo_ok(r: &str) -> bool {
    let parts: Vec<&str> = r.split('/').collect();
    (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 96
                && *p != "."
                && *p != ".."
                && p.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
        })
}

/// `s` as a header value can carry it: visible ASCII and spaces kept, every other byte
/// (control characters, non-ASCII) percent-encoded.
pub fn header_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b == b' ' || (b.is_ascii_graphic() && b != b'%') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Is `rev` (percent-decoded) a revision name worth looking up: a branch, tag or commit id
/// made of `[A-Za-z0-9._/-]`, at most 256 bytes, with no empty, `.` or `..` segment? Anything
/// else is refused before it reaches a lookup, a log line or a header.
pub fn rev_ok(rev: &str) -> bool {
    !rev.is_empty()
        && rev.len() <= 256
        && rev
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-'))
        && rev
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// `400` for a revision [`rev_ok`] refuses (the revision itself is not echoed).
fn bad_revision(head: bool) -> Response<Body> {
    error(
        StatusCode::BAD_REQUEST,
        "RevisionNotFound",
        "Invalid rev id: not a branch, tag or commit name",
        head,
    )
}

fn find_revision(model: &Model, rev: &str) -> Option<Arc<ModelRevision>> {
    let sha = if rev == "main" {
        model.main.clone()?
    } else {
        rev.to_ascii_lowercase()
    };
    model.revisions.get(&sha).cloned()
}

/// `/api/models/...`
pub fn api(ctx: &Ctx, snap: &Snapshot, rest: &str) -> Response<Body> {
    let head = ctx.method == Method::HEAD;
    if ctx.method != Method::GET && ctx.method != Method::HEAD {
        return crate::method_not_allowed();
    }
    let (repo, marker, tail) = match split_repo(rest, &["revision", "tree"]) {
        Some(x) => x,
        None => (rest.trim_end_matches('/').to_string(), "", ""),
    };
    let repo = percent_decode(&repo).unwrap_or_default();
    if !repo_ok(&repo) {
        return not_found("RepoNotFound", "Repository not found", head);
    }
    let Some(model) = snap.models.get(&repo) else {
        return not_found("RepoNotFound", "Repository not found", head);
    };
    match marker {
        "" | "revision" => {
            let rev = if marker.is_empty() {
                "main".to_string()
            } else {
                percent_decode(tail).unwrap_or_default()
            };
            if !rev_ok(&rev) {
                return bad_revision(head);
            }
            let Some(r) = find_revision(model, &rev) else {
                return not_found("RevisionNotFound", &format!("Invalid rev id: {rev}"), head);
            };
            json_ok(info(&repo, &r), head)
        }
        _ => {
            // tree/{rev}[/{path}]
            let (rev, sub) = tail.split_once('/').unwrap_or((tail, ""));
            let rev = percent_decode(rev).unwrap_or_default();
            if !rev_ok(&rev) {
                return bad_revision(head);
            }
            let Some(r) = find_revision(model, &rev) else {
                return not_found("RevisionNotFound", &format!("Invalid rev id: {rev}"), head);
            };
            let sub = percent_decode(sub.trim_end_matches('/')).unwrap_or_default();
            if !sub.is_empty() && !safe_rel_path(&sub) {
                return not_found("EntryNotFound", "Entry not found", head);
            }
            tree(ctx, &repo, &rev, &r, &sub, head)
        }
    }
}

fn info(repo: &str, r: &ModelRevision) -> Value {
    let siblings: Vec<Value> = r
        .files
        .iter()
        .map(|f| json!({ "rfilename": f.path }))
        .collect();
    json!({
        "_id": r.sha,
        "id": repo,
        "modelId": repo,
        "sha": r.sha,
        "private": false,
        "disabled": false,
        "gated": false,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "airlock": {"manifest": r.manifest.to_string()},
    })
}

/// The git blob id of the LFS pointer file the Hub would keep for `f`.
fn pointer(f: &ModelFile) -> (String, usize) {
    let text = format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n",
        f.digest.hex(),
        f.size
    );
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", text.len()).as_bytes());
    h.update(text.as_bytes());
    (hex::encode(h.finalize()), text.len())
}

fn entry(f: &ModelFile) -> Value {
    if f.lfs {
        let (oid, psize) = pointer(f);
        json!({"type": "file", "path": f.path, "size": f.size, "oid": oid,
               "lfs": {"oid": f.digest.hex(), "size": f.size, "pointerSize": psize}})
    } else {
        json!({"type": "file", "path": f.path, "size": f.size,
               "oid": f.git_oid.clone().unwrap_or_default()})
    }
}

fn dir_entry(sha: &str, path: &str) -> Value {
    let mut h = sha1::Sha1::new();
    h.update(format!("tree {sha} {path}").as_bytes());
    json!({"type": "directory", "path": path, "size": 0, "oid": hex::encode(h.finalize())})
}

fn tree(
    ctx: &Ctx,
    repo: &str,
    rev: &str,
    r: &ModelRevision,
    sub: &str,
    head: bool,
) -> Response<Body> {
    let recursive = matches!(
        query_param(ctx.query, "recursive").as_deref(),
        Some("true" | "1" | "True")
    );
    let prefix = if sub.is_empty() {
        String::new()
    } else {
        format!("{sub}/")
    };
    if !sub.is_empty() && !r.files.iter().any(|f| f.path.starts_with(&prefix)) {
        return not_found("EntryNotFound", &format!("{sub} does not exist"), head);
    }
    // Entries below `sub`: directories first at each level as the Hub lists them, then files.
    let mut entries: Vec<Value> = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    for f in r.files.iter().filter(|f| f.path.starts_with(&prefix)) {
        let rel = &f.path[prefix.len()..];
        let parts: Vec<&str> = rel.split('/').collect();
        for i in 1..parts.len() {
            if !recursive && i > 1 {
                break;
            }
            dirs.insert(format!("{prefix}{}", parts[..i].join("/")));
        }
        if recursive || parts.len() == 1 {
            entries.push(entry(f));
        }
    }
    let mut all: Vec<Value> = dirs.iter().map(|d| dir_entry(&r.sha, d)).collect();
    all.extend(entries);
    let limit = query_param(ctx.query, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(TREE_PAGE)
        .clamp(1, TREE_PAGE);
    let start = query_param(ctx.query, "cursor")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0)
        .min(all.len());
    let end = (start + limit).min(all.len());
    let page: Vec<Value> = all[start..end].to_vec();
    let mut resp = json_ok(Value::Array(page), head);
    if end < all.len() {
        let sub_path = if sub.is_empty() {
            String::new()
        } else {
            format!("/{}", percent_encode_path(sub))
        };
        let link = base_url(ctx).map(|base| {
            format!(
                "<{base}/api/models/{repo}/tree/{}{sub_path}?recursive={recursive}&expand=false&limit={limit}&cursor={end}>; rel=\"next\"",
                crate::percent_encode(rev)
            )
        });
        if let Some(v) = link.and_then(|l| http::HeaderValue::from_str(&l).ok()) {
            resp.headers_mut().insert("Link", v);
        }
    }
    resp
}

/// The absolute base URL for links: the configured public URL, else `scheme://Host` when the
/// request's `Host` is a plain authority (`host[:port]`; anything else, e.g. `<`, `>` or `?`,
/// must not reach a header), else `localhost` for HTTP/1.0 requests without `Host`.
fn base_url(ctx: &Ctx) -> Option<String> {
    if let Some(u) = ctx.public_url {
        return Some(u.to_string());
    }
    let scheme = if ctx.tls { "https" } else { "http" };
    match ctx.headers.get("host") {
        None => Some(format!("{scheme}://localhost")),
        Some(h) => h
            .to_str()
            .ok()
            .filter(|h| crate::head::authority_ok(h))
            .map(|h| format!("{scheme}://{h}")),
    }
}

/// `/{repo}/resolve/{rev}/{path}`; `None` when the path is not a resolve URL at all.
pub fn resolve(ctx: &Ctx, snap: &Snapshot, path: &str) -> Option<Response<Body>> {
    let (repo, _, tail) = split_repo(path, &["resolve"])?;
    let head = ctx.method == Method::HEAD;
    if ctx.method != Method::GET && ctx.method != Method::HEAD {
        return Some(crate::method_not_allowed());
    }
    let repo = percent_decode(&repo).unwrap_or_default();
    if !repo_ok(&repo) {
        return Some(not_found("RepoNotFound", "Repository not found", head));
    }
    let Some(model) = snap.models.get(&repo) else {
        return Some(not_found("RepoNotFound", "Repository not found", head));
    };
    let (rev, file) = tail.split_once('/').unwrap_or((tail, ""));
    let rev = percent_decode(rev).unwrap_or_default();
    if !rev_ok(&rev) {
        return Some(bad_revision(head));
    }
    let Some(r) = find_revision(model, &rev) else {
        return Some(not_found(
            "RevisionNotFound",
            &format!("Invalid rev id: {rev}"),
            head,
        ));
    };
    let file = percent_decode(file).unwrap_or_default();
    if !safe_rel_path(&file) {
        return Some(not_found("EntryNotFound", "Entry not found", head));
    }
    let Ok(i) = r.files.binary_search_by(|f| f.path.as_str().cmp(&file)) else {
        return Some(not_found(
            "EntryNotFound",
            &format!("{file} does not exist at revision {}", r.sha),
            head,
        ));
    };
    let f = &r.files[i];
    let (src, len) = match crate::oci::open_blob(ctx.store, &f.digest) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(digest = %f.digest, error = %e, "model file missing from the store");
            return Some(not_found("EntryNotFound", "Entry not found", head));
        }
    };
    let etag = if f.lfs {
        f.digest.hex()
    } else {
        f.git_oid.clone().unwrap_or_default()
    };
    let sha = r.sha.clone();
    let lfs = f.lfs;
    let quoted = format!("\"{etag}\"");
    Some(crate::oci::file_response(
        src,
        len,
        ctx.headers,
        head,
        "application/octet-stream",
        Some(&quoted),
        |b| {
            let b = b.header("X-Repo-Commit", sha);
            if lfs {
                b.header("X-Linked-Size", len)
                    .header("X-Linked-Etag", quoted.as_str())
            } else {
                b
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split() {
        assert_eq!(
            split_repo("acme/m/resolve/main/a/b.json", &["resolve"]),
            Some(("acme/m".into(), "resolve", "main/a/b.json"))
        );
        assert_eq!(
            split_repo("gpt2/resolve/main/x", &["resolve"]),
            Some(("gpt2".into(), "resolve", "main/x"))
        );
        assert_eq!(
            split_repo("acme/m/tree/main", &["revision", "tree"]),
            Some(("acme/m".into(), "tree", "main"))
        );
        assert_eq!(split_repo("acme/m", &["revision", "tree"]), None);
    }

    #[test]
    fn revisions() {
        for ok in [
            "main",
            "v1.0",
            "refs/pr/1",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            assert!(rev_ok(ok), "{ok}");
        }
        for bad in [
            "", "\n", "a\nb", "../x", "a/./b", "a//b", "/a", "a/", "a b", "é", "a\r",
        ] {
            assert!(!rev_ok(bad), "{bad:?}");
        }
        assert_eq!(header_text("a\nb é%"), "a%0Ab %C3%A9%25");
        assert!(http::HeaderValue::from_str(&header_text("x\u{7f}\0y")).is_ok());
    }
}
