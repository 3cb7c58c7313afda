//! airlock-s3: S3-compatible object storage as an airlock blob store.
//!
//! [`S3Store`] implements [`BlobBackend`], so everything that reaches blobs through
//! [`airlock_store::BlobStore`] (sync, pack, import, serve, fsck) works on a bucket as it does on
//! a directory. Blobs live at `PREFIX/blobs/sha256/<hex>`, the key layout of an OCI image layout
//! directory, so a directory store copied with `aws s3 sync` is a valid S3 store and back.
//!
//! * Puts are verified before anything is uploaded: [`airlock_store::BlobWriter`] hashes while
//!   the bytes are spooled to a local temp file (memory stays flat whatever the blob size), and
//!   only a blob whose digest and size matched is uploaded, with one PUT up to 64 MiB or a
//!   multipart upload above. Both are atomic in S3: no object ever holds part of a blob.
//! * Single PUTs carry `x-amz-checksum-sha256`, so a server that checks it (AWS S3, s3s)
//!   rejects a body that changed between verification and upload; moto 5 accepts and ignores
//!   it. A server that refuses the header gets the PUT again without it, and is remembered.
//! * Reads are streamed, ranged `GET`s; fsck re-hashes through them.
//! * Everything a server sends is bounded: XML bodies (16 MiB), error bodies (64 KiB, their S3
//!   `Code` and `Message` go into the error), listings (1000 keys a page, 10 million in all).
//!   Idempotent requests are tried three times on connection errors and 5xx answers.
//!
//! Requests are signed as SigV4 presigned URLs by `rusty-s3` (no I/O of its own) and sent by
//! `ureq`, synchronously, like the rest of airlock.

mod config;
mod xml;

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use airlock_core::Digest;
use airlock_store::{BlobBackend, StagedBlob, StoreError};
use base64::Engine as _;
use rusty_s3::{Bucket, S3Action, UrlStyle};
use ureq::http::{self, Response};
use url::Url;

pub use config::{Credentials, S3Config};

/// Objects up to this size are uploaded with one PUT; larger ones in parts of this size.
pub const PART_SIZE: u64 = 64 << 20;
/// S3 allows at most this many parts in a multipart upload.
const MAX_PARTS: u64 = 10_000;
/// Keys per ListObjectsV2 page.
const PAGE_KEYS: usize = 1000;
/// Keys a listing may return in all.
const MAX_KEYS: usize = 10_000_000;
/// Largest XML body read from a server.
const MAX_XML: u64 = 16 << 20;
/// Largest error body read from a server.
const MAX_ERROR_BODY: u64 = 64 << 10;
/// Attempts of an idempotent request.
const ATTEMPTS: u32 = 3;
/// Lifetime of a presigned URL (the signature is checked when a request starts).
const EXPIRY: Duration = Duration::from_secs(3600);
/// Where blobs live under the prefix.
const BLOBS: &str = "blobs/sha256/";
/// Name prefix of spool files in the spool directory.
const SPOOL_PREFIX: &str = ".s3-spool-";
static SPOOL_SEQ: AtomicU64 = AtomicU64::new(0);

/// Whether the server takes `x-amz-checksum-sha256` on a PUT.
const CHECKSUM_UNKNOWN: u8 = 0;
const CHECKSUM_YES: u8 = 1;
const CHECKSUM_NO: u8 = 2;

/// A bucket and prefix of an S3-compatible server as a blob store. Cloning shares it.
#[derive(Debug, Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: S3Config,
    creds: rusty_s3::Credentials,
    bucket: Bucket,
    agent: ureq::Agent,
    spool: PathBuf,
    checksum: AtomicU8,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("cfg", &self.cfg)
            .field("spool", &self.spool)
            .finish_non_exhaustive()
    }
}

/// A request body: nothing, bytes, or a piece of a file (read again on each attempt).
#[derive(Clone, Copy)]
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
}

/// An answer that is not a success, or no answer at all.
struct Failure {
    status: Option<u16>,
    code: Option<String>,
    detail: String,
}

