//! `airlockd report`: the transfer register, inventory and integrity of an appliance that
//! imported one good volume and refused one cut short, read back with real tools: Python's
//! `csv` module, securesystemslib for the DSSE statement, `airlockd audit verify` for the chain,
//! SQLite for the catalog being left as it was, and compliance-trestle for the OSCAL documents.

use std::time::Duration;

use airlock_e2e::*;

/// The rejected volume's name has a comma and double quotes, which CSV must quote.
const BAD: &str = "media/bad, \"cut\".tar.zst";

/// An appliance `data` that accepted `media/good.tar.zst` and rejected [`BAD`]; returns the
/// fixture and a `--to` bound after both imports (and before any report).
fn appliance() -> (Fixture, String) {
    let f = Fixture::new();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    let v = f.pack("out", &[]).remove(0);
    f.sh(&format!(
        "mkdir -p media && cp {v} media/good.tar.zst && head -c 5000 {v} > '{BAD}'"
    ))
    .ok();
    airlockd(&f, &["import", "--data", "data", "media/good.tar.zst"]).ok();
    airlockd(&f, &["import", "--data", "data", BAD]).refused();
    let log = audit(&f);
    let to = log.last().unwrap()["time"].as_str().unwrap().to_string();
    // Entries written by the reports fall after the period (timestamps have whole seconds).
    std::thread::sleep(Duration::from_millis(1100));
    (f, to)
}

