//! `airlockd report KIND`: a compliance report (transfer register, inventory, integrity) and,
//! beside it, its DSSE statement signed by the appliance key. `full` can also be written as
//! OSCAL assessment results.

use std::path::{Path, PathBuf};

use airlock_appliance::report::{Format, Kind, Options, Period};
use airlock_ui::exit;
use anyhow::{Context, Result};
use serde_json::json;

use super::{open_writer, print_json};
use crate::cli::{Cli, ReportArgs, ReportFormat, ReportKind};

pub fn run(cli: &Cli, args: &ReportArgs) -> Result<u8> {
    let kind = match args.kind {
        ReportKind::Transfers => Kind::Transfers,
        ReportKind::Inventory => Kind::Inventory,
        ReportKind::Changes => Kind::Changes,
        ReportKind::Full => Kind::Full,
    };
    let format = match args.format {
        ReportFormat::Html => Format::Html,
        ReportFormat::Json => Format::Json,
        ReportFormat::Csv => Format::Csv,
        ReportFormat::Oscal => Format::Oscal,
    };
    if format == Format::Oscal && kind != Kind::Full {
        anyhow::bail!(
            "--format oscal needs the full report: its findings rest on the audit log's verification and the control mapping"
        );
    }
    let period = Period::new(
        args.from.as_deref(),
        args.to.as_deref(),
        airlock_core::time::now(),
    )?;
    let envelope_path = envelope_path(&args.out);
    // Signing needs the private key and the `report-generated` entry the writer lock; holding
    // it while the report is built also keeps imports from changing the record half-way.
    let mut a = open_writer(cli, "report")?;
    let report = a.report(
        kind,
        period,
        Options {
            skip_fsck: args.skip_fsck,
        },
    )?;
    let bytes = report.render(format);
    let (statement, envelope) = a.sign_report(&report, format, &bytes)?;
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    std::fs::write(&envelope_path, &envelope)
        .with_context(|| format!("writing {}", envelope_path.display()))?;
    a.audit(
        "report-generated",
        json!({"file": args.out, "sha256": statement.sha256, "size": statement.size,
               "kind": kind, "format": format, "period": statement.period, "audit": statement.audit}),
    )?;
    let intact = report.integrity.as_ref().map(|i| i.audit_intact);
    if cli.json {
        print_json(&json!({
            "out": args.out, "envelope": envelope_path, "sha256": statement.sha256,
            "kind": kind, "format": format, "period": statement.period, "audit": statement.audit,
            "applianceKey": statement.appliance, "auditIntact": intact,
        }))?;
    } else {
        say!(
            "wrote {} ({} report, {}, sha256 {})",
            args.out.display(),
            kind.as_str(),
            format.as_str(),
            statement.sha256
        );
        say!(
            "wrote {} (signed by appliance key {})",
            envelope_path.display(),
            statement.appliance
        );
        if intact == Some(false) {
            say!("the audit log is NOT intact; the report says where (see also `airlockd audit verify`)");
        }
    }
    Ok(if intact == Some(false) {
        exit::FAILED
    } else {
        exit::OK
    })
}

/// `FILE.dsse.json` beside `FILE`.
fn envelope_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".dsse.json");
    PathBuf::from(s)
}
