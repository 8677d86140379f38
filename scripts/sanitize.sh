#!/usr/bin/env bash
# Builds the addon with ASan+UBSan in a scratch copy and runs the core tests
# against it (BLOCKRING_ADDON points the loader at that build).
#   scripts/sanitize.sh [test files...]     build, then run the tests
#   scripts/sanitize.sh --build-only DIR    only build, into DIR (CI starts this
#                                           while the main suite runs)
#   BLOCKRING_ASAN_DIR=DIR scripts/sanitize.sh ...   use DIR's build (DIR is
#                                           removed afterwards)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

build() { # $1: an empty scratch directory
  cp -r "$root/binding.gyp" "$root/native" "$1/"
  ln -s "$root/node_modules" "$1/node_modules"
  (cd "$1" && BLOCKRING_SANITIZE=1 npx --no node-gyp rebuild >"$1/build.log" 2>&1) || {
    cat "$1/build.log"
    exit 1
  }
}

if [ "${1:-}" = --build-only ]; then
  build "$2"
  exit 0
fi
if [ -n "${BLOCKRING_ASAN_DIR:-}" ]; then
  work=$BLOCKRING_ASAN_DIR
else
  work=$(mktemp -d /tmp/blockring-asan.XXXXXX)
  build "$work"
fi
trap 'rm -rf "$work"' EXIT
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
export BLOCKRING_ADDON="$work/build/Release/blockring.node"
[[ "$(nm -D "$BLOCKRING_ADDON")" == *__asan_init* ]] || { echo "sanitizer build lacks ASan instrumentation"; exit 1; }
# Node itself is not instrumented and frees memory at exit in ways LSan
# reports as leaks; we are after memory errors and UB in the addon.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allow_user_segv_handler=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Only node carries the sanitizer runtimes: the tools the tests drive (QEMU's
# tools hang at start with ASan preloaded) run through wrappers that drop
# LD_PRELOAD, so the children that load the addon are node and nothing else.
tools="$work/tools"
mkdir -p "$tools"
for t in qemu-img qemu-io qemu-nbd qemu-system-x86_64 qemu-storage-daemon nbdinfo nbdcopy nbdkit \
  fio gcc g++ cc c++ objdump strace; do
  real=$(command -v "$t") || continue
  printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$@"\n' "$real" >"$tools/$t"
  chmod +x "$tools/$t"
done
export PATH="$tools:$PATH"
cd "$root"
# The QEMU guest tests (*-guest.test.ts) boot TCG guests for about a minute
# and exercise the same native code the host-side frontend tests cover
# under the sanitizer (test/vhost-user-blk-io, -hostile); they stay out.
# test/package-install packs and installs the release build (prebuilds, not
# this ASan build: nothing of it runs under the sanitizer), and
# test/old-kernel-headers only compiles; test/layering reads the release
# build's object files and test/package-contents the tarball's list, and
# neither loads the addon. The run covers the same addon code through every
# other test. Two test files at a time (vitest's default here is one, on 2
# cores): the sanitized files spend much of their time waiting on children.
LD_PRELOAD="$asan $ubsan" node node_modules/vitest/vitest.mjs run --maxWorkers=2 --exclude 'test/*-guest.test.ts' \
  --exclude test/package-install.test.ts --exclude test/old-kernel-headers.test.ts \
  --exclude test/layering.test.ts --exclude test/package-contents.test.ts "${@:-test/}"
