//! Debian package closures end to end: synthetic signed repositories built with dpkg-deb,
//! apt-ftparchive and gpg (`scripts/make-deb-repo.sh`), served over loopback HTTP by
//! `support/static_server.py` (stand-in for a Debian mirror: static files), resolved and
//! compared with what `apt-get` itself downloads, carried through pack and import, and installed
//! by `apt-get` from the appliance's suite alone. Bad input (foreign keys, tampered or expired
//! Release files, wrong index and package hashes, unknown packages, decompression bombs) and
//! pinned `url:` files. 127.0.0.1 only.

use std::collections::BTreeSet;

use airlock_e2e::{airlockd, bin, Background, Fixture, Run};

use crate::serve::Serving;

/// Builds the two repositories into `repo/` and serves them; returns the server and its URL.
pub(crate) fn repos(f: &Fixture, extra: &[&str]) -> (Background, String) {
    f.sh(&format!(
        "{}/../scripts/make-deb-repo.sh repo >/dev/null",
        env!("CARGO_MANIFEST_DIR")
    ))
    .ok();
    serve_dir(f, "repo", extra)
}

fn serve_dir(f: &Fixture, dir: &str, extra: &[&str]) -> (Background, String) {
    let mut args = vec![
        concat!(env!("CARGO_MANIFEST_DIR"), "/support/static_server.py"),
        dir,
    ];
    args.extend_from_slice(extra);
    let b = Background::start(f.path(), "python3", &args, &f.p(&format!("{dir}.http.log")));
    let url = format!("http://127.0.0.1:{}", b.first_line);
    (b, url)
}

/// The manifest: one closure over both repositories.
fn manifest(url: &str, packages: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: airlock/v1
kind: Bundle
metadata: {{name: gpu, version: "1.0.0"}}
spec:
  debs:
    - name: gpu-stack
      arch: amd64
      sources:
        - uri: {url}/archive
          suite: stable
          components: [main, non-free]
          keyring: ./repo/archive.gpg
        - uri: {url}/toolkit
          flat: true
          keyring: ./repo/toolkit.gpg
      packages: [{packages}]
{extra}"#
    )
}

fn write(f: &Fixture, name: &str, text: &str) {
    std::fs::write(f.p(name), text).unwrap();
}

const REQUEST: &str = "demo-nvidia-driver, \"demo-container-toolkit=1:1.17.8-1\"";

/// An isolated apt configuration in `apt/` (empty dpkg status) reading `sources`.
fn apt(sources: &str) -> String {
    format!(
        r#"rm -rf apt && mkdir -p apt/state/lists/partial apt/cache/archives/partial apt/etc/trusted.gpg.d && touch apt/status
cat > apt/sources.list <<'SRC'
{sources}
SRC
APT="apt-get -q -o Dir::Etc::sourcelist=$PWD/apt/sources.list -o Dir::Etc::sourceparts=- -o Dir::State=$PWD/apt/state -o Dir::State::status=$PWD/apt/status -o Dir::Cache=$PWD/apt/cache -o Dir::Etc::trustedparts=$PWD/apt/etc/trusted.gpg.d -o Debug::NoLocking=1 -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o APT::Install-Recommends=false"
$APT update >apt/update.log 2>&1 || {{ cat apt/update.log; exit 1; }}"#
    )
}

