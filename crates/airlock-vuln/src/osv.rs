//! OSV records (<https://ossf.github.io/osv-schema/>) read as untrusted input.
//!
//! A record is parsed from at most [`MAX_RECORD`] bytes; strings, lists and events are
//! bounded, and anything the matcher does not use is ignored. What remains is an
//! [`Advisory`]: its id, aliases, summary, severities (CVSS vectors and the database's own
//! label) and the affected packages, each with its ecosystem, name, ranges of events and
//! explicit versions. A record whose ecosystem airlock cannot order ([`Scheme::of_ecosystem`])
//! keeps only the affected entries it can order; callers count the ones dropped.

use serde::Deserialize;

use crate::version::Scheme;

/// Largest record read, in bytes (the largest osv.dev records are around 1 MiB).
pub const MAX_RECORD: usize = 4 << 20;
/// Most affected packages, ranges per package, events per range and listed versions kept.
const MAX_AFFECTED: usize = 10_000;
const MAX_RANGES: usize = 1_000;
const MAX_EVENTS: usize = 10_000;
const MAX_VERSIONS: usize = 200_000;
/// Longest identifier, name, version or vector kept.
const MAX_TOKEN: usize = 512;
/// Longest summary kept (clipped, not refused).
const MAX_SUMMARY: usize = 1024;

/// Why a record was refused.
#[derive(Debug, thiserror::Error)]
pub enum OsvError {
    #[error("OSV record over {MAX_RECORD} bytes")]
    TooLarge,
    #[error("not an OSV record: {0}")]
    Json(String),
    #[error("OSV record {id}: {what}")]
    Invalid { id: String, what: String },
}

/// One event of a range, in the ecosystem's version syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Affected from this version on (`"0"`: from the first version).
    Introduced(String),
    /// Not affected from this version on.
    Fixed(String),
    /// Affected up to and including this version.
    LastAffected(String),
}

impl Event {
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) => v,
        }
    }
}

/// One affected package of an advisory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    /// The ecosystem as OSV names it (`Debian:12`, `PyPI`).
    pub ecosystem: String,
    pub scheme: Scheme,
    /// The package name as the ecosystem writes it (Debian: the source package).
    pub name: String,
    /// Ranges of type `ECOSYSTEM` or `SEMVER` (`GIT` ranges name commits and are dropped).
    pub ranges: Vec<Vec<Event>>,
    /// Versions listed as affected.
    pub versions: Vec<String>,
    /// The package entry's own severity, when the record gives one per package.
    pub severity: Vec<Severity>,
}

/// A severity as a record states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Severity {
    /// `CVSS_V3` / `CVSS_V4` (/ `CVSS_V2`): the vector.
    Cvss { kind: String, vector: String },
    /// A database's own label (`database_specific.severity`, `Ubuntu`, `Debian` urgency).
    Label(String),
}

/// What matching needs of one OSV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advisory {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub modified: String,
    pub severity: Vec<Severity>,
    pub affected: Vec<Affected>,
    /// Affected entries dropped because their ecosystem has no version order here.
    pub dropped: usize,
}

#[derive(Deserialize)]
struct RawRecord {
    id: Option<String>,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    severity: Vec<RawSeverity>,
    #[serde(default)]
    affected: Vec<RawAffected>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    #[serde(default)]
    ranges: Vec<RawRange>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    severity: Vec<RawSeverity>,
    #[serde(default)]
    ecosystem_specific: Option<serde_json::Value>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<serde_json::Map<String, serde_json::Value>>,
}

fn token(id: &str, what: &str, s: &str) -> Result<String, OsvError> {
    if s.is_empty() || s.len() > MAX_TOKEN || s.chars().any(char::is_control) {
        return Err(OsvError::Invalid {
            id: id.to_string(),
            what: format!(
                "{what} {:?} is empty, over {MAX_TOKEN} bytes or has control characters",
                clip(s, 64)
            ),
        });
    }
    Ok(s.to_string())
}

fn clip(s: &str, n: usize) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

