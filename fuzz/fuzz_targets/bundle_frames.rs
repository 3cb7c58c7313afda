//! The bundle frame index (read from the end of an untrusted volume) and its tiling checks.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(ix)) = airlock_bundle::frames::FrameIndex::parse(data) {
        if ix.check(16 << 20).is_ok() {
            let _ = ix.entries();
        }
    }
});
