//! `airlockd fsck [--repair]`: re-hash every blob, check every catalog reference and the data
//! directory's file modes; with `--repair`, set damaged blobs aside first (writer lock).

use airlock_ui::exit;
use anyhow::Result;
use serde_json::json;

use super::{esc, open_reader, open_writer, print_json};
use crate::cli::Cli;

pub fn run(cli: &Cli, repair: bool) -> Result<u8> {
    let mut a = if repair {
        open_writer(cli, "fsck --repair")?
    } else {
        open_reader(cli)?
    };
    let repaired = if repair { a.repair()? } else { Vec::new() };
    let problems = a.fsck()?;
    if cli.json {
        print_json(
            &json!({"ok": problems.is_empty(), "problems": problems, "repaired": repaired}),
        )?;
    } else {
        for r in &repaired {
            say!("repaired: {}", esc(r));
        }
        if problems.is_empty() {
            say!("fsck: clean ({} blobs re-hashed)", a.store.list()?.len());
        }
        for p in &problems {
            say!("problem: {}", esc(p));
        }
    }
    Ok(if problems.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}
