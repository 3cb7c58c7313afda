//! The disconnected side: airlockd init / import / list / fsck / audit / inventory / serve,
//! every refusal with quarantine and an unchanged store, crash safety under SIGKILL, a full disk.

use std::path::Path;

use airlock_e2e::*;

/// Fixture + an initialized data dir `data` pinned to `root.json`.
fn appliance() -> Fixture {
    let f = Fixture::new();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    f
}

/// Copies a packed volume to `name` (imports move rejected volumes away).
fn copy(f: &Fixture, from: &str, name: &str) -> String {
    std::fs::copy(f.p(from), f.p(name)).unwrap();
    name.to_string()
}

/// A snapshot of what the store holds and the catalog shows, to prove refusals change nothing.
fn state(f: &Fixture) -> (String, serde_json::Value) {
    let blobs = f.sh("ls data/blobs/sha256 | sort").ok().stdout;
    let list = airlockd(f, &["--json", "list", "--data", "data"])
        .ok()
        .json();
    (
        blobs,
        serde_json::json!([
            list["bundles"],
            list["artifacts"],
            list["channels"],
            list["names"]
        ]),
    )
}

fn import(f: &Fixture, vols: &[&str]) -> Run {
    let mut args = vec!["--json", "import", "--data", "data"];
    args.extend_from_slice(vols);
    airlockd(f, &args)
}

/// Asserts a refusal: exit 1, the reason mentions `says`, a copy of the volume went to
/// quarantine with a reason file of `kind` while the original stayed as it was, and store and
/// catalog are unchanged.
fn refused(f: &Fixture, vol: &str, kind: &str, says: &str) {
    let before = state(f);
    let original = std::fs::read(f.p(vol)).unwrap();
    let r = import(f, &[vol]).refused();
    let j = r.json();
    let o = &j["volumes"][0];
    assert_eq!(o["status"], "rejected", "{j}");
    assert!(
        o["reason"].as_str().unwrap().contains(says),
        "reason lacks {says:?}: {}",
        o["reason"]
    );
    let q = f.p(o["quarantined"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&q).unwrap(),
        original,
        "the quarantine copy differs from the volume"
    );
    assert_eq!(
        std::fs::read(f.p(vol)).unwrap(),
        original,
        "the volume on the medium was changed"
    );
    let reason: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.reason.json", q.display())).unwrap())
            .unwrap();
    assert_eq!(reason["kind"], kind, "{reason}");
    assert_eq!(
        state(f),
        before,
        "a refused import changed the store or the catalog"
    );
    airlockd(f, &["fsck", "--data", "data"]).ok();
    airlockd(f, &["audit", "verify", "--data", "data"]).ok();
}

/// airlockd links hyper for its server (airlock-registry) but no HTTP client: no client crate,
/// and neither hyper's nor hyper-util's `client` features.
#[test]
fn airlockd_links_no_http_client_and_no_mirror_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let r = run_in(
        &root,
        cargo,
        &[
            "tree",
            "-p",
            "airlockd",
            "-e",
            "normal,features",
            "--prefix",
            "none",
            "--offline",
        ],
    )
    .ok();
    assert!(
        r.stdout.contains("airlock-appliance") && r.stdout.contains("hyper feature \"server\""),
        "unexpected cargo tree output:\n{}",
        r.stdout
    );
    for banned in [
        "airlock-mirror ",
        "reqwest ",
        "ureq ",
        "hyper-rustls ",
        "hyper-tls ",
        "isahc ",
        "curl ",
        "attohttpc ",
        "hyper feature \"client\"",
        "hyper-util feature \"client",
    ] {
        assert!(
            !r.stdout.lines().any(|l| l.starts_with(banned)),
            "airlockd depends on {banned}:\n{}",
            r.stdout
        );
    }
    // With the `s3` feature the one HTTP client is ureq, through airlock-s3, which talks to the
    // configured object store only; still no connected-side crate.
    let r = run_in(
        &root,
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        &[
            "tree",
            "-p",
            "airlockd",
            "--features",
            "s3",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ],
    )
    .ok();
    assert!(
        r.stdout.lines().any(|l| l.starts_with("airlock-s3 ")),
        "{}",
        r.stdout
    );
    for banned in [
        "airlock-mirror ",
        "reqwest ",
        "hyper-rustls ",
        "hyper-tls ",
        "isahc ",
        "curl ",
    ] {
        assert!(
            !r.stdout.lines().any(|l| l.starts_with(banned)),
            "airlockd --features s3 depends on {banned}:\n{}",
            r.stdout
        );
    }
}

