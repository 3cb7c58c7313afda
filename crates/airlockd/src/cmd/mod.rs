//! Command implementations, one module per command. Each returns the exit code; errors bubble
//! up to `main`.

/// `println!` that returns an error instead of panicking when stdout is closed
/// (`airlockd list | head -1`); `main` treats a broken pipe as success.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)?;
    }};
}

mod audit;
mod fsck;
mod import;
mod init;
mod inventory;
mod lineage;
mod list;
mod node;
mod replica;
mod report;
mod sbom;
mod serve;
mod vuln;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use airlock_appliance::{Appliance, Outcome};
use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{AuditCmd, Cli, Command, InventoryCmd, NodeCmd};

pub fn run(cli: &Cli) -> Result<u8> {
    match &cli.command {
        Command::Init(a) => init::run(cli, a),
        Command::Import(a) => import::run(cli, a),
        Command::List => list::list(cli),
        Command::Status => list::status(cli),
        Command::Fsck { repair } => fsck::run(cli, *repair),
        Command::Audit(AuditCmd::Show { limit }) => audit::show(cli, *limit),
        Command::Audit(AuditCmd::Verify) => audit::verify(cli),
        Command::Inventory(InventoryCmd::Export { out }) => inventory::export(cli, out),
        Command::Lineage(a) => lineage::run(cli, a),
        Command::Sbom(c) => sbom::run(cli, c),
        Command::Vuln(c) => vuln::run(cli, c),
        Command::Report(a) => report::run(cli, a),
        Command::Serve(a) => serve::run(cli, a),
        Command::Node(NodeCmd::Preflight(a)) => node::preflight(cli, a),
        Command::Node(NodeCmd::Render(a)) => node::render(cli, a),
        Command::Node(NodeCmd::Install(a)) => node::install(cli, a),
    }
}

/// The data directory: `--data` or `AIRLOCK_DATA`.
fn data(cli: &Cli) -> Result<&Path> {
    cli.data
        .as_deref()
        .context("no data directory: pass --data DIR or set AIRLOCK_DATA")
}

/// How long a writer waits for another writer (`--wait`).
fn wait(cli: &Cli) -> Duration {
    Duration::from_millis(cli.wait)
}

/// Opens the data directory for writing, waiting up to `--wait` for another writer.
fn open_writer(cli: &Cli, purpose: &str) -> Result<Appliance> {
    Ok(Appliance::open(data(cli)?, purpose, wait(cli))?)
}

/// Opens the data directory read-only: never waits, needs no write access.
fn open_reader(cli: &Cli) -> Result<Appliance> {
    Ok(Appliance::open_read_only(data(cli)?)?)
}

/// Untrusted text (names and reasons from bundles, paths from media) made safe for a terminal.
fn esc(s: &str) -> String {
    airlock_core::text::escape(s)
}

/// Pretty JSON and a newline on stdout.
fn print_json<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// One import outcome as the inbox watcher reports it: a JSON line with `--json`, else
/// `STATUS VOLUME REASON`.
fn print_watched(json: bool, o: &Outcome) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, o).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{:<9} {} {}",
            o.status,
            esc(&o.volume.display().to_string()),
            esc(&o.reason)
        )?;
    }
    Ok(())
}
