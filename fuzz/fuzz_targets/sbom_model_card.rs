//! Model cards and configs as untrusted input: the README.md front matter (YAML) and
//! `config.json` readers behind the ML-BOM must never panic, and the document rendered from
//! any card and config must stay JSON.
#![no_main]
use airlock_sbom::cyclonedx::Tool;
use airlock_sbom::mlbom::{self, Model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mlbom::parse_card(data);
    let _ = mlbom::parse_config(data);
    // The same bytes as the card and, split at the first NUL, the config of one model.
    let (card, config) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let m = Model {
        name: "fuzz/model".into(),
        card: Some(Ok(card.to_vec())),
        config: Some(Ok(config.to_vec())),
        ..Model::default()
    };
    let tool = Tool {
        name: "airlock".into(),
        version: "0".into(),
    };
    let doc = mlbom::render(&m, &tool, None);
    let v: serde_json::Value = serde_json::from_slice(&doc).expect("the ML-BOM is JSON");
    assert_eq!(v["bomFormat"], "CycloneDX");
});
