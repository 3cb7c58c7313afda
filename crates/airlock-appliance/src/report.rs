//! Compliance reports (`airlockd report`): the transfer register, the inventory of what is
//! served, and the integrity of the record, built from the catalog and the audit log.
//!
//! * [`Appliance::report`] reads (never writes) the catalog and the audit log and returns a
//!   typed [`Report`]; [`Report::render`] turns it into JSON, CSV (RFC 4180) or one
//!   self-contained HTML page; [`Appliance::sign_report`] signs a small [`Statement`] about the
//!   rendered bytes (their SHA-256, the kind, the period and the audit range covered) as a DSSE
//!   envelope with the appliance key.
//! * Deterministic: the report holds no clock reading except the period's end (`--to`, which
//!   defaults to the time of the request), and every list is sorted, so the same data directory
//!   and period render to the same bytes. What the report covers of the audit log is the entries
//!   whose time lies in the period; the head hash named is the hash of the last of them, which
//!   commits to every entry before it through the chain.
//! * The transfer register is read from the audit log, the tamper-evident record of every
//!   import attempt (`import-started`, then `import-accepted`, `import-duplicate`,
//!   `import-rejected` or `import-failed`, and `volume-quarantined` after a rejection), with
//!   bundle details from the catalog where the log names only the bundle id.

use std::collections::BTreeMap;

use airlock_catalog::audit::Entry;
use airlock_catalog::ServedRow;
use airlock_core::time::{format_rfc3339, parse_rfc3339, UnixTime};
use airlock_core::Sha256;
use airlock_report::{bar_chart, csv, dash, html, opt, page, Markup};
use airlock_trust::{Envelope, Signer, TrustRoot};
use serde::Serialize;
use serde_json::Value;

use crate::{Appliance, ApplianceError};

/// DSSE payload type of the signed statement beside a report.
pub const PAYLOAD_TYPE: &str = "application/vnd.airlock.report.v1+json";
/// `_type` of the report document (JSON format).
pub const REPORT_TYPE: &str = "airlock-report/v1";
/// `_type` of the signed statement.
pub const STATEMENT_TYPE: &str = "airlock-report-statement/v1";

/// What a report answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One row per import attempt in the period.
    Transfers,
    /// Everything served now.
    Inventory,
    /// Served names whose digest changed in the period: previous → new.
    Changes,
    /// All of them, plus exceptions and the integrity of the record.
    Full,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Transfers => "transfers",
            Kind::Inventory => "inventory",
            Kind::Changes => "changes",
            Kind::Full => "full",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Transfers => "Transfer register",
            Kind::Inventory => "Inventory of served artifacts",
            Kind::Changes => "Changes to what is served",
            Kind::Full => "Transfers, changes, inventory, exceptions and integrity",
        }
    }
}

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Html,
    Json,
    Csv,
    /// OSCAL assessment results (see [`crate::oscal`]).
    Oscal,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Oscal => "oscal",
        }
    }
}

/// The period a report covers, both ends inclusive (RFC 3339, UTC, seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    /// `None`: from the first entry of the log.
    pub from: Option<String>,
    pub to: String,
}

impl Period {
    /// Checks both bounds (the exact form `YYYY-MM-DDTHH:MM:SSZ`) and their order; `to`
    /// defaults to `now`.
    pub fn new(
        from: Option<&str>,
        to: Option<&str>,
        now: UnixTime,
    ) -> Result<Self, ApplianceError> {
        let parse = |what: &str, s: &str| {
            parse_rfc3339(s).map_err(|e| ApplianceError::Usage(format!("--{what}: {e}")))
        };
        let from_t = from.map(|s| parse("from", s)).transpose()?;
        let to_t = match to {
            Some(s) => parse("to", s)?,
            None => now,
        };
        if let Some(f) = from_t {
            if f > to_t {
                return Err(ApplianceError::Usage(format!(
                    "--from {} is after --to {}",
                    format_rfc3339(f),
                    format_rfc3339(to_t)
                )));
            }
        }
        Ok(Period {
            from: from_t.map(format_rfc3339),
            to: format_rfc3339(to_t),
        })
    }

    fn bounds(&self) -> (UnixTime, UnixTime) {
        let f = self
            .from
            .as_deref()
            .and_then(|s| parse_rfc3339(s).ok())
            .unwrap_or(UnixTime::MIN);
        let t = parse_rfc3339(&self.to).unwrap_or(UnixTime::MAX);
        (f, t)
    }
}

/// The audit entries a report covers: those whose time lies in the period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRange {
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The hash of entry `last_seq`: through the chain it commits to every entry up to it.
    pub head_hash: Option<String>,
}

/// One import attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// When the outcome was recorded (for an interrupted attempt: when it started).
    pub time: String,
    /// The audit entry recording the outcome (for an interrupted attempt: its start).
    pub audit_seq: u64,
    /// `accepted`, `duplicate`, `rejected`, `failed`, or `interrupted` (the log records the
    /// start but no outcome).
    pub outcome: String,
    /// The volume file as named to the importer.
    pub volume: String,
    /// Who carried out the import (`airlockd import --operator`, else the OS user).
    pub operator: Option<String>,
    /// SHA-256 (hex) of the volume file as read, to compare with the bill of lading.
    pub volume_sha256: Option<String>,
    pub volume_size: Option<u64>,
    pub bundle_id: Option<String>,
    pub bundle_name: Option<String>,
    pub bundle_version: Option<String>,
    pub channel: Option<String>,
    pub sequence: Option<u64>,
    /// Which volume of the bundle (accepted volumes).
    pub volume_number: Option<u64>,
    /// Key ids of the trusted keys whose signatures verified (accepted volumes).
    pub signers: Vec<String>,
    /// The names (and roles) the trust root gives those keys, by key id.
    pub signer_names: BTreeMap<String, String>,
    /// The bundle role's signature threshold of the trust root in force (accepted volumes).
    pub threshold: Option<u32>,
    /// The trust root version in force when the volume was accepted.
    pub trust_root_version: Option<u64>,
    /// The check that refused the volume (`trust`, `integrity`, `rollback`, `policy`, …).
    pub rejection_kind: Option<String>,
    /// Why it was refused, failed or was a duplicate; empty when accepted.
    pub reason: String,
    /// Where the rejected volume was copied.
    pub quarantined_as: Option<String>,
    /// The policy that decided (`built-in` or its file) and the SHA-256 of its text.
    pub policy: Option<String>,
    pub policy_sha256: Option<String>,
    /// The scanner, its yara-x version and rule-set digest that produced the signed results.
    pub scanner: Option<String>,
    /// Scanner findings per artifact as the signed manifest records them, one line each.
    pub scan: Vec<String>,
    /// Signed waivers the bundle carries (`artifact: finding`).
    pub waivers: Vec<String>,
}

