//! `airlockd import`: verify and import volumes named on the command line (media: never
//! modified; a rejected volume is copied to quarantine).

use airlock_appliance::import::Origin;
use airlock_appliance::{Outcome, Status};
use airlock_ui::exit;
use anyhow::Result;
use serde_json::json;

use super::{esc, open_writer, print_json};
use crate::cli::{Cli, ImportArgs};

pub fn run(cli: &Cli, args: &ImportArgs) -> Result<u8> {
    let mut a = open_writer(cli, "import")?;
    a.verify_present = args.verify_present;
    if let Some(op) = &args.operator {
        a.operator = airlock_appliance::check_operator(op)?;
    }
    if let Some(p) = &args.policy {
        a.policy = airlock_policy::Policy::from_file(p)?;
    }
    if let Some(s) = args.clock_skew {
        a.clock_skew = s;
    }
    let total = args
        .volumes
        .iter()
        .filter_map(|v| std::fs::metadata(v).ok())
        .map(|m| m.len())
        .sum();
    let bar = airlock_ui::Bar::bytes("importing", total);
    let outcomes = a.import(&args.volumes, Origin::Media, &bar);
    bar.finish();
    let ok = outcomes.iter().all(Outcome::ok);
    if cli.json {
        print_json(&json!({"ok": ok, "volumes": outcomes}))?;
    } else {
        for o in &outcomes {
            print_outcome(o)?;
        }
    }
    for o in outcomes.iter().filter(|o| !o.ok()) {
        tracing::error!(
            "{} {}: {}",
            o.status,
            esc(&o.volume.display().to_string()),
            esc(&o.reason)
        );
    }
    Ok(if ok { exit::OK } else { exit::FAILED })
}

/// One volume's outcome in the text form of `airlockd import`.
fn print_outcome(o: &Outcome) -> Result<()> {
    let vol = esc(&o.volume.display().to_string());
    match o.status {
        Status::Accepted => say!(
            "accepted  {} ({}, volume {}): {} blobs written, {} already present{}",
            vol,
            esc(o.name.as_deref().unwrap_or("")),
            o.volume_number.unwrap_or(0),
            o.written,
            o.skipped,
            if o.visible.is_empty() {
                String::from("; waiting for more volumes")
            } else {
                format!("; now visible: {}", esc(&o.visible.join(", ")))
            }
        ),
        Status::Duplicate => say!("no-op     {}: {}", vol, esc(&o.reason)),
        Status::Rejected => {
            say!("REJECTED  {}: {}", vol, esc(&o.reason));
            if let Some(q) = &o.quarantined {
                say!(
                    "          copied to {} (the original is left as it was)",
                    q.display()
                );
            }
        }
        Status::Failed => say!("FAILED    {}: {}", vol, esc(&o.reason)),
    }
    if let Some(n) = &o.note {
        say!("          note: {}", esc(n));
    }
    Ok(())
}
