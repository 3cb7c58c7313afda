//! `airlock trust init`.

use airlock_core::time::{format_rfc3339, now};
use airlock_trust::root::RootSpec;
use airlock_trust::{KeyPair, PublicKey, Signer, TrustRoot};
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{Cli, TrustInitArgs};

pub fn init(cli: &Cli, a: &TrustInitArgs) -> Result<u8> {
    let root_pairs: Vec<KeyPair> = a
        .root_keys
        .iter()
        .map(|p| KeyPair::load(p))
        .collect::<Result<_, _>>()?;
    let signers: Vec<PublicKey> = a
        .signers
        .iter()
        .map(|p| PublicKey::load(p))
        .collect::<Result<_, _>>()?;
    let lifetime = airlock_ui::parse_duration(&a.expires).map_err(anyhow::Error::msg)?;
    let expires = now() + lifetime;
    let spec = RootSpec {
        version: 1,
        expires,
        root_keys: root_pairs.iter().map(|k| k.public_key()).collect(),
        root_threshold: a.root_threshold,
        bundle_keys: signers,
        bundle_threshold: a.threshold,
        revoked: vec![],
        signers: root_pairs.iter().map(|k| k as &dyn Signer).collect(),
    };
    let bytes = spec.sign().context("building the trust root")?;
    // Check what we wrote the way a verifier will.
    let root = TrustRoot::load_initial(&bytes, now()).context("the new root does not verify")?;
    airlock_store::write_atomic(&a.out, &bytes)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let summary = json!({
        "path": a.out,
        "version": root.meta.version,
        "expires": format_rfc3339(expires),
        "rootKeys": root.meta.roles["root"].keyids,
        "rootThreshold": root.meta.roles["root"].threshold,
        "bundleKeys": root.meta.roles["bundle"].keyids,
        "bundleThreshold": root.meta.roles["bundle"].threshold,
    });
    if cli.json {
        super::print_json(&summary)?;
    } else {
        println!(
            "wrote {} (version 1, {} of {} signer keys required per bundle, expires {})",
            a.out.display(),
            a.threshold,
            a.signers.len(),
            format_rfc3339(expires)
        );
    }
    Ok(airlock_ui::exit::OK)
}
