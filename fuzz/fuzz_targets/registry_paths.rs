//! The registry's Hugging Face and apt request paths over arbitrary text: percent-decoding,
//! revision checks, the header-safe error text, `Range`/`If-Range` parsing and apt control
//! checks must never panic, and what they accept must be safe to use (no control characters
//! or `..` in an accepted revision, every header text a valid header value, ranges inside the
//! file).
#![no_main]
use airlock_registry::{apt, body, hf, percent_decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        let _ = apt::check_control(data);
        return;
    };
    let _ = apt::check_control(data);
    // Split the input into a path, a range and an If-Range value.
    let mut parts = text.splitn(3, '\n');
    let path = parts.next().unwrap_or("");
    let range = parts.next();
    let if_range = parts.next();
    for seg in path.split('/') {
        if let Some(rev) = percent_decode(seg) {
            if hf::rev_ok(&rev) {
                assert!(!rev.chars().any(|c| c.is_control()));
                assert!(rev
                    .split('/')
                    .all(|s| s != ".." && s != "." && !s.is_empty()));
            }
            assert!(http::HeaderValue::from_str(&hf::header_text(&rev)).is_ok());
        }
    }
    if let Some(rev) = percent_decode(path) {
        let _ = hf::rev_ok(&rev);
    }
    let len = data.len() as u64;
    let _ = body::if_range_matches(if_range, Some("\"x\""));
    match body::parse_range(range, len) {
        body::Range::Part { start, end } => assert!(start <= end && end < len),
        body::Range::Full | body::Range::Unsatisfiable => {}
    }
});
