//! The bundle manifest: the signed statement of everything a bundle carries.
//!
//! It is the predicate of an in-toto Statement (predicate type [`PREDICATE_TYPE`]) wrapped in a
//! DSSE envelope (see `airlock-trust`). Every volume of a bundle starts with the same envelope, so
//! any single volume can be checked against the trust root before a byte of it is written.
//! `docs/bundle-format.md` is the normative description; this module is its code.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{CoreError, Digest};

/// in-toto predicate type of a bundle manifest.
pub const PREDICATE_TYPE: &str = "https://airlock.dev/bundle/v1";
/// in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// DSSE payload type of in-toto statements.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The only bundle format major version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The newest minor version this build reads. Minor 1 adds split blobs ([`PartRecord`]); a
/// bundle without split blobs is written as minor 0 (the field is then absent), so it stays
/// readable by readers that predate minor versions.
pub const FORMAT_MINOR: u32 = 1;
/// Readers refuse to hold more blob records than this (bounded memory on hostile input: a
/// signed manifest is parsed whole, and each record costs a few hundred bytes once parsed and
/// indexed). Real bundles carry hundreds to a few thousand blobs.
pub const MAX_BLOBS: usize = 100_000;

/// What kind of thing an artifact is; decides how the disconnected side serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    Image,
    Model,
    File,
    /// Scan results (and later SBOMs) about another artifact, whose OCI `subject` points at it.
    Attestation,
    /// A Debian package closure: its resolution record and `.deb` files, served as one apt
    /// suite.
    Debs,
}

impl std::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArtifactKind::Image => "image",
            ArtifactKind::Model => "model",
            ArtifactKind::File => "file",
            ArtifactKind::Attestation => "attestation",
            ArtifactKind::Debs => "debs",
        })
    }
}

/// Where an artifact came from: what an auditor asks first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Provenance {
    /// The source as written in the input manifest (`oci:./layouts/hello:v1`, `dir:...`).
    pub source: String,
    /// Digest the source itself named, when it named one (a registry's index digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_digest: Option<Digest>,
    /// Upstream revision asked for (`main`, a tag) and the commit it resolved to, for models
    /// mirrored from a Hugging Face Hub or cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The registry (`HOST[:PORT]`) an image was mirrored from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// When airlock read the source (RFC 3339). Kept out of OCI content so digests stay
    /// reproducible; it lives only here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieved: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<serde_json::Value>,
}

/// One top-level thing the bundle carries: an image, a model or a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Artifact {
    pub kind: ArtifactKind,
    /// The name it is served and imported under (image reference, model repo id, file name).
    pub name: String,
    /// Digest of its root object (image index or manifest, artifact manifest).
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub provenance: Provenance,
    /// Platforms of an index that were left out by platform filtering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms_omitted: Vec<String>,
}

/// A blob of the bundle and the volume that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobRecord {
    pub digest: Digest,
    pub size: u64,
    /// 1-based volume number; for a split blob, the volume of its first part.
    pub volume: u32,
    /// A blob larger than a volume is carried as parts in consecutive volumes (format minor 1).
    /// Empty for a blob carried whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartRecord>,
}

/// One part of a split blob: the bytes `offset .. offset + size` of the blob, carried as its
/// own tar entry in `volume` and verified by its own `digest` (SHA-256 of the part's bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartRecord {
    pub digest: Digest,
    pub offset: u64,
    pub size: u64,
    pub volume: u32,
}

impl BlobRecord {
    /// Is this blob carried as parts?
    pub fn is_split(&self) -> bool {
        !self.parts.is_empty()
    }

