//! The bill of lading (`airlock report`): the document that the person handing removable media
//! over and the person receiving it both sign.
//!
//! [`build`] turns facts that `cmd/report.rs` has already authenticated (the signed manifest of
//! the volumes, their `index.json`, which signatures verified against the trust root) and the
//! volume files' own sizes and SHA-256 into a typed [`Lading`]; [`Lading::html`] and
//! [`Lading::json`] render it. Pure functions over values: no clock, no IO, every list in a fixed
//! order, so the same volumes and trust root always give the same bytes.
//!
//! The HTML page uses the shared shell of `airlock-report` (self-contained, a CSP that loads
//! nothing, A4 print CSS); every value goes through maud, which escapes it.

use std::collections::{BTreeMap, BTreeSet};

use airlock_core::bundle::{ArtifactKind, BundleManifest, VolumeItem, Waiver, PAYLOAD_TYPE};
use airlock_core::Digest;
use airlock_report::{bar_chart, dash, html, page, Markup};
use airlock_trust::{Envelope, TrustRoot};
use serde::Serialize;

/// `_type` of the JSON document.
pub const LADING_TYPE: &str = "airlock-bill-of-lading/v1";

/// What was checked before any fact went into the document (printed on the page).
const CHECKED: &str = "Before this document was written, every volume listed was opened and its \
signed manifest checked: the signatures against the trust root's bundle role and threshold, the \
expiry, the volume label and index.json against the signed manifest, and the frame index \
against the file's length. Its SHA-256 was computed over the whole file. The blobs inside were \
not re-hashed for this document (airlock verify does that, and the receiving appliance does it \
again on import).";

/// A bill of lading, as the JSON format writes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lading {
    #[serde(rename = "_type")]
    pub type_: String,
    pub bundle: BundleInfo,
    /// The volume files given, in volume order.
    pub volumes: Vec<VolumeInfo>,
    /// Bytes of the volume files given.
    pub volumes_bytes: u64,
    /// Every volume of the bundle was given.
    pub complete: bool,
    /// Numbers of the bundle's volumes that were not given.
    pub missing_volumes: Vec<u32>,
    /// Every artifact, in manifest order.
    pub artifacts: Vec<ArtifactInfo>,
    /// The `files` items (pinned downloads and local files), in manifest order.
    pub files: Vec<FileItem>,
    pub signing: Signing,
    /// Scan results as the signed manifest records them, in manifest order.
    pub scan: Vec<ScanSummary>,
    /// Images, models and files that carry no scan record (packed with `--no-scan`).
    pub unscanned: Vec<String>,
    /// Signed waivers the bundle carries, in manifest order.
    pub waivers: Vec<Waiver>,
}

/// Who the bundle is.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleInfo {
    /// SHA-256 of the signed statement: the bundle's identity.
    pub id: Digest,
    pub name: String,
    pub version: String,
    pub channel: String,
    pub sequence: u64,
    pub created: String,
    pub expires: Option<String>,
    /// For a differential bundle: the digest of the appliance inventory it was built against.
    pub base: Option<Digest>,
    /// Blobs a differential bundle leaves out because the appliance already holds them.
    pub external_blobs: usize,
    /// `airlock <version>` that packed it.
    pub tool: String,
    /// Number of volumes of the bundle.
    pub volumes: u32,
    /// Blobs the bundle carries.
    pub blobs: usize,
    /// Their total size (uncompressed content).
    pub content_bytes: u64,
}

/// One volume file as the caller measured it.
#[derive(Debug, Clone)]
pub struct GivenVolume {
    /// The file's name (no directory).
    pub file: String,
    /// Its number, from the label checked against the signed manifest.
    pub volume: u32,
    pub size: u64,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
}

/// One volume file given.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeInfo {
    pub file: String,
    pub volume: u32,
    pub volumes: u32,
    /// Size of the file in bytes.
    pub size: u64,
    /// SHA-256 of the file, lowercase hex (what `sha256sum` prints).
    pub sha256: String,
    /// Blobs, and parts of split blobs, the signed manifest assigns to this volume.
    pub blobs: usize,
    /// Their uncompressed size.
    pub content_bytes: u64,
}

/// One artifact of the bundle.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactInfo {
    pub kind: ArtifactKind,
    /// The name or reference it is served and imported under.
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    /// Size of its root object (manifest or index).
    pub size: u64,
    /// Where it came from, as written in the input manifest.
    pub source: String,
    pub license: Option<String>,
    pub upstream_digest: Option<Digest>,
    pub registry: Option<String>,
    pub revision: Option<String>,
    pub commit: Option<String>,
    pub retrieved: Option<String>,
    /// Debian closures: how many packages it holds.
    pub packages: Option<u64>,
    pub platforms_omitted: Vec<String>,
}

