#!/usr/bin/env bash
# Vendor uPlot (MIT, https://github.com/leeoniya/uPlot) into the web console, so that the
# gateway serves the Metrics tab's charts itself: no CDN, works offline.
#
# Fetches the pinned version from the npm registry (`npm pack`), checks the sha256 of each
# file it takes against the values below, and writes to
# src/podium/gateway/console/static/vendor/uplot/:
#
#   uPlot.esm.min.js  dist/uPlot.iife.min.js made an ES module: one comment line before it,
#                     `export default uPlot;` after it (npm ships the ES module build
#                     unminified only: 145 KB against 51 KB)
#   uPlot.min.css     dist/uPlot.min.css, as it is
#   LICENSE           as it is
#
# Upgrading: change VERSION, run with UPDATE=1 to print the new checksums, read the diff
# of the upstream files, then paste the checksums here.
set -euo pipefail
VERSION=1.6.32
SHA256_IIFE_MIN=19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f
SHA256_CSS=df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04
SHA256_LICENSE=8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/src/podium/gateway/console/static/vendor/uplot"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "uplot@$VERSION" >/dev/null && tar xzf "uplot-$VERSION.tgz")
PKG="$WORK/package"

check() { # file expected-sha256
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "${UPDATE:-0}" = 1 ]; then
    echo "$(basename "$1"): $got"
  elif [ "$got" != "$2" ]; then
    echo "vendor-uplot: $1: sha256 $got, expected $2" >&2
    exit 1
  fi
}
check "$PKG/dist/uPlot.iife.min.js" "$SHA256_IIFE_MIN"
check "$PKG/dist/uPlot.min.css" "$SHA256_CSS"
check "$PKG/LICENSE" "$SHA256_LICENSE"
[ "${UPDATE:-0}" = 1 ] && exit 0

# The minified build is `var uPlot=function(){…}();`: in a module that var is module-scoped.
head -c 200 "$PKG/dist/uPlot.iife.min.js" | grep -q '^var uPlot=function()' \
  || { echo "vendor-uplot: dist/uPlot.iife.min.js no longer starts with 'var uPlot=function()'" >&2; exit 1; }

mkdir -p "$DEST"
{
  echo "// uPlot $VERSION (MIT, see LICENSE): npm's dist/uPlot.iife.min.js plus an ES module export; written by tools/vendor-uplot.sh."
  cat "$PKG/dist/uPlot.iife.min.js"
  printf '\nexport default uPlot;\n'
} >"$DEST/uPlot.esm.min.js"
cp "$PKG/dist/uPlot.min.css" "$DEST/uPlot.min.css"
cp "$PKG/LICENSE" "$DEST/LICENSE"
echo "vendor-uplot: uPlot $VERSION in ${DEST#"$ROOT"/}"
