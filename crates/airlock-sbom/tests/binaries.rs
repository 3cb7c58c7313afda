//! Go build information and `cargo auditable` crate lists, read from executables that the
//! real toolchains build here, compared with what the toolchains themselves say
//! (`go version -m`, `go version`) and with syft.
//!
//! Peers (installed by `scripts/peers.sh`): the Debian package `golang-go`, `cargo-auditable`
//! in `<workspace>/target/tools/bin`, and syft in the test venv (`AIRLOCK_TEST_VENV`, default
//! `<workspace>/.venv`). Nothing needs the network: the Go program's dependencies are
//! vendored and the Rust program's are path dependencies.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_sbom::files::apply_layer;
use airlock_sbom::{catalog, Ecosystem, Files, Limits, Package};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn go(dir: &Path) -> Command {
    if Command::new("go").arg("version").output().is_err() {
        panic!("`go` is missing: install the Debian package golang-go (scripts/peers.sh does)");
    }
    let mut c = Command::new("go");
    c.env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=vendor -buildvcs=false")
        .env("GO111MODULE", "on")
        .env("GOENV", "off")
        .env("CGO_ENABLED", "0");
    c
}

/// Builds a Go program with two vendored dependencies (one of them replaced by another
/// module) and a local directory replacement into `out`; returns its path.
fn build_go(dir: &Path, out: &Path) -> PathBuf {
    let src = dir.join("hello");
    write(
        &dir.join("local/go.mod"),
        "module example.com/local\n\ngo 1.18\n",
    );
    let local = "package local\n\nfunc Name() string { return \"local\" }\n";
    write(&dir.join("local/local.go"), local);
    write(
        &src.join("go.mod"),
        "module example.com/hello\n\ngo 1.18\n\nrequire (\n\texample.com/dep v1.2.3\n\
         \texample.com/local v0.0.0\n\texample.com/old v1.0.0\n)\n\n\
         replace example.com/old v1.0.0 => example.com/new v1.1.0\n\n\
         replace example.com/local v0.0.0 => ../local\n",
    );
    write(
        &src.join("vendor/example.com/dep/dep.go"),
        "package dep\n\nfunc Name() string { return \"dep\" }\n",
    );
    write(
        &src.join("vendor/example.com/old/old.go"),
        "package old\n\nfunc Name() string { return \"new\" }\n",
    );
    write(&src.join("vendor/example.com/local/local.go"), local);
    write(
        &src.join("vendor/modules.txt"),
        "# example.com/dep v1.2.3\n## explicit\nexample.com/dep\n\
         # example.com/local v0.0.0 => ../local\n## explicit\nexample.com/local\n\
         # example.com/old v1.0.0 => example.com/new v1.1.0\n## explicit\nexample.com/old\n",
    );
    write(
        &src.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/dep\"\n\t\"example.com/local\"\n\
         \t\"example.com/old\"\n)\n\nfunc main() { fmt.Println(dep.Name(), old.Name(), local.Name()) }\n",
    );
    let bin = out.join("hello");
    run(go(dir)
        .current_dir(&src)
        .args(["build", "-o"])
        .arg(&bin)
        .arg("."));
    bin
}

/// What `go version -m` says: the main module, the dependencies with replacements applied.
fn go_version_m(dir: &Path, bin: &Path) -> BTreeSet<(String, String)> {
    let text = run(go(dir).args(["version", "-m"]).arg(bin));
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.trim_start_matches('\t').split('\t').collect();
        match f.as_slice() {
            ["mod" | "dep", path, version, ..] => out.push((path.to_string(), version.to_string())),
            ["=>", path, version, ..] => {
                *out.last_mut().expect("a replacement follows a module") =
                    (path.to_string(), version.to_string())
            }
            _ => {}
        }
    }
    out.into_iter().collect()
}

fn cargo_auditable() -> PathBuf {
    let bin = workspace().join("target/tools/bin/cargo-auditable");
    assert!(
        bin.is_file(),
        "{} is missing: run `source scripts/peers.sh && airlock_install_cargo_auditable` \
         (scripts/test.sh installs it)",
        bin.display()
    );
    bin
}