/// One `files` item: a pinned download (`url:`) or a local file (`path:`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileItem {
    pub name: String,
    /// `url` or `path`.
    pub origin: String,
    pub source: String,
    pub digest: Digest,
}

/// The signatures on the manifest, checked against the trust root.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signing {
    pub trust_root_version: u64,
    pub trust_root_expires: String,
    /// Distinct trusted signatures the bundle role needs.
    pub threshold: u32,
    /// Distinct trusted key ids whose signatures verified.
    pub verified: usize,
    /// Every signature in the envelope, in envelope order.
    pub signatures: Vec<SignatureCheck>,
}

/// One signature on the manifest.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureCheck {
    pub key_id: String,
    /// The holder's name and role as the trust root gives them, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub status: SignatureStatus,
}

/// What the trust root made of one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureStatus {
    /// A key of the bundle role, and the signature verifies.
    Verified,
    /// The same key signed again; counted once.
    Duplicate,
    /// The trust root revokes this key.
    Revoked,
    /// Not a key of the trust root's bundle role.
    Untrusted,
    /// A bundle key, but the signature does not verify.
    Invalid,
}

impl SignatureStatus {
    fn text(self) -> &'static str {
        match self {
            SignatureStatus::Verified => "verified",
            SignatureStatus::Duplicate => "duplicate (counted once)",
            SignatureStatus::Revoked => "revoked key (not counted)",
            SignatureStatus::Untrusted => "not a bundle key of this trust root (not counted)",
            SignatureStatus::Invalid => "does not verify (not counted)",
        }
    }
}

/// Scan results for one artifact, summarised.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanSummary {
    pub artifact: String,
    pub subject: Digest,
    /// `clean`; else the worst of `malicious`, `invalid`, `unrecognised` (a severity this
    /// build does not know), `suspicious` (some suspicious finding has no waiver), `waived`
    /// (every finding is suspicious and covered by a signed waiver).
    pub verdict: String,
    pub files: u64,
    pub findings: usize,
    pub malicious: usize,
    pub invalid: usize,
    pub suspicious: usize,
    /// Suspicious findings a signed waiver covers.
    pub waived: usize,
    /// Findings of a severity this build does not know.
    pub other: usize,
    /// The scanner string: scanner version, rule engine, rule-set digest.
    pub scanner: String,
    /// The rule-set digest, taken from the scanner string.
    pub rules: Option<String>,
    pub attestation: Option<Digest>,
}

