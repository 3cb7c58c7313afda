//! Scanning what `airlock pack` brings in, before it is signed.
//!
//! Every layer of every model and file artifact is scanned by airlock-scan (pickle machine,
//! archives, format validators) with YARA rules from airlock-yara (built-in plus `--rules`),
//! in parallel, reading the blob where it lies (a source file, a store blob, a range of an
//! archive) without loading it whole. Container image layers (tar, tar+gzip, tar+zstd) are
//! unpacked as a stream and every file in them is scanned the same way. The
//! results go into the bundle twice: as `scan` records in the signed bundle manifest (what the
//! import policy reads, before any blob is written), and as an attestation artifact per scanned
//! artifact, an OCI artifact whose `subject` is the scanned manifest; airlock-attest builds
//! both, and this module adds them to the pack plan. The scanner string names the YARA rule
//! set's digest, and the attestation lists its rule files, so an auditor can tell which rules a
//! bundle was scanned with.
//!
//! Each blob is scanned at most once per scanner and rule set: with a [`ScanCache`] (the
//! store's `scan-cache/`, see `scan_cache.rs`), a blob whose findings are stored for the same
//! key is not read again, so `sync` and `pack` of what is already mirrored and scanned do not
//! scan it again. Findings from the cache are the same values in the same order as a scan's.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use airlock_bundle::writer::{BlobData, PlannedBlob};
use airlock_core::bundle::{Artifact, ArtifactKind, ScanRecord};
use airlock_core::media;
use airlock_core::oci::{Index, Manifest};
use airlock_core::Digest;
use airlock_mirror::plan::Plan;
use anyhow::{Context, Result};
use rayon::prelude::*;

use airlock_attest::SCANNER;

use crate::scan_cache::{self, ScanCache};

/// One finding as a text line: severity, `file[!/member]`, rule, global, detail (what
/// `airlock scan` and `airlock sync` print).
pub fn finding_line(f: &airlock_scan::Finding) -> String {
    let at = match &f.member {
        Some(m) => format!("{}!/{m}", f.file),
        None => f.file.clone(),
    };
    let g = f
        .global
        .as_deref()
        .map(|g| format!(" {g}"))
        .unwrap_or_default();
    format!("{:<10} {at}  {}{g}: {}", f.severity, f.rule, f.detail)
}

/// A byte range of a file as a scanner source.
struct FileRange {
    file: std::fs::File,
    offset: u64,
    len: u64,
}

impl airlock_scan::Source for FileRange {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if off
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.file.read_exact_at(buf, self.offset + off)
    }
}

/// One blob to scan: a file-like layer, or an image layer (a tar stream).
struct Job<'a> {
    /// Index of the scanned artifact the findings belong to.
    artifact: usize,
    title: String,
    blob: &'a PlannedBlob,
    layer: Option<airlock_scan::Compression>,
}

impl Job<'_> {
    /// The cache key of this job's findings under `scanner` (a `scanner_id`).
    fn key(&self, scanner: &str) -> scan_cache::Key {
        scan_cache::Key {
            blob: self.blob.digest,
            size: self.blob.size,
            name: self.title.clone(),
            mode: match self.layer {
                None => "file",
                Some(airlock_scan::Compression::None) => "tar",
                Some(airlock_scan::Compression::Gzip) => "tar+gzip",
                Some(airlock_scan::Compression::Zstd) => "tar+zstd",
            }
            .into(),
            scanner: scanner.into(),
            build: scan_cache::BUILD.into(),
        }
    }
}

/// The stamp of a file blob's file, taken before it is scanned.
fn stat(b: &PlannedBlob) -> Option<airlock_bundle::writer::FileStamp> {
    match &b.data {
        BlobData::File { path, .. } => std::fs::metadata(path)
            .ok()
            .map(|m| airlock_bundle::writer::FileStamp::of(&m)),
        BlobData::Bytes(_) => None,
    }
}

