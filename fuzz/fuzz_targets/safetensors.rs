//! The safetensors validator over arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = airlock_scan::safetensors::validate(&data, 1 << 20);
});
