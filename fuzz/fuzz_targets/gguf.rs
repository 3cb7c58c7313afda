//! The GGUF validator over arbitrary bytes (seeded with the corpus's GGUF files).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = airlock_scan::Limits {
        max_gguf_items: 4096,
        max_gguf_string: 1 << 20,
        max_gguf_array: 1 << 16,
        ..Default::default()
    };
    let _ = airlock_scan::gguf::validate(&data, &limits);
});
