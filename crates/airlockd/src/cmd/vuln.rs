//! `airlockd vuln list`: the served images' SBOMs matched against the newest vulnerability
//! database this appliance imported.
//!
//! The database travels as a signed bundle on channel `vulndb` (`airlock vulndb pack`): one
//! file artifact named `vulndb` holding a header line and one OSV record per line. The name
//! resolves to the newest bundle on that channel, so the channel's rollback protection is the
//! database's. It is read as a stream, each line bounded, while its SHA-256 is computed and
//! compared with the digest the catalog holds; a mismatch discards the result. SBOMs are the
//! `sbom:IMAGE` artifacts `airlock pack` attached to the images (`airlockd sbom`).

use std::io::{BufRead, Read};

use airlock_core::oci::Manifest;
use airlock_core::Digest;
use airlock_ui::exit;
use airlock_vuln::matching::{Database, Level, Match};
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use super::{open_reader, print_json};
use crate::cli::{Cli, MinSeverity, VulnCmd, VulnFormat, VulnListArgs};

/// The served file artifact that holds the database.
pub const VULNDB_NAME: &str = "vulndb";

pub fn run(cli: &Cli, c: &VulnCmd) -> Result<u8> {
    match c {
        VulnCmd::List(a) => list(cli, a),
    }
}

/// The active database: its header, the advisories, and the bundle it came from.
pub(crate) struct Active {
    pub header: Value,
    pub db: Database,
    pub bundle: String,
    pub refused: usize,
}

/// Loads the database the name `vulndb` serves; `None` when none was imported.
pub(crate) fn active(a: &airlock_appliance::Appliance) -> Result<Option<Active>> {
    let Some(row) = a
        .catalog
        .served()?
        .into_iter()
        .find(|r| r.kind == "file" && r.name == VULNDB_NAME && r.current)
    else {
        return Ok(None);
    };
    let mdigest: Digest = row
        .digest
        .parse()
        .map_err(|e| anyhow!("catalog digest {}: {e}", row.digest))?;
    let m = a
        .store
        .read_verified(&mdigest, 1 << 20)
        .with_context(|| format!("vulnerability database manifest {mdigest}"))?;
    let m: Manifest = serde_json::from_slice(&m)
        .with_context(|| format!("vulnerability database manifest {mdigest}"))?;
    let [layer] = m.layers.as_slice() else {
        bail!("vulnerability database manifest {mdigest} has not one layer");
    };
    let reader = a
        .store
        .read(&layer.digest)
        .with_context(|| format!("vulnerability database {}", layer.digest))?;
    let mut hashing = airlock_core::Hashing::new(reader);
    let (header, db, refused) = {
        let mut lines = std::io::BufReader::with_capacity(1 << 20, &mut hashing);
        let mut line = Vec::new();
        let mut read_line = |line: &mut Vec<u8>| -> Result<bool> {
            line.clear();
            let n = (&mut lines)
                .take(airlock_vuln::osv::MAX_RECORD as u64 + 1)
                .read_until(b'\n', line)?;
            if n as u64 > airlock_vuln::osv::MAX_RECORD as u64 {
                bail!(
                    "vulnerability database: a line over {} bytes",
                    airlock_vuln::osv::MAX_RECORD
                );
            }
            Ok(n > 0)
        };
        if !read_line(&mut line)? {
            bail!("vulnerability database {}: empty", layer.digest);
        }
        let header: Value = serde_json::from_slice(&line)
            .map_err(|e| anyhow!("vulnerability database header: {e}"))?;
        if header["_type"] != "airlock-vulndb/v1" {
            bail!(
                "vulnerability database {}: not an airlock-vulndb/v1 file",
                layer.digest
            );
        }
        let mut db = Database::default();
        let mut refused = 0;
        while read_line(&mut line)? {
            match airlock_vuln::osv::parse(&line) {
                Ok(Some(adv)) => db.add(adv),
                Ok(None) => {}
                Err(e) => {
                    refused += 1;
                    tracing::warn!("vulnerability database record refused: {e}");
                }
            }
        }
        // Whatever the reader left unread still counts towards the digest.
        std::io::copy(&mut lines, &mut std::io::sink())?;
        (header, db, refused)
    };
    let (_, got, _) = hashing.finish();
    if got != layer.digest {
        bail!(
            "vulnerability database {} reads as {got}: the store is damaged (airlockd fsck)",
            layer.digest
        );
    }
    Ok(Some(Active {
        header,
        db,
        bundle: row.bundle,
        refused,
    }))
}

