//! `airlockd serve --listen`: the imported store served to real clients — skopeo, podman and
//! containerd pull images (plain HTTP and TLS with the appliance CA), `huggingface_hub`
//! downloads models; the protocol details (Accept, Range, pagination, errors, read-only,
//! path traversal) are checked with curl; auth, metrics, live reload and SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use airlock_e2e::*;

pub(crate) const IMAGE: &str = "registry.example/acme/hello";
pub(crate) const MODEL: &str = "acme/tiny-model";

/// A running `airlockd serve`; stopped with SIGTERM on drop.
pub(crate) struct Serving {
    child: Option<Child>,
    pub(crate) addr: String,
}

impl Serving {
    pub(crate) fn start(f: &Fixture, extra: &[&str]) -> Serving {
        let mut args = vec![
            "--json",
            "serve",
            "--data",
            "data",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "200ms",
        ];
        args.extend_from_slice(extra);
        let mut child = Command::new(bin("airlockd"))
            .args(&args)
            .current_dir(f.path())
            .env("AIRLOCK_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(f.p("serve.log")).unwrap())
            .spawn()
            .expect("airlockd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "airlockd serve printed {line:?} ({e}); log:\n{}",
                std::fs::read_to_string(f.p("serve.log")).unwrap_or_default()
            )
        });
        Serving {
            child: Some(child),
            addr: v["listening"].as_str().unwrap().to_string(),
        }
    }

    /// Sends SIGTERM and returns the exit code.
    fn stop(&mut self) -> i32 {
        let mut c = self.child.take().expect("running");
        run_in(
            std::path::Path::new("/"),
            "kill",
            &["-TERM", &c.id().to_string()],
        )
        .ok();
        c.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

/// A fixture with the demo bundle (plus tags v2, v3 and a second repository) imported.
pub(crate) fn served() -> Fixture {
    let f = Fixture::new();
    f.sh(r#"python3 - <<'EOF'
import re
s = open("m.yaml").read()
extra = "".join(f"""    - ref: oci:./layouts/hello:v1
      name: {n}
""" for n in ["registry.example/acme/hello:v2", "registry.example/acme/hello:v3", "registry.example/acme/other:v1"])
s = s.replace("  models:\n", extra + "  models:\n", 1)
open("m.yaml", "w").write(s)
EOF"#)
        .ok();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    let v = f.pack("out", &[]).remove(0);
    airlockd(&f, &["import", "--data", "data", &v]).ok();
    f
}

/// `curl -s` with the response headers written to stdout first (`-D -`).
pub(crate) fn curl(f: &Fixture, args: &[&str]) -> Run {
    let mut all = vec!["-s", "-D", "-", "--path-as-is"];
    all.extend_from_slice(args);
    run_in(f.path(), "curl", &all).ok()
}

pub(crate) fn status(r: &Run) -> u16 {
    r.stdout
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn header<'a>(r: &'a Run, name: &str) -> Option<&'a str> {
    r.stdout
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

pub(crate) fn body(r: &Run) -> &str {
    r.stdout.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("")
}

/// The manifest digest of the source image (what every client must get back).
fn source_digest(f: &Fixture) -> String {
    f.sh("skopeo inspect --raw oci:layouts/hello:v1 | sha256sum | cut -d' ' -f1")
        .ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn skopeo_podman_and_containerd_pull_from_the_appliance() {
    let f = served();
    let s = Serving::start(&f, &[]);
    let want = format!("sha256:{}", source_digest(&f));
    // skopeo, by full name (host part in the path) and by the path alone.
    for name in [format!("{IMAGE}:v1"), "acme/hello:v2".to_string()] {
        let j = run_in(
            f.path(),
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                &format!("docker://{}/{name}", s.addr),
            ],
        )
        .ok()
        .json();
        assert_eq!(j["Digest"], want.as_str(), "{name}");
    }
    run_in(
        f.path(),
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/{IMAGE}:v1", s.addr),
            "oci:pulled:v1",
        ],
    )
    .ok();
    let got = f
        .sh("skopeo inspect --raw oci:pulled:v1 | sha256sum | cut -d' ' -f1")
        .ok()
        .stdout;
    assert_eq!(format!("sha256:{}", got.trim()), want);
    // podman, with its own storage in the fixture.
    f.sh(&format!(
        "podman --root podroot --runroot podrun --storage-driver vfs pull --tls-verify=false {}/acme/hello:v1 >/dev/null",
        s.addr
    ))
    .ok();
    let ids = f
        .sh("podman --root podroot --runroot podrun --storage-driver vfs images --digests --format '{{.Digest}}'")
        .ok()
        .stdout;
    assert!(ids.contains(&want), "podman images: {ids}");
    // containerd (what k3s embeds), plain HTTP.
    let c = Containerd::start();
    c.ctr(&[
        "-n",
        "k8s",
        "images",
        "pull",
        "--plain-http",
        "--snapshotter",
        "native",
        &format!("{}/acme/hello:v3", s.addr),
    ])
    .ok();
    let ls = c.ctr(&["-n", "k8s", "images", "ls"]).ok().stdout;
    assert!(ls.contains(&want), "ctr images ls: {ls}");
}

#[test]
fn tls_with_the_appliance_ca() {
    let f = served();
    assert!(f.p("data/tls/ca.pem").exists(), "init exports the CA");
    let s = Serving::start(&f, &["--tls"]);
    let url = format!("https://{}/v2/", s.addr);
    // Verified against the CA (the certificate names 127.0.0.1), refused without it.
    let r = curl(&f, &["--cacert", "data/tls/ca.pem", &url]);
    assert_eq!(status(&r), 200, "{}", r.stdout);
    assert_ne!(
        run_in(f.path(), "curl", &["-s", "-o", "/dev/null", &url]).code,
        0,
        "a client without the CA must refuse the certificate"
    );
    f.sh("mkdir -p certs && cp data/tls/ca.pem certs/ca.crt")
        .ok();
    let j = run_in(
        f.path(),
        "skopeo",
        &[
            "inspect",
            "--cert-dir",
            "certs",
            &format!("docker://{}/{IMAGE}:v1", s.addr),
        ],
    )
    .ok()
    .json();
    assert_eq!(
        j["Digest"],
        format!("sha256:{}", source_digest(&f)).as_str()
    );
    // containerd as k3s drives it: registry.example mirrored to the appliance over TLS with
    // the appliance CA (registries.yaml becomes this hosts.toml); containerd then asks
    // /v2/acme/hello/...?ns=registry.example.
    let ca = f.p("data/tls/ca.pem");
    std::fs::create_dir_all(f.p("hosts/registry.example")).unwrap();
    std::fs::write(
        f.p("hosts/registry.example/hosts.toml"),
        format!(
            "server = \"https://registry.example\"\n[host.\"https://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{}\"\n",
            s.addr,
            ca.display()
        ),
    )
    .unwrap();
    let c = Containerd::start();
    c.ctr(&[
        "-n",
        "k8s",
        "images",
        "pull",
        "--hosts-dir",
        &f.p("hosts").to_string_lossy(),
        "--snapshotter",
        "native",
        &format!("{IMAGE}:v1"),
    ])
    .ok();
    let log = std::fs::read_to_string(f.p("serve.log")).unwrap();
    assert!(
        log.contains("ns=registry.example"),
        "containerd did not go through the mirror path: {log}"
    );
}

#[test]
fn oci_protocol_details() {
    let f = served();
    let s = Serving::start(&f, &[]);
    let base = format!("http://{}", s.addr);
    let want = format!("sha256:{}", source_digest(&f));
    // HEAD by tag, the containerd mirror form (?ns=), headers as containerd needs them.
    let r = curl(
        &f,
        &[
            "-I",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
            &format!("{base}/v2/acme/hello/manifests/v1?ns=registry.example"),
        ],
    );
    assert_eq!(status(&r), 200, "{}", r.stdout);
    assert_eq!(header(&r, "docker-content-digest"), Some(want.as_str()));
    assert_eq!(
        header(&r, "content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let len: usize = header(&r, "content-length").unwrap().parse().unwrap();
    // GET by digest returns exactly those bytes.
    let r = curl(&f, &[&format!("{base}/v2/{IMAGE}/manifests/{want}")]);
    assert_eq!(status(&r), 200);
    assert_eq!(body(&r).len(), len);
    // Accept that excludes the manifest's type: not served (as the Distribution registry does).
    let r = curl(
        &f,
        &[
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            &format!("{base}/v2/{IMAGE}/manifests/v1"),
        ],
    );
    assert_eq!(status(&r), 404);
    assert!(body(&r).contains("MANIFEST_UNKNOWN"));
    // Blob ranges: N-, N-M, suffix, unsatisfiable.
    let manifest: serde_json::Value = serde_json::from_str(body(&curl(
        &f,
        &[&format!("{base}/v2/{IMAGE}/manifests/v1")],
    )))
    .unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let size = manifest["layers"][0]["size"].as_u64().unwrap();
    let blob_url = format!("{base}/v2/{IMAGE}/blobs/{layer}");
    let full = f
        .sh(&format!("curl -s {blob_url} | sha256sum | cut -d' ' -f1"))
        .ok()
        .stdout;
    assert_eq!(format!("sha256:{}", full.trim()), layer);
    for (range, start, end) in [
        ("bytes=10-", 10, size - 1),
        ("bytes=3-20", 3, 20),
        ("bytes=-7", size - 7, size - 1),
    ] {
        let r = curl(&f, &["-H", &format!("Range: {range}"), &blob_url]);
        assert_eq!(status(&r), 206, "{range}");
        assert_eq!(
            header(&r, "content-range"),
            Some(format!("bytes {start}-{end}/{size}").as_str()),
            "{range}"
        );
        assert_eq!(
            header(&r, "content-length"),
            Some((end - start + 1).to_string().as_str())
        );
    }
    let r = curl(&f, &["-H", &format!("Range: bytes={size}-"), &blob_url]);
    assert_eq!(status(&r), 416);
    assert_eq!(
        header(&r, "content-range"),
        Some(format!("bytes */{size}").as_str())
    );
    // Tags and catalog with n/last pagination and Link.
    let r = curl(&f, &[&format!("{base}/v2/{IMAGE}/tags/list?n=2")]);
    let j: serde_json::Value = serde_json::from_str(body(&r)).unwrap();
    assert_eq!(j["tags"], serde_json::json!(["v1", "v2"]));
    assert_eq!(
        header(&r, "link"),
        Some(format!("</v2/{IMAGE}/tags/list?n=2&last=v2>; rel=\"next\"").as_str())
    );
    let r = curl(&f, &[&format!("{base}/v2/{IMAGE}/tags/list?n=2&last=v2")]);
    let j: serde_json::Value = serde_json::from_str(body(&r)).unwrap();
    assert_eq!(j["tags"], serde_json::json!(["v3"]));
    assert_eq!(header(&r, "link"), None);
    // The model's repository (`models/…`) sorts first.
    let r = curl(&f, &[&format!("{base}/v2/_catalog?n=1")]);
    let j: serde_json::Value = serde_json::from_str(body(&r)).unwrap();
    assert_eq!(
        j["repositories"],
        serde_json::json!(["models/acme/tiny-model"])
    );
    let r = curl(
        &f,
        &[&format!(
            "{base}/v2/_catalog?n=1&last=models%2Facme%2Ftiny-model"
        )],
    );
    let j: serde_json::Value = serde_json::from_str(body(&r)).unwrap();
    assert_eq!(j["repositories"], serde_json::json!([IMAGE]));
    assert!(header(&r, "link")
        .unwrap()
        .contains("last=registry.example%2Facme%2Fhello"));
    // Referrers: an empty index for an image nothing refers to; a bad digest is 400.
    let r = curl(
        &f,
        &[&format!(
            "{base}/v2/{IMAGE}/referrers/{want}?artifactType=application/spdx%2Bjson"
        )],
    );
    assert_eq!(status(&r), 200);
    let j: serde_json::Value = serde_json::from_str(body(&r)).unwrap();
    assert_eq!(j["manifests"], serde_json::json!([]));
    assert_eq!(header(&r, "oci-filters-applied"), Some("artifactType"));
    // Errors: unknown repo, unknown tag, bad digests, not-served blobs.
    for (url, code, err) in [
        (
            format!("{base}/v2/acme/nope/tags/list"),
            404,
            "NAME_UNKNOWN",
        ),
        (
            format!("{base}/v2/{IMAGE}/manifests/v9"),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("{base}/v2/{IMAGE}/blobs/sha256:1234"),
            400,
            "DIGEST_INVALID",
        ),
        (
            format!("{base}/v2/{IMAGE}/blobs/md5:{}", "0".repeat(32)),
            400,
            "DIGEST_INVALID",
        ),
        (
            format!("{base}/v2/{IMAGE}/blobs/sha256:{}", "0".repeat(64)),
            404,
            "BLOB_UNKNOWN",
        ),
    ] {
        let r = curl(&f, &[&url]);
        assert_eq!(status(&r), code, "{url}: {}", r.stdout);
        assert!(body(&r).contains(err), "{url}: {}", r.stdout);
    }
    // A TLS client on the plain port is answered at once, not left waiting for a header end
    // (skopeo tries https first; waiting for one would stall each request 10 s).
    let t = std::time::Instant::now();
    let r = run_in(
        f.path(),
        "curl",
        &["-sk", "-m", "5", &format!("https://{}/v2/", s.addr)],
    );
    assert_ne!(r.code, 0);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(3),
        "TLS hello on the plain port stalled"
    );
    // Read-only: every write is 405 UNSUPPORTED.
    for (method, url) in [
        ("POST", format!("{base}/v2/{IMAGE}/blobs/uploads/")),
        ("PUT", format!("{base}/v2/{IMAGE}/manifests/v9")),
        ("DELETE", format!("{base}/v2/{IMAGE}/manifests/{want}")),
        ("PATCH", format!("{base}/v2/{IMAGE}/blobs/uploads/x")),
    ] {
        let r = curl(&f, &["-X", method, &url]);
        assert_eq!(status(&r), 405, "{method} {url}");
        assert!(body(&r).contains("UNSUPPORTED"));
    }
}

#[test]
fn path_traversal_is_refused_everywhere() {
    let f = served();
    // A file outside the store the server must never hand out.
    std::fs::write(f.p("secret.txt"), "TOP SECRET").unwrap();
    let s = Serving::start(&f, &[]);
    let base = format!("http://{}", s.addr);
    for path in [
        "/v2/../secret.txt",
        "/v2/%2e%2e/%2e%2e/secret.txt/blobs/sha256:00",
        "/v2/acme/../../secret.txt/manifests/v1",
        "/v2//etc/passwd/manifests/v1",
        "/v2/acme/hello/blobs/..%2f..%2fsecret.txt",
        "/v2/acme/hello/manifests/..%2f..%2fsecret.txt",
        "/acme/tiny-model/resolve/main/../../secret.txt",
        "/acme/tiny-model/resolve/main/%2e%2e/%2e%2e/secret.txt",
        "/acme/tiny-model/resolve/main/%2Fetc%2Fpasswd",
        "/acme/tiny-model/resolve/main//etc/passwd",
        "/api/models/acme/tiny-model/tree/main/%2e%2e",
        "/api/models/%2e%2e/%2e%2e/tree/main",
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
    ] {
        let r = curl(&f, &[&format!("{base}{path}")]);
        let code = status(&r);
        assert!(code == 400 || code == 404, "{path}: {code}\n{}", r.stdout);
        assert!(
            !r.stdout.contains("TOP SECRET") && !r.stdout.contains("root:"),
            "{path} leaked a file"
        );
    }
}

#[test]
fn hugging_face_clients_download_models_byte_for_byte() {
    let f = served();
    let s = Serving::start(&f, &[]);
    let base = format!("http://{}", s.addr);
    // huggingface_hub: snapshot_download (model_info, tree, HEAD + GET per file) and
    // hf_hub_download, then compare every file with the source directory.
    let script = format!(
        r#"
import filecmp, os, sys
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
from huggingface_hub import snapshot_download, hf_hub_download, HfApi
ep = "{base}"
d = snapshot_download("{MODEL}", endpoint=ep, cache_dir="hfcache")
src = "models/tiny"
want = sorted(os.path.relpath(os.path.join(r, n), src) for r, _, ns in os.walk(src) for n in ns)
got = sorted(os.path.relpath(os.path.join(r, n), d) for r, _, ns in os.walk(d) for n in ns)
assert want == got, (want, got)
for p in want:
    assert filecmp.cmp(os.path.join(src, p), os.path.join(d, p), shallow=False), p
one = hf_hub_download("{MODEL}", "sub/extra.dat", endpoint=ep, cache_dir="hfcache2")
assert open(one, "rb").read() == open(os.path.join(src, "sub/extra.dat"), "rb").read()
info = HfApi(endpoint=ep).model_info("{MODEL}")
assert len(info.sha) == 40, info.sha
tree = sorted(f.path for f in HfApi(endpoint=ep).list_repo_tree("{MODEL}", recursive=True))
assert tree == ["README.md", "config.json", "model.safetensors", "sub", "sub/extra.dat"], tree
print(info.sha)
"#
    );
    std::fs::write(f.p("hf.py"), script).unwrap();
    let sha = run_in(f.path(), python(), &["hf.py"]).ok().stdout;
    let sha = sha.trim();
    // Resolve headers: commit, ETag = git blob id for small non-LFS files, sha256 for LFS.
    let r = curl(
        &f,
        &["-I", &format!("{base}/{MODEL}/resolve/main/config.json")],
    );
    assert_eq!(header(&r, "x-repo-commit"), Some(sha));
    let git = f.sh("git hash-object models/tiny/config.json").ok().stdout;
    assert_eq!(
        header(&r, "etag"),
        Some(format!("\"{}\"", git.trim()).as_str())
    );
    assert_eq!(header(&r, "x-xet-hash"), None);
    let r = curl(
        &f,
        &[
            "-I",
            &format!("{base}/{MODEL}/resolve/{sha}/model.safetensors"),
        ],
    );
    let sum = f
        .sh("sha256sum models/tiny/model.safetensors | cut -d' ' -f1")
        .ok()
        .stdout;
    assert_eq!(
        header(&r, "etag"),
        Some(format!("\"{}\"", sum.trim()).as_str())
    );
    let size = std::fs::metadata(f.p("models/tiny/model.safetensors"))
        .unwrap()
        .len()
        .to_string();
    assert_eq!(header(&r, "x-linked-size"), Some(size.as_str()));
    // Range on resolve.
    let r = curl(
        &f,
        &[
            "-H",
            "Range: bytes=0-9",
            &format!("{base}/{MODEL}/resolve/main/README.md"),
        ],
    );
    assert_eq!(status(&r), 206);
    assert_eq!(body(&r), "---\nlicens");
    // 404s carry X-Error-Code.
    for (path, code) in [
        ("/api/models/acme/nope", "RepoNotFound"),
        (
            "/api/models/acme/tiny-model/revision/v9",
            "RevisionNotFound",
        ),
        ("/acme/tiny-model/resolve/main/nope.json", "EntryNotFound"),
        ("/acme/nope/resolve/main/config.json", "RepoNotFound"),
    ] {
        let r = curl(&f, &[&format!("{base}{path}")]);
        assert_eq!(status(&r), 404, "{path}");
        assert_eq!(header(&r, "x-error-code"), Some(code), "{path}");
    }
    // Tree pagination: follow absolute Link headers one entry at a time.
    let mut url = format!("{base}/api/models/{MODEL}/tree/main?recursive=true&limit=1");
    let mut paths = Vec::new();
    loop {
        let r = curl(&f, &[&url]);
        let page: serde_json::Value = serde_json::from_str(body(&r)).unwrap();
        assert_eq!(page.as_array().unwrap().len(), 1);
        paths.push(page[0]["path"].as_str().unwrap().to_string());
        match header(&r, "link") {
            Some(l) => {
                url = l
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_string()
            }
            None => break,
        }
    }
    assert_eq!(
        paths,
        [
            "sub",
            "README.md",
            "config.json",
            "model.safetensors",
            "sub/extra.dat"
        ]
    );
}

#[test]
fn clients_without_credentials_are_refused_where_auth_is_configured() {
    let f = served();
    std::fs::write(f.p("tokens"), "# rack pullers\nrack-token-0123456789\n").unwrap();
    let s = Serving::start(&f, &["--auth", "oci=tokens", "--auth", "hf=tokens"]);
    let base = format!("http://{}", s.addr);
    let r = curl(&f, &[&format!("{base}/v2/")]);
    assert_eq!(status(&r), 401);
    assert!(header(&r, "www-authenticate").unwrap().starts_with("Basic"));
    let r = curl(&f, &[&format!("{base}/api/models/{MODEL}")]);
    assert_eq!(status(&r), 401);
    let r = curl(
        &f,
        &[
            "-H",
            "Authorization: Bearer wrong-token-000",
            &format!("{base}/v2/"),
        ],
    );
    assert_eq!(status(&r), 401);
    let r = curl(
        &f,
        &[
            "-H",
            "Authorization: Bearer rack-token-0123456789",
            &format!("{base}/api/models/{MODEL}"),
        ],
    );
    assert_eq!(status(&r), 200);
    // metrics stay open (no --auth metrics=...).
    assert_eq!(status(&curl(&f, &[&format!("{base}/metrics")])), 200);
    // skopeo: refused without credentials, served with them (basic auth, token as password).
    let img = format!("docker://{}/{IMAGE}:v1", s.addr);
    run_in(f.path(), "skopeo", &["inspect", "--tls-verify=false", &img]).fails();
    run_in(
        f.path(),
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--creds",
            "rack:rack-token-0123456789",
            &img,
        ],
    )
    .ok();
}

#[test]
fn models_under_v2_need_the_hf_credentials_too() {
    let f = served();
    std::fs::write(f.p("hf-tokens"), "hf-token-0123456789\n").unwrap();
    std::fs::write(f.p("oci-tokens"), "oci-token-0123456789\n").unwrap();
    let model = format!("/v2/models/{MODEL}/manifests/latest");
    let image = format!("/v2/{IMAGE}/manifests/v1");
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    // Only the hf group is protected: images stay open under /v2, models do not.
    let s = Serving::start(&f, &["--auth", "hf=hf-tokens"]);
    let base = format!("http://{}", s.addr);
    assert_eq!(status(&curl(&f, &[&format!("{base}{image}")])), 200);
    let r = curl(&f, &[&format!("{base}{model}")]);
    assert_eq!(status(&r), 401);
    assert!(body(&r).contains("UNAUTHORIZED"), "{}", r.stdout);
    assert!(header(&r, "www-authenticate").unwrap().starts_with("Basic"));
    let r = curl(&f, &[&format!("{base}/v2/_catalog")]);
    assert!(!body(&r).contains("models/"), "{}", r.stdout);
    let r = curl(
        &f,
        &[
            "-H",
            &bearer("hf-token-0123456789"),
            &format!("{base}/v2/_catalog"),
        ],
    );
    assert!(body(&r).contains("models/acme/tiny-model"), "{}", r.stdout);
    let r = curl(
        &f,
        &[
            "-H",
            &bearer("hf-token-0123456789"),
            &format!("{base}{model}"),
        ],
    );
    assert_eq!(status(&r), 200);
    // skopeo: refused without credentials, served with the hf token as the password (the
    // challenge at /v2/ tells it to send them); images still need none.
    let img = format!("docker://{}/models/{MODEL}:latest", s.addr);
    let inspect = ["inspect", "--raw", "--tls-verify=false"];
    let open = format!("docker://{}/{IMAGE}:v1", s.addr);
    run_in(
        f.path(),
        "skopeo",
        &[&inspect[..], &[open.as_str()]].concat(),
    )
    .ok();
    run_in(
        f.path(),
        "skopeo",
        &[&inspect[..], &[img.as_str()]].concat(),
    )
    .fails();
    run_in(
        f.path(),
        "skopeo",
        &[
            &inspect[..],
            &["--creds", "rack:hf-token-0123456789", img.as_str()],
        ]
        .concat(),
    )
    .ok();
    drop(s);
    // Both protected with different tokens: the oci token alone opens images, not models.
    let s = Serving::start(&f, &["--auth", "oci=oci-tokens", "--auth", "hf=hf-tokens"]);
    let base = format!("http://{}", s.addr);
    let oci = bearer("oci-token-0123456789");
    assert_eq!(
        status(&curl(&f, &["-H", &oci, &format!("{base}{image}")])),
        200
    );
    assert_eq!(
        status(&curl(&f, &["-H", &oci, &format!("{base}{model}")])),
        401
    );
    let hf = bearer("hf-token-0123456789");
    assert_eq!(
        status(&curl(&f, &["-H", &hf, &format!("{base}{model}")])),
        401
    );
}

#[test]
fn serve_picks_up_imports_exports_metrics_and_stops_on_sigterm() {
    let f = Fixture::new();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    let v = f.pack("out", &[]).remove(0);
    let mut s = Serving::start(&f, &[]);
    let base = format!("http://{}", s.addr);
    let url = format!("{base}/v2/{IMAGE}/manifests/v1");
    assert_eq!(status(&curl(&f, &[&url])), 404, "nothing imported yet");
    // The watcher imports a volume dropped into the inbox; the server serves it.
    std::fs::copy(f.p(&v), f.p("data/inbox/v.tar.zst")).unwrap();
    std::fs::write(f.p("data/inbox/v.tar.zst.done"), "").unwrap();
    let mut ok = false;
    for _ in 0..100 {
        if status(&curl(&f, &[&url])) == 200 {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        ok,
        "imported image never served; log:\n{}",
        std::fs::read_to_string(f.p("serve.log")).unwrap_or_default()
    );
    let m = body(&curl(&f, &[&format!("{base}/metrics")])).to_string();
    assert!(
        m.contains("airlock_http_requests_total{group=\"oci\",method=\"GET\",status=\"200\"}"),
        "{m}"
    );
    assert!(m.contains("airlock_http_request_duration_seconds_bucket{group=\"oci\""));
    assert!(m.contains("airlock_catalog_reloads_total 1"), "{m}");
    assert_eq!(s.stop(), 0, "SIGTERM is a clean shutdown");
    let log = std::fs::read_to_string(f.p("serve.log")).unwrap();
    assert!(log.contains("status=200"), "access log: {log}");
    assert!(f.p("data/inbox/done/v.tar.zst").exists());
}

#[test]
fn apt_installs_debs_from_the_signed_repository() {
    let f = Fixture::new();
    // A real .deb built by dpkg-deb, packed as a file artifact.
    f.sh(r#"
mkdir -p deb/DEBIAN deb/usr/share/airlock-hello
echo hello > deb/usr/share/airlock-hello/hello.txt
printf 'Package: airlock-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: airlock <ops@example.org>\nDescription: test package\n with a continuation line  \n' > deb/DEBIAN/control
dpkg-deb --root-owner-group --build deb airlock-hello_1.0_all.deb >/dev/null
cat >> m.yaml <<YAML
    - name: airlock-hello_1.0_all.deb
      path: ./airlock-hello_1.0_all.deb
YAML
"#)
    .ok();
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    let v = f.pack("out", &[]).remove(0);
    airlockd(&f, &["import", "--data", "data", &v]).ok();
    let s = Serving::start(&f, &[]);
    let apt = |keyfile: &str| {
        format!(
            r#"rm -rf apt && mkdir -p apt/state/lists/partial apt/cache/archives/partial apt/trusted
echo "deb [signed-by=$PWD/{keyfile}] http://{addr}/apt airlock main" > apt/sources.list
APT="apt-get -q -o Dir::Etc::sourcelist=$PWD/apt/sources.list -o Dir::Etc::sourceparts=- -o Dir::State=$PWD/apt/state -o Dir::State::status=/var/lib/dpkg/status -o Dir::Cache=$PWD/apt/cache -o Dir::Etc::trustedparts=$PWD/apt/trusted -o Debug::NoLocking=1 -o Acquire::Check-Valid-Until=true -o Acquire::Check-Date=true"
$APT update 2>&1
$APT install -y --download-only airlock-hello 2>&1
cmp apt/cache/archives/airlock-hello_1.0_all.deb airlock-hello_1.0_all.deb"#,
            addr = s.addr
        )
    };
    f.sh(&format!(
        "curl -sf http://{0}/apt/airlock-archive-keyring.asc > key.asc && curl -sf http://{0}/apt/airlock-archive-keyring.gpg > key.gpg",
        s.addr
    ))
    .ok();
    f.sh(&apt("key.asc")).ok();
    // gpgv accepts the detached signature too.
    f.sh(&format!(
        "curl -sf http://{0}/apt/dists/airlock/Release > Release && curl -sf http://{0}/apt/dists/airlock/Release.gpg > Release.gpg && gpgv --keyring ./key.gpg Release.gpg Release 2>&1",
        s.addr
    ))
    .ok();
    // Another key: apt refuses the repository and installs nothing.
    f.sh("mkdir -m 700 gpghome && gpg --batch --homedir gpghome --passphrase '' --quick-gen-key 'Other <o@example.org>' ed25519 sign never 2>/dev/null && gpg --homedir gpghome --export --armor > other.asc")
        .ok();
    let r = f.sh(&apt("other.asc"));
    assert_ne!(r.code, 0, "apt accepted a repository signed by another key");
    assert!(
        r.stdout.contains("NO_PUBKEY") || r.stdout.contains("not signed"),
        "{}",
        r.stdout
    );
}

#[test]
fn pending_artifacts_and_unreferenced_blobs_are_not_served() {
    let f = Fixture::with_model_bytes(3 << 20);
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    f.sh("(echo airlock-test-data; head -c 3M /dev/urandom) > models/tiny/model2.dat && (echo airlock-test-data; head -c 3M /dev/urandom) > models/tiny/model3.dat").ok();
    // Without the model's ML-BOM, its layers are the last blobs of the bundle.
    let vols = f.pack("out", &["--volume-size", "3584KiB", "--no-sbom"]);
    assert!(vols.len() >= 3);
    // Every volume but the last: the image (first in the bundle) is visible, the model (whose
    // layers span the volumes) stays pending.
    let (last, rest) = vols.split_last().unwrap();
    for v in rest {
        airlockd(&f, &["import", "--data", "data", v]).ok();
    }
    let list = airlockd(&f, &["--json", "list", "--data", "data"])
        .ok()
        .json();
    let model = list["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "model")
        .unwrap()
        .clone();
    assert_eq!(model["visible"], false, "{list}");
    let mut s = Serving::start(&f, &[]);
    let base = format!("http://{}", s.addr);
    let r = curl(&f, &[&format!("{base}/api/models/{MODEL}")]);
    assert_eq!(status(&r), 404);
    assert_eq!(header(&r, "x-error-code"), Some("RepoNotFound"));
    let r = curl(&f, &[&format!("{base}/v2/models/{MODEL}/tags/list")]);
    assert_eq!(
        status(&r),
        404,
        "a pending model is not served under /v2 either"
    );
    assert!(body(&r).contains("NAME_UNKNOWN"));
    assert_eq!(
        status(&curl(&f, &[&format!("{base}/v2/{IMAGE}/tags/list")])),
        200,
        "the image should be visible"
    );
    // A model file that is already in the store is not a blob of the image repository.
    let present = f
        .sh("for m in models/tiny/*.safetensors; do h=$(sha256sum $m | cut -d' ' -f1); if [ -f data/blobs/sha256/$h ]; then echo $h; fi; done")
        .ok()
        .stdout;
    let present = present
        .lines()
        .next()
        .expect("a model blob imported already");
    let r = curl(&f, &[&format!("{base}/v2/{IMAGE}/blobs/sha256:{present}")]);
    assert_eq!(status(&r), 404, "{}", r.stdout);
    assert!(body(&r).contains("BLOB_UNKNOWN"));
    // The last volume arrives through the inbox: the model is served without a restart.
    std::fs::copy(f.p(last), f.p("data/inbox/last.tar.zst")).unwrap();
    std::fs::write(f.p("data/inbox/last.tar.zst.done"), "").unwrap();
    let url = format!("{base}/{MODEL}/resolve/main/model2.dat");
    let mut ok = false;
    for _ in 0..100 {
        if status(&curl(&f, &["-I", &url])) == 200 {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ok, "model not served after its last volume was imported");
    let same = f
        .sh(&format!(
            "curl -sf {url} | cmp - models/tiny/model2.dat && echo same"
        ))
        .ok()
        .stdout;
    assert_eq!(same.trim(), "same");
    assert_eq!(s.stop(), 0);
}
