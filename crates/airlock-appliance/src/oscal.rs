//! OSCAL documents: the `full` report as OSCAL assessment results (`airlockd report full
//! --format oscal`), and airlock's component definition (`docs/compliance/component-definition.json`).
//!
//! GRC tools read OSCAL, NIST's JSON model for control assessments, so the report's evidence is
//! also written in it:
//!
//! * **Assessment results**: one `result` for the report's period (`start`, `end`), with one
//!   `observation` per import attempt of the transfer register (method `EXAMINE`: the appliance
//!   examined the volume; collected at the time of the audit entry recording the outcome; its
//!   `relevant-evidence` names that entry's sequence number and hash) and one `finding` per
//!   control of the mapping ([`crate::controls`]): its target is the control, its state
//!   `satisfied` unless the control rests on the audit log and `audit verify` found the log not
//!   intact, and it links the observations of the import attempts that evidence it. There is no
//!   separate assessment plan: `import-ap` points at a back-matter resource saying that the
//!   controls reviewed and the evidence examined are those of the control mapping.
//! * **Deterministic**: every UUID is a name-based UUID (RFC 4122 version 5, SHA-1) in
//!   [`NAMESPACE`] of the appliance key id and what it names (an observation: the audit
//!   sequence number), `last-modified` is the period's end, and nothing reads a clock, so the
//!   same data and period give the same bytes, and an observation keeps its UUID in every report
//!   that covers its entry. Object keys are written sorted, whichever of serde_json's map
//!   features the build unifies.
//! * **OSCAL version**: [`OSCAL_VERSION`], the version of the models compliance-trestle
//!   validates against (its `trestle version`); the end-to-end tests validate both documents
//!   with `trestle validate`.

use airlock_core::{time::format_rfc3339, time::parse_rfc3339};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use crate::controls::{Control, Framework, CONTROLS};
use crate::report::{Report, Transfer};

/// The OSCAL version the documents declare and are validated against.
pub const OSCAL_VERSION: &str = "1.2.1";

/// The namespace of airlock's name-based UUIDs: `uuid5(NAMESPACE_URL, "urn:airlock:oscal")`,
/// `beec09db-e119-54d3-9088-e5db94de7e68`.
pub const NAMESPACE: [u8; 16] = [
    0xbe, 0xec, 0x09, 0xdb, 0xe1, 0x19, 0x54, 0xd3, 0x90, 0x88, 0xe5, 0xdb, 0x94, 0xde, 0x7e, 0x68,
];

