//! The k3s GPU serving node: a node profile carried in a signed bundle, rendered from the
//! appliance's store and checked by what is real here. There is no k3s or API server on these
//! machines, so each rendered piece is checked by the peer that consumes it:
//! `kubernetes-validate --strict` for the manifests, containerd (`ctr images import`, and a pull
//! through the mirror registries.yaml describes) for the image archives and registries.yaml,
//! `zstd -lv` for the window of the carried air-gap tarball, `systemd-analyze verify` for the
//! unit. The device plugin and vLLM images are small stand-in images (umoci) under the real
//! names, and the k3s binary and installer are stand-in files: the real ones cannot be fetched
//! here. `node install` runs against a sandbox root with stub `apt-get`, `nvidia-smi`,
//! `nvidia-ctk`, `nvidia-container-runtime`, `systemctl` and `k3s` that record their calls.
//! `node preflight` reads the fixture sysfs/procfs trees under
//! `crates/airlock-node/tests/fixtures/preflight/`. 127.0.0.1 only.

use std::path::Path;

use airlock_e2e::{airlockd, bin, python, Containerd, Fixture, Run};

use crate::serve::Serving;

const PLUGIN: &str = "nvcr.io/nvidia/k8s-device-plugin:v0.17.1";
const VLLM: &str = "docker.io/vllm/vllm-openai:v0.9.1";

fn node_manifest(url: &str, airgap: &str) -> String {
    format!(
        r#"apiVersion: airlock/v1
kind: Bundle
metadata: {{name: node, version: "1.0.0"}}
spec:
  images:
    - {{ref: "oci:./layouts/hello:v1", name: "registry.example/acme/hello:v1"}}
    - {{ref: "oci:./layouts/hello:v1", name: "{VLLM}"}}
    - {{ref: "oci:./layouts/hello:v1", name: "{PLUGIN}"}}
    - {{ref: "oci:./layouts/hello:v1", name: "registry.example/airlock/airlockd:0.1.0"}}
  models:
    - {{name: acme/tiny-model, source: "dir:./models/tiny"}}
  files:
    - {{name: k3s, path: ./bin/k3s}}
    - {{name: k3s-install, path: ./bin/install.sh}}
    - {{name: k3s-airgap-images, path: ./bin/{airgap}}}
  debs:
    - name: gpu-stack
      arch: amd64
      sources:
        - {{uri: "{url}/archive", suite: stable, components: [main, non-free], keyring: ./repo/archive.gpg}}
        - {{uri: "{url}/toolkit", flat: true, keyring: ./repo/toolkit.gpg}}
      packages: [demo-nvidia-driver, demo-container-toolkit]
  nodes:
    - name: gpu-node
      k3s: {{binary: k3s, airgapImages: k3s-airgap-images, installer: k3s-install, version: v1.31.4+k3s1, config: {{disable: [traefik]}}}}
      gpu: {{vendor: nvidia, debs: gpu-stack, devicePlugin: "{PLUGIN}"}}
      workloads:
        - {{name: chat, runtime: vllm, image: "vllm/vllm-openai:v0.9.1", model: acme/tiny-model, gpus: 1, port: 8000}}
        - {{name: chat-remote, runtime: vllm, image: "vllm/vllm-openai:v0.9.1", model: acme/tiny-model, modelDelivery: endpoint, gpus: 1, port: 8001}}
      appliance: {{replicas: 3, image: "registry.example/airlock/airlockd:0.1.0", store: "s3://airlock/rack1", s3Endpoint: "https://rgw.rack:7480"}}
"#
    )
}

/// A fixture with the node bundle imported into `data`; `airgap` names the air-gap tarball
/// file under `bin/` (made by the caller's script).
fn imported(airgap_script: &str, airgap: &str) -> Fixture {
    let f = Fixture::new();
    let (_srv, url) = crate::debs::repos(&f, &[]);
    f.sh(&format!(
        r#"printf '#!/bin/sh\necho "installer INSTALL_K3S_SKIP_DOWNLOAD=$INSTALL_K3S_SKIP_DOWNLOAD" >> "$CALLS"\n[ -z "$INSTALL_FAIL" ] || {{ echo "installer: failed" >&2; exit 1; }}\n' > bin/install.sh
mkdir -p airgap && echo images > airgap/README && tar -cf bin/airgap.tar -C airgap README
{airgap_script}"#
    ))
    .ok();
    std::fs::write(f.p("node.yaml"), node_manifest(&url, airgap)).unwrap();
    f.airlock(&["sync", "node.yaml", "--store", "store"]).ok();
    let vols = f.pack_manifest("node.yaml", "out", &["--store", "store"]);
    airlockd(&f, &["init", "--data", "data", "--trust", "root.json"]).ok();
    airlockd(&f, &["import", "--data", "data", &vols[0]]).ok();
    f
}