    /// Checks a split blob's parts: at least two, non-empty, contiguous from offset 0 to the
    /// blob's size, in strictly increasing volumes starting at the blob's own, within `volumes`.
    fn validate_parts(&self, volumes: u32) -> Result<(), String> {
        if self.parts.len() == 1 {
            return Err(format!("blob {} is split into a single part", self.digest));
        }
        let mut offset = 0u64;
        let mut prev_volume = 0u32;
        for (i, p) in self.parts.iter().enumerate() {
            let at = format!(
                "blob {} part {} of {}",
                self.digest,
                i + 1,
                self.parts.len()
            );
            if p.size == 0 || p.offset != offset {
                return Err(format!(
                    "{at}: offset {} size {} does not continue at byte {offset}",
                    p.offset, p.size
                ));
            }
            if p.volume <= prev_volume || p.volume > volumes {
                return Err(format!("{at}: volume {} out of order or range", p.volume));
            }
            offset = offset
                .checked_add(p.size)
                .ok_or(format!("{at}: size overflows"))?;
            prev_volume = p.volume;
        }
        if offset != self.size || self.parts[0].volume != self.volume {
            return Err(format!(
                "blob {}: parts cover {offset} bytes from volume {}, the blob is {} bytes in volume {}",
                self.digest, self.parts[0].volume, self.size, self.volume
            ));
        }
        Ok(())
    }
}

/// What a volume carries for one blob of the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeItem<'a> {
    /// The whole blob.
    Whole(&'a BlobRecord),
    /// Part `index` (0-based) of a split blob.
    Part(&'a BlobRecord, usize),
}

/// Size and digest of a metadata entry such as `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryRef {
    pub digest: Digest,
    pub size: u64,
}

/// The bundle manifest (the in-toto predicate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BundleManifest {
    pub format_version: u32,
    /// Minor format version: absent (0) unless the bundle uses a feature of a later minor
    /// version (1: split blobs). Readers that predate it refuse the unknown field.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub format_minor: u32,
    pub name: String,
    pub version: String,
    pub channel: String,
    /// Strictly increasing per channel; the disconnected side refuses anything not newer.
    pub sequence: u64,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `airlock <version>` that wrote it.
    pub tool: String,
    /// Number of volumes in the bundle.
    pub volumes: u32,
    /// The `index.json` every volume carries.
    pub index: EntryRef,
    pub artifacts: Vec<Artifact>,
    pub blobs: Vec<BlobRecord>,
    /// For differential bundles: digest of the signed appliance inventory this bundle was built
    /// against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_inventory: Option<Digest>,
    /// Blobs the artifacts reference but the bundle does not carry, because the inventory said
    /// the appliance holds them. Import refuses the bundle unless every one is present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external: Vec<EntryRef>,
    /// Newer trust roots (`root.json` documents, oldest first) to apply before this bundle's
    /// signatures are checked. Each must chain from the one before, starting at the appliance's
    /// pinned root; they authenticate themselves, so reading them before the envelope is safe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust_roots: Vec<serde_json::Value>,
    /// What the scanner found in each scanned artifact (signed with the rest of the manifest;
    /// the import policy reads it). Empty findings mean scanned and clean.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scan: Vec<ScanRecord>,
    /// Signed waivers admitting named suspicious findings (from the input manifest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<Waiver>,
    /// Node profiles from the input manifest (`airlockd node render`), signed with the rest.
    /// Readers that predate them refuse the unknown field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<crate::node::NodeProfile>,
    /// The components of each SBOM the bundle carries (`airlock pack`), so that the import
    /// policy can match them against the appliance's vulnerability database before any blob
    /// is written. Readers that predate them refuse the unknown field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sboms: Vec<SbomRecord>,
}

/// The components of one SBOM a bundle carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SbomRecord {
    /// The image the SBOM describes, as served (`IMAGE@os/arch` for one platform of an index),
    /// or the model (its repository id) an ML-BOM describes.
    pub artifact: String,
    /// The image manifest it describes.
    pub subject: Digest,
    /// The SBOM artifact's manifest (`sbom:IMAGE`).
    pub sbom: Digest,
    /// One per component, sorted.
    pub components: Vec<SbomComponent>,
}

/// A component as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SbomComponent {
    pub purl: String,
    /// The source package, where it differs from the name (Debian `Source`, apk origin).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "sourcePackage"
    )]
    pub source_package: Option<String>,
}

