//! Importing volumes: verify everything before writing a byte, then write crash-safely.
//!
//! For each volume, in order:
//! 1. open it (bounded metadata read, frame index);
//! 2. apply any newer trust roots the bundle carries, each chained from the one before
//!    (threshold of old and new root keys), starting at the pinned root;
//! 3. verify the signed manifest: threshold of distinct trusted, unrevoked signers, expiry
//!    (with the configured clock skew), volume label;
//! 4. duplicates are a no-op; otherwise the sequence must exceed the channel's last;
//! 5. a differential bundle's external blobs must all be present;
//! 6. the policy must admit it (decision recorded);
//! 7. stream every blob into a staging store beside the store (temp file, hash, fsync, rename;
//!    blobs the store already holds are skipped: their stored copy was verified when written),
//!    and move the staged blobs into the store only once the whole volume verified; parts of
//!    split blobs are kept in `staging-parts/` until every part is there, then assembled into
//!    the store (see [`crate::parts`]);
//! 8. one SQLite transaction records the volume, its blobs, and the artifacts whose whole
//!    closure is now present — only those become visible.
//!
//! A volume refused by 1–6 or whose content fails verification in 7 is moved to
//! `quarantine/` with a `.reason.json`. A failure of the appliance itself (disk full, I/O
//! error) leaves the volume where it is. Either way the store is unchanged by a refused volume
//! and nothing half-written becomes visible: blobs reach the store only after the whole volume
//! verified, and the catalog only names artifacts whose closure is complete.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use airlock_bundle::reader::{BlobSink, Volume};
use airlock_bundle::{BundleError, Progress};
use airlock_catalog::{audit, Catalog, VolumeCommit};
use airlock_core::bundle::{Artifact, BlobRecord, BundleManifest, Statement};
use airlock_core::media;
use airlock_core::oci::{Descriptor, Index, Manifest, MAX_MANIFEST_BYTES};
use airlock_core::time::{format_rfc3339, now};
use airlock_core::Digest;
use airlock_store::{BlobStore, BlobWriter};
use airlock_trust::TrustRoot;
use serde::Serialize;
use serde_json::json;

use crate::parts::{AssembleError, PartStaging};
use crate::{Appliance, ApplianceError};

/// Test hook: the process kills itself with SIGKILL after writing this many blob bytes, to
/// prove crash safety at arbitrary points (see tests/e2e/import.rs).
pub const FAULT_KILL_AFTER_BYTES: &str = "AIRLOCK_FAULT_KILL_AFTER_BYTES";

/// What happened to one volume.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub volume: PathBuf,
    /// `accepted`, `duplicate`, `rejected` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_number: Option<u32>,
    pub reason: String,
    /// Blobs written / already present.
    pub written: usize,
    pub skipped: usize,
    /// Artifacts that became visible with this volume.
    pub visible: Vec<String>,
    /// Where the volume was moved when quarantined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<PathBuf>,
}

/// Why a volume was refused. `Reject` quarantines; `Fail` does not (the volume is not at fault).
enum Refusal {
    Reject { kind: &'static str, reason: String },
    Fail(ApplianceError),
}

fn reject(kind: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal::Reject {
        kind,
        reason: reason.into(),
    }
}

fn classify(e: BundleError) -> Refusal {
    match e {
        BundleError::Sink { .. } | BundleError::Io { .. } => Refusal::Fail(e.into()),
        BundleError::Untrusted { .. } => reject("trust", format!("{:#}", anyhow_like(&e))),
        BundleError::Expired { .. } => reject("expired", e.to_string()),
        other => reject("integrity", format!("{:#}", anyhow_like(&other))),
    }
}

/// `err: cause: cause` without pulling anyhow into a library.
fn anyhow_like(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

struct Display<'a>(&'a str);
impl std::fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Writes verified blobs into a staging store, skipping those the main store already holds.
/// The staging store is published into the main one only when the whole volume verified, so a
/// rejected volume leaves the store exactly as it was.
struct ImportSink<'a> {
    store: &'a BlobStore,
    staging: &'a BlobStore,
    parts: &'a PartStaging,
    /// Parts this volume added to `parts`, removed again if the volume is refused.
    kept: Mutex<Vec<(BlobRecord, usize)>>,
    fault: Fault,
}

impl ImportSink<'_> {
    fn discard_kept_parts(&self) {
        for (b, i) in self.kept.lock().expect("lock").iter() {
            self.parts.remove(b, *i);
        }
    }
}

