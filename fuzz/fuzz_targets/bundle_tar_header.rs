//! The strict ustar header parser every bundle entry goes through.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 512 {
        let h: &[u8; 512] = data[..512].try_into().unwrap();
        let _ = airlock_bundle::tarfmt::parse(h);
    }
});
