//! The control mapping: which compliance controls airlock's mechanisms serve, and which audit
//! entries of a report's period evidence each of them.
//!
//! An assessor arrives with a list of controls (NIST SP 800-53 rev5, HIPAA 164.312, SOC 2,
//! ISO/IEC 27001:2022, GDPR) and asks, for each, what does it and where is the proof. [`CONTROLS`]
//! answers once, as data: the mechanism in one sentence that claims no more than the code does,
//! the report sections that show it, and the audit entry kinds that record it. [`appendix`]
//! applies the table to the entries a report covers and gives, per control, the sequence numbers
//! of the entries that evidence it; the `full` report prints that as its "Control mapping"
//! appendix (HTML) and its `controls` field (JSON), and the OSCAL assessment results
//! ([`crate::oscal`]) turn it into findings. The same table generates the table in
//! `docs/compliance.md` and the component definition in `docs/compliance/` (tests compare them).

use std::collections::BTreeMap;

use airlock_catalog::audit::Entry;
use airlock_report::{html, Markup};
use serde::{Serialize, Serializer};

/// The frameworks the mapping covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Framework {
    #[serde(rename = "NIST SP 800-53 rev5")]
    Nist80053,
    #[serde(rename = "HIPAA Security Rule")]
    Hipaa,
    #[serde(rename = "SOC 2")]
    Soc2,
    #[serde(rename = "ISO/IEC 27001:2022")]
    Iso27001,
    #[serde(rename = "GDPR")]
    Gdpr,
}

impl Framework {
    pub const ALL: [Framework; 5] = [
        Framework::Nist80053,
        Framework::Hipaa,
        Framework::Soc2,
        Framework::Iso27001,
        Framework::Gdpr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Framework::Nist80053 => "NIST SP 800-53 rev5",
            Framework::Hipaa => "HIPAA Security Rule",
            Framework::Soc2 => "SOC 2",
            Framework::Iso27001 => "ISO/IEC 27001:2022",
            Framework::Gdpr => "GDPR",
        }
    }

    /// Where the framework's text is published: NIST's OSCAL catalog for SP 800-53; for the
    /// others, which publish no OSCAL catalog, the official text.
    pub fn source(self) -> &'static str {
        match self {
            Framework::Nist80053 => "https://raw.githubusercontent.com/usnistgov/oscal-content/main/nist.gov/SP800-53/rev5/json/NIST_SP-800-53_rev5_catalog.json",
            Framework::Hipaa => "https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-C/section-164.312",
            Framework::Soc2 => "https://www.aicpa-cima.com/resources/download/2017-trust-services-criteria-with-revised-points-of-focus-2022",
            Framework::Iso27001 => "https://www.iso.org/standard/27001",
            Framework::Gdpr => "https://eur-lex.europa.eu/eli/reg/2016/679/oj",
        }
    }
}

/// A section of the report (its HTML heading).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Section {
    #[serde(rename = "Transfer register")]
    Transfers,
    #[serde(rename = "Inventory of served artifacts")]
    Inventory,
    #[serde(rename = "Changes to what is served")]
    Changes,
    #[serde(rename = "Exceptions")]
    Exceptions,
    #[serde(rename = "Integrity of the record")]
    Integrity,
    #[serde(rename = "Trust root history")]
    TrustRoots,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Transfers => "Transfer register",
            Section::Inventory => "Inventory of served artifacts",
            Section::Changes => "Changes to what is served",
            Section::Exceptions => "Exceptions",
            Section::Integrity => "Integrity of the record",
            Section::TrustRoots => "Trust root history",
        }
    }
}

/// Which audit entries evidence a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entries {
    /// Every entry: the control is about the log itself.
    All,
    /// Entries of these kinds.
    Kinds(&'static [&'static str]),
}

impl Entries {
    fn matches(self, kind: &str) -> bool {
        match self {
            Entries::All => true,
            Entries::Kinds(k) => k.contains(&kind),
        }
    }