/// Blob bytes written by this process, for fault injection across all volumes of one run.
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Fault injection setting shared by all writers.
#[derive(Clone, Copy)]
struct Fault {
    kill_after: Option<u64>,
}

struct FaultWriter {
    inner: BlobWriter,
    fault: Fault,
}

impl Write for FaultWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(limit) = self.fault.kill_after {
            let before = WRITTEN.fetch_add(n as u64, Ordering::SeqCst);
            if before + n as u64 >= limit {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &std::process::id().to_string()])
                    .status();
                std::thread::sleep(std::time::Duration::from_secs(10));
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl BlobSink for ImportSink<'_> {
    type Writer = FaultWriter;
    fn begin(&self, d: &Digest, size: u64) -> std::io::Result<Option<FaultWriter>> {
        if self.store.contains(d, size) {
            return Ok(None);
        }
        let inner = self.staging.writer().map_err(std::io::Error::other)?;
        Ok(Some(FaultWriter {
            inner,
            fault: self.fault,
        }))
    }
    fn commit(&self, w: FaultWriter, d: &Digest) -> std::io::Result<()> {
        w.inner
            .commit(d, None)
            .map(|_| ())
            .map_err(std::io::Error::other)
    }
    fn begin_part(&self, b: &BlobRecord, i: usize) -> std::io::Result<Option<FaultWriter>> {
        if self.store.contains(&b.digest, b.size) || self.parts.has(b, i) {
            return Ok(None);
        }
        let inner = self.parts.writer(b).map_err(std::io::Error::other)?;
        Ok(Some(FaultWriter {
            inner,
            fault: self.fault,
        }))
    }
    fn commit_part(&self, w: FaultWriter, b: &BlobRecord, i: usize) -> std::io::Result<()> {
        let p = &b.parts[i];
        w.inner
            .commit(&p.digest, Some(p.size))
            .map_err(std::io::Error::other)?;
        self.kept.lock().expect("lock").push((b.clone(), i));
        Ok(())
    }
}

impl Appliance {
    /// Imports volumes one by one; returns one outcome per volume.
    pub fn import(
        &mut self,
        volumes: &[PathBuf],
        progress: &dyn Progress,
    ) -> Result<Vec<Outcome>, ApplianceError> {
        let mut out = Vec::new();
        for v in volumes {
            out.push(self.import_one(v, progress)?);
        }
        Ok(out)
    }

    fn import_one(
        &mut self,
        path: &Path,
        progress: &dyn Progress,
    ) -> Result<Outcome, ApplianceError> {
        let shown = path.display().to_string();
        self.audit("import-started", json!({"volume": shown}))?;
        let mut outcome = Outcome {
            volume: path.to_path_buf(),
            status: "accepted",
            bundle: None,
            name: None,
            volume_number: None,
            reason: String::new(),
            written: 0,
            skipped: 0,
            visible: vec![],
            quarantined: None,
        };
        match self.try_import(path, &mut outcome, progress) {
            Ok(()) => Ok(outcome),
            Err(Refusal::Reject { kind, reason }) => {
                let now_s = format_rfc3339(now());
                let q = self.quarantine(path, kind, &reason, outcome.bundle.as_deref(), &now_s)?;
                let key = &self.key;
                let bundle = outcome.bundle.clone();
                self.catalog.write(|tx| {
                    Catalog::record_import(tx, &shown, bundle.as_deref(), "rejected", &reason, &now_s)?;
                    audit::append(
                        tx,
                        key,
                        "import-rejected",
                        json!({"volume": shown, "bundle": bundle, "kind": kind, "reason": reason, "quarantinedAs": q}),
                        &now_s,
                    )?;
                    Ok(())
                })?;
                self.write_head()?;
                outcome.status = "rejected";
                outcome.reason = reason;
                outcome.quarantined = Some(q);
                Ok(outcome)
            }
            Err(Refusal::Fail(e)) => {
                let reason = anyhow_like(&e);
                let now_s = format_rfc3339(now());
                let key = &self.key;
                let bundle = outcome.bundle.clone();
                // Best effort: the failure may be a full disk that also refuses this write.
                let logged = self.catalog.write(|tx| {
                    Catalog::record_import(
                        tx,
                        &shown,
                        bundle.as_deref(),
                        "failed",
                        &reason,
                        &now_s,
                    )?;
                    audit::append(
                        tx,
                        key,
                        "import-failed",
                        json!({"volume": shown, "bundle": bundle, "reason": reason}),
                        &now_s,
                    )?;
                    Ok(())
                });
                if logged.is_ok() {
                    let _ = self.write_head();
                }
                let _ = self.store.clean_temp();
                outcome.status = "failed";
                outcome.reason = reason;
                Ok(outcome)
            }
        }
    }

