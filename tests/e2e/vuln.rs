//! `airlock vulndb match` against references: osv.dev's real OSV records (shipped as test data
//! in PyPI's `osv` package, installed without its dependencies) must parse, and matching a
//! generated SBOM against generated Debian and PyPI advisories must give exactly the
//! (component, advisory) pairs of OSV's published evaluation algorithm, written here in Python
//! with `dpkg --compare-versions` and `packaging.version` as the version orders.

use std::collections::BTreeSet;
use std::path::PathBuf;

use airlock_e2e::*;

fn osv_test_data() -> PathBuf {
    let py = python();
    let out = run_in(
        std::path::Path::new("/"),
        &py,
        &[
            "-c",
            "import importlib.util, os; s = importlib.util.find_spec('osv'); print(os.path.dirname(s.origin))",
        ],
    )
    .ok()
    .stdout;
    let dir = PathBuf::from(out.trim()).join("osv-schema/tools");
    assert!(
        dir.is_dir(),
        "{} missing: scripts/peers.sh installs PyPI `osv` (no deps) into the test venv",
        dir.display()
    );
    dir
}

#[test]
fn real_osv_records_parse_and_match() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The records osv-schema ships: converted GHSA records and the linter's samples (three
    // of which are broken on purpose: no package, no introduced, repeated versions).
    let data = osv_test_data();
    sh(
        d,
        &format!(
            "mkdir db && cp {0}/ghsa/testdata/*.osv.json {0}/osv-linter/test_data/*.json db/",
            data.display()
        ),
    )
    .ok();
    let n_files = std::fs::read_dir(d.join("db")).unwrap().count();
    assert!(n_files >= 12, "{n_files}");
    // An SBOM naming a package version the PYSEC sample affects.
    let pysec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("db/PYSEC-2023-74.json")).unwrap()).unwrap();
    let pkg = pysec["affected"][0]["package"]["name"].as_str().unwrap();
    let listed = pysec["affected"][0]["versions"][0].as_str().unwrap();
    std::fs::write(
        d.join("sbom.json"),
        serde_json::to_vec(&serde_json::json!({
            "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
            "components": [{"type": "library", "name": pkg, "version": listed,
                            "purl": format!("pkg:pypi/{pkg}@{listed}")}]
        }))
        .unwrap(),
    )
    .unwrap();
    let j = airlock(
        d,
        &[
            "--json",
            "vulndb",
            "match",
            "--sbom",
            "sbom.json",
            "--db",
            "db",
        ],
    )
    .ok()
    .json();
    assert_eq!(j["database"]["files"], n_files as u64);
    let ids: Vec<&str> = j["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"PYSEC-2023-74"), "{j:#}");
    // Every real record parsed but those with structural faults, which are named.
    for r in j["database"]["refused"].as_array().unwrap() {
        let r = r.as_str().unwrap();
        assert!(
            r.starts_with("nopackage-") || r.starts_with("nondistinct-"),
            "{r}"
        );
    }
    assert!(j["database"]["advisories"].as_u64().unwrap() as usize >= n_files - 3);
}

/// A deterministic pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const DEB: &[&str] = &[
    "1.0-1",
    "1.0-2",
    "1.1~rc1-1",
    "1.1-1",
    "1:0.5-1",
    "2.0-1+deb12u1",
    "2.0-1+deb12u2",
    "2.0-1",
    "0.9~beta-3",
];
const PYPI: &[&str] = &[
    "1.0",
    "1.0.post1",
    "1.1a1",
    "1.1",
    "2.0.dev1",
    "2.0",
    "10.0",
    "1.0.0",
    "0.9rc2",
];

/// The reference: OSV's evaluation algorithm, in Python, over the same files.
const REFERENCE: &str = r#"
import json, sys, subprocess, functools, os, re
from packaging.version import Version
sbom, dbdir = sys.argv[1], sys.argv[2]
def dpkg_cmp(a, b):
    if a == b: return 0
    if subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0: return -1
    return 0 if subprocess.run(["dpkg", "--compare-versions", a, "eq", b]).returncode == 0 else 1
def py_cmp(a, b):
    x, y = Version(a), Version(b)
    return (x > y) - (x < y)