    /// The kinds as text (`all entries` for [`Entries::All`]).
    pub fn describe(self) -> String {
        match self {
            Entries::All => "all entries".into(),
            Entries::Kinds(k) => k.join(", "),
        }
    }
}

/// One control and how airlock serves it.
#[derive(Debug, Clone, Copy)]
pub struct Control {
    /// As the framework writes it (`AU-2`, `164.312(b)`, `CC7`, `A.8.32`, `Art. 30`).
    pub id: &'static str,
    /// The same as an OSCAL token (`au-2`, `hipaa-164.312.b`): NIST's catalog ids for SP
    /// 800-53; for the other frameworks, which have no OSCAL catalog, a prefixed form.
    pub oscal_id: &'static str,
    pub framework: Framework,
    pub title: &'static str,
    /// What in airlock serves it, in one sentence that claims nothing the code does not do.
    pub mechanism: &'static str,
    /// The report sections that show it.
    pub sections: &'static [Section],
    /// The audit entries that record it.
    pub entries: Entries,
    /// Whether the evidence is worthless when `audit verify` finds the log altered: the
    /// control is the log's protection or rests on its signatures.
    pub needs_intact_log: bool,
}

const OUTCOMES: &[&str] = &[
    "import-accepted",
    "import-duplicate",
    "import-rejected",
    "import-failed",
];