    fn try_import(
        &mut self,
        path: &Path,
        outcome: &mut Outcome,
        progress: &dyn Progress,
    ) -> Result<(), Refusal> {
        let t = now();
        let vol = Volume::open(path).map_err(classify)?;
        let (unverified, _) = vol.statement_unverified().map_err(classify)?;
        outcome.volume_number = Some(vol.label.volume);

        // Trust roots carried by the bundle, applied in order from the pinned one.
        let mut root = self.trust.clone();
        let mut new_roots: Vec<(u64, Vec<u8>)> = Vec::new();
        for (i, doc) in unverified.predicate.trust_roots.iter().enumerate() {
            let bytes = serde_json::to_vec(doc).expect("JSON value serializes");
            if let Ok(probe) = TrustRoot::load_initial(&bytes, 0) {
                if probe.meta.version <= root.meta.version {
                    continue; // already applied
                }
            }
            root = root.update(&bytes, t).map_err(|e| {
                reject(
                    "trust-root",
                    format!(
                        "trust root #{} carried by the bundle does not chain from pinned version {}: {}",
                        i + 1,
                        root.meta.version,
                        anyhow_like(&e)
                    ),
                )
            })?;
            new_roots.push((root.meta.version, bytes));
        }

        let auth = vol
            .authenticate(&root, t, self.clock_skew)
            .map_err(classify)?;
        let m = auth.manifest().clone();
        let id = auth.bundle_id;
        outcome.bundle = Some(id.to_string());
        outcome.name = Some(format!("{} {}", m.name, m.version));

        // Duplicates and rollback.
        let known = self
            .catalog
            .bundle(&id)
            .map_err(|e| Refusal::Fail(e.into()))?;
        match &known {
            Some(b) if b.imported_volumes.contains(&vol.label.volume) => {
                let now_s = format_rfc3339(now());
                let shown = path.display().to_string();
                let reason = format!(
                    "bundle {} {} volume {} was already imported; nothing to do",
                    m.name, m.version, vol.label.volume
                );
                let key = &self.key;
                self.catalog
                    .write(|tx| {
                        Catalog::record_import(
                            tx,
                            &shown,
                            Some(&id.to_string()),
                            "duplicate",
                            &reason,
                            &now_s,
                        )?;
                        audit::append(
                            tx,
                            key,
                            "import-duplicate",
                            json!({"volume": shown, "bundle": id}),
                            &now_s,
                        )?;
                        Ok(())
                    })
                    .map_err(|e| Refusal::Fail(e.into()))?;
                self.write_head().map_err(Refusal::Fail)?;
                outcome.status = "duplicate";
                outcome.reason = reason;
                return Ok(());
            }
            Some(_) => {}
            None => {
                if let Some((last, last_bundle)) = self
                    .catalog
                    .channel_sequence(&m.channel)
                    .map_err(|e| Refusal::Fail(e.into()))?
                {
                    if m.sequence <= last {
                        return Err(reject(
                            "rollback",
                            format!(
                                "rollback refused: bundle {} {} has sequence {} on channel {:?}, not greater than {} (bundle {}) already imported",
                                m.name, m.version, m.sequence, m.channel, last, last_bundle
                            ),
                        ));
                    }
                }
            }
        }

        // A differential bundle needs its base.
        let missing: Vec<String> = m
            .external
            .iter()
            .filter(|e| !self.store.contains(&e.digest, e.size))
            .map(|e| e.digest.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(reject(
                "differential-base",
                format!(
                    "differential bundle built against inventory {} needs {} blob(s) this appliance does not hold (first: {}); import the bundle it was based on first",
                    m.base_inventory.map(|d| d.to_string()).unwrap_or_default(),
                    missing.len(),
                    missing[0]
                ),
            ));
        }

        // Policy, over the signed scan results too.
        let findings: Vec<serde_json::Value> = m
            .scan
            .iter()
            .flat_map(|r| {
                r.findings.iter().map(move |f| {
                    let mut f = f.clone();
                    f["artifact"] = json!(r.artifact);
                    f
                })
            })
            .collect();
        let input = json!({
            "bundle": m, "bundleId": id, "signers": auth.signers, "volume": vol.label.volume,
            "findings": findings, "waivers": m.waivers,
        });
        let decision = self
            .policy
            .evaluate(&input)
            .map_err(|e| Refusal::Fail(e.into()))?;
        if known.is_none() {
            self.audit(
                "policy-decision",
                json!({"bundle": id, "policy": decision.policy, "allow": decision.allow, "reasons": decision.reasons}),
            )
            .map_err(Refusal::Fail)?;
        }
        if !decision.allow {
            return Err(reject(
                "policy",
                format!(
                    "policy {} denied the bundle: {}",
                    decision.policy,
                    decision.reasons.join("; ")
                ),
            ));
        }

        // Content, into a staging store first.
        let staging_dir = self.root.join("staging").join(id.hex());
        let _ = fs::remove_dir_all(&staging_dir);
        let staging = BlobStore::open(&staging_dir).map_err(|e| Refusal::Fail(e.into()))?;
        let parts = PartStaging::new(&self.root);
        let sink = ImportSink {
            store: &self.store,
            staging: &staging,
            parts: &parts,
            kept: Mutex::new(Vec::new()),
            fault: Fault {
                kill_after: std::env::var(FAULT_KILL_AFTER_BYTES)
                    .ok()
                    .and_then(|v| v.parse().ok()),
            },
        };
        let read = vol.read_blobs(&m, &sink, progress);
        let report = match read {
            Ok(r) => r,
            Err(e) => {
                let _ = fs::remove_dir_all(&staging_dir);
                sink.discard_kept_parts();
                return Err(classify(e));
            }
        };
        let published = report
            .verified
            .iter()
            .try_for_each(|d| self.store.adopt(&staging, d))
            .and_then(|_| self.store.sync());
        let _ = fs::remove_dir_all(&staging_dir);
        published.map_err(|e| Refusal::Fail(e.into()))?;
        let split = crate::parts::finish_volume(&parts, &self.store, &m, vol.label.volume)
            .map_err(|e| match e {
                AssembleError::Inconsistent(reason) => reject("integrity", reason),
                AssembleError::Appliance(e) => Refusal::Fail(e),
            })?;
        outcome.written = report.verified.len();
        outcome.skipped = report.skipped.len();

        // Visibility: artifacts whose whole closure is in the store.
        let mut visible: Vec<&Artifact> = Vec::new();
        for a in &m.artifacts {
            if closure_complete(&self.store, a).map_err(Refusal::Fail)? {
                visible.push(a);
            }
        }
        outcome.visible = visible
            .iter()
            .map(|a| format!("{} {}", a.kind, a.name))
            .collect();
        let blobs: Vec<(Digest, u64)> = m
            .blobs_of_volume(vol.label.volume)
            .map(|b| (b.digest, b.size))
            .chain(split)
            .collect();
        let raw_statement = vol
            .envelope
            .payload_unverified()
            .map_err(|e| reject("integrity", e.to_string()))?;
        let now_s = format_rfc3339(now());
        let shown = path.display().to_string();
        let key = &self.key;
        let visible_names = outcome.visible.clone();
        let root_versions: Vec<u64> = new_roots.iter().map(|r| r.0).collect();
        self.catalog
            .write(|tx| {
                for (v, bytes) in &new_roots {
                    Catalog::pin_root(tx, *v, bytes, &now_s)?;
                    audit::append(tx, key, "trust-root-updated", json!({"version": v, "bundle": id}), &now_s)?;
                }
                Catalog::commit_volume(
                    tx,
                    &VolumeCommit {
                        bundle_id: &id,
                        statement: &raw_statement,
                        manifest: &m,
                        signers: &auth.signers,
                        volume: vol.label.volume,
                        blobs: &blobs,
                        visible: &visible,
                        now: &now_s,
                    },
                )?;
                Catalog::record_import(tx, &shown, Some(&id.to_string()), "accepted", "", &now_s)?;
                audit::append(
                    tx,
                    key,
                    "import-accepted",
                    json!({"volume": shown, "bundle": id, "name": m.name, "version": m.version, "channel": m.channel,
                           "sequence": m.sequence, "volumeNumber": vol.label.volume, "signers": auth.signers,
                           "blobsWritten": report.verified.len(), "blobsPresent": report.skipped.len(), "visible": visible_names}),
                    &now_s,
                )?;
                Ok(())
            })
            .map_err(|e| Refusal::Fail(e.into()))?;
        if let Some((v, bytes)) = new_roots.last() {
            airlock_store::write_atomic(&self.root.join("trust/root.json"), bytes)
                .map_err(|e| Refusal::Fail(e.into()))?;
            self.trust = TrustRoot::load_initial(bytes, 0).map_err(|e| Refusal::Fail(e.into()))?;
            tracing::info!(
                version = v,
                "trust root updated from bundle (versions {root_versions:?})"
            );
        }
        self.write_head().map_err(Refusal::Fail)?;
        Ok(())
    }