def pep503(n): return re.sub(r"[-_.]+", "-", n).lower()
def affected(cmp, v, a):
    if any(cmp(x, v) == 0 for x in a.get("versions", [])): return True
    for r in a.get("ranges", []):
        if r["type"] not in ("ECOSYSTEM", "SEMVER"): continue
        evs = [list(e.items())[0] for e in r["events"]]
        key = functools.cmp_to_key(lambda p, q: -1 if p[1] == "0" and q[1] != "0" else (1 if q[1] == "0" and p[1] != "0" else (0 if p[1] == q[1] == "0" else cmp(p[1], q[1]))))
        vuln = False
        for k, ev in sorted(evs, key=key):
            if k == "introduced" and (ev == "0" or cmp(v, ev) >= 0): vuln = True
            elif k == "fixed" and cmp(v, ev) >= 0: vuln = False
            elif k == "last_affected" and cmp(v, ev) > 0: vuln = False
        if vuln: return True
    return False
advs = [json.load(open(os.path.join(dbdir, f))) for f in sorted(os.listdir(dbdir))]
pairs = set()
for c in json.load(open(sbom))["components"]:
    purl = c["purl"]
    if purl.startswith("pkg:deb/"):
        eco, cmp = "Debian:12", dpkg_cmp
        name = dict(q.split("=") for q in purl.split("?")[1].split("&"))["upstream"]
    else:
        eco, cmp, name = "PyPI", py_cmp, pep503(c["name"])
    for adv in advs:
        for a in adv["affected"]:
            p = a["package"]
            n = pep503(p["name"]) if eco == "PyPI" else p["name"]
            if p["ecosystem"] == eco and n == name and affected(cmp, c["version"], a):
                pairs.add((purl, adv["id"]))
print(json.dumps(sorted(pairs)))
"#;

#[test]
fn matching_equals_osvs_published_algorithm_on_generated_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("db")).unwrap();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    // Advisories: random ranges and listed versions over six Debian source packages and six
    // PyPI projects (names written in mixed PEP 503 spellings).
    for i in 0..120 {
        let debian = i % 2 == 0;
        let (eco, versions, name) = if debian {
            ("Debian:12", DEB, format!("src{}", rng.next() % 6))
        } else {
            (
                "PyPI",
                PYPI,
                ["Proj_A", "proj-b", "proj.c", "PROJ-D", "proj_e", "Proj-F"]
                    [(rng.next() % 6) as usize]
                    .to_string(),
            )
        };
        let mut ranges = Vec::new();
        for _ in 0..(rng.next() % 3) {
            let mut events = vec![
                serde_json::json!({"introduced": if rng.next().is_multiple_of(3) {
                    "0"
                } else {
                    rng.pick(versions)
                }}),
            ];
            match rng.next() % 3 {
                0 => events.push(serde_json::json!({"fixed": rng.pick(versions)})),
                1 => events.push(serde_json::json!({"last_affected": rng.pick(versions)})),
                _ => {}
            }
            if rng.next().is_multiple_of(4) {
                events.push(serde_json::json!({"introduced": rng.pick(versions)}));
                events.push(serde_json::json!({"fixed": rng.pick(versions)}));
            }
            ranges.push(serde_json::json!({"type": "ECOSYSTEM", "events": events}));
        }
        let listed: Vec<&str> = (0..(rng.next() % 3)).map(|_| rng.pick(versions)).collect();
        let rec = serde_json::json!({
            "schema_version": "1.6.0", "id": format!("TEST-{i:04}"), "modified": "2026-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": eco, "name": name}, "ranges": ranges, "versions": listed}]
        });
        std::fs::write(
            d.join(format!("db/TEST-{i:04}.json")),
            serde_json::to_vec(&rec).unwrap(),
        )
        .unwrap();
    }
    // Components: every Debian version of every source package (through a binary package
    // named differently), every PyPI version of every project.
    let mut comps = Vec::new();
    for s in 0..6 {
        for v in DEB {
            comps.push(serde_json::json!({"type": "library", "name": format!("bin{s}"), "version": v,
                "purl": format!("pkg:deb/debian/bin{s}@{}?arch=amd64&distro=debian-12&upstream=src{s}",
                    v.replace(':', "%3A").replace('+', "%2B"))}));
        }
    }
    for p in ["proj-a", "proj-b", "proj-c", "proj-d", "proj-e", "proj-f"] {
        for v in PYPI {
            comps.push(
                serde_json::json!({"type": "library", "name": p, "version": v,
                "purl": format!("pkg:pypi/{p}@{v}")}),
            );
        }
    }
    std::fs::write(
        d.join("sbom.json"),
        serde_json::to_vec(&serde_json::json!({
            "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": comps
        }))
        .unwrap(),
    )
    .unwrap();

    let j = airlock(
        d,
        &[
            "--json",
            "vulndb",
            "match",
            "--sbom",
            "sbom.json",
            "--db",
            "db",
        ],
    )
    .ok()
    .json();
    assert_eq!(j["undecided"], 0, "{j:#}");
    let ours: BTreeSet<(String, String)> = j["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["purl"].as_str().unwrap().to_string(),
                m["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let out = run_in(d, python(), &["-c", REFERENCE, "sbom.json", "db"])
        .ok()
        .stdout;
    let theirs: BTreeSet<(String, String)> = serde_json::from_str::<Vec<(String, String)>>(&out)
        .unwrap()
        .into_iter()
        .collect();
    assert!(
        theirs.len() > 50,
        "the data exercises matching: {}",
        theirs.len()
    );
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "only airlock: {only_ours:?}\nonly the reference: {only_theirs:?}"
    );
    // Severity filter and the table form.
    let t = airlock(d, &["vulndb", "match", "--sbom", "sbom.json", "--db", "db"])
        .ok()
        .stdout;
    assert!(t.contains("TEST-") && t.contains(" match(es) in "), "{t}");
    // A file that is not an SBOM is refused, naming it.
    std::fs::write(d.join("bad.json"), b"{\"bomFormat\": \"SPDX\"}").unwrap();
    airlock(d, &["vulndb", "match", "--sbom", "bad.json", "--db", "db"])
        .fails()
        .says(&["bad.json", "not a CycloneDX document"]);
}

