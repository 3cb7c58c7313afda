//! Command implementations. Each returns the exit code; errors bubble up to `main`.

/// `println!` that returns an error instead of panicking when stdout is closed
/// (`airlock inspect VOL | head -1`); `main` treats a broken pipe as success.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)?;
    }};
}

mod debs;
mod inspect;
mod keys;
mod pack;
mod report;
mod sbom;
mod scan;
mod sync;
mod trust;
mod unpack;
mod verify;
mod vulndb;
mod vulndb_sync;

use std::path::Path;

use airlock_trust::{Signer, TrustRoot};
use anyhow::{Context, Result};

use crate::cli::{Cli, Command, DebsCmd, KeysCmd, TrustCmd};

pub fn run(cli: &Cli) -> Result<u8> {
    match &cli.command {
        Command::Keys(KeysCmd::Generate { name, out, pkcs11 }) => match pkcs11 {
            Some(uri) => keys::generate_pkcs11(cli, name, uri, out),
            None => keys::generate(cli, name, out),
        },
        Command::Trust(TrustCmd::Init(a)) => trust::init(cli, a),
        Command::Trust(TrustCmd::Rotate(a)) => trust::rotate(cli, a),
        Command::Sync(a) => sync::run(cli, a),
        Command::Pack(a) => pack::run(cli, a),
        Command::Verify(a) => verify::run(cli, a),
        Command::Inspect(a) => inspect::run(cli, a),
        Command::Unpack(a) => unpack::run(cli, a),
        Command::Report(a) => report::run(cli, a),
        Command::Scan(a) => scan::run(cli, a),
        Command::Sbom(a) => sbom::run(cli, a),
        Command::Vulndb(c) => vulndb::run(cli, c),
        Command::Debs(DebsCmd::Resolve(a)) => debs::resolve(cli, a),
    }
}

/// Reads a file of at most `max` bytes.
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    airlock_core::bounded::read_file_at_most(path, max).with_context(|| what.to_string())
}

/// Loads a trust root the operator handed us (trusted on first use: self-signed, unexpired).
pub fn load_root(path: &Path) -> Result<TrustRoot> {
    let bytes = read_bounded(
        path,
        airlock_trust::root::MAX_ROOT_BYTES as u64,
        "trust root",
    )?;
    TrustRoot::load_initial(&bytes, airlock_core::time::now_checked()?)
        .with_context(|| format!("trust root {}", path.display()))
}

/// Loads the signing keys named on the command line: PKCS#8 files or `pkcs11:` URIs.
/// Errors name the file or token and key, never a PIN.
pub fn load_signers(specs: &[std::path::PathBuf]) -> Result<Vec<Box<dyn Signer>>> {
    Ok(specs
        .iter()
        .map(|s| airlock_pkcs11::load_signer(s))
        .collect::<Result<_, _>>()?)
}

/// Borrows boxed signers as the `&dyn Signer`s that signing functions take.
pub fn signer_refs(signers: &[Box<dyn Signer>]) -> Vec<&dyn Signer> {
    signers.iter().map(|s| s.as_ref()).collect()
}

pub fn print_json(v: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}
