//! `airlock trust init` and `airlock trust rotate`.

use std::path::Path;

use airlock_core::time::{format_rfc3339, now_checked};
use airlock_trust::root::RootSpec;
use airlock_trust::{PublicKey, TrustRoot};
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{Cli, TrustInitArgs, TrustRotateArgs};

fn load_pubs(paths: &[std::path::PathBuf]) -> Result<Vec<PublicKey>> {
    Ok(paths
        .iter()
        .map(|p| PublicKey::load(p))
        .collect::<Result<_, _>>()?)
}

fn write_new(out: &Path, bytes: &[u8]) -> Result<()> {
    anyhow::ensure!(
        !out.exists(),
        "{} already exists; trust roots are never overwritten",
        out.display()
    );
    airlock_store::write_atomic(out, bytes)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

fn report(cli: &Cli, out: &Path, root: &TrustRoot) -> Result<u8> {
    let summary = json!({
        "path": out,
        "version": root.meta.version,
        "expires": root.meta.expires,
        "rootKeys": root.meta.roles["root"].keyids,
        "rootThreshold": root.meta.roles["root"].threshold,
        "bundleKeys": root.meta.roles["bundle"].keyids,
        "bundleThreshold": root.meta.roles["bundle"].threshold,
        "revoked": root.meta.revoked,
    });
    if cli.json {
        super::print_json(&summary)?;
    } else {
        say!(
            "wrote {} (version {}, {} of {} signer keys required per bundle, expires {})",
            out.display(),
            root.meta.version,
            root.meta.roles["bundle"].threshold,
            root.meta.roles["bundle"].keyids.len(),
            root.meta.expires
        );
    }
    Ok(airlock_ui::exit::OK)
}

/// The expiry time `secs` from now; an error for a clock before 1970 or an overflow.
fn expiry(secs: i64) -> Result<i64> {
    now_checked()?
        .checked_add(secs)
        .context("the expiry time is out of range")
}

pub fn init(cli: &Cli, a: &TrustInitArgs) -> Result<u8> {
    let root_pairs = super::load_signers(&a.root_keys)?;
    let spec = RootSpec {
        version: 1,
        expires: expiry(a.expires)?,
        root_keys: root_pairs.iter().map(|k| k.public_key()).collect(),
        root_threshold: a.root_threshold,
        bundle_keys: load_pubs(&a.signers)?,
        bundle_threshold: a.threshold,
        revoked: vec![],
        signers: super::signer_refs(&root_pairs),
    };
    let bytes = spec.sign().context("building the trust root")?;
    // Check what we wrote the way a verifier will.
    let root =
        TrustRoot::load_initial(&bytes, now_checked()?).context("the new root does not verify")?;
    write_new(&a.out, &bytes)?;
    report(cli, &a.out, &root)
}

pub fn rotate(cli: &Cli, a: &TrustRotateArgs) -> Result<u8> {
    let old_bytes = super::read_bounded(
        &a.from,
        airlock_trust::root::MAX_ROOT_BYTES as u64,
        "trust root",
    )?;
    // The old root may have expired: that is a reason to rotate, not to refuse.
    let old = TrustRoot::load_initial(&old_bytes, 0)
        .with_context(|| format!("trust root {}", a.from.display()))?;
    let old_pairs = super::load_signers(&a.sign_keys)?;
    let new_pairs = super::load_signers(&a.root_keys)?;
    let mut signers = super::signer_refs(&old_pairs);
    signers.extend(super::signer_refs(&new_pairs));
    let spec = RootSpec {
        version: old.meta.version + 1,
        expires: expiry(a.expires)?,
        root_keys: new_pairs.iter().map(|k| k.public_key()).collect(),
        root_threshold: a.root_threshold,
        bundle_keys: load_pubs(&a.signers)?,
        bundle_threshold: a.threshold,
        revoked: a.revoke.clone(),
        signers,
    };
    let bytes = spec.sign().context("building the new trust root")?;
    let root = old
        .update(&bytes, now_checked()?)
        .context("the new root does not chain from the old one (are enough old root keys given with --sign-key?)")?;
    write_new(&a.out, &bytes)?;
    tracing::info!(from = old.meta.version, to = root.meta.version, expires = %format_rfc3339(root.expires()), "rotated");
    report(cli, &a.out, &root)
}