#[test]
fn import_list_fsck_audit_and_duplicate_is_a_noop() {
    let f = appliance();
    let v = f.pack("out", &[]).remove(0);
    let vol = copy(&f, &v, "v.tar.zst");
    let j = import(&f, &[&vol]).ok().json();
    assert_eq!(j["volumes"][0]["status"], "accepted");
    let visible: Vec<&str> = j["volumes"][0]["visible"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        visible
            .iter()
            .filter(|v| !v.starts_with("attestation "))
            .count(),
        3,
        "{visible:?}"
    );
    assert_eq!(
        visible
            .iter()
            .filter(|v| v.starts_with("attestation scan:"))
            .count(),
        3,
        "scan results travel as attestations"
    );
    let list = airlockd(&f, &["--json", "list", "--data", "data"])
        .ok()
        .json();
    let names: Vec<&str> = list["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "acme/tiny-model",
            "k3s",
            "registry.example/acme/hello:v1",
            "sbom:acme/tiny-model",
            "sbom:k3s",
            "sbom:registry.example/acme/hello:v1",
            "scan:acme/tiny-model",
            "scan:k3s",
            "scan:registry.example/acme/hello:v1"
        ]
    );
    assert_eq!(list["bundles"][0]["complete"], true);
    // The stored model blob is the file, byte for byte.
    f.sh("cmp data/blobs/sha256/$(sha256sum models/tiny/model.safetensors | cut -d' ' -f1) models/tiny/model.safetensors").ok();
    // Same bundle again: a no-op that says so.
    let again = copy(&f, &v, "again.tar.zst");
    let j = import(&f, &[&again]).ok().json();
    assert_eq!(j["volumes"][0]["status"], "duplicate");
    assert!(j["volumes"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("already imported"));
    assert!(
        f.p("again.tar.zst").exists(),
        "a duplicate is not quarantined"
    );
    airlockd(&f, &["fsck", "--data", "data"])
        .ok()
        .says(&["clean"]);
    let a = airlockd(&f, &["--json", "audit", "show", "--data", "data"])
        .ok()
        .json();
    let kinds: Vec<&str> = a
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "initialized",
            "import-started",
            "policy-decision",
            "import-accepted",
            "import-started",
            "import-duplicate"
        ]
    );
    airlockd(&f, &["audit", "verify", "--data", "data"])
        .ok()
        .says(&["6 entries"]);
}