/// The controls an assessor asks about, in the order the appendix lists them.
pub const CONTROLS: &[Control] = &[
    Control {
        id: "AU-2",
        oscal_id: "au-2",
        framework: Framework::Nist80053,
        title: "Event logging",
        mechanism: "The appliance logs every event it acts on — initialisation, each import attempt and its outcome, quarantine, import-policy decisions, trust root updates, store repairs, inventory exports and reports — as an audit entry; the set of events is fixed in the code.",
        sections: &[Section::Transfers, Section::Integrity],
        entries: Entries::All,
        needs_intact_log: false,
    },
    Control {
        id: "AU-3",
        oscal_id: "au-3",
        framework: Framework::Nist80053,
        title: "Content of audit records",
        mechanism: "Each entry records its kind, UTC time, sequence number and the event's data (volume, bundle id, name, version, channel, sequence, signer key ids and the names the trust root gives them, the volume file's SHA-256 and size, the policy and its SHA-256, the scan summary, or the refusing check and its reason) and the operator: `--operator`, else the user who ran sudo, else the OS user, as the command line states it (airlock does not authenticate people).",
        sections: &[Section::Transfers],
        entries: Entries::Kinds(&[
            "import-started",
            "import-accepted",
            "import-duplicate",
            "import-rejected",
            "import-failed",
            "volume-quarantined",
        ]),
        needs_intact_log: false,
    },
    Control {
        id: "AU-6",
        oscal_id: "au-6",
        framework: Framework::Nist80053,
        title: "Audit record review, analysis, and reporting",
        mechanism: "`airlockd report` presents the period's import attempts, refusals and failures with their reasons for review; the review itself and the follow-up are the organisation's.",
        sections: &[Section::Transfers],
        entries: Entries::Kinds(&["import-rejected", "import-failed", "report-generated"]),
        needs_intact_log: false,
    },
    Control {
        id: "AU-7",
        oscal_id: "au-7",
        framework: Framework::Nist80053,
        title: "Audit record reduction and report generation",
        mechanism: "`airlockd report` selects the entries of a period and renders them as HTML, JSON, CSV or OSCAL without changing the record, and logs each report it writes with the file's SHA-256.",
        sections: &[Section::Transfers],
        entries: Entries::Kinds(&["report-generated", "inventory-exported"]),
        needs_intact_log: false,
    },
    Control {
        id: "AU-9",
        oscal_id: "au-9",
        framework: Framework::Nist80053,
        title: "Protection of audit information",
        mechanism: "Entries are hash-chained and each is signed by the appliance key, the newest is signed again in `audit.head`, and `airlockd audit verify` names the first altered, removed or reordered entry; this detects tampering, it does not prevent the deletion of the data directory.",
        sections: &[Section::Integrity],
        entries: Entries::All,
        needs_intact_log: true,
    },
    Control {
        id: "AU-10",
        oscal_id: "au-10",
        framework: Framework::Nist80053,
        title: "Non-repudiation",
        mechanism: "A bundle is accepted only with signatures of trust root keys meeting the bundle threshold, and the accepted entry records the signers' key ids and the names and roles the trust root gives those keys; the appliance key signs every audit entry and every report.",
        sections: &[Section::Transfers, Section::Integrity],
        entries: Entries::Kinds(&["import-accepted", "report-generated", "inventory-exported"]),
        needs_intact_log: true,
    },
    Control {
        id: "AU-12",
        oscal_id: "au-12",
        framework: Framework::Nist80053,
        title: "Audit record generation",
        mechanism: "The appliance writes its own entries: an accepted volume and a trust root update are logged in the same catalog transaction as the change, so neither is committed without its entry.",
        sections: &[Section::Transfers, Section::Integrity],
        entries: Entries::All,
        needs_intact_log: false,
    },
    Control {
        id: "CM-3",
        oscal_id: "cm-3",
        framework: Framework::Nist80053,
        title: "Configuration change control",
        mechanism: "What the appliance serves changes only by importing a signed bundle that passes the trust root, expiry, rollback and import-policy checks; each attempt is logged with its outcome, and each served name's previous and new digest is recorded with the import that changed it.",
        sections: &[Section::Transfers, Section::Changes, Section::TrustRoots],
        entries: Entries::Kinds(&[
            "import-accepted",
            "import-rejected",
            "policy-decision",
            "trust-root-updated",
        ]),
        needs_intact_log: false,
    },
    Control {
        id: "CM-5",
        oscal_id: "cm-5",
        framework: Framework::Nist80053,
        title: "Access restrictions for change",
        mechanism: "Only bundles signed by a threshold of the pinned trust root's bundle keys change the served content, and a new trust root needs a threshold of the previous root's keys and of its own.",
        sections: &[Section::Transfers, Section::TrustRoots],
        entries: Entries::Kinds(&["import-accepted", "import-rejected", "trust-root-updated"]),
        needs_intact_log: false,
    },
    Control {
        id: "CM-8",
        oscal_id: "cm-8",
        framework: Framework::Nist80053,
        title: "System component inventory",
        mechanism: "The inventory lists every artifact served now with its digest, size, the bundle that carried it and the provenance recorded at packing; `airlockd inventory export` signs the same list.",
        sections: &[Section::Inventory],
        entries: Entries::Kinds(&["import-accepted", "inventory-exported"]),
        needs_intact_log: false,
    },
    Control {
        id: "CM-14",
        oscal_id: "cm-14",
        framework: Framework::Nist80053,
        title: "Signed components",
        mechanism: "A volume is imported only when its bundle statement carries valid signatures of trust root bundle keys meeting the threshold; otherwise it is rejected and quarantined.",
        sections: &[Section::Transfers],
        entries: Entries::Kinds(&["import-accepted", "import-rejected", "volume-quarantined"]),
        needs_intact_log: false,
    },
    Control {
        id: "SI-7",
        oscal_id: "si-7",
        framework: Framework::Nist80053,
        title: "Software, firmware, and information integrity",
        mechanism: "Every blob is hashed against its signed digest before it enters the store, a volume with a mismatch is rejected, and `airlockd fsck` re-hashes the store and withdraws artifacts whose blobs are damaged.",
        sections: &[Section::Transfers, Section::Inventory],
        entries: Entries::Kinds(&["import-accepted", "import-rejected", "fsck-repaired"]),
        needs_intact_log: false,
    },
    Control {
        id: "SR-4",
        oscal_id: "sr-4",
        framework: Framework::Nist80053,
        title: "Provenance",
        mechanism: "For each served artifact the inventory names the bundle that carried it and the provenance recorded at packing (source, licence, revision, lineage), which the bundle's signatures cover.",
        sections: &[Section::Inventory, Section::Transfers],
        entries: Entries::Kinds(&["import-accepted"]),
        needs_intact_log: false,
    },
    Control {
        id: "SR-11",
        oscal_id: "sr-11",
        framework: Framework::Nist80053,
        title: "Component authenticity",
        mechanism: "What crosses the gap is authenticated by bundle signatures verified against the pinned trust root and by content digests, and is checked by the import policy over the signed scan results; a volume that fails is rejected and quarantined.",
        sections: &[Section::Transfers],
        entries: Entries::Kinds(&[
            "import-accepted",
            "import-rejected",
            "volume-quarantined",
            "policy-decision",
        ]),
        needs_intact_log: false,
    },
    Control {
        id: "MP-5",
        oscal_id: "mp-5",
        framework: Framework::Nist80053,
        title: "Media transport",
        mechanism: "Each volume brought in on media is logged by file name, bundle volume number, operator and the SHA-256 and size of the file as read (to compare with the bill of lading `airlock report` writes when the media is handed over), authenticated before any of it is used, and copied into quarantine when rejected; custody of the media in transit is outside airlock.",
        sections: &[Section::Transfers],
        entries: Entries::Kinds(&[
            "import-started",
            "import-accepted",
            "import-duplicate",
            "import-rejected",
            "import-failed",
            "volume-quarantined",
            "quarantine-failed",
        ]),
        needs_intact_log: false,
    },
    Control {
        id: "164.312(b)",
        oscal_id: "hipaa-164.312.b",
        framework: Framework::Hipaa,
        title: "Audit controls",
        mechanism: "The appliance records its activity in a hash-chained, signed audit log, which `airlockd audit verify` checks and `airlockd report` examines.",
        sections: &[Section::Transfers, Section::Integrity],
        entries: Entries::All,
        needs_intact_log: true,
    },
    Control {
        id: "164.312(c)(1)",
        oscal_id: "hipaa-164.312.c.1",
        framework: Framework::Hipaa,
        title: "Integrity",
        mechanism: "Content is verified against signed digests at import and by `airlockd fsck`, so improper alteration of what the appliance holds is detected; airlock does not know which data is ePHI.",
        sections: &[Section::Transfers, Section::Integrity],
        entries: Entries::Kinds(&["import-accepted", "import-rejected", "fsck-repaired"]),
        needs_intact_log: false,
    },
    Control {
        id: "164.312(e)(1)",
        oscal_id: "hipaa-164.312.e.1",
        framework: Framework::Hipaa,
        title: "Transmission security",
        mechanism: "Data crosses the gap as signed, digest-addressed volumes, so alteration in transit is detected at import; airlock does not encrypt volumes, so confidentiality on the media is the organisation's.",
        sections: &[Section::Transfers],
        entries: Entries::Kinds(&["import-accepted", "import-rejected"]),
        needs_intact_log: false,
    },
    Control {
        id: "CC7",
        oscal_id: "soc2-cc7",
        framework: Framework::Soc2,
        title: "System operations",
        mechanism: "Refused and failed imports, quarantines, store repairs and breaks in the audit chain are recorded and shown in the report (and in the exit status of `audit verify` and `report`), so anomalies are detected and evidenced; responding to them is the organisation's.",
        sections: &[Section::Transfers, Section::Exceptions, Section::Integrity],
        entries: Entries::Kinds(&[
            "import-rejected",
            "import-failed",
            "volume-quarantined",
            "quarantine-failed",
            "fsck-repaired",
            "inbox-move-failed",
        ]),
        needs_intact_log: false,
    },
    Control {
        id: "CC8",
        oscal_id: "soc2-cc8",
        framework: Framework::Soc2,
        title: "Change management",
        mechanism: "Changes to what the appliance serves arrive only as signed bundles checked against the trust root, rollback protection and the import policy, and each attempt is logged with its outcome.",
        sections: &[Section::Transfers, Section::TrustRoots],
        entries: Entries::Kinds(&[
            "import-accepted",
            "import-rejected",
            "policy-decision",
            "trust-root-updated",
        ]),
        needs_intact_log: false,
    },
    Control {
        id: "A.8.32",
        oscal_id: "iso27001-a.8.32",
        framework: Framework::Iso27001,
        title: "Change management",
        mechanism: "Changes to what the appliance serves arrive only as signed bundles checked against the trust root, rollback protection and the import policy, and each attempt is logged with its outcome.",
        sections: &[Section::Transfers, Section::TrustRoots],
        entries: Entries::Kinds(&[
            "import-accepted",
            "import-rejected",
            "policy-decision",
            "trust-root-updated",
        ]),
        needs_intact_log: false,
    },
    Control {
        id: "Art. 30",
        oscal_id: "gdpr-art30",
        framework: Framework::Gdpr,
        title: "Records of processing activities",
        mechanism: "The transfer register records every transfer into the enclave (what, when, from which signed bundle) and can feed the controller's record; airlock does not know whether the data is personal data, nor the purposes or categories the record needs.",
        sections: &[Section::Transfers],
        entries: Entries::Kinds(OUTCOMES),
        needs_intact_log: false,
    },
];

