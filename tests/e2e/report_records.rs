//! What the audit record now answers for an auditor, read back through `airlockd report`: the
//! operator, the volume file's SHA-256 (checked against `sha256sum`), the signers' names from
//! the trust root, the policy's digest, and which served names changed digest between two
//! bundles. And the printed form: the HTML report rendered to PDF by headless Chromium, whose
//! text (poppler's `pdftotext`) holds the facts, with page 1 kept as a PNG (`pdftoppm`) under
//! `target/test-artifacts/` for a person to look at.

use airlock_e2e::*;

fn sha256sum(f: &Fixture, rel: &str) -> String {
    f.sh(&format!("sha256sum '{rel}' | cut -d' ' -f1"))
        .ok()
        .stdout
        .trim()
        .to_string()
}

/// An appliance whose trust root names the signer, with bundle 1.0.0 then 1.1.0 (a changed
/// `k3s` file) imported by a named operator, and a volume cut short refused in between.
/// Returns the fixture, the two volume paths and the `--to` bound after the imports.
fn appliance() -> (Fixture, String, String, String) {
    let f = Fixture::new();
    f.airlock(&[
        "trust",
        "init",
        "--root-key",
        "keys/root.key",
        "--signer",
        "keys/signer.pub",
        "--signer-name",
        "keys/signer.pub=Alice Example",
        "--signer-role",
        "keys/signer.pub=release manager",
        "--out",
        "named-root.json",
    ])
    .ok();
    airlockd(
        &f,
        &["init", "--data", "data", "--trust", "named-root.json"],
    )
    .ok();
    let v1 = f.pack("v1", &["--sequence", "1"]).remove(0);
    airlockd(
        &f,
        &[
            "import",
            "--data",
            "data",
            "--operator",
            "Bob Operator",
            &v1,
        ],
    )
    .ok();
    f.sh(&format!("head -c 4000 {v1} > cut.tar.zst")).ok();
    airlockd(
        &f,
        &[
            "import",
            "--data",
            "data",
            "--operator",
            "Bob Operator",
            "cut.tar.zst",
        ],
    )
    .refused();
    f.sh(
        r#"(echo airlock-test-data; head -c 1000 /dev/urandom) > bin/k3s
sed -e 's/version: "1.0.0"/version: "1.1.0"/' \
    -e "s/sha256: .*/sha256: \"$(sha256sum bin/k3s | cut -d' ' -f1)\"/" m.yaml > m2.yaml"#,
    )
    .ok();
    let v2 = f
        .pack_manifest("m2.yaml", "v2", &["--sequence", "2"])
        .remove(0);
    airlockd(
        &f,
        &[
            "import",
            "--data",
            "data",
            "--operator",
            "Carol Operator",
            &v2,
        ],
    )
    .ok();
    let log = airlockd(&f, &["--json", "audit", "show", "--data", "data"])
        .ok()
        .json();
    let to = log.as_array().unwrap().last().unwrap()["time"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    (f, v1, v2, to)
}

fn json_report(f: &Fixture, kind: &str, to: &str, out: &str) -> serde_json::Value {
    airlockd(
        f,
        &[
            "report", "--data", "data", kind, "--to", to, "--format", "json", "--out", out,
        ],
    )
    .ok();
    serde_json::from_slice(&std::fs::read(f.p(out)).unwrap()).unwrap()
}

#[test]
fn the_register_names_operator_volume_digest_signers_and_policy_and_changes_show_digests() {
    let (f, v1, v2, to) = appliance();
    let r = json_report(&f, "transfers", &to, "t.json");
    let t = r["transfers"].as_array().unwrap();
    assert_eq!(t.len(), 3, "{r:#}");
    for (row, (vol, operator)) in [t[0].clone(), t[2].clone()].iter().zip([
        (v1.as_str(), "Bob Operator"),
        (v2.as_str(), "Carol Operator"),
    ]) {
        assert_eq!(row["outcome"], "accepted", "{row:#}");
        assert_eq!(row["operator"], operator);
        assert_eq!(row["volumeSha256"], sha256sum(&f, vol).as_str(), "{row:#}");
        let size = std::fs::metadata(f.p(vol)).unwrap().len();
        assert_eq!(row["volumeSize"], size);
        assert_eq!(row["policy"], "built-in");
        assert_eq!(row["policySha256"].as_str().unwrap().len(), 64);
        assert_eq!(row["trustRootVersion"], 1);
        let names = row["signerNames"].as_object().unwrap();
        assert_eq!(names.len(), 1, "{row:#}");
        let (id, shown) = names.iter().next().unwrap();
        assert_eq!(shown, "Alice Example (release manager)");
        assert_eq!(row["signers"][0].as_str(), Some(id.as_str()));
        assert!(
            row["scan"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l.as_str().unwrap().starts_with("acme/tiny-model: ")),
            "{row:#}"
        );
    }
    // The cut volume is refused, and its own digest (of what was read) is on record too.
    assert_eq!(t[1]["outcome"], "rejected");
    assert_eq!(t[1]["operator"], "Bob Operator");
    assert_eq!(t[1]["volumeSha256"], sha256sum(&f, "cut.tar.zst").as_str());

    // The CSV register carries the same columns.
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
            "csv",
            "--out",
            "t.csv",
        ],
    )
    .ok();
    let row = f
        .sh(r#"python3 -c '
import csv
rows = list(csv.DictReader(open("t.csv", newline="")))
print(len(rows)); print(rows[0]["operator"]); print(rows[0]["volumeSha256"]); print(rows[2]["signerNames"])'"#)
        .ok()
        .stdout;
    let lines: Vec<&str> = row.lines().collect();
    assert_eq!(lines[0], "3");
    assert_eq!(lines[1], "Bob Operator");
    assert_eq!(lines[2], sha256sum(&f, &v1));
    assert_eq!(lines[3], "Alice Example (release manager)");

    // Changes: the first bundle served every name for the first time; the second changed only
    // the k3s file, from the old digest to the new one.
    let c = json_report(&f, "changes", &to, "c.json");
    let changes = c["changes"].as_array().unwrap();
    let first: Vec<&serde_json::Value> = changes
        .iter()
        .filter(|c| c["bundleVersion"] == "1.0.0")
        .collect();
    // Three artifacts, the scan attestation of each, the image's and the file's SBOMs and the
    // model's ML-BOM.
    assert_eq!(first.len(), 9, "{c:#}");
    assert!(first.iter().all(|c| c["previous"].is_null()));
    let second: Vec<&serde_json::Value> = changes
        .iter()
        .filter(|c| c["bundleVersion"] == "1.1.0")
        .collect();
    let mut names: Vec<&str> = second.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["k3s", "sbom:k3s", "scan:k3s"], "{c:#}");
    let second: Vec<&serde_json::Value> =
        second.into_iter().filter(|c| c["name"] == "k3s").collect();
    assert_eq!(second[0]["operator"], "Carol Operator");
    let old_k3s = first.iter().find(|c| c["name"] == "k3s").unwrap()["new"].clone();
    assert_eq!(second[0]["previous"], old_k3s);
    assert_ne!(second[0]["new"], old_k3s);
    // The trust root history names the key holder too.
    let full = json_report(&f, "full", &to, "f.json");
    let holders = &full["integrity"]["trustRoots"][0]["bundleKeyHolders"];
    assert_eq!(
        holders
            .as_object()
            .map(|o| o.values().cloned().collect::<Vec<_>>()),
        Some(vec![serde_json::json!("Alice Example (release manager)")]),
        "{full:#}"
    );
    // The inventory agrees with the change record about what `k3s` is now.
    let inv = json_report(&f, "inventory", &to, "i.json");
    let k3s = inv["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "k3s" && a["current"] == true)
        .unwrap()
        .clone();
    assert_eq!(k3s["digest"], second[0]["new"]);
    // Each served artifact carries its bundle's signed scan status; attestations are not
    // scanned themselves.
    let rows = inv["inventory"].as_array().unwrap();
    let model = rows
        .iter()
        .find(|a| a["name"] == "acme/tiny-model")
        .unwrap();
    assert!(
        model["scan"].as_str().unwrap().starts_with("clean ("),
        "{model:#}"
    );
    let att = rows.iter().find(|a| a["kind"] == "attestation").unwrap();
    assert_eq!(att["scan"], "not scanned", "{att:#}");
}