#[test]
fn multi_volume_bundle_becomes_visible_with_its_last_volume_in_any_order() {
    let f = Fixture::with_model_bytes(3 << 20);
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    f.sh("(echo airlock-test-data; head -c 3M /dev/urandom) > models/tiny/model2.dat && (echo airlock-test-data; head -c 3M /dev/urandom) > models/tiny/model3.dat").ok();
    let vols = f.pack("out", &["--volume-size", "3584KiB"]);
    assert!(vols.len() >= 3);
    let mut order: Vec<&String> = vols.iter().collect();
    order.reverse();
    for (i, v) in order.iter().enumerate() {
        let j = import(&f, &[v.as_str()]).ok().json();
        let list = airlockd(&f, &["--json", "list", "--data", "data"])
            .ok()
            .json();
        let model = list["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "model")
            .unwrap()
            .clone();
        if i + 1 < order.len() {
            assert_eq!(
                model["visible"], false,
                "model visible before its last volume: {j}"
            );
            assert_eq!(list["bundles"][0]["complete"], false);
        } else {
            assert_eq!(model["visible"], true, "{j}");
            assert_eq!(list["bundles"][0]["complete"], true);
        }
        airlockd(&f, &["fsck", "--data", "data"]).ok();
    }
}

#[test]
fn signer_threshold_rollback_expiry_and_integrity_refusals() {
    let f = appliance();
    // Unknown signer.
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer2.key",
        "--out",
        "unknown",
    ])
    .ok();
    refused(
        &f,
        &copy(&f, "unknown/demo-1.0.0.vol1of1.tar.zst", "unknown.tar.zst"),
        "trust",
        "not trusted for bundle",
    );
    // Expired.
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "exp",
        "--expires",
        "1h",
    ])
    .ok();
    // The appliance's clock two hours on (libfaketime), instead of waiting for expiry.
    let r = f
        .sh(&format!(
            "faketime -f +2h {} --json import --data data --clock-skew 0s exp/demo-1.0.0.vol1of1.tar.zst",
            bin("airlockd").display()
        ))
        .refused();
    assert!(r.json()["volumes"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("expired"));
    // Rollback: sequence 5 accepted, then 4 refused, 5 again (another bundle) refused.
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "s5",
        "--sequence",
        "5",
    ])
    .ok();
    import(&f, &["s5/demo-1.0.0.vol1of1.tar.zst"]).ok();
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "s4",
        "--sequence",
        "4",
    ])
    .ok();
    refused(
        &f,
        "s4/demo-1.0.0.vol1of1.tar.zst",
        "rollback",
        "not greater than 5",
    );
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "s5b",
        "--sequence",
        "5",
        "--expires",
        "2d",
    ])
    .ok();
    refused(
        &f,
        "s5b/demo-1.0.0.vol1of1.tar.zst",
        "rollback",
        "rollback refused",
    );
    // A blob that does not match the manifest (new content: blobs already in the store are not
    // read from the volume again, their stored copy was verified when it was written).
    f.sh(&format!(
        "python3 {} 300000 models/tiny/model.safetensors",
        gen_safetensors()
    ))
    .ok();
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "s6",
        "--sequence",
        "6",
    ])
    .ok();
    let model = f
        .sh("sha256sum models/tiny/model.safetensors | cut -d' ' -f1")
        .ok()
        .stdout
        .trim()
        .to_string();
    rewrite_volume(
        f.path(),
        "s6/demo-1.0.0.vol1of1.tar.zst",
        "flipped.tar.zst",
        &format!(
            r#"
i = names.index("blobs/sha256/{model}")
m, data = entries[i]
entries[i] = (m, data[:100] + bytes([data[100] ^ 1]) + data[101:])
"#
        ),
    );
    refused(&f, "flipped.tar.zst", "integrity", &model);
    // A truncated volume and an unsafe entry.
    f.sh("head -c 100000 s6/demo-1.0.0.vol1of1.tar.zst > cut.tar.zst")
        .ok();
    refused(&f, "cut.tar.zst", "integrity", "cut.tar.zst");
    rewrite_volume(
        f.path(),
        "s6/demo-1.0.0.vol1of1.tar.zst",
        "link.tar.zst",
        r#"
ti = tarfile.TarInfo("blobs/sha256/link"); ti.type = tarfile.SYMTYPE; ti.linkname = "/etc/passwd"
entries.insert(4, (ti, b""))"#,
    );
    refused(&f, "link.tar.zst", "integrity", "symbolic link");
    // The intact sequence-6 bundle still imports afterwards.
    import(&f, &["s6/demo-1.0.0.vol1of1.tar.zst"]).ok();
}