/// Whether the bytes just scanned are the bytes the blob's digest names, so that their findings
/// may be cached under it. Pack checks every blob against its digest only while writing the
/// bundle; without this, a source whose file does not match its digest (a doctored `oci:`
/// layout), or a file rewritten while it was scanned, would leave findings for other bytes
/// in the cache under that digest, for a later pack of the real bytes. In-memory blobs are
/// hashed; a source file hashed when the plan was made must still have the stamp it had then;
/// another source file is hashed after the scan and must not have changed since before it.
/// Files in the store's `blobs/` were written once, after their digest matched.
fn scanned_the_digests_bytes(
    b: &PlannedBlob,
    before: Option<airlock_bundle::writer::FileStamp>,
    store_blobs: &std::path::Path,
) -> bool {
    let now = |path: &std::path::Path| {
        std::fs::metadata(path)
            .ok()
            .map(|m| airlock_bundle::writer::FileStamp::of(&m))
    };
    match &b.data {
        BlobData::Bytes(bytes) => airlock_core::Sha256::digest(bytes) == b.digest,
        BlobData::File { path, .. } if path.starts_with(store_blobs) => true,
        BlobData::File {
            path,
            stamp: Some(stamp),
            ..
        } => before == Some(*stamp) && now(path) == Some(*stamp),
        BlobData::File {
            path,
            offset,
            stamp: None,
        } => {
            before.is_some()
                && hash_range(path, *offset, b.size).is_ok_and(|d| d == b.digest)
                && now(path) == before
        }
    }
}

/// SHA-256 of `len` bytes of `path` from `offset`.
fn hash_range(path: &std::path::Path, offset: u64, len: u64) -> std::io::Result<Digest> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let mut h = airlock_core::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], offset + done)?;
        h.update(&buf[..n]);
        done += n as u64;
    }
    Ok(h.finish())
}

fn scan_blob(
    job: &Job,
    limits: &airlock_scan::Limits,
    rules: &airlock_yara::RuleSet,
) -> Result<Vec<airlock_scan::Finding>> {
    let b = job.blob;
    let name = job.title.as_str();
    let scan = |src: &dyn airlock_scan::Source| -> std::io::Result<Vec<airlock_scan::Finding>> {
        match job.layer {
            Some(c) => airlock_scan::scan_layer(
                airlock_scan::SourceReader::new(src),
                c,
                name,
                limits,
                rules,
            ),
            None => airlock_scan::scan_source_with(src, name, limits, rules),
        }
    };
    Ok(match &b.data {
        BlobData::Bytes(bytes) => scan(&&bytes[..])?,
        BlobData::File { path, offset, .. } => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("scanning {}", path.display()))?;
            let src = FileRange {
                file,
                offset: *offset,
                len: b.size,
            };
            scan(&src).with_context(|| format!("scanning {}", path.display()))?
        }
    })
}

/// The manifests under an image root (the root itself, or an index's children that the plan
/// carries).
fn image_manifests(root: &[u8], blobs: &BTreeMap<Digest, &PlannedBlob>) -> Result<Vec<Manifest>> {
    let v: serde_json::Value = serde_json::from_slice(root).context("image manifest")?;
    if v.get("manifests").is_none() {
        return Ok(vec![serde_json::from_value(v).context("image manifest")?]);
    }
    let index: Index = serde_json::from_value(v).context("image index")?;
    let mut out = Vec::new();
    for d in &index.manifests {
        if let Some(b) = blobs.get(&d.digest) {
            if let BlobData::Bytes(bytes) = &b.data {
                let v: serde_json::Value =
                    serde_json::from_slice(bytes).context("image manifest")?;
                if v.get("layers").is_some() {
                    out.push(serde_json::from_value(v).context("image manifest")?);
                }
            }
        }
    }
    Ok(out)
}

/// What one artifact's scan found.
pub struct Scanned<'a> {
    pub artifact: &'a Artifact,
    /// Layers (blobs) scanned.
    pub files: usize,
    pub findings: Vec<airlock_scan::Finding>,
}

/// The scanner string recorded with results: scanner version, yara-x, rule-set digest, the
/// built-in globals allowlist's version and the operator's allowlist digest (when given).
pub fn scanner_id(rules: &airlock_yara::RuleSet, allow: &airlock_scan::AllowList) -> String {
    let operator = allow
        .sha256()
        .map(|d| format!("; allow-globals {d}"))
        .unwrap_or_default();
    format!(
        "{SCANNER}; {}; rules {}; globals {}{operator}",
        airlock_yara::YARA_X_VERSION,
        rules.id(),
        airlock_scan::allow::BUILTIN_ID,
    )
}

