//! Vulnerability data from the network: osv.dev's per-ecosystem exports and CISA's
//! known-exploited catalog, downloaded for `airlock vulndb sync`, and the exports read back
//! record by record for `airlock vulndb pack`.
//!
//! osv.dev publishes every ecosystem as one zip of OSV records at `<source>/<ECOSYSTEM>/all.zip`,
//! the name one percent-encoded path segment. A distribution's releases share their parent's
//! export: `Debian/all.zip` holds the advisories of every Debian release (osv.dev stopped
//! publishing `Debian:12/all.zip` and the other per-release exports in October 2024), so a
//! release is downloaded as its parent's export ([`export_of`]) and its records are selected
//! by their affected ecosystem. Nothing signs these files, so everything that can be checked
//! is:
//!
//! - the size: `HEAD`'s `Content-Length`, which every `GET` must agree with (the body is
//!   bounded by it, and a resumed `206` must continue exactly where the partial file ends);
//! - the server's own digests when it sends them (`x-goog-hash: md5=…, crc32c=…`, base64);
//! - the zip: central directory cross-checked with every local header, entry count, member
//!   sizes, their total and compression ratio bounded before inflating, every member's
//!   CRC-32 and size ([`airlock_scan::zip::members`]);
//! - every record: an OSV document within the parser's bounds ([`airlock_vuln::osv`]) that
//!   names an ecosystem asked for; records of other ecosystems are counted and dropped.
//!
//! Downloads go to a partial file with a record of the validator (`ETag`, else
//! `Last-Modified`) its bytes belong to; a cut connection is resumed with `Range` and
//! `If-Range`, so a file that changed meanwhile starts over instead of being spliced. A file
//! whose validator and size equal what was synced before is not downloaded again.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use airlock_bundle::Progress;
use airlock_core::Digest;
use airlock_scan::zip::{Bounds, Broken};
use airlock_vuln::osv::{Advisory, OsvError};
use serde::{Deserialize, Serialize};

use crate::fetch::Fetcher;
use crate::partial::Partial;
use crate::MirrorError;

/// osv.dev's public bucket of exports.
pub const DEFAULT_SOURCE: &str = "https://osv-vulnerabilities.storage.googleapis.com";
/// CISA's known-exploited vulnerabilities catalog (JSON).
pub const DEFAULT_KEV: &str =
    "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json";
/// Largest export accepted (the largest osv.dev publishes is a few hundred MiB).
pub const MAX_EXPORT: u64 = 16 << 30;
/// Bounds of an export zip: members are OSV records, each at most the parser's limit.
pub const EXPORT_BOUNDS: Bounds = Bounds {
    max_entries: 4_000_000,
    max_member: airlock_vuln::osv::MAX_RECORD as u64,
    max_total: 64 << 30,
    max_ratio: 200,
};
/// Refused records named in a summary (all are counted).
const MAX_NAMED: usize = 20;

/// An ecosystem name as osv.dev writes it, usable as one path segment and one with a version
/// order here (`Debian:12`, `Alpine:v3.20`, `PyPI`, `npm`, `Go`, `crates.io`).
pub fn check_ecosystem(e: &str) -> Result<(), MirrorError> {
    if e.is_empty()
        || e.len() > 64
        || e.starts_with('.')
        || e.chars()
            .any(|c| c == '/' || c == '\\' || c.is_control() || c == '%')
    {
        return Err(MirrorError::Invalid(format!(
            "ecosystem {e:?}: not an OSV ecosystem name"
        )));
    }
    if airlock_vuln::version::Scheme::of_ecosystem(e).is_none() {
        return Err(MirrorError::Invalid(format!(
            "ecosystem {e:?}: airlock has no version order for it (Debian:N, Alpine:vX.Y, PyPI, npm, crates.io, Go)"
        )));
    }
    Ok(())
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved characters).
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The export that holds `ecosystem`'s records: the ecosystem itself, or for a release
/// (`Debian:12`, `Alpine:v3.20`) its distribution's (`Debian`, `Alpine`).
pub fn export_of(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or(ecosystem)
}

/// The URL of `export`'s zip under `source`.
pub fn export_url(source: &str, export: &str) -> String {
    format!(
        "{}/{}/all.zip",
        source.trim_end_matches('/'),
        segment(export)
    )
}

/// What a server says about a file, and what was kept of an earlier download.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Validator {
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validator {
    /// The same file: equal size and an equal `ETag` (or, without one, `Last-Modified`).
    pub fn same(&self, other: &Validator) -> bool {
        self.size == other.size
            && match (&self.etag, &other.etag) {
                (Some(a), Some(b)) => a == b,
                (None, None) => {
                    self.last_modified.is_some() && self.last_modified == other.last_modified
                }
                _ => false,
            }
    }

    /// The `If-Range` value for a resumed request.
    fn if_range(&self) -> Option<&str> {
        self.etag.as_deref().or(self.last_modified.as_deref())
    }
}

