//! What executables say about their own dependencies: Go build information
//! ([`crate::golang`]) and `cargo auditable` crate lists ([`crate::rust`]).
//!
//! Executables are large and there can be thousands of them in an image, so they are never
//! kept: [`crate::files`] reads one ELF file at a time into a buffer, [`extract`] pulls the
//! small results out of it, and the buffer is dropped. Only the ELF section table is parsed
//! (with the `object` crate); the sections read are `.go.buildinfo` and `.dep-v0`.
//!
//! A malformed executable is not an error for the whole SBOM (any file may start with the
//! ELF magic): what cannot be read becomes a warning naming the file, kept next to what
//! could be read.

use object::{Object, ObjectSection};

use crate::golang::{self, BuildInfo};
use crate::rust::{self, Crate};

/// The four bytes every ELF file starts with.
pub const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// What one executable says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinaryInfo {
    /// Go build information, for Go executables.
    pub go: Option<BuildInfo>,
    /// The `cargo auditable` crate list (empty when there is none).
    pub crates: Vec<Crate>,
    /// What could not be read, each naming the file.
    pub warnings: Vec<String>,
}

impl BinaryInfo {
    /// Nothing found and nothing to warn about: not worth keeping.
    pub fn is_empty(&self) -> bool {
        self.go.is_none() && self.crates.is_empty() && self.warnings.is_empty()
    }
}

/// The build information in the ELF file `data`, found at `path` (used in warnings).
pub fn extract(path: &str, data: &[u8]) -> BinaryInfo {
    let mut info = BinaryInfo::default();
    if !data.starts_with(ELF_MAGIC) {
        return info;
    }
    let file = match object::File::parse(data) {
        Ok(f) => f,
        Err(e) => {
            // Core dumps, truncated files and objects of other machines are common; only
            // a file that does carry one of the sections is worth a word, and without a
            // section table there is no telling.
            tracing::debug!("{path}: not a readable ELF file: {e}");
            return info;
        }
    };
    if let Some(s) = file.section_by_name(".go.buildinfo") {
        match s.data() {
            Ok(d) => match golang::parse_section(d) {
                Ok(go) => info.go = go,
                Err(e) => info.warnings.push(format!("{path}: {e}")),
            },
            Err(e) => info
                .warnings
                .push(format!("{path}: .go.buildinfo: unreadable section: {e}")),
        }
    }
    if let Some(s) = file.section_by_name(rust::SECTION) {
        match s.data() {
            Ok(d) => match rust::parse_section(d) {
                Ok(c) => info.crates = c,
                Err(e) => info.warnings.push(format!("{path}: {e}")),
            },
            Err(e) => info.warnings.push(format!(
                "{path}: {}: unreadable section: {e}",
                rust::SECTION
            )),
        }
    }
    for w in &info.warnings {
        tracing::warn!("{w}");
    }
    info
}

