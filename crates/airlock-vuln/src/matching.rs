//! Which SBOM components the advisories of a database affect.
//!
//! Components come as package URLs (the SBOMs airlock writes carry one per component) and are
//! keyed the way OSV keys packages: ecosystem plus name. Debian and Alpine advisories name the
//! *source* package and a release (`Debian:12`, `Alpine:v3.20`): a component is matched by its
//! source package (the purl's `upstream` qualifier, else its name) and the release in its
//! `distro` qualifier, so a component whose distribution release is unknown matches no
//! distribution advisory rather than every release's. PyPI names are compared after PEP 503
//! normalisation; npm, Go and crates.io names as written.
//!
//! A version is affected, per OSV's evaluation algorithm, when it is listed in `versions`, or
//! when some range's events, sorted in the ecosystem's order, leave it vulnerable: walking
//! them in order, `introduced` at or below the version (or `"0"`) sets vulnerable, `fixed` at
//! or below it clears it, and `last_affected` below it clears it. A range with a version that
//! does not parse in the ecosystem's order cannot be decided; such cases are counted as
//! undecided, never reported as affected or clean.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use airlock_core::text::pep503;
use serde::Serialize;

use crate::osv::{Advisory, Affected, Event, Severity};
use crate::version::{compare, Scheme};

/// A component to match, derived from its package URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub purl: String,
    /// The OSV ecosystem it belongs to (`Debian:12`, `PyPI`).
    pub ecosystem: String,
    pub scheme: Scheme,
    /// The name advisories use for it (Debian/Alpine: the source package; PyPI: normalised).
    pub key_name: String,
    pub version: String,
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Component {
    /// The component a package URL names, `None` for types airlock does not match (and for
    /// malformed purls). `source_package` overrides the purl's `upstream` qualifier.
    pub fn from_purl(purl: &str, source_package: Option<&str>) -> Option<Component> {
        if purl.len() > 2048 {
            return None;
        }
        let rest = purl.strip_prefix("pkg:")?;
        let rest = rest.split('#').next()?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let (path, version) = path.rsplit_once('@')?;
        let version = decode(version);
        let (ty, name_path) = path.split_once('/')?;
        let segs: Vec<String> = name_path.split('/').map(decode).collect();
        let name = segs.last()?.clone();
        let namespace = segs[..segs.len() - 1].join("/");
        let mut qual: HashMap<String, String> = HashMap::new();
        for kv in query.unwrap_or("").split('&') {
            if let Some((k, v)) = kv.split_once('=') {
                qual.insert(k.to_ascii_lowercase(), decode(v));
            }
        }
        if version.is_empty() || name.is_empty() {
            return None;
        }
        let upstream = source_package
            .map(str::to_string)
            .or_else(|| qual.get("upstream").cloned());
        let (ecosystem, key_name) = match ty.to_ascii_lowercase().as_str() {
            "deb" => {
                let distro = qual.get("distro")?;
                let (id, rel) = distro.split_once('-')?;
                if id != "debian" || namespace != "debian" {
                    return None;
                }
                let major = rel.split('.').next()?;
                (format!("Debian:{major}"), upstream.unwrap_or(name))
            }
            "apk" => {
                let distro = qual.get("distro")?;
                let rel = distro.strip_prefix("alpine-")?;
                let mut it = rel.split('.');
                let (maj, min) = (it.next()?, it.next()?);
                (format!("Alpine:v{maj}.{min}"), upstream.unwrap_or(name))
            }
            "pypi" => ("PyPI".to_string(), pep503(&name)),
            "npm" => (
                "npm".to_string(),
                if namespace.is_empty() {
                    name
                } else {
                    format!("{namespace}/{name}")
                },
            ),
            "golang" => (
                "Go".to_string(),
                if namespace.is_empty() {
                    name
                } else {
                    format!("{namespace}/{name}")
                },
            ),
            "cargo" => ("crates.io".to_string(), name),
            _ => return None,
        };
        let scheme = Scheme::of_ecosystem(&ecosystem)?;
        Some(Component {
            purl: purl.to_string(),
            ecosystem,
            scheme,
            key_name,
            version,
        })
    }
}

/// Is `version` affected by `a`? `Some(true)`/`Some(false)`, or `None` when a range needed to
/// decide cannot be ordered.
pub fn is_affected(scheme: Scheme, version: &str, a: &Affected) -> Option<bool> {
    if a.versions
        .iter()
        .any(|v| v == version || compare(scheme, v, version) == Some(Ordering::Equal))
    {
        return Some(true);
    }
    let mut undecided = false;
    for events in &a.ranges {
        match in_range(scheme, version, events) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => undecided = true,
        }
    }
    if undecided {
        None
    } else {
        Some(false)
    }
}

