#!/usr/bin/env bash
# The main job on built-in sample content, end to end:
#   build a tiny OCI image (umoci) and a tiny model in a temp dir, push a copy of the image to a
#   local Distribution registry and mirror it back with `airlock sync`, generate throwaway keys
#   and a trust root, pack a signed bundle, write its bill of lading, verify it, inspect it,
#   unpack it and read it with skopeo; then, on the disconnected side, import it on an
#   appliance, list, fsck, verify the audit log, serve it, and pull the image (skopeo) and the
#   model (huggingface_hub when it is installed, else airlock's own Hub client) back from the
#   appliance. A small driver-like Debian
#   package closure (two signed repositories built with dpkg-deb, apt-ftparchive and gpg) and a
#   pinned url: file come along; apt-get installs the closure from the appliance's suite into a
#   throwaway root. Every image, closure and file carries a signed SBOM, the model an ML-BOM;
#   a small vulnerability database travels as its own bundle and `airlockd vuln list` matches
#   the served images against it.
# Usage: scripts/demo.sh [WORKDIR]   (default: a fresh temp dir, kept for you to look at)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
airlock_install_apt_peers

echo "==> building airlock and airlockd" >&2
cargo build --release --bins -q
AIRLOCK="$REPO/target/release/airlock"
AIRLOCKD="$REPO/target/release/airlockd"

WORK=${1:-$(mktemp -d /tmp/airlock-demo.XXXXXX)}
mkdir -p "$WORK" && cd "$WORK"
echo "==> sample content in $WORK" >&2
rm -rf layouts models bin keys bundles layout src appliance osv vulndb-bundles root.json registry store pulled hub.yaml hubstore debrepo apt rootfs node-root airgap report.html report.html.dsse.json report.oscal.json report.oscal.json.dsse.json lading.html
mkdir -p src/hello src/dpkg src/etc models/tiny bin
echo "hello from the connected side" > src/hello/hello.txt
# A dpkg database and os-release, so that the image's SBOM names a Debian 12 package.
printf 'Package: demo-hello\nStatus: install ok installed\nArchitecture: amd64\nSource: demo-hello-src\nVersion: 1.0-1\nMaintainer: Demo Maintainers <demo@example.org>\n' > src/dpkg/status
printf 'ID=debian\nVERSION_ID="12"\n' > src/etc/os-release
umoci init --layout layouts/hello
umoci new --image layouts/hello:v1
umoci insert --image layouts/hello:v1 src/hello /hello >/dev/null
umoci insert --image layouts/hello:v1 src/dpkg /var/lib/dpkg >/dev/null
umoci insert --image layouts/hello:v1 src/etc /etc >/dev/null
umoci config --image layouts/hello:v1 --architecture amd64 --os linux --config.cmd /hello/hello.txt >/dev/null
umoci gc --layout layouts/hello
printf -- '---\nlicense: apache-2.0\n---\n# tiny-model\nA demo model.\n' > models/tiny/README.md
echo '{"architectures": ["TinyModel"], "hidden_size": 8}' > models/tiny/config.json
python3 "$REPO/scripts/gen-safetensors.py" 1048576 models/tiny/model.safetensors
printf '#!/bin/sh\necho k3s stand-in\n' > bin/k3s
printf '#!/bin/sh\necho "k3s installer stand-in (INSTALL_K3S_SKIP_DOWNLOAD=$INSTALL_K3S_SKIP_DOWNLOAD)"\n' > bin/k3s-install.sh
mkdir -p airgap && echo "k3s air-gap images stand-in" > airgap/README
tar -cf - -C airgap README | zstd -q -3 > bin/k3s-airgap-images-amd64.tar.zst
echo "==> a local registry with a copy of the image, mirrored with airlock sync" >&2
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p registry
printf 'version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' "$WORK/registry/data" "$PORT" > registry/config.yml
docker-registry serve registry/config.yml > registry/log 2>&1 &
REGISTRY_PID=$!
PIDS="$REGISTRY_PID"
trap 'kill $PIDS 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/v2/')" 2>/dev/null && break
    sleep 0.1
done
skopeo copy -q --dest-tls-verify=false oci:layouts/hello:v1 "docker://127.0.0.1:$PORT/acme/hello:v1"

echo "==> two signed apt repositories with a driver-like package stack, and a download site" >&2
"$REPO/scripts/make-deb-repo.sh" debrepo >/dev/null
cp bin/k3s debrepo/k3s
python3 "$REPO/tests/support/static_server.py" debrepo > debrepo.port 2> debrepo.log &
PIDS="$PIDS $!"
for _ in $(seq 50); do [ -s debrepo.port ] && break; sleep 0.1; done
REPO_URL="http://127.0.0.1:$(head -1 debrepo.port)"