/// `airlockd node render --data data --profile PROFILE --root ROOT EXTRA...`.
fn render(f: &Fixture, profile: &str, root: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "node",
        "render",
        "--data",
        "data",
        "--profile",
        profile,
        "--root",
        root,
    ];
    args.extend_from_slice(extra);
    airlockd(f, &args)
}

fn tree_digest(f: &Fixture, root: &str) -> String {
    f.sh(&format!(
        "cd {root} && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum"
    ))
    .ok()
    .stdout
}

#[test]
fn a_gpu_node_renders_from_the_bundle_and_every_piece_passes_its_consumer() {
    let f = imported(
        "zstd -q -3 bin/airgap.tar -o bin/k3s-airgap-images.tar.zst",
        "k3s-airgap-images.tar.zst",
    );
    let s = Serving::start(&f, &["--tls"]);
    let ep = format!("https://{}", s.addr);
    let render_json = |root: &str| {
        render(&f, "gpu-node", root, &["--json", "--endpoint", &ep])
            .ok()
            .json()
    };
    let v = render_json("root");
    let files: Vec<&str> = v["render"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for want in [
        "/usr/local/bin/k3s",
        "/usr/local/bin/k3s-install.sh",
        "/var/lib/rancher/k3s/agent/images/k3s-airgap-images.tar.zst",
        "/var/lib/rancher/k3s/agent/images/airlock-nvcr.io-nvidia-k8s-device-plugin-v0.17.1.tar",
        "/var/lib/rancher/k3s/agent/images/airlock-docker.io-vllm-vllm-openai-v0.9.1.tar",
        "/etc/rancher/k3s/registries.yaml",
        "/etc/rancher/k3s/airlock-ca.pem",
        "/etc/rancher/k3s/config.yaml",
        "/var/lib/rancher/k3s/server/manifests/airlock-nvidia-device-plugin.yaml",
        "/var/lib/rancher/k3s/server/manifests/airlock-runtimeclass-nvidia.yaml",
        "/var/lib/rancher/k3s/server/manifests/airlock-workload-chat.yaml",
        "/var/lib/rancher/k3s/server/manifests/airlock-appliance-replicas.yaml",
        "/var/lib/rancher/k3s/agent/images/airlock-registry.example-airlock-airlockd-0.1.0.tar",
        "/etc/apt/sources.list.d/airlock.list",
        "/etc/apt/keyrings/airlock.asc",
        "/etc/systemd/system/airlockd.service",
    ] {
        assert!(files.contains(&want), "{want} not rendered: {files:?}");
    }
    let model_files: Vec<&&str> = files
        .iter()
        .filter(|p| p.starts_with("/var/lib/airlock/models/acme/tiny-model/"))
        .collect();
    assert_eq!(model_files.len(), 4, "{model_files:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(f.p(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("root/usr/local/bin/k3s"), 0o755);
    assert_eq!(
        std::fs::read(f.p("root/usr/local/bin/k3s")).unwrap(),
        std::fs::read(f.p("bin/k3s")).unwrap()
    );
    // The model is staged byte for byte.
    let staged = model_files
        .iter()
        .find(|p| p.ends_with("/model.safetensors"))
        .unwrap();
    assert_eq!(
        std::fs::read(f.p(&format!("root{staged}"))).unwrap(),
        std::fs::read(f.p("models/tiny/model.safetensors")).unwrap()
    );

    // Render again: nothing changes, and it says so.
    let before = tree_digest(&f, "root");
    let again = render_json("root");
    assert_eq!(again["render"]["changed"], 0, "{again}");
    assert_eq!(tree_digest(&f, "root"), before);
    render(&f, "gpu-node", "root", &["--endpoint", &ep])
        .ok()
        .says(&["no change: already up to date"]);

    // Manifests: kubernetes-validate, strict, for the profile's Kubernetes version.
    let manifests = f.p("root/var/lib/rancher/k3s/server/manifests");
    let mut args = vec![
        "-m".to_string(),
        "kubernetes_validate".into(),
        "--strict".into(),
        "-k".into(),
        "1.31.4".into(),
    ];
    for e in std::fs::read_dir(&manifests).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let stem = name.strip_suffix(".yaml").unwrap();
        assert!(
            stem.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
            "{name} is not an RFC 1123 name"
        );
        args.push(p.to_string_lossy().to_string());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = airlock_e2e::run_in(f.path(), python(), &argv);
    assert_eq!(r.code, 0, "kubernetes-validate: {}{}", r.stdout, r.stderr);
    assert!(
        !r.stdout.contains("ERROR") && !r.stderr.contains("ERROR"),
        "{}{}",
        r.stdout,
        r.stderr
    );

    // The carried air-gap tarball's window is one k3s decodes.
    let z = f
        .sh("zstd -lv root/var/lib/rancher/k3s/agent/images/k3s-airgap-images.tar.zst 2>&1 | sed -n 's/.*Window Size: .*(\\([0-9]*\\) B).*/\\1/p'")
        .ok()
        .stdout;
    let window: u64 = z
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("zstd -lv: {z:?}"));
    assert!(window <= 32 << 20, "{window}");

    // Image archives: a private containerd imports them under their upstream names.
    let c = Containerd::start();
    for img in [
        "nvcr.io-nvidia-k8s-device-plugin-v0.17.1",
        "docker.io-vllm-vllm-openai-v0.9.1",
    ] {
        let path = f.p(&format!(
            "root/var/lib/rancher/k3s/agent/images/airlock-{img}.tar"
        ));
        c.ctr(&[
            "-n",
            "k8s.io",
            "images",
            "import",
            "--snapshotter",
            "native",
            "--platform",
            "linux/amd64",
            &path.to_string_lossy(),
        ])
        .ok();
    }
    let listed = c.ctr(&["-n", "k8s.io", "images", "ls", "-q"]).ok().stdout;
    for name in [PLUGIN, VLLM] {
        assert!(
            listed.lines().any(|l| l == name),
            "{name} not imported: {listed}"
        );
    }

    // registries.yaml, as k3s turns it into containerd's hosts.toml: an image that is not
    // preloaded is pulled from the appliance under its upstream name, over TLS with the CA.
    f.sh(&format!(
        r#"{py} - <<'PY'
import os, yaml
root = os.path.abspath("root")
reg = yaml.safe_load(open(f"{{root}}/etc/rancher/k3s/registries.yaml"))
for upstream, m in reg["mirrors"].items():
    if upstream == "*":
        continue
    d = os.path.join("hosts", upstream)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "hosts.toml"), "w") as out:
        out.write(f'server = "https://{{upstream}}"\n')
        for ep in m["endpoint"]:
            host = ep.split("://", 1)[1]
            ca = reg["configs"][host]["tls"]["ca_file"]
            out.write(f'[host."{{ep}}"]\n  capabilities = ["pull", "resolve"]\n  ca = "{{root}}{{ca}}"\n')
PY"#,
        py = python().display()
    ))
    .ok();
    c.ctr(&[
        "-n",
        "k8s.io",
        "images",
        "pull",
        "--hosts-dir",
        &f.p("hosts").to_string_lossy(),
        "--snapshotter",
        "native",
        "registry.example/acme/hello:v1",
    ])
    .ok();
    drop(s);

    // The airlockd unit: systemd-analyze verify in a root holding the distribution's units
    // and the binary the unit starts, with nothing on stderr.
    f.sh(&format!(
        "mkdir -p root/lib/systemd root/tmp && cp -r /lib/systemd/system root/lib/systemd/ && cp {} root/usr/local/bin/airlockd",
        bin("airlockd").display()
    ))
    .ok();
    let r = airlock_e2e::run_in(
        f.path(),
        "systemd-analyze",
        &[
            "verify",
            "--root",
            &f.p("root").to_string_lossy(),
            "/etc/systemd/system/airlockd.service",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr.trim(), "", "systemd-analyze verify");

    // An agent: same registries, joins the server, no manifests or appliance unit.
    let agent = [
        "--json",
        "--endpoint",
        &ep,
        "--role",
        "agent",
        "--server",
        "https://10.0.0.1:6443",
        "--token-file",
        "/etc/rancher/k3s/token",
    ];
    let v = render(&f, "gpu-node", "agent", &agent).ok().json();
    let agent_files = v["render"]["files"].to_string();
    assert!(
        !agent_files.contains("server/manifests") && !agent_files.contains("airlockd.service"),
        "{agent_files}"
    );
    assert_eq!(
        std::fs::read(f.p("agent/etc/rancher/k3s/registries.yaml")).unwrap(),
        std::fs::read(f.p("root/etc/rancher/k3s/registries.yaml")).unwrap()
    );
    let cfg = std::fs::read_to_string(f.p("agent/etc/rancher/k3s/config.yaml")).unwrap();
    assert!(
        cfg.contains("server: https://10.0.0.1:6443")
            && cfg.contains("token-file: /etc/rancher/k3s/token"),
        "{cfg}"
    );
    let cfg = std::fs::read_to_string(f.p("root/etc/rancher/k3s/config.yaml")).unwrap();
    assert!(
        cfg.contains("embedded-registry: true") && cfg.contains("nvidia.com/gpu.present=true"),
        "{cfg}"
    );
}