/// Scans every layer of the plan's images, models and files with `rules`, in parallel; globals
/// on `allow` (the operator's `--allow-globals`) are admitted in pickles. With a `cache`, a
/// layer whose findings it holds for this scanner (rules and allowlist included) is not scanned
/// again, and the findings of the layers scanned are stored in it.
pub fn scan_artifacts<'a>(
    plan: &'a Plan,
    rules: &airlock_yara::RuleSet,
    allow: &airlock_scan::AllowList,
    cache: Option<&ScanCache>,
) -> Result<Vec<Scanned<'a>>> {
    let scanner = scanner_id(rules, allow);
    let limits = airlock_scan::Limits {
        allow: allow.clone(),
        ..Default::default()
    };
    let blobs: BTreeMap<Digest, &PlannedBlob> = plan.blobs.iter().map(|b| (b.digest, b)).collect();
    let targets: Vec<&Artifact> = plan
        .artifacts
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                ArtifactKind::Model | ArtifactKind::File | ArtifactKind::Image | ArtifactKind::Debs
            )
        })
        .collect();
    // Every layer of every target, scanned in one parallel pass (artifacts are often one file).
    let mut jobs: Vec<Job> = Vec::new();
    let mut scanned: Vec<(&Artifact, usize)> = Vec::new();
    for a in targets {
        let Some(root) = blobs.get(&a.digest) else {
            continue; // carried by the appliance already (differential bundle)
        };
        let BlobData::Bytes(bytes) = &root.data else {
            continue;
        };
        let k = scanned.len();
        let mut n = 0;
        if a.kind == ArtifactKind::Image {
            let mut seen = std::collections::BTreeSet::new();
            for m in image_manifests(bytes, &blobs)? {
                for l in &m.layers {
                    let Some(b) = blobs.get(&l.digest) else {
                        continue; // already on the appliance, or a foreign layer
                    };
                    if !seen.insert(l.digest) {
                        continue;
                    }
                    jobs.push(Job {
                        artifact: k,
                        title: format!("{} layer {}", a.name, l.digest),
                        blob: b,
                        layer: airlock_scan::Compression::of_media_type(&l.media_type),
                    });
                    n += 1;
                }
            }
        } else {
            let m: Manifest = serde_json::from_slice(bytes).context("artifact manifest")?;
            for l in &m.layers {
                if let Some(b) = blobs.get(&l.digest) {
                    let title = l
                        .annotations
                        .get(media::ANNOTATION_TITLE)
                        .cloned()
                        .unwrap_or_else(|| "blob".into());
                    jobs.push(Job {
                        artifact: k,
                        title,
                        blob: b,
                        layer: None,
                    });
                    n += 1;
                }
            }
        }
        scanned.push((a, n));
    }
    let total: u64 = jobs.iter().map(|j| j.blob.size).sum();
    let bar = airlock_ui::Bar::bytes("scanning", total);
    let results: Vec<(usize, Vec<airlock_scan::Finding>)> = jobs
        .par_iter()
        .map(|job| {
            let f = match cache {
                None => scan_blob(job, &limits, rules)?,
                Some(c) => {
                    let key = job.key(&scanner);
                    match c.get(&key) {
                        Some(f) => {
                            c.stats.cached.fetch_add(1, Ordering::Relaxed);
                            f
                        }
                        None => {
                            let before = stat(job.blob);
                            let f = scan_blob(job, &limits, rules)?;
                            c.stats.scanned.fetch_add(1, Ordering::Relaxed);
                            if scanned_the_digests_bytes(job.blob, before, &c.store_blobs()) {
                                c.put(&key, &f);
                            }
                            f
                        }
                    }
                }
            };
            airlock_bundle::Progress::advance(&bar, job.blob.size);
            Ok((job.artifact, f))
        })
        .collect::<Result<_>>()?;
    bar.finish();
    let mut by_artifact: Vec<Vec<airlock_scan::Finding>> = vec![Vec::new(); scanned.len()];
    for (k, f) in results {
        by_artifact[k].extend(f);
    }
    Ok(scanned
        .into_iter()
        .zip(by_artifact)
        .map(|((artifact, files), findings)| Scanned {
            artifact,
            files,
            findings,
        })
        .collect())
}

