#!/usr/bin/env bash
# Builds the addon with AddressSanitizer into build-asan/ and runs the test suite against it.
# Node itself is not instrumented, so the ASan runtime is preloaded; leak checking is off because
# V8 and libtorch keep process-lifetime allocations that LeakSanitizer would report.
set -euo pipefail
cd "$(dirname "$0")/.."
FILM_ASAN=1 node scripts/install.js --force
npx tsc -p tsconfig.json
export FILM_FEATURES_ADDON="$PWD/build-asan/Release/film_features.node"
export LD_PRELOAD="$(g++ -print-file-name=libasan.so)"
# The block cache would hide a use-after-free of a cached block from ASan.
export FILM_FEATURES_CPU_CACHE_MB=0
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:allocator_may_return_null=1"
npx mocha "$@"
