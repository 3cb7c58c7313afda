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

# The end-to-end tests drive airlockd's test hooks (crash and busy-lock injection); release
# builds never enable the feature, and a unit test checks that without it the hooks are inert.
echo "==> cargo build --workspace --bins --features airlockd/fault-injection"
cargo build --workspace --bins --features airlockd/fault-injection

echo "==> cargo test --workspace"
cargo test --workspace