#[test]
fn an_airgap_tarball_k3s_cannot_decode_is_refused_and_profiles_must_resolve() {
    // zstd --long=27 from a pipe declares a 128 MiB window: k3s stops with "window size
    // exceeded". Render refuses it and names the fix.
    let f = imported(
        "zstd -q --long=27 -c < bin/airgap.tar > bin/long.tar.zst",
        "long.tar.zst",
    );
    let r = render(
        &f,
        "gpu-node",
        "root",
        &["--endpoint", "https://127.0.0.1:5000"],
    )
    .fails()
    .says(&["zstd window is 128 MiB", "at most 32 MiB"]);
    drop(r);
    assert!(!f
        .p("root/var/lib/rancher/k3s/agent/images/long.tar.zst")
        .exists());
    render(&f, "gpu-nod", "root", &[]).fails().says(&[
        "no imported bundle carries node profile \"gpu-nod\"",
        "gpu-node",
    ]);

    // A profile naming what the manifest does not carry is a pack error naming it.
    let text = std::fs::read_to_string(f.p("node.yaml")).unwrap().replace(
        "debs: gpu-stack, devicePlugin",
        "debs: gpu-stak, devicePlugin",
    );
    std::fs::write(f.p("bad.yaml"), text).unwrap();
    f.airlock(&[
        "pack",
        "bad.yaml",
        "--key",
        "keys/signer.key",
        "--out",
        "bad",
        "--store",
        "store",
    ])
    .fails()
    .says(&["spec.nodes[0].gpu.debs: \"gpu-stak\" is not a debs: entry of this manifest"]);
}