impl Control {
    /// The evidence as one line: the report sections, then the audit entry kinds.
    pub fn evidence(&self) -> String {
        let sections: Vec<&str> = self.sections.iter().map(|s| s.as_str()).collect();
        format!(
            "{}; audit entries: {}",
            sections.join(", "),
            self.entries.describe()
        )
    }
}

/// One control of the mapping with the audit entries of the period that evidence it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlEvidence {
    pub control: &'static str,
    pub framework: Framework,
    pub title: &'static str,
    pub mechanism: &'static str,
    pub sections: &'static [Section],
    /// The audit entry kinds that evidence it (empty: every entry).
    pub audit_kinds: &'static [&'static str],
    /// Sequence numbers of the entries in the period that evidence it, ascending.
    pub audit_seqs: Vec<u64>,
    #[serde(skip)]
    pub def: &'static Control,
}

/// One audit entry the report covers, as the appendix and the OSCAL document cite it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cited {
    pub time: String,
    pub kind: String,
    pub hash: String,
}

/// The control mapping applied to a report's period. Serializes as the list of controls; the
/// entries cited (time, kind, hash by sequence number) are for the OSCAL document.
#[derive(Debug, Clone)]
pub struct Appendix {
    pub controls: Vec<ControlEvidence>,
    pub entries: BTreeMap<u64, Cited>,
}