cat > demo.yaml <<YAML
apiVersion: airlock/v1
kind: Bundle
metadata: {name: demo, version: "1.0.0", channel: stable}
spec:
  images:
    - ref: oci:./layouts/hello:v1
      name: registry.example/acme/hello:v1
    - ref: 127.0.0.1:$PORT/acme/hello:v1
      name: registry.example/acme/hello-mirrored:v1
    # Stand-ins under the names a GPU node runs (the real images are not reachable here).
    - {ref: "oci:./layouts/hello:v1", name: "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"}
    - {ref: "oci:./layouts/hello:v1", name: "docker.io/vllm/vllm-openai:v0.9.1"}
  models:
    - name: acme/tiny-model
      source: dir:./models/tiny
  files:
    - name: k3s
      url: $REPO_URL/k3s
      sha256: "$(sha256sum bin/k3s | cut -d' ' -f1)"
    - {name: k3s-install, path: ./bin/k3s-install.sh}
    - {name: k3s-airgap-images, path: ./bin/k3s-airgap-images-amd64.tar.zst}
  debs:
    - name: gpu-stack
      arch: amd64
      sources:
        - uri: $REPO_URL/archive
          suite: stable
          components: [main, non-free]
          keyring: ./debrepo/archive.gpg
        - uri: $REPO_URL/toolkit
          flat: true
          keyring: ./debrepo/toolkit.gpg
      packages: [demo-nvidia-driver, "demo-container-toolkit=1:1.17.8-1"]
  nodes:
    - name: gpu-node
      k3s: {binary: k3s, installer: k3s-install, airgapImages: k3s-airgap-images, version: v1.31.4+k3s1, config: {disable: [traefik]}}
      gpu: {vendor: nvidia, debs: gpu-stack, devicePlugin: "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"}
      workloads:
        - {name: chat, runtime: vllm, image: "docker.io/vllm/vllm-openai:v0.9.1", model: acme/tiny-model, gpus: 1, port: 8000}
YAML

echo "==> keys and trust root" >&2
"$AIRLOCK" keys generate --name root --out keys
"$AIRLOCK" keys generate --name signer --out keys
"$AIRLOCK" trust init --root-key keys/root.key --signer keys/signer.pub \
    --signer-name "keys/signer.pub=Demo Release Signer" --signer-role "keys/signer.pub=release manager" \
    --out root.json

echo "==> the Debian closure, resolved before anything is downloaded" >&2
"$AIRLOCK" debs resolve demo.yaml --store store
"$AIRLOCK" debs resolve demo.yaml --store store --why demo-perl-base

