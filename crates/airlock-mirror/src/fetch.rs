//! Plain HTTP(S) and `file://` downloads pinned by digest: apt repositories (their signed
//! `Release`, `Packages` indexes and `.deb` files) and the `url:` entries of `files:`.
//!
//! Small documents are read whole with a size bound ([`Fetcher::get_small`]); content files
//! go through the same resumable, verifying partial file as registry blobs and Hub files
//! ([`crate::partial`]): bytes count only once re-hashed, a resumed answer must continue where
//! the file ends, more bytes than expected are refused, and nothing enters the store unless
//! its SHA-256 (and size, when known) match what the signed source said.

use std::io::Read;
use std::path::{Path, PathBuf};

use airlock_bundle::Progress;
use airlock_core::Digest;
use airlock_store::BlobStore;

use crate::partial::Partial;
use crate::MirrorError;

/// Largest file a `url:` entry may name when the server does not say its size up front.
pub const MAX_URL_FILE: u64 = 256 << 30;

/// Options of [`Fetcher`].
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Extra CA certificates (PEM) for `https://`.
    pub ca_file: Option<PathBuf>,
    /// Retries of a transient failure (connection lost, 5xx, damaged bytes).
    pub retries: u32,
}

/// An HTTP(S) client for static files, plus `file://`.
pub struct Fetcher {
    pub(crate) agent: ureq::Agent,
    retries: u32,
}

impl Fetcher {
    pub fn new(opts: &FetchOptions) -> Result<Fetcher, MirrorError> {
        Ok(Fetcher {
            agent: crate::http_agent(opts.ca_file.as_deref())?,
            retries: opts.retries,
        })
    }

    /// Runs `f` again after a transient failure, with backoff, at most `retries` more times.
    pub fn retry<T>(
        &self,
        what: &str,
        f: impl FnMut() -> Result<T, MirrorError>,
    ) -> Result<T, MirrorError> {
        crate::with_retries(self.retries, what, f)
    }

    fn get(
        &self,
        url: &str,
        from: Option<u64>,
    ) -> Result<ureq::http::Response<ureq::Body>, MirrorError> {
        let mut req = self.agent.get(url);
        if let Some(n) = from {
            req = req.header("Range", format!("bytes={n}-"));
        }
        req.call().map_err(|e| MirrorError::Transport {
            url: url.to_string(),
            detail: e.to_string(),
        })
    }