#[test]
fn threshold_short_and_same_key_twice() {
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
        "--threshold",
        "2",
        "--out",
        "two.json",
    ])
    .ok();
    airlockd(&f, &["init", "--data", "data", "--trust", "two.json"]).ok();
    f.airlock(&["pack", "m.yaml", "--key", "keys/signer.key", "--out", "one"])
        .ok();
    refused(
        &f,
        "one/demo-1.0.0.vol1of1.tar.zst",
        "trust",
        "1 valid from trusted keys, threshold is 2",
    );
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--key",
        "keys/signer.key",
        "--out",
        "twice",
    ])
    .ok();
    refused(
        &f,
        "twice/demo-1.0.0.vol1of1.tar.zst",
        "trust",
        "1 valid from trusted keys, threshold is 2",
    );
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--key",
        "keys/signer2.key",
        "--out",
        "both",
    ])
    .ok();
    import(&f, &["both/demo-1.0.0.vol1of1.tar.zst"]).ok();
}

#[test]
fn policy_denials_default_production_rule_and_custom_policy() {
    let f = appliance();
    // Default policy: production needs two signers.
    f.sh("sed 's/channel: stable/channel: production/' m.yaml > prod.yaml")
        .ok();
    f.airlock(&[
        "pack",
        "prod.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "prod",
    ])
    .ok();
    refused(
        &f,
        "prod/demo-1.0.0.vol1of1.tar.zst",
        "policy",
        "channel production requires at least 2",
    );
    // A custom policy that refuses files named k3s.
    std::fs::write(
        f.p("no-k3s.rego"),
        "package airlock.import\nimport rego.v1\ndeny contains msg if {\n  some a in input.bundle.artifacts\n  a.name == \"k3s\"\n  msg := \"k3s must come from the platform bundle\"\n}\n",
    )
    .unwrap();
    f.airlock(&["pack", "m.yaml", "--key", "keys/signer.key", "--out", "p"])
        .ok();
    let before = state(&f);
    let r = airlockd(
        &f,
        &[
            "--json",
            "import",
            "--data",
            "data",
            "--policy",
            "no-k3s.rego",
            "p/demo-1.0.0.vol1of1.tar.zst",
        ],
    )
    .fails();
    assert!(r.json()["volumes"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("k3s must come from the platform bundle"));
    assert_eq!(state(&f), before);
    let audit = airlockd(&f, &["--json", "audit", "show", "--data", "data"])
        .ok()
        .json();
    let decisions: Vec<&serde_json::Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "policy-decision")
        .collect();
    assert!(
        decisions
            .iter()
            .any(|d| d["data"]["allow"] == false && d["data"]["policy"] == "no-k3s.rego"),
        "{audit}"
    );
}

#[test]
fn trust_root_rotation_carried_in_a_bundle() {
    let f = appliance();
    f.airlock(&["keys", "generate", "--name", "root2", "--out", "keys"])
        .ok();
    // Chained: signed by the old root key and the new one; the new root trusts signer2.
    f.airlock(&[
        "trust",
        "rotate",
        "--from",
        "root.json",
        "--sign-key",
        "keys/root.key",
        "--root-key",
        "keys/root2.key",
        "--signer",
        "keys/signer2.pub",
        "--out",
        "root-v2.json",
    ])
    .ok();
    // Not chained: signed only by a key the pinned root does not know.
    f.airlock(&[
        "trust",
        "init",
        "--root-key",
        "keys/root2.key",
        "--signer",
        "keys/signer2.pub",
        "--out",
        "rogue-v1.json",
    ])
    .ok();
    f.sh(r#"python3 - <<'PY'
import json
d = json.load(open("root-v2.json"))
d["signatures"] = [s for s in d["signatures"] if s["keyid"] != json.load(open("root.json"))["signed"]["roles"]["root"]["keyids"][0]]
json.dump(d, open("unchained-v2.json", "w"))
PY"#).ok();
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer2.key",
        "--trust-root",
        "unchained-v2.json",
        "--out",
        "bad",
        "--sequence",
        "10",
    ])
    .ok();
    refused(
        &f,
        "bad/demo-1.0.0.vol1of1.tar.zst",
        "trust-root",
        "does not chain from pinned version 1",
    );
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer2.key",
        "--trust-root",
        "root-v2.json",
        "--out",
        "good",
        "--sequence",
        "11",
    ])
    .ok();
    let j = import(&f, &["good/demo-1.0.0.vol1of1.tar.zst"]).ok().json();
    assert_eq!(j["volumes"][0]["status"], "accepted");
    let s = airlockd(&f, &["--json", "status", "--data", "data"])
        .ok()
        .json();
    assert_eq!(s["trustRootVersion"], 2);
    // The old signer is no longer trusted.
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "old",
        "--sequence",
        "12",
    ])
    .ok();
    refused(&f, "old/demo-1.0.0.vol1of1.tar.zst", "trust", "not trusted");
    let audit = airlockd(&f, &["--json", "audit", "show", "--data", "data"])
        .ok()
        .json();
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "trust-root-updated" && e["data"]["version"] == 2));
}

