//! `airlock scan PATH...`: run the supply-chain scanner (airlock-scan, with YARA rules from
//! airlock-yara) over files and directories. Exit 0 when nothing was found (or only `info`
//! findings), 1 when there are findings, 2 when a path could not be scanned (findings in the
//! other paths are still printed).

use anyhow::Result;

use crate::cli::{Cli, ScanArgs};

/// Exit codes of `airlock scan` (documented in docs/scanning.md).
const CLEAN: u8 = 0;
const FINDINGS: u8 = 1;
const ERROR: u8 = 2;

pub fn run(cli: &Cli, a: &ScanArgs) -> Result<u8> {
    let (rules, allow) = match a.rules.load().and_then(|r| Ok((r, a.rules.allow_list()?))) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ERROR);
        }
    };
    let limits = airlock_scan::Limits {
        allow,
        ..Default::default()
    };
    let mut findings = Vec::new();
    let mut errors = Vec::new();
    let mut files = 0u64;
    for p in &a.paths {
        let bar = airlock_ui::Bar::bytes("scanning", 0);
        let found =
            airlock_scan::scan_tree_progress(p, &limits, &rules, &|n| bar.set_total(n), &|n| {
                airlock_bundle::Progress::advance(&bar, n)
            });
        bar.finish();
        match found {
            Ok(r) => {
                files += r.files;
                findings.extend(r.findings);
            }
            Err(e) => {
                let e = anyhow::Error::from(e);
                tracing::error!("{e:#}");
                errors.push(format!("{e:#}"));
            }
        }
    }
    if cli.json {
        super::print_json(&serde_json::json!({
            "files": files,
            "rules": {"id": rules.id(), "files": rules.files()},
            "globals": {"builtin": airlock_scan::allow::BUILTIN_ID, "operator": limits.allow.sha256()},
            "findings": findings,
            "errors": errors,
        }))?;
    } else {
        for f in &findings {
            say!("{}", crate::scanning::finding_line(f));
        }
        for e in &errors {
            eprintln!("error: {e}");
        }
        eprintln!(
            "scanned {files} file(s): {} finding(s), {} error(s)",
            findings.len(),
            errors.len()
        );
    }
    Ok(if !errors.is_empty() {
        ERROR
    } else if findings
        .iter()
        .any(|f| f.severity > airlock_scan::Severity::Info)
    {
        FINDINGS
    } else {
        CLEAN
    })
}
