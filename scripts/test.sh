#!/usr/bin/env bash
# Full check: install test peers, then fmt, clippy, build, test.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/peers.sh
source scripts/peers.sh
airlock_install_peers
export AIRLOCK_TEST_VENV="$REPO/.venv"

echo "==> cargo fmt --all -- --check"
cargo fmt --all -- --check

echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
# The object-store code is behind airlockd's `s3` feature; lint it too.
echo "==> cargo clippy -p airlockd -p airlock-appliance --all-targets --features airlockd/s3 -- -D warnings"
cargo clippy -p airlockd -p airlock-appliance --all-targets --features airlockd/s3 -- -D warnings

# The end-to-end tests drive airlockd's test hooks (crash and busy-lock injection); release
# builds never enable the feature, and a unit test checks that without it the hooks are inert.
# The object-store tests need the `s3` feature.
echo "==> cargo build --workspace --bins --features airlockd/fault-injection,airlockd/s3"
cargo build --workspace --bins --features airlockd/fault-injection,airlockd/s3

# Every benchmark section once, on small data, with the debug binaries just built: a broken
# benchmark fails here. Only that the commands succeed and the JSON report is complete counts.
echo "==> scripts/bench.sh all (smoke: small data, one run, debug binaries)"
BENCH_SMOKE=1 BENCH_PROFILE=debug BENCH_JSON=target/bench-smoke.json scripts/bench.sh all
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' target/bench-smoke.json
python3 - target/bench-smoke.json <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
missing = [s for s in doc["sections"] if not any(r["section"] == s for r in doc["results"])]
assert doc["sections"] and not missing, f"bench sections without results: {missing}"
print(f"bench smoke: {len(doc['results'])} results from {len(doc['sections'])} sections")
PY

echo "==> cargo test --workspace"
cargo test --workspace
