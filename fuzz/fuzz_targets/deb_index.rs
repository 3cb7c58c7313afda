//! `Packages` text as untrusted input: the deb822 splitter, the stanza checks, relationship
//! fields and a resolution over whatever was accepted must never panic, and every package
//! kept must carry a valid version, a 64-hex-digit SHA-256 and a relative filename.
#![no_main]
use airlock_deb::{relation, resolve, version, Baseline, Index, Options, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = relation::parse_groups("Depends", text);
    let _ = Baseline::parse(text);
    let mut index = Index::new("amd64");
    if index.add_packages(0, text).is_err() {
        return;
    }
    let mut requests = Vec::new();
    for (_, p) in index.iter() {
        assert!(version::is_valid(&p.version));
        assert!(p.sha256.len() == 64 && p.sha256.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(!p.filename.starts_with('/') && !p.filename.split('/').any(|c| c == ".."));
        if let Ok(r) = p.name.parse::<Request>() {
            requests.push(r);
        }
    }
    let opts = Options {
        recommends: true,
        baseline: None,
    };
    let _ = resolve(&index, &requests, &opts);
});
