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

use airlock_bundle::reader::{BlobSink, Hashed, Volume};
use airlock_bundle::{BundleError, Progress};
use airlock_catalog::{audit, Catalog, VolumeCommit};
use airlock_core::bundle::{Artifact, BlobRecord, BundleManifest, Statement};
use airlock_core::media;
use airlock_core::oci::{Descriptor, Index, Manifest, MAX_MANIFEST_BYTES};
use airlock_core::text::bound;
use airlock_core::time::{format_rfc3339, now};
use airlock_core::Digest;
use airlock_store::{BlobStore, BlobWriter};
use airlock_trust::TrustRoot;
use serde::Serialize;
use serde_json::json;

use crate::parts::{AssembleError, PartStaging};

/// Where rejected volumes are copied: `DATA/quarantine/`, or `quarantine/` in the object store.
pub const QUARANTINE: &str = "quarantine";
use crate::{Appliance, ApplianceError};

/// Test hook: the process kills itself with SIGKILL after writing this many blob bytes, to
/// prove crash safety at arbitrary points (see tests/e2e/import.rs). Read only when built with
/// the `fault-injection` feature, which release builds never enable.
pub const FAULT_KILL_AFTER_BYTES: &str = "AIRLOCK_FAULT_KILL_AFTER_BYTES";

/// Where a volume comes from, which decides whether airlockd may touch the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Media named on the command line: read only, never moved, renamed or removed (a DVD or a
    /// write-protected stick is read-only anyway). A rejected volume is *copied* to quarantine.
    Media,
    /// The appliance's own inbox: a rejected volume is copied to quarantine and then removed
    /// from the inbox; the watcher moves accepted ones to `done/`.
    Inbox,
}

/// How one volume's import ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Verified and recorded (its blobs are in the store).
    Accepted,
    /// The same volume was imported before; nothing changed.
    Duplicate,
    /// The volume is at fault (trust, integrity, rollback, policy, …); it was quarantined.
    Rejected,
    /// The appliance could not finish (disk full, I/O error); the volume is not at fault.
    Failed,
}

impl Status {
    /// The lower-case word used in JSON, the imports table and the watcher's lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Duplicate => "duplicate",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What happened to one volume.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub volume: PathBuf,
    pub status: Status,
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
    /// The rejection's kind (`trust`, `rollback`, `integrity`, …) when rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Where the quarantine copy of a rejected volume was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<PathBuf>,
    /// What could not be done with the file itself (a quarantine copy that failed, an inbox
    /// volume that could not be removed); the outcome and the audit log stand regardless.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// SHA-256 (hex) of the volume file as read, for the chain of custody (compare with the
    /// bill of lading written when it was packed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_sha256: Option<String>,
    /// Facts learnt while importing (trust root version, signer names, policy, scan summary,
    /// changes) that every audit entry of the outcome carries.
    #[serde(skip)]
    facts: serde_json::Map<String, serde_json::Value>,
}

impl Outcome {
    fn new(volume: &Path) -> Self {
        Outcome {
            volume: volume.to_path_buf(),
            status: Status::Accepted,
            bundle: None,
            name: None,
            volume_number: None,
            reason: String::new(),
            written: 0,
            skipped: 0,
            visible: vec![],
            kind: None,
            quarantined: None,
            note: None,
            volume_sha256: None,
            facts: serde_json::Map::new(),
        }
    }