/// The severity label a `database_specific` or `ecosystem_specific` object carries
/// (`severity`, or Debian's `urgency`), if it is a short string.
fn label_of(v: &Option<serde_json::Value>) -> Option<Severity> {
    let v = v.as_ref()?;
    let s = v.get("severity").or_else(|| v.get("urgency"))?.as_str()?;
    (!s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        .then(|| Severity::Label(s.to_string()))
}

fn severities(id: &str, raw: Vec<RawSeverity>) -> Result<Vec<Severity>, OsvError> {
    let mut out = Vec::new();
    for s in raw.into_iter().take(16) {
        let vector = token(id, "severity score", &s.score)?;
        if s.kind.starts_with("CVSS_") {
            out.push(Severity::Cvss {
                kind: token(id, "severity type", &s.kind)?,
                vector,
            });
        } else {
            out.push(Severity::Label(vector));
        }
    }
    Ok(out)
}

/// Parses one OSV record. A withdrawn record parses to `None`.
pub fn parse(bytes: &[u8]) -> Result<Option<Advisory>, OsvError> {
    if bytes.len() > MAX_RECORD {
        return Err(OsvError::TooLarge);
    }
    let raw: RawRecord =
        serde_json::from_slice(bytes).map_err(|e| OsvError::Json(e.to_string()))?;
    let id = raw.id.ok_or_else(|| OsvError::Json("no \"id\"".into()))?;
    let id = token("?", "id", &id)?;
    if raw.withdrawn.is_some() {
        return Ok(None);
    }
    let invalid = |what: String| OsvError::Invalid {
        id: id.clone(),
        what,
    };
    if raw.affected.len() > MAX_AFFECTED {
        return Err(invalid(format!(
            "more than {MAX_AFFECTED} affected packages"
        )));
    }
    let mut aliases = Vec::new();
    for a in raw.aliases.iter().take(64) {
        aliases.push(token(&id, "alias", a)?);
    }
    let mut severity = severities(&id, raw.severity)?;
    if let Some(l) = label_of(&raw.database_specific) {
        severity.push(l);
    }
    let mut affected = Vec::new();
    let mut dropped = 0;
    for a in raw.affected {
        let Some(p) = a.package else {
            dropped += 1; // an entry without a package names only commits
            continue;
        };
        let ecosystem = token(&id, "ecosystem", &p.ecosystem)?;
        let Some(scheme) = Scheme::of_ecosystem(&ecosystem) else {
            dropped += 1;
            continue;
        };
        let name = token(&id, "package name", &p.name)?;
        if a.ranges.len() > MAX_RANGES {
            return Err(invalid(format!("{name}: more than {MAX_RANGES} ranges")));
        }
        if a.versions.len() > MAX_VERSIONS {
            return Err(invalid(format!(
                "{name}: more than {MAX_VERSIONS} versions"
            )));
        }
        let mut ranges = Vec::new();
        for r in a.ranges {
            if r.kind != "ECOSYSTEM" && r.kind != "SEMVER" {
                continue;
            }
            if r.events.len() > MAX_EVENTS {
                return Err(invalid(format!("{name}: more than {MAX_EVENTS} events")));
            }
            let mut events = Vec::with_capacity(r.events.len());
            for e in r.events {
                let (k, v) = match e.iter().next() {
                    Some((k, v)) if e.len() == 1 => (k.clone(), v.clone()),
                    _ => return Err(invalid(format!("{name}: an event has not exactly one key"))),
                };
                let Some(v) = v.as_str() else {
                    return Err(invalid(format!("{name}: event {k} is not a string")));
                };
                let v = token(&id, "event version", v)?;
                events.push(match k.as_str() {
                    "introduced" => Event::Introduced(v),
                    "fixed" => Event::Fixed(v),
                    "last_affected" => Event::LastAffected(v),
                    "limit" => continue, // only meaningful for GIT ranges
                    other => {
                        return Err(invalid(format!(
                            "{name}: unknown event {:?}",
                            clip(other, 32)
                        )))
                    }
                });
            }
            ranges.push(events);
        }
        let mut versions = Vec::with_capacity(a.versions.len());
        for v in &a.versions {
            versions.push(token(&id, "version", v)?);
        }
        let mut sev = severities(&id, a.severity)?;
        for extra in [&a.ecosystem_specific, &a.database_specific] {
            if let Some(l) = label_of(extra) {
                sev.push(l);
            }
        }
        affected.push(Affected {
            ecosystem,
            scheme,
            name,
            ranges,
            versions,
            severity: sev,
        });
    }
    let summary = raw
        .summary
        .or_else(|| {
            raw.details
                .map(|d| d.lines().next().unwrap_or("").to_string())
        })
        .map(|s| clip(&s, MAX_SUMMARY))
        .unwrap_or_default();
    Ok(Some(Advisory {
        id,
        aliases,
        summary,
        modified: raw.modified.map(|m| clip(&m, 64)).unwrap_or_default(),
        severity,
        affected,
        dropped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GHSA: &str = r#"{
      "schema_version": "1.6.0", "id": "GHSA-h5c8-rqwp-cp95", "modified": "2024-01-01T00:00:00Z",
      "aliases": ["CVE-2024-22195"], "summary": "Jinja vulnerable to HTML attribute injection",
      "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N"}],
      "affected": [
        {"package": {"ecosystem": "PyPI", "name": "jinja2", "purl": "pkg:pypi/jinja2"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.3"}]},
                    {"type": "GIT", "repo": "https://x", "events": [{"introduced": "abc"}, {"limit": "def"}]}],
         "versions": ["2.0", "3.1.2"]},
        {"package": {"ecosystem": "Maven", "name": "org.x:y"}, "ranges": []}
      ],
      "database_specific": {"severity": "MODERATE"}
    }"#;

    #[test]
    fn a_record_keeps_what_matching_needs() {
        let a = parse(GHSA.as_bytes()).unwrap().unwrap();
        assert_eq!(a.id, "GHSA-h5c8-rqwp-cp95");
        assert_eq!(a.aliases, ["CVE-2024-22195"]);
        assert_eq!(a.affected.len(), 1);
        assert_eq!(a.dropped, 1, "Maven has no order here");
        let p = &a.affected[0];
        assert_eq!((p.ecosystem.as_str(), p.name.as_str()), ("PyPI", "jinja2"));
        assert_eq!(
            p.ranges,
            vec![vec![
                Event::Introduced("0".into()),
                Event::Fixed("3.1.3".into())
            ]]
        );
        assert_eq!(p.versions, ["2.0", "3.1.2"]);
        assert_eq!(a.severity.len(), 2);
        assert_eq!(a.severity[1], Severity::Label("MODERATE".into()));
    }

    #[test]
    fn withdrawn_records_are_skipped_and_bad_ones_named() {
        let w = GHSA.replace(
            "\"modified\"",
            "\"withdrawn\": \"2024-02-01T00:00:00Z\", \"modified\"",
        );
        assert!(parse(w.as_bytes()).unwrap().is_none());
        for (bad, want) in [
            (
                GHSA.replace("\"introduced\": \"0\"", "\"introduced\": 0"),
                "not a string",
            ),
            (
                GHSA.replace(
                    "{\"fixed\": \"3.1.3\"}",
                    "{\"fixed\": \"3.1.3\", \"introduced\": \"1\"}",
                ),
                "not exactly one key",
            ),
            (
                GHSA.replace("\"fixed\": \"3.1.3\"", "\"broken\": \"3.1.3\""),
                "unknown event",
            ),
            (
                GHSA.replace("jinja2\", \"purl", "\", \"purl"),
                "package name",
            ),
            (
                GHSA.replace("\"3.1.2\"", "\"3.1\\u0000\""),
                "control characters",
            ),
        ] {
            let e = parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("GHSA-h5c8"), "{e}");
        }
        assert!(matches!(parse(b"[1]"), Err(OsvError::Json(_))));
        assert!(matches!(parse(b"{}"), Err(OsvError::Json(_))));
        let big = vec![b' '; MAX_RECORD + 1];
        assert!(matches!(parse(&big), Err(OsvError::TooLarge)));
    }
}