/// OSV's evaluation of one range's events for `version`.
fn in_range(scheme: Scheme, version: &str, events: &[Event]) -> Option<bool> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    let mut ok = true;
    sorted.sort_by(|a, b| {
        let (x, y) = (a.version(), b.version());
        match (x == "0", y == "0") {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => compare(scheme, x, y).unwrap_or_else(|| {
                ok = false;
                Ordering::Equal
            }),
        }
    });
    if !ok {
        return None;
    }
    let mut vulnerable = false;
    for e in sorted {
        let cmp = |v: &str| compare(scheme, version, v);
        match e {
            Event::Introduced(v) => {
                if v == "0" || cmp(v)? != Ordering::Less {
                    vulnerable = true;
                }
            }
            Event::Fixed(v) => {
                if cmp(v)? != Ordering::Less {
                    vulnerable = false;
                }
            }
            Event::LastAffected(v) => {
                if cmp(v)? == Ordering::Greater {
                    vulnerable = false;
                }
            }
        }
    }
    Some(vulnerable)
}

/// The versions that fix `a` for `version`: the `fixed` events above it.
fn fixes_above(scheme: Scheme, version: &str, a: &Affected) -> Vec<String> {
    let mut out: Vec<String> = a
        .ranges
        .iter()
        .flatten()
        .filter_map(|e| match e {
            Event::Fixed(v) if compare(scheme, v, version) == Some(Ordering::Greater) => {
                Some(v.clone())
            }
            _ => None,
        })
        .collect();
    out.sort_by(|x, y| compare(scheme, x, y).unwrap_or(Ordering::Equal));
    out.dedup();
    out
}

/// A qualitative severity, highest first when sorted descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Unknown,
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    /// CVSS's qualitative scale for a base score.
    pub fn of_score(score: f64) -> Level {
        match score {
            s if s >= 9.0 => Level::Critical,
            s if s >= 7.0 => Level::High,
            s if s >= 4.0 => Level::Medium,
            s if s > 0.0 => Level::Low,
            _ => Level::None,
        }
    }

    /// A database's own label (GHSA's `MODERATE`, Red Hat's `Important`, Debian urgencies).
    pub fn of_label(l: &str) -> Level {
        match l.to_ascii_lowercase().trim_end_matches('*').trim() {
            "critical" => Level::Critical,
            "high" | "important" => Level::High,
            "medium" | "moderate" => Level::Medium,
            "low" | "unimportant" | "negligible" => Level::Low,
            "none" => Level::None,
            _ => Level::Unknown,
        }
    }

    pub fn rank(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::None => "none",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// The severity of an advisory for one affected entry: the highest-version CVSS vector that
/// scores, computed from the vector; else the database's label.
pub fn severity_of(adv: &Advisory, a: &Affected) -> (Level, Option<f64>, Option<String>) {
    let all: Vec<&Severity> = a.severity.iter().chain(adv.severity.iter()).collect();
    let mut cvss: Vec<(&str, &str)> = all
        .iter()
        .filter_map(|s| match s {
            Severity::Cvss { kind, vector } => Some((kind.as_str(), vector.as_str())),
            Severity::Label(_) => None,
        })
        .collect();
    cvss.sort_by(|x, y| y.0.cmp(x.0)); // CVSS_V4 before CVSS_V3 before CVSS_V2
    for (_, vector) in cvss {
        if let Ok(score) = crate::cvss::base_score(vector) {
            return (
                Level::of_score(score),
                Some(score),
                Some(vector.to_string()),
            );
        }
    }
    let label = all
        .iter()
        .filter_map(|s| match s {
            Severity::Label(l) => Some(Level::of_label(l)),
            Severity::Cvss { .. } => None,
        })
        .max()
        .unwrap_or(Level::Unknown);
    (label, None, None)
}

/// One (component, advisory) pair found affected.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    pub purl: String,
    pub ecosystem: String,
    pub package: String,
    pub version: String,
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub severity: Level,
    pub rank: u8,
    pub cvss_score: Option<f64>,
    pub cvss_vector: Option<String>,
    pub fixed: Vec<String>,
    pub fix_available: bool,
    /// The advisory's id or an alias is in the known-exploited list
    /// ([`Database::set_known_exploited`]).
    pub known_exploited: bool,
}

/// An advisory and the index of one of its affected entries.
type Entry = (Arc<Advisory>, usize);