/// Builds, with `cargo auditable`, a crate `app` 1.2.0 with a path dependency `helper` 0.3.1
/// and a build dependency `gen` 0.1.0 (used by its build script) into `out`.
fn build_rust(dir: &Path, out: &Path) -> PathBuf {
    let tool = cargo_auditable();
    for (name, version) in [("helper", "0.3.1"), ("gen", "0.1.0")] {
        write(
            &dir.join(format!("{name}/Cargo.toml")),
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\n\
                 [workspace]\n"
            ),
        );
        write(
            &dir.join(format!("{name}/src/lib.rs")),
            &format!("pub fn name() -> &'static str {{ \"{name}\" }}\n"),
        );
    }
    write(
        &dir.join("app/Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"1.2.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nhelper = { path = \"../helper\" }\n\n\
         [build-dependencies]\ngen = { path = \"../gen\" }\n\n[workspace]\n",
    );
    write(
        &dir.join("app/build.rs"),
        "fn main() { println!(\"cargo:rustc-env=GEN={}\", gen::name()); }\n",
    );
    write(
        &dir.join("app/src/main.rs"),
        "fn main() { println!(\"{} {}\", helper::name(), env!(\"GEN\")); }\n",
    );
    let target = dir.join("target");
    run(Command::new(&tool)
        .current_dir(dir.join("app"))
        .args(["auditable", "build", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET"));
    let bin = out.join("app");
    std::fs::copy(target.join("debug/app"), &bin).unwrap();
    bin
}

fn set(pkgs: &[Package], eco: Ecosystem) -> BTreeSet<(String, String)> {
    pkgs.iter()
        .filter(|p| p.ecosystem == eco)
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn go_modules_and_stdlib_match_go_version_m() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let bin = build_go(tmp.path(), &root.join("usr/local/bin").tap_mkdir());
    let files = Files::from_dir(&root, &Limits::default()).unwrap();
    assert_eq!(files.warnings().count(), 0);
    let pkgs = catalog(&files).unwrap();
    let mut want = go_version_m(tmp.path(), &bin);
    let version = run(go(tmp.path()).arg("version"));
    // `go version go1.19.8 linux/amd64`
    let go_version = version.split_whitespace().nth(2).unwrap().to_string();
    want.insert(("stdlib".into(), go_version.clone()));
    assert_eq!(set(&pkgs, Ecosystem::Go), want);
    // The replacements are what is reported, not the modules they replace.
    assert!(want.contains(&("example.com/new".into(), "v1.1.0".into())));
    assert!(want.contains(&("../local".into(), "(devel)".into())));
    assert!(want.contains(&("example.com/hello".into(), "(devel)".into())));
    assert!(pkgs.iter().all(|p| p.location == "usr/local/bin/hello"));
    // purls as syft writes them for module paths and the standard library.
    let distro = airlock_sbom::Distro::default();
    let purls: BTreeSet<String> = pkgs
        .iter()
        .map(|p| airlock_sbom::cyclonedx::purl(p, &distro))
        .collect();
    assert!(
        purls.contains("pkg:golang/example.com/dep@v1.2.3"),
        "{purls:?}"
    );
    let stdlib = format!("pkg:golang/stdlib@{}", go_version.trim_start_matches("go"));
    assert!(purls.contains(&stdlib), "{purls:?}");
}

#[test]
fn rust_runtime_crates_are_reported_and_build_crates_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let bin = build_rust(tmp.path(), &root.join("usr/bin").tap_mkdir());
    // The embedded list has all three; the build dependency is marked as such.
    let data = std::fs::read(&bin).unwrap();
    let info = airlock_sbom::binary::extract("app", &data);
    let all: BTreeSet<(String, bool)> = info
        .crates
        .iter()
        .map(|c| (c.name.clone(), c.runtime))
        .collect();
    let expect: BTreeSet<(String, bool)> = [("app", true), ("helper", true), ("gen", false)]
        .iter()
        .map(|(n, r)| (n.to_string(), *r))
        .collect();
    assert_eq!(all, expect);
    assert!(info.crates.iter().any(|c| c.name == "app" && c.root));
    let files = Files::from_dir(&root, &Limits::default()).unwrap();
    let pkgs = catalog(&files).unwrap();
    assert_eq!(
        set(&pkgs, Ecosystem::Cargo),
        pairs(&[("app", "1.2.0"), ("helper", "0.3.1")])
    );
    assert!(pkgs.iter().all(|p| p.location == "usr/bin/app"));
    let distro = airlock_sbom::Distro::default();
    let purls: BTreeSet<String> = pkgs
        .iter()
        .map(|p| airlock_sbom::cyclonedx::purl(p, &distro))
        .collect();
    assert_eq!(
        purls,
        BTreeSet::from(["pkg:cargo/app@1.2.0", "pkg:cargo/helper@0.3.1"].map(String::from))
    );
}

#[test]
fn go_modules_and_rust_crates_match_syft() {
    let venv = std::env::var_os("AIRLOCK_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv"));
    let syft = venv.join("bin/syft");
    assert!(
        syft.is_file(),
        "{} is missing: set AIRLOCK_TEST_VENV or run scripts/peers.sh",
        syft.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let bin_dir = root.join("bin").tap_mkdir();
    build_go(tmp.path(), &bin_dir);
    build_rust(tmp.path(), &bin_dir);
    let files = Files::from_dir(&root, &Limits::default()).unwrap();
    let pkgs = catalog(&files).unwrap();
    let json = run(Command::new(&syft)
        .args(["scan", "-q", "-o", "json"])
        .arg(format!("dir:{}", root.display()))
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false"));
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut syft_go = BTreeSet::new();
    let mut syft_rust = BTreeSet::new();
    for a in doc["artifacts"].as_array().unwrap() {
        let nv = (
            a["name"].as_str().unwrap().to_string(),
            a["version"].as_str().unwrap().to_string(),
        );
        match a["type"].as_str() {
            Some("go-module") => syft_go.insert(nv),
            Some("rust-crate") => syft_rust.insert(nv),
            _ => false,
        };
    }
    assert_eq!(set(&pkgs, Ecosystem::Go), syft_go);
    assert_eq!(set(&pkgs, Ecosystem::Cargo), syft_rust);
    assert_eq!(syft_go.len(), 5, "{syft_go:?}");
    assert_eq!(syft_rust.len(), 2, "{syft_rust:?}");
}

fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn an_image_layer_whiteout_removes_a_go_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out").tap_mkdir();
    let bin = std::fs::read(build_go(tmp.path(), &out)).unwrap();
    let l = Limits::default();
    let mut files = Files::default();
    let l1 = layer(&[("usr/local/bin/hello", &bin), ("opt/hello", &bin)]);
    apply_layer(&mut files, &l1[..], "sha256:1", &l).unwrap();
    let pkgs = catalog(&files).unwrap();
    assert_eq!(pkgs.len(), 10, "two binaries of five modules each");
    assert!(pkgs.iter().all(|p| p.layer.as_deref() == Some("sha256:1")));
    let l2 = layer(&[("usr/local/bin/.wh.hello", b"")]);
    apply_layer(&mut files, &l2[..], "sha256:2", &l).unwrap();
    let pkgs = catalog(&files).unwrap();
    assert_eq!(pkgs.len(), 5);
    assert!(pkgs.iter().all(|p| p.location == "opt/hello"));
    let l3 = layer(&[("opt/.wh..wh..opq", b"")]);
    apply_layer(&mut files, &l3[..], "sha256:3", &l).unwrap();
    assert!(catalog(&files).unwrap().is_empty());
    assert_eq!(files.binaries().count(), 0);
}

#[test]
fn executables_over_the_bound_are_skipped_in_dirs_and_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let bin = build_go(tmp.path(), &root.join("bin").tap_mkdir());
    let size = std::fs::metadata(&bin).unwrap().len();
    let l = Limits {
        max_binary: 4096,
        ..Limits::default()
    };
    let files = Files::from_dir(&root, &l).unwrap();
    assert!(catalog(&files).unwrap().is_empty());
    assert_eq!(files.skipped, vec![("bin/hello".to_string(), size)]);
    let data = std::fs::read(&bin).unwrap();
    let mut files = Files::default();
    apply_layer(
        &mut files,
        &layer(&[("bin/hello", &data)])[..],
        "sha256:1",
        &l,
    )
    .unwrap();
    assert_eq!(files.skipped, vec![("bin/hello".to_string(), size)]);
    assert_eq!(files.binaries().count(), 0);
}

#[test]
fn a_broken_section_in_a_layer_is_a_warning_naming_the_file() {
    let elf = airlock_sbom::binary::test_elf(&[(".dep-v0", b"\x78\x9cnot really zlib")]);
    let mut files = Files::default();
    apply_layer(
        &mut files,
        &layer(&[("usr/bin/tool", &elf)])[..],
        "sha256:1",
        &Limits::default(),
    )
    .unwrap();
    let w: Vec<&str> = files.warnings().collect();
    assert_eq!(w.len(), 1);
    assert!(w[0].starts_with("usr/bin/tool: .dep-v0:"), "{w:?}");
    assert!(catalog(&files).unwrap().is_empty());
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}