/// An image whose dpkg database holds `hello 2.10-3` (source `hello-src`) on Debian 12.
fn vulnerable_image(f: &Fixture) {
    f.sh(
        r#"
mkdir -p src/dpkg src/etc
printf 'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nSource: hello-src\nVersion: 2.10-3\nMaintainer: Hello Maintainers <hello@example.org>\n' \
  > src/dpkg/status
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
YAML
"#,
    )
    .ok();
}

/// A directory of OSV records: one Debian advisory for `hello-src`, fixed in `fixed`.
fn osv_dir(f: &Fixture, dir: &str, fixed: &str) {
    std::fs::create_dir_all(f.p(dir)).unwrap();
    let rec = serde_json::json!({
        "schema_version": "1.6.0", "id": "DEBIAN-CVE-2099-0001", "modified": "2026-11-30T00:00:00Z",
        "aliases": ["CVE-2099-0001"], "summary": "hello prints the wrong greeting",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "hello-src"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
    });
    std::fs::write(
        f.p(&format!("{dir}/DEBIAN-CVE-2099-0001.json")),
        serde_json::to_vec(&rec).unwrap(),
    )
    .unwrap();
    // A record of an ecosystem airlock does not order: counted and dropped at pack.
    std::fs::write(
        f.p(&format!("{dir}/MAVEN-1.json")),
        br#"{"id": "MAVEN-1", "affected": [{"package": {"ecosystem": "Maven", "name": "a:b"}, "versions": ["1"]}]}"#,
    )
    .unwrap();
}

