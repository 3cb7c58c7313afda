//! `airlockd init`: create the data directory, pin a trust root, generate the appliance key and
//! its TLS certificate.

use std::path::Path;

use airlock_appliance::Appliance;
use airlock_ui::exit;
use anyhow::{Context, Result};
use serde_json::json;

use super::{data, print_json};
use crate::cli::{Cli, InitArgs};

/// A trust root is a few KiB; `init` refuses to read more than the trust crate accepts.
const MAX_ROOT_BYTES: u64 = 1 << 20;

pub fn run(cli: &Cli, args: &InitArgs) -> Result<u8> {
    let bytes = read_bounded(&args.trust, MAX_ROOT_BYTES)?;
    let names = if args.tls_names.is_empty() {
        airlock_appliance::tls::default_names()
    } else {
        args.tls_names.clone()
    };
    let store = args
        .store
        .as_ref()
        .map(|url| airlock_appliance::remote::StoreConfig {
            url: url.clone(),
            endpoint: args.s3.s3_endpoint.clone().unwrap_or_default(),
            region: args.s3.s3_region.clone(),
        });
    let a = Appliance::init_with(data(cli)?, &bytes, &names, store)?;
    if cli.json {
        print_json(&json!({
            "data": a.root,
            "trustRootVersion": a.trust.meta.version,
            "applianceKey": a.public_key().keyid(),
            "applianceKeyFile": a.root.join("keys/appliance.pub"),
            "tlsCa": a.root.join("tls/ca.pem"),
            "tlsNames": names,
        }))?;
    } else {
        say!(
            "initialized {} (trust root version {}, appliance key {})",
            a.root.display(),
            a.trust.meta.version,
            a.public_key().keyid()
        );
        say!(
            "appliance public key: {}",
            a.root.join("keys/appliance.pub").display()
        );
    }
    Ok(exit::OK)
}

/// Reads a file of at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    airlock_core::bounded::read_file_at_most(path, max).context("reading the trust root")
}