#[test]
fn differential_bundle_needs_its_base_and_carries_only_new_blobs() {
    let f = appliance();
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "base",
        "--sequence",
        "1",
    ])
    .ok();
    import(&f, &["base/demo-1.0.0.vol1of1.tar.zst"]).ok();
    airlockd(
        &f,
        &[
            "inventory",
            "export",
            "--data",
            "data",
            "--out",
            "inventory.json",
        ],
    )
    .ok();
    f.sh("(echo airlock-test-data; head -c 50000 /dev/urandom) > models/tiny/new-file.dat && sed -i 's/version: \"1.0.0\"/version: \"1.1.0\"/' m.yaml").ok();
    let j = f
        .airlock(&[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "diff",
            "--sequence",
            "2",
            "--since",
            "inventory.json",
            "--appliance-key",
            "data/keys/appliance.pub",
        ])
        .ok()
        .json();
    assert!(j["external"].as_u64().unwrap() >= 5, "{j}");
    assert!(
        j["blobs"].as_u64().unwrap() <= 7,
        "only the new file, the new model manifest and config, and its new scan attestation and ML-BOM travel: {j}"
    );
    let diff = j["volumes"][0]["path"].as_str().unwrap().to_string();
    // A forged inventory (not signed by the appliance) is refused by pack.
    f.airlock(&["keys", "generate", "--name", "fake", "--out", "keys"])
        .ok();
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "x",
        "--since",
        "inventory.json",
        "--appliance-key",
        "keys/fake.pub",
    ])
    .fails()
    .says(&["not signed by the given appliance key"]);
    // Imported on a fresh appliance without the base: refused.
    airlockd(&f, &["init", "--data", "data2", "--trust", "root.json"]).ok();
    let r = airlockd(
        &f,
        &[
            "--json",
            "import",
            "--data",
            "data2",
            &copy(&f, &diff, "diff-copy.tar.zst"),
        ],
    )
    .fails();
    assert!(r.json()["volumes"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("import the bundle it was based on first"));
    // On the appliance that has the base: accepted, and the new model is visible.
    let j = import(&f, &[&diff]).ok().json();
    assert!(j["volumes"][0]["visible"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "model acme/tiny-model"));
    airlockd(&f, &["fsck", "--data", "data"]).ok();
}

