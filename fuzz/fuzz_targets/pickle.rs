//! The pickle machine over arbitrary bytes: must not panic, and must stay bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = airlock_scan::Limits {
        max_pickle_ops: 1_000_000,
        ..Default::default()
    };
    let _ = airlock_scan::pickle::analyse(&data, &limits);
});