impl Failure {
    fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        // A stalled transfer fails instead of hanging; no total timeout, blobs may be many GiB.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .timeout_per_write(Some(Duration::from_secs(60)))
        .max_idle_connections_per_host(32)
        .user_agent(format!("airlock/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

fn bucket_of(cfg: &S3Config) -> Result<Bucket, StoreError> {
    let endpoint: Url = cfg
        .endpoint
        .parse()
        .map_err(|e| layout(&cfg.endpoint, format!("not a URL: {e}")))?;
    let style = if cfg.path_style {
        UrlStyle::Path
    } else {
        UrlStyle::VirtualHost
    };
    Bucket::new(endpoint, style, cfg.bucket.clone(), cfg.region.clone())
        .map_err(|e| layout(&cfg.endpoint, format!("cannot address bucket: {e:?}")))
}

fn s3_creds(c: &Credentials) -> rusty_s3::Credentials {
    match &c.session_token {
        Some(t) => rusty_s3::Credentials::new_with_token(&c.access_key, &c.secret_key, t),
        None => rusty_s3::Credentials::new(&c.access_key, &c.secret_key),
    }
}

fn layout(path: impl Into<PathBuf>, detail: String) -> StoreError {
    StoreError::Layout {
        path: path.into(),
        detail,
    }
}

/// Creates the bucket of `cfg` (an existing bucket owned by the caller is fine). For tests and
/// setup; the store itself never creates buckets.
pub fn create_bucket(cfg: &S3Config, creds: &Credentials) -> Result<(), StoreError> {
    let bucket = bucket_of(cfg)?;
    let c = s3_creds(creds);
    let action = bucket.create_bucket(&c);
    let body = action.body();
    let url = action.sign(EXPIRY);
    let r = send(
        &agent(),
        "PUT",
        url.as_str(),
        &[],
        Body::Bytes(body.as_bytes()),
    );
    let name = format!("s3://{} at {}", cfg.bucket, cfg.endpoint);
    match r.map_err(|e| transport_failure(&e)).and_then(check) {
        Ok(_) => Ok(()),
        Err(f) if f.code.as_deref() == Some("BucketAlreadyOwnedByYou") => Ok(()),
        Err(f) => Err(layout(name, format!("create bucket: {}", f.detail))),
    }
}

/// Sends one request.
fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Body<'_>,
) -> Result<Response<ureq::Body>, ureq::Error> {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let err = |e: http::Error| ureq::Error::Http(e);
    match body {
        Body::Empty => {
            let req = req.body(()).map_err(err)?;
            agent.run(req)
        }
        Body::Bytes(b) => {
            let req = req.body(b).map_err(err)?;
            agent.run(req)
        }
        Body::File { path, offset, len } => {
            let mut f = File::open(path)?;
            f.seek(SeekFrom::Start(offset))?;
            let req = req
                .header("content-length", len)
                .body(ureq::SendBody::from_owned_reader(f.take(len)))
                .map_err(err)?;
            agent.run(req)
        }
    }
}

fn transport_failure(e: &ureq::Error) -> Failure {
    Failure {
        status: None,
        code: None,
        detail: e.to_string(),
    }
}

/// The response when it is a success; else its status and S3 error code and message.
fn check(resp: Response<ureq::Body>) -> Result<Response<ureq::Body>, Failure> {
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return Ok(resp);
    }
    let mut text = String::new();
    let _ = resp
        .into_body()
        .into_reader()
        .take(MAX_ERROR_BODY)
        .read_to_string(&mut text);
    let code = xml::element(&text, "Code");
    let message = xml::element(&text, "Message");
    let detail = match (&code, &message) {
        (Some(c), Some(m)) => format!("HTTP {status} {c}: {m}"),
        (Some(c), None) => format!("HTTP {status} {c}"),
        _ => format!("HTTP {status}"),
    };
    Err(Failure {
        status: Some(status),
        code,
        detail,
    })
}

fn read_xml(resp: Response<ureq::Body>) -> Result<String, String> {
    resp.into_body()
        .into_with_config()
        .limit(MAX_XML)
        .read_to_string()
        .map_err(|e| format!("reading the XML answer: {e}"))
}

impl S3Store {
    /// Opens the store `cfg`, checking that the bucket answers (a one-key listing), with
    /// `spool_dir` (created if missing) for staging uploads.
    pub fn open(
        cfg: S3Config,
        creds: Credentials,
        spool_dir: &Path,
    ) -> Result<S3Store, StoreError> {
        fs::create_dir_all(spool_dir).map_err(|e| StoreError::Io {
            path: spool_dir.to_path_buf(),
            op: "create spool directory",
            source: e,
        })?;
        let store = S3Store {
            inner: Arc::new(Inner {
                bucket: bucket_of(&cfg)?,
                creds: s3_creds(&creds),
                cfg,
                agent: agent(),
                spool: spool_dir.to_path_buf(),
                checksum: AtomicU8::new(CHECKSUM_UNKNOWN),
            }),
        };
        let prefix = store.inner.cfg.key("");
        store.list_page(&prefix, None, 1).map_err(|f| {
            layout(
                store.describe(),
                format!(
                    "bucket {} is not usable: {}",
                    store.inner.cfg.bucket, f.detail
                ),
            )
        })?;
        Ok(store)
    }

