//! The registry's request-head path over arbitrary bytes: `head::parse` (size and field
//! limits, smuggling checks) must never panic, must accept only heads within `MAX_HEAD`, and
//! whatever it accepts must pass `head::problem` again.
#![no_main]
use airlock_registry::head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match head::parse(data) {
        Ok(Some((req, n))) => {
            assert!(n <= head::MAX_HEAD && n <= data.len());
            assert!(head::problem(req.headers(), req.version()).is_none());
            if let Some(h) = req.headers().get("host").and_then(|v| v.to_str().ok()) {
                assert!(head::authority_ok(h));
            }
        }
        Ok(None) => assert!(data.len() < head::MAX_HEAD),
        Err(_) => {}
    }
});
