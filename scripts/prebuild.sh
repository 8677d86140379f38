#!/usr/bin/env bash
# Builds the N-API prebuilds npm pack ships: linux-x64 and linux-arm64 (glibc;
# arm64 with Debian's aarch64-linux-gnu cross compiler), tagged with the libc
# so musl systems do not load them, stripped, with libstdc++ linked in. Each
# build runs in a scratch copy so the working tree's build/ stays the host's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/blockring-prebuild.XXXXXX)
trap 'rm -rf "$work"' EXIT
export BLOCKRING_STATIC_RUNTIME=1
export JOBS=${JOBS:-2}  # node-gyp: make -j
rm -rf "$root/prebuilds"

build() {  # arch cc cxx strip
  local dir="$work/$1"
  mkdir -p "$dir"
  cp -r "$root/binding.gyp" "$root/native" "$root/package.json" "$dir/"
  ln -s "$root/node_modules" "$dir/node_modules"
  (cd "$dir" && CC=$2 CXX=$3 node node_modules/prebuildify/bin.js --napi --strip --strip-bin="$4" --tag-libc --arch="$1" \
    >"$dir/build.log" 2>&1) || { cat "$dir/build.log"; exit 1; }
  mkdir -p "$root/prebuilds"
  cp -r "$dir/prebuilds/." "$root/prebuilds/"
}

build x64 gcc g++ strip
if command -v aarch64-linux-gnu-g++ >/dev/null; then
  build arm64 aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ aarch64-linux-gnu-strip
else
  echo "prebuild: aarch64-linux-gnu-g++ not found (apt-get install g++-aarch64-linux-gnu); no linux-arm64 prebuild" >&2
  exit 1
fi
find "$root/prebuilds" -name '*.node' | sort
