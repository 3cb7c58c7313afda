//! `airlock trust init` and `airlock trust rotate`.

use std::collections::BTreeMap;
use std::path::Path;

use airlock_core::time::{format_rfc3339, now_checked};
use airlock_trust::root::{KeyLabel, RootSpec};
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

/// Names and roles of key holders from `--signer-name KEY=NAME` / `--signer-role KEY=ROLE`,
/// KEY being a key id or a public key file, on top of `inherited` (a rotated root keeps the
/// labels of the keys it keeps).
fn labels(
    names: &[String],
    roles: &[String],
    inherited: BTreeMap<String, KeyLabel>,
) -> Result<BTreeMap<String, KeyLabel>> {
    let mut out = inherited;
    for (flag, list, is_name) in [
        ("--signer-name", names, true),
        ("--signer-role", roles, false),
    ] {
        for item in list {
            let (key, value) = item.split_once('=').with_context(|| {
                format!("{flag} {item:?}: expected KEY=VALUE (KEY: a key id or a public key file)")
            })?;
            let id = if Path::new(key).is_file() {
                PublicKey::load(Path::new(key))
                    .with_context(|| format!("{flag}: reading public key {key}"))?
                    .keyid()
            } else {
                anyhow::ensure!(
                    key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{flag} {item:?}: {key:?} is neither a key id (64 hex digits) nor a public key file"
                );
                key.to_ascii_lowercase()
            };
            let l = out.entry(id).or_default();
            if is_name {
                l.name = Some(value.to_string());
            } else {
                l.role = Some(value.to_string());
            }
        }
    }
    Ok(out)
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
        "names": root.meta.keys.iter().filter_map(|(id, k)| k.name.as_ref().map(|n| (id.clone(), json!({"name": n, "role": k.role})))).collect::<BTreeMap<_, _>>(),
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
        labels: labels(&a.signer_names, &a.signer_roles, BTreeMap::new())?,
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
        labels: {
            // Holders of keys the new root keeps keep their names; explicit flags win.
            let bundle_keys = load_pubs(&a.signers)?;
            let ids: std::collections::BTreeSet<String> = new_pairs
                .iter()
                .map(|k| k.public_key().keyid())
                .chain(bundle_keys.iter().map(PublicKey::keyid))
                .collect();
            let kept = ids
                .iter()
                .map(|id| (id.clone(), old.label(id)))
                .filter(|(_, l)| l.name.is_some() || l.role.is_some())
                .collect();
            labels(&a.signer_names, &a.signer_roles, kept)?
        },
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