    /// A whole small document, at most `max` bytes; `None` when the server (or the file system)
    /// says it does not exist.
    pub fn get_small(&self, url: &str, max: u64) -> Result<Option<Vec<u8>>, MirrorError> {
        if let Some(path) = file_path(url)? {
            return match std::fs::metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                _ => airlock_core::bounded::read_file_at_most(&path, max)
                    .map(Some)
                    .map_err(MirrorError::io(&path, "read")),
            };
        }
        self.retry(url, || {
            let resp = self.get(url, None)?;
            let status = resp.status().as_u16();
            if status == 404 || status == 410 {
                return Ok(None);
            }
            if status != 200 {
                return Err(MirrorError::Status {
                    url: url.to_string(),
                    status,
                    detail: String::new(),
                });
            }
            let mut buf = Vec::new();
            resp.into_body()
                .into_reader()
                .take(max + 1)
                .read_to_end(&mut buf)
                .map_err(|e| MirrorError::Transport {
                    url: url.to_string(),
                    detail: e.to_string(),
                })?;
            if buf.len() as u64 > max {
                return Err(MirrorError::Invalid(format!(
                    "{url}: larger than the {max} bytes allowed"
                )));
            }
            Ok(Some(buf))
        })
    }

    /// The size a server gives for `url` (`HEAD`), for downloads whose size no signed
    /// document states.
    fn head_size(&self, url: &str) -> Result<u64, MirrorError> {
        if let Some(path) = file_path(url)? {
            return std::fs::metadata(&path)
                .map(|m| m.len())
                .map_err(MirrorError::io(&path, "stat"));
        }
        let resp = self
            .agent
            .head(url)
            .call()
            .map_err(|e| MirrorError::Transport {
                url: url.to_string(),
                detail: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(MirrorError::Status {
                url: url.to_string(),
                status,
                detail: String::new(),
            });
        }
        resp.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                MirrorError::Invalid(format!("{url}: the server gives no Content-Length"))
            })
    }

    /// Downloads `url` into `store` unless it is there, resuming from `partial`, and refusing
    /// content whose SHA-256 is not `digest` or whose size is not `size` (when given; else the
    /// server's `Content-Length`, at most [`MAX_URL_FILE`]). Returns the bytes transferred.
    pub fn download(
        &self,
        url: &str,
        digest: &Digest,
        size: Option<u64>,
        partial: &Path,
        store: &BlobStore,
        progress: &dyn Progress,
    ) -> Result<u64, MirrorError> {
        let size = match size {
            Some(s) => s,
            None => {
                if store.size(digest).is_some() {
                    return Ok(0);
                }
                let s = self.retry(url, || self.head_size(url))?;
                if s > MAX_URL_FILE {
                    return Err(MirrorError::Invalid(format!(
                        "{url}: {s} bytes is more than the {MAX_URL_FILE} allowed"
                    )));
                }
                s
            }
        };
        if store.contains(digest, size) {
            return Ok(0);
        }
        self.retry(url, || {
            self.download_once(url, digest, size, partial, store, progress)
        })
    }

    fn download_once(
        &self,
        url: &str,
        digest: &Digest,
        size: u64,
        partial: &Path,
        store: &BlobStore,
        progress: &dyn Progress,
    ) -> Result<u64, MirrorError> {
        let mut p = Partial::open(partial, size, false, progress)?;
        let mut transferred = 0;
        if p.have() < size || size == 0 {
            if let Some(path) = file_path(url)? {
                p.accept(200, None, url)?;
                let f = std::fs::File::open(&path).map_err(MirrorError::io(&path, "open"))?;
                transferred = p.fill(f, url, progress)?;
            } else {
                let resume = (p.have() > 0).then_some(p.have());
                if let Some(at) = resume {
                    tracing::info!(url, offset = at, "resuming download");
                }
                let resp = self.get(url, resume)?;
                let status = resp.status().as_u16();
                if status != 200 && status != 206 {
                    return Err(MirrorError::Status {
                        url: url.to_string(),
                        status,
                        detail: String::new(),
                    });
                }
                let cr = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                p.accept(status, cr.as_deref(), url)?;
                transferred = p.fill(resp.into_body().into_reader(), url, progress)?;
            }
        }
        let (found, _, f) = p.finish();
        drop(f);
        if found != *digest {
            let _ = std::fs::remove_file(partial);
            return Err(MirrorError::DigestMismatch {
                what: url.to_string(),
                expected: *digest,
                found,
            });
        }
        store
            .adopt_file(partial, digest)
            .map_err(|source| MirrorError::Store {
                what: format!("store {url}"),
                source,
            })?;
        Ok(transferred)
    }
}

/// The local path of a `file://` URL (`None` for other schemes). Only absolute paths, no
/// host part, no percent-escapes.
pub fn file_path(url: &str) -> Result<Option<PathBuf>, MirrorError> {
    let Some(rest) = url.strip_prefix("file://") else {
        return Ok(None);
    };
    if !rest.starts_with('/') || rest.contains('%') {
        return Err(MirrorError::Invalid(format!(
            "{url}: a file:// URI must name an absolute path (file:///dir), without %-escapes"
        )));
    }
    Ok(Some(PathBuf::from(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls() {
        assert_eq!(
            file_path("file:///srv/debian").unwrap(),
            Some(PathBuf::from("/srv/debian"))
        );
        assert_eq!(file_path("http://x/y").unwrap(), None);
        assert!(file_path("file://host/srv").is_err());
        assert!(file_path("file:///a%2f..").is_err());
    }
}
