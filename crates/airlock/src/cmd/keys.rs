//! `airlock keys generate`: a key pair in files, or inside a PKCS#11 token (`--pkcs11`).

use std::fs;
use std::io::Write;
use std::path::Path;

use airlock_pkcs11::Pkcs11Uri;
use airlock_trust::{KeyPair, PublicKey, Signer};
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::Cli;

fn check_name(name: &str) -> Result<()> {
    anyhow::ensure!(
        !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
            && !name.starts_with('.'),
        "key name {name:?} must be [A-Za-z0-9._-] and not start with '.'"
    );
    Ok(())
}

pub fn generate(cli: &Cli, name: &str, out: &Path) -> Result<u8> {
    check_name(name)?;
    let k = KeyPair::generate();
    let (key, public) = k.write_files(out, name).context("writing key files")?;
    let keyid = k.public_key().keyid();
    if cli.json {
        super::print_json(&json!({"private": key, "public": public, "keyid": keyid}))?;
    } else {
        say!("private key: {} (keep it secret)", key.display());
        say!("public key:  {}", public.display());
        say!("key id:      {keyid}");
    }
    Ok(airlock_ui::exit::OK)
}

/// Creates the key pair inside the token `uri` names and writes `OUT/NAME.pub`. The key is
/// labelled with the URI's `object=`, else NAME; the URI printed names it (without a PIN).
pub fn generate_pkcs11(cli: &Cli, name: &str, uri: &str, out: &Path) -> Result<u8> {
    check_name(name)?;
    let mut uri = Pkcs11Uri::parse_token(uri)?;
    let pub_path = out.join(format!("{name}.pub"));
    anyhow::ensure!(
        !pub_path.exists(),
        "{} exists; keys are never overwritten",
        pub_path.display()
    );
    let label = uri.object.clone().unwrap_or_else(|| name.to_string());
    let public = airlock_pkcs11::generate(&uri, &label)?;
    write_public(&pub_path, &public)?;
    uri.object = Some(label);
    uri.id = None;
    let keyid = public.keyid();
    if cli.json {
        super::print_json(&json!({"uri": uri.key_name(), "public": pub_path, "keyid": keyid}))?;
    } else {
        say!("private key: {} (inside the token)", uri.key_name());
        say!("public key:  {}", pub_path.display());
        say!("key id:      {keyid}");
    }
    Ok(airlock_ui::exit::OK)
}

/// Writes an SPKI PEM public key file, never overwriting one.
fn write_public(path: &Path, public: &PublicKey) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(public.to_pem().as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
