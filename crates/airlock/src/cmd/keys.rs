//! `airlock keys generate`.

use std::path::Path;

use airlock_trust::{KeyPair, Signer};
use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::Cli;

pub fn generate(cli: &Cli, name: &str, out: &Path) -> Result<u8> {
    anyhow::ensure!(
        !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
            && !name.starts_with('.'),
        "key name {name:?} must be [A-Za-z0-9._-] and not start with '.'"
    );
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