    /// Accepted, or a duplicate of a volume already imported.
    pub fn ok(&self) -> bool {
        matches!(self.status, Status::Accepted | Status::Duplicate)
    }
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
pub(crate) fn anyhow_like(e: &dyn std::error::Error) -> String {
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
/// rejected volume leaves the store exactly as it was. The reader hashes every byte it hands
/// over and commits only what matched (the [`BlobSink`] contract), handing over the digest it
/// computed ([`Hashed`]); the store's writers check that against the digest and size each
/// writer was begun for instead of hashing the same bytes again.
struct ImportSink<'a> {
    store: &'a BlobStore,
    staging: &'a BlobStore,
    parts: &'a PartStaging,
    /// Parts this volume added to `parts`, removed again if the volume is refused.
    kept: Mutex<Vec<(BlobRecord, usize)>>,
    fault: Fault,
    /// Re-verify blobs the store already holds instead of skipping them.
    verify_present: bool,
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

impl Fault {
    /// The hook's setting: from the environment with the `fault-injection` feature, never
    /// without it.
    fn from_env() -> Self {
        #[cfg(feature = "fault-injection")]
        let kill_after = std::env::var(FAULT_KILL_AFTER_BYTES)
            .ok()
            .and_then(|v| v.parse().ok());
        #[cfg(not(feature = "fault-injection"))]
        let kill_after = None;
        Fault { kill_after }
    }
}

struct FaultWriter {
    inner: BlobWriter,
    fault: Fault,
    /// The digest and size the writer was begun for.
    expected: (Digest, u64),
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
        if !self.verify_present && self.store.contains(d, size) {
            return Ok(None);
        }
        let inner = self
            .staging
            .writer_hashed_by_caller()
            .map_err(std::io::Error::other)?;
        Ok(Some(FaultWriter {
            inner,
            fault: self.fault,
            expected: (*d, size),
        }))
    }
    fn commit(&self, w: FaultWriter, hashed: &Hashed) -> std::io::Result<()> {
        let (digest, size) = w.expected;
        w.inner
            .commit_hashed(hashed.digest(), &digest, Some(size))
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
            expected: (b.parts[i].digest, b.parts[i].size),
        }))
    }
    fn commit_part(
        &self,
        w: FaultWriter,
        b: &BlobRecord,
        i: usize,
        hashed: &Hashed,
    ) -> std::io::Result<()> {
        let p = &b.parts[i];
        w.inner
            .commit_hashed(hashed.digest(), &p.digest, Some(p.size))
            .map_err(std::io::Error::other)?;
        self.kept.lock().expect("lock").push((b.clone(), i));
        Ok(())
    }
}

impl Appliance {
    /// Imports volumes one by one; returns one outcome per volume. A volume that cannot be
    /// imported, for whatever reason, never stops the others.
    pub fn import(
        &mut self,
        volumes: &[PathBuf],
        origin: Origin,
        progress: &dyn Progress,
    ) -> Vec<Outcome> {
        let outcomes: Vec<Outcome> = volumes
            .iter()
            .map(|v| self.import_one(v, origin, progress))
            .collect();
        // A new database or new images change what is vulnerable: match again and record the
        // difference. A failure is logged; the import itself stands.
        if outcomes.iter().any(|o| o.status == Status::Accepted) {
            if let Err(e) = self.rematch() {
                tracing::error!(error = %anyhow_like(&e), "matching the served SBOMs against the vulnerability database failed");
            }
        }
        // Replicas follow the writer through published catalog snapshots. A failed publish
        // leaves them serving the previous one; the next import publishes again.
        if outcomes.iter().any(|o| o.status == Status::Accepted) {
            if let Err(e) = self.publish_snapshot() {
                tracing::error!(error = %anyhow_like(&e), "publishing the catalog snapshot for replicas failed");
            }
        }
        outcomes
    }

    fn import_one(&mut self, path: &Path, origin: Origin, progress: &dyn Progress) -> Outcome {
        let shown = path.display().to_string();
        let mut outcome = Outcome::new(path);
        let operator = self.operator.clone();
        outcome.facts.insert("operator".into(), json!(operator));
        if let Err(e) = self.audit(
            "import-started",
            json!({"volume": shown, "operator": operator}),
        ) {
            outcome.status = Status::Failed;
            outcome.reason = bound(&anyhow_like(&e));
            return outcome;
        }
        let (file, result) = match open_volume_file(path) {
            Ok(f) => {
                // The file's digest is computed beside the import, from the same open file,
                // and joined before the first outcome entry is written.
                let mut hashing = VolumeHash::start(&f);
                let r = self.try_import(path, &f, &mut outcome, &mut hashing, progress);
                hashing.settle(&mut outcome);
                (Some(f), r)
            }
            Err(r) => (None, Err(r)),
        };
        match result {
            Ok(()) => {}
            Err(Refusal::Reject { kind, reason }) => {
                let reason = bound(&reason);
                outcome.status = Status::Rejected;
                outcome.kind = Some(kind);
                outcome.reason = reason.clone();
                // The rejection is on record before anything else can fail.
                let bundle = outcome.bundle.clone();
                self.log_outcome(
                    &shown,
                    bundle.as_deref(),
                    Status::Rejected,
                    "import-rejected",
                    with_facts(
                        json!({"volume": shown, "bundle": bundle, "kind": kind, "reason": reason}),
                        &outcome.facts,
                    ),
                    &reason,
                );
                if let Some(f) = &file {
                    self.quarantine_volume(path, f, origin, kind, &mut outcome);
                }
                tracing::warn!(volume = %shown, "{}", Display(&reason));
            }
            Err(Refusal::Fail(e)) => {
                let reason = bound(&anyhow_like(&e));
                let bundle = outcome.bundle.clone();
                // Best effort: the failure may be a full disk that also refuses this write.
                self.log_outcome(
                    &shown,
                    bundle.as_deref(),
                    Status::Failed,
                    "import-failed",
                    with_facts(
                        json!({"volume": shown, "bundle": bundle, "reason": reason}),
                        &outcome.facts,
                    ),
                    &reason,
                );
                let _ = self.store.clean_temp();
                outcome.status = Status::Failed;
                outcome.reason = reason;
            }
        }
        outcome
    }

