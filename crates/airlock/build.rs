//! Fingerprints the code that decides what the scanner finds, for the scan-result cache
//! (`src/scan_cache.rs`): the sources of airlock-scan (format scanners and their pickle
//! allowlists), airlock-deb (which it uses for `.deb` control data), airlock-yara (how rules
//! are run; the rule texts themselves are in the rule-set digest), this crate's `scanning.rs`
//! (scan limits, what is scanned under which name) and `Cargo.lock` (the versions of the
//! parsers they link). A build whose scanner differs in any of these gets a different
//! fingerprint, so results cached by another build are not reused even when the version
//! number did not change.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let inputs = [
        here.join("../airlock-scan/src"),
        here.join("../airlock-scan/allowlists"),
        here.join("../airlock-deb/src"),
        here.join("../airlock-yara/src"),
        here.join("../airlock-yara/rules"),
        here.join("src/scanning.rs"),
        here.join("../../Cargo.lock"),
    ];
    let mut all = Vec::new();
    for p in &inputs {
        println!("cargo:rerun-if-changed={}", p.display());
        if p.is_dir() {
            files(p, &mut all);
        } else {
            all.push(p.clone());
        }
    }
    all.sort();
    // std's hasher with its fixed keys: stable for one toolchain, which is all a cache key
    // needs (a different toolchain only costs a rescan).
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in &all {
        let rel = p.strip_prefix(&here).unwrap_or(p);
        h.write(rel.to_string_lossy().as_bytes());
        h.write_u8(0);
        match std::fs::read(p) {
            Ok(b) => h.write(&b),
            Err(_) => h.write_u8(1),
        }
        h.write_u8(0);
    }
    println!("cargo:rustc-env=AIRLOCK_SCANNER_BUILD={:016x}", h.finish());
}
