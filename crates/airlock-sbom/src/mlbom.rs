//! A CycloneDX 1.6 ML-BOM of a model: what the model is, where it came from and which files
//! make it up, in the form CycloneDX gives machine-learning models.
//!
//! The subject (`metadata.component`) is a `machine-learning-model` named by the model's
//! repository id, versioned by its ModelPack manifest digest, with:
//! - `modelCard.modelParameters`: `task` from the card's `pipeline_tag`, `modelArchitecture`
//!   from `config.json`'s `architectures`, `architectureFamily` from its `model_type`, and
//!   `datasets` referring to the dataset components;
//! - `licenses`: what the artifact declares (the manifest's `license`, else the card's), as
//!   licence names;
//! - `pedigree.ancestors`: the parent model (lineage `parent`, card `base_model`);
//! - `purl` `pkg:huggingface/ORG/NAME@COMMIT` when the model was mirrored from a Hub;
//! - properties for the rest of the lineage (training code, hyperparameters) and for what
//!   could not be read (`airlock:warning`).
//!
//! `components` holds one `file` per model file (path, SHA-256, size) and one `data`
//! component per dataset (lineage `datasets` with their version and digest, card `datasets`).
//!
//! The card (README.md front matter, YAML) and `config.json` are untrusted: each is read only
//! up to a size bound, values are kept only when they are short strings, lists are cut at a
//! bound, and anything malformed becomes a warning in the document, never an error: an odd
//! card still leaves the files and the lineage worth recording. The document is deterministic
//! as [`crate::cyclonedx`]'s is: no timestamp unless the caller passes one, components sorted,
//! the serial number derived from the content.

use std::collections::BTreeMap;

use airlock_core::manifest::Lineage;
use serde_json::{json, Map, Value};

use crate::cyclonedx::{purl_with, Tool};

/// Largest model card (README.md) read; a larger one is not read (a warning says so).
pub const MAX_CARD: u64 = 1 << 20;
/// Largest YAML front matter parsed.
pub const MAX_FRONT_MATTER: usize = 64 << 10;
/// Largest `config.json` read.
pub const MAX_CONFIG: u64 = 4 << 20;
/// Longest string value kept from a card or config; longer ones are left out with a warning.
pub const MAX_VALUE: usize = 512;
/// Most entries kept from one list (datasets, base models, architectures).
pub const MAX_LIST: usize = 64;

/// One file of the model.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModelFile {
    /// Path inside the model (`/`-separated).
    pub path: String,
    /// SHA-256, lower-case hex.
    pub sha256: String,
    pub size: u64,
}

/// Everything the ML-BOM is made from.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Repository id (`acme/tiny-model`).
    pub name: String,
    /// The ModelPack manifest digest (`sha256:…`).
    pub manifest: Option<String>,
    pub files: Vec<ModelFile>,
    /// The bytes of `README.md` (the model card), when the model has one; `Err` holds why it
    /// could not be read (too large).
    pub card: Option<Result<Vec<u8>, String>>,
    /// The bytes of `config.json`, when the model has one; `Err` as for `card`.
    pub config: Option<Result<Vec<u8>, String>>,
    /// The licence the artifact declares (the manifest's `license`, else the card's).
    pub license: Option<String>,
    pub lineage: Option<Lineage>,
    /// The Hugging Face repository and commit it was mirrored from.
    pub upstream: Option<(String, String)>,
}

/// What a model card's front matter says, as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Card {
    pub licenses: Vec<String>,
    pub pipeline_tag: Option<String>,
    pub datasets: Vec<String>,
    pub base_models: Vec<String>,
    pub library_name: Option<String>,
    /// What was malformed or left out.
    pub warnings: Vec<String>,
}

/// What `config.json` says about the architecture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub architectures: Vec<String>,
    pub model_type: Option<String>,
    pub warnings: Vec<String>,
}