/// A minimal little-endian ELF64 file with the given sections, for tests.
#[doc(hidden)]
pub fn test_elf(sections: &[(&str, &[u8])]) -> Vec<u8> {
    let mut shstrtab = vec![0u8];
    let mut names = Vec::new();
    for (n, _) in sections {
        names.push(shstrtab.len() as u32);
        shstrtab.extend_from_slice(n.as_bytes());
        shstrtab.push(0);
    }
    let shstr_name = shstrtab.len() as u32;
    shstrtab.extend_from_slice(b".shstrtab\0");
    let mut out = vec![0u8; 64];
    let mut placed = Vec::new();
    for (_, d) in sections {
        placed.push((out.len() as u64, d.len() as u64));
        out.extend_from_slice(d);
    }
    let shstr_off = out.len() as u64;
    out.extend_from_slice(&shstrtab);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let shoff = out.len() as u64;
    let shnum = sections.len() as u16 + 2;
    // Header.
    out[..4].copy_from_slice(ELF_MAGIC);
    out[4] = 2; // 64-bit
    out[5] = 1; // little-endian
    out[6] = 1; // version
    out[16..18].copy_from_slice(&2u16.to_le_bytes()); // executable
    out[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[40..48].copy_from_slice(&shoff.to_le_bytes());
    out[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
    out[58..60].copy_from_slice(&64u16.to_le_bytes()); // shentsize
    out[60..62].copy_from_slice(&shnum.to_le_bytes());
    out[62..64].copy_from_slice(&(shnum - 1).to_le_bytes()); // shstrndx
    let section = |name: u32, kind: u32, off: u64, size: u64| {
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(&name.to_le_bytes());
        h[4..8].copy_from_slice(&kind.to_le_bytes());
        h[24..32].copy_from_slice(&off.to_le_bytes());
        h[32..40].copy_from_slice(&size.to_le_bytes());
        h[48..56].copy_from_slice(&1u64.to_le_bytes());
        h
    };
    out.extend_from_slice(&[0u8; 64]);
    for (i, (off, size)) in placed.iter().enumerate() {
        out.extend_from_slice(&section(names[i], 1, *off, *size));
    }
    out.extend_from_slice(&section(shstr_name, 3, shstr_off, shstrtab.len() as u64));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_of_a_hand_made_elf_are_found() {
        let elf = test_elf(&[(".text", b"\x90\x90"), (rust::SECTION, b"not zlib")]);
        let info = extract("usr/bin/x", &elf);
        assert!(info.go.is_none() && info.crates.is_empty());
        assert_eq!(info.warnings.len(), 1);
        assert!(
            info.warnings[0].starts_with("usr/bin/x: .dep-v0: not zlib"),
            "{:?}",
            info.warnings
        );
    }

    #[test]
    fn truncated_go_buildinfo_is_a_warning_naming_the_file() {
        let mut blob = golang::MAGIC.to_vec();
        blob.extend_from_slice(&[8, 2, 0, 0]);
        let info = extract("app/server", &test_elf(&[(".go.buildinfo", &blob)]));
        assert!(info.go.is_none());
        assert!(
            info.warnings[0].starts_with("app/server: Go build info: truncated"),
            "{:?}",
            info.warnings
        );
    }

    #[test]
    fn every_kind_of_bad_section_is_a_warning_naming_the_file() {
        use std::io::Write;
        let zlib = |data: &[u8]| {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let mut go_huge = golang::MAGIC.to_vec();
        go_huge.extend_from_slice(&[8, 2]);
        go_huge.resize(32, 0);
        go_huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut go_old = go_huge.clone();
        go_old[15] = 0;
        let bomb = zlib(&vec![b' '; (rust::MAX_JSON + 1) as usize]);
        let bad_index = zlib(br#"{"packages":[{"name":"a","version":"1","dependencies":[3]}]}"#);
        let cases: [(&str, &[u8], &str); 6] = [
            (
                ".go.buildinfo",
                &go_huge[..20],
                "Go build info: truncated header",
            ),
            (".go.buildinfo", &go_huge, "more than"),
            (".go.buildinfo", &go_old, "not supported"),
            (rust::SECTION, b"\x00\x01\x02", "not zlib"),
            (rust::SECTION, &bomb, "decompresses to more than"),
            (rust::SECTION, &bad_index, "dependency index 3"),
        ];
        for (section, data, want) in cases {
            let info = extract("usr/bin/x", &test_elf(&[(section, data)]));
            assert!(info.go.is_none() && info.crates.is_empty());
            assert_eq!(info.warnings.len(), 1, "{want}");
            let w = &info.warnings[0];
            assert!(
                w.starts_with("usr/bin/x: ") && w.contains(want),
                "{want}: {w}"
            );
        }
    }

    #[test]
    fn not_elf_or_broken_elf_gives_nothing() {
        assert!(extract("a", b"#!/bin/sh\n").is_empty());
        assert!(extract("a", b"\x7fELF\x02\x01\x01").is_empty());
        let mut elf = test_elf(&[(".go.buildinfo", b"x")]);
        elf.truncate(elf.len() - 10);
        assert!(extract("a", &elf).is_empty());
    }
}