/// A differential pack does not write the blobs the appliance holds, so the volume writer never
/// hashes them: when such a file's digest came from the digest cache, `pack` hashes the file
/// before signing. A stale entry (the file was rewritten with the same size, and the cache
/// still names the old digest) would otherwise leave the new content behind as "held".
#[test]
fn differential_pack_hashes_files_left_out_on_a_cached_digest() {
    let f = appliance();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let pack = |out: &str, extra: &[&str]| {
        f.pack_run("m.yaml", out, &[&["--store", "store"], extra].concat())
    };
    pack("base", &["--sequence", "1"]).ok();
    import(&f, &["base/demo-1.0.0.vol1of1.tar.zst"]).ok();
    airlockd(
        &f,
        &[
            "inventory",
            "export",
            "--data",
            "data",
            "--out",
            "inventory.json",
        ],
    )
    .ok();
    let old = f
        .sh("sha256sum models/tiny/sub/extra.dat | cut -d' ' -f1")
        .ok()
        .stdout;
    // Same size, new bytes; a pack caches the new digest, then the entry is made stale.
    f.sh("(echo airlock-test-data; head -c 70000 /dev/urandom) > models/tiny/sub/extra.dat")
        .ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    pack("probe", &["--no-scan"]).ok();
    let new = f
        .sh("sha256sum models/tiny/sub/extra.dat | cut -d' ' -f1")
        .ok()
        .stdout;
    assert_ne!(old, new);
    f.sh(&format!(
        "grep -l {new} store/digest-cache/*.json | xargs sed -i s/{new}/{old}/",
        new = new.trim(),
        old = old.trim()
    ))
    .ok();
    let diff = |out: &str| {
        pack(
            out,
            &[
                "--sequence",
                "2",
                "--since",
                "inventory.json",
                "--appliance-key",
                "data/keys/appliance.pub",
            ],
        )
    };
    diff("stale").refused().says(&[
        "extra.dat",
        "but the digest cache said",
        "the cache entry is removed",
    ]);
    // The entry is gone: the file is hashed, and its new bytes travel.
    let j = diff("diff").ok().json();
    let vol = j["volumes"][0]["path"].as_str().unwrap().to_string();
    f.sh(&format!(
        "rm -rf x && mkdir x && tar --zstd -xf {vol} -C x && test -f x/blobs/sha256/{}",
        new.trim()
    ))
    .ok();
}

#[test]
fn sigkill_at_twenty_points_of_a_multi_volume_import_is_recoverable() {
    let f = Fixture::with_model_bytes(2 << 20);
    f.sh("(echo airlock-test-data; head -c 2M /dev/urandom) > models/tiny/model2.dat && (echo airlock-test-data; head -c 2M /dev/urandom) > models/tiny/model3.dat").ok();
    let vols = f.pack("out", &["--volume-size", "2600KiB"]);
    assert!(vols.len() >= 3, "{vols:?}");
    let total: u64 = 6 << 20;
    let vol_args: Vec<&str> = vols.iter().map(String::as_str).collect();
    for i in 0..20u64 {
        let at = 1 + i * (total / 20);
        let data = format!("data{i}");
        airlockd(&f, &["init", "--data", &data, "--trust", "root.json"]).ok();
        let mut args = vec!["import", "--data", data.as_str()];
        args.extend_from_slice(&vol_args);
        let out = std::process::Command::new(bin("airlockd"))
            .args(&args)
            .current_dir(f.path())
            .env("AIRLOCK_FAULT_KILL_AFTER_BYTES", at.to_string())
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(9),
            "import at {at} was not killed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Restart: temp files are cleaned, nothing visible references a missing blob.
        airlockd(&f, &["fsck", "--data", &data]).ok();
        let leftovers = f
            .sh(&format!(
                "ls -A {data}/blobs/sha256 | grep -c '^\\.tmp' || true"
            ))
            .ok()
            .stdout;
        assert_eq!(leftovers.trim(), "0");
        airlockd(&f, &["audit", "verify", "--data", &data]).ok();
        // A second import completes the bundle.
        airlockd(&f, &args).ok();
        let list = airlockd(&f, &["--json", "list", "--data", &data])
            .ok()
            .json();
        assert_eq!(list["bundles"][0]["complete"], true, "offset {at}: {list}");
        assert!(list["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["visible"] == true));
        airlockd(&f, &["fsck", "--data", &data]).ok();
    }
}

#[test]
fn full_disk_leaves_nothing_half_written_and_keeps_the_volume() {
    let f = Fixture::with_model_bytes(6 << 20);
    let v = f.pack("out", &[]).remove(0);
    std::fs::create_dir(f.p("data")).unwrap();
    f.sh("mount -t tmpfs -o size=4M tmpfs data").ok();
    struct Unmount<'a>(&'a Fixture);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = self.0.sh("umount data");
        }
    }
    let _guard = Unmount(&f);
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    let r = import(&f, &[&v]).fails();
    let o = &r.json()["volumes"][0];
    assert_eq!(o["status"], "failed", "{o}");
    assert!(
        o["reason"].as_str().unwrap().contains("No space left"),
        "{o}"
    );
    assert!(
        f.p(&v).exists(),
        "a volume that failed for lack of space is not quarantined"
    );
    let list = airlockd(&f, &["--json", "list", "--data", "data"])
        .ok()
        .json();
    assert!(list["artifacts"].as_array().unwrap().is_empty(), "{list}");
    airlockd(&f, &["fsck", "--data", "data"]).ok();
    let leftovers = f
        .sh("ls -A data/blobs/sha256 | grep -c '^\\.tmp' || true")
        .ok()
        .stdout;
    assert_eq!(leftovers.trim(), "0");
}