echo "==> sync and pack" >&2
"$AIRLOCK" sync demo.yaml --store store --insecure-registry "127.0.0.1:$PORT"
"$AIRLOCK" pack demo.yaml --key keys/signer.key --out bundles --store store --insecure-registry "127.0.0.1:$PORT"
VOL=$(ls bundles/*.tar.zst)

echo "==> the bill of lading for the media handed over" >&2
"$AIRLOCK" report --trust root.json $VOL --out lading.html
echo "bill of lading: $WORK/lading.html" >&2

echo "==> verify" >&2
"$AIRLOCK" verify --trust root.json $VOL

echo "==> inspect" >&2
"$AIRLOCK" inspect --trust root.json $VOL

echo "==> unpack and read back with skopeo" >&2
"$AIRLOCK" unpack --trust root.json $VOL --out layout
skopeo inspect oci:layout:registry.example/acme/hello:v1 | sed -n 1,4p

echo "==> disconnected side: initialize an appliance, import, list, audit" >&2
"$AIRLOCKD" init --data appliance --trust root.json
"$AIRLOCKD" import --data appliance --operator "demo operator" $VOL
"$AIRLOCKD" list --data appliance
"$AIRLOCKD" fsck --data appliance
"$AIRLOCKD" audit verify --data appliance

echo "==> serve the appliance and pull back from it" >&2
"$AIRLOCKD" --json serve --data appliance --listen 127.0.0.1:0 > serve.json 2> serve.log &
PIDS="$PIDS $!"
for _ in $(seq 100); do [ -s serve.json ] && break; sleep 0.1; done
ADDR=$(python3 -c 'import json; print(json.loads(open("serve.json").readline())["listening"])')
skopeo inspect --tls-verify=false "docker://$ADDR/registry.example/acme/hello:v1" | sed -n 1,3p
skopeo copy -q --src-tls-verify=false "docker://$ADDR/registry.example/acme/hello-mirrored:v1" oci:pulled:hello
umoci ls --layout pulled
if [ -x "$REPO/.venv/bin/python" ] && "$REPO/.venv/bin/python" -c 'import huggingface_hub' 2>/dev/null; then
    "$REPO/.venv/bin/python" - "$ADDR" <<'PY'
import filecmp, os, sys
from huggingface_hub import snapshot_download
d = snapshot_download("acme/tiny-model", endpoint="http://" + sys.argv[1], cache_dir="hf-cache")
for f in ("README.md", "config.json", "model.safetensors"):
    assert filecmp.cmp(os.path.join(d, f), os.path.join("models/tiny", f), shallow=False), f
print("huggingface_hub downloaded acme/tiny-model from the appliance, byte for byte:", d)
PY
else
    printf 'apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: back, version: "1"}\nspec:\n  models:\n    - source: hf:acme/tiny-model\n' > hub.yaml
    HF_ENDPOINT="http://$ADDR" "$AIRLOCK" sync hub.yaml --store hubstore
    echo "airlock's Hub client mirrored acme/tiny-model back from the appliance (huggingface_hub not installed)"
fi

echo "==> apt-get installs the closure from the appliance's suite alone, into a throwaway root" >&2
curl -sf "http://$ADDR/apt/airlock-archive-keyring.asc" > appliance.asc
mkdir -p apt/lists/partial apt/archives/partial rootfs/var/lib/dpkg/info rootfs/var/lib/dpkg/updates
touch rootfs/var/lib/dpkg/status
echo "deb [signed-by=$WORK/appliance.asc] http://$ADDR/apt gpu-stack main" > apt/sources.list
APT=(apt-get -q -o "Dir::Etc::sourcelist=$WORK/apt/sources.list" -o Dir::Etc::sourceparts=- \
     -o "Dir::State=$WORK/apt" -o "Dir::State::status=$WORK/rootfs/var/lib/dpkg/status" -o "Dir::Cache=$WORK/apt" \
     -o Debug::NoLocking=1 -o APT::Architecture=amd64 -o APT::Install-Recommends=false \
     -o "DPkg::Options::=--root=$WORK/rootfs" -o DPkg::Options::=--force-script-chrootless \
     -o "DPkg::Options::=--log=$WORK/apt/dpkg.log")
"${APT[@]}" update >/dev/null
"${APT[@]}" install -y demo-nvidia-driver "demo-container-toolkit=1:1.17.8-1" >/dev/null
dpkg --root="$WORK/rootfs" -l | grep '^ii'

echo "==> the GPU serving node the bundle describes: preflight, render, the install plan" >&2
"$AIRLOCKD" node preflight --data appliance --profile gpu-node || echo "(preflight fails on a machine without an NVIDIA GPU; the render below does not need one)" >&2
"$AIRLOCKD" node render --data appliance --profile gpu-node --root node-root --endpoint "http://$ADDR" >/dev/null
"$AIRLOCKD" node render --data appliance --profile gpu-node --root node-root --endpoint "http://$ADDR" | tail -1
(cd node-root && find . -type f | sort | sed 's|^\.|  |')
"$AIRLOCKD" node install --data appliance --profile gpu-node --endpoint "http://$ADDR" --dry-run

echo "==> every artifact's SBOM, and a vulnerability database carried as its own signed bundle" >&2
"$AIRLOCKD" sbom list --data appliance
mkdir -p osv
cat > osv/DEMO-2026-0001.json <<'JSON'
{"schema_version": "1.6.0", "id": "DEMO-2026-0001", "modified": "2026-11-30T00:00:00Z",
 "aliases": ["CVE-2026-99999"], "summary": "demo-hello greets the wrong side",
 "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N"}],
 "affected": [{"package": {"ecosystem": "Debian:12", "name": "demo-hello-src"},
               "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]}]}]}
JSON
"$AIRLOCK" vulndb pack osv --key keys/signer.key --out vulndb-bundles
"$AIRLOCKD" import --data appliance --operator "demo operator" vulndb-bundles/*.tar.zst
"$AIRLOCKD" vuln list --data appliance --artifact registry.example/acme/hello:v1

echo "==> a signed report for the compliance officer" >&2
"$AIRLOCKD" report full --data appliance --format html --out report.html
"$AIRLOCKD" report full --data appliance --format oscal --out report.oscal.json >/dev/null
echo "report: $WORK/report.html (signature: $WORK/report.html.dsse.json; OSCAL: $WORK/report.oscal.json)" >&2
echo "bill of lading of the demo bundle: $WORK/lading.html" >&2

echo "demo finished: everything is in $WORK" >&2
