//! `airlock vulndb match`: which components of an SBOM the OSV records of a directory affect,
//! on the connected side, before anything is packed. The same matcher (airlock-vuln) runs on
//! the appliance; this is the preview an engineer reads before carrying a bundle.

use std::io::Read;

use airlock_vuln::matching::Level;
use anyhow::{Context, Result};
use serde_json::json;

use super::print_json;
use crate::cli::{Cli, MinSeverity, VulndbCmd, VulndbMatchArgs};

pub fn run(cli: &Cli, c: &VulndbCmd) -> Result<u8> {
    match c {
        VulndbCmd::Match(a) => run_match(cli, a),
    }
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

fn run_match(cli: &Cli, a: &VulndbMatchArgs) -> Result<u8> {
    let mut bytes = Vec::new();
    std::fs::File::open(&a.sbom)
        .with_context(|| format!("opening {}", a.sbom.display()))?
        .take(airlock_vuln::db::MAX_SBOM + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", a.sbom.display()))?;
    let (components, unmatched) = airlock_vuln::db::components_of_cyclonedx(&bytes)
        .map_err(|e| anyhow::anyhow!("SBOM {}: {e}", a.sbom.display()))?;
    let (db, report) = airlock_vuln::db::load_dir(&a.db)
        .with_context(|| format!("reading the OSV records in {}", a.db.display()))?;
    for r in &report.refused {
        tracing::warn!("not an OSV record: {r}");
    }
    let (matches, undecided) = airlock_vuln::db::match_all(&db, &components);
    let floor = floor(a.min_severity);
    let shown: Vec<_> = matches.iter().filter(|m| m.severity >= floor).collect();
    if cli.json {
        print_json(&json!({
            "sbom": a.sbom,
            "components": components.len(),
            "componentsNotMatchable": unmatched,
            "database": report,
            "undecided": undecided,
            "matches": shown,
        }))?;
    } else {
        for m in &shown {
            let score = m
                .cvss_score
                .map(|s| format!("{s:.1}"))
                .unwrap_or_else(|| "-".into());
            let fixed = if m.fixed.is_empty() {
                "no fix".to_string()
            } else {
                format!("fixed in {}", m.fixed.join(", "))
            };
            say!(
                "{:<20} {:<8} {:>4}  {} {} ({})  {}",
                m.id,
                m.severity.name(),
                score,
                m.package,
                m.version,
                m.ecosystem,
                fixed
            );
        }
        say!(
            "{} match(es) in {} components ({} not matchable: no purl, or an ecosystem or release without records); {} advisories from {} files{}",
            shown.len(),
            components.len(),
            unmatched,
            report.advisories,
            report.files,
            if undecided > 0 {
                format!("; {undecided} (component, advisory) pairs could not be ordered")
            } else {
                String::new()
            }
        );
    }
    Ok(airlock_ui::exit::OK)
}