/// Strings of a field that is a string or a list of strings; other shapes and over-long
/// values become warnings.
fn strings(
    field: &str,
    v: Option<&serde_norway::Value>,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    use serde_norway::Value as Y;
    let items: Vec<&Y> = match v {
        None | Some(Y::Null) => return vec![],
        Some(Y::Sequence(s)) => s.iter().collect(),
        Some(one) => vec![one],
    };
    if items.len() > MAX_LIST {
        warnings.push(format!(
            "card {field}: {} entries, only the first {MAX_LIST} kept",
            items.len()
        ));
    }
    let mut out = Vec::new();
    for item in items.into_iter().take(MAX_LIST) {
        match item {
            Y::String(s) if s.trim().is_empty() => {}
            Y::String(s) if s.len() > MAX_VALUE || s.chars().any(char::is_control) => {
                warnings.push(format!(
                    "card {field}: a value over {MAX_VALUE} bytes or with control characters left out"
                ));
            }
            Y::String(s) => out.push(s.trim().to_string()),
            _ => warnings.push(format!(
                "card {field}: a value that is not a string left out"
            )),
        }
    }
    out
}

/// Reads the YAML front matter of a model card (`---` … `---` at its start). A card without
/// front matter says nothing; malformed front matter gives only warnings.
pub fn parse_card(readme: &[u8]) -> Card {
    let mut card = Card::default();
    let Ok(text) = std::str::from_utf8(readme) else {
        card.warnings.push("card is not UTF-8".into());
        return card;
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return card;
    };
    // The front matter ends at the first line that is `---` (or YAML's `...`).
    let mut end = None;
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        if matches!(line.trim_end(), "---" | "...") {
            end = Some(at);
            break;
        }
        at += line.len();
        if at > MAX_FRONT_MATTER {
            break;
        }
    }
    let Some(end) = end else {
        card.warnings.push(format!(
            "card front matter is not closed by a `---` line within {MAX_FRONT_MATTER} bytes"
        ));
        return card;
    };
    let yaml: serde_norway::Value = match serde_norway::from_str(&rest[..end]) {
        Ok(v) => v,
        Err(e) => {
            card.warnings.push(format!(
                "card front matter is not YAML: {}",
                airlock_core::text::bound_to(&e.to_string(), MAX_VALUE)
            ));
            return card;
        }
    };
    if !yaml.is_mapping() {
        if !yaml.is_null() {
            card.warnings
                .push("card front matter is not a mapping".into());
        }
        return card;
    }
    let w = &mut card.warnings;
    card.licenses = strings("license", yaml.get("license"), w);
    card.pipeline_tag = strings("pipeline_tag", yaml.get("pipeline_tag"), w)
        .into_iter()
        .next();
    card.datasets = strings("datasets", yaml.get("datasets"), w);
    card.base_models = strings("base_model", yaml.get("base_model"), w);
    card.library_name = strings("library_name", yaml.get("library_name"), w)
        .into_iter()
        .next();
    card
}

/// Reads `architectures` and `model_type` from a `config.json`; anything malformed gives only
/// warnings.
pub fn parse_config(bytes: &[u8]) -> Config {
    let mut c = Config::default();
    let v: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            c.warnings.push(format!("config.json is not JSON: {e}"));
            return c;
        }
    };
    let ok =
        |s: &str| !s.trim().is_empty() && s.len() <= MAX_VALUE && !s.chars().any(char::is_control);
    match &v["architectures"] {
        Value::Null => {}
        Value::Array(a) => {
            for x in a.iter().take(MAX_LIST) {
                match x.as_str() {
                    Some(s) if ok(s) => c.architectures.push(s.to_string()),
                    _ => c
                        .warnings
                        .push("config.json architectures: an entry left out".into()),
                }
            }
        }
        _ => c
            .warnings
            .push("config.json architectures is not a list".into()),
    }
    match &v["model_type"] {
        Value::Null => {}
        Value::String(s) if ok(s) => c.model_type = Some(s.clone()),
        _ => c.warnings.push("config.json model_type left out".into()),
    }
    c
}

/// One dataset: its name, version and digest as far as known, and where it was named.
#[derive(Default)]
struct Dataset {
    version: Option<String>,
    digest: Option<String>,
    sources: Vec<&'static str>,
}

