//! `airlock vulndb sync`: osv.dev's per-ecosystem exports and CISA's known-exploited catalog
//! downloaded into a directory that `vulndb pack` and `vulndb match` read, and that directory
//! read back.
//!
//! The directory:
//!
//! ```text
//! DIR/sources.json                             what was synced: per source its URL, retrieval
//!                                              time, size, SHA-256, ETag and record counts
//! DIR/osv/<EXPORT>/all.zip                     each export, as published (verified): the
//!                                              ecosystem's, or a release's distribution's
//! DIR/known_exploited_vulnerabilities.json     CISA's catalog (with --known-exploited)
//! DIR/.partial/                                downloads in progress (resumed by the next run)
//! ```
//!
//! The zips are kept rather than unpacked: a Debian, PyPI and npm sync is hundreds of
//! thousands of records, and writing (then opening) as many small files costs more than
//! reading one zip.
//! Nothing replaces the previous sync until every source has downloaded and verified;
//! `sources.json` is written last, and `vulndb pack` checks every file's SHA-256 against it,
//! so an interrupted sync is never read as a complete one.

use std::path::{Path, PathBuf};

use airlock_mirror::osv::{self, ExportCounts, Validator};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::print_json;
use crate::cli::{Cli, VulndbSyncArgs};

/// The `_type` of `sources.json`.
pub const SOURCES_TYPE: &str = "airlock-vulndb-sources/v1";
/// The file naming what a sync wrote.
pub const SOURCES: &str = "sources.json";
/// CISA's catalog, in DIR.
pub const KEV_FILE: &str = "known_exploited_vulnerabilities.json";
/// Largest `sources.json` read.
const MAX_SOURCES: u64 = 16 << 20;

/// One export, as synced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportSource {
    /// The export's name in the bucket (`Debian`, `PyPI`).
    pub export: String,
    /// The ecosystems asked for whose records are kept (`Debian:12`, `PyPI`).
    pub ecosystems: Vec<String>,
    pub url: String,
    /// The zip, relative to DIR.
    pub file: String,
    /// When these bytes were downloaded (RFC 3339).
    pub retrieved: String,
    pub sha256: String,
    #[serde(flatten)]
    pub validator: Validator,
    #[serde(flatten)]
    pub counts: ExportCounts,
}

/// CISA's catalog, as synced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KevSource {
    pub url: String,
    pub file: String,
    pub retrieved: String,
    pub sha256: String,
    #[serde(flatten)]
    pub validator: Validator,
    pub catalog_version: String,
    pub date_released: String,
    pub count: usize,
}

/// `DIR/sources.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sources {
    #[serde(rename = "_type")]
    pub kind: String,
    /// When the last sync checked every source.
    pub synced: String,
    pub source: String,
    pub exports: Vec<ExportSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_exploited: Option<KevSource>,
}

/// `DIR/sources.json` when DIR is a synced directory; `None` when it has none. A directory
/// holding a sync's partial downloads (`.partial`, which every sync creates first) but no
/// `sources.json` is an interrupted sync.
pub fn read_sources(dir: &Path) -> Result<Option<Sources>> {
    let p = dir.join(SOURCES);
    if !p.exists() {
        if dir.join(".partial").is_dir() {
            bail!(
                "{}: exports but no {SOURCES}: an interrupted `airlock vulndb sync`; run it again",
                dir.display()
            );
        }
        return Ok(None);
    }
    let b = airlock_core::bounded::read_file_at_most(&p, MAX_SOURCES)
        .with_context(|| format!("reading {}", p.display()))?;
    let s: Sources = serde_json::from_slice(&b)
        .with_context(|| format!("{}: not a sync record", p.display()))?;
    if s.kind != SOURCES_TYPE {
        bail!("{}: not an {SOURCES_TYPE} document", p.display());
    }
    Ok(Some(s))
}

/// A relative path of a synced file that stays inside DIR.
fn inside(dir: &Path, rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        bail!("{SOURCES}: file {rel:?} is not a path inside the directory");
    }
    Ok(dir.join(p))
}

