//! `airlockd audit show` and `airlockd audit verify`: read the hash-chained audit log, or check
//! its chain, signatures and signed head.

use airlock_ui::exit;
use anyhow::Result;
use serde_json::json;

use super::{esc, open_reader, print_json};
use crate::cli::Cli;

/// `audit show [--limit N]`: the log, newest last.
pub fn show(cli: &Cli, limit: Option<u32>) -> Result<u8> {
    let a = open_reader(cli)?;
    let entries = a.catalog.audit_entries(limit)?;
    if cli.json {
        print_json(&entries)?;
    } else {
        for e in &entries {
            say!(
                "{:>5} {} {:<18} {}",
                e.seq,
                e.time,
                e.kind,
                esc(&e.data.to_string())
            );
        }
    }
    Ok(exit::OK)
}

/// `audit verify`: names the first bad entry; exit 1 when anything is wrong.
pub fn verify(cli: &Cli) -> Result<u8> {
    let a = open_reader(cli)?;
    let r = a.verify_audit()?;
    if cli.json {
        print_json(
            &json!({"ok": r.problems.is_empty(), "entries": r.entries, "problems": r.problems}),
        )?;
    } else if r.problems.is_empty() {
        say!(
            "audit log intact: {} entries, chain and signatures verified",
            r.entries
        );
    } else {
        for p in &r.problems {
            say!("TAMPERED: {p}");
        }
    }
    Ok(if r.problems.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}
