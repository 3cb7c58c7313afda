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

echo "==> cargo build --workspace --bins"
cargo build --workspace --bins

echo "==> cargo test --workspace"
cargo test --workspace
