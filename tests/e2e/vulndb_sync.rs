//! `airlock vulndb sync`: osv.dev's per-ecosystem exports and CISA's known-exploited catalog,
//! downloaded, verified, resumed, packed and matched.
//!
//! Stand-in: osv.dev's bucket and cisa.gov cannot be reached here, so `support/static_server.py`
//! serves the same layout (`<ECOSYSTEM>/all.zip`, a distribution's releases in its one export
//! `Debian/all.zip`, with ETag, Range/If-Range and Google Cloud Storage's `x-goog-hash`) from
//! 127.0.0.1. The zips hold osv.dev's real records (the osv-schema test data PyPI's `osv`
//! ships) plus synthetic Debian and Alpine records; the catalog follows CISA's published
//! schema.

use airlock_e2e::*;

/// The static server over `dir`, with `extra` flags; its requests are logged in
/// `{dir}.http.log`.
fn serve(f: &Fixture, dir: &str, extra: &[&str]) -> (Background, String) {
    let mut args = vec![
        concat!(env!("CARGO_MANIFEST_DIR"), "/support/static_server.py"),
        dir,
    ];
    args.extend_from_slice(extra);
    let b = Background::start(f.path(), "python3", &args, &f.p(&format!("{dir}.http.log")));
    let url = format!("http://127.0.0.1:{}", b.first_line);
    (b, url)
}

/// The osv-schema test data of PyPI's `osv` package.
fn osv_tools() -> String {
    let out = run_in(
        std::path::Path::new("/"),
        python(),
        &[
            "-c",
            "import importlib.util, os; s = importlib.util.find_spec('osv'); print(os.path.dirname(s.origin))",
        ],
    )
    .ok()
    .stdout;
    format!("{}/osv-schema/tools", out.trim())
}