#[test]
fn an_operator_name_with_control_characters_is_refused_before_anything_is_read() {
    let f = Fixture::new();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    let v = f.pack("out", &[]).remove(0);
    airlockd(
        &f,
        &["import", "--data", "data", "--operator", "evil\nname", &v],
    )
    .fails()
    .says(&["--operator", "control characters"]);
    let log = airlockd(&f, &["--json", "audit", "show", "--data", "data"])
        .ok()
        .json();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "import-started"),
        "{log:#}"
    );
}

/// True when the printing peers are installed (scripts/peers.sh installs them).
fn printing_peers() -> bool {
    ["chromium-headless-shell", "pdftotext", "pdftoppm"]
        .iter()
        .all(|p| which(p))
}

fn which(p: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {p}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn the_full_html_report_prints_to_pdf_with_names_digests_and_decisions() {
    assert!(
        printing_peers(),
        "chromium-headless-shell and poppler-utils are needed (scripts/peers.sh installs them)"
    );
    let (f, v1, _v2, to) = appliance();
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
            "html",
            "--out",
            "full.html",
        ],
    )
    .ok();
    let html = std::fs::read_to_string(f.p("full.html")).unwrap();
    // Nothing in the file may reach outside it.
    let lower = html.to_ascii_lowercase();
    for bad in [
        "http://", "https://", "src=", "href=", "url(", "<script", "@import",
    ] {
        assert!(!lower.contains(bad), "{bad} in the report");
    }
    assert!(lower.contains("content-security-policy"));
    f.sh(
        "chromium-headless-shell --no-sandbox --disable-gpu --no-pdf-header-footer \
         --print-to-pdf=full.pdf file://$PWD/full.html 2>chromium.log \
         && pdftotext full.pdf full.txt && pdftoppm -png -r 60 -f 1 -l 1 full.pdf page",
    )
    .ok();
    let text = std::fs::read_to_string(f.p("full.txt")).unwrap();
    let pages = text.matches('\u{c}').count();
    assert!(pages >= 4, "one section per page: {pages} pages");
    // A digest in a narrow column wraps anywhere; in reading order its pieces follow each
    // other, so it is found in the text with line breaks taken out.
    let vol_digest = sha256sum(&f, &v1);
    let compact: String = text.split_whitespace().collect();
    assert!(
        compact.contains(&vol_digest),
        "volume digest not in the printed report"
    );
    for needle in [
        "Transfer register",
        "Changes to what is served",
        "Inventory of served artifacts",
        "Exceptions",
        "Integrity of the record",
        "demo",
        "1.1.0",
        "accepted",
        "rejected",
        // Narrow columns may wrap a name: first names only.
        "Bob",
        "Carol",
        "Alice Example",
        "acme/tiny-model",
        "intact",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} not in the printed report"
        );
    }
    // Keep page 1 for a person to look at.
    let keep = airlock_e2e::bin_dir()
        .parent()
        .map(|t| t.join("test-artifacts"))
        .unwrap();
    std::fs::create_dir_all(&keep).unwrap();
    let png = std::fs::read_dir(f.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "png"))
        .expect("pdftoppm wrote page 1");
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    std::fs::copy(&png, keep.join("report-full-page1.png")).unwrap();
    std::fs::copy(f.p("full.pdf"), keep.join("report-full.pdf")).unwrap();
}