    /// Records an outcome in the imports table and the audit log, in one transaction; a
    /// failure to do so is logged (the disk may be full) and does not stop the batch.
    fn log_outcome(
        &mut self,
        shown: &str,
        bundle: Option<&str>,
        status: Status,
        audit_kind: &str,
        data: serde_json::Value,
        reason: &str,
    ) {
        let now_s = format_rfc3339(now());
        let Some(key) = self.key.as_ref() else {
            return;
        };
        let logged = self.catalog.write(|tx| {
            Catalog::record_import(tx, shown, bundle, status.as_str(), reason, &now_s)?;
            audit::append(tx, key, audit_kind, data, &now_s)?;
            Ok(())
        });
        match logged {
            Ok(()) => {
                if let Err(e) = self.write_head() {
                    tracing::error!("cannot update audit.head: {}", anyhow_like(&e));
                }
            }
            Err(e) => tracing::error!(
                "cannot record the {status} import of {shown}: {}",
                anyhow_like(&e)
            ),
        }
    }

    /// Copies a rejected volume into quarantine (and removes it from the inbox when it came
    /// from there), recording what happened to the file in the audit log and the outcome.
    fn quarantine_volume(
        &mut self,
        path: &Path,
        file: &fs::File,
        origin: Origin,
        kind: &'static str,
        outcome: &mut Outcome,
    ) {
        let shown = path.display().to_string();
        let now_s = format_rfc3339(now());
        let copied = self.quarantine(
            path,
            file,
            kind,
            &outcome.reason,
            outcome.bundle.as_deref(),
            &now_s,
        );
        let (entry, data) = match copied {
            Ok(q) => {
                let mut remove_error = None;
                if origin == Origin::Inbox {
                    if let Err(e) = fs::remove_file(path) {
                        outcome.note = Some(format!(
                            "copied to quarantine but could not be removed from the inbox: {e}"
                        ));
                        remove_error = Some(e.to_string());
                    }
                }
                let left = origin == Origin::Media || remove_error.is_some();
                outcome.quarantined = Some(q.clone());
                (
                    "volume-quarantined",
                    json!({"volume": shown, "quarantinedAs": q, "leftInPlace": left, "removeError": remove_error}),
                )
            }
            Err(e) => {
                let err = bound(&anyhow_like(&e));
                outcome.note = Some(format!("could not copy the volume into quarantine: {err}"));
                tracing::error!(volume = %shown, "could not copy the volume into quarantine: {err}");
                ("quarantine-failed", json!({"volume": shown, "error": err}))
            }
        };
        if let Err(e) = self.audit(entry, data) {
            tracing::error!("cannot record {entry} for {shown}: {}", anyhow_like(&e));
        }
    }

