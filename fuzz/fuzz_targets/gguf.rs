//! The GGUF validator over arbitrary bytes (with the magic prepended so inputs get past it).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = b"GGUF".to_vec();
    d.extend_from_slice(data);
    let limits = airlock_scan::Limits {
        max_gguf_items: 4096,
        max_gguf_string: 1 << 20,
        max_gguf_array: 1 << 16,
        ..Default::default()
    };
    let _ = airlock_scan::gguf::validate(&d.as_slice(), &limits);
});