/// Most SBOM records and components per record a manifest may carry.
pub const MAX_SBOM_RECORDS: usize = 10_000;
pub const MAX_SBOM_COMPONENTS: usize = 200_000;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Scan results for one artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScanRecord {
    /// Name of the scanned artifact.
    pub artifact: String,
    /// Its root digest.
    pub subject: Digest,
    /// `airlock-scan <version>`.
    pub scanner: String,
    /// Files scanned.
    pub files: u64,
    /// Findings as the scanner reports them (`file`, `member`, `rule`, `global`, `severity`,
    /// `detail`), with `key` = the string a waiver names (`rule` or `rule:global`).
    pub findings: Vec<serde_json::Value>,
    /// The attestation artifact carrying the same results with an OCI `subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Digest>,
}

impl ScanRecord {
    /// How many findings of each severity (`unknown` for a finding without one), by name.
    pub fn by_severity(&self) -> std::collections::BTreeMap<String, u64> {
        let mut by = std::collections::BTreeMap::new();
        for f in &self.findings {
            let sev = f
                .get("severity")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("unknown");
            *by.entry(sev.to_string()).or_default() += 1;
        }
        by
    }
}

/// An explicit decision to admit a suspicious finding, or a known vulnerability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// The artifact name the finding or vulnerability is in.
    pub artifact: String,
    /// The finding's key: its rule, or `rule:global` for pickle globals. Empty for a
    /// vulnerability waiver.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub finding: String,
    /// Restrict the waiver to one file of the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Why it is acceptable (for the auditor).
    pub reason: String,
    /// The vulnerability admitted: an advisory id or one of its aliases (`CVE-2024-1234`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerability: Option<String>,
    /// RFC 3339 time from which the waiver no longer counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Who approved the waiver.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "approvedBy"
    )]
    pub approved_by: Option<String>,
}

impl Waiver {
    /// Checks what serde cannot: one of `finding` and `vulnerability`, bounded texts, a
    /// readable `expires`.
    pub fn check(&self) -> Result<(), String> {
        let text = |what: &str, s: &str, max: usize| {
            if s.len() > max || s.chars().any(char::is_control) {
                Err(format!(
                    "waiver of {:?}: {what} is over {max} bytes or has control characters",
                    crate::text::escape(&self.artifact)
                ))
            } else {
                Ok(())
            }
        };
        text("artifact", &self.artifact, 512)?;
        text("finding", &self.finding, 512)?;
        text("reason", &self.reason, 4096)?;
        for (what, v) in [
            ("vulnerability", &self.vulnerability),
            ("expires", &self.expires),
            ("approvedBy", &self.approved_by),
        ] {
            if let Some(v) = v {
                text(what, v, 512)?;
            }
        }
        match (self.finding.is_empty(), &self.vulnerability) {
            (true, None) => {
                return Err(format!(
                    "waiver of {:?} names neither a finding nor a vulnerability",
                    crate::text::escape(&self.artifact)
                ))
            }
            (false, Some(_)) => {
                return Err(format!(
                    "waiver of {:?} names both a finding and a vulnerability; write two waivers",
                    crate::text::escape(&self.artifact)
                ))
            }
            _ => {}
        }
        if let Some(e) = &self.expires {
            crate::time::parse_rfc3339(e).map_err(|err| {
                format!(
                    "waiver of {:?}: expires {:?}: {err}",
                    crate::text::escape(&self.artifact),
                    crate::text::escape(e)
                )
            })?;
        }
        Ok(())
    }
}

/// The in-toto Statement v1 that the DSSE envelope carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: BundleManifest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub name: String,
    pub digest: std::collections::BTreeMap<String, String>,
}

impl Statement {
    /// Wraps a manifest, naming each artifact's root digest as a subject.
    pub fn new(manifest: BundleManifest) -> Self {
        let subject = manifest
            .artifacts
            .iter()
            .map(|a| Subject {
                name: a.name.clone(),
                digest: [("sha256".to_string(), a.digest.hex())].into(),
            })
            .collect();
        Statement {
            type_: STATEMENT_TYPE.into(),
            subject,
            predicate_type: PREDICATE_TYPE.into(),
            predicate: manifest,
        }
    }