fn preflight(f: &Fixture, fixture: &str) -> (Run, serde_json::Value) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/airlock-node/tests/fixtures/preflight")
        .join(fixture);
    let r = airlockd(
        f,
        &[
            "--json",
            "node",
            "preflight",
            "--root",
            &root.to_string_lossy(),
        ],
    );
    let v = r.json();
    (r, v)
}

fn check<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} check: {v}"))
}

#[test]
fn preflight_reads_gpus_drivers_and_nouveau_from_fixture_trees() {
    let f = Fixture::new();
    let (r, v) = preflight(&f, "h100");
    assert_eq!(r.code, 0, "{v}");
    assert_eq!(v["gpus"][0]["vendor"], "0x10de");
    assert_eq!(v["gpus"][0]["driver"], "nvidia");
    assert_eq!(check(&v, "gpu")["status"], "ok");
    assert_eq!(check(&v, "driver")["status"], "ok");
    let (r, v) = preflight(&f, "nouveau");
    assert_eq!(r.code, 1, "{v}");
    assert_eq!(check(&v, "nouveau")["status"], "fail");
    assert!(
        check(&v, "nouveau")["fix"]
            .as_str()
            .unwrap()
            .contains("blacklist"),
        "{v}"
    );
    let (r, v) = preflight(&f, "no-gpu");
    assert_eq!(r.code, 1, "{v}");
    assert_eq!(check(&v, "gpu")["status"], "fail");
    assert!(v["gpus"].as_array().unwrap().is_empty());
}

/// Stub commands that append their name and arguments to `$CALLS`; `STUBS/fail-NAME` makes
/// NAME exit 1.
fn stubs(f: &Fixture) {
    f.sh(r#"mkdir -p stubs
for n in apt-get nvidia-smi nvidia-ctk nvidia-container-runtime systemctl; do
cat > stubs/$n <<'SH'
#!/bin/sh
n=$(basename "$0")
echo "$n $*" >> "$CALLS"
[ -e "$STUBS/fail-$n" ] && { echo "$n failed" >&2; exit 1; }
[ "$n" = systemctl ] && exit 3
exit 0
SH
chmod +x stubs/$n
done
cat > stubs/k3s <<'SH'
#!/bin/sh
echo "k3s $*" >> "$CALLS"
case "$*" in
  *Ready*) echo True ;;
  *allocatable*) echo 1 ;;
esac
exit 0
SH
chmod +x stubs/k3s"#)
        .ok();
}

