#!/usr/bin/env bash
# The main job on built-in sample content, end to end:
#   build a tiny OCI image (umoci) and a tiny model in a temp dir, generate throwaway keys and a
#   trust root, pack a signed bundle, verify it, inspect it, unpack it and read it with skopeo.
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
rm -rf layouts models bin keys bundles layout src appliance root.json
mkdir -p src/hello models/tiny bin
echo "hello from the connected side" > src/hello/hello.txt
umoci init --layout layouts/hello
umoci new --image layouts/hello:v1
umoci insert --image layouts/hello:v1 src/hello /hello >/dev/null
umoci config --image layouts/hello:v1 --architecture amd64 --os linux --config.cmd /hello/hello.txt >/dev/null
umoci gc --layout layouts/hello
printf -- '---\nlicense: apache-2.0\n---\n# tiny-model\nA demo model.\n' > models/tiny/README.md
echo '{"architectures": ["TinyModel"], "hidden_size": 8}' > models/tiny/config.json
head -c 1048576 /dev/urandom > models/tiny/model.safetensors
printf '#!/bin/sh\necho k3s stand-in\n' > bin/k3s
cat > demo.yaml <<YAML
apiVersion: airlock/v1
kind: Bundle
metadata: {name: demo, version: "1.0.0", channel: stable}
spec:
  images:
    - ref: oci:./layouts/hello:v1
      name: registry.example/acme/hello:v1
  models:
    - name: acme/tiny-model
      source: dir:./models/tiny
  files:
    - name: k3s
      path: ./bin/k3s
      sha256: "$(sha256sum bin/k3s | cut -d' ' -f1)"
YAML

echo "==> keys and trust root" >&2
"$AIRLOCK" keys generate --name root --out keys
"$AIRLOCK" keys generate --name signer --out keys
"$AIRLOCK" trust init --root-key keys/root.key --signer keys/signer.pub --out root.json

echo "==> pack" >&2
"$AIRLOCK" pack demo.yaml --key keys/signer.key --out bundles
VOL=$(ls bundles/*.tar.zst)

echo "==> verify" >&2
"$AIRLOCK" verify --trust root.json $VOL

echo "==> inspect" >&2
"$AIRLOCK" inspect --trust root.json $VOL

echo "==> unpack and read back with skopeo" >&2
"$AIRLOCK" unpack --trust root.json $VOL --out layout
skopeo inspect oci:layout:registry.example/acme/hello:v1 | head -4

echo "==> disconnected side: initialize an appliance, import, list, audit" >&2
"$AIRLOCKD" init --data appliance --trust root.json
"$AIRLOCKD" import --data appliance $VOL
"$AIRLOCKD" list --data appliance
"$AIRLOCKD" fsck --data appliance
"$AIRLOCKD" audit verify --data appliance

echo "demo finished: everything is in $WORK" >&2