/// Advisories indexed by (ecosystem, package name) for matching.
///
/// [`Database::only_for`] keeps only the advisories that affect one of a known set of
/// components, so that matching a few thousand components against a database of hundreds of
/// thousands of records holds only the records that matter: memory follows the components,
/// not the database.
#[derive(Debug, Default)]
pub struct Database {
    by_package: HashMap<(String, String), Vec<Entry>>,
    /// When set, the only (ecosystem, name) keys whose advisories are kept.
    only: Option<std::collections::HashSet<(String, String)>>,
    /// The names of `only`, for [`Database::may_want`].
    only_names: Option<std::collections::HashSet<String>>,
    /// Advisories held.
    pub advisories: usize,
    /// Affected entries dropped because their ecosystem has no order here.
    pub dropped: usize,
    /// Records passed over unparsed because [`Database::may_want`] said no.
    pub skipped: usize,
    /// CVE ids known to be exploited (CISA's catalog, [`crate::kev`]).
    known_exploited: std::collections::HashSet<String>,
}

fn key(ecosystem: &str, scheme: Scheme, name: &str) -> (String, String) {
    let name = if scheme == Scheme::Pep440 {
        pep503(name)
    } else {
        name.to_string()
    };
    (ecosystem.to_string(), name)
}

impl Database {
    /// An empty database that will keep only advisories affecting one of `components`.
    pub fn only_for(components: &[Component]) -> Database {
        let only: std::collections::HashSet<(String, String)> = components
            .iter()
            .map(|c| key(&c.ecosystem, c.scheme, &c.key_name))
            .collect();
        Database {
            only_names: Some(only.iter().map(|(_, n)| n.clone()).collect()),
            only: Some(only),
            ..Database::default()
        }
    }

    /// Could the OSV record `line` (JSON text) affect a component this database keeps? A
    /// cheap test run before the record is parsed: `false` only when no `"name"` string in the
    /// record, as written or PEP 503-normalised, is the name of a kept component, which every
    /// affected package the record could be kept for would have to be. A name with an escape
    /// in it cannot be compared without decoding and counts as a possible match. Always `true`
    /// for a database that keeps everything.
    pub fn may_want(&self, line: &[u8]) -> bool {
        let Some(names) = &self.only_names else {
            return true;
        };
        static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
            std::sync::OnceLock::new();
        let finder = FINDER.get_or_init(|| memchr::memmem::Finder::new(b"\"name\""));
        let mut at = 0;
        while let Some(i) = finder.find(&line[at..]) {
            at += i + 6;
            let rest = &line[at..];
            let mut j = 0;
            while j < rest.len() && matches!(rest[j], b' ' | b'\t' | b'\n' | b'\r') {
                j += 1;
            }
            if rest.get(j) != Some(&b':') {
                continue;
            }
            j += 1;
            while j < rest.len() && matches!(rest[j], b' ' | b'\t' | b'\n' | b'\r') {
                j += 1;
            }
            if rest.get(j) != Some(&b'"') {
                continue;
            }
            let value = &rest[j + 1..];
            let Some(end) = memchr::memchr2(b'"', b'\\', value) else {
                return true; // unterminated: let the parser say what is wrong
            };
            if value[end] == b'\\' {
                return true;
            }
            let Ok(name) = std::str::from_utf8(&value[..end]) else {
                return true;
            };
            // A name of `[a-z0-9-]` without leading, trailing or doubled `-` is its own
            // PEP 503 form; only other names are normalised (which allocates).
            let plain = name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !name.starts_with('-')
                && !name.ends_with('-')
                && !name.contains("--");
            let normalised = || !plain && names.contains(&pep503(name));
            if names.contains(name) || normalised() {
                return true;
            }
        }
        false
    }

    /// The CVE ids known to be exploited: a match whose advisory id or alias is one of them
    /// is reported as known-exploited.
    pub fn set_known_exploited(&mut self, cves: impl IntoIterator<Item = String>) {
        self.known_exploited = cves.into_iter().collect();
    }

    /// Adds an advisory (counted whether or not it is kept).
    pub fn add(&mut self, adv: Advisory) {
        self.advisories += 1;
        self.dropped += adv.dropped;
        if let Some(only) = &self.only {
            if !adv
                .affected
                .iter()
                .any(|a| only.contains(&key(&a.ecosystem, a.scheme, &a.name)))
            {
                return;
            }
        }
        let adv = Arc::new(adv);
        for (i, a) in adv.affected.iter().enumerate() {
            self.by_package
                .entry(key(&a.ecosystem, a.scheme, &a.name))
                .or_default()
                .push((adv.clone(), i));
        }
    }

