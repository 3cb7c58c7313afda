//! airlock-attest: what a scan of one artifact becomes in a bundle.
//!
//! Scan results go into a bundle twice: as a [`ScanRecord`] in the signed bundle manifest
//! (what the import policy reads, before any blob is written), and as an attestation artifact,
//! an OCI artifact whose `subject` is the scanned manifest (the OCI way to attach results to
//! what they describe, ready for a referrers API). [`attest`] builds both from the scanner's
//! findings: the result document (`airlock-scan-result/v1`, naming the scanner and the rule
//! files, so an auditor can tell which rules a bundle was scanned with), the attestation
//! manifest, its catalog [`Artifact`] and its `index.json` entry, and the blobs they need.
//!
//! Pure functions over values: no IO, no scanning. Documents are canonical JSON, so the same
//! results always give the same digests.

use std::collections::BTreeMap;

use airlock_core::bundle::{Artifact, ArtifactKind, Provenance, ScanRecord};
use airlock_core::media;
use airlock_core::oci::{Descriptor, Manifest};
use airlock_core::{Digest, Sha256};
use airlock_scan::Finding;
use serde::Serialize;
use serde_json::{json, Value};

/// The attestation's `artifactType` and the media type of its one layer (the result document).
pub const ATTESTATION_TYPE: &str = "application/vnd.airlock.scan.v1+json";
/// The result document's `_type`.
pub const RESULT_TYPE: &str = "airlock-scan-result/v1";
/// The scanner's name and version, the start of every scanner string.
pub const SCANNER: &str = concat!("airlock-scan ", env!("CARGO_PKG_VERSION"));

/// Who scanned: the scanner string (scanner version, rule engine, rule-set digest) and the
/// rule set it ran.
#[derive(Debug, Clone)]
pub struct Scanner {
    pub id: String,
    /// One digest for the whole rule set.
    pub rules_id: String,
    /// The rule files compiled in, built-in first.
    pub rule_files: Vec<RuleFile>,
    /// `sha256:` of the operator's globals allowlist (`--allow-globals`), when one was given;
    /// the built-in list is named by its version ([`airlock_scan::allow::BUILTIN_ID`]).
    pub allow_globals: Option<String>,
}

/// One rule file of the rule set, as the result document lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFile {
    /// The namespace its rules live in (`builtin`, or the file stem).
    pub namespace: String,
    /// Where it came from (`builtin` for the built-in rules).
    pub origin: String,
    /// `sha256:` of the file's bytes.
    pub sha256: String,
}

/// Everything one scanned artifact adds to a bundle.
#[derive(Debug, Clone)]
pub struct Attestation {
    /// The record for the signed bundle manifest.
    pub record: ScanRecord,
    /// The attestation artifact (`scan:NAME`), whose root is the attestation manifest.
    pub artifact: Artifact,
    /// Its `index.json` entry.
    pub index_entry: Descriptor,
    /// The blobs it needs, as (digest, bytes): the manifest, the result document and the empty
    /// config, in that order.
    pub blobs: Vec<(Digest, Vec<u8>)>,
}

/// Findings as scan records carry them: the scanner's fields plus `key`, the string a waiver
/// names (`rule` or `rule:global`).
pub fn finding_records(findings: &[Finding]) -> Vec<Value> {
    findings
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(f).expect("finding serializes");
            v["key"] = json!(f.waiver_key());
            v
        })
        .collect()
}

