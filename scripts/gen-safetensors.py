#!/usr/bin/env python3
"""Writes a valid safetensors file of about SIZE bytes of random U8 data: the demo, the
benchmarks and the tests use it so that the scanner's format validator passes real files.
Usage: gen-safetensors.py SIZE OUT"""
import json, os, struct, sys

size, out = int(sys.argv[1]), sys.argv[2]
header = {"__metadata__": {"format": "pt"}, "weight": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    left = size
    while left:
        n = min(left, 1 << 24)
        f.write(os.urandom(n))
        left -= n