#[test]
fn a_vulndb_bundle_is_matched_against_served_sboms_and_a_newer_one_rematches() {
    let f = Fixture::new();
    vulnerable_image(&f);
    const IMAGE: &str = "registry.example/acme/app:v1";
    let app = f.pack_manifest("app.yaml", "out", &[]);
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    airlockd(&f, &["import", "--data", "data", &app[0]]).ok();
    // No database yet: said so, exit 1.
    airlockd(&f, &["vuln", "list", "--data", "data"])
        .fails()
        .says(&["no vulnerability database has been imported"]);

    // Database 1: hello-src fixed in 2.10-4, so 2.10-3 is affected.
    osv_dir(&f, "osv1", "2.10-4");
    let p = f
        .airlock(&[
            "--json",
            "vulndb",
            "pack",
            "osv1",
            "--key",
            "keys/signer.key",
            "--out",
            "vdb1",
            "--sequence",
            "1",
        ])
        .ok()
        .json();
    let v1 = p["volumes"][0]["path"].as_str().unwrap().to_string();
    let i = f.airlock(&["--json", "inspect", &v1]).ok().json();
    assert_eq!(i["manifest"]["channel"], "vulndb", "{i}");
    airlockd(&f, &["import", "--data", "data", &v1]).ok();
    let l = airlockd(&f, &["--json", "vuln", "list", "--data", "data"])
        .ok()
        .json();
    assert_eq!(
        l["vulndb"]["records"], 1,
        "the Maven record was dropped: {l}"
    );
    let rows = l["vulnerabilities"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{l:#}");
    assert_eq!(rows[0]["artifact"], IMAGE);
    assert_eq!(rows[0]["id"], "DEBIAN-CVE-2099-0001");
    assert_eq!(rows[0]["package"], "hello-src");
    assert_eq!(rows[0]["version"], "2.10-3");
    assert_eq!(rows[0]["fixed"], serde_json::json!(["2.10-4"]));
    assert_eq!(rows[0]["fixAvailable"], true);
    // Severity from the CVSS vector, computed: 9.8 is critical.
    assert_eq!(rows[0]["severity"], "critical");
    assert_eq!(rows[0]["cvssScore"], 9.8);
    let high = airlockd(
        &f,
        &[
            "--json",
            "vuln",
            "list",
            "--data",
            "data",
            "--min-severity",
            "critical",
        ],
    )
    .ok()
    .json();
    assert_eq!(high["vulnerabilities"].as_array().unwrap().len(), 1);
    // The same through the connected side's preview, from the SBOM the appliance shows.
    airlockd(
        &f,
        &[
            "sbom",
            "show",
            IMAGE,
            "--data",
            "data",
            "--out",
            "app.cdx.json",
        ],
    )
    .ok();
    let pre = f
        .airlock(&[
            "--json",
            "vulndb",
            "match",
            "--sbom",
            "app.cdx.json",
            "--db",
            "osv1",
        ])
        .ok()
        .json();
    assert_eq!(pre["matches"][0]["id"], "DEBIAN-CVE-2099-0001");
    // Table and CSV forms; an unknown artifact is named.
    let t = airlockd(&f, &["vuln", "list", "--data", "data"])
        .ok()
        .stdout;
    assert!(
        t.contains("DEBIAN-CVE-2099-0001") && t.contains("fixed in 2.10-4"),
        "{t}"
    );
    let csv = airlockd(&f, &["vuln", "list", "--data", "data", "--format", "csv"])
        .ok()
        .stdout;
    assert!(csv.starts_with("artifact,id,"), "{csv}");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    // The last column says whether the advisory is known to be exploited; this database was
    // packed without CISA's catalog.
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",fix_available,known_exploited")
            && csv.lines().nth(1).unwrap().ends_with(",true,false"),
        "{csv}"
    );
    airlockd(
        &f,
        &[
            "vuln",
            "list",
            "--data",
            "data",
            "--artifact",
            "registry.example/x:v1",
        ],
    )
    .fails()
    .says(&["registry.example/x:v1", "not a served image"]);

    // Database 2 says 2.10-3 already had the fix: nothing is affected any more.
    osv_dir(&f, "osv2", "2.10-1");
    let p = f
        .airlock(&[
            "--json",
            "vulndb",
            "pack",
            "osv2",
            "--key",
            "keys/signer.key",
            "--out",
            "vdb2",
            "--sequence",
            "2",
        ])
        .ok()
        .json();
    let v2 = p["volumes"][0]["path"].as_str().unwrap().to_string();
    airlockd(&f, &["import", "--data", "data", &v2]).ok();
    let l = airlockd(&f, &["--json", "vuln", "list", "--data", "data"])
        .ok()
        .json();
    assert_eq!(l["vulnerabilities"], serde_json::json!([]), "{l:#}");
    // Each import matched again and recorded the difference in the audit log: the first
    // database made the pair vulnerable, the second resolved it.
    let audit = airlockd(&f, &["--json", "audit", "show", "--data", "data"])
        .ok()
        .json();
    let rematched: Vec<&serde_json::Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "vulnerabilities-rematched")
        .map(|e| &e["data"])
        .collect();
    assert_eq!(rematched.len(), 2, "{audit:#}");
    assert_eq!(rematched[0]["newlyVulnerableCount"], 1);
    assert_eq!(
        rematched[0]["newlyVulnerable"][0]["id"],
        "DEBIAN-CVE-2099-0001"
    );
    assert_eq!(rematched[0]["newlyVulnerable"][0]["artifact"], IMAGE);
    assert_eq!(rematched[0]["newlyVulnerable"][0]["severity"], "critical");
    assert_eq!(rematched[1]["newlyVulnerableCount"], 0);
    assert_eq!(rematched[1]["resolvedCount"], 1);
    assert_eq!(rematched[1]["resolved"][0]["id"], "DEBIAN-CVE-2099-0001");
    airlockd(&f, &["audit", "verify", "--data", "data"]).ok();
    // An older database cannot come back: the channel's rollback protection.
    osv_dir(&f, "osv0", "2.10-5");
    let p = f
        .airlock(&[
            "--json",
            "vulndb",
            "pack",
            "osv0",
            "--key",
            "keys/signer.key",
            "--out",
            "vdb0",
            "--sequence",
            "1",
        ])
        .ok()
        .json();
    let v0 = p["volumes"][0]["path"].as_str().unwrap().to_string();
    airlockd(&f, &["import", "--data", "data", &v0])
        .fails()
        .says(&["rollback"]);
}

