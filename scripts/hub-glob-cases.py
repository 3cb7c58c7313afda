"""Prints the pattern cases of crates/airlock-mirror/src/glob_cases.json, each decided by the
installed huggingface_hub's filter_repo_objects (allow_patterns=[pattern]).

Usage: python scripts/hub-glob-cases.py > crates/airlock-mirror/src/glob_cases.json
"""
import json, sys
from huggingface_hub.utils import filter_repo_objects
patterns = ["*.safetensors", "onnx/*", "onnx/**", "**/config.json", "model-?????.bin", "*.json",
            "sub/", "sub\\*.bin", "[abc]*.txt", "[!abc]*.txt", "[a-c]?.md", "*optimizer*", "README.md",
            "*/model.*", "[", "a[b", "[]x]*", "*.Safetensors", "tokenizer*", "?", "**", "*", "onnx/*.onnx",
            "{a,b}.json"]
paths = ["model.safetensors", "sub/model-00001.safetensors", "model.bin", "onnx/model.onnx",
         "onnx/q/model.onnx", "config.json", "a/config.json", "model-00001.bin", "sub/x.bin",
         "a.txt", "d.txt", "b1.md", "optimizer.pt", "README.md", "docs/README.md", "x/model.bin",
         "[", "a[b", "]x.y", "tokenizer.json", "t", "{a,b}.json", "a.json", "MODEL.SAFETENSORS"]
cases = []
for p in patterns:
    for s in paths:
        cases.append([p, s, list(filter_repo_objects([s], allow_patterns=[p])) == [s]])
sys.stdout.write("[\n" + ",\n".join(json.dumps(c) for c in cases) + "\n]\n")