    /// Moves a rejected volume into quarantine with a reason file; returns its new path.
    fn quarantine(
        &self,
        path: &Path,
        kind: &str,
        reason: &str,
        bundle: Option<&str>,
        now_s: &str,
    ) -> Result<PathBuf, ApplianceError> {
        let qdir = self.root.join("quarantine");
        fs::create_dir_all(&qdir).map_err(crate::io(&qdir, "create quarantine"))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "volume".into());
        let stamp = now_s.replace(':', "");
        let mut dest = qdir.join(format!("{stamp}-{name}"));
        let mut n = 1;
        while dest.exists() {
            dest = qdir.join(format!("{stamp}-{n}-{name}"));
            n += 1;
        }
        move_file(path, &dest)?;
        let reason_doc = json!({
            "volume": dest, "originalPath": path, "kind": kind, "reason": reason, "bundle": bundle, "time": now_s,
        });
        let mut reason_path = dest.clone().into_os_string();
        reason_path.push(".reason.json");
        airlock_store::write_atomic(
            Path::new(&reason_path),
            serde_json::to_string_pretty(&reason_doc)
                .expect("JSON")
                .as_bytes(),
        )?;
        tracing::warn!(volume = %path.display(), quarantine = %dest.display(), "{}", Display(reason));
        Ok(dest)
    }
}