#[test]
fn audit_log_tampering_is_detected_and_named() {
    let f = appliance();
    let v = f.pack("out", &[]).remove(0);
    import(&f, &[&v]).ok();
    f.sh("cp -r data pristine").ok();
    let tamper = |sql: &str| -> String {
        f.sh("rm -rf data && cp -r pristine data").ok();
        f.sh(&format!("python3 -c \"import sqlite3; c = sqlite3.connect('data/catalog.db'); c.executescript('''{sql}'''); c.commit()\"")).ok();
        airlockd(&f, &["audit", "verify", "--data", "data"])
            .fails()
            .stdout
    };
    assert!(
        tamper("UPDATE audit SET data = replace(data, 'demo', 'evil') WHERE seq = 4")
            .contains("entry 4 was edited")
    );
    assert!(tamper("DELETE FROM audit WHERE seq = 2").contains("entries 2..2 are missing"));
    assert!(tamper("DELETE FROM audit WHERE seq = 4").contains("the newest entries were deleted"));
    let out = tamper(
        "UPDATE audit SET seq = seq + 100 WHERE seq >= 3; UPDATE audit SET seq = seq - 99 WHERE seq >= 103; \
         INSERT INTO audit SELECT 3, time, kind, data, hash, hash, sig FROM audit WHERE seq = 2;",
    );
    assert!(out.contains("entry 3") && out.contains("entry 4"), "{out}");
    let out = tamper("UPDATE audit SET seq = 100 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 100;");
    assert!(out.contains("entry 2") || out.contains("entry 3"), "{out}");
}

#[test]
fn inbox_watcher_imports_complete_volumes_and_quarantines_bad_ones() {
    let f = appliance();
    let v = f.pack("out", &[]).remove(0);
    f.sh(&format!("cp {v} data/inbox/good.tar.zst && touch data/inbox/good.tar.zst.done && head -c 5000 {v} > data/inbox/bad.tar.zst && cp {v} data/inbox/.partial.tar.zst")).ok();
    let r = airlockd(
        &f,
        &["serve", "--data", "data", "--once", "--interval", "100ms"],
    )
    .fails();
    assert!(
        r.stdout.contains("accepted") && r.stdout.contains("rejected"),
        "{}",
        r.stdout
    );
    assert!(f.p("data/inbox/done/good.tar.zst").exists());
    assert!(!f.p("data/inbox/bad.tar.zst").exists());
    assert!(
        f.p("data/inbox/.partial.tar.zst").exists(),
        "hidden (partial) files are left alone"
    );
    let q = f.sh("ls data/quarantine").ok().stdout;
    assert!(
        q.contains("bad.tar.zst") && q.contains("bad.tar.zst.reason.json"),
        "{q}"
    );
    let s = airlockd(&f, &["--json", "status", "--data", "data"])
        .ok()
        .json();
    assert_eq!(s["bundles"].as_array().unwrap().len(), 1);
}
