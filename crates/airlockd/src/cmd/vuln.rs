//! `airlockd vuln list`: the served images' SBOMs matched against the newest vulnerability
//! database this appliance imported.
//!
//! The database travels as a signed bundle on channel `vulndb` (`airlock vulndb pack`); how
//! it and the SBOMs are read and matched is `airlock_appliance::vuln`.

use airlock_appliance::vuln::{age_days, cyclonedx_sboms, match_served};
use airlock_ui::exit;
use airlock_vuln::matching::{Level, Match};
use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::json;

use super::{open_reader, print_json};
use crate::cli::{Cli, MinSeverity, VulnCmd, VulnFormat, VulnListArgs};

pub fn run(cli: &Cli, c: &VulnCmd) -> Result<u8> {
    match c {
        VulnCmd::List(a) => list(cli, a),
    }
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

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn list(cli: &Cli, args: &VulnListArgs) -> Result<u8> {
    let a = open_reader(cli)?;
    if let Some(only) = &args.artifact {
        if !cyclonedx_sboms(&a)?.iter().any(|(i, _)| i == only) {
            bail!("{only:?} is not a served image with an SBOM (airlockd sbom list)");
        }
    }
    let Some((act, rows, undecided)) = match_served(&a, args.artifact.as_deref())? else {
        bail!(
            "no vulnerability database has been imported: pack one with `airlock vulndb pack` \
             and import it"
        );
    };
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
                "sources": act.header.get("sources"),
                "knownExploited": act.header.get("knownExploited").map(|k| json!({
                    "url": k["url"], "retrieved": k["retrieved"],
                    "catalogVersion": k["catalogVersion"], "count": k["count"],
                })),
            },
            "undecided": undecided,
            "vulnerabilities": rows.iter().map(|(i, m)| Row { artifact: i, m }).collect::<Vec<_>>(),
        }))?,
        VulnFormat::Csv => {
            say!("artifact,id,aliases,severity,cvss_score,package,version,ecosystem,purl,fixed,fix_available,known_exploited");
            for (i, m) in &rows {
                say!(
                    "{},{},{},{},{},{},{},{},{},{},{},{}",
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
                    m.fix_available,
                    m.known_exploited
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
                    "{i}  {}  {}  {}  {} {}  {}{}",
                    m.id,
                    m.severity.name(),
                    m.cvss_score.map_or("-".to_string(), |s| format!("{s:.1}")),
                    m.package,
                    m.version,
                    if m.fixed.is_empty() {
                        "no fix".to_string()
                    } else {
                        format!("fixed in {}", m.fixed.join(", "))
                    },
                    if m.known_exploited {
                        "  KNOWN EXPLOITED"
                    } else {
                        ""
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