/// Builds the bill of lading. `manifest`, `bundle_id` and `index_json` must come from a volume
/// whose signed head verified; `volumes` are the files given (any order).
pub fn build(
    manifest: &BundleManifest,
    bundle_id: Digest,
    index_json: &[u8],
    signing: Signing,
    volumes: &[GivenVolume],
) -> Lading {
    let m = manifest;
    let mut given: Vec<&GivenVolume> = volumes.iter().collect();
    given.sort_by(|a, b| (a.volume, &a.file).cmp(&(b.volume, &b.file)));
    let numbers: BTreeSet<u32> = given.iter().map(|v| v.volume).collect();
    let missing_volumes: Vec<u32> = (1..=m.volumes).filter(|n| !numbers.contains(n)).collect();
    let volumes: Vec<VolumeInfo> = given
        .iter()
        .map(|v| {
            let items: Vec<u64> = m
                .items_of_volume(v.volume)
                .map(|item| match item {
                    VolumeItem::Whole(b) => b.size,
                    VolumeItem::Part(b, i) => b.parts[i].size,
                })
                .collect();
            VolumeInfo {
                file: v.file.clone(),
                volume: v.volume,
                volumes: m.volumes,
                size: v.size,
                sha256: v.sha256.clone(),
                blobs: items.len(),
                content_bytes: items.iter().sum(),
            }
        })
        .collect();
    let packages = debs_packages(index_json);
    let artifacts = m
        .artifacts
        .iter()
        .map(|a| {
            let p = &a.provenance;
            ArtifactInfo {
                kind: a.kind,
                name: a.name.clone(),
                digest: a.digest,
                media_type: a.media_type.clone(),
                size: a.size,
                source: p.source.clone(),
                license: p.license.clone(),
                upstream_digest: p.upstream_digest,
                registry: p.registry.clone(),
                revision: p.revision.clone(),
                commit: p.commit.clone(),
                retrieved: p.retrieved.clone(),
                packages: (a.kind == ArtifactKind::Debs)
                    .then(|| packages.get(&a.digest).copied())
                    .flatten(),
                platforms_omitted: a.platforms_omitted.clone(),
            }
        })
        .collect();
    let files = m
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::File)
        .map(|a| {
            let s = &a.provenance.source;
            let url = s.starts_with("http://") || s.starts_with("https://");
            FileItem {
                name: a.name.clone(),
                origin: if url { "url" } else { "path" }.into(),
                source: s.clone(),
                digest: a.digest,
            }
        })
        .collect();
    let scanned: BTreeSet<(&str, Digest)> = m
        .scan
        .iter()
        .map(|s| (s.artifact.as_str(), s.subject))
        .collect();
    let unscanned = m
        .artifacts
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                ArtifactKind::Image | ArtifactKind::Model | ArtifactKind::File
            )
        })
        .filter(|a| !scanned.contains(&(a.name.as_str(), a.digest)))
        .map(|a| a.name.clone())
        .collect();
    let scan = m
        .scan
        .iter()
        .map(|s| summarise_scan(s, &m.waivers))
        .collect();
    Lading {
        type_: LADING_TYPE.into(),
        bundle: BundleInfo {
            id: bundle_id,
            name: m.name.clone(),
            version: m.version.clone(),
            channel: m.channel.clone(),
            sequence: m.sequence,
            created: m.created.clone(),
            expires: m.expires.clone(),
            base: m.base_inventory,
            external_blobs: m.external.len(),
            tool: m.tool.clone(),
            volumes: m.volumes,
            blobs: m.blobs.len(),
            content_bytes: m.blobs.iter().map(|b| b.size).sum(),
        },
        volumes_bytes: volumes.iter().map(|v| v.size).sum(),
        complete: missing_volumes.is_empty(),
        missing_volumes,
        volumes,
        artifacts,
        files,
        signing,
        scan,
        unscanned,
        waivers: m.waivers.clone(),
    }
}

/// Package counts of Debian closures, from the `index.json` the signed manifest pins.
fn debs_packages(index_json: &[u8]) -> BTreeMap<Digest, u64> {
    let Ok(index) = serde_json::from_slice::<airlock_core::oci::Index>(index_json) else {
        return BTreeMap::new();
    };
    index
        .manifests
        .iter()
        .filter_map(|e| {
            let n = e
                .annotations
                .get(airlock_core::media::ANNOTATION_AIRLOCK_DEBS_PACKAGES)?;
            Some((e.digest, n.parse().ok()?))
        })
        .collect()
}

/// One scan record's counts and verdict; a suspicious finding is waived as the built-in import
/// policy decides it: a waiver for the artifact and the finding's key, for any file or its own.
fn summarise_scan(s: &airlock_core::bundle::ScanRecord, waivers: &[Waiver]) -> ScanSummary {
    let (mut malicious, mut invalid, mut suspicious, mut waived, mut other) = (0, 0, 0, 0, 0);
    for f in &s.findings {
        let text = |k: &str| f.get(k).and_then(|v| v.as_str());
        match text("severity") {
            Some("malicious") => malicious += 1,
            Some("invalid") => invalid += 1,
            // Information only (a clean numpy object array): not a problem, needs no waiver.
            Some("info") => {}
            Some("suspicious") => {
                suspicious += 1;
                let covered = waivers.iter().any(|w| {
                    w.artifact == s.artifact
                        && Some(w.finding.as_str()) == text("key")
                        && w.file
                            .as_deref()
                            .is_none_or(|file| Some(file) == text("file"))
                });
                if covered {
                    waived += 1;
                }
            }
            _ => other += 1,
        }
    }
    let verdict = if malicious > 0 {
        "malicious"
    } else if invalid > 0 {
        "invalid"
    } else if other > 0 {
        "unrecognised"
    } else if suspicious > waived {
        "suspicious"
    } else if suspicious > 0 {
        "waived"
    } else {
        "clean"
    };
    ScanSummary {
        artifact: s.artifact.clone(),
        subject: s.subject,
        verdict: verdict.into(),
        files: s.files,
        findings: s.findings.len(),
        malicious,
        invalid,
        suspicious,
        waived,
        other,
        scanner: s.scanner.clone(),
        rules: s
            .scanner
            .split("; ")
            .find_map(|part| part.strip_prefix("rules "))
            .map(str::to_string),
        attestation: s.attestation,
    }
}

