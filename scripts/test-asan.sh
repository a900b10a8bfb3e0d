#!/usr/bin/env bash
# Builds the addon with AddressSanitizer into build-asan/ and runs the test suite against it.
# Node itself is not instrumented, so the ASan runtime is preloaded; leak checking is off because
# V8 and libtorch keep process-lifetime allocations that LeakSanitizer would report.
set -euo pipefail
cd "$(dirname "$0")/.."
# FILM_ASAN_NO_BUILD=1: test the build-asan/ already there (built by hand, under a lock, say)
if [ "${FILM_ASAN_NO_BUILD:-}" != 1 ]; then FILM_ASAN=1 node scripts/install.js --force; fi
npx tsc -p tsconfig.json
export FILM_FEATURES_ADDON="$PWD/build-asan/Release/film_features.node"
export LD_PRELOAD="$(g++ -print-file-name=libasan.so)"
# The CPU block cache stays on (its default limit), so the allocator the package ships is the one
# tested: a block poisons itself while cached (native/cpu_allocator.cc), so a use-after-free of a
# cached block is still reported. Unset FILM_FEATURES_CPU_CACHE_MB=0 inherited from a shell.
unset FILM_FEATURES_CPU_CACHE_MB
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:allocator_may_return_null=1"
# .mocharc.js lists every test file, and mocha adds the files named to that list: with files named,
# run only those, with .mocharc.js's other settings (and a longer timeout: ASan is slower)
for arg in "$@"; do
  if [ -f "$arg" ]; then
    exec npx mocha --no-config --require test/fixtures.js --node-option expose-gc --timeout 600000 --slow 2000 "$@"
  fi
done
npx mocha "$@"