/// The result of [`fetch`].
#[derive(Debug, Clone)]
pub struct Fetched {
    pub validator: Validator,
    /// `false`: the file on disk is the one the server has; nothing was downloaded.
    pub downloaded: bool,
    /// Bytes transferred by this run.
    pub transferred: u64,
    /// Whether a partial file from an earlier attempt was continued.
    pub resumed: bool,
    /// The server's digests that were checked (`md5`, `crc32c`).
    pub checked: Vec<String>,
}

fn header<'a>(h: &'a ureq::http::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Short, printable form of a header value (validators are echoed into records and logs).
fn clean(s: &str) -> Option<String> {
    let s: String = s.chars().filter(|c| !c.is_control()).take(256).collect();
    (!s.is_empty()).then_some(s)
}

/// `x-goog-hash` values as `(algorithm, bytes)`.
fn goog_hashes(h: &ureq::http::HeaderMap) -> Result<Vec<(String, Vec<u8>)>, String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for v in h.get_all("x-goog-hash") {
        let v = v
            .to_str()
            .map_err(|_| "x-goog-hash is not text".to_string())?;
        for part in v.split(',') {
            let Some((alg, b64)) = part.trim().split_once('=') else {
                return Err(format!("x-goog-hash {part:?} is not ALG=BASE64"));
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| format!("x-goog-hash {alg}: {e}"))?;
            out.push((alg.trim().to_ascii_lowercase(), bytes));
        }
    }
    Ok(out)
}

/// CRC-32C (Castagnoli), as Google Cloud Storage reports it.
pub fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    const fn table() -> [u32; 256] {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    }
    const T: [u32; 256] = table();
    crc = !crc;
    for &b in data {
        crc = T[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Checks the file against the server's `x-goog-hash` digests; returns the ones checked.
fn check_goog(
    path: &Path,
    want: &[(String, Vec<u8>)],
    url: &str,
) -> Result<Vec<String>, MirrorError> {
    use md5::Digest as _;
    if want.is_empty() {
        return Ok(Vec::new());
    }
    let mut md5 = md5::Md5::new();
    let mut crc = 0u32;
    let mut f = std::fs::File::open(path).map_err(MirrorError::io(path, "open"))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(MirrorError::io(path, "read"))?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        crc = crc32c(crc, &buf[..n]);
    }
    let md5 = md5.finalize().to_vec();
    let crc = crc.to_be_bytes().to_vec();
    let mut checked = Vec::new();
    for (alg, bytes) in want {
        let got = match alg.as_str() {
            "md5" => &md5,
            "crc32c" => &crc,
            _ => continue,
        };
        if got != bytes {
            return Err(MirrorError::Invalid(format!(
                "{url}: the server's x-goog-hash {alg} is {}, the bytes received hash to {}",
                hex::encode(bytes),
                hex::encode(got)
            )));
        }
        checked.push(alg.clone());
    }
    Ok(checked)
}

/// The validator a partial file's bytes belong to.
fn sidecar(partial: &Path) -> PathBuf {
    let mut s = partial.as_os_str().to_owned();
    s.push(".validator");
    PathBuf::from(s)
}

/// Removes a partial download and its validator (after its content was refused).
pub fn discard(partial: &Path) {
    let _ = std::fs::remove_file(partial);
    let _ = std::fs::remove_file(sidecar(partial));
}

/// Downloads `url` into `partial` (at most `max` bytes) unless `known` — the validator of the
/// file already synced — is what the server has now. Returns what was done and the SHA-256 of
/// the file (`None` when nothing was downloaded). `sized` is told the size once the server
/// gives it. The caller checks the content, then moves `partial` into place (or [`discard`]s
/// it).
pub fn fetch(
    fetcher: &Fetcher,
    url: &str,
    partial: &Path,
    known: Option<&Validator>,
    max: u64,
    progress: &dyn Progress,
    sized: &dyn Fn(u64),
) -> Result<(Fetched, Option<Digest>), MirrorError> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(MirrorError::Invalid(format!(
            "{url}: only http:// and https:// sources are downloaded"
        )));
    }
    // A retry re-reads the partial file; bytes already shown are not shown again.
    let shown = AtomicU64::new(0);
    fetcher.retry(url, || {
        let once = Once {
            inner: progress,
            skip: AtomicU64::new(shown.load(Ordering::Relaxed)),
            shown: &shown,
        };
        fetch_once(fetcher, url, partial, known, max, &once, sized)
    })
}

