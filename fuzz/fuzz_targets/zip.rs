//! The zip walker (and everything it recurses into) over arbitrary bytes. Seed it with real
//! archives (`fuzz/seeds.sh` copies the scanner corpus's zips).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = airlock_scan::Limits {
        max_inflate: 16 << 20,
        ..Default::default()
    };
    let _ = airlock_scan::zip::central_directory(&data, 1000);
    let _ = airlock_scan::scan_bytes(data, "fuzz.zip", &limits);
});