/// Checks a synced file's size and SHA-256 against `sources.json`.
fn verify(dir: &Path, rel: &str, sha256: &str, size: u64) -> Result<PathBuf> {
    let p = inside(dir, rel)?;
    let (d, n) =
        airlock_store::hash_file(&p).with_context(|| format!("reading {}", p.display()))?;
    if d.hex() != sha256 || n != size {
        bail!(
            "{}: {n} bytes hashing to {}, but {SOURCES} says {size} bytes, {sha256}: changed since it was synced",
            p.display(),
            d.hex()
        );
    }
    Ok(p)
}

/// Every record of a synced directory's exports, each file checked against `sources.json`
/// first; `f` gets each kept record's bytes and parse.
pub fn for_each_record(
    dir: &Path,
    s: &Sources,
    mut f: impl FnMut(&[u8], airlock_vuln::osv::Advisory),
) -> Result<()> {
    for e in &s.exports {
        let p = verify(dir, &e.file, &e.sha256, e.validator.size)?;
        let c = osv::read_export(&p, &e.ecosystems, |b, a| {
            f(b, a);
            Ok(())
        })?;
        if c != e.counts {
            bail!(
                "{}: reads as {c:?}, {SOURCES} recorded {:?}",
                p.display(),
                e.counts
            );
        }
    }
    Ok(())
}

/// The synced known-exploited catalog, checked against `sources.json`.
pub fn known_exploited(dir: &Path, s: &Sources) -> Result<Option<airlock_vuln::kev::Kev>> {
    let Some(k) = &s.known_exploited else {
        return Ok(None);
    };
    let p = verify(dir, &k.file, &k.sha256, k.validator.size)?;
    let b = airlock_core::bounded::read_file_at_most(&p, airlock_vuln::kev::MAX_KEV)?;
    let kev = airlock_vuln::kev::parse(&b).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    Ok(Some(kev))
}

/// A downloaded, verified file waiting to replace the previous sync's.
struct Staged {
    partial: PathBuf,
    dest: PathBuf,
}