/// Progress that passes on only bytes beyond those an earlier attempt already showed.
struct Once<'a> {
    inner: &'a dyn Progress,
    skip: AtomicU64,
    shown: &'a AtomicU64,
}

impl Progress for Once<'_> {
    fn advance(&self, n: u64) {
        let skip = self.skip.load(Ordering::Relaxed).min(n);
        self.skip.fetch_sub(skip, Ordering::Relaxed);
        if n > skip {
            self.shown.fetch_add(n - skip, Ordering::Relaxed);
            self.inner.advance(n - skip);
        }
    }
}

fn transport(url: &str, e: impl std::fmt::Display) -> MirrorError {
    MirrorError::Transport {
        url: url.to_string(),
        detail: e.to_string(),
    }
}

fn fetch_once(
    fetcher: &Fetcher,
    url: &str,
    partial: &Path,
    known: Option<&Validator>,
    max: u64,
    progress: &dyn Progress,
    sized: &dyn Fn(u64),
) -> Result<(Fetched, Option<Digest>), MirrorError> {
    let head = fetcher
        .agent
        .head(url)
        .call()
        .map_err(|e| transport(url, e))?;
    let status = head.status().as_u16();
    if status != 200 {
        return Err(MirrorError::Status {
            url: url.to_string(),
            status,
            detail: if status == 404 {
                "no such file on the server".into()
            } else {
                String::new()
            },
        });
    }
    let h = head.headers();
    let size = header(h, "content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            MirrorError::Invalid(format!("{url}: the server gives no Content-Length"))
        })?;
    if size > max {
        return Err(MirrorError::Invalid(format!(
            "{url}: Content-Length {size} is more than the {max} bytes allowed"
        )));
    }
    let remote = Validator {
        size,
        etag: header(h, "etag").and_then(clean),
        last_modified: header(h, "last-modified").and_then(clean),
    };
    let goog = goog_hashes(h).map_err(|e| MirrorError::Invalid(format!("{url}: {e}")))?;
    if known.is_some_and(|k| k.same(&remote)) {
        tracing::info!(
            url,
            etag = remote.etag.as_deref(),
            size,
            "unchanged since the last sync"
        );
        return Ok((
            Fetched {
                validator: remote,
                downloaded: false,
                transferred: 0,
                resumed: false,
                checked: Vec::new(),
            },
            None,
        ));
    }
    // Bytes of another version of the file are not continued.
    let side = sidecar(partial);
    let before: Option<Validator> = std::fs::read(&side)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if !before.as_ref().is_some_and(|b| b.same(&remote)) {
        let _ = std::fs::remove_file(partial);
        airlock_store::write_atomic(&side, &serde_json::to_vec(&remote).expect("JSON"))
            .map_err(|e| MirrorError::Invalid(format!("{}: {e}", side.display())))?;
    }
    sized(size);
    let mut p = Partial::open(partial, size, false, progress)?;
    let resumed = p.have() > 0;
    let mut transferred = 0;
    if p.have() < size || size == 0 {
        let mut req = fetcher.agent.get(url);
        let from = p.have();
        if from > 0 {
            tracing::info!(url, offset = from, "resuming download");
            req = req.header("Range", format!("bytes={from}-"));
            if let Some(v) = remote.if_range() {
                req = req.header("If-Range", v);
            }
        }
        let resp = req.call().map_err(|e| transport(url, e))?;
        let status = resp.status().as_u16();
        if status != 200 && status != 206 {
            return Err(MirrorError::Status {
                url: url.to_string(),
                status,
                detail: String::new(),
            });
        }
        let h = resp.headers();
        if let (Some(now), Some(then)) = (header(h, "etag").and_then(clean), &remote.etag) {
            if &now != then {
                discard(partial);
                return Err(transport(
                    url,
                    format!("changed while downloading (ETag {then} became {now})"),
                ));
            }
        }
        let expect = if status == 206 { size - from } else { size };
        if let Some(cl) = header(h, "content-length") {
            if cl.trim().parse::<u64>().ok() != Some(expect) {
                return Err(MirrorError::Invalid(format!(
                    "{url}: GET's Content-Length {cl:?} disagrees with the {expect} bytes HEAD announced"
                )));
            }
        }
        let cr = header(h, "content-range").map(str::to_string);
        if status == 206
            && !cr
                .as_deref()
                .is_some_and(|c| c.ends_with(&format!("/{size}")))
        {
            return Err(MirrorError::Invalid(format!(
                "{url}: Content-Range {:?} is not of the {size}-byte file HEAD announced",
                cr.as_deref().unwrap_or("")
            )));
        }
        p.accept(status, cr.as_deref(), url)?;
        transferred = p.fill(resp.into_body().into_reader(), url, progress)?;
    }
    let (digest, _, file) = p.finish();
    file.sync_all().map_err(MirrorError::io(partial, "fsync"))?;
    drop(file);
    let checked = match check_goog(partial, &goog, url) {
        Ok(c) => c,
        Err(e) => {
            discard(partial);
            return Err(e);
        }
    };
    Ok((
        Fetched {
            validator: remote,
            downloaded: true,
            transferred,
            resumed,
            checked,
        },
        Some(digest),
    ))
}

