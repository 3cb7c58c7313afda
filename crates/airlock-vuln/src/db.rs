//! A directory of OSV records (one JSON document per file, as osv.dev's per-ecosystem exports
//! unpack) loaded into a [`Database`], and the CycloneDX SBOMs matched against it.
//!
//! Files are found by a walk that follows no symbolic links; a file larger than
//! [`crate::osv::MAX_RECORD`] or that is not an OSV record is counted and named, never fatal,
//! so one bad record does not hide the rest of the database. Withdrawn records are counted.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::matching::{Component, Database, Match};
use crate::osv;

/// What loading a directory found.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    pub files: usize,
    pub advisories: usize,
    pub withdrawn: usize,
    /// Affected entries of ecosystems airlock does not order.
    pub dropped_entries: usize,
    /// Files that are not OSV records, with why (the first 20).
    pub refused: Vec<String>,
    pub refused_count: usize,
}

/// Every `*.json` regular file under `dir`, sorted; symbolic links are not followed.
pub fn json_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() && e.path().extension().is_some_and(|x| x == "json") {
                files.push(e.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Loads every `*.json` under `dir`.
pub fn load_dir(dir: &Path) -> std::io::Result<(Database, LoadReport)> {
    load_dir_into(dir, Database::default())
}

/// Loads every `*.json` under `dir` into `db` (for example [`Database::only_for`]).
pub fn load_dir_into(dir: &Path, mut db: Database) -> std::io::Result<(Database, LoadReport)> {
    let mut rep = LoadReport::default();
    let files = json_files(dir)?;
    let mut buf = Vec::new();
    for p in files {
        rep.files += 1;
        buf.clear();
        let f = std::fs::File::open(&p)?;
        f.take(osv::MAX_RECORD as u64 + 1).read_to_end(&mut buf)?;
        let shown = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
        match osv::parse(&buf) {
            Ok(Some(a)) => {
                rep.advisories += 1;
                db.add(a);
            }
            Ok(None) => rep.withdrawn += 1,
            Err(e) => {
                rep.refused_count += 1;
                if rep.refused.len() < 20 {
                    rep.refused.push(format!("{shown}: {e}"));
                }
            }
        }
    }
    rep.dropped_entries = db.dropped;
    Ok((db, rep))
}

/// The `_type` of the first line of a normalised database file.
pub const DB_TYPE: &str = "airlock-vulndb/v1";

/// What reading a normalised database file found.
#[derive(Debug)]
pub struct Lines {
    /// The header line.
    pub header: serde_json::Value,
    /// Records that did not parse (each named in the log).
    pub refused: usize,
}

/// Reads a normalised database file (`airlock vulndb pack` writes it: a header line of `_type`
/// [`DB_TYPE`], then one OSV record per line) into `db`, with the known-exploited CVEs the
/// header lists. Each line is bounded by
/// [`osv::MAX_RECORD`]; a line longer than that, an empty file or a wrong header is an error
/// naming `what`. Records the database cannot keep ([`Database::may_want`]) are passed over
/// without being parsed, which is what makes matching a few components against hundreds of
/// thousands of records quick. The reader is read to its end, so a digest computed over it
/// covers the whole file.
pub fn read_lines_into<R: std::io::BufRead>(
    mut r: R,
    db: &mut Database,
    what: &str,
) -> Result<Lines, String> {
    use std::io::BufRead as _;
    let max = osv::MAX_RECORD as u64;
    let mut line = Vec::new();
    let next = |r: &mut R, line: &mut Vec<u8>| -> Result<bool, String> {
        line.clear();
        let n = std::io::Read::take(&mut *r, max + 1)
            .read_until(b'\n', line)
            .map_err(|e| format!("{what}: {e}"))?;
        if n as u64 > max {
            return Err(format!("{what}: a line over {max} bytes"));
        }
        Ok(n > 0)
    };
    if !next(&mut r, &mut line)? {
        return Err(format!("{what}: empty"));
    }
    let header: serde_json::Value =
        serde_json::from_slice(&line).map_err(|e| format!("{what}: header: {e}"))?;
    if header["_type"] != DB_TYPE {
        return Err(format!("{what}: not an {DB_TYPE} file"));
    }
    // CISA's known-exploited CVEs, when the database was packed with them.
    if let Some(cves) = header["knownExploited"]["cves"].as_array() {
        db.set_known_exploited(
            cves.iter()
                .filter_map(|c| c.as_str())
                .filter(|c| crate::kev::is_cve(c))
                .map(str::to_string),
        );
    }
    let mut refused = 0;
    while next(&mut r, &mut line)? {
        if !db.may_want(&line) {
            db.skipped += 1;
            continue;
        }
        match osv::parse(&line) {
            Ok(Some(adv)) => db.add(adv),
            Ok(None) => {}
            Err(e) => {
                refused += 1;
                tracing::warn!("{what}: record refused: {e}");
            }
        }
    }
    Ok(Lines { header, refused })
}

/// Largest SBOM read.
pub const MAX_SBOM: u64 = 256 << 20;

/// The components of a CycloneDX JSON SBOM that can be matched, and how many could not.
pub fn components_of_cyclonedx(bytes: &[u8]) -> Result<(Vec<Component>, usize), String> {
    if bytes.len() as u64 > MAX_SBOM {
        return Err(format!("SBOM over {MAX_SBOM} bytes"));
    }
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if v["bomFormat"] != "CycloneDX" {
        return Err("not a CycloneDX document (bomFormat)".into());
    }
    let mut out = Vec::new();
    let mut unmatched = 0;
    for c in v["components"].as_array().into_iter().flatten() {
        let Some(purl) = c["purl"].as_str() else {
            unmatched += 1;
            continue;
        };
        let source = c["properties"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "airlock:source-package")
            .and_then(|p| p["value"].as_str());
        match Component::from_purl(purl, source) {
            Some(c) => out.push(c),
            None => unmatched += 1,
        }
    }
    Ok((out, unmatched))
}

/// Every match of `components` in `db`, sorted by severity (highest first), then id and purl;
/// and the number of (component, advisory) pairs that could not be decided.
pub fn match_all(db: &Database, components: &[Component]) -> (Vec<Match>, usize) {
    let mut out = Vec::new();
    let mut undecided = 0;
    let mut seen: BTreeMap<(&str, &str), ()> = BTreeMap::new();
    for c in components {
        if seen.insert((&c.purl, &c.version), ()).is_some() {
            continue;
        }
        let (m, u) = db.match_component(c);
        out.extend(m);
        undecided += u;
    }
    out.sort_by(|x, y| {
        y.rank
            .cmp(&x.rank)
            .then_with(|| x.id.cmp(&y.id))
            .then_with(|| x.purl.cmp(&y.purl))
    });
    (out, undecided)
}