impl Serialize for Appendix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.controls.serialize(s)
    }
}

/// Applies [`CONTROLS`] to `covered`, the audit entries whose time lies in the report's period.
pub fn appendix(covered: &[&Entry]) -> Appendix {
    let controls = CONTROLS
        .iter()
        .map(|c| ControlEvidence {
            control: c.id,
            framework: c.framework,
            title: c.title,
            mechanism: c.mechanism,
            sections: c.sections,
            audit_kinds: match c.entries {
                Entries::All => &[],
                Entries::Kinds(k) => k,
            },
            audit_seqs: covered
                .iter()
                .filter(|e| c.entries.matches(&e.kind))
                .map(|e| e.seq)
                .collect(),
            def: c,
        })
        .collect();
    let entries = covered
        .iter()
        .map(|e| {
            (
                e.seq,
                Cited {
                    time: e.time.clone(),
                    kind: e.kind.clone(),
                    hash: e.hash.clone(),
                },
            )
        })
        .collect();
    Appendix { controls, entries }
}

/// Ascending sequence numbers as ranges: `[3, 4, 5, 6, 7, 12]` → `3–7, 12` (en dash); two
/// consecutive numbers stay a list (`3, 4`). Empty for none.
pub fn seq_ranges(seqs: &[u64]) -> String {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        match j - i {
            0 => parts.push(sorted[i].to_string()),
            1 => {
                parts.push(sorted[i].to_string());
                parts.push(sorted[j].to_string());
            }
            _ => parts.push(format!("{}–{}", sorted[i], sorted[j])),
        }
        i = j + 1;
    }
    parts.join(", ")
}

