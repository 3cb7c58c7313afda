//! `airlockd list` and `airlockd status`: what the appliance holds, from
//! [`Appliance::summary`](airlock_appliance::Appliance::summary).

use airlock_appliance::{Appliance, Summary};
use airlock_ui::exit;
use anyhow::Result;

use super::{esc, open_reader, print_json};
use crate::cli::Cli;

/// `list`: channels, bundles and artifacts.
pub fn list(cli: &Cli) -> Result<u8> {
    let a = open_reader(cli)?;
    let s = a.summary()?;
    if cli.json {
        print_json(&s)?;
        return Ok(exit::OK);
    }
    header(&a)?;
    say!("channels");
    for c in &s.channels {
        say!("  {:<12} sequence {}", esc(&c.channel), c.sequence);
    }
    say!("bundles");
    for b in &s.bundles {
        let imported: Vec<String> = b.imported_volumes.iter().map(u32::to_string).collect();
        say!(
            "  {} {} channel {} sequence {}: volumes {} of {}{}",
            esc(&b.name),
            esc(&b.version),
            esc(&b.channel),
            b.sequence,
            imported.join(","),
            b.volumes,
            if b.complete {
                " (complete)"
            } else {
                " (incomplete)"
            }
        );
    }
    say!("artifacts");
    for x in &s.artifacts {
        say!(
            "  {:<6} {}  {}{}",
            x.kind,
            esc(&x.name),
            x.digest,
            if x.visible {
                ""
            } else {
                "  (pending: blobs in volumes not yet imported)"
            }
        );
    }
    Ok(exit::OK)
}

/// `status`: counts and the most recent imports.
pub fn status(cli: &Cli) -> Result<u8> {
    let a = open_reader(cli)?;
    let s: Summary = a.summary()?;
    if cli.json {
        print_json(&s)?;
        return Ok(exit::OK);
    }
    header(&a)?;
    say!("bundles     {}", s.bundles.len());
    say!(
        "artifacts   {} visible",
        s.artifacts.iter().filter(|a| a.visible).count()
    );
    for i in s.recent_imports.iter().take(5) {
        say!(
            "import      {} {} {} {}",
            i.at,
            i.outcome,
            esc(&i.volume),
            esc(&i.reason)
        );
    }
    Ok(exit::OK)
}

/// The lines `list` and `status` both start with.
fn header(a: &Appliance) -> Result<()> {
    say!("data        {}", a.root.display());
    say!(
        "trust root  version {} (expires {})",
        a.trust.meta.version,
        a.trust.meta.expires
    );
    say!("policy      {}", a.policy.name());
    Ok(())
}
