//! Scanning enforced across the gap: `airlock pack` scans models and files and signs the results
//! into the bundle (manifest `scan` records and attestation artifacts whose OCI `subject` is the
//! scanned artifact); `airlockd import`'s default policy refuses malicious findings and admits a
//! suspicious one only with a signed waiver naming it.

use airlock_e2e::*;

fn pickles(f: &Fixture) {
    f.sh(r#"python3 - <<'PY'
import os, pickle
class R:
    def __reduce__(self):
        return (os.system, ("echo pwned",))
open("models/tiny/evil.pkl", "wb").write(pickle.dumps(R(), protocol=2))
PY"#)
        .ok();
}

#[test]
fn malicious_findings_are_refused_at_import_and_waivers_admit_suspicious_ones() {
    let f = Fixture::new();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    // Clean content: scanned, recorded as clean, attestation in the bundle, imported.
    let clean = f
        .airlock(&[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "clean",
            "--sequence",
            "1",
        ])
        .ok()
        .json();
    let vol = clean["volumes"][0]["path"].as_str().unwrap().to_string();
    let i = f.airlock(&["--json", "inspect", &vol]).ok().json();
    let scan = i["manifest"]["scan"].as_array().unwrap();
    assert_eq!(
        scan.len(),
        2,
        "the model and the file are scanned: {scan:?}"
    );
    assert!(scan
        .iter()
        .all(|r| r["findings"].as_array().unwrap().is_empty()));
    let kinds: Vec<&str> = i["manifest"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "attestation").count(), 2);
    // The attestation's subject is the scanned model manifest.
    let att = scan[0]["attestation"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let m: serde_json::Value = serde_json::from_str(
        &f.sh(&format!("zstd -dc {vol} | tar -xO blobs/sha256/{att}"))
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(m["subject"]["digest"], scan[0]["subject"]);
    assert_eq!(m["artifactType"], "application/vnd.airlock.scan.v1+json");
    airlockd(&f, &["import", "--data", "data", &vol]).ok();

    // A malicious pickle: packed with its finding, refused by the appliance's policy.
    pickles(&f);
    let bad = f
        .airlock(&[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "bad",
            "--sequence",
            "2",
        ])
        .ok()
        .json();
    let r = airlockd(
        &f,
        &[
            "--json",
            "import",
            "--data",
            "data",
            bad["volumes"][0]["path"].as_str().unwrap(),
        ],
    )
    .fails();
    let reason = r.json()["volumes"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("malicious finding pickle/denylisted-global in acme/tiny-model (evil.pkl)"),
        "{reason}"
    );

    // A suspicious pickle (an unlisted global): refused without a waiver, admitted with one.
    f.sh("rm models/tiny/evil.pkl && printf '\\x80\\x02cmymodule\\nMyClass\\nq\\x00)\\x81q\\x01.' > models/tiny/odd.pkl").ok();
    let odd = f
        .airlock(&[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "odd",
            "--sequence",
            "3",
        ])
        .ok()
        .json();
    let r = airlockd(
        &f,
        &[
            "--json",
            "import",
            "--data",
            "data",
            odd["volumes"][0]["path"].as_str().unwrap(),
        ],
    )
    .fails();
    assert!(r.json()["volumes"][0]["reason"].as_str().unwrap().contains(
        "pickle/unknown-global:mymodule.MyClass in acme/tiny-model (odd.pkl) has no waiver"
    ));
    f.sh(r#"cat >> m.yaml <<'YAML'
  waivers:
    - artifact: acme/tiny-model
      finding: pickle/unknown-global:mymodule.MyClass
      file: odd.pkl
      reason: reviewed by the ML platform team, ticket 1234
YAML"#)
        .ok();
    let waived = f
        .airlock(&[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "waived",
            "--sequence",
            "4",
        ])
        .ok()
        .json();
    airlockd(
        &f,
        &[
            "import",
            "--data",
            "data",
            waived["volumes"][0]["path"].as_str().unwrap(),
        ],
    )
    .ok();
    // The admitted bundle's scan results and waiver are in the audit trail's policy decision.
    let audit = airlockd(&f, &["--json", "audit", "show", "--data", "data"])
        .ok()
        .json();
    let allowed = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "policy-decision" && e["data"]["allow"] == true)
        .count();
    assert_eq!(allowed, 2);
}