    fn try_import(
        &mut self,
        path: &Path,
        file: &fs::File,
        outcome: &mut Outcome,
        hashing: &mut VolumeHash,
        progress: &dyn Progress,
    ) -> Result<(), Refusal> {
        let t = airlock_core::time::now_checked().map_err(|e| {
            Refusal::Fail(ApplianceError::Usage(format!("cannot check expiry: {e}")))
        })?;
        let file = file
            .try_clone()
            .map_err(|e| Refusal::Fail(crate::io(path, "open volume")(e)))?;
        let vol = Volume::from_file(path, file).map_err(classify)?;
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
        record_bundle_facts(&mut outcome.facts, &root, &auth.signers, &m);

        // Duplicates and rollback.
        let known = self
            .catalog
            .bundle(&id)
            .map_err(|e| Refusal::Fail(e.into()))?;
        let restoring = known
            .as_ref()
            .is_some_and(|b| b.imported_volumes.contains(&vol.label.volume))
            && (self.verify_present
                || m.blobs_of_volume(vol.label.volume)
                    .any(|b| !self.store.contains(&b.digest, b.size)));
        if restoring {
            tracing::warn!(
                "volume {} of {} {} was imported before; re-verifying and restoring its blobs",
                vol.label.volume,
                m.name,
                m.version
            );
        }
        match &known {
            Some(b) if b.imported_volumes.contains(&vol.label.volume) && !restoring => {
                let now_s = format_rfc3339(now());
                let shown = path.display().to_string();
                let reason = format!(
                    "bundle {} {} volume {} was already imported; nothing to do",
                    m.name, m.version, vol.label.volume
                );
                let key = self
                    .key
                    .as_ref()
                    .ok_or_else(|| Refusal::Fail(crate::read_only()))?;
                hashing.settle(outcome);
                let data = with_facts(json!({"volume": shown, "bundle": id}), &outcome.facts);
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
                        audit::append(tx, key, "import-duplicate", data, &now_s)?;
                        Ok(())
                    })
                    .map_err(|e| Refusal::Fail(e.into()))?;
                self.write_head().map_err(Refusal::Fail)?;
                outcome.status = Status::Duplicate;
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
        let (sboms, vulnerabilities, vulndb) =
            crate::vuln::policy_inputs(self, &m, t).map_err(Refusal::Fail)?;
        let input = json!({
            "bundle": m, "bundleId": id, "signers": auth.signers, "volume": vol.label.volume,
            "findings": findings, "waivers": m.waivers,
            "sboms": sboms, "vulnerabilities": vulnerabilities, "vulndb": vulndb,
        });
        let decision = self
            .policy
            .evaluate(&input)
            .map_err(|e| Refusal::Fail(e.into()))?;
        outcome
            .facts
            .insert("policy".into(), json!(decision.policy));
        outcome
            .facts
            .insert("policySha256".into(), json!(decision.policy_sha256));
        if known.is_none() {
            self.audit(
                "policy-decision",
                json!({"bundle": id, "policy": decision.policy, "policySha256": decision.policy_sha256,
                       "allow": decision.allow, "reasons": decision.reasons}),
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
        let parts = PartStaging::new(&self.root, self.remote.as_ref());
        let sink = ImportSink {
            store: &self.store,
            staging: &staging,
            parts: &parts,
            kept: Mutex::new(Vec::new()),
            fault: Fault::from_env(),
            verify_present: self.verify_present,
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
        let key = self
            .key
            .as_ref()
            .ok_or_else(|| Refusal::Fail(crate::read_only()))?;
        let visible_names = outcome.visible.clone();
        let root_versions: Vec<u64> = new_roots.iter().map(|r| r.0).collect();
        hashing.settle(outcome);
        let facts = outcome.facts.clone();
        self.catalog
            .write(|tx| {
                for (v, bytes) in &new_roots {
                    Catalog::pin_root(tx, *v, bytes, &now_s)?;
                    audit::append(tx, key, "trust-root-updated", json!({"version": v, "bundle": id}), &now_s)?;
                }
                let changes = Catalog::commit_volume(
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
                    with_facts(
                        json!({"volume": shown, "bundle": id, "name": m.name, "version": m.version, "channel": m.channel,
                               "sequence": m.sequence, "volumeNumber": vol.label.volume, "signers": auth.signers,
                               "blobsWritten": report.verified.len(), "blobsPresent": report.skipped.len(), "visible": visible_names,
                               "changes": changes}),
                        &facts,
                    ),
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

    /// Copies a rejected volume into quarantine (temp name, fsync, rename) from the already
    /// open file, with a reason file beside it; returns the copy's path.
    fn quarantine(
        &self,
        path: &Path,
        file: &fs::File,
        kind: &str,
        reason: &str,
        bundle: Option<&str>,
        now_s: &str,
    ) -> Result<PathBuf, ApplianceError> {
        let qdir = self.root.join(QUARANTINE);
        fs::create_dir_all(&qdir).map_err(crate::io(&qdir, "create quarantine"))?;
        let name = path
            .file_name()
            .map(|n| sanitize_file_name(&n.to_string_lossy()))
            .unwrap_or_else(|| "volume".into());
        let stamp = now_s.replace(':', "");
        let mut dest = qdir.join(format!("{stamp}-{name}"));
        let mut n = 1;
        while dest.exists() {
            dest = qdir.join(format!("{stamp}-{n}-{name}"));
            n += 1;
        }
        if let Some(remote) = &self.remote {
            return self.quarantine_remote(remote, &dest, path, file, kind, reason, bundle, now_s);
        }
        copy_open_file(file, &dest)?;
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
        Ok(dest)
    }

    /// Quarantine on an object-store appliance: the copy is made locally from the open file
    /// (as on a directory appliance), uploaded to `quarantine/<name>` in the bucket with its
    /// reason beside it, and removed locally; returns the object's `s3://` name.
    #[allow(clippy::too_many_arguments)]
    fn quarantine_remote(
        &self,
        remote: &crate::remote::Remote,
        local: &Path,
        path: &Path,
        file: &fs::File,
        kind: &str,
        reason: &str,
        bundle: Option<&str>,
        now_s: &str,
    ) -> Result<PathBuf, ApplianceError> {
        let file_name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "volume".into());
        let (stem, mut key, mut n) = (file_name.clone(), format!("{QUARANTINE}/{file_name}"), 1);
        while remote.exists(&key)? {
            key = format!("{QUARANTINE}/{n}-{stem}");
            n += 1;
        }
        copy_open_file(file, local)?;
        let shown = remote.object_url(&key);
        let reason_doc = json!({
            "volume": shown, "originalPath": path, "kind": kind, "reason": reason, "bundle": bundle, "time": now_s,
        });
        let res = remote.put_file(&key, local).and_then(|_| {
            remote.put_object(
                &format!("{key}.reason.json"),
                serde_json::to_string_pretty(&reason_doc)
                    .expect("JSON")
                    .as_bytes(),
            )
        });
        let _ = fs::remove_file(local);
        res?;
        Ok(PathBuf::from(shown))
    }
}

/// The SHA-256 and size of a volume file, computed on a thread beside the import.
struct VolumeHash(Option<std::thread::JoinHandle<Result<(String, u64), String>>>);

impl VolumeHash {
    fn start(f: &fs::File) -> Self {
        match f.try_clone() {
            Ok(c) => VolumeHash(Some(std::thread::spawn(move || {
                airlock_store::hash_open_file(&c, |_| {})
                    .map(|(d, n)| (d.hex(), n))
                    .map_err(|e| e.to_string())
            }))),
            Err(e) => {
                tracing::warn!("cannot compute the volume's SHA-256: {e}");
                VolumeHash(None)
            }
        }
    }

    /// Waits for the digest (once) and records it in the outcome.
    fn settle(&mut self, outcome: &mut Outcome) {
        let Some(h) = self.0.take() else { return };
        match h
            .join()
            .unwrap_or_else(|_| Err("the hashing thread panicked".into()))
        {
            Ok((digest, size)) => {
                outcome.facts.insert("volumeSha256".into(), json!(digest));
                outcome.facts.insert("volumeSize".into(), json!(size));
                outcome.volume_sha256 = Some(digest);
            }
            Err(e) => tracing::warn!(
                volume = %outcome.volume.display(),
                "cannot compute the volume's SHA-256: {e}"
            ),
        }
    }
}

/// What an authenticated manifest tells the audit record: the trust root version in force, the
/// names the root gives the signers' keys, the scanner and rule set with a findings summary
/// per artifact, and the waivers carried.
fn record_bundle_facts(
    facts: &mut serde_json::Map<String, serde_json::Value>,
    root: &TrustRoot,
    signers: &[String],
    m: &airlock_core::bundle::BundleManifest,
) {
    facts.insert("trustRootVersion".into(), json!(root.meta.version));
    if let Some(role) = root.meta.roles.get(airlock_trust::root::ROLE_BUNDLE) {
        facts.insert("threshold".into(), json!(role.threshold));
    }
    let names: serde_json::Map<String, serde_json::Value> = signers
        .iter()
        .filter_map(|id| {
            let l = root.label(id);
            (l.name.is_some() || l.role.is_some())
                .then(|| (id.clone(), json!({"name": l.name, "role": l.role})))
        })
        .collect();
    facts.insert("signerNames".into(), serde_json::Value::Object(names));
    let scan: Vec<serde_json::Value> = m
        .scan
        .iter()
        .map(|r| {
            let by = r.by_severity();
            json!({"artifact": r.artifact, "scanner": r.scanner, "files": r.files, "findings": by})
        })
        .collect();
    facts.insert("scan".into(), json!(scan));
    let waivers: Vec<serde_json::Value> = m
        .waivers
        .iter()
        .map(|w| json!({"artifact": w.artifact, "finding": w.finding, "file": w.file, "reason": w.reason}))
        .collect();
    facts.insert("waivers".into(), json!(waivers));
}

/// `data` (an object) with every fact of the outcome added.
fn with_facts(
    mut data: serde_json::Value,
    facts: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    if let Some(o) = data.as_object_mut() {
        for (k, v) in facts {
            o.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    data
}

/// Opens a volume without following a symbolic link and without blocking on a FIFO or a
/// device, and refuses anything that is not a regular file (checked again on the open
/// descriptor, so the file cannot be swapped between the check and the read).
fn open_volume_file(path: &Path) -> Result<fs::File, Refusal> {
    use std::os::unix::fs::OpenOptionsExt;
    let not_regular = |what: &str| {
        reject(
            "not-a-regular-file",
            format!(
                "{} is {what}, not a regular file; refusing to follow or read it",
                path.display()
            ),
        )
    };
    let meta =
        fs::symlink_metadata(path).map_err(|e| Refusal::Fail(crate::io(path, "open volume")(e)))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Err(not_regular("a symbolic link"));
    }
    if !ft.is_file() {
        return Err(not_regular(if ft.is_dir() {
            "a directory"
        } else {
            "a FIFO, socket or device"
        }));
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                not_regular("a symbolic link")
            } else {
                Refusal::Fail(crate::io(path, "open volume")(e))
            }
        })?;
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        Ok(_) => Err(not_regular("no longer a regular file")),
        Err(e) => Err(Refusal::Fail(crate::io(path, "stat volume")(e))),
    }
}

/// Copies an open file (from its start, without moving its offset) to `dest` atomically:
/// a temp file beside it, fsync, rename, fsync of the directory.
fn copy_open_file(file: &fs::File, dest: &Path) -> Result<(), ApplianceError> {
    use std::os::unix::fs::FileExt;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let r = (|| -> std::io::Result<()> {
        let mut out = fs::File::create(&tmp)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0u64;
        loop {
            let n = file.read_at(&mut buf, off)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            off += n as u64;
        }
        out.sync_all()?;
        fs::rename(&tmp, dest)?;
        fs::File::open(dir)?.sync_all()
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r.map_err(crate::io(dest, "copy volume into quarantine"))
}

/// A file name from the medium made safe to use inside quarantine: no control characters.
fn sanitize_file_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

/// Renames, or copies and removes across file systems (an inbox on a USB disk to `done/`).
/// Never follows a symbolic link at the source.
pub(crate) fn move_file(from: &Path, to: &Path) -> Result<(), ApplianceError> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let src = open_volume_file(from).map_err(|r| match r {
                Refusal::Fail(e) => e,
                Refusal::Reject { reason, .. } => ApplianceError::Usage(reason),
            })?;
            copy_open_file(&src, to)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Release builds leave out the `fault-injection` feature: the kill hook's variable is
    /// ignored however it is set.
    #[cfg(not(feature = "fault-injection"))]
    #[test]
    fn without_the_feature_the_fault_hook_is_ignored() {
        std::env::set_var(FAULT_KILL_AFTER_BYTES, "1");
        assert!(Fault::from_env().kill_after.is_none());
    }

    #[test]
    fn symlinks_fifos_and_directories_are_refused_without_being_opened() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"secret").unwrap();
        let link = dir.path().join("steal.tar.zst");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let fifo = dir.path().join("fifo.tar.zst");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        for (p, what) in [
            (&link, "a symbolic link"),
            (&fifo, "a FIFO"),
            (&dir.path().to_path_buf(), "a directory"),
        ] {
            match open_volume_file(p) {
                Err(Refusal::Reject { kind, reason }) => {
                    assert_eq!(kind, "not-a-regular-file");
                    assert!(reason.contains(what), "{reason}");
                }
                _ => panic!("{} was not refused", p.display()),
            }
        }
        assert!(open_volume_file(&secret).is_ok());
    }
}
