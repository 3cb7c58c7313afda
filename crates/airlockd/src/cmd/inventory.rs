//! `airlockd inventory export`: a signed list of every blob held, for differential bundles.

use std::path::Path;

use airlock_ui::exit;
use anyhow::{Context, Result};
use serde_json::json;

use super::{open_writer, print_json};
use crate::cli::Cli;

pub fn export(cli: &Cli, out: &Path) -> Result<u8> {
    // Signing needs the private key and the audit entry needs the writer lock; the export is
    // one catalog read, so the lock is held briefly.
    let mut a = open_writer(cli, "inventory export")?;
    let doc = a.export_inventory()?;
    std::fs::write(out, &doc).with_context(|| format!("writing {}", out.display()))?;
    a.audit(
        "inventory-exported",
        json!({"file": out, "blobs": a.catalog.blobs()?.len()}),
    )?;
    if cli.json {
        print_json(&json!({"out": out, "applianceKey": a.public_key().keyid()}))?;
    } else {
        say!(
            "wrote {} (signed by appliance key {})",
            out.display(),
            a.public_key().keyid()
        );
    }
    Ok(exit::OK)
}