    /// The configuration this store was opened with.
    pub fn config(&self) -> &S3Config {
        &self.inner.cfg
    }

    /// The blob store under `rel` (relative to this store's prefix, e.g.
    /// `staging-parts/<hex>`) in the same bucket, sharing credentials and connections. It
    /// spools uploads in the subdirectory `sub` of this store's spool directory, so its
    /// `clean_temp` never touches this store's spool files. No request is sent.
    pub fn sub(&self, rel: &str) -> Result<S3Store, StoreError> {
        let rel = rel.trim_matches('/');
        if rel.is_empty()
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(layout(self.describe(), format!("bad sub-prefix {rel:?}")));
        }
        let i = &self.inner;
        let mut cfg = i.cfg.clone();
        cfg.prefix = i.cfg.key(rel);
        let spool = i.spool.join("sub");
        fs::create_dir_all(&spool).map_err(|e| StoreError::Io {
            path: spool.clone(),
            op: "create spool directory",
            source: e,
        })?;
        Ok(S3Store {
            inner: Arc::new(Inner {
                bucket: i.bucket.clone(),
                creds: i.creds.clone(),
                cfg,
                agent: i.agent.clone(),
                spool,
                checksum: AtomicU8::new(i.checksum.load(Ordering::Relaxed)),
            }),
        })
    }

    /// `s3://BUCKET/PREFIX/key`, how object `key` is named to people and in audit records.
    pub fn object_url(&self, key: &str) -> String {
        format!("{}/{key}", self.inner.cfg.url())
    }