/// The attestation of one scanned artifact: `files` blobs were scanned and found `findings`;
/// `retrieved` (RFC 3339) is when the bundle's sources were read.
pub fn attest(
    subject: &Artifact,
    files: usize,
    findings: &[Finding],
    scanner: &Scanner,
    retrieved: &str,
) -> Attestation {
    let findings = finding_records(findings);
    let result = json!({
        "_type": RESULT_TYPE, "scanner": scanner.id,
        "rules": {"id": scanner.rules_id, "files": scanner.rule_files},
        "globals": {"builtin": airlock_scan::allow::BUILTIN_ID, "operator": scanner.allow_globals},
        "subject": {"name": subject.name, "digest": subject.digest.to_string()},
        "files": files, "findings": findings,
    });
    let (rbytes, _) = json_blob(&result);
    let a = attach(
        &descriptor(&subject.media_type, subject.digest, subject.size),
        format!("scan:{}", subject.name),
        ATTESTATION_TYPE,
        rbytes,
        retrieved,
    );
    Attestation {
        record: ScanRecord {
            artifact: subject.name.clone(),
            subject: subject.digest,
            scanner: scanner.id.clone(),
            files: files as u64,
            findings,
            attestation: Some(a.artifact.digest),
        },
        artifact: a.artifact,
        index_entry: a.index_entry,
        blobs: a.blobs,
    }
}

/// An OCI artifact attached to another manifest: its catalog [`Artifact`] (kind
/// `attestation`), its `index.json` entry and its blobs.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub artifact: Artifact,
    pub index_entry: Descriptor,
    /// (digest, bytes): the manifest, the document and the empty config, in that order.
    pub blobs: Vec<(Digest, Vec<u8>)>,
}

/// `document` (of media type `artifact_type`) as an OCI artifact named `name` whose `subject`
/// is `subject`: a manifest with the empty config and the document as its one layer, so a
/// registry lists it among the subject's referrers. `retrieved` (RFC 3339) is recorded as
/// provenance, outside the OCI content.
pub fn attach(
    subject: &Descriptor,
    name: String,
    artifact_type: &str,
    document: Vec<u8>,
    retrieved: &str,
) -> Attachment {
    let ddigest = Sha256::digest(&document);
    let empty = Sha256::digest(media::EMPTY_JSON);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: descriptor(media::OCI_EMPTY, empty, media::EMPTY_JSON.len() as u64),
        layers: vec![descriptor(artifact_type, ddigest, document.len() as u64)],
        subject: Some(descriptor(
            &subject.media_type,
            subject.digest,
            subject.size,
        )),
        annotations: BTreeMap::new(),
    };
    let (mbytes, mdigest) = json_blob(&manifest);
    let size = mbytes.len() as u64;
    Attachment {
        artifact: Artifact {
            kind: ArtifactKind::Attestation,
            name: name.clone(),
            digest: mdigest,
            media_type: media::OCI_MANIFEST.into(),
            size,
            provenance: Provenance {
                source: format!("airlock pack ({SCANNER})"),
                retrieved: Some(retrieved.to_string()),
                ..Default::default()
            },
            platforms_omitted: vec![],
        },
        index_entry: Descriptor {
            media_type: media::OCI_MANIFEST.into(),
            digest: mdigest,
            size,
            artifact_type: Some(artifact_type.into()),
            platform: None,
            annotations: BTreeMap::from([
                (
                    media::ANNOTATION_AIRLOCK_KIND.to_string(),
                    "attestation".to_string(),
                ),
                (media::ANNOTATION_AIRLOCK_NAME.to_string(), name),
            ]),
        },
        blobs: vec![
            (mdigest, mbytes),
            (ddigest, document),
            (empty, media::EMPTY_JSON.to_vec()),
        ],
    }
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest,
        size,
        artifact_type: None,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