/// A served name that changed digest with an accepted volume.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub time: String,
    pub audit_seq: u64,
    pub operator: Option<String>,
    pub bundle_id: Option<String>,
    pub bundle_name: Option<String>,
    pub bundle_version: Option<String>,
    pub kind: String,
    pub name: String,
    /// `None`: the name was served for the first time.
    pub previous: Option<String>,
    pub new: String,
}

/// Deviations an assessor asks about: waivers in force and volumes held in quarantine.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exceptions {
    /// Waivers carried by the bundles whose artifacts are served now.
    pub waivers: Vec<WaiverInForce>,
    /// Rejected volumes whose quarantine copy is still on the appliance.
    pub quarantined: Vec<Quarantined>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaiverInForce {
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub artifact: String,
    pub finding: String,
    pub file: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quarantined {
    pub time: String,
    pub audit_seq: u64,
    pub volume: String,
    pub quarantined_as: String,
    pub rejection_kind: Option<String>,
    pub reason: String,
}

/// One visible artifact (see [`airlock_catalog::ServedRow`]).
pub type Served = ServedRow;

/// One row of the inventory: the served artifact, what the signed scan results of its bundle
/// say about it, and its lineage.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryRow {
    #[serde(flatten)]
    pub served: Served,
    /// `clean (N files)`, the findings by severity (and how many the bundle's waivers name),
    /// or `not scanned` when the bundle carries no scan record for it.
    pub scan: String,
    /// The lineage recorded at packing (datasets, parent model), compact JSON; empty if none.
    pub lineage: String,
}

impl std::ops::Deref for InventoryRow {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.served
    }
}

/// One pinned trust root version.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustRootInfo {
    pub version: u64,
    pub applied_at: String,
    pub bundle_key_ids: Vec<String>,
    /// The names (and roles) this root version gives those keys, by key id.
    pub bundle_key_holders: BTreeMap<String, String>,
    pub bundle_threshold: Option<u32>,
}

/// Whether the record itself is intact.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Integrity {
    /// `audit verify` over the whole log and the signed head, run for the report.
    pub audit_intact: bool,
    /// What it found wrong, naming the first bad entry (empty when intact).
    pub audit_problems: Vec<String>,
    pub pinned_trust_root_version: u64,
    /// Every trust root version pinned, oldest first.
    pub trust_roots: Vec<TrustRootInfo>,
    /// `fsck` (every blob re-hashed, every catalog reference checked), run for the report;
    /// `None` when skipped (`--skip-fsck`).
    pub fsck_clean: Option<bool>,
    pub fsck_problems: Vec<String>,
    /// Blobs re-hashed by that fsck.
    pub fsck_blobs: Option<usize>,
}

/// Counts of import attempts by outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub attempts: usize,
    pub accepted: usize,
    pub duplicate: usize,
    pub rejected: usize,
    pub failed: usize,
    pub interrupted: usize,
}

/// A report, as the JSON format writes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    #[serde(rename = "_type")]
    pub type_: String,
    pub kind: Kind,
    /// Key id of the appliance key (which signs the report's statement).
    pub appliance: String,
    pub period: Period,
    pub audit: AuditRange,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfers: Option<Vec<Transfer>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<Change>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Vec<InventoryRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exceptions: Option<Exceptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Integrity>,
    /// `full`: the control mapping with the audit entries that evidence each control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controls: Option<crate::controls::Appendix>,
}

/// What a report run does besides reading.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Leave fsck out of a `full` report (it re-hashes every blob, which takes long on a big
    /// store); the report then says it was not run.
    pub skip_fsck: bool,
}

/// What the DSSE envelope beside a report signs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    /// SHA-256 (hex) of the report file's bytes.
    pub sha256: String,
    pub size: u64,
    pub kind: Kind,
    pub format: Format,
    pub period: Period,
    pub audit: AuditRange,
    pub appliance: String,
}