fn audit(f: &Fixture) -> Vec<serde_json::Value> {
    airlockd(f, &["--json", "audit", "show", "--data", "data"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

/// Every catalog table but the audit log, as text.
fn catalog_dump(f: &Fixture) -> String {
    f.sh(r#"python3 -c '
import sqlite3
c = sqlite3.connect("file:data/catalog.db?mode=ro", uri=True)
for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type = \"table\" AND name != \"audit\" ORDER BY name"):
    print(t, sorted(map(repr, c.execute("SELECT * FROM " + t).fetchall())))
'"#)
    .ok()
    .stdout
}

fn report(f: &Fixture, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json", "report", "--data", "data"];
    a.extend_from_slice(args);
    airlockd(f, &a).ok().json()
}

/// Verifies `ENV` with securesystemslib against the appliance key and checks that the signed
/// statement names the SHA-256 of `FILE`.
const VERIFY: &str = r#"
import json, sys, hashlib
from securesystemslib.signer import SSlibKey
from securesystemslib.dsse import Envelope
pub, env_path, report_path = sys.argv[1:4]
keyid = hashlib.sha256(json.dumps({"keytype":"ed25519","keyval":{"public":pub},"scheme":"ed25519"}, sort_keys=True, separators=(",",":")).encode()).hexdigest()
key = SSlibKey(keyid=keyid, keytype="ed25519", scheme="ed25519", keyval={"public": pub})
env = Envelope.from_dict(json.load(open(env_path)))
assert env.payload_type == "application/vnd.airlock.report.v1+json", env.payload_type
env.verify([key], 1)
statement = json.loads(env.payload)
found = hashlib.sha256(open(report_path, "rb").read()).hexdigest()
if statement["sha256"] != found:
    sys.exit("report does not match its signed statement")
print("verified", statement["kind"], statement["sha256"])
"#;

#[test]
fn a_full_report_lists_both_attempts_is_signed_deterministic_and_changes_no_record() {
    let (f, to) = appliance();
    let before_log = audit(&f);
    let before_catalog = catalog_dump(&f);

    // JSON: both attempts with their outcomes, the inventory, the integrity section.
    let out = report(
        &f,
        &["full", "--to", &to, "--format", "json", "--out", "r.json"],
    );
    assert_eq!(out["envelope"], "r.json.dsse.json", "{out}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.p("r.json")).unwrap()).unwrap();
    assert_eq!(r["kind"], "full");
    assert_eq!(r["period"]["to"], to.as_str());
    let t = r["transfers"].as_array().unwrap();
    assert_eq!(t.len(), 2, "{r:#}");
    assert_eq!(t[0]["outcome"], "accepted");
    assert_eq!(t[0]["volume"], "media/good.tar.zst");
    assert_eq!(t[0]["bundleName"], "demo");
    assert_eq!(t[0]["bundleVersion"], "1.0.0");
    assert_eq!(t[0]["channel"], "stable");
    assert_eq!(t[0]["threshold"], 1);
    assert_eq!(t[0]["signers"].as_array().unwrap().len(), 1);
    assert_eq!(t[1]["outcome"], "rejected");
    assert_eq!(t[1]["volume"], BAD);
    assert!(!t[1]["reason"].as_str().unwrap().is_empty(), "{r:#}");
    let q = t[1]["quarantinedAs"].as_str().expect("quarantine path");
    assert!(f.p(q).exists(), "{q}");
    assert_eq!(r["counts"]["accepted"], 1);
    assert_eq!(r["counts"]["rejected"], 1);
    let inv = r["inventory"].as_array().unwrap();
    let names: Vec<&str> = inv.iter().map(|a| a["name"].as_str().unwrap()).collect();
    for n in ["acme/tiny-model", "k3s", "registry.example/acme/hello:v1"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert_eq!(r["integrity"]["auditIntact"], true, "{r:#}");
    assert_eq!(r["integrity"]["pinnedTrustRootVersion"], 1);
    assert_eq!(r["audit"]["firstSeq"], 1);
    let last = before_log.last().unwrap();
    assert_eq!(r["audit"]["lastSeq"], last["seq"]);
    assert_eq!(r["audit"]["headHash"], last["hash"]);

    // Deterministic: the same period gives the same bytes, report and envelope.
    report(
        &f,
        &["full", "--to", &to, "--format", "json", "--out", "r2.json"],
    );
    assert_eq!(
        std::fs::read(f.p("r.json")).unwrap(),
        std::fs::read(f.p("r2.json")).unwrap()
    );
    assert_eq!(
        std::fs::read(f.p("r.json.dsse.json")).unwrap(),
        std::fs::read(f.p("r2.json.dsse.json")).unwrap()
    );

    // CSV: the transfer register, read by Python's csv module.
    report(
        &f,
        &["full", "--to", &to, "--format", "csv", "--out", "r.csv"],
    );
    let rows = f
        .sh(r#"python3 -c '
import csv, json
rows = list(csv.DictReader(open("r.csv", newline="")))
print(json.dumps([[r["outcome"], r["volume"], r["bundleName"], r["channel"], r["threshold"], r["quarantinedAs"] != ""] for r in rows]))
'"#)
        .ok()
        .json();
    assert_eq!(
        rows,
        serde_json::json!([
            [
                "accepted",
                "media/good.tar.zst",
                "demo",
                "stable",
                "1",
                false
            ],
            ["rejected", BAD, "", "", "", true]
        ])
    );

    // HTML: one self-contained page with the bundle, the digests and the outcomes.
    report(
        &f,
        &["full", "--to", &to, "--format", "html", "--out", "r.html"],
    );
    let page = std::fs::read_to_string(f.p("r.html")).unwrap();
    assert!(page.contains("demo"));
    assert!(page.contains("rejected"));
    for a in inv {
        assert!(page.contains(a["digest"].as_str().unwrap()), "{a}");
    }
    assert!(page.contains(
        r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">"#
    ));
    assert!(page.contains("@page { size: A4;"));
    let lower = page.to_lowercase();
    for bad in [
        "http://", "https://", "src=", "href=", "url(", "<script", "<link", "<img", "@import",
    ] {
        assert!(!lower.contains(bad), "the page holds {bad:?}");
    }
    report(
        &f,
        &["full", "--to", &to, "--format", "html", "--out", "r2.html"],
    );
    assert_eq!(page.as_bytes(), std::fs::read(f.p("r2.html")).unwrap());

    // The record: the catalog unchanged, the log intact and longer by the reports' entries.
    assert_eq!(catalog_dump(&f), before_catalog);
    airlockd(&f, &["audit", "verify", "--data", "data"])
        .ok()
        .says(&["audit log intact"]);
    let after = audit(&f);
    assert_eq!(after[..before_log.len()], before_log[..]);
    let added: Vec<&serde_json::Value> = after[before_log.len()..].iter().collect();
    assert_eq!(added.len(), 5);
    assert!(added.iter().all(|e| e["kind"] == "report-generated"));
    let sha = f
        .sh("sha256sum r.html | cut -d' ' -f1")
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(added[3]["data"]["sha256"], sha.as_str());

    // The signed statement verifies with securesystemslib and the appliance key; one flipped
    // byte of the report fails the check.
    let pubhex = f
        .sh("openssl pkey -pubin -in data/keys/appliance.pub -outform DER | tail -c 32 | xxd -p -c 64")
        .ok()
        .stdout;
    std::fs::write(f.p("v.py"), VERIFY).unwrap();
    for file in ["r.json", "r.csv", "r.html"] {
        let env = format!("{file}.dsse.json");
        run_in(f.path(), python(), &["v.py", pubhex.trim(), &env, file])
            .ok()
            .says(&["verified full"]);
    }
    flip_byte(&f.p("r.html"), 400);
    run_in(
        f.path(),
        python(),
        &["v.py", pubhex.trim(), "r.html.dsse.json", "r.html"],
    )
    .fails()
    .says(&["does not match"]);
}

#[test]
fn the_period_selects_attempts_and_the_inventory_stands_alone() {
    let (f, to) = appliance();
    let log = audit(&f);
    let rejected_at = log.iter().find(|e| e["kind"] == "import-rejected").unwrap()["time"]
        .as_str()
        .unwrap()
        .to_string();
    let accepted_at = log.iter().find(|e| e["kind"] == "import-accepted").unwrap()["time"]
        .as_str()
        .unwrap()
        .to_string();

    // Only the attempts whose outcome falls in the period.
    report(
        &f,
        &[
            "transfers",
            "--from",
            &accepted_at,
            "--to",
            &accepted_at,
            "--format",
            "json",
            "--out",
            "t.json",
        ],
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.p("t.json")).unwrap()).unwrap();
    let t = r["transfers"].as_array().unwrap();
    assert!(t.iter().any(|x| x["outcome"] == "accepted"), "{r:#}");
    if accepted_at != rejected_at {
        assert!(t.iter().all(|x| x["outcome"] != "rejected"), "{r:#}");
    }
    assert!(r.get("inventory").is_none() && r.get("integrity").is_none());

    // The inventory as CSV: one header row, one row per visible artifact (the scan reports
    // packed beside each artifact are artifacts too).
    report(
        &f,
        &[
            "inventory",
            "--to",
            &to,
            "--format",
            "csv",
            "--out",
            "i.csv",
        ],
    );
    let rows = f
        .sh(r#"python3 -c '
import csv, json
rows = list(csv.reader(open("i.csv", newline="")))
print(json.dumps({"header": rows[0], "names": sorted(r[1] for r in rows[1:])}))
'"#)
        .ok()
        .json();
    assert_eq!(rows["header"][0], "kind");
    assert_eq!(rows["header"][2], "digest");
    assert_eq!(
        rows["names"],
        serde_json::json!([
            "acme/tiny-model",
            "k3s",
            "registry.example/acme/hello:v1",
            "sbom:acme/tiny-model",
            "sbom:k3s",
            "sbom:registry.example/acme/hello:v1",
            "scan:acme/tiny-model",
            "scan:k3s",
            "scan:registry.example/acme/hello:v1"
        ])
    );

    // Bad periods are refused before anything is written.
    airlockd(
        &f,
        &[
            "report",
            "--data",
            "data",
            "transfers",
            "--from",
            &to,
            "--to",
            "2000-01-01T00:00:00Z",
            "--out",
            "x.html",
        ],
    )
    .refused()
    .says(&["is after --to"]);
    airlockd(
        &f,
        &[
            "report",
            "--data",
            "data",
            "full",
            "--from",
            "last tuesday",
            "--out",
            "x.html",
        ],
    )
    .refused()
    .says(&["--from"]);
    assert!(!f.p("x.html").exists());
}

/// Validates `file` as an OSCAL `model` (`assessment-results`, `component-definition`) with
/// compliance-trestle, inside a `trestle init`-ed workspace `ws` of the fixture, where trestle
/// expects each model at `MODEL_DIR/NAME/MODEL.json`.
fn trestle_validate(f: &Fixture, model: &str, dir: &str, file: &std::path::Path) {
    let trestle = python().parent().unwrap().join("trestle");
    let ws = f.p("ws");
    if !ws.join(".trestle").exists() {
        std::fs::create_dir_all(&ws).unwrap();
        run_in(&ws, &trestle, &["init"]).ok();
    }
    let target = ws.join(dir).join("airlock");
    std::fs::create_dir_all(&target).unwrap();
    let dest = target.join(format!("{model}.json"));
    std::fs::copy(file, &dest).unwrap();
    let rel = format!("{dir}/airlock/{model}.json");
    run_in(&ws, &trestle, &["validate", "-f", &rel])
        .ok()
        .says(&["VALID: Model", "passed the Validator"]);
}

#[test]
fn an_oscal_report_validates_with_trestle_and_holds_one_observation_per_attempt() {
    let (f, _) = appliance();
    // A third attempt: the good volume again, a duplicate.
    airlockd(&f, &["import", "--data", "data", "media/good.tar.zst"]);
    let log = audit(&f);
    let to = log.last().unwrap()["time"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let attempts = log.iter().filter(|e| e["kind"] == "import-started").count();
    assert_eq!(attempts, 3);
    assert!(
        log.iter().any(|e| e["kind"] == "import-duplicate"),
        "{log:?}"
    );

    let out = report(
        &f,
        &[
            "full",
            "--to",
            &to,
            "--format",
            "oscal",
            "--out",
            "r.oscal.json",
        ],
    );
    assert_eq!(out["format"], "oscal");
    assert_eq!(out["envelope"], "r.oscal.json.dsse.json");
    let key = out["applianceKey"].as_str().unwrap().to_string();

    // Deterministic: the same period gives the same bytes and the same signed statement.
    report(
        &f,
        &[
            "full",
            "--to",
            &to,
            "--format",
            "oscal",
            "--out",
            "r2.oscal.json",
        ],
    );
    let bytes = std::fs::read(f.p("r.oscal.json")).unwrap();
    assert_eq!(bytes, std::fs::read(f.p("r2.oscal.json")).unwrap());
    assert_eq!(
        std::fs::read(f.p("r.oscal.json.dsse.json")).unwrap(),
        std::fs::read(f.p("r2.oscal.json.dsse.json")).unwrap()
    );

    // compliance-trestle accepts the document and the shipped component definition.
    trestle_validate(
        &f,
        "assessment-results",
        "assessment-results",
        &f.p("r.oscal.json"),
    );
    let component = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/compliance/component-definition.json");
    trestle_validate(
        &f,
        "component-definition",
        "component-definitions",
        &component,
    );

    // One observation per import attempt, each citing the audit entry of its outcome by
    // sequence number and hash, under the UUID Python's uuid5 derives from the key and seq.
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let ar = &doc["assessment-results"];
    assert_eq!(ar["metadata"]["last-modified"], to.as_str());
    let results = ar["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["end"], to.as_str());
    let obs = results[0]["observations"].as_array().unwrap();
    assert_eq!(obs.len(), attempts, "{obs:#?}");
    let outcomes: Vec<&serde_json::Value> = log
        .iter()
        .filter(|e| {
            ["import-accepted", "import-rejected", "import-duplicate"]
                .contains(&e["kind"].as_str().unwrap())
        })
        .collect();
    let mut want_uuids = Vec::new();
    for (o, e) in obs.iter().zip(&outcomes) {
        assert_eq!(o["methods"], serde_json::json!(["EXAMINE"]));
        assert_eq!(o["collected"], e["time"]);
        let evidence = o["relevant-evidence"][0]["description"].as_str().unwrap();
        assert!(
            evidence.contains(&format!("Audit entry {} ", e["seq"])),
            "{evidence}"
        );
        assert!(evidence.contains(e["hash"].as_str().unwrap()), "{evidence}");
        want_uuids.push(format!("{key}/observation/{}", e["seq"]));
    }
    let titles: Vec<&str> = obs.iter().map(|o| o["title"].as_str().unwrap()).collect();
    assert!(titles[0].ends_with(": accepted"), "{titles:?}");
    assert!(titles[1].ends_with(": rejected"), "{titles:?}");
    assert!(titles[2].ends_with(": duplicate"), "{titles:?}");
    let rejected = obs[1]["description"].as_str().unwrap();
    assert!(rejected.contains("Quarantined as"), "{rejected}");
    let python_uuids = run_in(
        f.path(),
        python(),
        &[
            "-c",
            "import json, sys, uuid\nns = uuid.uuid5(uuid.NAMESPACE_URL, 'urn:airlock:oscal')\nprint(json.dumps([str(uuid.uuid5(ns, n)) for n in sys.argv[1:]]))",
        ]
        .into_iter()
        .chain(want_uuids.iter().map(String::as_str))
        .collect::<Vec<_>>(),
    )
    .ok()
    .json();
    let got_uuids: Vec<&serde_json::Value> = obs.iter().map(|o| &o["uuid"]).collect();
    assert_eq!(
        serde_json::json!(got_uuids),
        python_uuids,
        "observation UUIDs"
    );

    // One finding per control; the signature controls are satisfied by an intact log, and
    // CM-14 links the accepted and the rejected attempts.
    let findings = results[0]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 22);
    let finding = |id: &str| {
        findings
            .iter()
            .find(|x| x["target"]["target-id"] == id)
            .unwrap_or_else(|| panic!("no finding for {id}"))
    };
    for id in ["au-9", "au-10", "cm-14", "hipaa-164.312.b", "gdpr-art30"] {
        assert_eq!(
            finding(id)["target"]["status"]["state"],
            "satisfied",
            "{id}"
        );
    }
    let linked: Vec<&serde_json::Value> = finding("cm-14")["related-observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["observation-uuid"])
        .collect();
    assert_eq!(linked, [&obs[0]["uuid"], &obs[1]["uuid"]]);
    assert_eq!(
        finding("gdpr-art30")["related-observations"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // The full JSON report carries the same mapping, and the HTML its appendix.
    report(
        &f,
        &["full", "--to", &to, "--format", "json", "--out", "r.json"],
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.p("r.json")).unwrap()).unwrap();
    let controls = r["controls"].as_array().unwrap();
    assert_eq!(controls.len(), 22);
    let au2 = &controls[0];
    assert_eq!(au2["control"], "AU-2");
    let all: Vec<u64> = log.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(au2["auditSeqs"], serde_json::json!(all));
    report(
        &f,
        &["full", "--to", &to, "--format", "html", "--out", "r.html"],
    );
    let page = std::fs::read_to_string(f.p("r.html")).unwrap();
    assert!(
        page.contains("<h2>Control mapping</h2>"),
        "appendix missing"
    );
    assert!(
        page.contains(&format!("1–{}", all.last().unwrap())),
        "the appendix compresses AU-2's entries into one range"
    );

    // Only `full` has findings to give: other kinds are refused, nothing written.
    airlockd(
        &f,
        &[
            "report",
            "--data",
            "data",
            "transfers",
            "--to",
            &to,
            "--format",
            "oscal",
            "--out",
            "t.oscal.json",
        ],
    )
    .refused()
    .says(&["--format oscal needs the full report"]);
    assert!(!f.p("t.oscal.json").exists());

    // An edited audit entry: the report still comes out (exit 1), valid OSCAL, with the
    // controls that rest on the log not satisfied and the others unchanged.
    f.sh(r#"python3 -c "import sqlite3; c = sqlite3.connect('data/catalog.db'); c.execute(\"UPDATE audit SET data = replace(data, 'demo', 'evil') WHERE kind = 'import-accepted'\"); c.commit()""#).ok();
    airlockd(
        &f,
        &[
            "report",
            "--data",
            "data",
            "full",
            "--to",
            &to,
            "--format",
            "oscal",
            "--out",
            "bad.oscal.json",
        ],
    )
    .refused();
    let bad: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.p("bad.oscal.json")).unwrap()).unwrap();
    let bad_findings = bad["assessment-results"]["results"][0]["findings"]
        .as_array()
        .unwrap();
    let state = |id: &str| {
        bad_findings
            .iter()
            .find(|x| x["target"]["target-id"] == id)
            .unwrap()["target"]["status"]
            .clone()
    };
    for id in ["au-9", "au-10", "hipaa-164.312.b"] {
        assert_eq!(state(id)["state"], "not-satisfied", "{id}");
        assert!(
            state(id)["remarks"]
                .as_str()
                .unwrap()
                .contains("was edited"),
            "{id}: {}",
            state(id)
        );
    }
    assert_eq!(state("cm-14")["state"], "satisfied");
    trestle_validate(
        &f,
        "assessment-results",
        "assessment-results",
        &f.p("bad.oscal.json"),
    );
}
