//! The whole scanner (sniffing, every format, nesting) over arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = airlock_scan::Limits {
        max_inflate: 16 << 20,
        max_pickle_ops: 1_000_000,
        ..Default::default()
    };
    let _ = airlock_scan::scan_bytes(data, "fuzz.bin", &limits);
});
