#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds from the scanner corpus (scripts/scan-corpus.py).
# Usage: fuzz/seeds.sh CORPUS_DIR
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
src=$1
mkdir -p corpus/pickle corpus/zip corpus/safetensors corpus/gguf corpus/any
find "$src" -type f \( -name '*.pkl' -o -name '*.pt' -o -name '*.joblib' -o -name '*.bin' -o -name model \) -size -64k -exec cp -t corpus/pickle {} +
find "$src" -type f \( -name '*.zip' -o -name '*.pt' -o -name '*.npz' -o -name '*.keras' \) -size -64k -exec cp -t corpus/zip {} +
find "$src" -type f -name '*.safetensors' -size -64k -exec cp -t corpus/safetensors {} +
find "$src" -type f -name '*.gguf' -size -64k -exec cp -t corpus/gguf {} +
find "$src" -type f -size -64k -not -name cases.json -exec cp -t corpus/any {} + 2>/dev/null || true
# Image layers: every corpus tar, plain (first byte 0) and gzip-framed (first byte 1).
mkdir -p corpus/layer
python3 - "$src" corpus/layer <<'PY'
import gzip, os, sys
src, out = sys.argv[1], sys.argv[2]
for root, _, files in os.walk(src):
    for n in files:
        p = os.path.join(root, n)
        if n.endswith(".tar") and os.path.getsize(p) < 65536:
            data = open(p, "rb").read()
            open(os.path.join(out, n + ".plain"), "wb").write(b"\0" + data)
            open(os.path.join(out, n + ".gz"), "wb").write(b"\1" + gzip.compress(data))
PY