/// Days from `built` (RFC 3339) to now, rounded down; `None` when unreadable.
pub(crate) fn age_days(built: &str) -> Option<i64> {
    let t = airlock_core::time::parse_rfc3339(built).ok()?;
    Some((airlock_core::time::now() - t).max(0) / 86_400)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    artifact: &'a str,
    #[serde(flatten)]
    m: &'a Match,
}

fn floor(m: MinSeverity) -> Level {
    match m {
        MinSeverity::Unknown => Level::Unknown,
        MinSeverity::Low => Level::Low,
        MinSeverity::Medium => Level::Medium,
        MinSeverity::High => Level::High,
        MinSeverity::Critical => Level::Critical,
    }
}

/// Every (image, match) of the served SBOMs against `db`, and the undecided count.
pub(crate) fn matches(
    a: &airlock_appliance::Appliance,
    db: &Database,
    only: Option<&str>,
) -> Result<(Vec<(String, Match)>, usize)> {
    let mut out = Vec::new();
    let mut undecided = 0;
    for (image, digest) in super::sbom::cyclonedx_sboms(a)? {
        if only.is_some_and(|o| o != image) {
            continue;
        }
        let doc = super::sbom::document(a, &digest)?;
        let (components, _) = airlock_vuln::db::components_of_cyclonedx(&doc)
            .map_err(|e| anyhow!("SBOM of {image}: {e}"))?;
        let (ms, u) = airlock_vuln::db::match_all(db, &components);
        undecided += u;
        out.extend(ms.into_iter().map(|m| (image.clone(), m)));
    }
    out.sort_by(|x, y| {
        y.1.rank
            .cmp(&x.1.rank)
            .then_with(|| x.0.cmp(&y.0))
            .then_with(|| x.1.id.cmp(&y.1.id))
            .then_with(|| x.1.purl.cmp(&y.1.purl))
    });
    Ok((out, undecided))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn list(cli: &Cli, args: &VulnListArgs) -> Result<u8> {
    let a = open_reader(cli)?;
    let Some(act) = active(&a)? else {
        bail!(
            "no vulnerability database has been imported: pack one with `airlock vulndb pack` \
             and import it"
        );
    };
    if let Some(only) = &args.artifact {
        if !super::sbom::cyclonedx_sboms(&a)?
            .iter()
            .any(|(i, _)| i == only)
        {
            bail!("{only:?} is not a served image with an SBOM (airlockd sbom list)");
        }
    }
    let (rows, undecided) = matches(&a, &act.db, args.artifact.as_deref())?;
    let floor = floor(args.min_severity);
    let rows: Vec<&(String, Match)> = rows.iter().filter(|(_, m)| m.severity >= floor).collect();
    let built = act.header["built"].as_str().unwrap_or("");
    let format = if cli.json {
        VulnFormat::Json
    } else {
        args.format
    };
    match format {
        VulnFormat::Json => print_json(&json!({
            "vulndb": {
                "bundle": act.bundle,
                "built": built,
                "ageDays": age_days(built),
                "records": act.header["records"],
                "refused": act.refused,
            },
            "undecided": undecided,
            "vulnerabilities": rows.iter().map(|(i, m)| Row { artifact: i, m }).collect::<Vec<_>>(),
        }))?,
        VulnFormat::Csv => {
            say!("artifact,id,aliases,severity,cvss_score,package,version,ecosystem,purl,fixed,fix_available");
            for (i, m) in &rows {
                say!(
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    csv_field(i),
                    csv_field(&m.id),
                    csv_field(&m.aliases.join(" ")),
                    m.severity.name(),
                    m.cvss_score.map(|s| format!("{s:.1}")).unwrap_or_default(),
                    csv_field(&m.package),
                    csv_field(&m.version),
                    csv_field(&m.ecosystem),
                    csv_field(&m.purl),
                    csv_field(&m.fixed.join(" ")),
                    m.fix_available
                );
            }
        }
        VulnFormat::Table => {
            say!(
                "vulnerability database built {built} ({} days old), {} records",
                age_days(built).map_or("?".to_string(), |d| d.to_string()),
                act.header["records"]
            );
            for (i, m) in &rows {
                say!(
                    "{i}  {}  {}  {}  {} {}  {}",
                    m.id,
                    m.severity.name(),
                    m.cvss_score.map_or("-".to_string(), |s| format!("{s:.1}")),
                    m.package,
                    m.version,
                    if m.fixed.is_empty() {
                        "no fix".to_string()
                    } else {
                        format!("fixed in {}", m.fixed.join(", "))
                    }
                );
            }
            if rows.is_empty() {
                say!("no known vulnerability in the served images' SBOMs");
            }
        }
    }
    Ok(exit::OK)
}