/// Canonical JSON bytes and their digest.
fn json_blob(v: &impl Serialize) -> (Vec<u8>, Digest) {
    let bytes = airlock_trust::canonical::to_vec(v).expect("JSON serializes");
    let d = Sha256::digest(&bytes);
    (bytes, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_scan::Severity;

    fn subject() -> Artifact {
        Artifact {
            kind: ArtifactKind::Model,
            name: "org/model".into(),
            digest: Sha256::digest(b"model manifest"),
            media_type: media::OCI_MANIFEST.into(),
            size: 14,
            provenance: Provenance::default(),
            platforms_omitted: vec![],
        }
    }

    fn scanner() -> Scanner {
        Scanner {
            id: format!("{SCANNER}; yara-x 1; rules sha256:abc"),
            rules_id: "sha256:abc".into(),
            rule_files: vec![RuleFile {
                namespace: "builtin".into(),
                origin: "builtin".into(),
                sha256: "sha256:def".into(),
            }],
            allow_globals: Some("sha256:0123".into()),
        }
    }

    fn finding() -> Finding {
        Finding {
            file: "model.pkl".into(),
            member: None,
            rule: "pickle/denylisted-global".into(),
            global: Some("os.system".into()),
            severity: Severity::Malicious,
            detail: "runs a shell".into(),
        }
    }

    #[test]
    fn manifest_names_the_subject_and_carries_the_result() {
        let s = subject();
        let a = attest(&s, 3, &[finding()], &scanner(), "2026-01-01T00:00:00Z");
        for (d, bytes) in &a.blobs {
            assert_eq!(*d, Sha256::digest(bytes), "blob digests match their bytes");
        }
        let (mdigest, mbytes) = &a.blobs[0];
        let m: Manifest = serde_json::from_slice(mbytes).unwrap();
        assert_eq!(m.artifact_type.as_deref(), Some(ATTESTATION_TYPE));
        let subj = m.subject.unwrap();
        assert_eq!((subj.digest, subj.size), (s.digest, s.size));
        assert_eq!(subj.media_type, s.media_type);
        assert_eq!(m.config.digest, a.blobs[2].0);
        assert_eq!(a.blobs[2].1, media::EMPTY_JSON);
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].digest, a.blobs[1].0);
        assert_eq!(m.layers[0].size, a.blobs[1].1.len() as u64);

        let result: Value = serde_json::from_slice(&a.blobs[1].1).unwrap();
        assert_eq!(result["_type"], RESULT_TYPE);
        assert_eq!(result["subject"]["name"], "org/model");
        assert_eq!(result["subject"]["digest"], s.digest.to_string());
        assert_eq!(result["files"], 3);
        assert_eq!(result["rules"]["files"][0]["namespace"], "builtin");
        assert_eq!(result["globals"]["builtin"], "data-classes-v1");
        assert_eq!(result["globals"]["operator"], "sha256:0123");
        assert_eq!(
            result["findings"][0]["key"],
            "pickle/denylisted-global:os.system"
        );

        assert_eq!(a.record.attestation, Some(*mdigest));
        assert_eq!(a.record.subject, s.digest);
        assert_eq!(a.record.files, 3);
        assert_eq!(
            a.record.findings,
            result["findings"].as_array().unwrap().clone()
        );
        assert_eq!(a.artifact.kind, ArtifactKind::Attestation);
        assert_eq!(a.artifact.name, "scan:org/model");
        assert_eq!(a.artifact.digest, *mdigest);
        assert_eq!(a.artifact.size, mbytes.len() as u64);
        assert_eq!(
            a.artifact.provenance.retrieved.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        assert_eq!(a.index_entry.digest, *mdigest);
        assert_eq!(
            a.index_entry
                .annotations
                .get(media::ANNOTATION_AIRLOCK_NAME),
            Some(&"scan:org/model".to_string())
        );
    }

    #[test]
    fn the_same_results_give_the_same_digests() {
        let a = attest(&subject(), 1, &[finding()], &scanner(), "t");
        let b = attest(&subject(), 1, &[finding()], &scanner(), "t");
        assert_eq!(a.blobs, b.blobs);
        let clean = attest(&subject(), 1, &[], &scanner(), "t");
        assert_ne!(a.record.attestation, clean.record.attestation);
        assert!(clean.record.findings.is_empty());
    }

    #[test]
    fn waiver_keys_name_the_global_when_there_is_one() {
        let mut f = finding();
        let with = finding_records(std::slice::from_ref(&f));
        f.global = None;
        let without = finding_records(&[f]);
        assert_eq!(with[0]["key"], "pickle/denylisted-global:os.system");
        assert_eq!(without[0]["key"], "pickle/denylisted-global");
        assert_eq!(without[0]["rule"], "pickle/denylisted-global");
    }
}