fn names(v: &serde_json::Value) -> BTreeSet<String> {
    v[0]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn closure_is_resolved_like_apt_carried_and_installed_from_the_appliance() {
    let f = Fixture::new();
    let (_srv, url) = repos(&f, &[]);
    write(&f, "debs.yaml", &manifest(&url, REQUEST, ""));

    // The closure, before any .deb is downloaded.
    let r = f
        .airlock(&["--json", "debs", "resolve", "debs.yaml", "--store", "store"])
        .ok();
    let v = r.json();
    let got = names(&v);
    let want: BTreeSet<String> = [
        "demo-container-toolkit",
        "demo-container-toolkit-base",
        "demo-dkms",
        "demo-firmware-gsp",
        "demo-libc",
        "demo-libnvidia-container1",
        "demo-make",
        "demo-nvidia-driver",
        "demo-nvidia-kernel-dkms",
        "demo-nvidia-smi",
        "demo-perl-base",
    ]
    .map(String::from)
    .into();
    assert_eq!(got, want, "{v}");
    let libc = v[0]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "demo-libc")
        .unwrap();
    assert_eq!(libc["version"], "2.36-9", "the newest satisfying version");
    assert!(
        !f.p("store/blobs/sha256").exists()
            || std::fs::read_dir(f.p("store/blobs/sha256"))
                .unwrap()
                .count()
                == 0,
        "resolve downloads no .deb"
    );
    f.airlock(&[
        "debs",
        "resolve",
        "debs.yaml",
        "--store",
        "store",
        "--why",
        "demo-perl-base",
    ])
    .ok()
    .says(&["demo-nvidia-driver -> demo-nvidia-kernel-dkms -> demo-dkms -> demo-perl-base"]);

    // apt-get itself, isolated, empty status: what it downloads is within airlock's closure.
    let r = f.sh(&format!(
        "{}\n$APT install --download-only --print-uris -y demo-nvidia-driver demo-container-toolkit=1:1.17.8-1 | grep -o \"'[^']*\\.deb'\" | sed \"s#.*/##; s#_.*##\"",
        apt(&format!(
            "deb [signed-by=$PWD/repo/archive.gpg] {url}/archive stable main non-free\ndeb [signed-by=$PWD/repo/toolkit.gpg] {url}/toolkit /"
        ))
        .replace("$PWD/repo", &f.p("repo").display().to_string())
    ))
    .ok();
    let by_apt: BTreeSet<String> = r.stdout.lines().map(String::from).collect();
    assert!(!by_apt.is_empty(), "apt printed no URIs: {}", r.stderr);
    assert!(
        by_apt.is_subset(&got),
        "apt downloads {by_apt:?}, airlock resolved {got:?}"
    );

    // sync downloads exactly the closure; pack carries it; the appliance serves it as a suite.
    let r = f
        .airlock(&[
            "--json",
            "sync",
            "debs.yaml",
            "--store",
            "store",
            "--no-scan",
        ])
        .ok();
    assert_eq!(r.json()["debs"][0]["packages"], 11, "{}", r.stdout);
    assert_eq!(
        std::fs::read_dir(f.p("store/blobs/sha256"))
            .unwrap()
            .count(),
        11
    );
    let vols = f.pack_manifest("debs.yaml", "out", &["--store", "store"]);
    f.airlock(&["inspect", &vols[0]])
        .ok()
        .says(&["debs   gpu-stack", "packages 11"]);
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    airlockd(&f, &["import", "--data", "data", &vols[0]]).ok();
    let list = airlockd(&f, &["--json", "list", "--data", "data"])
        .ok()
        .json();
    assert!(
        list["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "debs" && a["name"] == "gpu-stack"),
        "{list}"
    );
    // The closure's SBOM, signed with the bundle: one component per package, from the
    // resolution record; it validates with cyclonedx-python-lib's strict 1.6 validator.
    airlockd(
        &f,
        &[
            "sbom",
            "show",
            "gpu-stack",
            "--data",
            "data",
            "--out",
            "closure.cdx.json",
        ],
    )
    .ok();
    airlock_e2e::validate_cyclonedx(&f.p("closure.cdx.json"));
    let bom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.p("closure.cdx.json")).unwrap()).unwrap();
    assert_eq!(bom["metadata"]["component"]["name"], "gpu-stack");
    let in_bom: BTreeSet<String> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(in_bom, got, "{bom}");
    let toolkit = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "demo-container-toolkit")
        .unwrap();
    assert_eq!(toolkit["version"], "1:1.17.8-1");
    assert!(
        toolkit["purl"]
            .as_str()
            .unwrap()
            .starts_with("pkg:deb/debian/demo-container-toolkit@1%3A1.17.8-1?arch="),
        "{toolkit}"
    );
    assert!(toolkit["supplier"]["name"].is_string(), "{toolkit}");
    let s = Serving::start(&f, &[]);
    f.sh(&format!(
        "curl -sf http://{}/apt/airlock-archive-keyring.asc > appliance.asc",
        s.addr
    ))
    .ok();
    // Only the appliance's suite: apt resolves the same request and installs it into a
    // throwaway root.
    let r = f.sh(&format!(
        r#"{}
$APT install -y --download-only demo-nvidia-driver demo-container-toolkit=1:1.17.8-1 2>&1
ls apt/cache/archives/*.deb | wc -l
mkdir -p root/var/lib/dpkg/info root/var/lib/dpkg/updates && touch root/var/lib/dpkg/status
$APT -o Dir::State::status=$PWD/root/var/lib/dpkg/status -o DPkg::Options::=--root=$PWD/root -o DPkg::Options::=--force-script-chrootless -o DPkg::Options::=--log=$PWD/dpkg.log install -y demo-nvidia-driver demo-container-toolkit=1:1.17.8-1 2>&1
cat root/usr/share/demo-nvidia-driver/VERSION root/usr/share/demo-container-toolkit/VERSION
dpkg --root=$PWD/root -l | grep -c '^ii'"#,
        apt(&format!(
            "deb [signed-by=$PWD/appliance.asc] http://{}/apt gpu-stack main",
            s.addr
        ))
        .replace("$PWD/appliance.asc", &f.p("appliance.asc").display().to_string())
    ));
    let r = r.ok();
    assert!(
        r.stdout.contains("demo-nvidia-driver 535.161.08-1")
            && r.stdout.contains("demo-container-toolkit 1:1.17.8-1"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.trim_end().ends_with("11"),
        "11 packages installed: {}",
        r.stdout
    );
}

/// `debs resolve` of `manifest` fails saying `says`. Each call has a store of its own: verified
/// indexes are cached there by digest, and a cached good index would hide a tampered one.
fn resolve_fails(f: &Fixture, manifest: &str, says: &[&str]) -> Run {
    write(f, "bad.yaml", manifest);
    let store = format!("bad-{}", says.join("-").replace([' ', '/', '\'', '"'], "_"));
    f.airlock(&["debs", "resolve", "bad.yaml", "--store", &store])
        .fails()
        .says(says)
}

#[test]
fn bad_sources_and_packages_are_refused_with_the_reason() {
    let f = Fixture::new();
    let (_srv, url) = repos(&f, &[]);
    // A Release signed by a key that is not in the source's keyring.
    resolve_fails(
        &f,
        &manifest(&url, REQUEST, "").replace("./repo/archive.gpg", "./repo/toolkit.gpg"),
        &["archive", "not in this source's keyring"],
    );
    // A package name that exists in no source; an unsatisfiable pin.
    resolve_fails(
        &f,
        &manifest(&url, "demo-nvidia-driver, no-such-package", ""),
        &["no-such-package"],
    );
    resolve_fails(
        &f,
        &manifest(&url, "\"demo-nvidia-driver=9.9-9\"", ""),
        &["demo-nvidia-driver", "9.9-9"],
    );
    // A Release from the future of the keys' owner: faketime moves the clock past Valid-Until.
    write(&f, "ok.yaml", &manifest(&url, REQUEST, ""));
    let r = airlock_e2e::run_in(
        f.path(),
        "faketime",
        &[
            "-f",
            "+40d",
            bin("airlock").to_str().unwrap(),
            "debs",
            "resolve",
            "ok.yaml",
            "--store",
            "s-late",
        ],
    );
    let r = r.fails().says(&["expired", "Valid-Until"]);
    drop(r);

    // Tampered InRelease body (signature no longer matches).
    f.sh("cp -a repo repo2 && sed -i 's/^Codename: demo/Codename: evil/' repo2/archive/dists/stable/InRelease")
        .ok();
    let (_srv2, url2) = serve_dir(&f, "repo2", &[]);
    resolve_fails(
        &f,
        &manifest(&url2, REQUEST, "").replace("./repo/", "./repo2/"),
        &["InRelease", "signature not accepted"],
    );
    // A Packages index whose bytes differ from what the signed Release lists.
    f.sh("rm -rf repo3 && cp -a repo repo3 && echo 'Package: smuggled' | xz > repo3/archive/dists/stable/non-free/binary-amd64/Packages.xz")
        .ok();
    let (_srv3, url3) = serve_dir(&f, "repo3", &[]);
    resolve_fails(
        &f,
        &manifest(&url3, REQUEST, "").replace("./repo/", "./repo3/"),
        &["Packages.xz", "signed Release lists"],
    );
    // A Release that lists an index larger than the bound: refused before downloading it; and
    // a Packages.gz that decompresses past the bound.
    f.sh(r#"rm -rf repo4 && cp -a repo repo4 && cd repo4/toolkit
head -c 600M /dev/zero | gzip -1 > Packages.gz
rm -f Packages && apt-ftparchive release . > Release
GNUPGHOME=../gnupg gpg --batch --quiet --yes --local-user toolkit@example.org --armor --detach-sign -o Release.gpg Release"#)
        .ok();
    let (_srv4, url4) = serve_dir(&f, "repo4", &[]);
    resolve_fails(
        &f,
        &manifest(&url4, REQUEST, "").replace("./repo/", "./repo4/"),
        &["Packages.gz", "decompresses to more than"],
    );
    // A .deb whose bytes differ from its Packages paragraph: sync fails, nothing stored.
    f.sh("rm -rf repo5 && cp -a repo repo5 && printf X | dd of=repo5/archive/pool/main/demo-libc_2.36-9_amd64.deb bs=1 seek=200 conv=notrunc 2>/dev/null")
        .ok();
    let (_srv5, url5) = serve_dir(&f, "repo5", &[]);
    write(
        &f,
        "bad.yaml",
        &manifest(&url5, REQUEST, "").replace("./repo/", "./repo5/"),
    );
    f.airlock(&[
        "sync",
        "bad.yaml",
        "--store",
        "s5",
        "--no-scan",
        "--retries",
        "1",
    ])
    .fails()
    .says(&["demo-libc", "hashes to"]);
    let stored = f.sh("ls s5/blobs/sha256 | xargs -n1 -I{} sh -c 'sha256sum s5/blobs/sha256/{}' | grep -c . || true").ok();
    assert_eq!(
        stored.stdout.trim(),
        "10",
        "every other .deb, not the bad one"
    );
    assert!(
        !f.p("s5/debs/gpu-stack.json").exists(),
        "no record of a failed closure"
    );
}

#[test]
fn url_files_are_pinned_by_digest_and_resumed() {
    let f = Fixture::new();
    f.sh("mkdir -p site && (echo airlock-test-data; head -c 3000000 /dev/urandom) > site/k3s")
        .ok();
    let sha = f.sh("sha256sum site/k3s | cut -d' ' -f1").ok().stdout;
    let sha = sha.trim();
    let (_srv, url) = serve_dir(&f, "site", &[]);
    let m = |digest: &str| {
        format!(
            "apiVersion: airlock/v1\nkind: Bundle\nmetadata: {{name: files, version: \"1\"}}\nspec:\n  files:\n    - name: k3s\n      url: {url}/k3s\n      sha256: \"{digest}\"\n"
        )
    };
    // Wrong digest: refused, nothing stored.
    write(&f, "bad.yaml", &m(&"0".repeat(64)));
    f.airlock(&["sync", "bad.yaml", "--store", "s1", "--retries", "0"])
        .fails()
        .says(&["k3s", "hashes to"]);
    assert_eq!(f.sh("ls s1/blobs/sha256 | wc -l").ok().stdout.trim(), "0");
    // A cut connection is resumed; then pack carries the file.
    let (_srv2, url2) = serve_dir(&f, "site", &["--cut", "k3s:1000000"]);
    write(&f, "good.yaml", &m(sha).replace(&url, &url2));
    let r = f
        .airlock(&["-v", "--json", "sync", "good.yaml", "--store", "s2"])
        .ok();
    assert!(r.stderr.contains("resuming download"), "{}", r.stderr);
    assert_eq!(r.json()["files"][0]["ok"], true);
    let vols = f.pack_manifest("good.yaml", "out", &["--store", "s2"]);
    f.airlock(&["inspect", &vols[0]]).ok().says(&["k3s"]);
    // A manifest with url: but no sha256 is refused when parsed.
    write(
        &f,
        "nosha.yaml",
        &m(sha).replace(&format!("      sha256: \"{sha}\"\n"), ""),
    );
    f.airlock(&["sync", "nosha.yaml", "--store", "s3"])
        .fails()
        .says(&["sha256 is required with url"]);
}

/// The Debian archive this machine's own apt sources name (never written into the tests), or
/// `None` when there is none or it cannot be reached.
fn machine_archive(f: &Fixture) -> Option<String> {
    let r = f.sh(
        r#"uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/{print $2; exit}')
[ -n "$uri" ] || uri=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list 2>/dev/null)
[ -n "$uri" ] && curl -sfI --max-time 15 "$uri/dists/bookworm/InRelease" >/dev/null && echo "$uri""#,
    );
    let uri = r.stdout.trim().to_string();
    (!uri.is_empty()).then_some(uri)
}

#[test]
fn real_debian_nvidia_closure_installs_from_the_appliance_suite() {
    let f = Fixture::new();
    let Some(uri) = machine_archive(&f) else {
        eprintln!("SKIPPED: no Debian archive in this machine's apt sources is reachable");
        return;
    };
    // What this machine has installed is the target's baseline: not carried.
    write(
        &f,
        "nv.yaml",
        &format!(
            r#"apiVersion: airlock/v1
kind: Bundle
metadata: {{name: nvidia, version: "1.0.0"}}
spec:
  debs:
    - name: nvidia
      arch: amd64
      sources:
        - uri: {uri}
          suite: bookworm
          components: [main, contrib, non-free, non-free-firmware]
          keyring: /usr/share/keyrings/debian-archive-keyring.gpg
      packages: [nvidia-driver, nvidia-smi, firmware-nvidia-gsp]
      baseline: /var/lib/dpkg/status
"#
        ),
    );
    let v = f
        .airlock(&["--json", "debs", "resolve", "nv.yaml", "--store", "store"])
        .ok()
        .json();
    let got = names(&v);
    assert!(
        [
            "nvidia-driver",
            "nvidia-kernel-dkms",
            "firmware-nvidia-gsp",
            "nvidia-smi"
        ]
        .iter()
        .all(|p| got.contains(*p)),
        "{got:?}"
    );
    // apt-get from the same archive, with this machine's status: it downloads nothing airlock
    // left out.
    let r = f
        .sh(&format!(
            "{}\n$APT -o Dir::State::status=/var/lib/dpkg/status install --download-only --print-uris -y nvidia-driver nvidia-smi firmware-nvidia-gsp | grep -o \"'[^']*\\.deb'\" | sed \"s#.*/##; s#_.*##\"",
            apt(&format!(
                "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {uri} bookworm main contrib non-free non-free-firmware"
            ))
        ))
        .ok();
    let by_apt: BTreeSet<String> = r.stdout.lines().map(String::from).collect();
    assert!(!by_apt.is_empty(), "apt printed no URIs: {}", r.stderr);
    assert!(
        by_apt.is_subset(&got),
        "apt downloads {:?} that airlock left out",
        by_apt.difference(&got).collect::<Vec<_>>()
    );
    // Carried across and served: apt, configured with only the appliance's suite, accepts the
    // request (simulated: installing a kernel driver is not possible here).
    f.airlock(&["sync", "nv.yaml", "--store", "store", "--no-scan"])
        .ok();
    let vols = f.pack_manifest("nv.yaml", "out", &["--store", "store", "--no-scan"]);
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    for v in &vols {
        airlockd(&f, &["import", "--data", "data", v]).ok();
    }
    // The closure's SBOM names the release its suite belongs to, so that Debian 12's
    // advisories can be matched against it, and lists every package with its source package.
    let bom = airlockd(&f, &["sbom", "show", "nvidia", "--data", "data"])
        .ok()
        .json();
    let comps = bom["components"].as_array().unwrap();
    assert_eq!(comps.len(), got.len(), "{bom}");
    let driver = comps
        .iter()
        .find(|c| c["name"] == "nvidia-driver")
        .expect("nvidia-driver in the SBOM");
    let purl = driver["purl"].as_str().unwrap();
    assert!(
        purl.contains("distro=debian-12") && purl.contains("upstream=nvidia-graphics-drivers"),
        "{purl}"
    );
    let s = Serving::start(&f, &[]);
    f.sh(&format!(
        "curl -sf http://{}/apt/airlock-archive-keyring.asc > appliance.asc",
        s.addr
    ))
    .ok();
    let r = f
        .sh(&format!(
            "{}\n$APT -o Dir::State::status=/var/lib/dpkg/status -s install nvidia-driver nvidia-smi firmware-nvidia-gsp 2>&1",
            apt(&format!(
                "deb [signed-by={}] http://{}/apt nvidia main",
                f.p("appliance.asc").display(),
                s.addr
            ))
        ))
        .ok();
    assert!(r.stdout.contains("Inst nvidia-driver"), "{}", r.stdout);
}
