//! Executables as untrusted input: the ELF section lookup, the Go build information reader
//! and the `cargo auditable` list reader must never panic, whatever the bytes. The readers
//! are also fed the bytes directly, as a section's contents, so that the fuzzer need not
//! build a valid ELF file to reach them.
#![no_main]
use airlock_sbom::{binary, golang, rust};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let info = binary::extract("fuzz", data);
    for w in &info.warnings {
        assert!(w.starts_with("fuzz: "));
    }
    if let Ok(Some(go)) = golang::parse_section(data) {
        assert!(!go.go_version.is_empty());
    }
    let _ = golang::parse_blob(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = golang::parse_modinfo(text);
    }
    if let Ok(crates) = rust::parse_section(data) {
        assert!(crates.len() <= rust::MAX_PACKAGES);
    }
    let _ = rust::parse_json(data);
    // The same bytes as the contents of each section of a well-formed ELF file.
    let elf = binary::test_elf(&[(".go.buildinfo", data), (rust::SECTION, data)]);
    let _ = binary::extract("fuzz", &elf);
});