impl Appliance {
    /// Builds a report of `kind` over `period`. Reads only.
    pub fn report(
        &self,
        kind: Kind,
        period: Period,
        options: Options,
    ) -> Result<Report, ApplianceError> {
        let (from, to) = period.bounds();
        let in_period = |time: &str| {
            parse_rfc3339(time)
                .map(|t| from <= t && t <= to)
                .unwrap_or(false)
        };
        let roots = self.trust_root_infos()?;
        let full = kind == Kind::Full;
        let bundles: BTreeMap<String, airlock_catalog::BundleRow> = self
            .catalog
            .bundles()?
            .into_iter()
            .map(|b| (b.id.clone(), b))
            .collect();
        let want_transfers = matches!(kind, Kind::Transfers | Kind::Full);
        let want_changes = matches!(kind, Kind::Changes | Kind::Full);
        // One pass over the log, entry by entry: the covered range, the register and the
        // change record are built as it goes; the covered entries are kept without their data.
        let mut covered: Vec<Entry> = Vec::new();
        let mut register = Register::new(&bundles, &roots);
        let mut change_rows: Vec<Change> = Vec::new();
        self.catalog.audit_for_each(|e| {
            if want_transfers {
                register.push(&e);
            }
            let inside = in_period(&e.time);
            if want_changes && inside {
                changes_of(&e, &bundles, &mut change_rows);
            }
            if inside {
                covered.push(Entry {
                    data: Value::Null,
                    sig: String::new(),
                    prev: String::new(),
                    ..e
                });
            }
            Ok(())
        })?;
        let covered: Vec<&Entry> = covered.iter().collect();
        let audit = AuditRange {
            first_seq: covered.first().map(|e| e.seq),
            last_seq: covered.last().map(|e| e.seq),
            head_hash: covered.last().map(|e| e.hash.clone()),
        };
        let all_rows = if want_transfers {
            register.finish()
        } else {
            Vec::new()
        };
        let served = match kind {
            Kind::Inventory | Kind::Full => Some(self.catalog.served()?),
            _ => None,
        };
        let manifests = match &served {
            Some(s) => self.served_manifests(s)?,
            None => BTreeMap::new(),
        };
        let inventory = served.map(|rows| inventory_rows(rows, &manifests));
        // Quarantine copies still present are exceptions whenever they were made.
        let qdir = self.root.join(crate::import::QUARANTINE);
        let present = |name: &str| match &self.remote {
            Some(r) => r
                .exists(&format!("{}/{name}", crate::import::QUARANTINE))
                .unwrap_or_else(|e| {
                    tracing::warn!("looking up quarantine copy {name}: {e}");
                    false
                }),
            None => qdir.join(name).is_file(),
        };
        let exceptions = full.then(|| exceptions(&manifests, &all_rows, &present));
        let (transfers, counts) = if want_transfers {
            let rows: Vec<Transfer> = all_rows
                .into_iter()
                .filter(|t| in_period(&t.time))
                .collect();
            let counts = count(&rows);
            (Some(rows), Some(counts))
        } else {
            (None, None)
        };
        let changes = want_changes.then_some(change_rows);
        let integrity = if full {
            let v = self.verify_audit()?;
            let (fsck_clean, fsck_problems, fsck_blobs) = if options.skip_fsck {
                (None, Vec::new(), None)
            } else {
                let problems = self.fsck()?;
                (
                    Some(problems.is_empty()),
                    problems,
                    Some(self.store.list()?.len()),
                )
            };
            Some(Integrity {
                audit_intact: v.problems.is_empty(),
                audit_problems: v.problems,
                pinned_trust_root_version: self.trust.meta.version,
                trust_roots: roots,
                fsck_clean,
                fsck_problems,
                fsck_blobs,
            })
        } else {
            None
        };
        Ok(Report {
            type_: REPORT_TYPE.into(),
            kind,
            appliance: self.public_key().keyid(),
            period,
            audit,
            counts,
            transfers,
            changes,
            inventory,
            exceptions,
            integrity,
            controls: (kind == Kind::Full).then(|| crate::controls::appendix(&covered)),
        })
    }

    /// The signed manifests of the bundles whose artifacts are served, by bundle id (read from
    /// the statements verified at import).
    fn served_manifests(
        &self,
        served: &[Served],
    ) -> Result<BTreeMap<String, airlock_core::bundle::BundleManifest>, ApplianceError> {
        let serving: std::collections::BTreeSet<&str> =
            served.iter().map(|s| s.bundle.as_str()).collect();
        let mut out = BTreeMap::new();
        for (id, statement) in self.catalog.statements()? {
            if !serving.contains(id.as_str()) {
                continue;
            }
            if let Ok(st) = serde_json::from_slice::<airlock_core::bundle::Statement>(&statement) {
                out.insert(id, st.predicate);
            }
        }
        Ok(out)
    }

    /// The DSSE envelope (JSON) signed by the appliance key over the [`Statement`] about
    /// `bytes`, the rendered report.
    pub fn sign_report(
        &self,
        report: &Report,
        format: Format,
        bytes: &[u8],
    ) -> Result<(Statement, Vec<u8>), ApplianceError> {
        let statement = Statement {
            type_: STATEMENT_TYPE.into(),
            sha256: Sha256::digest(bytes).hex(),
            size: bytes.len() as u64,
            kind: report.kind,
            format,
            period: report.period.clone(),
            audit: report.audit.clone(),
            appliance: report.appliance.clone(),
        };
        let payload = serde_json::to_vec(&statement).expect("statement serializes");
        let key: &dyn Signer = self.signer()?;
        let env = Envelope::sign(PAYLOAD_TYPE, &payload, &[key])?.to_json();
        Ok((statement, env))
    }

    fn trust_root_infos(&self) -> Result<Vec<TrustRootInfo>, ApplianceError> {
        self.catalog
            .trust_roots()?
            .into_iter()
            .map(|r| {
                // Pinned roots were verified when pinned; here only their content is read.
                let (keys, holders, threshold) = match TrustRoot::load_initial(&r.document, 0) {
                    Ok(t) => match t.meta.roles.get("bundle") {
                        Some(role) => {
                            let holders = role
                                .keyids
                                .iter()
                                .filter_map(|id| {
                                    let l = t.label(id);
                                    let name = l.name?;
                                    Some((
                                        id.clone(),
                                        match l.role {
                                            Some(r) => format!("{name} ({r})"),
                                            None => name,
                                        },
                                    ))
                                })
                                .collect();
                            (role.keyids.clone(), holders, Some(role.threshold))
                        }
                        None => (Vec::new(), BTreeMap::new(), None),
                    },
                    Err(_) => (Vec::new(), BTreeMap::new(), None),
                };
                Ok(TrustRootInfo {
                    version: r.version,
                    applied_at: r.applied_at,
                    bundle_key_ids: keys,
                    bundle_key_holders: holders,
                    bundle_threshold: threshold,
                })
            })
            .collect()
    }
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// The import attempts the log records, in log order.
#[cfg(test)]
fn transfers(
    entries: &[Entry],
    bundles: &BTreeMap<String, airlock_catalog::BundleRow>,
    roots: &[TrustRootInfo],
) -> Vec<Transfer> {
    let mut r = Register::new(bundles, roots);
    for e in entries {
        r.push(e);
    }
    r.finish()
}

/// Builds the transfer register from audit entries fed in log order, so that the log never has
/// to be held in memory.
struct Register<'a> {
    bundles: &'a BTreeMap<String, airlock_catalog::BundleRow>,
    roots: &'a [TrustRootInfo],
    rows: Vec<Transfer>,
    /// The trust root in force, followed through the log.
    root: Option<u64>,
    /// The attempt started and not yet finished: (seq, time, volume, operator).
    open: Option<(u64, String, String, Option<String>)>,
    /// Rows of rejected volumes waiting for their quarantine entry, by volume.
    awaiting_quarantine: BTreeMap<String, usize>,
}

