//! The appliance store on S3-compatible object storage and stateless serving replicas. The
//! object store is moto's S3 server (PyPI `moto[server]`, `support/moto_server.py`) on
//! 127.0.0.1; the writer imports into it, two `airlockd serve --replica` processes serve from
//! it, and skopeo, containerd and `huggingface_hub` pull through each. Needs `airlockd` built
//! with `--features s3` (scripts/test.sh builds it so).

use std::path::Path;
use std::time::{Duration, Instant};

use airlock_e2e::{bin, flip_byte, python, Background, Containerd, Fixture, Run};

const BUCKET: &str = "airlock";
const STORE: &str = "s3://airlock/appliance";

/// moto on a free port, with the bucket; the server and its endpoint URL.
fn moto(f: &Fixture) -> (Background, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/moto_server.py");
    let b = Background::start(
        f.path(),
        python(),
        &[&script.to_string_lossy(), BUCKET],
        &f.p("moto.log"),
    );
    let url = format!("http://127.0.0.1:{}", b.first_line);
    (b, url)
}

/// `airlockd ARGS` with the object store's credentials in the environment.
fn airlockd_s3(f: &Fixture, args: &[&str]) -> Run {
    let out = std::process::Command::new(bin("airlockd"))
        .args(args)
        .current_dir(f.path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// `airlockd init` of `data` with its blobs in the bucket.
fn init_s3(f: &Fixture, endpoint: &str) {
    airlockd_s3(
        f,
        &[
            "init",
            "--data",
            "data",
            "--trust",
            "root.json",
            "--store",
            STORE,
            "--s3-endpoint",
            endpoint,
        ],
    )
    .ok();
}

/// A replica on a free port; it and its `HOST:PORT`.
fn replica(f: &Fixture, endpoint: &str, name: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin("airlockd"))
        .args([
            "--json",
            "serve",
            "--replica",
            "--store",
            STORE,
            "--s3-endpoint",
            endpoint,
            "--appliance-key",
            "data/keys/appliance.pub",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "200ms",
            "--cache",
            name,
        ])
        .current_dir(f.path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AIRLOCK_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(f.p(&format!("{name}.log"))).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        panic!(
            "replica printed {line:?} ({e}): {}",
            std::fs::read_to_string(f.p(&format!("{name}.log"))).unwrap_or_default()
        )
    });
    (child, v["listening"].as_str().unwrap().to_string())
}