    /// Object `key`'s size (relative to the prefix), `None` when there is no such object.
    pub fn object_size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.head(key)
    }

    fn name(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("{}/{key}", self.inner.cfg.url()))
    }

    fn blob_key(d: &Digest) -> String {
        format!("{BLOBS}{}", d.hex())
    }

    /// Sends a request (signing it afresh for each attempt); idempotent requests are tried
    /// [`ATTEMPTS`] times on connection errors and 5xx answers. Returns successes and the
    /// failures other than those retried.
    fn request(
        &self,
        method: &str,
        sign: &dyn Fn() -> Url,
        headers: &[(&str, String)],
        body: Body<'_>,
        idempotent: bool,
    ) -> Result<Response<ureq::Body>, Failure> {
        let attempts = if idempotent { ATTEMPTS } else { 1 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let url = sign();
            let r = send(&self.inner.agent, method, url.as_str(), headers, body);
            let retry = match &r {
                Err(ureq::Error::Io(_))
                | Err(ureq::Error::Timeout(_))
                | Err(ureq::Error::ConnectionFailed)
                | Err(ureq::Error::HostNotFound) => true,
                Ok(resp) => resp.status().is_server_error(),
                Err(_) => false,
            };
            if !retry || attempt >= attempts {
                return r.map_err(|e| transport_failure(&e)).and_then(check);
            }
            match r {
                Ok(resp) => {
                    let f = check(resp).err().map(|f| f.detail).unwrap_or_default();
                    tracing::debug!("{method} {}: {f}; retrying", self.inner.cfg.url());
                }
                Err(e) => tracing::debug!("{method} {}: {e}; retrying", self.inner.cfg.url()),
            }
            std::thread::sleep(Duration::from_millis(200 << (2 * (attempt - 1))));
        }
    }

    fn fail(&self, key: &str, op: &str, f: Failure) -> StoreError {
        layout(self.name(key), format!("{op}: {}", f.detail))
    }

    fn not_found(&self, key: &str, op: &'static str) -> StoreError {
        StoreError::Io {
            path: self.name(key),
            op,
            source: std::io::ErrorKind::NotFound.into(),
        }
    }

    /// Stores `bytes` as object `key` (relative to the prefix), e.g. `catalog/head.json`.
    pub fn put_object(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put_body(key, Body::Bytes(bytes), None)
    }

    /// Stores `bytes` as object `key`, asking the server to check that they hash to `sha256`
    /// (`x-amz-checksum-sha256`) where it does; a server that refuses the header gets the bytes
    /// without it.
    pub fn put_object_checked(
        &self,
        key: &str,
        bytes: &[u8],
        sha256: &Digest,
    ) -> Result<(), StoreError> {
        self.put_body(key, Body::Bytes(bytes), Some(sha256))
    }

    /// Whether the server accepted `x-amz-checksum-sha256` on a PUT (`None`: not tried yet).
    /// Accepting is not checking: some servers store the header without comparing it.
    pub fn sha256_header_accepted(&self) -> Option<bool> {
        match self.inner.checksum.load(Ordering::Relaxed) {
            CHECKSUM_YES => Some(true),
            CHECKSUM_NO => Some(false),
            _ => None,
        }
    }

    /// One PUT of `body` as `key`, with `x-amz-checksum-sha256` when `digest` is given and the
    /// server takes it.
    fn put_body(
        &self,
        key: &str,
        body: Body<'_>,
        digest: Option<&Digest>,
    ) -> Result<(), StoreError> {
        let full = self.inner.cfg.key(key);
        let i = &self.inner;
        let plain = || i.bucket.put_object(Some(&i.creds), &full).sign(EXPIRY);
        let put_plain = || {
            self.request("PUT", &plain, &[], body, true)
                .map(drop)
                .map_err(|f| self.fail(key, "put object", f))
        };
        let Some(d) = digest.filter(|_| i.checksum.load(Ordering::Relaxed) != CHECKSUM_NO) else {
            return put_plain();
        };
        let sum = base64::engine::general_purpose::STANDARD.encode(d.bytes());
        let signed = || {
            let mut a = i.bucket.put_object(Some(&i.creds), &full);
            a.headers_mut().insert("x-amz-checksum-sha256", sum.clone());
            a.sign(EXPIRY)
        };
        let headers = [("x-amz-checksum-sha256", sum.clone())];
        match self.request("PUT", &signed, &headers, body, true) {
            Ok(_) => {
                i.checksum.store(CHECKSUM_YES, Ordering::Relaxed);
                Ok(())
            }
            Err(f)
                if checksum_refused(&f) && i.checksum.load(Ordering::Relaxed) != CHECKSUM_YES =>
            {
                tracing::info!(
                    "{}: the server refuses x-amz-checksum-sha256 ({}); uploading without it",
                    i.cfg.endpoint,
                    f.detail
                );
                put_plain()?;
                i.checksum.store(CHECKSUM_NO, Ordering::Relaxed);
                Ok(())
            }
            Err(f) => Err(self.fail(key, "put object", f)),
        }
    }

    /// Object `key` whole, `None` when there is none; an error when larger than `max`.
    pub fn get_object(&self, key: &str, max: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        Ok(self.get_object_to(key, &mut out, max)?.map(|_| out))
    }

    /// Streams object `key` into `out`, returning its length, `None` when there is none; an
    /// error when larger than `max` (checked against the announced length, and while reading).
    pub fn get_object_to(
        &self,
        key: &str,
        out: &mut dyn Write,
        max: u64,
    ) -> Result<Option<u64>, StoreError> {
        let full = self.inner.cfg.key(key);
        let i = &self.inner;
        let sign = || i.bucket.get_object(Some(&i.creds), &full).sign(EXPIRY);
        let resp = match self.request("GET", &sign, &[], Body::Empty, true) {
            Ok(r) => r,
            Err(f) if f.is_not_found() => return Ok(None),
            Err(f) => return Err(self.fail(key, "get object", f)),
        };
        let too_large = || StoreError::TooLarge {
            path: self.name(key),
            max,
        };
        if content_length(&resp).is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let mut body = resp.into_body().into_reader().take(max.saturating_add(1));
        let n = std::io::copy(&mut body, out).map_err(|e| StoreError::Io {
            path: self.name(key),
            op: "get object",
            source: e,
        })?;
        if n > max {
            return Err(too_large());
        }
        Ok(Some(n))
    }

    /// Uploads the file at `path` as object `key`, streamed: one PUT up to [`PART_SIZE`], a
    /// multipart upload above.
    pub fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        self.put_path(key, path, None)
    }

    fn put_path(&self, key: &str, path: &Path, digest: Option<&Digest>) -> Result<(), StoreError> {
        let len = fs::metadata(path)
            .map_err(|e| StoreError::Io {
                path: path.to_path_buf(),
                op: "stat upload",
                source: e,
            })?
            .len();
        if len <= PART_SIZE {
            self.put_body(
                key,
                Body::File {
                    path,
                    offset: 0,
                    len,
                },
                digest,
            )
        } else {
            self.put_multipart(key, path, len)
        }
    }

    /// A multipart upload of the `len` bytes of `path`, aborted on error.
    fn put_multipart(&self, key: &str, path: &Path, len: u64) -> Result<(), StoreError> {
        let i = &self.inner;
        let full = i.cfg.key(key);
        let part = PART_SIZE.max(len.div_ceil(MAX_PARTS));
        let sign = || {
            i.bucket
                .create_multipart_upload(Some(&i.creds), &full)
                .sign(EXPIRY)
        };
        let resp = self
            .request("POST", &sign, &[], Body::Empty, false)
            .map_err(|f| self.fail(key, "start multipart upload", f))?;
        let text = read_xml(resp).map_err(|e| layout(self.name(key), e))?;
        let created = rusty_s3::actions::CreateMultipartUpload::parse_response(&text)
            .map_err(|e| layout(self.name(key), format!("start multipart upload: {e}")))?;
        let upload_id = created.upload_id().to_string();
        let r = self.upload_parts(key, &full, &upload_id, path, len, part);
        if r.is_err() {
            let sign = || {
                i.bucket
                    .abort_multipart_upload(Some(&i.creds), &full, &upload_id)
                    .sign(EXPIRY)
            };
            if let Err(f) = self.request("DELETE", &sign, &[], Body::Empty, true) {
                tracing::warn!(
                    "{}: abort multipart upload: {}",
                    self.name(key).display(),
                    f.detail
                );
            }
        }
        r
    }

    fn upload_parts(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        path: &Path,
        len: u64,
        part: u64,
    ) -> Result<(), StoreError> {
        let i = &self.inner;
        let mut etags = Vec::new();
        let mut offset = 0;
        while offset < len {
            let n = part.min(len - offset);
            let number = u16::try_from(etags.len() + 1).expect("at most 10000 parts");
            let sign = || {
                i.bucket
                    .upload_part(Some(&i.creds), full, number, upload_id)
                    .sign(EXPIRY)
            };
            let body = Body::File {
                path,
                offset,
                len: n,
            };
            let resp = self
                .request("PUT", &sign, &[], body, true)
                .map_err(|f| self.fail(key, "upload part", f))?;
            let etag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| layout(self.name(key), format!("part {number}: no ETag")))?
                .to_string();
            etags.push(etag);
            offset += n;
        }
        let action = i.bucket.complete_multipart_upload(
            Some(&i.creds),
            full,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(EXPIRY);
        let body = action.body();
        let sign = || url.clone();
        let resp = self
            .request("POST", &sign, &[], Body::Bytes(body.as_bytes()), false)
            .map_err(|f| self.fail(key, "complete multipart upload", f))?;
        // S3 may answer 200 and report the failure in the body.
        let text = read_xml(resp).map_err(|e| layout(self.name(key), e))?;
        if text.contains("<Error>") {
            let code = xml::element(&text, "Code").unwrap_or_default();
            let message = xml::element(&text, "Message").unwrap_or_default();
            return Err(layout(
                self.name(key),
                format!("complete multipart upload: {code}: {message}"),
            ));
        }
        Ok(())
    }

    /// One ListObjectsV2 page of keys under `prefix` (a full key prefix).
    fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<rusty_s3::actions::ListObjectsV2Response, Failure> {
        let i = &self.inner;
        let sign = || {
            let mut a = i.bucket.list_objects_v2(Some(&i.creds));
            // Keys as they are rather than URL-encoded: servers disagree on that encoding
            // (s3s leaves keys as they are; a `+` then reads back as a space), and the keys
            // airlock writes have no characters XML cannot carry.
            a.query_mut().remove("encoding-type");
            a.with_prefix(prefix);
            a.with_max_keys(max_keys);
            if let Some(t) = token {
                a.with_continuation_token(t);
            }
            a.sign(EXPIRY)
        };
        let resp = self.request("GET", &sign, &[], Body::Empty, true)?;
        let text = read_xml(resp).map_err(|detail| Failure {
            status: None,
            code: None,
            detail,
        })?;
        rusty_s3::actions::ListObjectsV2::parse_response(&text).map_err(|e| Failure {
            status: None,
            code: None,
            detail: format!("unreadable listing: {e}"),
        })
    }

    /// Every object under `sub_prefix` (relative to the store's prefix) with its size, keys
    /// relative to the prefix, sorted.
    pub fn list_keys(&self, sub_prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let full = self.inner.cfg.key(sub_prefix);
        let strip = self.inner.cfg.key("");
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .list_page(&full, token.as_deref(), PAGE_KEYS)
                .map_err(|f| self.fail(sub_prefix, "list objects", f))?;
            if page.contents.len() > PAGE_KEYS || out.len() + page.contents.len() > MAX_KEYS {
                return Err(layout(
                    self.name(sub_prefix),
                    format!("list objects: more than {MAX_KEYS} keys, or an oversized page"),
                ));
            }
            for c in page.contents {
                // Keys outside what was asked for are the server's mistake; skip them.
                match c.key.strip_prefix(&strip) {
                    Some(rel) if rel.starts_with(sub_prefix) => {
                        out.push((rel.to_string(), c.size.unwrap_or(0)))
                    }
                    _ => {}
                }
            }
            match page.next_continuation_token {
                Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                Some(_) => {
                    return Err(layout(
                        self.name(sub_prefix),
                        "list objects: the server repeated its continuation token".into(),
                    ))
                }
                None => break,
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes object `key` (removing an absent object succeeds, as in S3).
    pub fn delete_object(&self, key: &str) -> Result<(), StoreError> {
        let full = self.inner.cfg.key(key);
        let i = &self.inner;
        let sign = || i.bucket.delete_object(Some(&i.creds), &full).sign(EXPIRY);
        match self.request("DELETE", &sign, &[], Body::Empty, true) {
            Ok(_) => Ok(()),
            Err(f) if f.is_not_found() && f.code.as_deref() != Some("NoSuchBucket") => Ok(()),
            Err(f) => Err(self.fail(key, "delete object", f)),
        }
    }

    /// Object `key`'s size, `None` when there is none.
    fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let full = self.inner.cfg.key(key);
        let i = &self.inner;
        let sign = || i.bucket.head_object(Some(&i.creds), &full).sign(EXPIRY);
        match self.request("HEAD", &sign, &[], Body::Empty, true) {
            Ok(resp) => content_length(&resp)
                .map(Some)
                .ok_or_else(|| layout(self.name(key), "HEAD: no Content-Length".into())),
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => Err(self.fail(key, "head object", f)),
        }
    }

    /// Multipart uploads in progress under the prefix: (key, upload id).
    fn multipart_uploads(&self) -> Result<Vec<(String, String)>, Failure> {
        let i = &self.inner;
        let prefix = i.cfg.key("");
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (String::new(), String::new());
        loop {
            let sign = || {
                let mut q: Vec<(&str, &str)> = vec![("prefix", &prefix), ("uploads", "")];
                if !key_marker.is_empty() {
                    q.push(("key-marker", &key_marker));
                    q.push(("upload-id-marker", &id_marker));
                }
                q.sort();
                rusty_s3::signing::sign(
                    &jiff::Timestamp::now(),
                    rusty_s3::Method::Get,
                    i.bucket.base_url().clone(),
                    i.creds.key(),
                    i.creds.secret(),
                    i.creds.token(),
                    i.bucket.region(),
                    EXPIRY.as_secs(),
                    q.into_iter(),
                    std::iter::empty(),
                )
            };
            let resp = self.request("GET", &sign, &[], Body::Empty, true)?;
            let text = read_xml(resp).map_err(|detail| Failure {
                status: None,
                code: None,
                detail,
            })?;
            let uploads = xml::uploads(&text);
            if out.len() + uploads.len() > MAX_KEYS {
                break;
            }
            out.extend(uploads);
            let truncated = xml::element(&text, "IsTruncated").as_deref() == Some("true");
            let next_key = xml::element(&text, "NextKeyMarker").unwrap_or_default();
            let next_id = xml::element(&text, "NextUploadIdMarker").unwrap_or_default();
            if !truncated || (next_key == key_marker && next_id == id_marker) || next_key.is_empty()
            {
                break;
            }
            (key_marker, id_marker) = (next_key, next_id);
        }
        Ok(out)
    }

    fn spool_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let dir = &self.inner.spool;
        let io = |e| StoreError::Io {
            path: dir.clone(),
            op: "list spool directory",
            source: e,
        };
        let mut out = Vec::new();
        for e in fs::read_dir(dir).map_err(io)? {
            let e = e.map_err(io)?;
            if e.file_name().to_string_lossy().starts_with(SPOOL_PREFIX) {
                out.push(e.path());
            }
        }
        Ok(out)
    }
}

