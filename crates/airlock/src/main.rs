//! `airlock`: the connected-side command line. A thin layer over the library crates:
//! parse arguments ([`cli`]), run one command ([`cmd`]), map the outcome to an exit code.

mod cli;
#[macro_use]
mod cmd;
mod lading;
mod sboms;
mod scan_cache;
mod scanning;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
