//! A whole volume: open (bounded metadata read, frame index), the unverified statement, and
//! every entry checked against it. The volume lives in a file, as the reader expects.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("airlock-fuzz-volume-{}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    if let Ok(v) = airlock_bundle::reader::Volume::open(&path) {
        if let Ok((st, _)) = v.statement_unverified() {
            let _ = v.read_blobs(&st.predicate, &airlock_bundle::reader::VerifyOnly, &airlock_bundle::NoProgress);
        }
    }
});
