//! Signed apt `Release` files as untrusted input: keyring parsing, clear-signed `InRelease`
//! and detached-signature verification, and the `Release` field parser must never panic; a
//! parsed `Release` lists only 64-hex-digit SHA-256 entries.
#![no_main]
use airlock_deb::release::{verify_detached, verify_inrelease, Keyring, Release};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = Release::parse(text) {
            for e in r.sha256.values() {
                assert!(e.sha256.len() == 64 && e.sha256.bytes().all(|c| c.is_ascii_hexdigit()));
            }
            let _ = r.check(Some("bookworm"), 1_800_000_000);
        }
    }
    // The first half as a keyring, the rest as a signed file and a detached signature.
    let (a, b) = data.split_at(data.len() / 2);
    if let Ok(keys) = Keyring::parse(a) {
        let _ = verify_inrelease(b, &keys, 1_800_000_000);
        let (c, d) = b.split_at(b.len() / 2);
        let _ = verify_detached(c, d, &keys, 1_800_000_000);
    }
    let _ = Keyring::parse(data);
});