/// What `root` makes of each signature of `envelope`; `verified` are the distinct trusted key
/// ids whose signatures verified (from authenticating the volume against `root`).
pub fn signing(envelope: &Envelope, root: &TrustRoot, verified: &[String]) -> Signing {
    let role = root.role_keys(airlock_trust::root::ROLE_BUNDLE);
    let mut counted = BTreeSet::new();
    let signatures = envelope
        .signatures
        .iter()
        .map(|s| {
            let id = s.keyid.as_str();
            let status = if root.meta.revoked.iter().any(|r| r == id) {
                SignatureStatus::Revoked
            } else if !role.contains_key(id) {
                SignatureStatus::Untrusted
            } else if !verified.iter().any(|v| v == id) || !single_verifies(envelope, s, root) {
                SignatureStatus::Invalid
            } else if !counted.insert(id) {
                SignatureStatus::Duplicate
            } else {
                SignatureStatus::Verified
            };
            let label = root.label(id);
            SignatureCheck {
                key_id: s.keyid.clone(),
                name: label.name,
                role: label.role,
                status,
            }
        })
        .collect();
    Signing {
        trust_root_version: root.meta.version,
        trust_root_expires: root.meta.expires.clone(),
        threshold: root.threshold(airlock_trust::root::ROLE_BUNDLE),
        verified: verified.len(),
        signatures,
    }
}

/// Does this one signature verify against its key in the bundle role? (A key that signed twice,
/// once validly, must not have its bad copy shown as verified.)
fn single_verifies(
    envelope: &Envelope,
    sig: &airlock_trust::dsse::EnvelopeSignature,
    root: &TrustRoot,
) -> bool {
    let keys: BTreeMap<_, _> = root
        .role_keys(airlock_trust::root::ROLE_BUNDLE)
        .into_iter()
        .filter(|(id, _)| *id == sig.keyid)
        .collect();
    let one = Envelope {
        payload: envelope.payload.clone(),
        payload_type: envelope.payload_type.clone(),
        signatures: vec![sig.clone()],
    };
    one.verify(PAYLOAD_TYPE, &keys, 1, airlock_trust::root::ROLE_BUNDLE)
        .is_ok()
}