    /// Every advisory affecting `c`, and how many could not be decided.
    pub fn match_component(&self, c: &Component) -> (Vec<Match>, usize) {
        let mut out = Vec::new();
        let mut undecided = 0;
        let Some(cands) = self
            .by_package
            .get(&key(&c.ecosystem, c.scheme, &c.key_name))
        else {
            return (out, 0);
        };
        for (adv, i) in cands {
            let a = &adv.affected[*i];
            match is_affected(c.scheme, &c.version, a) {
                Some(true) => {}
                Some(false) => continue,
                None => {
                    undecided += 1;
                    continue;
                }
            }
            if out.iter().any(|m: &Match| m.id == adv.id) {
                continue; // the same advisory through a second affected entry
            }
            let (severity, score, vector) = severity_of(adv, a);
            let fixed = fixes_above(c.scheme, &c.version, a);
            out.push(Match {
                purl: c.purl.clone(),
                ecosystem: c.ecosystem.clone(),
                package: c.key_name.clone(),
                version: c.version.clone(),
                id: adv.id.clone(),
                aliases: adv.aliases.clone(),
                summary: adv.summary.clone(),
                severity,
                rank: severity.rank(),
                cvss_score: score,
                cvss_vector: vector,
                fix_available: !fixed.is_empty(),
                fixed,
                known_exploited: std::iter::once(&adv.id)
                    .chain(&adv.aliases)
                    .any(|i| self.known_exploited.contains(i)),
            });
        }
        out.sort_by(|x, y| x.id.cmp(&y.id));
        (out, undecided)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affected(scheme: Scheme, ranges: Vec<Vec<Event>>, versions: &[&str]) -> Affected {
        Affected {
            ecosystem: "Debian:12".into(),
            scheme,
            name: "openssl".into(),
            ranges,
            versions: versions.iter().map(|v| v.to_string()).collect(),
            severity: vec![],
        }
    }

    #[test]
    fn dpkg_ranges_follow_osv_evaluation() {
        use Event::*;
        let a = affected(
            Scheme::Dpkg,
            vec![vec![
                Introduced("0".into()),
                Fixed("3.0.11-1~deb12u2".into()),
            ]],
            &[],
        );
        for (v, want) in [
            ("3.0.11-1~deb12u1", Some(true)),
            ("3.0.11-1~deb12u2", Some(false)),
            ("3.0.11-1", Some(false)),
            ("1:0.1", Some(false)),
            ("3.0.9-1", Some(true)),
        ] {
            assert_eq!(is_affected(Scheme::Dpkg, v, &a), want, "{v}");
        }
        // Two ranges, last_affected, listed versions.
        let a = affected(
            Scheme::Dpkg,
            vec![
                vec![Introduced("1.0".into()), LastAffected("1.5".into())],
                vec![Introduced("2.0".into()), Fixed("2.3".into())],
            ],
            &["0.9-9"],
        );
        for (v, want) in [
            ("0.5", false),
            ("0.9-9", true),
            ("1.0", true),
            ("1.5", true),
            ("1.5.1", false),
            ("2.2", true),
            ("2.3", false),
        ] {
            assert_eq!(is_affected(Scheme::Dpkg, v, &a), Some(want), "{v}");
        }
        // A version the order cannot read makes the range undecidable.
        let a = affected(
            Scheme::Dpkg,
            vec![vec![Introduced("0".into()), Fixed("!!".into())]],
            &[],
        );
        assert_eq!(is_affected(Scheme::Dpkg, "1.0", &a), None);
    }

    #[test]
    fn purls_become_osv_keys() {
        let c = Component::from_purl(
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl",
            None,
        )
        .unwrap();
        assert_eq!(
            (
                c.ecosystem.as_str(),
                c.key_name.as_str(),
                c.version.as_str()
            ),
            ("Debian:12", "openssl", "3.0.11-1~deb12u1")
        );
        let c = Component::from_purl("pkg:pypi/zope-interface@6.0", None).unwrap();
        assert_eq!(
            (c.ecosystem.as_str(), c.key_name.as_str()),
            ("PyPI", "zope-interface")
        );
        let c = Component::from_purl("pkg:npm/%40acme/scoped@1.0.0", None).unwrap();
        assert_eq!(c.key_name, "@acme/scoped");
        let c = Component::from_purl("pkg:golang/github.com/x/y@v1.2.3", None).unwrap();
        assert_eq!(
            (c.ecosystem.as_str(), c.key_name.as_str()),
            ("Go", "github.com/x/y")
        );
        let c = Component::from_purl(
            "pkg:apk/alpine/busybox@1.36.1-r29?arch=x86_64&distro=alpine-3.20.3",
            None,
        )
        .unwrap();
        assert_eq!(c.ecosystem, "Alpine:v3.20");
        // No release known: no distribution key; unknown types; junk.
        assert!(Component::from_purl("pkg:deb/debian/bash@5.2-1?arch=amd64", None).is_none());
        assert!(Component::from_purl("pkg:maven/a/b@1", None).is_none());
        assert!(Component::from_purl("not a purl", None).is_none());
        assert!(Component::from_purl("pkg:pypi/x", None).is_none());
    }

    #[test]
    fn a_database_for_known_components_keeps_only_their_advisories() {
        let c = Component::from_purl("pkg:pypi/jinja2@3.1.2", None).unwrap();
        let mut db = Database::only_for(std::slice::from_ref(&c));
        let adv = |id: &str, name: &str| Advisory {
            id: id.into(),
            aliases: vec![],
            summary: String::new(),
            modified: String::new(),
            severity: vec![],
            affected: vec![Affected {
                ecosystem: "PyPI".into(),
                scheme: Scheme::Pep440,
                name: name.into(),
                ranges: vec![],
                versions: vec!["3.1.2".into()],
                severity: vec![],
            }],
            dropped: 0,
        };
        db.add(adv("A", "Jinja2"));
        db.add(adv("B", "flask"));
        assert_eq!(db.advisories, 2, "both are counted");
        assert_eq!(db.by_package.len(), 1, "only jinja2's is kept");
        let (m, _) = db.match_component(&c);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].id, "A");
        assert!(!m[0].known_exploited);
        // Known-exploited through an alias.
        let mut db = Database::only_for(std::slice::from_ref(&c));
        db.set_known_exploited(["CVE-2024-0001".to_string()]);
        let mut a = adv("A", "jinja2");
        a.aliases = vec!["CVE-2024-0001".into()];
        db.add(a);
        db.add(adv("C", "jinja2"));
        let (m, _) = db.match_component(&c);
        assert_eq!(
            m.iter()
                .map(|m| (m.id.as_str(), m.known_exploited))
                .collect::<Vec<_>>(),
            [("A", true), ("C", false)]
        );
    }

    #[test]
    fn records_naming_no_kept_component_are_passed_over_before_parsing() {
        let comps = [
            Component::from_purl("pkg:pypi/zope-interface@6.0", None).unwrap(),
            Component::from_purl(
                "pkg:deb/debian/libssl3@3.0.11-1?distro=debian-12&upstream=openssl",
                None,
            )
            .unwrap(),
        ];
        let db = Database::only_for(&comps);
        let rec = |name: &str| {
            format!(
                r#"{{"id":"X","affected":[{{"package":{{"ecosystem":"PyPI","name":{name}}}}}]}}"#
            )
        };
        // As written, PEP 503-normalised, with spaces around the colon, the source package.
        assert!(db.may_want(rec("\"zope-interface\"").as_bytes()));
        assert!(db.may_want(rec("\"Zope.Interface\"").as_bytes()));
        assert!(db.may_want(rec("\"zope--interface\"").as_bytes()));
        assert!(db.may_want(rec("\"-zope-interface\"").as_bytes()));
        assert!(db.may_want(br#"{"package": {"name" :  "openssl"}}"#));
        // An escape cannot be compared without decoding: parsed.
        assert!(db.may_want(rec(r#""zope\u002dinterface""#).as_bytes()));
        // Other names, names that are not strings, "name" as a value: passed over.
        assert!(!db.may_want(rec("\"flask\"").as_bytes()));
        assert!(!db.may_want(rec("7").as_bytes()));
        assert!(!db.may_want(br#"{"id":"name","summary":"openssl-ish \"name\""}"#));
        assert!(!db.may_want(b""));
        // A database that keeps everything wants everything.
        assert!(Database::default().may_want(rec("\"flask\"").as_bytes()));
    }

    #[test]
    fn labels_and_scores_rank() {
        assert_eq!(Level::of_label("MODERATE"), Level::Medium);
        assert_eq!(Level::of_label("Important"), Level::High);
        assert_eq!(Level::of_label("not yet assigned"), Level::Unknown);
        assert_eq!(Level::of_score(9.8), Level::Critical);
        assert_eq!(Level::of_score(0.0), Level::None);
        assert!(Level::Critical > Level::High && Level::Unknown < Level::None);
    }
}
