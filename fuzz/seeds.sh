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
