#!/usr/bin/env bash
# Builds the core (no libtorch: cmake -DFILM_CORE=ON) into build-core/ and runs the suite's
# libtorch-free parts against it: load, parity with the float64 reference, the reader, bad input,
# zero copy, services, the batch CLI, the writer, the fleet; and test/core/ (what only libtorch
# runs says so). The reference files are made with Debian's Python torch, as for the full suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# FILM_CORE_NO_BUILD=1: test the build-core/ already there
if [ "${FILM_CORE_NO_BUILD:-}" != 1 ]; then
  flock /tmp/film-build.lock node node_modules/cmake-js/bin/cmake-js build --directory . --out build-core \
    --parallel "$(nproc)" --CDFILM_CORE=ON >/dev/null
fi
npx tsc -p tsconfig.json
export FILM_FEATURES_ADDON="$PWD/build-core/Release/film_features.node"
node -e "const b = require(process.env.FILM_FEATURES_ADDON); if (b.build !== 'core') { console.error('not the core build: ' + b.build); process.exit(1); }"
if readelf -d "$FILM_FEATURES_ADDON" | grep -E 'NEEDED.*lib(torch|c10)'; then echo 'the core build links libtorch' >&2; exit 1; fi
files=(test/core/*.test.js
  test/10.pyramid.test.js test/20.load.test.js test/22.model-metadata.test.js test/23.model-reader.test.js
  test/24.weight-files.test.js test/30.parity.test.js test/32.engine.test.js test/33.bf16.test.js test/33.bf16-interpolator.test.js test/34.layout.test.js
  test/40.zero-copy.test.js test/50.bad-input.test.js test/55.inputs.test.js test/60.lifetime.test.js
  test/65.micro-batch.test.js test/65.recursion-padding.test.js test/65.services.test.js test/67.controls.test.js test/67.film-net.test.js
  test/68.cpu-cache.test.js
  test/70.cli.test.js test/70.cli-exit.test.js test/72.batch.test.js test/73.batch-abort.test.js test/73.batch-api.test.js
  test/74.output-safety.test.js test/74.skip-existing.test.js test/76.file-writer.test.js test/85.fleet.test.js)
exec npx mocha --no-config --require test/fixtures.js --node-option expose-gc --timeout 120000 --slow 2000 "${files[@]}" "$@"
