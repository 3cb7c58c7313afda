#!/usr/bin/env bash
# Builds two small signed apt repositories shaped like a GPU driver stack, with the real Debian
# tools (dpkg-deb, apt-ftparchive, gpg), for the demo and the end-to-end tests:
#
#   DIR/archive   a suite repository (dists/stable/{main,non-free}/binary-amd64), signed by
#                 DIR/archive.gpg's key: a driver that pre-depends on a virtual firmware package
#                 (versioned Provides), depends on its kernel module at the same version, on a
#                 tool through an alternative, on libc (two versions; the newer is wanted), on an
#                 Architecture: all package, on a Multi-Arch: allowed package with :any and on a
#                 Multi-Arch: foreign one; a
#                 package that conflicts with the first alternative; an unrelated package.
#   DIR/toolkit   a flat repository (`deb URI /`) signed by DIR/toolkit.gpg's key, with an
#                 epoch in a version and a dependency loop.
#
# DIR/gnupg keeps the two signing keys (for tests that sign altered files).
#
# Usage: scripts/make-deb-repo.sh DIR
set -euo pipefail
dir="$1"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
work="$dir/build"
rm -rf "$work" "$dir/archive" "$dir/toolkit" "$dir/gnupg"
mkdir -p "$work" "$dir/archive/pool/main" "$dir/archive/pool/non-free" "$dir/toolkit"

# deb NAME VERSION ARCH OUTDIR [EXTRA-CONTROL-LINES]
deb() {
  local name="$1" version="$2" arch="$3" out="$4" extra="${5:-}"
  local root="$work/$name-$version"
  mkdir -p "$root/DEBIAN" "$root/usr/share/$name"
  echo "$name $version" > "$root/usr/share/$name/VERSION"
  {
    echo "Package: $name"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: airlock demo <ops@example.org>"
    [ -n "$extra" ] && printf '%s\n' "$extra"
    echo "Description: $name (synthetic package for airlock's demo and tests)"
  } > "$root/DEBIAN/control"
  dpkg-deb --root-owner-group --build "$root" "$out/${name}_${version#*:}_$arch.deb" >/dev/null
}

A="$dir/archive/pool/main"
N="$dir/archive/pool/non-free"
deb demo-libc 2.31-13 amd64 "$A" "Multi-Arch: same"
deb demo-libc 2.36-9 amd64 "$A" "Multi-Arch: same"
deb demo-perl-base 5.36.0-7 amd64 "$A" "Multi-Arch: allowed"
deb demo-make 4.3-4.1 amd64 "$A" "Multi-Arch: foreign"
deb demo-dkms 3.0.10-8 all "$A" "Depends: demo-perl-base:any, demo-make"
deb demo-unrelated 1.0-1 amd64 "$A" "Depends: demo-libc"
deb demo-firmware-gsp 535.161.08-1 all "$N" "Provides: demo-firmware (= 535.161.08)"
deb demo-nvidia-kernel-dkms 535.161.08-1 amd64 "$N" "Depends: demo-dkms (>= 3.0)
Provides: demo-nvidia-kernel-535.161.08"
deb demo-nvidia-smi 535.161.08-1 amd64 "$N" "Depends: demo-libc (>= 2.34)
Conflicts: demo-nvidia-tools-legacy"
deb demo-nvidia-tools-legacy 470.1-1 amd64 "$N" "Depends: demo-libc"
deb demo-nvidia-driver 535.161.08-1 amd64 "$N" "Pre-Depends: demo-firmware (>= 535)
Depends: demo-nvidia-kernel-dkms (= 535.161.08-1), demo-nvidia-smi | demo-nvidia-tools-legacy, demo-libc (>= 2.36)
Recommends: demo-unrelated"

T="$dir/toolkit"
deb demo-container-toolkit-base 1:1.17.8-1 amd64 "$T" "Depends: demo-container-toolkit (= 1:1.17.8-1)"
deb demo-container-toolkit 1:1.17.8-1 amd64 "$T" "Depends: demo-container-toolkit-base (>= 1:1.17), demo-libnvidia-container1 (>= 1.17)"
deb demo-libnvidia-container1 1.17.8-1 amd64 "$T"

# Signing keys, one per repository, in a throwaway GnuPG home.
export GNUPGHOME="$dir/gnupg"
mkdir -m 700 -p "$GNUPGHOME"
for who in archive toolkit; do
  gpg --batch --quiet --passphrase '' --quick-gen-key "airlock demo $who <$who@example.org>" ed25519 sign 1y
  gpg --batch --quiet --export "$who@example.org" > "$dir/$who.gpg"
done

# The suite repository: apt-ftparchive writes Packages and Release, gpg signs.
cd "$dir/archive"
for comp in main non-free; do
  mkdir -p "dists/stable/$comp/binary-amd64"
  apt-ftparchive packages "pool/$comp" > "dists/stable/$comp/binary-amd64/Packages"
  xz -k -f "dists/stable/$comp/binary-amd64/Packages"
  gzip -k -f -n "dists/stable/$comp/binary-amd64/Packages"
done
valid_until="$(date -u -d '+30 days' '+%a, %d %b %Y %H:%M:%S UTC')"
apt-ftparchive \
  -o APT::FTPArchive::Release::Suite=stable \
  -o APT::FTPArchive::Release::Codename=demo \
  -o APT::FTPArchive::Release::Architectures=amd64 \
  -o "APT::FTPArchive::Release::Components=main non-free" \
  release dists/stable | sed "/^Date:/a Valid-Until: $valid_until" > "$work/Release"
mv "$work/Release" dists/stable/Release
gpg --batch --quiet --yes --local-user archive@example.org --clearsign -o dists/stable/InRelease dists/stable/Release
gpg --batch --quiet --yes --local-user archive@example.org --armor --detach-sign -o dists/stable/Release.gpg dists/stable/Release

# The flat repository: only Release + Release.gpg (no InRelease), like many vendor repositories.
cd "$dir/toolkit"
apt-ftparchive packages . > Packages
gzip -k -f -n Packages
apt-ftparchive release . > "$work/Release"
mv "$work/Release" Release
gpg --batch --quiet --yes --local-user toolkit@example.org --armor --detach-sign -o Release.gpg Release
rm -rf "$work"
echo "$dir"