/// A progress bar per download, cleared however the download ends.
struct BarGuard(airlock_ui::Bar);
impl Drop for BarGuard {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// The previous sync's validator for `rel`, when that file is still there, whole.
fn still_there(dir: &Path, rel: &str, sha256: &str, v: &Validator) -> Option<Validator> {
    let p = inside(dir, rel).ok()?;
    let (d, n) = airlock_store::hash_file(&p).ok()?;
    (d.hex() == sha256 && n == v.size).then(|| v.clone())
}

pub fn run_sync(cli: &Cli, a: &VulndbSyncArgs) -> Result<u8> {
    // The exports to download, each with the ecosystems asked of it, in the order asked.
    let mut exports: Vec<(String, Vec<String>)> = Vec::new();
    for e in &a.ecosystems {
        osv::check_ecosystem(e)?;
        let x = osv::export_of(e);
        match exports.iter_mut().find(|(n, _)| n == x) {
            Some((_, w)) if !w.contains(e) => w.push(e.clone()),
            Some(_) => {}
            None => exports.push((x.to_string(), vec![e.clone()])),
        }
    }
    for u in std::iter::once(&a.source).chain(a.known_exploited.as_ref()) {
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            bail!("{u}: not an http:// or https:// URL");
        }
    }
    let dir = &a.out;
    // An unreadable record of an earlier sync only means everything is downloaded again.
    let before = if dir.join(SOURCES).exists() {
        read_sources(dir).unwrap_or_else(|e| {
            tracing::warn!("{e:#}; downloading everything again");
            None
        })
    } else {
        None
    };
    std::fs::create_dir_all(dir.join(".partial"))
        .with_context(|| format!("creating {}", dir.display()))?;
    // One sync at a time per directory: two would write the same partial files.
    let lock_path = dir.join(".partial").join("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!(
                "{}: another `airlock vulndb sync` is writing it",
                dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", lock_path.display()))
        }
    }
    let fetcher = airlock_mirror::fetch::Fetcher::new(&airlock_mirror::fetch::FetchOptions {
        ca_file: a.ca_file.clone(),
        retries: a.retries,
    })?;
    let now = || airlock_core::time::format_rfc3339(airlock_core::time::now());
    let mut staged = Vec::new();
    let mut out_exports = Vec::new();
    let mut summary = Vec::new();
    for (export, wanted) in &exports {
        let url = osv::export_url(&a.source, export);
        let rel = format!("osv/{export}/all.zip");
        let partial = dir
            .join(".partial")
            .join(format!("{}.zip", osv::segment(export)));
        let prior = before.as_ref().and_then(|s| {
            s.exports
                .iter()
                .find(|e| &e.export == export && e.url == url && e.file == rel)
        });
        let known = prior.and_then(|p| still_there(dir, &p.file, &p.sha256, &p.validator));
        let bar = BarGuard(airlock_ui::Bar::bytes(export, 0));
        tracing::info!(export, url, "checking the OSV export");
        let (got, digest) = osv::fetch(
            &fetcher,
            &url,
            &partial,
            known.as_ref(),
            osv::MAX_EXPORT,
            &bar.0,
            &|n| bar.0.set_total(n),
        )
        .with_context(|| format!("OSV export {export} ({})", wanted.join(", ")))?;
        drop(bar);
        let entry = match (digest, prior) {
            // Unchanged, and the same ecosystems kept: so are the counts.
            (None, Some(p)) if &p.ecosystems == wanted => ExportSource {
                validator: got.validator.clone(),
                ..p.clone()
            },
            // Unchanged, other ecosystems kept: counted again from the file in place.
            (None, Some(p)) => {
                let counts = osv::read_export(&dir.join(&p.file), wanted, |_, _| Ok(()))
                    .with_context(|| format!("OSV export {export} ({url})"))?;
                ExportSource {
                    ecosystems: wanted.clone(),
                    validator: got.validator.clone(),
                    counts,
                    ..p.clone()
                }
            }
            (Some(d), _) => {
                let counts = match osv::read_export(&partial, wanted, |_, _| Ok(())) {
                    Ok(c) => c,
                    Err(e) => {
                        osv::discard(&partial);
                        return Err(
                            anyhow::Error::new(e).context(format!("OSV export {export} ({url})"))
                        );
                    }
                };
                tracing::info!(export, records = counts.records, "OSV export verified");
                staged.push(Staged {
                    partial: partial.clone(),
                    dest: dir.join(&rel),
                });
                ExportSource {
                    export: export.clone(),
                    ecosystems: wanted.clone(),
                    url: url.clone(),
                    file: rel,
                    retrieved: now(),
                    sha256: d.hex(),
                    validator: got.validator.clone(),
                    counts,
                }
            }
            (None, None) => unreachable!("nothing is unchanged without an earlier sync"),
        };
        summary.push(json!({
            "export": export, "ecosystems": entry.counts.by_ecosystem, "url": url,
            "downloaded": got.downloaded, "transferred": got.transferred, "resumed": got.resumed,
            "serverDigests": got.checked, "size": entry.validator.size, "sha256": entry.sha256,
            "records": entry.counts.records, "withdrawn": entry.counts.withdrawn,
            "otherEcosystem": entry.counts.other_ecosystem,
            "unorderedEntries": entry.counts.unordered_entries, "refused": entry.counts.refused,
        }));
        out_exports.push(entry);
    }
    let mut kev_out = None;
    let mut kev_summary = serde_json::Value::Null;
    if let Some(url) = &a.known_exploited {
        let partial = dir.join(".partial").join(KEV_FILE);
        let prior = before
            .as_ref()
            .and_then(|s| s.known_exploited.as_ref())
            .filter(|k| &k.url == url && k.file == KEV_FILE);
        let known = prior.and_then(|p| still_there(dir, &p.file, &p.sha256, &p.validator));
        let bar = BarGuard(airlock_ui::Bar::bytes("KEV", 0));
        let (got, digest) = osv::fetch(
            &fetcher,
            url,
            &partial,
            known.as_ref(),
            airlock_vuln::kev::MAX_KEV,
            &bar.0,
            &|n| bar.0.set_total(n),
        )
        .context("known-exploited catalog")?;
        drop(bar);
        let entry = match (digest, prior) {
            (None, Some(p)) => KevSource {
                validator: got.validator.clone(),
                ..p.clone()
            },
            (Some(d), _) => {
                let parsed =
                    airlock_core::bounded::read_file_at_most(&partial, airlock_vuln::kev::MAX_KEV)
                        .map_err(|e| e.to_string())
                        .and_then(|b| airlock_vuln::kev::parse(&b));
                let kev = match parsed {
                    Ok(k) => k,
                    Err(e) => {
                        osv::discard(&partial);
                        bail!("known-exploited catalog {url}: {e}");
                    }
                };
                staged.push(Staged {
                    partial: partial.clone(),
                    dest: dir.join(KEV_FILE),
                });
                KevSource {
                    url: url.clone(),
                    file: KEV_FILE.into(),
                    retrieved: now(),
                    sha256: d.hex(),
                    validator: got.validator.clone(),
                    catalog_version: kev.catalog_version,
                    date_released: kev.date_released,
                    count: kev.cves.len(),
                }
            }
            (None, None) => unreachable!("nothing is unchanged without an earlier sync"),
        };
        kev_summary = json!({"url": url, "downloaded": got.downloaded, "transferred": got.transferred,
            "resumed": got.resumed, "size": entry.validator.size, "sha256": entry.sha256,
            "catalogVersion": entry.catalog_version, "count": entry.count});
        kev_out = Some(entry);
    }
    // Every source is verified: replace the previous sync, sources.json last.
    let sources = Sources {
        kind: SOURCES_TYPE.into(),
        synced: now(),
        source: a.source.clone(),
        exports: out_exports,
        known_exploited: kev_out,
    };
    let record = dir.join(SOURCES);
    if !staged.is_empty() {
        match std::fs::remove_file(&record) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", record.display()))
            }
            _ => {}
        }
    }
    for s in &staged {
        if let Some(parent) = s.dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::rename(&s.partial, &s.dest)
            .with_context(|| format!("moving {} into place", s.dest.display()))?;
        osv::discard(&s.partial);
    }
    airlock_store::write_atomic(&record, &serde_json::to_vec_pretty(&sources).expect("JSON"))
        .with_context(|| format!("writing {}", record.display()))?;
    let downloaded = summary.iter().filter(|s| s["downloaded"] == true).count()
        + usize::from(kev_summary["downloaded"] == true);
    if cli.json {
        print_json(&json!({
            "dir": dir, "synced": sources.synced, "downloaded": downloaded,
            "exports": summary, "knownExploited": kev_summary,
        }))?;
    } else {
        for s in &summary {
            say!(
                "{:<10} {} records {} ({} withdrawn, {} of other ecosystems, {} refused), {}",
                s["export"].as_str().unwrap_or(""),
                s["records"],
                s["ecosystems"],
                s["withdrawn"],
                s["otherEcosystem"],
                s["refused"],
                if s["downloaded"] == true {
                    format!(
                        "downloaded {}",
                        airlock_ui::human_bytes(s["transferred"].as_u64().unwrap_or(0))
                    )
                } else {
                    "unchanged".into()
                }
            );
        }
        if kev_summary.is_object() {
            say!(
                "known-exploited {} CVEs (catalog {}), {}",
                kev_summary["count"],
                kev_summary["catalogVersion"].as_str().unwrap_or(""),
                if kev_summary["downloaded"] == true {
                    "downloaded"
                } else {
                    "unchanged"
                }
            );
        }
        say!("synced into {}", dir.display());
    }
    Ok(airlock_ui::exit::OK)
}

/// Each export, its URL, retrieval time, digest and counts, for the database header.
pub fn header_sources(s: &Sources) -> serde_json::Value {
    let ecos: Vec<_> = s
        .exports
        .iter()
        .map(|e| {
            json!({"export": e.export, "ecosystems": e.counts.by_ecosystem, "url": e.url,
                   "retrieved": e.retrieved,
                   "size": e.validator.size, "sha256": e.sha256, "etag": e.validator.etag,
                   "records": e.counts.records, "withdrawn": e.counts.withdrawn,
                   "otherEcosystem": e.counts.other_ecosystem,
                   "unorderedEntries": e.counts.unordered_entries, "refused": e.counts.refused})
        })
        .collect();
    json!(ecos)
}