/// Scans the plan's images, models and files with `rules`; adds attestation artifacts
/// (built by airlock-attest) to the plan and returns the scan records for the bundle manifest.
pub fn scan_plan(
    plan: &mut Plan,
    retrieved: &str,
    rules: &airlock_yara::RuleSet,
    allow: &airlock_scan::AllowList,
    cache: Option<&ScanCache>,
) -> Result<Vec<ScanRecord>> {
    let scanner = airlock_attest::Scanner {
        id: scanner_id(rules, allow),
        allow_globals: allow.sha256().map(str::to_string),
        rules_id: rules.id(),
        rule_files: rules
            .files()
            .iter()
            .map(|f| airlock_attest::RuleFile {
                namespace: f.namespace.clone(),
                origin: f.origin.clone(),
                sha256: f.sha256.clone(),
            })
            .collect(),
    };
    let attestations: Vec<airlock_attest::Attestation> = scan_artifacts(plan, rules, allow, cache)?
        .into_iter()
        .map(|s| {
            if !s.findings.is_empty() {
                tracing::warn!(artifact = %s.artifact.name, findings = s.findings.len(), "scanner findings (the import policy decides)");
            }
            airlock_attest::attest(s.artifact, s.files, &s.findings, &scanner, retrieved)
        })
        .collect();
    let mut records = Vec::new();
    let mut attachments = Vec::new();
    for a in attestations {
        records.push(a.record);
        attachments.push(airlock_attest::Attachment {
            artifact: a.artifact,
            index_entry: a.index_entry,
            blobs: a.blobs,
        });
    }
    add_to_plan(plan, attachments)?;
    Ok(records)
}

/// Adds attached artifacts to the plan: their blobs (once each), artifacts and `index.json`
/// entries.
pub fn add_to_plan(plan: &mut Plan, attachments: Vec<airlock_attest::Attachment>) -> Result<()> {
    let mut index: Index = serde_json::from_slice(&plan.index_json).context("index.json")?;
    for a in attachments {
        for (d, bytes) in a.blobs {
            if !plan.blobs.iter().any(|b| b.digest == d) {
                plan.blobs.push(PlannedBlob {
                    digest: d,
                    size: bytes.len() as u64,
                    data: BlobData::Bytes(Arc::from(bytes.as_slice())),
                });
            }
        }
        plan.artifacts.push(a.artifact);
        index.manifests.push(a.index_entry);
    }
    plan.index_json = serde_json::to_vec(&index).expect("index serializes");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_bundle::writer::FileStamp;
    use airlock_core::Sha256;

    fn file_blob(path: &std::path::Path, digest: Digest, stamp: Option<FileStamp>) -> PlannedBlob {
        PlannedBlob {
            digest,
            size: std::fs::metadata(path).unwrap().len(),
            data: BlobData::File {
                path: path.to_path_buf(),
                offset: 0,
                stamp,
            },
        }
    }

    #[test]
    fn only_findings_for_the_digests_bytes_are_cached() {
        let d = tempfile::tempdir().unwrap();
        let store_blobs = d.path().join("store/blobs");
        let p = d.path().join("layer.tar");
        std::fs::write(&p, b"the real bytes").unwrap();
        let real = Sha256::digest(b"the real bytes");
        let other = Sha256::digest(b"other bytes");

        // A source file not hashed yet: hashed after the scan.
        let b = file_blob(&p, real, None);
        assert!(scanned_the_digests_bytes(&b, stat(&b), &store_blobs));
        // A doctored layout: the file is not what its digest says.
        let b = file_blob(&p, other, None);
        assert!(!scanned_the_digests_bytes(&b, stat(&b), &store_blobs));
        // No stamp from before the scan (the file could not be read): not cached.
        let b = file_blob(&p, real, None);
        assert!(!scanned_the_digests_bytes(&b, None, &store_blobs));

        // A file hashed when the plan was made: cached while it keeps its stamp.
        let stamp = FileStamp::of(&std::fs::metadata(&p).unwrap());
        let b = file_blob(&p, real, Some(stamp));
        assert!(scanned_the_digests_bytes(&b, stat(&b), &store_blobs));
        let before = stat(&b);
        std::fs::write(&p, b"rewritten while scanned").unwrap();
        assert!(!scanned_the_digests_bytes(&b, before, &store_blobs));
        let b = file_blob(&p, real, None);
        assert!(!scanned_the_digests_bytes(&b, before, &store_blobs));

        // In-memory blobs are hashed.
        let mem = |digest| PlannedBlob {
            digest,
            size: 3,
            data: BlobData::Bytes(Arc::from(&b"abc"[..])),
        };
        assert!(scanned_the_digests_bytes(
            &mem(Sha256::digest(b"abc")),
            None,
            &store_blobs
        ));
        assert!(!scanned_the_digests_bytes(&mem(other), None, &store_blobs));

        // Store blobs were verified when written.
        std::fs::create_dir_all(store_blobs.join("sha256")).unwrap();
        let s = store_blobs.join("sha256").join(other.hex());
        std::fs::write(&s, b"whatever").unwrap();
        let b = file_blob(&s, other, None);
        assert!(scanned_the_digests_bytes(&b, stat(&b), &store_blobs));
    }
}
