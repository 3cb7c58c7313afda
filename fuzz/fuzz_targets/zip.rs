//! The zip walker (and everything it recurses into) over arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = b"PK\x03\x04".to_vec();
    d.extend_from_slice(data);
    let limits = airlock_scan::Limits {
        max_inflate: 16 << 20,
        ..Default::default()
    };
    let _ = airlock_scan::zip::central_directory(&d.as_slice(), 1000);
    let _ = airlock_scan::scan_bytes(&d, "fuzz.zip", &limits);
});