fn interrupted((seq, time, volume, operator): (u64, String, String, Option<String>)) -> Transfer {
    Transfer {
        time,
        audit_seq: seq,
        outcome: "interrupted".into(),
        volume,
        operator,
        volume_sha256: None,
        volume_size: None,
        signer_names: BTreeMap::new(),
        policy: None,
        policy_sha256: None,
        scanner: None,
        scan: Vec::new(),
        waivers: Vec::new(),
        bundle_id: None,
        bundle_name: None,
        bundle_version: None,
        channel: None,
        sequence: None,
        volume_number: None,
        signers: Vec::new(),
        threshold: None,
        trust_root_version: None,
        rejection_kind: None,
        reason: "the log records the start of this import but no outcome".into(),
        quarantined_as: None,
    }
}

impl<'a> Register<'a> {
    fn new(
        bundles: &'a BTreeMap<String, airlock_catalog::BundleRow>,
        roots: &'a [TrustRootInfo],
    ) -> Self {
        Register {
            bundles,
            roots,
            rows: Vec::new(),
            root: None,
            open: None,
            awaiting_quarantine: BTreeMap::new(),
        }
    }

    fn threshold_of(&self, v: u64) -> Option<u32> {
        self.roots
            .iter()
            .find(|r| r.version == v)
            .and_then(|r| r.bundle_threshold)
    }