/// `site/`: exports in osv.dev's layout and a KEV catalog listing CVE-2023-32681 (an alias of
/// the real PYSEC-2023-74) and CVE-2099-0001 (the synthetic Debian advisory's alias).
fn site(f: &Fixture) {
    std::fs::write(
        f.p("site.py"),
        r#"
import json, os, sys, zipfile
tools = sys.argv[1]

def export(eco, members, method=zipfile.ZIP_DEFLATED, root="site"):
    os.makedirs(f"{root}/{eco}", exist_ok=True)
    with zipfile.ZipFile(f"{root}/{eco}/all.zip", "w", method) as z:
        for name, data in members:
            z.writestr(name, data)

def real(*paths):
    return [(os.path.basename(p).replace(".osv.json", ".json"), open(os.path.join(tools, p), "rb").read())
            for p in paths]

def record(id, alias, eco, name, fixed):
    return (id + ".json", json.dumps({
        "schema_version": "1.6.0", "id": id, "modified": "2026-11-30T00:00:00Z", "aliases": [alias],
        "summary": name + " is vulnerable",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": eco, "name": name},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]}))

# PyPI's export; the npm record in it names another ecosystem (counted, dropped).
export("PyPI", real("osv-linter/test_data/PYSEC-2023-74.json", "osv-linter/test_data/GHSA-9v2f-6vcg-3hgv.json",
                    "ghsa/testdata/pypi_normalize.osv.json", "ghsa/testdata/equals_with_patch.osv.json"))
export("npm", real("ghsa/testdata/equals_with_patch.osv.json", "ghsa/testdata/less_than_equals_no_patch.osv.json",
                   "ghsa/testdata/less_than_equals_with_patch.osv.json", "ghsa/testdata/npm_greater_than.osv.json",
                   "ghsa/testdata/greater_than_equals_no_patch.osv.json"))
export("Go", real("osv-linter/test_data/GO-2020-0001.json", "osv-linter/test_data/GO-2024-2963.json"))
export("Debian", [record("DEBIAN-CVE-2099-0001", "CVE-2099-0001", "Debian:12", "hello-src", "2.10-4"),
                     record("DEBIAN-CVE-2099-0009", "CVE-2099-0009", "Debian:11", "hello-src", "2.10-9")])
export("Alpine", [record("ALPINE-CVE-2099-0002", "CVE-2099-0002", "Alpine:v3.20", "busybox", "1.36.1-r30"),
                  record("ALPINE-CVE-2099-0003", "CVE-2099-0003", "Alpine:v3.19", "busybox", "1.36.1-r40")])
kev = {"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2026.11.30",
       "dateReleased": "2026-11-30T17:00:00.000Z", "count": 2, "vulnerabilities": [
           {"cveID": "CVE-2023-32681", "vendorProject": "Python", "product": "requests",
            "vulnerabilityName": "requests leaks Proxy-Authorization", "dateAdded": "2026-11-01",
            "shortDescription": "-", "requiredAction": "Apply updates.", "dueDate": "2026-11-22",
            "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": ["CWE-200"]},
           {"cveID": "CVE-2099-0001", "vendorProject": "GNU", "product": "hello",
            "vulnerabilityName": "hello greeting", "dateAdded": "2026-11-30", "shortDescription": "-",
            "requiredAction": "-", "dueDate": "2026-12-21", "knownRansomwareCampaignUse": "Unknown",
            "notes": "", "cwes": []}]}
json.dump(kev, open("site/kev.json", "w"))
bad_kev = dict(kev, vulnerabilities=kev["vulnerabilities"] + [{"cveID": "CVE-99", "dateAdded": "2026-11-30"}], count=3)
os.makedirs("bad", exist_ok=True)
json.dump(bad_kev, open("bad/kev.json", "w"))

# Faulty exports, one fault each.
export("npm", [("A.json", b'{"id": "A", "affected": []}')], zipfile.ZIP_STORED, "bad")
data = open("bad/npm/all.zip", "rb").read()
at = data.index(b'{"id": "A"')
open("bad/npm/all.zip", "wb").write(data[:at] + b'{"id": "B"' + data[at + 10:])   # CRC no longer matches
export("Go", [("GO-1.json", b" " * (2 << 20) + b'{"id": "GO-1"}')], root="bad")  # 2 MiB in a few KiB
export("crates.io", [("RUSTSEC-1.json", b" " * (5 << 20))], root="bad")            # over 4 MiB declared
export("PyPI", [("PYSEC-1.json", b'{"not": "an OSV record"}')], root="bad")
"#,
    )
    .unwrap();
    run_in(f.path(), python(), &["site.py", &osv_tools()]).ok();
}

const ECOS: [&str; 5] = ["Debian:12", "Alpine:v3.20", "PyPI", "npm", "Go"];

fn sync_args<'a>(url: &'a str, kev: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut a = vec!["vulndb", "sync", "--source", url];
    for e in ECOS {
        a.extend(["--ecosystem", e]);
    }
    a.extend(["--known-exploited", kev, "--out", out]);
    a
}

fn requests(f: &Fixture, log: &str) -> Vec<String> {
    std::fs::read_to_string(f.p(log))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("GET ") || l.starts_with("HEAD "))
        .map(str::to_string)
        .collect()
}

#[test]
fn synced_exports_resume_pack_and_match_with_known_exploited() {
    let f = Fixture::new();
    site(&f);
    let (_srv, url) = serve(&f, "site", &["--cut", "PyPI/all.zip:1000", "--goog-hash"]);
    let kev = format!("{url}/kev.json");
    let mut args = vec!["-v", "--json"];
    args.extend(sync_args(&url, &kev, "db"));
    let r = f.airlock(&args).ok();
    // The cut PyPI download was resumed where it stopped, conditionally on its ETag.
    assert!(r.stderr.contains("resuming download"), "{}", r.stderr);
    let log = requests(&f, "site.http.log");
    let pypi: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("GET /PyPI/all.zip"))
        .collect();
    assert_eq!(pypi.len(), 2, "{log:?}");
    assert!(
        pypi[1].contains("range=bytes=1000-") && pypi[1].contains("if-range=\""),
        "{log:?}"
    );
    // A release is read from its distribution's export.
    assert!(
        log.iter().any(|l| l.starts_with("GET /Debian/all.zip")),
        "{log:?}"
    );
    let j = r.json();
    let eco = |name: &str| {
        j["exports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["export"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(eco("PyPI")["records"], 3, "{j:#}");
    assert_eq!(eco("PyPI")["otherEcosystem"], 1, "the npm record");
    assert_eq!(eco("PyPI")["resumed"], true);
    assert_eq!(
        eco("PyPI")["serverDigests"],
        serde_json::json!(["crc32c", "md5"])
    );
    assert_eq!(eco("npm")["records"], 5);
    assert_eq!(eco("Go")["records"], 2);
    assert_eq!(eco("Debian")["records"], 1);
    assert_eq!(
        eco("Debian")["ecosystems"],
        serde_json::json!({"Debian:12": 1})
    );
    assert_eq!(eco("Debian")["otherEcosystem"], 1, "the Debian:11 record");
    assert_eq!(eco("Alpine")["records"], 1);
    assert_eq!(
        eco("Alpine")["otherEcosystem"],
        1,
        "the Alpine:v3.19 record"
    );
    assert_eq!(j["knownExploited"]["count"], 2);
    // DIR: the zips as published and what was synced.
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.p("db/sources.json")).unwrap()).unwrap();
    assert_eq!(s["_type"], "airlock-vulndb-sources/v1");
    assert!(f.p("db/osv/Debian/all.zip").is_file());
    let sha = f
        .sh("sha256sum site/PyPI/all.zip | cut -d' ' -f1")
        .ok()
        .stdout;
    assert_eq!(s["exports"][2]["export"], "PyPI", "{s:#}");
    assert_eq!(s["exports"][2]["sha256"], sha.trim(), "{s:#}");
    assert!(s["exports"][2]["etag"].as_str().unwrap().starts_with('"'));

    // Nothing changed: only HEAD requests, nothing downloaded.
    let before = requests(&f, "site.http.log").len();
    let mut args = vec!["--json"];
    args.extend(sync_args(&url, &kev, "db"));
    let again = f.airlock(&args).ok().json();
    assert_eq!(again["downloaded"], 0, "{again:#}");
    let after = requests(&f, "site.http.log");
    assert!(
        after[before..].iter().all(|l| l.starts_with("HEAD ")),
        "{:?}",
        &after[before..]
    );
    assert_eq!(after.len() - before, 6);
    // The text form says so.
    let t = f.airlock(&sync_args(&url, &kev, "db")).ok().stdout;
    assert!(
        t.contains("unchanged") && t.contains("known-exploited 2 CVEs"),
        "{t}"
    );

    // Match: the real PYSEC record (aliased to a KEV CVE), the synthetic Debian (KEV) and
    // Alpine advisories.
    let pysec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!(
            "{}/osv-linter/test_data/PYSEC-2023-74.json",
            osv_tools()
        ))
        .unwrap(),
    )
    .unwrap();
    let pkg = pysec["affected"][0]["package"]["name"].as_str().unwrap();
    let listed = pysec["affected"][0]["versions"][0].as_str().unwrap();
    std::fs::write(
        f.p("sbom.json"),
        serde_json::to_vec(&serde_json::json!({
            "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
            "components": [
                {"type": "library", "name": pkg, "version": listed,
                 "purl": format!("pkg:pypi/{pkg}@{listed}")},
                {"type": "library", "name": "hello", "version": "2.10-3",
                 "purl": "pkg:deb/debian/hello@2.10-3?arch=amd64&distro=debian-12",
                 "properties": [{"name": "airlock:source-package", "value": "hello-src"}]},
                {"type": "library", "name": "busybox", "version": "1.36.1-r29",
                 "purl": "pkg:apk/alpine/busybox@1.36.1-r29?arch=x86_64&distro=alpine-3.20.3"}]
        }))
        .unwrap(),
    )
    .unwrap();
    let m = f
        .airlock(&[
            "--json",
            "vulndb",
            "match",
            "--sbom",
            "sbom.json",
            "--db",
            "db",
        ])
        .ok()
        .json();
    let found: std::collections::BTreeMap<String, bool> = m["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                x["knownExploited"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(found.get("PYSEC-2023-74"), Some(&true), "{m:#}");
    assert_eq!(found.get("DEBIAN-CVE-2099-0001"), Some(&true), "{m:#}");
    assert_eq!(found.get("ALPINE-CVE-2099-0002"), Some(&false), "{m:#}");
    assert!(!found.contains_key("DEBIAN-CVE-2099-0009"), "Debian 11's");
    assert_eq!(m["database"]["advisories"], 12, "{m:#}");

    // Pack: the header names every source and the catalog; the appliance shows them.
    let p = f
        .airlock(&[
            "--json",
            "vulndb",
            "pack",
            "db",
            "--key",
            "keys/signer.key",
            "--out",
            "vdb",
        ])
        .ok()
        .json();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    airlockd(
        &f,
        &[
            "import",
            "--data",
            "data",
            p["volumes"][0]["path"].as_str().unwrap(),
        ],
    )
    .ok();
    let l = airlockd(&f, &["--json", "vuln", "list", "--data", "data"])
        .ok()
        .json();
    let v = &l["vulndb"];
    assert_eq!(v["records"], 12, "{l:#}");
    let sources = v["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 5, "{l:#}");
    let pypi = sources.iter().find(|s| s["export"] == "PyPI").unwrap();
    assert_eq!(pypi["records"], 3);
    assert_eq!(pypi["url"], format!("{url}/PyPI/all.zip"));
    assert_eq!(pypi["sha256"], sha.trim());
    assert!(pypi["retrieved"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["knownExploited"]["count"], 2);
    assert_eq!(v["knownExploited"]["catalogVersion"], "2026.11.30");

    // Another release of an export already synced: counted again, nothing downloaded.
    let mut args = vec!["--json"];
    args.extend(sync_args(&url, &kev, "db"));
    args.extend(["--ecosystem", "Debian:11"]);
    let more = f.airlock(&args).ok().json();
    assert_eq!(more["downloaded"], 0, "{more:#}");
    let deb = more["exports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["export"] == "Debian")
        .unwrap();
    assert_eq!(
        deb["ecosystems"],
        serde_json::json!({"Debian:11": 1, "Debian:12": 1})
    );
    assert_eq!(deb["otherEcosystem"], 0);

    // A synced file changed afterwards is refused by pack, naming it.
    f.sh("printf x >> db/osv/Go/all.zip").ok();
    f.airlock(&[
        "vulndb",
        "pack",
        "db",
        "--key",
        "keys/signer.key",
        "--out",
        "vdb2",
    ])
    .fails()
    .says(&["osv/Go/all.zip", "changed since it was synced"]);
}

#[test]
fn faulty_exports_and_catalogs_are_refused_without_output() {
    let f = Fixture::new();
    site(&f);
    let (_srv, url) = serve(&f, "bad", &["--lie-length", "PyPI/all.zip:100"]);
    let (_good, good) = serve(&f, "site", &["--bad-goog-hash", "Go/all.zip"]);
    let n = std::cell::Cell::new(0);
    let refused = |source: &str, eco: &str, kev: Option<&str>, says: &[&str]| {
        n.set(n.get() + 1);
        let out = format!("out-{}", n.get());
        let mut a = vec![
            "vulndb",
            "sync",
            "--source",
            source,
            "--ecosystem",
            eco,
            "--retries",
            "0",
            "--out",
            &out,
        ];
        if let Some(k) = kev {
            a.extend(["--known-exploited", k]);
        }
        let r = f.airlock(&a).fails();
        assert_eq!(r.code, 1, "{}", r.stderr);
        r.says(says);
        assert!(!f.p(&format!("{out}/sources.json")).exists());
        assert!(!f.p(&format!("{out}/osv")).exists());
        f.airlock(&[
            "vulndb",
            "pack",
            &out,
            "--key",
            "keys/signer.key",
            "--out",
            "vdb",
        ])
        .fails()
        .says(&["interrupted"]);
    };
    refused(&url, "npm", None, &["npm", "CRC-32"]);
    refused(&url, "Go", None, &["Go", "GO-1.json", "ratio over 200:1"]);
    refused(&url, "crates.io", None, &["RUSTSEC-1.json", "declares"]);
    refused(&url, "PyPI", None, &["PyPI", "bytes"]);
    refused(&good, "Go", None, &["x-goog-hash md5"]);
    let kev = format!("{url}/kev.json");
    refused(
        &good,
        "npm",
        Some(&kev),
        &["known-exploited", "CVE-99", "not a CVE"],
    );
    // A member that is not an OSV record, served honestly.
    let (_bad2, bad2) = serve(&f, "bad", &[]);
    refused(&bad2, "PyPI", None, &["PYSEC-1.json", "not an OSV record"]);
    // Bad input is named before anything is downloaded.
    f.airlock(&["vulndb", "sync", "--ecosystem", "Maven", "--out", "x"])
        .fails()
        .says(&["Maven", "no version order"]);
    f.airlock(&["vulndb", "sync", "--ecosystem", "../PyPI", "--out", "x"])
        .fails()
        .says(&["not an OSV ecosystem name"]);
    // One sync at a time per directory.
    std::fs::create_dir_all(f.p("z/.partial")).unwrap();
    let _held = Background::start(
        f.path(),
        "python3",
        &[
            "-c",
            "import fcntl, time; f = open('z/.partial/lock', 'w'); fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(120)",
        ],
        &f.p("lock.log"),
    );
    f.airlock(&[
        "vulndb",
        "sync",
        "--source",
        &good,
        "--ecosystem",
        "PyPI",
        "--out",
        "z",
    ])
    .fails()
    .says(&["another `airlock vulndb sync` is writing it"]);
    // A server without the ecosystem: the status is named.
    let r = f
        .airlock(&[
            "vulndb",
            "sync",
            "--source",
            &good,
            "--ecosystem",
            "crates.io",
            "--out",
            "y",
        ])
        .fails();
    r.says(&["crates.io", "404"]);
}

#[test]
fn the_cve_ceiling_refuses_known_exploited_even_when_waived() {
    let f = Fixture::new();
    site(&f);
    let (_srv, url) = serve(&f, "site", &[]);
    // The image of tests/e2e/vuln.rs: hello 2.10-3 from source hello-src on Debian 12.
    f.sh(
        r#"
mkdir -p src/dpkg src/etc
printf 'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nSource: hello-src\nVersion: 2.10-3\nMaintainer: Hello Maintainers <hello@example.org>\n' > src/dpkg/status
printf 'ID=debian\nVERSION_ID="12"\n' > src/etc/os-release
umoci init --layout layouts/app
umoci new --image layouts/app:v1
umoci insert --image layouts/app:v1 src/dpkg /var/lib/dpkg >/dev/null
umoci insert --image layouts/app:v1 src/etc /etc >/dev/null
umoci config --image layouts/app:v1 --architecture amd64 --os linux >/dev/null
umoci gc --layout layouts/app
cat > app.yaml <<YAML
apiVersion: airlock/v1
kind: Bundle
metadata: {name: app, version: "1.0.0", channel: stable}
spec:
  images:
    - ref: oci:./layouts/app:v1
      name: registry.example/acme/app:v1
  waivers:
    - artifact: registry.example/acme/app:v1
      vulnerability: CVE-2099-0001
      reason: the greeting is never shown to users
      approvedBy: Alice Example
      expires: "2099-01-01T00:00:00Z"
YAML
"#,
    )
    .ok();
    let kev = format!("{url}/kev.json");
    f.airlock(&[
        "vulndb",
        "sync",
        "--source",
        &url,
        "--ecosystem",
        "Debian:12",
        "--known-exploited",
        &kev,
        "--out",
        "db",
    ])
    .ok();
    let p = f
        .airlock(&[
            "--json",
            "vulndb",
            "pack",
            "db",
            "--key",
            "keys/signer.key",
            "--out",
            "vdb",
        ])
        .ok()
        .json();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    airlockd(
        &f,
        &[
            "import",
            "--data",
            "data",
            p["volumes"][0]["path"].as_str().unwrap(),
        ],
    )
    .ok();
    let policy =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/cve-ceiling.rego");
    let vol = f.pack_manifest("app.yaml", "out", &[]);
    let r = airlockd(
        &f,
        &[
            "--json",
            "import",
            "--data",
            "data",
            "--policy",
            policy.to_str().unwrap(),
            &vol[0],
        ],
    )
    .fails();
    let reason = r.json()["volumes"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("DEBIAN-CVE-2099-0001 in hello-src 2.10-3 is known to be exploited"),
        "{reason}"
    );
    assert!(!reason.contains("has no waiver"), "waived: {reason}");
}