/// Python with boto3 against the moto endpoint: `code` runs with `s3` (a client) and `B`.
fn boto(f: &Fixture, endpoint: &str, code: &str) -> String {
    f.sh(&format!(
        r#"{py} - <<'PY'
import boto3, hashlib
s3 = boto3.client("s3", endpoint_url="{endpoint}", aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
B = "{BUCKET}"
{code}
PY"#,
        py = python().display()
    ))
    .ok()
    .stdout
}

/// Every object under `blobs/sha256/` hashes to its key.
fn objects_match_keys(f: &Fixture, endpoint: &str) -> usize {
    let out = boto(
        f,
        endpoint,
        r#"n = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=B, Prefix="appliance/blobs/sha256/"):
    for o in page.get("Contents", []):
        body = s3.get_object(Bucket=B, Key=o["Key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == o["Key"].rsplit("/", 1)[1], o["Key"]
        n += 1
print(n)"#,
    );
    out.trim().parse().unwrap()
}

fn tag_visible(addr: &str, repo: &str, tag: &str) -> bool {
    std::process::Command::new("curl")
        .args([
            "-sf",
            "-o",
            "/dev/null",
            &format!("http://{addr}/v2/{repo}/manifests/{tag}"),
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn an_object_store_appliance_serves_through_replicas_that_follow_the_writer() {
    let f = Fixture::with_model_bytes(32 << 20);
    let (_moto, endpoint) = moto(&f);
    init_s3(&f, &endpoint);
    let vols = f.pack("out", &[]);
    let r = airlockd_s3(&f, &["--json", "import", "--data", "data", &vols[0]]).ok();
    assert_eq!(r.json()["ok"], true, "{}", r.stdout);
    // The blobs are in the bucket, none in the data directory, and fsck re-hashes objects.
    let n = objects_match_keys(&f, &endpoint);
    assert!(n >= 5, "{n} objects");
    let local = f
        .sh("find data -path '*blobs/sha256/*' -type f | wc -l")
        .ok()
        .stdout;
    assert_eq!(local.trim(), "0", "blobs in the data directory");
    airlockd_s3(&f, &["fsck", "--data", "data"]).ok();
    let heads = boto(
        &f,
        &endpoint,
        r#"print(s3.get_object(Bucket=B, Key="appliance/catalog/head.json")["Body"].read().decode())"#,
    );
    std::fs::write(f.p("head-1.json"), heads.trim()).unwrap();

    // Two replicas, no data directory of their own.
    let (mut a, addr_a) = replica(&f, &endpoint, "replica-a");
    let (mut b, addr_b) = replica(&f, &endpoint, "replica-b");
    for addr in [&addr_a, &addr_b] {
        f.sh(&format!(
            "skopeo copy -q --src-tls-verify=false docker://{addr}/registry.example/acme/hello:v1 oci:pulled-{}:v1",
            addr.replace([':', '.'], "-")
        ))
        .ok();
        f.sh(&format!(
            r#"{py} - <<'PY'
import filecmp, os
from huggingface_hub import snapshot_download
d = snapshot_download("acme/tiny-model", endpoint="http://{addr}", cache_dir="hf-{tag}")
assert filecmp.cmp(os.path.join(d, "model.safetensors"), "models/tiny/model.safetensors", shallow=False)
PY"#,
            py = python().display(),
            tag = addr.replace([':', '.'], "-")
        ))
        .ok();
    }
    // containerd through each replica (its own namespace, so the second pull fetches again),
    // as the image's upstream name mirrored there.
    let c = Containerd::start();
    for (i, addr) in [&addr_a, &addr_b].into_iter().enumerate() {
        let hosts = f.p(&format!("hosts-{i}"));
        std::fs::create_dir_all(hosts.join("registry.example")).unwrap();
        std::fs::write(
            hosts.join("registry.example/hosts.toml"),
            format!("server = \"https://registry.example\"\n[host.\"http://{addr}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"),
        )
        .unwrap();
        let ns = format!("k8s-{i}");
        c.ctr(&[
            "-n",
            &ns,
            "images",
            "pull",
            "--plain-http",
            "--hosts-dir",
            &hosts.to_string_lossy(),
            "--snapshotter",
            "native",
            "registry.example/acme/hello:v1",
        ])
        .ok();
    }

    // A second import becomes visible on both replicas within a few poll intervals.
    let m2 = std::fs::read_to_string(f.p("m.yaml"))
        .unwrap()
        .replace("version: \"1.0.0\"", "version: \"1.0.1\"")
        .replace(
            "registry.example/acme/hello:v1",
            "registry.example/acme/hello:v2",
        );
    std::fs::write(f.p("m2.yaml"), m2).unwrap();
    let vols2 = f.pack_manifest("m2.yaml", "out2", &[]);
    airlockd_s3(&f, &["import", "--data", "data", &vols2[0]]).ok();
    let start = Instant::now();
    while !(tag_visible(&addr_a, "registry.example/acme/hello", "v2")
        && tag_visible(&addr_b, "registry.example/acme/hello", "v2"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the second import did not reach both replicas"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "second import visible on both replicas after {:?}",
        start.elapsed()
    );

    // An older head put back, and a head whose payload was altered: neither is loaded.
    let old = std::fs::read_to_string(f.p("head-1.json")).unwrap();
    boto(
        &f,
        &endpoint,
        &format!(
            "s3.put_object(Bucket=B, Key='appliance/catalog/head.json', Body={old:?}.encode())"
        ),
    );
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        tag_visible(&addr_a, "registry.example/acme/hello", "v2"),
        "an older snapshot was loaded"
    );
    let forged = {
        let mut v: serde_json::Value = serde_json::from_str(&old).unwrap();
        let payload = String::from_utf8(base64_decode(v["payload"].as_str().unwrap()))
            .unwrap()
            .replace("\"version\":", "\"version\":9");
        v["payload"] = serde_json::json!(base64_encode(payload.as_bytes()));
        v.to_string()
    };
    boto(
        &f,
        &endpoint,
        &format!(
            "s3.put_object(Bucket=B, Key='appliance/catalog/head.json', Body={forged:?}.encode())"
        ),
    );
    std::thread::sleep(Duration::from_millis(800));
    assert!(tag_visible(&addr_a, "registry.example/acme/hello", "v2"));
    let log = std::fs::read_to_string(f.p("replica-a.log")).unwrap();
    assert!(
        log.contains("does not verify against the appliance key"),
        "{log}"
    );

    // A replica started while the head does not verify serves nothing but keeps polling, and
    // loads the first snapshot that verifies.
    let (mut late, addr_c) = replica(&f, &endpoint, "replica-c");
    std::thread::sleep(Duration::from_millis(600));
    assert!(!tag_visible(&addr_c, "registry.example/acme/hello", "v1"));
    boto(
        &f,
        &endpoint,
        &format!(
            "s3.put_object(Bucket=B, Key='appliance/catalog/head.json', Body={old:?}.encode())"
        ),
    );
    let start = Instant::now();
    while !tag_visible(&addr_c, "registry.example/acme/hello", "v1") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the late replica never loaded a snapshot"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    late.kill().unwrap();
    late.wait().unwrap();

    // One replica killed mid-pull: the client retries on the other and gets the same bytes.
    let model = f
        .sh("sha256sum models/tiny/model.safetensors | cut -d' ' -f1")
        .ok()
        .stdout;
    let url_a = format!("http://{addr_a}/acme/tiny-model/resolve/main/model.safetensors");
    let mut pull = std::process::Command::new("curl")
        .args([
            "-sfL",
            "--limit-rate",
            "1M",
            "-o",
            &f.p("partial.bin").to_string_lossy(),
            &url_a,
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    a.kill().unwrap();
    a.wait().unwrap();
    let status = pull.wait().unwrap();
    assert!(
        !status.success(),
        "the pull from the killed replica finished anyway"
    );
    let url_b = format!("http://{addr_b}/acme/tiny-model/resolve/main/model.safetensors");
    let got = f
        .sh(&format!("curl -sfL '{url_b}' | sha256sum | cut -d' ' -f1"))
        .ok()
        .stdout;
    assert_eq!(got.trim(), model.trim());
    b.kill().unwrap();
    b.wait().unwrap();
}

#[test]
fn a_writer_killed_while_uploading_leaves_no_object_that_is_not_its_digest() {
    let f = Fixture::with_model_bytes(80 << 20);
    let (_moto, endpoint) = moto(&f);
    init_s3(&f, &endpoint);
    let vols = f.pack("out", &[]);
    for after_ms in [300u64, 900, 1800] {
        let mut child = std::process::Command::new(bin("airlockd"))
            .args(["import", "--data", "data", &vols[0]])
            .current_dir(f.path())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(after_ms));
        let _ = child.kill();
        child.wait().unwrap();
        objects_match_keys(&f, &endpoint);
        airlockd_s3(&f, &["fsck", "--data", "data"]).ok();
    }
    let r = airlockd_s3(&f, &["--json", "import", "--data", "data", &vols[0]]).ok();
    assert_eq!(r.json()["ok"], true, "{}", r.stdout);
    assert!(objects_match_keys(&f, &endpoint) >= 5);
    airlockd_s3(&f, &["fsck", "--data", "data"]).ok();
}

/// Keys under `appliance/PREFIX` with their sizes, one `KEY SIZE` per line.
fn keys(f: &Fixture, endpoint: &str, prefix: &str) -> Vec<(String, u64)> {
    boto(
        f,
        endpoint,
        &format!(
            r#"for page in s3.get_paginator("list_objects_v2").paginate(Bucket=B, Prefix="appliance/{prefix}"):
    for o in page.get("Contents", []):
        print(o["Key"], o["Size"])"#
        ),
    )
    .lines()
    .map(|l| {
        let (k, n) = l.rsplit_once(' ').unwrap();
        (k.to_string(), n.parse().unwrap())
    })
    .collect()
}

#[test]
fn split_blob_parts_quarantine_and_old_snapshots_live_in_the_bucket() {
    let f = Fixture::with_model_bytes(48 << 20);
    let (_moto, endpoint) = moto(&f);
    init_s3(&f, &endpoint);
    let vols = f.pack("out", &["--volume-size", "16MiB"]);
    assert!(vols.len() >= 4, "{vols:?}");
    let hex = f
        .sh("sha256sum models/tiny/model.safetensors | cut -d' ' -f1")
        .ok()
        .stdout
        .trim()
        .to_string();
    let parts_prefix = format!("staging-parts/{hex}/blobs/sha256/");
    let on_disk = |f: &Fixture| {
        f.sh("find data -path '*staging-parts*' -type f | wc -l")
            .ok()
            .stdout
            .trim()
            .to_string()
    };

    // A tampered copy of a volume that carries only model bytes is refused: its copy goes to
    // `quarantine/` in the bucket with the reason beside it, nothing to the writer's disk, and
    // none of its parts is kept.
    f.sh(&format!("mkdir media && cp {} media/bad.tar.zst", vols[1]))
        .ok();
    let len = std::fs::metadata(f.p("media/bad.tar.zst")).unwrap().len();
    flip_byte(&f.p("media/bad.tar.zst"), len / 2);
    let r = airlockd_s3(
        &f,
        &["--json", "import", "--data", "data", "media/bad.tar.zst"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let q = r.json()["volumes"][0]["quarantined"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        q.starts_with("s3://airlock/appliance/quarantine/") && q.ends_with("bad.tar.zst"),
        "{q}"
    );
    let quarantined = keys(&f, &endpoint, "quarantine/");
    assert_eq!(quarantined.len(), 2, "{quarantined:?}");
    let key = q.strip_prefix("s3://airlock/").unwrap();
    assert!(
        quarantined.contains(&(key.to_string(), len)),
        "{quarantined:?}"
    );
    let reason = boto(
        &f,
        &endpoint,
        &format!(
            r#"import json
d = json.loads(s3.get_object(Bucket=B, Key="{key}.reason.json")["Body"].read())
print(d["kind"], d["volume"] == "s3://airlock/{key}", d["originalPath"])"#
        ),
    );
    assert_eq!(reason.trim(), "integrity True media/bad.tar.zst");
    assert_eq!(
        f.sh("find data/quarantine -type f 2>/dev/null | wc -l")
            .ok()
            .stdout
            .trim(),
        "0"
    );
    assert!(keys(&f, &endpoint, &parts_prefix).is_empty());
    // The full report lists the copy, found in the bucket.
    airlockd_s3(
        &f,
        &[
            "report",
            "full",
            "--data",
            "data",
            "--skip-fsck",
            "--format",
            "json",
            "--out",
            "r.json",
        ],
    )
    .ok();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.p("r.json")).unwrap()).unwrap();
    let listed = report["exceptions"]["quarantined"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{report:#}");
    assert_eq!(listed[0]["quarantinedAs"], q.as_str());

    // Every volume but the last: the parts they carry are kept in the bucket, none on disk.
    for v in &vols[..vols.len() - 1] {
        let r = airlockd_s3(&f, &["--json", "import", "--data", "data", v]).ok();
        assert_eq!(r.json()["ok"], true, "{}", r.stdout);
        assert_eq!(on_disk(&f), "0", "after {v}");
    }
    let kept = keys(&f, &endpoint, &parts_prefix);
    assert!(kept.len() >= 2, "{kept:?}");
    assert!(keys(&f, &endpoint, &format!("blobs/sha256/{hex}")).is_empty());

    // The last volume completes the blob: assembled from the bucket, verified, stored under
    // its digest; the parts are gone.
    let r = airlockd_s3(
        &f,
        &["--json", "import", "--data", "data", &vols[vols.len() - 1]],
    )
    .ok();
    assert_eq!(r.json()["ok"], true, "{}", r.stdout);
    assert!(keys(&f, &endpoint, &parts_prefix).is_empty());
    assert_eq!(
        keys(&f, &endpoint, &format!("blobs/sha256/{hex}")),
        vec![(
            format!("appliance/blobs/sha256/{hex}"),
            std::fs::metadata(f.p("models/tiny/model.safetensors"))
                .unwrap()
                .len()
        )]
    );
    objects_match_keys(&f, &endpoint);
    airlockd_s3(&f, &["fsck", "--data", "data"]).ok();
    let list = airlockd_s3(&f, &["--json", "list", "--data", "data"])
        .ok()
        .json();
    assert!(
        list["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "model" && a["visible"] == true),
        "{list}"
    );

    // One snapshot per accepted import, but only the newest two are kept.
    let snaps = keys(&f, &endpoint, "catalog/catalog-");
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    let head = boto(
        &f,
        &endpoint,
        r#"import json, base64
env = json.loads(s3.get_object(Bucket=B, Key="appliance/catalog/head.json")["Body"].read())
print(json.loads(base64.b64decode(env["payload"]))["key"])"#,
    );
    assert_eq!(format!("appliance/{}", head.trim()), snaps[1].0);
}

#[test]
fn an_object_store_needs_credentials_and_a_reachable_bucket() {
    let f = Fixture::new();
    let (_moto, endpoint) = moto(&f);
    // No credentials: the error says where they were looked for.
    let out = std::process::Command::new(bin("airlockd"))
        .args([
            "init",
            "--data",
            "data",
            "--trust",
            "root.json",
            "--store",
            STORE,
            "--s3-endpoint",
            &endpoint,
        ])
        .current_dir(f.path())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", f.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("credentials"), "{err}");
    // A bucket that does not exist.
    airlockd_s3(
        &f,
        &[
            "init",
            "--data",
            "data2",
            "--trust",
            "root.json",
            "--store",
            "s3://no-such-bucket/x",
            "--s3-endpoint",
            &endpoint,
        ],
    )
    .fails()
    .says(&["no-such-bucket"]);
}

fn base64_decode(s: &str) -> Vec<u8> {
    let out = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    out.stdout
}

fn base64_encode(b: &[u8]) -> String {
    let out = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_node_renders_from_an_object_store_appliance() {
    let f = Fixture::new();
    let (_moto, endpoint) = moto(&f);
    init_s3(&f, &endpoint);
    f.sh(r#"printf '#!/bin/sh\n' > bin/install.sh
mkdir -p airgap && echo images > airgap/README && tar -cf bin/airgap.tar -C airgap README
zstd -q -3 bin/airgap.tar -o bin/good.tar.zst
zstd -q --long=27 -c < bin/airgap.tar > bin/long.tar.zst
cat >> m.yaml <<'YAML'
    - {name: k3s-install, path: ./bin/install.sh}
    - {name: good-images, path: ./bin/good.tar.zst}
    - {name: long-images, path: ./bin/long.tar.zst}
  nodes:
    - name: cpu-node
      k3s: {binary: k3s, installer: k3s-install, airgapImages: good-images}
    - name: long-node
      k3s: {binary: k3s, installer: k3s-install, airgapImages: long-images}
YAML"#)
        .ok();
    let vols = f.pack("out", &[]);
    airlockd_s3(&f, &["import", "--data", "data", &vols[0]]).ok();
    let render = |profile: &str, root: &str| {
        airlockd_s3(
            &f,
            &[
                "node",
                "render",
                "--data",
                "data",
                "--profile",
                profile,
                "--root",
                root,
                "--endpoint",
                "http://127.0.0.1:5000",
            ],
        )
    };
    // Copied out of the bucket (no local file to link), byte for byte.
    render("cpu-node", "root").ok();
    assert_eq!(
        std::fs::read(f.p("root/var/lib/rancher/k3s/agent/images/good-images.tar.zst")).unwrap(),
        std::fs::read(f.p("bin/good.tar.zst")).unwrap()
    );
    render("cpu-node", "root")
        .ok()
        .says(&["no change: already up to date"]);
    // The window is checked on the copy, which is taken back when k3s could not read it.
    render("long-node", "root2")
        .fails()
        .says(&["zstd window is 128 MiB"]);
    assert!(!f
        .p("root2/var/lib/rancher/k3s/agent/images/long-images.tar.zst")
        .exists());
}