fn content_length(resp: &Response<ureq::Body>) -> Option<u64> {
    resp.headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Does this failure say the server does not take `x-amz-checksum-sha256` (rather than that
/// the body did not match it, or that the request is not allowed)?
fn checksum_refused(f: &Failure) -> bool {
    let mismatch = matches!(
        f.code.as_deref(),
        Some("BadDigest" | "XAmzContentChecksumMismatch" | "InvalidDigest")
    );
    matches!(f.status, Some(400 | 501)) && !mismatch
}

impl BlobBackend for S3Store {
    fn describe(&self) -> String {
        format!("{} at {}", self.inner.cfg.url(), self.inner.cfg.endpoint)
    }

    fn locate(&self, d: &Digest) -> PathBuf {
        self.name(&Self::blob_key(d))
    }

    fn size(&self, d: &Digest) -> Option<u64> {
        match self.head(&Self::blob_key(d)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }

    fn open_at(&self, d: &Digest, offset: u64) -> Result<Box<dyn Read + Send>, StoreError> {
        let key = Self::blob_key(d);
        let full = self.inner.cfg.key(&key);
        let i = &self.inner;
        let sign = || i.bucket.get_object(Some(&i.creds), &full).sign(EXPIRY);
        let headers: Vec<(&str, String)> = if offset > 0 {
            vec![("range", format!("bytes={offset}-"))]
        } else {
            Vec::new()
        };
        let resp = match self.request("GET", &sign, &headers, Body::Empty, true) {
            Ok(r) => r,
            Err(f) if f.is_not_found() => return Err(self.not_found(&key, "open blob")),
            Err(f) if f.status == Some(416) => {
                // Nothing from `offset` on: fine at the end of the blob, an error past it.
                return match self.head(&key)? {
                    Some(size) if size == offset => Ok(Box::new(std::io::empty())),
                    Some(size) => Err(layout(
                        self.name(&key),
                        format!("read from offset {offset}: the blob has {size} bytes"),
                    )),
                    None => Err(self.not_found(&key, "open blob")),
                };
            }
            Err(f) => return Err(self.fail(&key, "get blob", f)),
        };
        let status = resp.status().as_u16();
        let mut body = resp.into_body().into_reader();
        if offset > 0 && status == 200 {
            // The server ignored the range: skip to the offset.
            let skipped = std::io::copy(&mut (&mut body).take(offset), &mut std::io::sink())
                .map_err(|e| StoreError::Io {
                    path: self.name(&key),
                    op: "read blob",
                    source: e,
                })?;
            if skipped < offset {
                return Err(layout(
                    self.name(&key),
                    format!("read from offset {offset}: the blob has {skipped} bytes"),
                ));
            }
        }
        Ok(Box::new(body))
    }

    fn stage(&self) -> Result<Box<dyn StagedBlob>, StoreError> {
        let path = self.inner.spool.join(format!(
            "{SPOOL_PREFIX}{}-{}",
            std::process::id(),
            SPOOL_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create_new(&path).map_err(|e| StoreError::Io {
            path: path.clone(),
            op: "create spool file",
            source: e,
        })?;
        Ok(Box::new(S3Staged {
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            path,
            store: self.clone(),
        }))
    }

    fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out: Vec<Digest> = self
            .list_keys(BLOBS)?
            .iter()
            .filter_map(|(k, _)| Digest::from_hex(k.strip_prefix(BLOBS)?).ok())
            .collect();
        out.sort();
        Ok(out)
    }

    fn remove(&self, d: &Digest) -> Result<(), StoreError> {
        self.delete_object(&Self::blob_key(d))
    }

    fn strays(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list_keys(BLOBS)?
            .into_iter()
            .filter(|(k, _)| {
                k.strip_prefix(BLOBS)
                    .is_none_or(|n| Digest::from_hex(n).is_err())
            })
            .map(|(k, _)| format!("{}: not a sha256 digest", self.name(&k).display()))
            .collect())
    }

    fn clean_temp(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for p in self.spool_files()? {
            fs::remove_file(&p).map_err(|e| StoreError::Io {
                path: p.clone(),
                op: "remove spool file",
                source: e,
            })?;
            n += 1;
        }
        // Parts of interrupted multipart uploads are invisible but billed; abort them. A server
        // without ListMultipartUploads leaves nothing to do.
        match self.multipart_uploads() {
            Ok(uploads) => {
                let i = &self.inner;
                for (key, id) in uploads {
                    let sign = || {
                        i.bucket
                            .abort_multipart_upload(Some(&i.creds), &key, &id)
                            .sign(EXPIRY)
                    };
                    match self.request("DELETE", &sign, &[], Body::Empty, true) {
                        Ok(_) => n += 1,
                        Err(f) if f.is_not_found() => {}
                        Err(f) => tracing::warn!("{key}: abort multipart upload: {}", f.detail),
                    }
                }
            }
            Err(f) => tracing::debug!("{}: list multipart uploads: {}", self.describe(), f.detail),
        }
        Ok(n)
    }
}

/// A blob spooled to a local file; uploaded by `persist`, removed either way.
struct S3Staged {
    file: Option<BufWriter<File>>,
    path: PathBuf,
    store: S3Store,
}

impl Write for S3Staged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("open until persisted").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("open until persisted").flush()
    }
}

impl StagedBlob for S3Staged {
    fn persist(mut self: Box<Self>, d: &Digest) -> Result<(), StoreError> {
        let file = self.file.take().expect("open until persisted");
        file.into_inner()
            .map_err(|e| e.into_error())
            .map_err(|e| StoreError::Io {
                path: self.path.clone(),
                op: "write spool file",
                source: e,
            })?;
        let key = S3Store::blob_key(d);
        self.store.put_path(&key, &self.path, Some(d))
        // Drop removes the spool file.
    }
}

impl Drop for S3Staged {
    fn drop(&mut self) {
        self.file.take();
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, code: &str) -> Failure {
        Failure {
            status: Some(status),
            code: Some(code.into()),
            detail: String::new(),
        }
    }

    #[test]
    fn only_refusals_of_the_header_drop_the_checksum() {
        assert!(checksum_refused(&failure(400, "InvalidArgument")));
        assert!(checksum_refused(&failure(501, "NotImplemented")));
        assert!(!checksum_refused(&failure(400, "BadDigest")));
        assert!(!checksum_refused(&failure(
            400,
            "XAmzContentChecksumMismatch"
        )));
        assert!(!checksum_refused(&failure(403, "SignatureDoesNotMatch")));
        assert!(!checksum_refused(&failure(500, "InternalError")));
    }
}
