//! rpm header blobs, apk `installed` databases and npm `package.json` files as untrusted
//! input: the parsers must never panic, and whatever they accept must carry a name and a
//! version.
#![no_main]
use airlock_sbom::{apk, npm, rpm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = rpm::parse_header(data) {
        if let Ok(p) = h.package("var/lib/rpm/rpmdb.sqlite") {
            assert!(!p.name.is_empty() && !p.version.is_empty());
        }
    }
    if let Ok(pkgs) = apk::parse(apk::INSTALLED, data) {
        for p in pkgs {
            assert!(!p.name.is_empty() && !p.version.is_empty());
        }
    }
    if let Ok(Some(p)) = npm::parse("node_modules/x/package.json", data) {
        assert!(!p.name.is_empty() && !p.version.is_empty());
    }
});
