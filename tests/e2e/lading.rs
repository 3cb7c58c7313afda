//! `airlock report`: the bill of lading over volumes packed by the real binary. Checked with
//! `sha256sum` for the volume files, `airlock inspect` for the artifact digests, byte
//! comparison of two runs, and, where chromium-headless-shell and pdftotext are installed, a
//! print to PDF read back as text. Damaged, cut and foreign volumes write no document at all.

use std::path::Path;

use airlock_e2e::*;

/// Small volumes, so that the fixture's bundle spans several.
const VOLUME_SIZE: &str = "256KiB";

fn sha256sum(f: &Fixture, rel: &str) -> String {
    let out = f.sh(&format!("sha256sum '{rel}'")).ok().stdout;
    out.split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_string()
}

fn report(f: &Fixture, out: &str, format: &str, vols: &[&str]) -> Run {
    let mut args = vec![
        "--json",
        "report",
        "--trust",
        "root.json",
        "--format",
        format,
        "--out",
        out,
    ];
    args.extend_from_slice(vols);
    f.airlock(&args)
}

fn file_name(path: &str) -> &str {
    Path::new(path).file_name().unwrap().to_str().unwrap()
}

#[test]
fn the_bill_of_lading_names_every_volume_and_artifact_and_reproduces() {
    let f = Fixture::new();
    let vols = f.pack("out", &["--volume-size", VOLUME_SIZE]);
    assert!(vols.len() >= 2, "expected several volumes, got {vols:?}");
    let given: Vec<&str> = vols.iter().rev().map(String::as_str).collect();
    let summary = report(&f, "lading.html", "html", &given).ok().json();
    assert_eq!(summary["complete"], true, "{summary}");
    assert_eq!(summary["name"], "demo");
    let html = std::fs::read_to_string(f.p("lading.html")).unwrap();
    assert_eq!(
        summary["sha256"],
        sha256sum(&f, "lading.html"),
        "the summary names the document's SHA-256"
    );

    // The bundle, each volume file with its SHA-256, each artifact digest.
    assert!(
        html.contains("Bill of lading — bundle demo 1.0.0"),
        "{html}"
    );
    let sums: Vec<String> = vols.iter().map(|v| sha256sum(&f, v)).collect();
    for (v, sum) in vols.iter().zip(&sums) {
        assert!(html.contains(sum), "{v}: {sum} not in the document");
        assert!(html.contains(file_name(v)), "{v} not named");
    }
    let listed: Vec<&str> = summary["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["sha256"].as_str().unwrap())
        .collect();
    assert_eq!(listed, sums, "summary volumes in volume order");
    let inspect = f
        .airlock(&["--json", "inspect", "--trust", "root.json", &vols[0]])
        .ok()
        .json();
    let artifacts = inspect["manifest"]["artifacts"].as_array().unwrap();
    assert!(artifacts.len() >= 3, "{inspect}");
    for a in artifacts {
        let d = a["digest"].as_str().unwrap();
        assert!(html.contains(d), "artifact digest {d} not in the document");
    }
    assert!(html.contains(inspect["bundle"].as_str().unwrap()));
    assert!(html.contains("Handed over by") && html.contains("Received by"));

    // Self-contained: nothing to fetch, no script.
    for bad in [
        "http://", "https://", "src=", "href=", "url(", "<script", "<link", "@import",
    ] {
        assert!(!html.contains(bad), "the document holds {bad:?}");
    }

    // The same volumes, in another order, give the same bytes.
    let forward: Vec<&str> = vols.iter().map(String::as_str).collect();
    report(&f, "again.html", "html", &forward).ok();
    assert_eq!(
        std::fs::read(f.p("lading.html")).unwrap(),
        std::fs::read(f.p("again.html")).unwrap(),
        "two runs differ"
    );

    // JSON: the typed document lists the same volumes.
    report(&f, "lading.json", "json", &forward).ok();
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.p("lading.json")).unwrap()).unwrap();
    assert_eq!(doc["_type"], "airlock-bill-of-lading/v1");
    assert_eq!(doc["bundle"]["name"], "demo");
    assert_eq!(doc["bundle"]["id"], inspect["bundle"]);
    assert_eq!(doc["complete"], true);
    let json_vols: Vec<(String, String, u64)> = doc["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["file"].as_str().unwrap().to_string(),
                v["sha256"].as_str().unwrap().to_string(),
                v["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String, u64)> = vols
        .iter()
        .zip(&sums)
        .map(|(v, s)| {
            let size = std::fs::metadata(f.p(v)).unwrap().len();
            (file_name(v).to_string(), s.clone(), size)
        })
        .collect();
    assert_eq!(json_vols, expected);
    assert_eq!(
        doc["artifacts"].as_array().unwrap().len(),
        artifacts.len(),
        "{doc}"
    );
    assert_eq!(doc["signing"]["signatures"][0]["status"], "verified");

    // A subset: written, and says which volumes are missing.
    let subset = report(&f, "part.json", "json", &[&vols[0]]).ok().json();
    assert_eq!(subset["complete"], false);
    let missing: Vec<u64> = (2..=vols.len() as u64).collect();
    assert_eq!(subset["missingVolumes"], serde_json::json!(missing));
    let text = f
        .airlock(&[
            "report",
            "--trust",
            "root.json",
            "--out",
            "part.html",
            &vols[0],
        ])
        .ok()
        .stdout;
    assert!(text.contains("INCOMPLETE"), "{text}");
    assert!(std::fs::read_to_string(f.p("part.html"))
        .unwrap()
        .contains("INCOMPLETE"));

    print_to_pdf(&f, &sums[0]);
}

/// Prints `lading.html` to PDF with a headless Chromium and reads it back with pdftotext,
/// when both are installed.
fn print_to_pdf(f: &Fixture, first_volume_sha: &str) {
    let have = |tool: &str| f.sh(&format!("command -v {tool}")).code == 0;
    if !have("chromium-headless-shell") || !have("pdftotext") {
        eprintln!("chromium-headless-shell or pdftotext not installed: PDF rendering not checked");
        return;
    }
    let url = format!("file://{}", f.p("lading.html").display());
    f.sh(&format!(
        "HOME=$PWD timeout 120 chromium-headless-shell --no-sandbox --disable-gpu --no-pdf-header-footer \
         --print-to-pdf=lading.pdf '{url}' >chromium.log 2>&1 || (cat chromium.log; exit 1)"
    ))
    .ok();
    let text = f.sh("pdftotext lading.pdf -").ok().stdout;
    assert!(text.contains("demo"), "{text}");
    assert!(text.contains("Bill of lading"), "{text}");
    // Digests wrap inside their table cells: look for a prefix that fits on one line.
    assert!(
        text.contains(&first_volume_sha[..16]),
        "{} not in:\n{text}",
        &first_volume_sha[..16]
    );
    assert!(text.contains("Handed over by") || text.contains("Handed over"));
    assert!(text.contains("Received by"), "{text}");
}

/// Runs a report that must fail: exit 1, an error naming `culprit`, and no document (nor a
/// temporary file) left at `out`.
fn refused(f: &Fixture, vols: &[&str], culprit: &str, format: &str) {
    let out = format!("refused.{format}");
    let mut args = vec![
        "report",
        "--trust",
        "root.json",
        "--format",
        format,
        "--out",
        &out,
    ];
    args.extend_from_slice(vols);
    let r = f.airlock(&args).refused();
    assert!(
        r.stderr.contains(culprit),
        "the error does not name {culprit}:\n{}",
        r.stderr
    );
    assert!(!f.p(&out).exists(), "{out} was written");
    let leftovers: Vec<String> = std::fs::read_dir(f.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("refused"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn a_damaged_cut_or_foreign_volume_writes_no_bill_of_lading() {
    let f = Fixture::new();
    let vols = f.pack("out", &["--volume-size", VOLUME_SIZE]);
    let good = vols[1].as_str();

    // One byte flipped inside the signed manifest (the first frame of the volume).
    std::fs::copy(f.p(&vols[0]), f.p("flipped.tar.zst")).unwrap();
    let (coff, csize, entry) = frames(&f.p("flipped.tar.zst"))[0];
    assert_eq!(entry, 0, "the first frame holds the signed manifest");
    flip_byte(&f.p("flipped.tar.zst"), coff + csize / 2);
    refused(&f, &[good, "flipped.tar.zst"], "flipped.tar.zst", "html");
    refused(&f, &["flipped.tar.zst", good], "flipped.tar.zst", "json");

    // Cut short inside the head, and cut short at the end (the frame index is gone).
    f.sh(&format!("head -c 3000 {} > head-cut.tar.zst", vols[0]))
        .ok();
    refused(&f, &["head-cut.tar.zst"], "head-cut.tar.zst", "html");
    f.sh(&format!(
        "cp {} tail-cut.tar.zst && truncate -s -100 tail-cut.tar.zst",
        vols[0]
    ))
    .ok();
    refused(&f, &[good, "tail-cut.tar.zst"], "tail-cut.tar.zst", "html");

    // Signed, but by a key the trust root does not name.
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer2.key",
        "--out",
        "other",
    ])
    .ok();
    let other = f.sh("ls other/*.tar.zst").ok().stdout;
    let other = other.lines().next().unwrap().to_string();
    refused(&f, &[&other], file_name(&other), "html");

    // A volume of another bundle among good ones.
    f.airlock(&[
        "pack",
        "m.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "second",
        "--sequence",
        "99",
    ])
    .ok();
    let second = f.sh("ls second/*.tar.zst").ok().stdout;
    let second = second.lines().next().unwrap().to_string();
    refused(&f, &[good, &second], file_name(&second), "html");

    // --out naming a volume given would replace it: refused, the volume untouched.
    let before = std::fs::read(f.p(good)).unwrap();
    let r = f
        .airlock(&["report", "--trust", "root.json", "--out", good, good])
        .refused();
    assert!(
        r.stderr.contains("would replace the volume"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(f.p(good)).unwrap(), before);

    // An existing document is left as it was when the run fails.
    std::fs::write(f.p("kept.html"), "earlier").unwrap();
    f.airlock(&[
        "report",
        "--trust",
        "root.json",
        "--out",
        "kept.html",
        "flipped.tar.zst",
    ])
    .refused();
    assert_eq!(
        std::fs::read_to_string(f.p("kept.html")).unwrap(),
        "earlier"
    );
}
