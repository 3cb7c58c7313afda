//! `airlock inspect`: what a volume carries, read from its manifest without extracting.

use airlock_bundle::reader::Volume;
use airlock_core::time::now_checked;
use anyhow::Result;
use serde_json::json;

use crate::cli::{Cli, InspectArgs};

pub fn run(cli: &Cli, a: &InspectArgs) -> Result<u8> {
    let vol = Volume::open(&a.volume)?;
    let (statement, bundle_id) = match &a.trust {
        Some(root) => {
            let root = super::load_root(root)?;
            let auth = vol.authenticate(&root, now_checked()?, 300)?;
            (auth.statement, auth.bundle_id)
        }
        None => vol.statement_unverified()?,
    };
    let verified = a.trust.is_some();
    let m = &statement.predicate;
    let signers: Vec<&str> = vol
        .envelope
        .signatures
        .iter()
        .map(|s| s.keyid.as_str())
        .collect();
    let in_volume = m.items_of_volume(vol.label.volume).count();
    if cli.json {
        super::print_json(&json!({
            "bundle": bundle_id,
            "signaturesVerified": verified,
            "signatureKeyIds": signers,
            "volume": vol.label.volume,
            "blobsInVolume": in_volume,
            "manifest": m,
        }))?;
        return Ok(airlock_ui::exit::OK);
    }
    say!("bundle    {} {} ({bundle_id})", m.name, m.version);
    say!("channel   {} sequence {}", m.channel, m.sequence);
    say!(
        "created   {}  expires {}",
        m.created,
        m.expires.as_deref().unwrap_or("never")
    );
    say!("tool      {}", m.tool);
    say!(
        "volume    {} of {} ({} of {} blobs)",
        vol.label.volume,
        m.volumes,
        in_volume,
        m.blobs.len()
    );
    say!(
        "signers   {} ({})",
        signers.join(", "),
        if verified {
            "verified against the trust root"
        } else {
            "NOT verified: pass --trust ROOT"
        }
    );
    say!("artifacts");
    // Package counts of Debian closures, from the volume's index.json (no blob is read).
    let index: Option<airlock_core::oci::Index> = serde_json::from_slice(&vol.index_json).ok();
    let packages = |d: &airlock_core::Digest| {
        index.as_ref().and_then(|i| {
            i.manifests.iter().find(|e| e.digest == *d).and_then(|e| {
                e.annotations
                    .get(airlock_core::media::ANNOTATION_AIRLOCK_DEBS_PACKAGES)
            })
        })
    };
    for a in &m.artifacts {
        say!("  {:<6} {}  {}", a.kind.to_string(), a.name, a.digest);
        if let Some(n) = packages(&a.digest) {
            say!("         packages {n}");
        }
        say!("         source {}", a.provenance.source);
        if let Some(l) = &a.provenance.license {
            say!("         license {l}");
        }
        if !a.platforms_omitted.is_empty() {
            say!(
                "         platforms left out: {}",
                a.platforms_omitted.join(", ")
            );
        }
    }
    let total: u64 = m.blobs.iter().map(|b| b.size).sum();
    say!(
        "blobs     {} ({})",
        m.blobs.len(),
        airlock_ui::human_bytes(total)
    );
    Ok(airlock_ui::exit::OK)
}