#[test]
fn the_cve_ceiling_policy_refuses_a_vulnerable_image_unless_waived() {
    let f = Fixture::new();
    vulnerable_image(&f);
    const IMAGE: &str = "registry.example/acme/app:v1";
    let policy =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/cve-ceiling.rego");
    let policy = policy.to_str().unwrap();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    osv_dir(&f, "osv1", "2.10-4");
    let p = f
        .airlock(&[
            "--json",
            "vulndb",
            "pack",
            "osv1",
            "--key",
            "keys/signer.key",
            "--out",
            "vdb1",
        ])
        .ok()
        .json();
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

    // The signed manifest carries the image's components for the policy.
    let waive = |name: &str, expires: &str| {
        f.sh(&format!(
            "sed 's/version: \"1.0.0\"/version: \"{name}\"/' app.yaml > {name}.yaml && cat >> {name}.yaml <<'YAML'
  waivers:
    - artifact: {IMAGE}
      vulnerability: CVE-2099-0001
      reason: the greeting is never shown to users
      approvedBy: Alice Example
      expires: \"{expires}\"
YAML"
        ))
        .ok();
    };
    let import = |manifest: &str, seq: &str| {
        let vol = f.pack_manifest(manifest, &format!("out-{seq}"), &["--sequence", seq]);
        let i = f.airlock(&["--json", "inspect", &vol[0]]).ok().json();
        let sboms = i["manifest"]["sboms"].as_array().unwrap().clone();
        assert_eq!(sboms[0]["artifact"], IMAGE);
        assert!(
            sboms[0]["components"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["sourcePackage"] == "hello-src"),
            "{sboms:?}"
        );
        airlockd(
            &f,
            &[
                "--json", "import", "--data", "data", "--policy", policy, &vol[0],
            ],
        )
    };
    // No waiver: refused, the advisory named.
    let r = import("app.yaml", "10").fails();
    let reason = r.json()["volumes"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains(
            "critical DEBIAN-CVE-2099-0001 in hello-src 2.10-3 (fixed in 2.10-4) has no waiver"
        ),
        "{reason}"
    );
    // A waiver whose time has passed does not count.
    waive("expired", "2020-01-01T00:00:00Z");
    let r = import("expired.yaml", "20").fails();
    assert!(r.stdout.contains("has no waiver"), "{}", r.stdout);
    // A signed, unexpired waiver naming the CVE alias admits it.
    waive("waived", "2099-01-01T00:00:00Z");
    let r = import("waived.yaml", "30").ok();
    assert_eq!(r.json()["ok"], true, "{}", r.stdout);
    // Waived is not fixed: the served image still lists the vulnerability.
    airlockd(&f, &["--json", "vuln", "list", "--data", "data"])
        .ok()
        .says(&["DEBIAN-CVE-2099-0001"]);
}