/// A version 5 (name-based, SHA-1) UUID of `name` in [`NAMESPACE`], in its canonical text form
/// (lower-case hex, 8-4-4-4-12).
pub fn uuid5(name: &str) -> String {
    let mut h = Sha1::new();
    h.update(NAMESPACE);
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// One line: OSCAL titles hold no line break.
fn line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The UUID of the observation of the import attempt recorded at audit entry `seq`.
pub fn observation_uuid(appliance: &str, seq: u64) -> String {
    uuid5(&format!("{appliance}/observation/{seq}"))
}

/// What the register says of one import attempt, in sentences.
fn describe(t: &Transfer) -> String {
    let bundle = match (&t.bundle_name, &t.bundle_id) {
        (Some(n), Some(id)) => format!(
            "bundle {n} {} ({id})",
            t.bundle_version.as_deref().unwrap_or("")
        ),
        (None, Some(id)) => format!("bundle {id}"),
        (Some(n), None) => format!("bundle {n}"),
        (None, None) => "no bundle (refused before its signed statement was read)".into(),
    };
    let mut s = format!("Volume `{}`", t.volume);
    if let Some(n) = t.volume_number {
        s.push_str(&format!(" (volume {n})"));
    }
    s.push_str(&format!(" of {bundle}"));
    if let Some(h) = &t.volume_sha256 {
        s.push_str(&format!(", file SHA-256 {h}"));
    }
    if let Some(o) = &t.operator {
        s.push_str(&format!(", imported by {o}"));
    }
    if let Some(c) = &t.channel {
        s.push_str(&format!(", channel {c}"));
        if let Some(q) = t.sequence {
            s.push_str(&format!(" #{q}"));
        }
    }
    s.push_str(&format!(": {}", t.outcome));
    if let Some(k) = &t.rejection_kind {
        s.push_str(&format!(" by the {k} check"));
    }
    s.push('.');
    if !t.signers.is_empty() {
        let who: Vec<String> = t
            .signers
            .iter()
            .map(|k| match t.signer_names.get(k) {
                Some(n) => format!("{k} ({n})"),
                None => k.clone(),
            })
            .collect();
        s.push_str(&format!(" Signed by key ids {}", who.join(", ")));
        if let Some(th) = t.threshold {
            s.push_str(&format!(" ({} of threshold {th}", t.signers.len()));
            if let Some(v) = t.trust_root_version {
                s.push_str(&format!(", trust root version {v}"));
            }
            s.push(')');
        }
        s.push('.');
    }
    if !t.reason.is_empty() {
        s.push_str(&format!(" Reason: {}", t.reason));
        if !t.reason.ends_with('.') {
            s.push('.');
        }
    }
    if let Some(q) = &t.quarantined_as {
        s.push_str(&format!(" Quarantined as `{q}`."));
    }
    if let (Some(p), Some(h)) = (&t.policy, &t.policy_sha256) {
        s.push_str(&format!(" Import policy {p} (SHA-256 {h})."));
    }
    s
}

/// The finding's state for `c`: `None` when satisfied, else why not.
fn not_satisfied(c: &Control, r: &Report) -> Option<String> {
    if !c.needs_intact_log {
        return None;
    }
    match &r.integrity {
        Some(g) if g.audit_intact => None,
        Some(g) => Some(format!(
            "`airlockd audit verify` found the audit log not intact: {}",
            g.audit_problems.join("; ")
        )),
        None => Some("the audit log was not verified for this report".into()),
    }
}

/// The report as an OSCAL assessment-results document (pretty JSON, newline-terminated).
pub fn assessment_results(r: &Report) -> Vec<u8> {
    let key = r.appliance.as_str();
    let from = r.period.from.as_deref().unwrap_or("");
    let to = r.period.to.as_str();
    let entries = r.controls.as_ref().map(|a| &a.entries);
    let start = r
        .period
        .from
        .clone()
        .or_else(|| {
            entries
                .and_then(|e| e.values().next())
                .map(|c| c.time.clone())
        })
        .unwrap_or_else(|| r.period.to.clone());
    // OSCAL requires start <= end only by meaning; keep it so for an empty log.
    let start = match (parse_rfc3339(&start), parse_rfc3339(to)) {
        (Ok(s), Ok(e)) if s > e => format_rfc3339(e),
        _ => start,
    };
    let plan_uuid = uuid5(&format!("{key}/resource/assessment-method"));
    let log_uuid = uuid5(&format!("{key}/resource/audit-log/{from}/{to}"));
    let range = match (r.audit.first_seq, r.audit.last_seq) {
        (Some(a), Some(b)) => format!("entries {a} to {b}"),
        _ => "no entries".into(),
    };
    let head = r.audit.head_hash.as_deref().unwrap_or("none");

    let observations: Vec<Value> = r
        .transfers
        .iter()
        .flatten()
        .map(|t| {
            let cited = entries.and_then(|e| e.get(&t.audit_seq));
            let kind = cited.map(|c| c.kind.as_str()).unwrap_or("import-started");
            let hash = cited.map(|c| c.hash.as_str()).unwrap_or("unknown");
            json!({
                "uuid": observation_uuid(key, t.audit_seq),
                "title": line(&format!("Import of {}: {}", t.volume, t.outcome)),
                "description": describe(t),
                "methods": ["EXAMINE"],
                "types": ["control-objective"],
                "relevant-evidence": [{
                    "href": format!("#{log_uuid}"),
                    "description": format!("Audit entry {} ({kind}), hash {hash}.", t.audit_seq),
                }],
                "collected": t.time,
            })
        })
        .collect();

    let findings: Vec<Value> = r
        .controls
        .iter()
        .flat_map(|a| a.controls.iter())
        .map(|c| {
            let d = c.def;
            let related: Vec<Value> = r
                .transfers
                .iter()
                .flatten()
                .filter(|t| c.audit_seqs.binary_search(&t.audit_seq).is_ok())
                .map(|t| json!({"observation-uuid": observation_uuid(key, t.audit_seq)}))
                .collect();
            let seqs = if c.audit_seqs.is_empty() {
                "none in the period".to_string()
            } else {
                crate::controls::seq_ranges(&c.audit_seqs)
            };
            let problem = not_satisfied(d, r);
            let mut status = json!({
                "state": if problem.is_some() { "not-satisfied" } else { "satisfied" },
            });
            if let Some(p) = &problem {
                status["remarks"] = json!(p);
            }
            let mut f = json!({
                "uuid": uuid5(&format!("{key}/finding/{}/{from}/{to}", d.oscal_id)),
                "title": format!("{} {} ({})", d.id, d.title, d.framework.as_str()),
                "description": format!(
                    "{}\n\nEvidence: {}. Audit entries in the period: {seqs}.",
                    d.mechanism,
                    d.evidence()
                ),
                "target": {
                    "type": "objective-id",
                    "target-id": d.oscal_id,
                    "status": status,
                },
            });
            if !related.is_empty() {
                f["related-observations"] = json!(related);
            }
            f
        })
        .collect();

    let mut result = json!({
        "uuid": uuid5(&format!("{key}/result/{from}/{to}")),
        "title": line(&format!("Transfers into the appliance, {start} to {to}")),
        "description": format!(
            "Import attempts and the record of appliance {key} from {} to {to}: audit {range}, head hash {head}. Produced by `airlockd report full --format oscal` from the appliance's catalog and hash-chained audit log.",
            r.period.from.as_deref().unwrap_or("the start of the log"),
        ),
        "start": start,
        "end": to,
        "reviewed-controls": {
            "description": "The controls of airlock's control mapping (docs/compliance.md).",
            "control-selections": [{
                "include-controls": CONTROLS.iter().map(|c| json!({"control-id": c.oscal_id})).collect::<Vec<_>>(),
            }],
        },
    });
    if !observations.is_empty() {
        result["observations"] = json!(observations);
    }
    if !findings.is_empty() {
        result["findings"] = json!(findings);
    }

    let mut doc = json!({
        "assessment-results": {
            "uuid": uuid5(&format!("{key}/assessment-results/{from}/{to}")),
            "metadata": {
                "title": line(&format!("airlock appliance assessment results, {start} to {to}")),
                "last-modified": to,
                "version": to,
                "oscal-version": OSCAL_VERSION,
                "remarks": format!("Appliance key id {key}. The DSSE envelope beside this file, signed by that key, states its SHA-256."),
            },
            "import-ap": {
                "href": format!("#{plan_uuid}"),
                "remarks": "No separate assessment plan is issued; see the back-matter resource.",
            },
            "results": [result],
            "back-matter": {
                "resources": [
                    {
                        "uuid": plan_uuid,
                        "title": "Assessment method: airlock's control mapping",
                        "description": "The controls reviewed and the evidence examined for each are those of airlock's control mapping (docs/compliance.md, \"Control mapping\"): each finding names the mechanism, the report sections and the audit entry kinds that evidence it. Observations are the import attempts the audit log records in the period.",
                    },
                    {
                        "uuid": log_uuid,
                        "title": "The appliance's audit log",
                        "description": format!(
                            "The hash-chained audit log signed by appliance key {key} (DATA/catalog.db), {range}, head hash {head}. Check it on the appliance with `airlockd audit verify` and read the entries with `airlockd audit show`."
                        ),
                    },
                ],
            },
        }
    });
    doc.sort_all_objects();
    let mut v = serde_json::to_vec_pretty(&doc).expect("OSCAL document serializes");
    v.push(b'\n');
    v
}

/// The component definition's own version, raised when the mapping changes.
pub const COMPONENT_VERSION: &str = "1.0";
/// When the component definition was last changed (part of the document).
pub const COMPONENT_MODIFIED: &str = "2026-12-01T00:00:00Z";

/// airlock's OSCAL component definition: the appliance as one software component with one
/// control implementation per framework of the mapping, each control's mechanism its
/// implemented requirement. `docs/compliance/component-definition.json` is this document.
pub fn component_definition() -> Value {
    let implementations: Vec<Value> = Framework::ALL
        .iter()
        .map(|fw| {
            let reqs: Vec<Value> = CONTROLS
                .iter()
                .filter(|c| c.framework == *fw)
                .map(|c| {
                    json!({
                        "uuid": uuid5(&format!("component/airlockd/{}", c.oscal_id)),
                        "control-id": c.oscal_id,
                        "description": c.mechanism,
                        "remarks": format!("{} {}. Evidence in `airlockd report full`: {}.", c.id, c.title, c.evidence()),
                    })
                })
                .collect();
            json!({
                "uuid": uuid5(&format!("component/airlockd/implementation/{}", fw.as_str())),
                "source": fw.source(),
                "description": format!(
                    "{} controls served by the airlock appliance.{}",
                    fw.as_str(),
                    if *fw == Framework::Nist80053 { "" } else {
                        " No OSCAL catalog is published for this framework: the source is its official text, and the control ids are airlock's tokens for its clauses."
                    }
                ),
                "implemented-requirements": reqs,
            })
        })
        .collect();
    let mut doc = json!({
        "component-definition": {
            "uuid": uuid5("component-definition/airlock"),
            "metadata": {
                "title": "airlock: the disconnected-side appliance (airlockd)",
                "last-modified": COMPONENT_MODIFIED,
                "version": COMPONENT_VERSION,
                "oscal-version": OSCAL_VERSION,
            },
            "components": [{
                "uuid": uuid5("component/airlockd"),
                "type": "software",
                "title": "airlockd",
                "description": "The disconnected side of airlock, an air-gap transfer tool: it verifies signed bundle volumes against a pinned trust root, imports them into a content-addressed store, serves them read-only, and keeps a hash-chained audit log signed by its own key, from which `airlockd report` writes signed compliance reports.",
                "purpose": "Bring software, models and packages across an air gap with verified integrity and provenance, and keep the record of every transfer.",
                "control-implementations": implementations,
            }],
        }
    });
    doc.sort_all_objects();
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_rfc_4122_version_5_and_stable() {
        // Python: uuid.uuid5(uuid.UUID("beec09db-e119-54d3-9088-e5db94de7e68"), "abc/observation/3")
        assert_eq!(
            observation_uuid("abc", 3),
            "439d692a-97d9-5650-9754-f2f880c9b27f"
        );
        assert_eq!(observation_uuid("abc", 3), observation_uuid("abc", 3));
        assert_ne!(observation_uuid("abc", 3), observation_uuid("abc", 4));
        assert_ne!(observation_uuid("abc", 3), observation_uuid("abd", 3));
        for name in ["", "x", "abc/observation/3", "ünïcode/finding/au-2"] {
            let u = uuid5(name);
            let b = u.as_bytes();
            assert_eq!(u.len(), 36, "{u}");
            for (i, c) in u.char_indices() {
                if [8, 13, 18, 23].contains(&i) {
                    assert_eq!(c, '-', "{u}");
                } else {
                    assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{u}");
                }
            }
            assert_eq!(b[14], b'5', "version nibble: {u}");
            assert!(b"89ab".contains(&b[19]), "variant: {u}");
        }
    }

    #[test]
    fn the_namespace_is_the_documented_uuid() {
        assert_eq!(hex::encode(NAMESPACE), "beec09dbe11954d39088e5db94de7e68");
    }

    #[test]
    fn titles_lose_line_breaks() {
        assert_eq!(line("a\nb\r\tc"), "a b  c");
    }

    /// `docs/compliance/component-definition.json` is what [`component_definition`] builds; to
    /// rewrite it after changing the mapping, run this test with AIRLOCK_WRITE_GENERATED=1.
    #[test]
    fn the_shipped_component_definition_is_generated_from_the_mapping() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/compliance/component-definition.json"
        );
        let want = component_definition();
        if std::env::var_os("AIRLOCK_WRITE_GENERATED").is_some() {
            let mut bytes = serde_json::to_vec_pretty(&want).unwrap();
            bytes.push(b'\n');
            std::fs::write(path, bytes).unwrap();
        }
        let got: Value = serde_json::from_slice(&std::fs::read(path).expect(path)).unwrap();
        assert_eq!(
            got, want,
            "{path} differs from the control mapping; rerun with AIRLOCK_WRITE_GENERATED=1"
        );
        let reqs: usize = want["component-definition"]["components"][0]["control-implementations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["implemented-requirements"].as_array().unwrap().len())
            .sum();
        assert_eq!(reqs, CONTROLS.len());
    }
}
