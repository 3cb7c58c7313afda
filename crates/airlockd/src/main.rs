//! `airlockd`: the disconnected-side command line and daemon. It links no HTTP client and no
//! connected-side crate (a test checks `cargo tree`): it only ever reads bundles.
//!
//! A thin layer over the library crates: parse arguments ([`cli`]), run one command ([`cmd`]),
//! map the outcome to an exit code.

mod cli;
#[macro_use]
mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Directories 0750 and files 0640 whatever the caller's umask: a world-writable store
    // would let any local user swap served content or the appliance's keys.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o027));
    let cli = cli::Cli::parse();
    airlock_ui::init_logging(cli.verbose);
    match cmd::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if airlock_ui::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            airlock_ui::report_error(&e, cli.json);
            ExitCode::from(airlock_ui::exit::FAILED)
        }
    }
}