/// What reading an export found.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportCounts {
    /// Members of the zip.
    pub members: usize,
    /// Records kept: OSV records naming an ecosystem asked for.
    pub records: usize,
    /// Records kept per ecosystem asked for (a record may name several).
    pub by_ecosystem: std::collections::BTreeMap<String, usize>,
    pub withdrawn: usize,
    /// Records that name none of the ecosystems asked for (dropped).
    pub other_ecosystem: usize,
    /// Affected entries of ecosystems airlock has no version order for (dropped).
    pub unordered_entries: usize,
    /// OSV records outside the parser's bounds (skipped), with the first few named.
    pub refused: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_named: Vec<String>,
}

/// Whether `affected` is `wanted` (`Debian` also takes `Debian:N`).
fn is_wanted(affected: &str, wanted: &str) -> bool {
    affected == wanted
        || (!wanted.contains(':')
            && affected
                .strip_prefix(wanted)
                .is_some_and(|r| r.starts_with(':')))
}

/// Reads the export zip at `path` for the ecosystems `wanted`, handing `f` every record that
/// names one of them (its bytes and what was parsed of it). Any fault of the zip, or a member
/// that is not an OSV record, refuses the export, naming the member.
pub fn read_export(
    path: &Path,
    wanted: &[String],
    mut f: impl FnMut(&[u8], Advisory) -> Result<(), String>,
) -> Result<ExportCounts, MirrorError> {
    let file = std::fs::File::open(path).map_err(MirrorError::io(path, "open"))?;
    let src = airlock_scan::FileSource::new(file).map_err(MirrorError::io(path, "stat"))?;
    let mut c = ExportCounts::default();
    let walked = airlock_scan::zip::members(&src, &EXPORT_BOUNDS, |e, bytes| {
        match airlock_vuln::osv::parse(bytes) {
            Ok(Some(adv)) => {
                c.unordered_entries += adv.dropped;
                let mut kept = false;
                for w in wanted {
                    if adv.affected.iter().any(|a| is_wanted(&a.ecosystem, w)) {
                        *c.by_ecosystem.entry(w.clone()).or_default() += 1;
                        kept = true;
                    }
                }
                if kept {
                    c.records += 1;
                    f(bytes, adv)?;
                } else {
                    c.other_ecosystem += 1;
                }
            }
            Ok(None) => c.withdrawn += 1,
            Err(err @ OsvError::Invalid { .. }) => {
                c.refused += 1;
                if c.refused_named.len() < MAX_NAMED {
                    c.refused_named.push(format!("{}: {err}", e.name));
                }
            }
            Err(err) => return Err(format!("member {:?}: {err}", e.name)),
        }
        Ok(())
    })
    .map_err(|Broken(why)| MirrorError::Invalid(format!("{}: {why}", path.display())))?;
    c.members = walked.members;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystems_are_one_encoded_segment() {
        assert_eq!(
            export_url("https://osv.example/", "Debian:12"),
            "https://osv.example/Debian%3A12/all.zip"
        );
        assert_eq!(
            export_url("http://h", "crates.io"),
            "http://h/crates.io/all.zip"
        );
        check_ecosystem("Alpine:v3.20").unwrap();
        check_ecosystem("PyPI").unwrap();
        for bad in ["", "../PyPI", "Py/PI", "Maven", ".", "npm%2f"] {
            assert!(check_ecosystem(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn crc32c_is_castagnoli() {
        // RFC 3720's check value.
        assert_eq!(crc32c(0, b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(crc32c(0, b"1234"), b"56789"), 0xE306_9283);
    }

    #[test]
    fn validators_compare_by_etag_then_date() {
        let v = |s, e: Option<&str>, l: Option<&str>| Validator {
            size: s,
            etag: e.map(Into::into),
            last_modified: l.map(Into::into),
        };
        assert!(v(1, Some("a"), None).same(&v(1, Some("a"), Some("x"))));
        assert!(!v(1, Some("a"), None).same(&v(2, Some("a"), None)));
        assert!(!v(1, Some("a"), None).same(&v(1, Some("b"), None)));
        assert!(v(1, None, Some("d")).same(&v(1, None, Some("d"))));
        assert!(
            !v(1, None, None).same(&v(1, None, None)),
            "nothing to compare"
        );
    }
}
