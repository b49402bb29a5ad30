#!/usr/bin/env bash
# CRIU >= 4 for snapshot cold starts (docs/snapshots.md), built once and cached.
#
# Debian 12's criu 3.17 fails on recent kernels (vDSO layout); 4.1.1's upstream source is
# in Debian's archive. A private apt configuration (never the system's sources) holding
# `deb-src <this machine's Debian mirror> trixie main` fetches it; bookworm's packages are
# enough to build it. Prints the binary's path. A system `criu` >= 4 is used as it is.
set -euo pipefail
VERSION=4.1.1
CACHE="${PODIUM_CRIU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/podium/criu-$VERSION}"
BIN="$CACHE/criu"

if command -v criu >/dev/null 2>&1; then
  v=$(criu --version 2>/dev/null | sed -n 's/^Version: \([0-9]*\).*/\1/p')
  if [ "${v:-0}" -ge 4 ]; then command -v criu; exit 0; fi
fi
if [ -x "$BIN" ] && [ -e "$CACHE/plugins/.built" ]; then echo "$BIN"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "build-criu: not root: no CRIU (snapshots need root anyway; their tests skip)" >&2
  exit 0
fi

deps="libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3-protobuf
      libnl-3-dev libnet1-dev libcap-dev libaio-dev libgnutls28-dev libbsd-dev uuid-dev
      pkg-config gcc make xz-utils"
missing=$(for p in $deps; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
mkdir -p "$work/apt/lists/partial" "$work/apt/archives/partial"
echo "deb-src $mirror trixie main" > "$work/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache::Archives=$work/apt/archives"
          -o "Acquire::Check-Valid-Until=false" -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" update -qq >&2
# Only the upstream tarball is needed (the mirror may lack the .dsc): its URI from apt,
# fetched and checked against the checksum apt gives.
line=$(apt-get "${apt_opts[@]}" source --print-uris criu | grep "criu_$VERSION.orig.tar" | head -1)
[ -n "$line" ] || { echo "criu $VERSION source not found in $mirror trixie" >&2; exit 1; }
uri=$(echo "$line" | awk '{print $1}' | tr -d "'"); file=$(echo "$line" | awk '{print $2}')
sum=$(echo "$line" | awk '{print $4}')
python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
  "$uri" "$work/$file"
case "$sum" in
  SHA256:*) echo "${sum#SHA256:}  $work/$file" | sha256sum -c --quiet - >&2 ;;
  MD5Sum:*) echo "${sum#MD5Sum:}  $work/$file" | md5sum -c --quiet - >&2 ;;
esac
tar -C "$work" -xf "$work"/criu_"$VERSION".orig.tar.*
# criu, and its CUDA plugin (GPU workers: it calls NVIDIA's cuda-checkpoint; needs no CUDA
# to build). The plugin goes in plugins/ beside the binary, where fleet/snapshots.py looks.
make -C "$work/criu-$VERSION" -j"$(nproc)" criu cuda_plugin >&2
mkdir -p "$CACHE/plugins"
install -m 0755 "$work/criu-$VERSION/plugins/cuda/cuda_plugin.so" "$CACHE/plugins/cuda_plugin.so"
install -m 0755 "$work/criu-$VERSION/criu/criu" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
touch "$CACHE/plugins/.built"
echo "$BIN"
