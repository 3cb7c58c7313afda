#!/usr/bin/env python3
"""Count airlock scan verdicts per file over the model-like files under a directory.

Usage: count-verdicts.py AIRLOCK ROOT [ROOT...]

Finds every *.pkl, *.pickle, *.joblib, *.npy and *.npz file under the ROOTs (for example a
virtual environment, whose packages ship test pickles and arrays), runs `AIRLOCK scan --json`
over them and prints how many files get each worst verdict (clean, info, suspicious, invalid,
malicious), then the files flagged suspicious or worse with the keys of their findings. Used
for the precision numbers in docs/scanning.md.
"""

import collections
import json
import os
import subprocess
import sys

EXT = (".pkl", ".pickle", ".joblib", ".npy", ".npz")
ORDER = ["clean", "info", "suspicious", "invalid", "malicious"]


def main():
    airlock, roots = sys.argv[1], sys.argv[2:]
    files = sorted(
        os.path.join(d, n)
        for r in roots
        for d, _, names in os.walk(r)
        for n in names
        if n.endswith(EXT) and os.path.isfile(os.path.join(d, n))
    )
    out = subprocess.run([airlock, "scan", "--json", *files], capture_output=True, check=False)
    doc = json.loads(out.stdout)
    worst = {f: "clean" for f in files}
    keys = collections.defaultdict(set)
    for f in doc["findings"]:
        sev = f["severity"]
        if ORDER.index(sev) > ORDER.index(worst[f["file"]]):
            worst[f["file"]] = sev
        if sev != "info":
            keys[f["file"]].add(f["rule"] + (":" + f["global"] if f.get("global") else ""))
    counts = collections.Counter(worst.values())
    print(f"{len(files)} files: " + ", ".join(f"{counts[s]} {s}" for s in ORDER))
    for f in files:
        if ORDER.index(worst[f]) >= ORDER.index("suspicious"):
            print(f"  {worst[f]:<10} {f}: {', '.join(sorted(keys[f]))}")


if __name__ == "__main__":
    main()