    /// Parses a statement and checks that it is a well-formed bundle manifest.
    pub fn parse(bytes: &[u8]) -> Result<Self, CoreError> {
        let st: Statement = serde_json::from_slice(bytes)
            .map_err(|e| CoreError::BundleManifest(format!("statement JSON: {e}")))?;
        if st.type_ != STATEMENT_TYPE {
            return Err(CoreError::BundleManifest(format!(
                "statement _type {:?}",
                st.type_
            )));
        }
        if st.predicate_type != PREDICATE_TYPE {
            return Err(CoreError::BundleManifest(format!(
                "predicateType {:?} is not {PREDICATE_TYPE}",
                st.predicate_type
            )));
        }
        st.predicate.validate()?;
        let expected = Statement::new(st.predicate.clone()).subject;
        if st.subject != expected {
            return Err(CoreError::BundleManifest(
                "subjects do not match the artifacts of the predicate".into(),
            ));
        }
        Ok(st)
    }
}

/// The same name rules `airlock pack` applies to its input manifest: an image reference, a model
/// repository id, a file label, or `scan:` and one of those for an attestation. Checked again
/// on import so that a name with `../`, whitespace or control characters never reaches the
/// catalog, a listing or a log line.
pub fn check_artifact_name(kind: ArtifactKind, name: &str) -> Result<(), String> {
    use crate::manifest::{check_label, check_reference, check_repo_id, check_suite_name};
    let check = |kind: ArtifactKind, n: &str| match kind {
        ArtifactKind::Image => check_reference(n),
        ArtifactKind::Model => check_repo_id(n),
        ArtifactKind::File => check_label("file name", n),
        ArtifactKind::Debs => check_suite_name(n),
        ArtifactKind::Attestation => Err(String::new()),
    };
    let r = match kind {
        ArtifactKind::Attestation => match name.strip_prefix("scan:") {
            Some(subject) => [
                ArtifactKind::Image,
                ArtifactKind::Model,
                ArtifactKind::File,
                ArtifactKind::Debs,
            ]
            .into_iter()
            .find_map(|k| check(k, subject).ok())
            .ok_or_else(|| format!("{subject:?} names no valid image, model, file or closure")),
            None => match name
                .strip_prefix("sbom:")
                .or_else(|| name.strip_prefix("spdx:"))
            {
                // An image (optionally one platform of it), or a model (its ML-BOM), a file
                // or a Debian package closure.
                Some(subject) => check_sbom_subject(subject).or_else(|e| {
                    [ArtifactKind::Model, ArtifactKind::File, ArtifactKind::Debs]
                        .into_iter()
                        .find_map(|k| check(k, subject).ok())
                        .ok_or_else(|| format!("{e}, nor a valid model, file or closure name"))
                }),
                None => Err("must start with \"scan:\", \"sbom:\" or \"spdx:\"".into()),
            },
        },
        k => check(k, name),
    };
    r.map_err(|e| {
        format!(
            "{kind} artifact name {:?} is not valid: {e}",
            crate::text::escape(name)
        )
    })
}

/// The image an SBOM describes: an image reference, optionally followed by `@OS/ARCH[/VARIANT]`
/// (one platform of an index) or `@sha256:HEX` (a platform manifest without a platform).
fn check_sbom_subject(image: &str) -> Result<(), String> {
    use crate::manifest::check_reference;
    if check_reference(image).is_ok() {
        return Ok(());
    }
    let bad = || format!("{image:?} names no valid image (with an optional @os/arch)");
    let (head, tail) = image.rsplit_once('@').ok_or_else(bad)?;
    check_reference(head).map_err(|_| bad())?;
    let platform = |t: &str| {
        let parts: Vec<&str> = t.split('/').collect();
        (2..=3).contains(&parts.len())
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.len() <= 32
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
    };
    if platform(tail) || tail.parse::<crate::Digest>().is_ok() {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A media type usable as an HTTP header value: `type/subtype` of visible ASCII (RFC 6838
/// names, optional parameters), at most 255 bytes.
pub fn check_media_type(mt: &str) -> Result<(), String> {
    let ok = !mt.is_empty()
        && mt.len() <= 255
        && mt.bytes().all(|c| c == b' ' || c.is_ascii_graphic())
        && mt
            .split(';')
            .next()
            .and_then(|t| t.trim().split_once('/'))
            .is_some_and(|(a, b)| {
                let name = |s: &str| {
                    !s.is_empty()
                        && s.bytes().all(|c| {
                            c.is_ascii_alphanumeric()
                                || matches!(
                                    c,
                                    b'!' | b'#' | b'$' | b'&' | b'^' | b'_' | b'.' | b'+' | b'-'
                                )
                        })
                };
                name(a) && name(b)
            });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "media type {:?} is not a valid type/subtype",
            crate::text::escape(mt)
        ))
    }
}