/// Renames, or copies and removes across file systems (a USB disk to the data disk).
pub(crate) fn move_file(from: &Path, to: &Path) -> Result<(), ApplianceError> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(18) => {
            fs::copy(from, to).map_err(crate::io(to, "copy volume"))?;
            fs::File::open(to)
                .and_then(|f| f.sync_all())
                .map_err(crate::io(to, "sync volume"))?;
            fs::remove_file(from).map_err(crate::io(from, "remove volume"))
        }
        Err(e) => Err(crate::io(from, "move volume")(e)),
    }
}

/// Is every blob of the artifact's closure present (index → manifests → config and layers)?
/// Children of an index for platforms the bundle left out are not required.
pub fn closure_complete(store: &BlobStore, a: &Artifact) -> Result<bool, ApplianceError> {
    let omitted: BTreeSet<&str> = a.platforms_omitted.iter().map(String::as_str).collect();
    let mut stack = vec![(a.digest, a.size, a.media_type.clone())];
    let mut seen = BTreeSet::new();
    while let Some((d, size, mt)) = stack.pop() {
        if !seen.insert(d) {
            continue;
        }
        if !store.contains(&d, size) {
            return Ok(false);
        }
        if media::is_index(&mt) {
            let ix: Index = parse_json(store, &d)?;
            for c in ix.manifests {
                if c.platform
                    .as_ref()
                    .is_some_and(|p| omitted.contains(p.key().as_str()))
                {
                    continue;
                }
                stack.push((c.digest, c.size, c.media_type));
            }
        } else if media::is_manifest(&mt) {
            let m: Manifest = parse_json(store, &d)?;
            let children: Vec<Descriptor> = std::iter::once(m.config).chain(m.layers).collect();
            for c in children {
                stack.push((c.digest, c.size, c.media_type));
            }
        }
    }
    Ok(true)
}

fn parse_json<T: serde::de::DeserializeOwned>(
    store: &BlobStore,
    d: &Digest,
) -> Result<T, ApplianceError> {
    let bytes = store.read_verified(d, MAX_MANIFEST_BYTES)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApplianceError::Usage(format!("stored blob {d} is not a valid OCI document: {e}"))
    })
}

/// The bundle manifests recorded in the catalog, parsed (for fsck and listings).
pub fn recorded_manifests(
    catalog: &Catalog,
) -> Result<Vec<(String, BundleManifest)>, ApplianceError> {
    catalog
        .statements()?
        .into_iter()
        .map(|(id, st)| {
            Statement::parse(&st)
                .map(|s| (id.clone(), s.predicate))
                .map_err(|e| ApplianceError::Usage(format!("catalog bundle {id}: {e}")))
        })
        .collect()
}
