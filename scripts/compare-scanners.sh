#!/usr/bin/env bash
# Runs airlock scan, picklescan, modelscan and fickling over the scanner corpus
# (scripts/scan-corpus.py) and prints a markdown table of verdicts per case and a summary.
#
# Usage: scripts/compare-scanners.sh [CORPUS_DIR]
#   CORPUS_DIR  an existing corpus (default: generated into target/scan-corpus)
# Env: SCANNERS_VENV (default target/scanners-venv): venv with picklescan, modelscan, fickling
#      (created with pip when missing); AIRLOCK (default target/debug/airlock, built if missing).
#
# Verdicts: FLAG = the tool reported the file (exit status saying "found something");
# err = the tool failed on the file (fickling and picklescan on non-pickles; counted as flagged,
# since a parse failure is a refusal to vouch for it); ok = clean; skip = modelscan had no
# scanner for the file type (exit 3), counted as not flagged.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
VENV=${SCANNERS_VENV:-$REPO/target/scanners-venv}
CORPUS=${1:-}

if [ ! -x "$VENV/bin/modelscan" ] || [ ! -x "$VENV/bin/fickling" ] || [ ! -x "$VENV/bin/picklescan" ]; then
    python3 -m venv "$VENV"
    # fickling 0.1.x imports typing_extensions without declaring it.
    "$VENV/bin/pip" install -q --disable-pip-version-check picklescan modelscan fickling typing_extensions numpy h5py
fi
if [ -z "$CORPUS" ]; then
    CORPUS=$REPO/target/scan-corpus
    rm -rf "$CORPUS"
    PY=$REPO/.venv/bin/python
    [ -x "$PY" ] || PY=python3
    "$PY" scripts/scan-corpus.py "$CORPUS"
fi
AIRLOCK=${AIRLOCK:-$REPO/target/debug/airlock}
[ -x "$AIRLOCK" ] || cargo build -q -p airlock
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$AIRLOCK" scan --json "$CORPUS" > "$WORK/airlock.json" || true

python3 - "$CORPUS" "$VENV" "$WORK" <<'EOF'
import json, os, subprocess, sys
corpus, venv, work = sys.argv[1:4]
cases = json.load(open(os.path.join(corpus, "cases.json")))
res = json.load(open(os.path.join(work, "airlock.json")))
flagged = {}
for f in res["findings"]:
    rel = os.path.relpath(f["file"], corpus)
    flagged.setdefault(rel, set()).add(f["severity"])

def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=work, timeout=300)
    return p.returncode, p.stdout.decode(errors="replace")

def picklescan(path):
    rc, out = run([f"{venv}/bin/picklescan", "-p", path])
    if rc == 0:
        return "ok"
    return "FLAG" if rc == 1 else "err"

def modelscan(path):
    rc, _ = run([f"{venv}/bin/modelscan", "-p", path, "-r", "json", "-o", os.path.join(work, "ms.json")])
    return {0: "ok", 1: "FLAG", 3: "skip"}.get(rc, "err")

def fickling(path):
    rc, _ = run([f"{venv}/bin/fickling", "--check-safety", "--json-output", os.path.join(work, "fk.json"), path])
    return {0: "ok", 1: "FLAG"}.get(rc, "err")

def airlock(rel):
    sev = flagged.get(rel)
    if not sev:
        return "ok"
    for s in ("malicious", "invalid", "suspicious"):
        if s in sev:
            return "FLAG " + s

tools = [("airlock", None), ("picklescan", picklescan), ("modelscan", modelscan), ("fickling", fickling)]
rows, score = [], {t: {"caught": 0, "missed": 0, "fp": 0} for t, _ in tools}
for c in cases:
    path = os.path.join(corpus, c["path"])
    v = {"airlock": airlock(c["path"])}
    for t, fn in tools[1:]:
        v[t] = fn(path)
    for t, _ in tools:
        hit = v[t].startswith("FLAG") or v[t] == "err"
        if c["expect"] == "malicious":
            score[t]["caught" if hit else "missed"] += 1
        elif hit:
            score[t]["fp"] += 1
    rows.append((c, v))

n_bad = sum(c["expect"] == "malicious" for c in cases)
print(f"| case | expect | technique | airlock | picklescan | modelscan | fickling |")
print("|---|---|---|---|---|---|---|")
for c, v in rows:
    print(f"| `{c['path']}` | {c['expect']} | {c['technique']} | {v['airlock']} | {v['picklescan']} | {v['modelscan']} | {v['fickling']} |")
print()
print(f"| tool | malicious caught (of {n_bad}) | missed | benign flagged (of {len(cases) - n_bad}) |")
print("|---|---|---|---|")
for t, _ in tools:
    s = score[t]
    print(f"| {t} | {s['caught']} | {s['missed']} | {s['fp']} |")
EOF