impl BundleManifest {
    /// Structural checks every reader applies before trusting any field.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |m: String| Err(CoreError::BundleManifest(m));
        if self.format_version != FORMAT_VERSION {
            return bad(format!(
                "format version {} is not supported (this build reads {FORMAT_VERSION})",
                self.format_version
            ));
        }
        if self.format_minor > FORMAT_MINOR {
            return bad(format!(
                "format version {}.{} is not supported (this build reads up to {FORMAT_VERSION}.{FORMAT_MINOR})",
                self.format_version, self.format_minor
            ));
        }
        if self.volumes == 0 || self.volumes > 10_000 {
            return bad(format!("volume count {} out of range", self.volumes));
        }
        if self.blobs.len() > MAX_BLOBS {
            return bad(format!(
                "{} blobs exceed the limit {MAX_BLOBS}",
                self.blobs.len()
            ));
        }
        crate::time::parse_rfc3339(&self.created)
            .map_err(|e| CoreError::BundleManifest(format!("created: {e}")))?;
        if let Some(x) = &self.expires {
            crate::time::parse_rfc3339(x)
                .map_err(|e| CoreError::BundleManifest(format!("expires: {e}")))?;
        }
        let parts: usize = self.blobs.iter().map(|b| b.parts.len()).sum();
        if parts > MAX_BLOBS {
            return bad(format!("{parts} blob parts exceed the limit {MAX_BLOBS}"));
        }
        if parts > 0 && self.format_minor < 1 {
            return bad("split blobs need formatMinor 1".into());
        }
        let mut seen = BTreeSet::new();
        for b in &self.blobs {
            if b.is_split() {
                b.validate_parts(self.volumes)
                    .map_err(CoreError::BundleManifest)?;
            }
            if !seen.insert(b.digest) {
                return bad(format!("blob {} listed twice", b.digest));
            }
            if b.volume == 0 || b.volume > self.volumes {
                return bad(format!(
                    "blob {} assigned to volume {} of {}",
                    b.digest, b.volume, self.volumes
                ));
            }
        }
        for e in &self.external {
            if !seen.insert(e.digest) {
                return bad(format!("blob {} listed twice", e.digest));
            }
        }
        if !self.external.is_empty() && self.base_inventory.is_none() {
            return bad("external blobs without a base inventory".into());
        }
        use crate::manifest::{check_label, check_version};
        check_label("bundle name", &self.name).map_err(CoreError::BundleManifest)?;
        check_version("bundle version", &self.version).map_err(CoreError::BundleManifest)?;
        check_label("bundle channel", &self.channel).map_err(CoreError::BundleManifest)?;
        for a in &self.artifacts {
            check_artifact_name(a.kind, &a.name).map_err(CoreError::BundleManifest)?;
            check_media_type(&a.media_type)
                .map_err(|e| CoreError::BundleManifest(format!("artifact {}: {e}", a.name)))?;
            if !seen.contains(&a.digest) {
                return bad(format!(
                    "artifact {} root {} is neither carried nor external",
                    a.name, a.digest
                ));
            }
        }
        for w in &self.waivers {
            w.check().map_err(CoreError::BundleManifest)?;
        }
        if self.sboms.len() > MAX_SBOM_RECORDS {
            return bad(format!(
                "{} SBOM records exceed the limit {MAX_SBOM_RECORDS}",
                self.sboms.len()
            ));
        }
        for r in &self.sboms {
            check_artifact_name(ArtifactKind::Attestation, &format!("sbom:{}", r.artifact))
                .map_err(CoreError::BundleManifest)?;
            if r.components.len() > MAX_SBOM_COMPONENTS {
                return bad(format!(
                    "SBOM of {}: {} components exceed the limit {MAX_SBOM_COMPONENTS}",
                    r.artifact,
                    r.components.len()
                ));
            }
            for c in &r.components {
                let ok =
                    |s: &str| !s.is_empty() && s.len() <= 2048 && !s.chars().any(char::is_control);
                if !ok(&c.purl) || c.source_package.as_deref().is_some_and(|s| !ok(s)) {
                    return bad(format!(
                        "SBOM of {}: a component's purl or source package is empty, over 2048 \
                         bytes or has control characters",
                        r.artifact
                    ));
                }
            }
        }
        Ok(())
    }

    /// Blobs carried whole by volume `n` (1-based), in the order they appear in it. Split
    /// blobs are not among them; see [`Self::items_of_volume`].
    pub fn blobs_of_volume(&self, n: u32) -> impl Iterator<Item = &BlobRecord> {
        self.blobs
            .iter()
            .filter(move |b| b.volume == n && !b.is_split())
    }

    /// What volume `n` carries, in order: whole blobs and parts of split blobs.
    pub fn items_of_volume(&self, n: u32) -> impl Iterator<Item = VolumeItem<'_>> {
        self.blobs.iter().filter_map(move |b| {
            if b.is_split() {
                let i = b.parts.iter().position(|p| p.volume == n)?;
                Some(VolumeItem::Part(b, i))
            } else {
                (b.volume == n).then_some(VolumeItem::Whole(b))
            }
        })
    }

    /// Split blobs that have a part in volume `n`.
    pub fn split_blobs_of_volume(&self, n: u32) -> impl Iterator<Item = &BlobRecord> {
        self.blobs
            .iter()
            .filter(move |b| b.parts.iter().any(|p| p.volume == n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_follow_the_pack_rules() {
        check_artifact_name(ArtifactKind::Image, "registry.example/acme/hello:v1").unwrap();
        check_artifact_name(ArtifactKind::Model, "acme/tiny-model").unwrap();
        check_artifact_name(ArtifactKind::File, "k3s").unwrap();
        check_artifact_name(ArtifactKind::Attestation, "scan:acme/tiny-model").unwrap();
        for good in [
            "sbom:registry.example/acme/hello:v1",
            "spdx:registry.example/acme/hello:v1@linux/arm64/v8",
            "sbom:registry.example/acme/hello@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@linux/amd64",
            "sbom:BAAI/bge-small-en-v1.5",
        ] {
            check_artifact_name(ArtifactKind::Attestation, good).unwrap();
        }
        for (kind, bad) in [
            (ArtifactKind::Attestation, "sbom:acme/../x:v1"),
            (
                ArtifactKind::Attestation,
                "sbom:registry.example/x:v1@linux/../amd64",
            ),
            (
                ArtifactKind::Attestation,
                "spdx:registry.example/x:v1@Linux AMD64",
            ),
            (ArtifactKind::Attestation, "sbom:"),
            (ArtifactKind::Attestation, "sbom:BAAI/bge/small"),
            (ArtifactKind::Model, "../../etc"),
            (ArtifactKind::Model, "acme/x\r\nFAKE"),
            (ArtifactKind::Image, "acme/../hello:v1"),
            (ArtifactKind::File, "a b"),
            (ArtifactKind::Attestation, "scan:../x"),
            (ArtifactKind::Attestation, "acme/tiny-model"),
        ] {
            let e = check_artifact_name(kind, bad).unwrap_err();
            assert!(!e.contains('\n') && !e.contains('\r'), "{e}");
        }
    }

    #[test]
    fn media_types_must_be_header_values() {
        check_media_type("application/vnd.oci.image.manifest.v1+json").unwrap();
        check_media_type("text/plain; charset=utf-8").unwrap();
        assert!(check_media_type("application/json\r\nX-Evil: 1").is_err());
        assert!(check_media_type("nonsense").is_err());
        assert!(check_media_type("").is_err());
    }
}