/// The appendix as an HTML section of the report.
pub fn appendix_html(a: &Appendix) -> Markup {
    html! {
        h2 { "Control mapping" }
        p { "Which airlock mechanism serves each control, and which evidence in this report answers it: the report sections, and the audit entries of the period by sequence number (airlockd audit show lists them). A mechanism serves the appliance's part of a control; what the sentence leaves to the organisation stays with it." }
        table.rows {
            thead { tr {
                th { "Control" } th { "Framework" } th { "Mechanism" } th { "Evidence" } th { "Audit seq." }
            } }
            tbody {
                @for c in &a.controls {
                    tr {
                        td { b { (c.control) } br; (c.title) }
                        td { (c.framework.as_str()) }
                        td { (c.mechanism) }
                        td { (c.def.evidence()) }
                        td {
                            @if c.audit_seqs.is_empty() { "none in the period" }
                            @else { (seq_ranges(&c.audit_seqs)) }
                        }
                    }
                }
            }
        }
    }
}

/// The mapping as a Markdown table (`docs/compliance.md` holds it between markers; a test
/// keeps the two the same).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| control | framework | title | mechanism | evidence |\n|---|---|---|---|---|\n",
    );
    for c in CONTROLS {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            c.id,
            c.framework.as_str(),
            c.title,
            c.mechanism.replace('|', "\\|"),
            c.evidence()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seq_lists_compress_into_ranges() {
        assert_eq!(seq_ranges(&[]), "");
        assert_eq!(seq_ranges(&[5]), "5");
        assert_eq!(seq_ranges(&[3, 4]), "3, 4");
        assert_eq!(seq_ranges(&[3, 4, 5, 6, 7, 12]), "3–7, 12");
        assert_eq!(seq_ranges(&[12, 3, 5, 4, 4]), "3–5, 12");
        assert_eq!(seq_ranges(&[1, 3, 5, 6, 7, 9, 10]), "1, 3, 5–7, 9, 10");
        assert_eq!(seq_ranges(&[u64::MAX - 2, u64::MAX - 1, u64::MAX]), {
            let m = u64::MAX;
            format!("{}–{m}", m - 2)
        });
    }

    fn entry(seq: u64, kind: &str) -> Entry {
        Entry {
            seq,
            time: format!("2026-01-01T00:00:{seq:02}Z"),
            kind: kind.into(),
            data: json!({}),
            prev: String::new(),
            hash: format!("h{seq}"),
            sig: String::new(),
        }
    }

    #[test]
    fn each_control_cites_the_entries_of_its_kinds() {
        let log = [
            entry(1, "initialized"),
            entry(2, "import-started"),
            entry(3, "import-accepted"),
            entry(4, "import-started"),
            entry(5, "import-rejected"),
            entry(6, "volume-quarantined"),
            entry(7, "report-generated"),
        ];
        let covered: Vec<&Entry> = log.iter().collect();
        let a = appendix(&covered);
        let seqs = |id: &str| {
            a.controls
                .iter()
                .find(|c| c.control == id)
                .unwrap()
                .audit_seqs
                .clone()
        };
        assert_eq!(seqs("AU-2"), [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(seqs("CM-14"), [3, 5, 6]);
        assert_eq!(seqs("AU-7"), [7]);
        assert_eq!(seqs("MP-5"), [2, 3, 4, 5, 6]);
        assert_eq!(seqs("Art. 30"), [3, 5]);
        assert_eq!(a.entries[&5].hash, "h5");
        assert_eq!(a.controls.len(), CONTROLS.len());
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v[0]["control"], "AU-2");
        assert_eq!(v[0]["framework"], "NIST SP 800-53 rev5");
        assert_eq!(v[4]["auditSeqs"], json!([1, 2, 3, 4, 5, 6, 7]));
    }

    /// Every kind the mapping cites is one the appliance writes, so no control waits for
    /// evidence that never comes; every control the assessor asks about is in the table.
    #[test]
    fn the_table_cites_only_written_kinds_and_covers_the_asked_controls() {
        const WRITTEN: &[&str] = &[
            "initialized",
            "import-started",
            "import-accepted",
            "import-duplicate",
            "import-rejected",
            "import-failed",
            "volume-quarantined",
            "quarantine-failed",
            "policy-decision",
            "trust-root-updated",
            "fsck-repaired",
            "inbox-move-failed",
            "inventory-exported",
            "report-generated",
        ];
        let sources = [
            include_str!("import.rs"),
            include_str!("lib.rs"),
            include_str!("check.rs"),
            include_str!("watch.rs"),
            include_str!("../../airlockd/src/cmd/inventory.rs"),
            include_str!("../../airlockd/src/cmd/report.rs"),
        ]
        .concat();
        for k in WRITTEN {
            assert!(sources.contains(&format!("\"{k}\"")), "{k} is not written");
        }
        for c in CONTROLS {
            if let Entries::Kinds(kinds) = c.entries {
                for k in kinds {
                    assert!(WRITTEN.contains(k), "{}: {k}", c.id);
                }
            }
            assert!(!c.sections.is_empty(), "{}", c.id);
        }
        let ids: Vec<&str> = CONTROLS.iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            [
                "AU-2",
                "AU-3",
                "AU-6",
                "AU-7",
                "AU-9",
                "AU-10",
                "AU-12",
                "CM-3",
                "CM-5",
                "CM-8",
                "CM-14",
                "SI-7",
                "SR-4",
                "SR-11",
                "MP-5",
                "164.312(b)",
                "164.312(c)(1)",
                "164.312(e)(1)",
                "CC7",
                "CC8",
                "A.8.32",
                "Art. 30"
            ]
        );
        let mut oscal: Vec<&str> = CONTROLS.iter().map(|c| c.oscal_id).collect();
        oscal.sort_unstable();
        oscal.dedup();
        assert_eq!(oscal.len(), CONTROLS.len());
    }

    /// `docs/compliance.md` holds [`markdown_table`] between its control-mapping markers; to
    /// rewrite it after changing the mapping, run this test with AIRLOCK_WRITE_GENERATED=1.
    #[test]
    fn the_compliance_doc_holds_the_generated_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/compliance.md");
        let start = "<!-- control-mapping:begin -->\n";
        let end = "<!-- control-mapping:end -->";
        let between = |doc: &str| {
            let a = doc.find(start).expect("begin marker") + start.len();
            let b = doc.find(end).expect("end marker");
            (a, b)
        };
        let doc = std::fs::read_to_string(path).expect(path);
        if std::env::var_os("AIRLOCK_WRITE_GENERATED").is_some() {
            let (a, b) = between(&doc);
            let new = format!("{}{}{}", &doc[..a], markdown_table(), &doc[b..]);
            std::fs::write(path, new).unwrap();
        }
        let doc = std::fs::read_to_string(path).unwrap();
        let (a, b) = between(&doc);
        assert_eq!(
            &doc[a..b],
            markdown_table(),
            "{path}: the control mapping differs from controls.rs; rerun with AIRLOCK_WRITE_GENERATED=1"
        );
    }
}