    fn push(&mut self, e: &Entry) {
        let d = &e.data;
        match e.kind.as_str() {
            "initialized" => self.root = d.get("trustRootVersion").and_then(Value::as_u64),
            "trust-root-updated" => {
                self.root = d.get("version").and_then(Value::as_u64).or(self.root);
            }
            "import-started" => {
                if let Some(o) = self.open.take() {
                    self.rows.push(interrupted(o));
                }
                self.awaiting_quarantine.clear();
                self.open = Some((
                    e.seq,
                    e.time.clone(),
                    str_of(d, "volume").unwrap_or_default(),
                    str_of(d, "operator"),
                ));
            }
            "import-accepted" | "import-duplicate" | "import-rejected" | "import-failed" => {
                let volume = str_of(d, "volume").unwrap_or_default();
                if self.open.as_ref().is_some_and(|o| o.2 == volume) {
                    self.open = None;
                }
                let outcome = e.kind.trim_start_matches("import-").to_string();
                let bundle_id = str_of(d, "bundle");
                let known = bundle_id.as_ref().and_then(|b| self.bundles.get(b));
                let accepted = e.kind == "import-accepted";
                let signers: Vec<String> = d
                    .get("signers")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let reason = match e.kind.as_str() {
                    "import-accepted" => String::new(),
                    "import-duplicate" => "this volume of the bundle was already imported".into(),
                    _ => str_of(d, "reason").unwrap_or_default(),
                };
                let root_here = d
                    .get("trustRootVersion")
                    .and_then(Value::as_u64)
                    .or(self.root);
                let signer_names: BTreeMap<String, String> = d
                    .get("signerNames")
                    .and_then(Value::as_object)
                    .map(|o| {
                        o.iter()
                            .map(|(id, v)| {
                                let name = str_of(v, "name").unwrap_or_else(|| id.clone());
                                let shown = match str_of(v, "role") {
                                    Some(r) => format!("{name} ({r})"),
                                    None => name,
                                };
                                (id.clone(), shown)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let scan_records = d.get("scan").and_then(Value::as_array);
                let scan = scan_records
                    .map(|a| a.iter().map(scan_line).collect())
                    .unwrap_or_default();
                let scanners: std::collections::BTreeSet<String> = scan_records
                    .into_iter()
                    .flatten()
                    .filter_map(|r| str_of(r, "scanner"))
                    .collect();
                let scanner = (!scanners.is_empty())
                    .then(|| scanners.into_iter().collect::<Vec<_>>().join(" | "));
                let waivers = d
                    .get("waivers")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|w| {
                                format!(
                                    "{}: {}",
                                    str_of(w, "artifact").unwrap_or_default(),
                                    str_of(w, "finding").unwrap_or_default()
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let row = Transfer {
                    time: e.time.clone(),
                    audit_seq: e.seq,
                    outcome,
                    volume: volume.clone(),
                    operator: str_of(d, "operator"),
                    volume_sha256: str_of(d, "volumeSha256"),
                    volume_size: d.get("volumeSize").and_then(Value::as_u64),
                    signer_names,
                    policy: str_of(d, "policy"),
                    policy_sha256: str_of(d, "policySha256"),
                    scanner,
                    scan,
                    waivers,
                    bundle_name: str_of(d, "name").or_else(|| known.map(|b| b.name.clone())),
                    bundle_version: str_of(d, "version")
                        .or_else(|| known.map(|b| b.version.clone())),
                    channel: str_of(d, "channel").or_else(|| known.map(|b| b.channel.clone())),
                    sequence: d
                        .get("sequence")
                        .and_then(Value::as_u64)
                        .or_else(|| known.map(|b| b.sequence)),
                    volume_number: d.get("volumeNumber").and_then(Value::as_u64),
                    bundle_id,
                    signers,
                    threshold: if accepted {
                        d.get("threshold")
                            .and_then(Value::as_u64)
                            .map(|t| t as u32)
                            .or_else(|| root_here.and_then(|v| self.threshold_of(v)))
                    } else {
                        None
                    },
                    trust_root_version: if accepted { root_here } else { None },
                    rejection_kind: str_of(d, "kind"),
                    reason,
                    quarantined_as: None,
                };
                if e.kind == "import-rejected" {
                    self.awaiting_quarantine.insert(volume, self.rows.len());
                }
                self.rows.push(row);
            }
            "volume-quarantined" => {
                let volume = str_of(d, "volume").unwrap_or_default();
                if let Some(i) = self.awaiting_quarantine.remove(&volume) {
                    self.rows[i].quarantined_as = str_of(d, "quarantinedAs");
                }
            }
            _ => {}
        }
    }

    fn finish(mut self) -> Vec<Transfer> {
        if let Some(o) = self.open.take() {
            self.rows.push(interrupted(o));
        }
        self.rows.sort_by_key(|r| r.audit_seq);
        self.rows
    }
}

/// One line of a scan summary: `artifact: N files, clean`, or its findings by severity.
fn scan_line(v: &Value) -> String {
    let artifact = str_of(v, "artifact").unwrap_or_default();
    let files = v.get("files").and_then(Value::as_u64).unwrap_or(0);
    let findings: Vec<String> = v
        .get("findings")
        .and_then(Value::as_object)
        .map(|o| o.iter().map(|(sev, n)| format!("{n} {sev}")).collect())
        .unwrap_or_default();
    if findings.is_empty() {
        format!("{artifact}: {files} files, clean")
    } else {
        format!("{artifact}: {files} files, {}", findings.join(", "))
    }
}

/// The name changes recorded by accepted imports, in log order.
/// Waivers carried by the bundles of served artifacts, and quarantine copies still present.
fn exceptions(
    manifests: &BTreeMap<String, airlock_core::bundle::BundleManifest>,
    rows: &[Transfer],
    present: &dyn Fn(&str) -> bool,
) -> Exceptions {
    let mut waivers = Vec::new();
    for (id, m) in manifests {
        for w in &m.waivers {
            waivers.push(WaiverInForce {
                bundle_id: id.clone(),
                bundle_name: m.name.clone(),
                bundle_version: m.version.clone(),
                artifact: w.artifact.clone(),
                finding: w.finding.clone(),
                file: w.file.clone(),
                reason: w.reason.clone(),
            });
        }
    }
    waivers.sort_by(|a, b| {
        (&a.bundle_name, &a.bundle_version, &a.artifact, &a.finding).cmp(&(
            &b.bundle_name,
            &b.bundle_version,
            &b.artifact,
            &b.finding,
        ))
    });
    let quarantined = rows
        .iter()
        .filter_map(|t| {
            let q = t.quarantined_as.as_ref()?;
            // Looked up in this appliance's quarantine, whatever the working directory.
            let name = std::path::Path::new(q).file_name()?.to_str()?;
            present(name).then(|| Quarantined {
                time: t.time.clone(),
                audit_seq: t.audit_seq,
                volume: t.volume.clone(),
                quarantined_as: q.clone(),
                rejection_kind: t.rejection_kind.clone(),
                reason: t.reason.clone(),
            })
        })
        .collect();
    Exceptions {
        waivers,
        quarantined,
    }
}

/// The served rows with each artifact's scan status (from its bundle's signed scan results)
/// and lineage.
fn inventory_rows(
    served: Vec<Served>,
    manifests: &BTreeMap<String, airlock_core::bundle::BundleManifest>,
) -> Vec<InventoryRow> {
    served
        .into_iter()
        .map(|s| {
            let m = manifests.get(&s.bundle);
            let record = m.and_then(|m| m.scan.iter().find(|r| r.artifact == s.name));
            let scan = match record {
                None => "not scanned".to_string(),
                Some(r) => {
                    let by = r.by_severity();
                    let waived = m
                        .map(|m| m.waivers.iter().filter(|w| w.artifact == s.name).count())
                        .unwrap_or(0);
                    if by.is_empty() {
                        format!("clean ({} files)", r.files)
                    } else {
                        let mut t = by
                            .iter()
                            .map(|(sev, n)| format!("{n} {sev}"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        t.push_str(&format!(" ({} files)", r.files));
                        if waived > 0 {
                            t.push_str(&format!("; {waived} waiver(s) for this artifact"));
                        }
                        t
                    }
                }
            };
            let lineage = s
                .provenance
                .get("lineage")
                .filter(|l| !l.is_null())
                .map(|l| l.to_string())
                .unwrap_or_default();
            InventoryRow {
                served: s,
                scan,
                lineage,
            }
        })
        .collect()
}

/// The name changes one entry records (only `import-accepted` entries record any).
fn changes_of(
    e: &Entry,
    bundles: &BTreeMap<String, airlock_catalog::BundleRow>,
    out: &mut Vec<Change>,
) {
    if e.kind != "import-accepted" {
        return;
    }
    {
        let d = &e.data;
        let bundle_id = str_of(d, "bundle");
        let known = bundle_id.as_ref().and_then(|b| bundles.get(b));
        for c in d
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(Change {
                time: e.time.clone(),
                audit_seq: e.seq,
                operator: str_of(d, "operator"),
                bundle_id: bundle_id.clone(),
                bundle_name: str_of(d, "name").or_else(|| known.map(|b| b.name.clone())),
                bundle_version: str_of(d, "version").or_else(|| known.map(|b| b.version.clone())),
                kind: str_of(c, "kind").unwrap_or_default(),
                name: str_of(c, "name").unwrap_or_default(),
                previous: str_of(c, "previous"),
                new: str_of(c, "new").unwrap_or_default(),
            });
        }
    }
}

fn count(rows: &[Transfer]) -> Counts {
    let mut c = Counts {
        attempts: rows.len(),
        ..Counts::default()
    };
    for r in rows {
        match r.outcome.as_str() {
            "accepted" => c.accepted += 1,
            "duplicate" => c.duplicate += 1,
            "rejected" => c.rejected += 1,
            "failed" => c.failed += 1,
            _ => c.interrupted += 1,
        }
    }
    c
}

impl Report {
    /// The report's bytes in `format`. For `full`, CSV holds the transfer register (a CSV
    /// file has one table); `inventory` writes the inventory.
    pub fn render(&self, format: Format) -> Vec<u8> {
        match format {
            Format::Json => {
                let mut v = serde_json::to_vec_pretty(self).expect("report serializes");
                v.push(b'\n');
                v
            }
            Format::Csv => match (&self.transfers, &self.changes, &self.inventory) {
                (Some(t), _, _) => transfers_csv(t),
                (None, Some(c), _) => changes_csv(c),
                (None, None, Some(i)) => inventory_csv(i),
                (None, None, None) => Vec::new(),
            },
            Format::Html => html_page(self).into_string().into_bytes(),
            Format::Oscal => crate::oscal::assessment_results(self),
        }
    }
}

/// Header of the transfer register CSV.
pub const TRANSFER_COLUMNS: &[&str] = &[
    "time",
    "auditSeq",
    "outcome",
    "volume",
    "operator",
    "volumeSha256",
    "volumeSize",
    "bundleId",
    "bundleName",
    "bundleVersion",
    "channel",
    "sequence",
    "volumeNumber",
    "signers",
    "signerNames",
    "threshold",
    "trustRootVersion",
    "rejectionKind",
    "reason",
    "quarantinedAs",
    "policy",
    "policySha256",
    "scanner",
    "scan",
    "waivers",
];

fn transfers_csv(rows: &[Transfer]) -> Vec<u8> {
    let mut out: Vec<Vec<String>> = vec![TRANSFER_COLUMNS.iter().map(|s| s.to_string()).collect()];
    for t in rows {
        out.push(vec![
            t.time.clone(),
            t.audit_seq.to_string(),
            t.outcome.clone(),
            t.volume.clone(),
            opt(&t.operator),
            opt(&t.volume_sha256),
            opt(&t.volume_size),
            opt(&t.bundle_id),
            opt(&t.bundle_name),
            opt(&t.bundle_version),
            opt(&t.channel),
            opt(&t.sequence),
            opt(&t.volume_number),
            t.signers.join(" "),
            t.signers
                .iter()
                .map(|k| t.signer_names.get(k).cloned().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("; "),
            opt(&t.threshold),
            opt(&t.trust_root_version),
            opt(&t.rejection_kind),
            t.reason.clone(),
            opt(&t.quarantined_as),
            opt(&t.policy),
            opt(&t.policy_sha256),
            opt(&t.scanner),
            t.scan.join("; "),
            t.waivers.join("; "),
        ]);
    }
    csv(&out)
}

/// Header of the changes CSV.
pub const CHANGE_COLUMNS: &[&str] = &[
    "time",
    "auditSeq",
    "operator",
    "bundleId",
    "bundleName",
    "bundleVersion",
    "kind",
    "name",
    "previous",
    "new",
];

fn changes_csv(rows: &[Change]) -> Vec<u8> {
    let mut out: Vec<Vec<String>> = vec![CHANGE_COLUMNS.iter().map(|s| s.to_string()).collect()];
    for c in rows {
        out.push(vec![
            c.time.clone(),
            c.audit_seq.to_string(),
            opt(&c.operator),
            opt(&c.bundle_id),
            opt(&c.bundle_name),
            opt(&c.bundle_version),
            c.kind.clone(),
            c.name.clone(),
            opt(&c.previous),
            c.new.clone(),
        ]);
    }
    csv(&out)
}

/// Header of the inventory CSV.
pub const INVENTORY_COLUMNS: &[&str] = &[
    "kind",
    "name",
    "digest",
    "size",
    "mediaType",
    "current",
    "bundleId",
    "bundleName",
    "bundleVersion",
    "channel",
    "sequence",
    "source",
    "license",
    "scan",
    "lineage",
];

fn prov(s: &Served, key: &str) -> String {
    str_of(&s.provenance, key).unwrap_or_default()
}

fn inventory_csv(rows: &[InventoryRow]) -> Vec<u8> {
    let mut out: Vec<Vec<String>> = vec![INVENTORY_COLUMNS.iter().map(|s| s.to_string()).collect()];
    for s in rows {
        out.push(vec![
            s.kind.clone(),
            s.name.clone(),
            s.digest.clone(),
            s.size.to_string(),
            s.media_type.clone(),
            s.current.to_string(),
            s.bundle.clone(),
            s.bundle_name.clone(),
            s.bundle_version.clone(),
            s.channel.clone(),
            s.sequence.to_string(),
            prov(s, "source"),
            prov(s, "license"),
            s.scan.clone(),
            s.lineage.clone(),
        ]);
    }
    csv(&out)
}

fn html_page(r: &Report) -> Markup {
    let header = html! {
        table {
            tbody {
                tr { th { "Period" } td { (r.period.from.as_deref().unwrap_or("start of the log")) " — " (r.period.to) } }
                tr { th { "Appliance key" } td.mono { (r.appliance) } }
                tr { th { "Audit entries covered" } td {
                    @match (r.audit.first_seq, r.audit.last_seq) {
                        (Some(a), Some(b)) => { (a) " – " (b) }
                        _ => { "none in the period" }
                    }
                } }
                tr { th { "Audit head hash (last entry covered)" } td.mono { (dash(&r.audit.head_hash)) } }
            }
        }
        p { "The SHA-256 of this file is signed by the appliance key in the DSSE envelope beside it (FILE.dsse.json)." }
    };
    let mut sections = Vec::new();
    if let Some(t) = &r.transfers {
        sections.push(transfers_html(t, r.counts.as_ref()));
    }
    if let Some(c) = &r.changes {
        sections.push(changes_html(c));
    }
    if let Some(i) = &r.inventory {
        sections.push(inventory_html(i));
    }
    if let Some(x) = &r.exceptions {
        sections.push(exceptions_html(x));
    }
    if let Some(g) = &r.integrity {
        sections.push(integrity_html(g));
    }
    if let Some(c) = &r.controls {
        sections.push(crate::controls::appendix_html(c));
    }
    page(
        &format!("airlock report: {}", r.kind.as_str()),
        &format!("airlock appliance report — {}", r.kind.title()),
        header,
        sections,
    )
}

fn transfers_html(rows: &[Transfer], counts: Option<&Counts>) -> Markup {
    html! {
        h2 { "Transfer register" }
        @if let Some(c) = counts {
            p { (c.attempts) " import attempts: " (c.accepted) " accepted, " (c.duplicate) " duplicate, "
                (c.rejected) " rejected, " (c.failed) " failed, " (c.interrupted) " interrupted." }
            (bar_chart(&[
                ("accepted", c.accepted as u64, "#145a14"),
                ("duplicate", c.duplicate as u64, "#777777"),
                ("rejected", c.rejected as u64, "#9b1010"),
                ("failed", c.failed as u64, "#c06000"),
                ("interrupted", c.interrupted as u64, "#c06000"),
            ]))
        }
        table.rows {
            thead { tr {
                th style="width:9%" { "Time / seq / operator" } th style="width:8%" { "Outcome" }
                th style="width:17%" { "Volume file / SHA-256 / size" } th style="width:14%" { "Bundle" }
                th style="width:8%" { "Channel / seq." } th style="width:15%" { "Signers / threshold" }
                th style="width:16%" { "Policy / scan / waivers" } th style="width:13%" { "Reason / quarantine" }
            } }
            tbody {
                @for t in rows {
                    tr {
                        td { (t.time) br; "#" (t.audit_seq) br; (dash(&t.operator)) }
                        td class=(t.outcome) { (t.outcome) @if let Some(k) = &t.rejection_kind { " (" (k) ")" } }
                        td {
                            span.mono { (t.volume) } @if let Some(n) = t.volume_number { " [vol " (n) "]" }
                            @if let Some(h) = &t.volume_sha256 { br; span.mono { "sha256:" (h) } }
                            @if let Some(z) = t.volume_size { br; (z) " bytes" }
                        }
                        td {
                            @if let Some(n) = &t.bundle_name { (n) " " (dash(&t.bundle_version)) br; }
                            @if let Some(id) = &t.bundle_id { span.mono { (id) } }
                        }
                        td { (dash(&t.channel)) @if let Some(s) = t.sequence { " #" (s) } }
                        td {
                            @for s in &t.signers {
                                @if let Some(n) = t.signer_names.get(s) { (n) ": " }
                                span.mono { (s) } br;
                            }
                            @if let Some(th) = t.threshold { (t.signers.len()) " of threshold " (th)
                                @if let Some(v) = t.trust_root_version { " (trust root v" (v) ")" } }
                        }
                        td {
                            @if let Some(p) = &t.policy { "policy " (p) @if let Some(h) = &t.policy_sha256 { " " span.mono { "sha256:" (h) } } br; }
                            @if let Some(sc) = &t.scanner { "scanned by " (sc) br; }
                            @for l in &t.scan { (l) br; }
                            @for w in &t.waivers { "waiver " (w) br; }
                        }
                        td { (t.reason) @if let Some(q) = &t.quarantined_as { br; "quarantined as " span.mono { (q) } } }
                    }
                }
            }
        }
    }
}

fn changes_html(rows: &[Change]) -> Markup {
    html! {
        h2 { "Changes to what is served" }
        p { (rows.len()) " served names changed digest in the period (a new name shows no previous digest)." }
        table.rows {
            thead { tr {
                th style="width:11%" { "Time / seq / operator" } th style="width:15%" { "Bundle" } th style="width:6%" { "Kind" }
                th style="width:16%" { "Name" } th style="width:26%" { "Previous digest" } th style="width:26%" { "New digest" }
            } }
            tbody {
                @for c in rows {
                    tr {
                        td { (c.time) br; "#" (c.audit_seq) br; (dash(&c.operator)) }
                        td { @if let Some(n) = &c.bundle_name { (n) " " (dash(&c.bundle_version)) } }
                        td { (c.kind) }
                        td.mono { (c.name) }
                        td.mono { (dash(&c.previous)) }
                        td.mono { (c.new) }
                    }
                }
            }
        }
    }
}

fn exceptions_html(x: &Exceptions) -> Markup {
    html! {
        h2 { "Exceptions" }
        h3 { "Waivers in force" }
        p { (x.waivers.len()) " signed waivers admit findings in bundles whose artifacts are served now." }
        @if !x.waivers.is_empty() {
            table.rows {
                thead { tr { th { "Bundle" } th { "Artifact" } th { "Finding" } th { "File" } th { "Reason given" } } }
                tbody {
                    @for w in &x.waivers {
                        tr {
                            td { (w.bundle_name) " " (w.bundle_version) }
                            td.mono { (w.artifact) }
                            td.mono { (w.finding) }
                            td.mono { (dash(&w.file)) }
                            td { (w.reason) }
                        }
                    }
                }
            }
        }
        h3 { "Volumes in quarantine" }
        p { (x.quarantined.len()) " rejected volumes are held in quarantine." }
        @if !x.quarantined.is_empty() {
            table.rows {
                thead { tr { th { "Time / seq" } th { "Volume" } th { "Quarantined as" } th { "Why" } } }
                tbody {
                    @for q in &x.quarantined {
                        tr {
                            td { (q.time) br; "#" (q.audit_seq) }
                            td.mono { (q.volume) }
                            td.mono { (q.quarantined_as) }
                            td { @if let Some(k) = &q.rejection_kind { (k) ": " } (q.reason) }
                        }
                    }
                }
            }
        }
    }
}

fn inventory_html(rows: &[InventoryRow]) -> Markup {
    html! {
        h2 { "Inventory of served artifacts" }
        p { (rows.len()) " visible artifacts; “current” marks the one each name resolves to (older visible versions stay reachable by digest)." }
        table.rows {
            thead { tr {
                th { "Kind" } th { "Name" } th { "Digest" } th { "Size (bytes)" } th { "Current" }
                th { "Bundle" } th { "Channel / seq." } th { "Source" } th { "Licence / scan / lineage" }
            } }
            tbody {
                @for s in rows {
                    tr {
                        td { (s.kind) }
                        td.mono { (s.name) }
                        td.mono { (s.digest) }
                        td { (s.size) }
                        td { @if s.current { "yes" } @else { "no" } }
                        td { (s.bundle_name) " " (s.bundle_version) br; span.mono { (s.bundle) } }
                        td { (s.channel) " #" (s.sequence) }
                        td.mono { (prov(s, "source")) }
                        td {
                            (prov(s, "license")) br;
                            "scan: " (s.scan)
                            @if !s.lineage.is_empty() { br; "lineage: " span.mono { (s.lineage) } }
                        }
                    }
                }
            }
        }
    }
}

fn integrity_html(g: &Integrity) -> Markup {
    html! {
        h2 { "Integrity of the record" }
        table {
            tbody {
                tr { th { "Audit log (chain, hashes, signatures, signed head)" } td {
                    @if g.audit_intact { span.good { "intact" } } @else { span.bad { "NOT INTACT" } }
                } }
                tr { th { "Store and catalog (fsck: every blob re-hashed, every reference checked)" } td {
                    @match g.fsck_clean {
                        Some(true) => { span.good { "clean" } " (" (opt(&g.fsck_blobs)) " blobs re-hashed)" }
                        Some(false) => { span.bad { "PROBLEMS FOUND" } }
                        None => { "not run for this report" }
                    }
                } }
                tr { th { "Pinned trust root version" } td { (g.pinned_trust_root_version) } }
            }
        }
        @if !g.audit_problems.is_empty() {
            ul { @for p in &g.audit_problems { li.bad { (p) } } }
        }
        @if !g.fsck_problems.is_empty() {
            ul { @for p in &g.fsck_problems { li.bad { (p) } } }
        }
        h2 { "Trust root history" }
        table.rows {
            thead { tr { th { "Version" } th { "Applied at" } th { "Bundle signing keys" } th { "Threshold" } } }
            tbody {
                @for t in &g.trust_roots {
                    tr {
                        td { (t.version) }
                        td { (t.applied_at) }
                        td { @for k in &t.bundle_key_ids {
                            @if let Some(n) = t.bundle_key_holders.get(k) { (n) ": " }
                            span.mono { (k) } br;
                        } }
                        td { (opt(&t.bundle_threshold)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(seq: u64, time: &str, kind: &str, data: Value) -> Entry {
        Entry {
            seq,
            time: time.into(),
            kind: kind.into(),
            data,
            prev: String::new(),
            hash: format!("h{seq}"),
            sig: String::new(),
        }
    }

    fn log() -> Vec<Entry> {
        vec![
            entry(
                1,
                "2026-01-01T00:00:00Z",
                "initialized",
                json!({"trustRootVersion": 1}),
            ),
            entry(
                2,
                "2026-01-02T00:00:00Z",
                "import-started",
                json!({"volume": "a.tar.zst"}),
            ),
            entry(
                3,
                "2026-01-02T00:00:01Z",
                "import-accepted",
                json!({"volume": "a.tar.zst", "bundle": "sha256:b1",
                "name": "demo", "version": "1.0", "channel": "stable", "sequence": 3, "volumeNumber": 1, "signers": ["k1"]}),
            ),
            entry(
                4,
                "2026-01-03T00:00:00Z",
                "import-started",
                json!({"volume": "b,\"x\".tar.zst"}),
            ),
            entry(
                5,
                "2026-01-03T00:00:01Z",
                "import-rejected",
                json!({"volume": "b,\"x\".tar.zst", "bundle": null,
                "kind": "integrity", "reason": "frame 2: digest mismatch"}),
            ),
            entry(
                6,
                "2026-01-03T00:00:01Z",
                "volume-quarantined",
                json!({"volume": "b,\"x\".tar.zst", "quarantinedAs": "q/b"}),
            ),
            entry(
                7,
                "2026-01-04T00:00:00Z",
                "import-started",
                json!({"volume": "c.tar.zst"}),
            ),
        ]
    }

    fn roots() -> Vec<TrustRootInfo> {
        vec![TrustRootInfo {
            version: 1,
            applied_at: "2026-01-01T00:00:00Z".into(),
            bundle_key_ids: vec!["k1".into()],
            bundle_key_holders: BTreeMap::new(),
            bundle_threshold: Some(1),
        }]
    }

    #[test]
    fn the_register_pairs_outcomes_with_quarantine_and_notes_interrupted_imports() {
        let rows = transfers(&log(), &BTreeMap::new(), &roots());
        let got: Vec<(&str, u64)> = rows
            .iter()
            .map(|r| (r.outcome.as_str(), r.audit_seq))
            .collect();
        assert_eq!(got, [("accepted", 3), ("rejected", 5), ("interrupted", 7)]);
        assert_eq!(rows[0].threshold, Some(1));
        assert_eq!(rows[0].trust_root_version, Some(1));
        assert_eq!(rows[0].bundle_name.as_deref(), Some("demo"));
        assert_eq!(rows[1].quarantined_as.as_deref(), Some("q/b"));
        assert_eq!(rows[1].rejection_kind.as_deref(), Some("integrity"));
        assert_eq!(rows[1].threshold, None);
    }

    fn report(period: Period) -> Report {
        let rows: Vec<Transfer> = transfers(&log(), &BTreeMap::new(), &roots());
        Report {
            type_: REPORT_TYPE.into(),
            kind: Kind::Transfers,
            appliance: "k".into(),
            period,
            audit: AuditRange::default(),
            counts: Some(count(&rows)),
            transfers: Some(rows),
            changes: None,
            inventory: None,
            exceptions: None,
            integrity: None,
            controls: None,
        }
    }

    #[test]
    fn rendering_is_deterministic_and_csv_has_one_header_row() {
        let p = Period::new(None, Some("2026-02-01T00:00:00Z"), 0).unwrap();
        for f in [Format::Json, Format::Csv, Format::Html] {
            assert_eq!(
                report(p.clone()).render(f),
                report(p.clone()).render(f),
                "{f:?}"
            );
        }
        let csv = String::from_utf8(report(p).render(Format::Csv)).unwrap();
        assert!(csv.starts_with("time,auditSeq,outcome,"), "{csv}");
        assert_eq!(csv.matches("time,auditSeq").count(), 1);
        assert!(csv.contains("\"b,\"\"x\"\".tar.zst\""), "{csv}");
        assert!(csv.ends_with("\r\n"));
    }

    #[test]
    fn html_escapes_bundle_values_and_references_nothing_outside() {
        let mut r = report(Period::new(None, Some("2026-02-01T00:00:00Z"), 0).unwrap());
        r.transfers.as_mut().unwrap()[0].bundle_name = Some("<script>alert(1)</script>".into());
        let page = String::from_utf8(r.render(Format::Html)).unwrap();
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("default-src 'none'"));
        for bad in ["http:", "https:", "src=", "href=", "url("] {
            assert!(!page.contains(bad), "{bad}");
        }
    }

    #[test]
    fn periods_are_checked() {
        assert!(Period::new(
            Some("2026-02-01T00:00:00Z"),
            Some("2026-01-01T00:00:00Z"),
            0
        )
        .is_err());
        assert!(Period::new(Some("yesterday"), None, 0).is_err());
        let p = Period::new(None, None, 86_400).unwrap();
        assert_eq!(p.to, "1970-01-02T00:00:00Z");
        assert_eq!(p.from, None);
    }
}
