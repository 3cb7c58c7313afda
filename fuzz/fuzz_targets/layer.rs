//! Image layers: the streaming tar walker (tar crate + PadTail) over arbitrary bytes, plain
//! and gzip-framed (the first byte picks), with every member handed to the whole scanner.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = airlock_scan::Limits {
        max_inflate: 16 << 20,
        max_pickle_ops: 1_000_000,
        max_layer_unpacked: 64 << 20,
        max_member_in_memory: 1 << 20,
        ..Default::default()
    };
    let (c, rest) = match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => (airlock_scan::Compression::Gzip, rest),
        Some((_, rest)) => (airlock_scan::Compression::None, rest),
        None => (airlock_scan::Compression::None, data),
    };
    let _ = airlock_scan::scan_layer(rest, c, "layer", &limits, &airlock_scan::NoRules);
});
