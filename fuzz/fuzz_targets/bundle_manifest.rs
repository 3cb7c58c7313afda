//! Everything a volume's first entry and the trust root are parsed with: the DSSE envelope, the
//! in-toto statement with the bundle manifest, the trust root, and the operator's input manifest.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = airlock_trust::Envelope::parse(data);
    let _ = airlock_core::bundle::Statement::parse(data);
    let _ = airlock_trust::TrustRoot::load_initial(data, 0);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = airlock_core::manifest::InputManifest::parse(text, "fuzz.yaml");
    }
});