#[test]
fn install_runs_driver_toolkit_then_k3s_stops_at_a_failure_and_resumes() {
    let f = imported(
        "cp bin/airgap.tar bin/k3s-airgap-images.tar",
        "k3s-airgap-images.tar",
    );
    stubs(&f);
    // The sandbox root is a GPU machine as preflight sees it.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/airlock-node/tests/fixtures/preflight/h100");
    f.sh(&format!(
        "mkdir -p sandbox && cp -a {}/. sandbox/",
        fixture.display()
    ))
    .ok();
    let path = format!(
        "{}:{}",
        f.p("stubs").display(),
        std::env::var("PATH").unwrap()
    );
    // (exit code, stdout JSON, stderr, the stubs' calls)
    let install = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "--json",
            "node",
            "install",
            "--data",
            "data",
            "--profile",
            "gpu-node",
            "--root",
            "sandbox",
            "--endpoint",
            "https://127.0.0.1:5000",
            "--timeout",
            "5s",
            "--poll",
            "0s",
        ];
        args.extend_from_slice(extra);
        let out = std::process::Command::new(bin("airlockd"))
            .args(&args)
            .current_dir(f.path())
            .env("PATH", &path)
            .env("CALLS", f.p("calls.log"))
            .env("STUBS", f.p("stubs"))
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let calls = std::fs::read_to_string(f.p("calls.log")).unwrap_or_default();
        let _ = std::fs::remove_file(f.p("calls.log"));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let v: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
        (out.status.code().unwrap(), v, stderr, calls)
    };

    // --dry-run: the plan in order, nothing run.
    let (code, v, err, calls) = install(&["--dry-run"], &[]);
    assert_eq!(code, 0, "{v}{err}");
    assert!(calls.is_empty(), "{calls}");
    let steps: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "preflight",
            "packages",
            "driver",
            "toolkit",
            "k3s",
            "node-ready",
            "gpu-allocatable",
            "workloads"
        ]
    );

    // The installer fails: the run stops at k3s with a fix, after the driver and the toolkit.
    let (code, v, err, calls) = install(&[], &[("INSTALL_FAIL", "1")]);
    assert_eq!(code, 1, "{v}{err}");
    assert_eq!(v["complete"], false);
    let last = v["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (last["id"].as_str(), last["status"].as_str()),
        (Some("k3s"), Some("failed")),
        "{v}"
    );
    assert!(last["fix"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    let order: Vec<&str> = calls
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    let pos = |n: &str| {
        order
            .iter()
            .position(|c| *c == n)
            .unwrap_or_else(|| panic!("{n} not run: {calls}"))
    };
    assert!(pos("apt-get") < pos("nvidia-smi"), "{calls}");
    assert!(pos("nvidia-smi") < pos("nvidia-ctk"), "{calls}");
    assert!(pos("nvidia-ctk") < pos("installer"), "{calls}");
    assert!(
        calls.contains("installer INSTALL_K3S_SKIP_DOWNLOAD=true"),
        "{calls}"
    );
    assert!(
        calls.contains("sources.list.d/airlock.list"),
        "apt reads only the appliance suite: {calls}"
    );
    assert!(
        calls.contains("demo-nvidia-driver demo-container-toolkit"),
        "{calls}"
    );
    assert!(
        !calls.contains("kubectl"),
        "ran past the failed step: {calls}"
    );

    // Again, with the installer working: packages, driver and toolkit are not redone.
    let (code, v, err, calls) = install(&[], &[]);
    assert_eq!(code, 0, "{v}{err}");
    assert_eq!(v["complete"], true, "{v}");
    assert!(
        !calls.contains("apt-get"),
        "the resumed run re-installed packages: {calls}"
    );
    assert!(
        calls.contains("installer") && calls.contains("rollout status deployment/chat"),
        "{calls}"
    );

    // Every step is in the audit log.
    let log = airlockd(&f, &["--json", "audit", "show", "--data", "data"])
        .ok()
        .stdout;
    assert!(log.contains("node-install-step"), "{log}");
    for step in ["\"packages\"", "\"k3s\"", "\"workloads\"", "\"failed\""] {
        assert!(log.contains(step), "{step} not in the audit log");
    }

    // A machine whose driver is installed but not loaded: reboot, then run again.
    std::fs::remove_file(f.p("sandbox/var/lib/airlock/node/install-gpu-node.json")).unwrap();
    std::fs::remove_file(f.p("sandbox/proc/driver/nvidia/version")).unwrap();
    std::fs::write(f.p("stubs/fail-nvidia-smi"), "").unwrap();
    let (code, v, err, calls) = install(&[], &[]);
    assert_eq!(code, 1, "{v}{err}");
    let last = v["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (last["id"].as_str(), last["status"].as_str()),
        (Some("driver"), Some("reboot-required")),
        "{v}"
    );
    assert!(!calls.contains("nvidia-ctk"), "{calls}");
}