impl Lading {
    /// The JSON document, pretty-printed, with a final newline.
    pub fn json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("bill of lading serializes");
        out.push(b'\n');
        out
    }

    /// The self-contained HTML page.
    pub fn html(&self) -> Vec<u8> {
        let b = &self.bundle;
        let title = format!("Bill of lading: {} {}", b.name, b.version);
        let heading = format!("Bill of lading — bundle {} {}", b.name, b.version);
        page(
            &title,
            &heading,
            self.header_html(),
            vec![
                self.volumes_html(),
                self.artifacts_html(),
                self.scan_html(),
                self.sign_off_html(),
            ],
        )
        .into_string()
        .into_bytes()
    }

    fn header_html(&self) -> Markup {
        let b = &self.bundle;
        html! {
            table {
                tbody {
                    tr { th { "Bundle id (SHA-256 of the signed statement)" } td.mono { (b.id.to_string()) } }
                    tr { th { "Name" } td { (b.name) } }
                    tr { th { "Version" } td { (b.version) } }
                    tr { th { "Channel / sequence" } td { (b.channel) " #" (b.sequence) } }
                    tr { th { "Created" } td { (b.created) } }
                    tr { th { "Expires" } td { (b.expires.as_deref().unwrap_or("never")) } }
                    tr { th { "Base (differential bundle)" } td {
                        @match &b.base {
                            Some(d) => { span.mono { (d.to_string()) } " (" (b.external_blobs) " blobs the appliance already holds are left out)" }
                            None => { "none: a full bundle" }
                        }
                    } }
                    tr { th { "Total size" } td {
                        (b.blobs) " blobs, " (b.content_bytes) " bytes (" (airlock_ui::human_bytes(b.content_bytes)) ") uncompressed, in "
                        (b.volumes) " volume(s)"
                    } }
                    tr { th { "Volumes given" } td {
                        (self.volumes.len()) " of " (b.volumes) ", " (self.volumes_bytes) " bytes: "
                        @if self.complete { span.good { "complete" } }
                        @else { span.bad { "INCOMPLETE" } " (missing volume " (join(&self.missing_volumes)) ")" }
                    } }
                    tr { th { "Signatures" } td {
                        (self.signing.verified) " of threshold " (self.signing.threshold)
                        " verified against trust root version " (self.signing.trust_root_version)
                    } }
                    tr { th { "Packed by" } td { (b.tool) } }
                }
            }
        }
    }

    fn volumes_html(&self) -> Markup {
        let labels: Vec<String> = self
            .volumes
            .iter()
            .map(|v| format!("volume {}", v.volume))
            .collect();
        let bars: Vec<(&str, u64, &str)> = self
            .volumes
            .iter()
            .zip(&labels)
            .map(|(v, l)| (l.as_str(), v.size, "#4a6fa5"))
            .collect();
        let s = &self.signing;
        html! {
            h2 { "Volumes" }
            p {
                @if self.complete {
                    "All " (self.bundle.volumes) " volume(s) of the bundle are listed."
                } @else {
                    span.bad { "Not every volume of the bundle is listed: volume " (join(&self.missing_volumes)) " of " (self.bundle.volumes) " missing." }
                }
            }
            table.rows {
                thead { tr {
                    th style="width: 28%" { "File" } th style="width: 8%" { "Volume" } th style="width: 11%" { "Size (bytes)" }
                    th { "SHA-256 of the file" } th style="width: 7%" { "Blobs" }
                } }
                tbody {
                    @for v in &self.volumes {
                        tr {
                            td.mono { (v.file) }
                            td { (v.volume) " of " (v.volumes) }
                            td { (v.size) }
                            td.mono { (v.sha256) }
                            td { (v.blobs) }
                        }
                    }
                }
            }
            p { "File sizes in bytes:" }
            (bar_chart(&bars))
            p { (CHECKED) }
            h2 { "Signatures on the manifest" }
            p {
                (s.verified) " distinct signature(s) verified against the bundle role of trust root version "
                (s.trust_root_version) " (expires " (s.trust_root_expires) "); the role needs " (s.threshold) "."
            }
            table.rows {
                thead { tr { th style="width: 25%" { "Holder (from the trust root)" } th style="width: 50%" { "Key id" } th { "Against the trust root" } } }
                tbody {
                    @for c in &s.signatures {
                        tr {
                            td { (dash(&c.name)) @if let Some(r) = &c.role { br; (r) } }
                            td.mono { (c.key_id) }
                            td class=(if c.status == SignatureStatus::Verified { "good" } else { "bad" }) { (c.status.text()) }
                        }
                    }
                }
            }
        }
    }

    fn artifacts_html(&self) -> Markup {
        html! {
            h2 { "Artifacts" }
            p { (self.artifacts.len()) " artifact(s), as the signed manifest lists them." }
            table.rows {
                thead { tr {
                    th style="width: 10%" { "Kind" } th style="width: 19%" { "Name / reference" } th style="width: 22%" { "Digest" }
                    th style="width: 8%" { "Size (bytes)" } th { "Provenance" } th style="width: 9%" { "Licence" }
                    th style="width: 9%" { "Packages" }
                } }
                tbody {
                    @for a in &self.artifacts {
                        tr {
                            td { (a.kind.to_string()) }
                            td.mono { (a.name) }
                            td.mono { (a.digest.to_string()) }
                            td { (a.size) }
                            td {
                                span.mono { (a.source) }
                                @if let Some(r) = &a.registry { br; "registry " span.mono { (r) } }
                                @if let Some(r) = &a.revision { br; "revision " span.mono { (r) } }
                                @if let Some(c) = &a.commit { br; "commit " span.mono { (c) } }
                                @if let Some(d) = &a.upstream_digest { br; "upstream " span.mono { (d.to_string()) } }
                                @if let Some(t) = &a.retrieved { br; "retrieved " (t) }
                                @if !a.platforms_omitted.is_empty() { br; "platforms left out: " (a.platforms_omitted.join(", ")) }
                            }
                            td { (dash(&a.license)) }
                            td { (a.packages.map(|n| n.to_string()).unwrap_or_default()) }
                        }
                    }
                }
            }
            h3 { "Files and downloads" }
            @if self.files.is_empty() {
                p { "The bundle carries no files." }
            } @else {
                table.rows {
                    thead { tr {
                        th style="width: 20%" { "Name" } th style="width: 8%" { "From" } th { "URL or path" } th style="width: 30%" { "Digest" }
                    } }
                    tbody {
                        @for f in &self.files {
                            tr {
                                td.mono { (f.name) }
                                td { (f.origin) }
                                td.mono { (f.source) }
                                td.mono { (f.digest.to_string()) }
                            }
                        }
                    }
                }
            }
        }
    }

    fn scan_html(&self) -> Markup {
        html! {
            h2 { "Scan results" }
            @if self.scan.is_empty() {
                p { "The signed manifest records no scan results (the bundle was packed with --no-scan)." }
            } @else {
                p { "As the signed manifest records them; the receiving appliance's import policy decides on them again." }
                table.rows {
                    thead { tr {
                        th style="width: 18%" { "Artifact" } th style="width: 10%" { "Verdict" } th style="width: 6%" { "Files" }
                        th style="width: 20%" { "Findings" } th { "Scanner and rule set" } th style="width: 20%" { "Attestation" }
                    } }
                    tbody {
                        @for s in &self.scan {
                            tr {
                                td.mono { (s.artifact) }
                                td class=(verdict_class(&s.verdict)) { (s.verdict) }
                                td { (s.files) }
                                td {
                                    (s.findings) " finding(s)"
                                    @if s.findings > 0 {
                                        ": " (s.malicious) " malicious, " (s.invalid) " invalid, " (s.suspicious) " suspicious ("
                                        (s.waived) " waived)"
                                        @if s.other > 0 { ", " (s.other) " of unknown severity" }
                                    }
                                }
                                td.mono { (s.scanner) }
                                td.mono { (s.attestation.map(|d| d.to_string()).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            @if !self.unscanned.is_empty() {
                p.bad { "Not scanned: " (self.unscanned.join(", ")) }
            }
            h2 { "Waivers" }
            @if self.waivers.is_empty() {
                p { "The bundle carries no waivers." }
            } @else {
                table.rows {
                    thead { tr { th style="width: 20%" { "Artifact" } th style="width: 25%" { "Finding" } th style="width: 20%" { "File" } th { "Reason" } } }
                    tbody {
                        @for w in &self.waivers {
                            tr {
                                td.mono { (w.artifact) }
                                td.mono { (w.finding) }
                                td.mono { (dash(&w.file)) }
                                td { (w.reason) }
                            }
                        }
                    }
                }
            }
        }
    }

    fn sign_off_html(&self) -> Markup {
        let b = &self.bundle;
        html! {
            h2 { "Sign-off" }
            p {
                "The undersigned confirm that the " (self.volumes.len()) " volume file(s) of bundle "
                (b.name) " " (b.version) " (" span.mono { (b.id.to_string()) } ") listed in this document, identified by their SHA-256, "
                "were handed over and received"
                @if !self.complete { ", and that volume " (join(&self.missing_volumes)) " of the bundle was not" }
                "."
            }
            table.sign {
                thead { tr { th style="width: 18%" {} th { "Name" } th { "Organisation" } th style="width: 14%" { "Date" } th style="width: 24%" { "Signature" } } }
                tbody {
                    tr { th { "Handed over by" } td {} td {} td {} td {} }
                    tr { th { "Received by" } td {} td {} td {} td {} }
                }
            }
        }
    }
}

fn verdict_class(v: &str) -> &'static str {
    match v {
        "clean" | "waived" => "good",
        _ => "bad",
    }
}

fn join(ns: &[u32]) -> String {
    ns.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::bundle::{Artifact, BlobRecord, EntryRef, Provenance, ScanRecord};
    use airlock_core::Sha256;
    use serde_json::json;

    fn d(s: &str) -> Digest {
        Sha256::digest(s.as_bytes())
    }

    const EVIL: &str = "registry.example/<script>alert(\"x\")</script>&<img src=//evil/x>";

    fn artifact(kind: ArtifactKind, name: &str, source: &str) -> Artifact {
        Artifact {
            kind,
            name: name.into(),
            digest: d(name),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 512,
            provenance: Provenance {
                source: source.into(),
                license: Some("apache-2.0".into()),
                ..Default::default()
            },
            platforms_omitted: vec![],
        }
    }

    fn manifest() -> BundleManifest {
        BundleManifest {
            format_version: 1,
            format_minor: 0,
            name: "demo".into(),
            version: "1.0.0".into(),
            channel: "stable".into(),
            sequence: 7,
            created: "2026-01-01T00:00:00Z".into(),
            expires: Some("2026-02-01T00:00:00Z".into()),
            tool: "airlock 0.1.0".into(),
            volumes: 3,
            index: EntryRef {
                digest: d("index"),
                size: 10,
            },
            artifacts: vec![
                artifact(ArtifactKind::Image, EVIL, "oci:./layouts/hello:v1"),
                artifact(ArtifactKind::File, "k3s", "https://example.com/k3s"),
                artifact(ArtifactKind::Debs, "gpu-stack", "debs:gpu-stack"),
            ],
            blobs: vec![
                BlobRecord {
                    digest: d("a"),
                    size: 100,
                    volume: 1,
                    parts: vec![],
                },
                BlobRecord {
                    digest: d("b"),
                    size: 200,
                    volume: 2,
                    parts: vec![],
                },
                BlobRecord {
                    digest: d("c"),
                    size: 300,
                    volume: 3,
                    parts: vec![],
                },
            ],
            base_inventory: None,
            external: vec![],
            trust_roots: vec![],
            scan: vec![ScanRecord {
                artifact: EVIL.into(),
                subject: d(EVIL),
                scanner: "airlock-scan 0.1.0; yara-x 1.0; rules sha256:abcd".into(),
                files: 3,
                findings: vec![
                    json!({"file": "a.pkl", "rule": "pickle/unknown-global", "key": "pickle/unknown-global:x.y", "severity": "suspicious"}),
                    json!({"file": "b.pkl", "rule": "pickle/unknown-global", "key": "pickle/unknown-global:x.z", "severity": "suspicious"}),
                    json!({"file": "c.npy", "rule": "npy/object-array", "key": "npy/object-array", "severity": "info"}),
                ],
                attestation: Some(d("att")),
            }],
            waivers: vec![Waiver {
                artifact: EVIL.into(),
                finding: "pickle/unknown-global:x.y".into(),
                file: None,
                reason: "</td><b>ok</b>".into(),
                vulnerability: None,
                expires: None,
                approved_by: None,
            }],
            nodes: vec![],
            sboms: vec![],
        }
    }

    fn index_json() -> Vec<u8> {
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d("gpu-stack").to_string(), "size": 512,
             "annotations": {"dev.airlock.debs.packages": "42"}}]}))
        .unwrap()
    }

    fn signing_fixture() -> Signing {
        Signing {
            trust_root_version: 1,
            trust_root_expires: "2027-01-01T00:00:00Z".into(),
            threshold: 1,
            verified: 1,
            signatures: vec![SignatureCheck {
                key_id: "ab".repeat(32),
                name: Some("Alice <script>".into()),
                role: None,
                status: SignatureStatus::Verified,
            }],
        }
    }

    fn vol(n: u32) -> GivenVolume {
        GivenVolume {
            file: format!("demo-1.0.0.vol{n}of3.tar.zst"),
            volume: n,
            size: 1000 * n as u64,
            sha256: Sha256::digest(&[n as u8]).hex(),
        }
    }

    fn lading(vols: &[GivenVolume]) -> Lading {
        build(
            &manifest(),
            d("bundle"),
            &index_json(),
            signing_fixture(),
            vols,
        )
    }

    #[test]
    fn a_hostile_artifact_name_is_escaped_everywhere() {
        let l = lading(&[vol(1), vol(2), vol(3)]);
        let html = String::from_utf8(l.html()).unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>ok"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;img"));
        assert!(html.contains("&lt;/td&gt;&lt;b&gt;ok&lt;/b&gt;"));
        // Nothing is loaded from anywhere: no src/href attributes, no url() in the style.
        for bad in ["src=\"", "href=", "url(", "<script", "<link"] {
            assert!(!html.contains(bad), "{bad}");
        }
        // JSON keeps the name as data.
        let v: serde_json::Value = serde_json::from_slice(&l.json()).unwrap();
        assert_eq!(v["artifacts"][0]["name"], EVIL);
        assert_eq!(v["_type"], LADING_TYPE);
    }

    #[test]
    fn the_same_volumes_in_any_order_give_the_same_bytes() {
        let a = lading(&[vol(1), vol(2), vol(3)]);
        let b = lading(&[vol(3), vol(1), vol(2)]);
        assert_eq!(a.html(), b.html());
        assert_eq!(a.json(), b.json());
        assert_eq!(
            a.volumes.iter().map(|v| v.volume).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(a.complete);
        let html = String::from_utf8(a.html()).unwrap();
        for v in &a.volumes {
            assert!(html.contains(&v.sha256));
            assert!(html.contains(&v.file));
        }
        assert!(html.contains("complete"));
        assert!(html.contains("Handed over by") && html.contains("Received by"));
    }

    #[test]
    fn missing_volumes_are_reported() {
        let l = lading(&[vol(3), vol(1)]);
        assert!(!l.complete);
        assert_eq!(l.missing_volumes, [2]);
        assert_eq!(l.volumes_bytes, 4000);
        assert_eq!(l.volumes[1].blobs, 1);
        assert_eq!(l.volumes[1].content_bytes, 300);
        let html = String::from_utf8(l.html()).unwrap();
        assert!(html.contains("INCOMPLETE"), "{html}");
        assert!(html.contains("missing volume 2"), "{html}");
        let v: serde_json::Value = serde_json::from_slice(&l.json()).unwrap();
        assert_eq!(v["complete"], false);
        assert_eq!(v["missingVolumes"], json!([2]));
    }

    #[test]
    fn artifacts_files_scans_and_waivers_are_summarised() {
        let l = lading(&[vol(1)]);
        assert_eq!(l.artifacts[2].packages, Some(42));
        assert_eq!(l.artifacts[0].packages, None);
        assert_eq!(l.files.len(), 1);
        assert_eq!(l.files[0].origin, "url");
        let s = &l.scan[0];
        // The info finding counts as a finding but needs no waiver and is no unknown severity.
        assert_eq!((s.findings, s.suspicious, s.waived, s.other), (3, 2, 1, 0));
        assert_eq!(s.verdict, "suspicious");
        assert_eq!(s.rules.as_deref(), Some("sha256:abcd"));
        // The file artifact has no scan record; the debs closure is not scanned by design.
        assert_eq!(l.unscanned, ["k3s"]);
        assert_eq!(l.bundle.content_bytes, 600);
        // With a waiver for the other finding too, the verdict is `waived`.
        let mut m = manifest();
        m.waivers.push(Waiver {
            artifact: EVIL.into(),
            finding: "pickle/unknown-global:x.z".into(),
            file: Some("b.pkl".into()),
            reason: "reviewed".into(),
            vulnerability: None,
            expires: None,
            approved_by: None,
        });
        let l = build(&m, d("bundle"), b"not json", signing_fixture(), &[vol(1)]);
        assert_eq!(l.scan[0].verdict, "waived");
        assert_eq!(l.artifacts[2].packages, None);
        // Only the info finding left: clean.
        let mut m = manifest();
        m.scan[0].findings.truncate(0);
        m.scan[0]
            .findings
            .push(json!({"file": "c.npy", "rule": "npy/object-array", "key": "npy/object-array", "severity": "info"}));
        let l = build(&m, d("bundle"), b"not json", signing_fixture(), &[vol(1)]);
        assert_eq!(l.scan[0].verdict, "clean");
    }

    #[test]
    fn each_signature_is_judged_against_the_bundle_role() {
        use airlock_trust::root::RootSpec;
        use airlock_trust::{KeyPair, Signer};
        let (root_key, signer, other) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let now = airlock_core::time::now_checked().unwrap();
        let bytes = RootSpec {
            version: 1,
            expires: now + 86_400,
            root_keys: vec![root_key.public_key()],
            root_threshold: 1,
            bundle_keys: vec![signer.public_key()],
            bundle_threshold: 1,
            revoked: vec![],
            labels: [(
                signer.public_key().keyid(),
                airlock_trust::KeyLabel {
                    name: Some("Alice Example".into()),
                    role: Some("release manager".into()),
                },
            )]
            .into(),
            signers: vec![&root_key],
        }
        .sign()
        .unwrap();
        let root = TrustRoot::load_initial(&bytes, now).unwrap();
        let env = Envelope::sign(PAYLOAD_TYPE, b"{}", &[&signer, &other, &signer]).unwrap();
        let verified = root.verify_bundle(&env, PAYLOAD_TYPE).unwrap().signers;
        let s = signing(&env, &root, &verified);
        let statuses: Vec<SignatureStatus> = s.signatures.iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [
                SignatureStatus::Verified,
                SignatureStatus::Untrusted,
                SignatureStatus::Duplicate
            ]
        );
        assert_eq!((s.verified, s.threshold, s.trust_root_version), (1, 1, 1));
        assert_eq!(s.signatures[1].key_id, other.public_key().keyid());
        // The holder's name and role come from the trust root; an unknown key has none.
        assert_eq!(s.signatures[0].name.as_deref(), Some("Alice Example"));
        assert_eq!(s.signatures[0].role.as_deref(), Some("release manager"));
        assert_eq!(s.signatures[1].name, None);
        // A bad copy of a trusted key's signature is not shown as verified.
        let mut env2 = env.clone();
        env2.signatures[2].sig = env2.signatures[1].sig.clone();
        let s = signing(&env2, &root, &verified);
        assert_eq!(s.signatures[2].status, SignatureStatus::Invalid);
    }
}