/// A name kept as a `bom-ref` part: control characters cannot occur (checked above), and the
/// prefix keeps the kinds apart.
fn bom_ref(kind: &str, name: &str) -> String {
    format!("{kind}:{name}")
}

/// The CycloneDX ML-BOM of `m`, pretty-printed with a final newline.
pub fn render(m: &Model, tool: &Tool, timestamp: Option<&str>) -> Vec<u8> {
    let mut warnings = Vec::new();
    let card = match &m.card {
        Some(Ok(b)) => parse_card(b),
        Some(Err(why)) => {
            warnings.push(format!("README.md not read: {why}"));
            Card::default()
        }
        None => Card::default(),
    };
    let config = match &m.config {
        Some(Ok(b)) => parse_config(b),
        Some(Err(why)) => {
            warnings.push(format!("config.json not read: {why}"));
            Config::default()
        }
        None => Config::default(),
    };
    warnings.extend(card.warnings.iter().cloned());
    warnings.extend(config.warnings.iter().cloned());

    // Datasets: the lineage's (with version and digest), then the card's.
    let mut datasets: BTreeMap<String, Dataset> = BTreeMap::new();
    if let Some(l) = &m.lineage {
        for d in l.datasets.iter().take(MAX_LIST) {
            let e = datasets.entry(d.name.clone()).or_default();
            e.version = d.version.clone();
            e.digest = d.digest.clone();
            e.sources.push("lineage");
        }
    }
    for d in &card.datasets {
        datasets.entry(d.clone()).or_default().sources.push("card");
    }
    // Parent models: the lineage's, then the card's base models.
    let mut parents: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    if let Some(p) = m.lineage.as_ref().and_then(|l| l.parent.as_ref()) {
        parents.entry(p.clone()).or_default().push("lineage");
    }
    for p in &card.base_models {
        parents.entry(p.clone()).or_default().push("card");
    }

    let mut components = Vec::new();
    let mut files = m.files.clone();
    files.sort();
    files.dedup_by(|a, b| a.path == b.path);
    for f in &files {
        components.push(json!({
            "type": "file",
            "bom-ref": bom_ref("file", &f.path),
            "name": f.path,
            "hashes": [{"alg": "SHA-256", "content": f.sha256}],
            "properties": [{"name": "airlock:size", "value": f.size.to_string()}],
        }));
    }
    for (name, d) in &datasets {
        let mut c = Map::new();
        c.insert("type".into(), json!("data"));
        c.insert("bom-ref".into(), json!(bom_ref("dataset", name)));
        c.insert("name".into(), json!(name));
        if let Some(v) = &d.version {
            c.insert("version".into(), json!(v));
        }
        if let Some(hex) = d
            .digest
            .as_deref()
            .and_then(|x| x.strip_prefix("sha256:"))
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            c.insert(
                "hashes".into(),
                json!([{"alg": "SHA-256", "content": hex.to_ascii_lowercase()}]),
            );
        }
        let mut props = vec![json!({"name": "airlock:named-by", "value": d.sources.join(",")})];
        if let Some(x) = d.digest.as_deref().filter(|x| !x.starts_with("sha256:")) {
            props.push(json!({"name": "airlock:digest", "value": x}));
        }
        c.insert("properties".into(), Value::Array(props));
        components.push(Value::Object(c));
    }

    let mut params = Map::new();
    if let Some(t) = &card.pipeline_tag {
        params.insert("task".into(), json!(t));
    }
    if let Some(t) = &config.model_type {
        params.insert("architectureFamily".into(), json!(t));
    }
    if !config.architectures.is_empty() {
        params.insert(
            "modelArchitecture".into(),
            json!(config.architectures.join(", ")),
        );
    }
    if !datasets.is_empty() {
        params.insert(
            "datasets".into(),
            Value::Array(
                datasets
                    .keys()
                    .map(|n| json!({"ref": bom_ref("dataset", n)}))
                    .collect(),
            ),
        );
    }

    let mut subject = Map::new();
    subject.insert("type".into(), json!("machine-learning-model"));
    subject.insert("bom-ref".into(), json!("airlock:subject"));
    subject.insert("name".into(), json!(m.name));
    if let Some(v) = &m.manifest {
        subject.insert("version".into(), json!(v));
    }
    let licenses: Vec<String> = match &m.license {
        Some(l) => vec![l.clone()],
        None => card.licenses.clone(),
    };
    if !licenses.is_empty() {
        subject.insert(
            "licenses".into(),
            Value::Array(
                licenses
                    .iter()
                    .map(|n| json!({"license": {"name": n}}))
                    .collect(),
            ),
        );
    }
    if let Some((repo, commit)) = &m.upstream {
        let (ns, name) = match repo.split_once('/') {
            Some((ns, name)) => (Some(ns), name),
            None => (None, repo.as_str()),
        };
        subject.insert(
            "purl".into(),
            json!(purl_with("huggingface", ns, name, commit, &[])),
        );
    }
    if !parents.is_empty() {
        let ancestors: Vec<Value> = parents
            .iter()
            .map(|(p, sources)| {
                json!({
                    "type": "machine-learning-model",
                    "bom-ref": bom_ref("model", p),
                    "name": p,
                    "properties": [{"name": "airlock:named-by", "value": sources.join(",")}],
                })
            })
            .collect();
        subject.insert("pedigree".into(), json!({ "ancestors": ancestors }));
    }
    subject.insert(
        "modelCard".into(),
        json!({ "modelParameters": Value::Object(params) }),
    );
    let mut props = Vec::new();
    if let Some((repo, commit)) = &m.upstream {
        props.push(json!({"name": "airlock:hf-repo", "value": repo}));
        props.push(json!({"name": "airlock:hf-commit", "value": commit}));
    }
    if let Some(l) = &card.library_name {
        props.push(json!({"name": "airlock:library-name", "value": l}));
    }
    if let Some(l) = &m.lineage {
        if let Some(c) = &l.code {
            props.push(json!({"name": "airlock:lineage-code-repository", "value": c.repository}));
            props.push(json!({"name": "airlock:lineage-code-commit", "value": c.commit}));
        }
        for (k, v) in &l.hyperparameters {
            let v = serde_json::to_string(v).expect("JSON values serialise");
            props.push(json!({"name": format!("airlock:hyperparameter:{k}"), "value": v}));
        }
    }
    for w in &warnings {
        props.push(json!({"name": "airlock:warning", "value": w}));
    }
    if !props.is_empty() {
        subject.insert("properties".into(), Value::Array(props));
    }

    let mut metadata = Map::new();
    if let Some(t) = timestamp {
        metadata.insert("timestamp".into(), json!(t));
    }
    metadata.insert("tools".into(), crate::cyclonedx::tools(tool));
    metadata.insert("component".into(), Value::Object(subject));
    crate::cyclonedx::document(metadata, components)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::manifest::{CodeRef, DatasetRef};

    fn tool() -> Tool {
        Tool {
            name: "airlock".into(),
            version: "0.1.0".into(),
        }
    }

    fn doc(m: &Model) -> Value {
        serde_json::from_slice(&render(m, &tool(), None)).unwrap()
    }

    fn props(c: &Value) -> Vec<(String, String)> {
        c["properties"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["value"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn card_front_matter_fields_are_read_as_strings_or_lists() {
        let c = parse_card(
            b"---\nlicense: apache-2.0\npipeline_tag: feature-extraction\ndatasets:\n  - wiki\n  - books\nbase_model: org/base\nlibrary_name: transformers\ntags: [a, b]\n---\n# Model\n",
        );
        assert_eq!(c.licenses, ["apache-2.0"]);
        assert_eq!(c.pipeline_tag.as_deref(), Some("feature-extraction"));
        assert_eq!(c.datasets, ["wiki", "books"]);
        assert_eq!(c.base_models, ["org/base"]);
        assert_eq!(c.library_name.as_deref(), Some("transformers"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // CRLF line ends, a BOM, a list licence and `...` closing the front matter.
        let c = parse_card("\u{feff}---\r\nlicense: [mit, bsd-3-clause]\r\n...\r\nbody".as_bytes());
        assert_eq!(c.licenses, ["mit", "bsd-3-clause"]);
        // No front matter: nothing, and nothing wrong.
        assert_eq!(parse_card(b"# Model\nlicense: mit\n"), Card::default());
    }

    #[test]
    fn odd_and_malformed_cards_give_warnings_not_errors() {
        let unclosed = parse_card(b"---\nlicense: mit\n# no end\n");
        assert!(unclosed.licenses.is_empty());
        assert!(unclosed.warnings[0].contains("not closed"), "{unclosed:?}");
        let bad_yaml = parse_card(b"---\nlicense: [mit\n---\n");
        assert!(bad_yaml.warnings[0].contains("not YAML"), "{bad_yaml:?}");
        let not_map = parse_card(b"---\n- a\n- b\n---\n");
        assert!(not_map.warnings[0].contains("not a mapping"));
        assert_eq!(parse_card(b"---\n---\n"), Card::default());
        let shapes = parse_card(
            b"---\nlicense: {id: mit}\ndatasets: [1, {a: b}, ok]\npipeline_tag: [x, y]\nbase_model: ''\n---\n",
        );
        assert!(shapes.licenses.is_empty());
        assert_eq!(shapes.datasets, ["ok"]);
        assert_eq!(shapes.pipeline_tag.as_deref(), Some("x"));
        assert!(shapes.base_models.is_empty());
        assert_eq!(shapes.warnings.len(), 3, "{:?}", shapes.warnings);
        assert!(parse_card(&[0xff, 0xfe]).warnings[0].contains("UTF-8"));
        // An alias bomb is refused by the YAML reader's own limits, as a warning.
        let mut bomb = String::from("---\na: &a [x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            };
            bomb.push_str(&format!("b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        bomb.push_str("license: mit\n---\n");
        let c = parse_card(bomb.as_bytes());
        assert!(c.licenses.is_empty());
        assert!(c.warnings[0].contains("not YAML"), "{:?}", c.warnings);
    }

    #[test]
    fn card_bounds_hold() {
        let long = "x".repeat(MAX_VALUE + 1);
        let c = parse_card(
            format!("---\nlicense: {long}\npipeline_tag: \"a\\u0007b\"\n---\n").as_bytes(),
        );
        assert!(c.licenses.is_empty() && c.pipeline_tag.is_none());
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        let many: Vec<String> = (0..MAX_LIST + 10).map(|i| format!("d{i}")).collect();
        let c = parse_card(format!("---\ndatasets: [{}]\n---\n", many.join(", ")).as_bytes());
        assert_eq!(c.datasets.len(), MAX_LIST);
        assert!(c.warnings[0].contains("only the first"));
        // Front matter beyond the bound is not parsed.
        let big = format!(
            "---\n{}license: mit\n---\n",
            "# pad\n".repeat(MAX_FRONT_MATTER / 6 + 1)
        );
        let c = parse_card(big.as_bytes());
        assert!(c.licenses.is_empty());
        assert!(c.warnings[0].contains("not closed"));
    }

    #[test]
    fn config_json_gives_architecture_and_tolerates_odd_shapes() {
        let c = parse_config(br#"{"architectures":["BertModel"],"model_type":"bert"}"#);
        assert_eq!(c.architectures, ["BertModel"]);
        assert_eq!(c.model_type.as_deref(), Some("bert"));
        assert!(c.warnings.is_empty());
        let c = parse_config(br#"{"architectures":"BertModel","model_type":7}"#);
        assert!(c.architectures.is_empty() && c.model_type.is_none());
        assert_eq!(c.warnings.len(), 2);
        assert!(parse_config(b"{nope").warnings[0].contains("not JSON"));
        assert_eq!(parse_config(b"[]"), Config::default());
    }

    #[test]
    fn the_ml_bom_names_model_card_files_lineage_and_is_deterministic() {
        let m = Model {
            name: "BAAI/bge-small".into(),
            manifest: Some(format!("sha256:{}", "a".repeat(64))),
            files: vec![
                ModelFile { path: "model.safetensors".into(), sha256: "b".repeat(64), size: 10 },
                ModelFile { path: "config.json".into(), sha256: "c".repeat(64), size: 2 },
            ],
            card: Some(Ok(b"---\nlicense: mit\npipeline_tag: feature-extraction\ndatasets: [wiki, books]\nbase_model: org/base\n---\n".to_vec())),
            config: Some(Ok(br#"{"architectures":["BertModel"],"model_type":"bert"}"#.to_vec())),
            license: Some("apache-2.0".into()),
            lineage: Some(Lineage {
                datasets: vec![DatasetRef {
                    name: "wiki".into(),
                    digest: Some(format!("sha256:{}", "d".repeat(64))),
                    version: Some("2024-01".into()),
                }],
                code: Some(CodeRef { repository: "https://git.example/train".into(), commit: "abc".into() }),
                hyperparameters: [("lr".to_string(), json!(0.001))].into(),
                parent: Some("org/parent".into()),
            }),
            upstream: Some(("BAAI/bge-small".into(), "1".repeat(40))),
        };
        let a = render(&m, &tool(), None);
        let mut shuffled = m.clone();
        shuffled.files.reverse();
        assert_eq!(
            a,
            render(&shuffled, &tool(), None),
            "same content, same bytes"
        );
        let v: Value = serde_json::from_slice(&a).unwrap();
        assert!(v["metadata"].get("timestamp").is_none());
        let s = &v["metadata"]["component"];
        assert_eq!(s["type"], "machine-learning-model");
        assert_eq!(s["name"], "BAAI/bge-small");
        assert_eq!(s["version"], format!("sha256:{}", "a".repeat(64)));
        assert_eq!(
            s["licenses"],
            json!([{"license": {"name": "apache-2.0"}}]),
            "the artifact's licence wins"
        );
        assert_eq!(
            s["purl"],
            format!("pkg:huggingface/BAAI/bge-small@{}", "1".repeat(40))
        );
        let p = &s["modelCard"]["modelParameters"];
        assert_eq!(p["task"], "feature-extraction");
        assert_eq!(p["modelArchitecture"], "BertModel");
        assert_eq!(p["architectureFamily"], "bert");
        assert_eq!(
            p["datasets"],
            json!([{"ref": "dataset:books"}, {"ref": "dataset:wiki"}])
        );
        let anc: Vec<&str> = s["pedigree"]["ancestors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(anc, ["org/base", "org/parent"]);
        let sp = props(s);
        assert!(sp.contains(&("airlock:hyperparameter:lr".into(), "0.001".into())));
        assert!(sp.contains(&("airlock:lineage-code-commit".into(), "abc".into())));
        let c = v["components"].as_array().unwrap();
        let names: Vec<&str> = c.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["config.json", "model.safetensors", "books", "wiki"]);
        assert_eq!(c[1]["hashes"][0]["content"], "b".repeat(64));
        assert_eq!(c[3]["version"], "2024-01");
        assert_eq!(c[3]["hashes"][0]["content"], "d".repeat(64));
        assert_eq!(
            props(&c[3]),
            [("airlock:named-by".to_string(), "lineage,card".to_string())]
        );
        // Without an artifact licence the card's is used; a card that cannot be read is noted.
        let mut bare = m.clone();
        bare.license = None;
        let v = doc(&bare);
        assert_eq!(
            v["metadata"]["component"]["licenses"][0]["license"]["name"],
            "mit"
        );
        bare.card = Some(Err("over 1048576 bytes".into()));
        bare.config = None;
        bare.lineage = None;
        let v = doc(&bare);
        let s = &v["metadata"]["component"];
        assert!(s.get("licenses").is_none());
        assert_eq!(s["modelCard"]["modelParameters"], json!({}));
        assert!(props(s)
            .iter()
            .any(|(k, v)| k == "airlock:warning" && v.contains("README.md not read")));
    }
}
